"""ask() as users meet it (#27): latency on an index idle and beside a CPU-bound process, and 1/4/16 concurrent callers.

    python -m eval.bench.serving --index eval/out/archive/index --sets crud-2docs crud-3docs --per-set 100
    python -m eval.bench.serving --index eval/out/dev-index --sets cmrc2018 drcd xquad-zh xquad-en --callers 1 4 16

Questions are a seeded sample of each set (eval/sets/NAME.jsonl). `serial` asks them one after another (p50, p95,
max, the slowest five); `busy` asks them again beside one CPU-bound process (a Python loop, as another user's job);
`callers` shares them among N threads calling ask() at once (questions/s, p50/p95) and checks every answer is the one
the serial run gave. Load (1-minute average) is printed before each part; the JSON goes to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def load_questions(sets: list[str], per_set: int, seed: int = 0) -> list[dict]:
    out = []
    for name in sets:
        path = ROOT / "eval" / "sets" / f"{name}.jsonl"
        rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
        rows = [r for r in rows if not r.get("history")]
        if per_set and per_set < len(rows):
            rows = random.Random(f"{seed}:{name}").sample(rows, per_set)
        out += [{"set": name, "question": r["question"]} for r in rows]
    return out


def answer_key(a) -> tuple:
    return (a.text, a.abstained, tuple((c.article_id, c.start, c.end) for c in a.citations))


def figures(ms: list[float]) -> dict:
    x = np.asarray(ms)
    return {"n": len(ms), "p50_ms": round(float(np.percentile(x, 50)), 1), "p95_ms": round(float(np.percentile(x, 95)), 1),
            "max_ms": round(float(x.max()), 1), "mean_ms": round(float(x.mean()), 1)}


def serial(qs: list[dict], index: str) -> tuple[dict, list]:
    from rag import ask

    times, keys = [], []
    for q in qs:
        t = time.perf_counter()
        a = ask(q["question"], index)
        times.append((time.perf_counter() - t) * 1000)
        keys.append(answer_key(a))
    slow = sorted(range(len(qs)), key=lambda i: -times[i])[:5]
    by_set = {s: figures([t for q, t in zip(qs, times) if q["set"] == s]) for s in dict.fromkeys(q["set"] for q in qs)}
    return {**figures(times), "by_set": by_set,
            "slowest": [{"question": qs[i]["question"], "ms": round(times[i])} for i in slow]}, keys


def callers(qs: list[dict], index: str, n: int, want: list, slots: int = 0) -> dict:
    """N threads share the questions; with `slots`, each ask passes a gate of that many at once, as in `rag serve`
    (rag.pipeline.answer_slot); a caller's time includes its wait in line."""
    from rag import ask
    from rag.pipeline import Gate

    gate = Gate(slots) if slots else None
    jobs = list(range(len(qs)))
    lock = threading.Lock()
    times, keys = [0.0] * len(qs), [None] * len(qs)

    def work():
        while True:
            with lock:
                if not jobs:
                    return
                i = jobs.pop()
            t = time.perf_counter()
            if gate is None:
                a = ask(qs[i]["question"], index)
            else:
                with gate:
                    a = ask(qs[i]["question"], index)
            times[i] = (time.perf_counter() - t) * 1000
            keys[i] = answer_key(a)

    threads = [threading.Thread(target=work) for _ in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"callers": n, "slots": slots or "none", **figures(times), "questions_per_s": round(len(qs) / wall, 2),
            "differ_from_serial": sum(k != w for k, w in zip(keys, want))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench.serving", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--sets", nargs="+", default=["crud-2docs", "crud-3docs"])
    ap.add_argument("--per-set", type=int, default=100)
    ap.add_argument("--parts", nargs="+", default=["serial", "busy", "callers"], choices=("serial", "busy", "callers"))
    ap.add_argument("--callers", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--slots", type=int, nargs="+", default=[0],
                    help="answers at once (0: no gate; `rag serve` uses one per core, rag.pipeline.workers)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from rag import ask

    qs = load_questions(args.sets, args.per_set)
    for q in qs[:5]:  # models loaded, caches warm
        ask(q["question"], args.index)
    result = {"index": args.index, "sets": args.sets, "questions": len(qs), "cores": os.cpu_count()}
    print(f"load {os.getloadavg()[0]:.2f}: serial", file=sys.stderr, flush=True)
    result["serial"], want = serial(qs, args.index)
    result["serial"]["load_before"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result["serial"], ensure_ascii=False), file=sys.stderr, flush=True)
    if "busy" in args.parts:
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(2)
            print(f"load {os.getloadavg()[0]:.2f}: busy (one CPU-bound process beside)", file=sys.stderr, flush=True)
            result["busy"], keys = serial(qs, args.index)
            result["busy"]["differ_from_serial"] = sum(k != w for k, w in zip(keys, want))
        finally:
            burner.kill()
            burner.wait()
        result["busy"]["p95_vs_idle"] = round(result["busy"]["p95_ms"] / result["serial"]["p95_ms"], 2)
        print(json.dumps(result["busy"], ensure_ascii=False), file=sys.stderr, flush=True)
    if "callers" in args.parts:
        result["callers"] = []
        for n in args.callers:
            print(f"load {os.getloadavg()[0]:.2f}: {n} callers", file=sys.stderr, flush=True)
            for slots in args.slots:
                result["callers"].append(callers(qs, args.index, n, want, slots))
                print(json.dumps(result["callers"][-1]), file=sys.stderr, flush=True)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
