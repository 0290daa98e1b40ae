"""Load with a hostile user: the ordinary users' answer times (p50/p95) from a real `rag serve` on 127.0.0.1, with and
without one user who sends the longest allowed question and chat history, again and again.

    python -m eval.load_hostile                     # 16 users x 10 questions over eval/out/dev-index (else seeds/)
    python -m eval.load_hostile --seeds             # over an index of seeds/ built in a temp folder
    python -m eval.load_hostile --index DIR --users 16 --questions 10 --time-limit 900 --json OUT.json

Ordinary users ask the questions of eval/sets/seed.jsonl through the /ask API (gradio_client), one at a time each.
The hostile user sends the chat event the browser sends (the send button): a question of MAX_QUESTION_CHARS
characters that points back ("他"), so that the last turn of its chat is read too, and a chat of MAX_CHAT_MESSAGES
messages of MAX_MESSAGE_CHARS characters each, back to back while the ordinary users ask. Both runs use one server,
warmed up first (the run without the hostile user goes first). The server binds 127.0.0.1 only, with uploads off.
The goal: the ordinary users' p95 with the hostile user within 2x of the run without.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from rag.evaluation import percentile as eval_percentile

ROOT = Path(__file__).resolve().parent.parent
DEV_INDEX = ROOT / "eval" / "out" / "dev-index"
SEEDS = ROOT / "seeds"
QUESTIONS = ROOT / "eval" / "sets" / "seed.jsonl"
GOAL = 2.0  # the ordinary users' p95 with the hostile user / without


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(index: Path, log_path: Path, timeout: float = 300.0):
    """`rag serve` on a free loopback port (uploads off); yields its URL; ends it (its process group) afterwards."""
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", NO_PROXY="127.0.0.1,localhost",
               PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--host", "127.0.0.1", "--port",
           str(port), "--uploads", "off"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"rag serve exited with {proc.returncode}; see {log_path}")
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(url, timeout=2) as r:
                        if r.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"rag serve did not answer on {url} in {timeout:.0f} s; see {log_path}")
                time.sleep(0.25)
            yield url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class EventSession:
    """UI events sent as a browser page sends them (queue/join, then the session's event stream), one call at a time:
    for events that the Gradio client libraries do not call (the app's private ones). The session (and so its
    gr.State values) is the page's."""

    def __init__(self, url: str):
        import httpx

        self.session = uuid.uuid4().hex[:11]
        self.url = url.rstrip("/") + "/"
        self.http = httpx.Client(timeout=60.0, trust_env=False)
        self.config = self.http.get(self.url + "config").raise_for_status().json()

    def event(self, elem_id: str, trigger: str) -> tuple[int, int]:
        """(fn_index, trigger id) of the event `trigger` ("click", "upload"...) of the component `elem_id`."""
        comp = next(c["id"] for c in self.config["components"] if c.get("props", {}).get("elem_id") == elem_id)
        for d in self.config["dependencies"]:
            if [comp, trigger] in [list(x) for x in d.get("targets", [])]:
                return d["id"], comp
        raise KeyError(f"no {trigger} event on #{elem_id}")

    def call(self, fn: int, trigger: int, data: list, timeout: float = 600.0) -> tuple[bool, dict]:
        """(success, output) of one event; raises on a refused request (a full queue: HTTP 503)."""
        self.http.post(self.url + "gradio_api/queue/join", json={
            "data": data, "event_data": None, "fn_index": fn, "trigger_id": trigger, "session_hash": self.session,
        }).raise_for_status()
        with self.http.stream("GET", self.url + "gradio_api/queue/data", params={"session_hash": self.session},
                              timeout=timeout) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("msg") == "process_completed":
                        return bool(msg.get("success")), msg.get("output") or {}
        raise RuntimeError("the event stream ended without a result")

    def upload(self, paths: list[Path]) -> list[str]:
        """Upload files the way the browser's file box does; returns their paths on the server."""
        files = [("files", (p.name, p.read_bytes())) for p in paths]
        r = self.http.post(self.url + "gradio_api/upload", files=files)
        r.raise_for_status()
        return r.json()

    def close(self) -> None:
        self.http.close()


def text_blocks(text: str) -> list[dict]:
    return [{"type": "text", "text": text}]


def hostile_payload(corpus_text: str) -> list:
    """The chat event's inputs: the longest question and chat the UI reads (rag.ui.inputs' limits)."""
    from rag.ui.inputs import MAX_CHAT_MESSAGES, MAX_MESSAGE_CHARS, MAX_QUESTION_CHARS

    def cut(n: int, offset: int) -> str:
        text = (corpus_text * (1 + (n + offset) // max(1, len(corpus_text))))[offset: offset + n]
        return text.replace("\n", " ")

    question = ("他" + cut(MAX_QUESTION_CHARS, 7))[:MAX_QUESTION_CHARS]
    chat = [{"role": "user" if i % 2 == 0 else "assistant", "content": text_blocks(cut(MAX_MESSAGE_CHARS, 31 * i))}
            for i in range(MAX_CHAT_MESSAGES)]
    return [question, chat, 10, "", "", "中文"]


def wait_stream_closed(client, timeout: float = 10.0) -> None:
    """Wait for the client's event stream to close after an answer, before it asks again.

    The server ends a session's stream (close_stream) right after that session's last answer. gradio_client marks
    its reader closed only when it reads that message, so a question submitted in between is tagged to the closing
    reader and cancelled on the client side (CancelledError) although the server accepted it: a race in the client
    library, seen about once in 1,000 questions here, not an error of the app.
    """
    lock = getattr(client, "pending_lock", None)
    if lock is None or not hasattr(client, "stream_open"):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with lock:
            if not client.stream_open:
                return
        time.sleep(0.005)


def percentile(values: list[float], p: int) -> float:
    """rag.evaluation's percentile, NaN for no values."""
    x = eval_percentile(values, p)
    return float("nan") if x is None else x


def run_load(url: str, questions: list[str], users: int, per_user: int, time_limit: float,
             hostile: dict | None) -> dict:
    """`users` ordinary users asking `per_user` questions each (until `time_limit` s), and the hostile user when
    `hostile` holds its payload. Returns the latencies and errors."""
    from gradio_client import Client

    latencies: list[float] = []
    errors: list[str] = []
    hostile_times: list[float] = []
    hostile_errors: list[str] = []
    mu = threading.Lock()
    start = threading.Barrier(users + (1 if hostile else 0))
    done = threading.Event()
    deadline = [0.0]

    def user(n: int) -> None:
        try:
            client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        except Exception as e:  # noqa: BLE001
            with mu:
                errors.append(f"connect: {e!r}")
            start.abort()
            return
        start.wait(timeout=300)
        deadline[0] = deadline[0] or time.monotonic() + time_limit
        for i in range(per_user):
            if time.monotonic() > deadline[0]:
                break
            q = questions[(n * per_user + i) % len(questions)]
            t0 = time.perf_counter()
            try:
                r = client.predict(q, 5, "", "", api_name="/ask")
                ok = isinstance(r, dict) and bool(r.get("text"))
            except Exception as e:  # noqa: BLE001
                ok, r = False, e
            dt = time.perf_counter() - t0
            with mu:
                (latencies.append(dt) if ok else errors.append(f"{q}: {r!r}"[:300]))
            wait_stream_closed(client)

    def attacker() -> None:
        session = EventSession(url)
        fn, trigger = session.event("rag-send", "click")
        start.wait(timeout=300)
        while not done.is_set():
            t0 = time.perf_counter()
            try:
                ok, out = session.call(fn, trigger, hostile["data"])
            except Exception as e:  # noqa: BLE001
                ok, out = False, {"error": repr(e)}
            with mu:
                (hostile_times.append(time.perf_counter() - t0) if ok else hostile_errors.append(str(out)[:300]))
        session.close()

    threads = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(users)]
    bad = threading.Thread(target=attacker, daemon=True) if hostile else None
    t0 = time.perf_counter()
    for th in threads + ([bad] if bad else []):
        th.start()
    for th in threads:
        th.join(timeout=time_limit + 600)
    wall = time.perf_counter() - t0
    done.set()
    if bad:
        bad.join(timeout=600)
    return {"latencies": latencies, "errors": errors, "wall": wall, "hostile_times": hostile_times,
            "hostile_errors": hostile_errors}


def summary_row(name: str, users: int, res: dict) -> dict:
    lat = res["latencies"]
    return {"run": name, "users": users, "answers": len(lat), "errors": len(res["errors"]),
            "p50_ms": 1000 * percentile(lat, 50), "p95_ms": 1000 * percentile(lat, 95),
            "max_ms": 1000 * max(lat) if lat else float("nan"), "per_s": len(lat) / res["wall"] if res["wall"] else 0}


def table(rows: list[dict]) -> str:
    lines = ["| run | users | answers | errors | p50 ms | p95 ms | max ms | answers/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['users']} | {r['answers']} | {r['errors']} | {r['p50_ms']:.0f} | "
                     f"{r['p95_ms']:.0f} | {r['max_ms']:.0f} | {r['per_s']:.2f} |")
    return "\n".join(lines)


def build_seed_index(folder: Path) -> Path:
    from rag.index import index_paths

    index = folder / "seed-index"
    print(f"building an index of {SEEDS} at {index}", file=sys.stderr, flush=True)
    print(index_paths([SEEDS], index, "use", progress=False).render(), file=sys.stderr, flush=True)
    return index


def load_questions(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["question"] for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.load_hostile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, default=None, help=f"index to serve (default: {DEV_INDEX.relative_to(ROOT)} "
                                                            "if present, else one built from seeds/)")
    ap.add_argument("--seeds", action="store_true", help="serve an index of seeds/ built in a temp folder")
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--questions", type=int, default=10, help="questions per ordinary user (default 10)")
    ap.add_argument("--question-set", type=Path, default=QUESTIONS)
    ap.add_argument("--time-limit", type=float, default=900.0, help="seconds per run after which users stop asking")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    questions = load_questions(args.question_set)
    corpus_text = "".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt")))
    with tempfile.TemporaryDirectory(prefix="rag-load-hostile-") as tmp:
        tmp = Path(tmp)
        if args.seeds or (args.index is None and not (DEV_INDEX / "CURRENT").exists()):
            index = build_seed_index(tmp)
        else:
            index = args.index or DEV_INDEX
        log_path = tmp / "serve.log"
        load = os.getloadavg()
        print(f"serving {index} on 127.0.0.1; {args.users} users x {args.questions} questions; load average "
              f"{load[0]:.2f} on {os.cpu_count()} cores", file=sys.stderr, flush=True)
        try:
            with running_server(index, log_path) as url:
                from gradio_client import Client

                warm = Client(url, verbose=False, download_files=False, analytics_enabled=False)
                for q in questions[:3]:  # loads the models and the dictionary once, before either run
                    warm.predict(q, 5, "", "", api_name="/ask")
                    wait_stream_closed(warm)
                base = run_load(url, questions, args.users, args.questions, args.time_limit, None)
                print(f"without the hostile user: {len(base['latencies'])} answers in {base['wall']:.0f} s",
                      file=sys.stderr, flush=True)
                hostile = run_load(url, questions, args.users, args.questions, args.time_limit,
                                   {"data": hostile_payload(corpus_text)})
        except BaseException:
            if log_path.exists():
                sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
            raise
    rows = [summary_row("without the hostile user", args.users, base),
            summary_row("with the hostile user", args.users, hostile)]
    ht = hostile["hostile_times"]
    ratio = rows[1]["p95_ms"] / rows[0]["p95_ms"] if rows[0]["p95_ms"] else float("nan")
    print(f"\nIndex: {index}; {args.users} ordinary users x {args.questions} questions (/ask), load average "
          f"{load[0]:.2f} at the start\n")
    print(table(rows))
    print(f"\nThe hostile user: {len(ht)} chat requests answered, {len(hostile['hostile_errors'])} failed; "
          f"its own p50 {1000 * percentile(ht, 50):.0f} ms, p95 {1000 * percentile(ht, 95):.0f} ms")
    print(f"Ordinary p95 with / without the hostile user: {ratio:.2f}x (goal <= {GOAL:.1f}x: "
          f"{'met' if ratio <= GOAL else 'NOT met'})")
    for res in (base, hostile):
        for e in res["errors"][:3]:
            print(f"error: {e}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ratio": ratio, "hostile_answered": len(ht),
                                         "hostile_failed": len(hostile["hostile_errors"]),
                                         "load_average": load[0]}, indent=2), encoding="utf-8")
    return 0 if not (base["errors"] or hostile["errors"]) else 1


if __name__ == "__main__":
    sys.exit(main())
