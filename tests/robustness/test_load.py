"""Load: the Gradio server on loopback answers 200 questions from 16 concurrent gradio_client users with no errors,
and answers them all, and the hostile user's, while one user sends the longest allowed question and chat again and
again (its effect on the others' answer times is measured by `python -m eval.load_hostile`, not asserted here).

The app's queue (rag/ui/app.py) runs CONCURRENCY_LIMIT answers at once and holds up to QUEUE_SIZE waiting requests:
16 users each with one request in flight never overflow it, and 4 workers keep 2 cores busy without thrashing.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import FakeEmbedder

from eval.load_hostile import wait_stream_closed
from rag.index import Index, index_paths

pytest.importorskip("gradio_client")
app = pytest.importorskip("rag.ui.app")

WORKER = Path(__file__).resolve().parents[1] / "helpers" / "serve_worker.py"
USERS = 16
QUESTIONS_TOTAL = 200
CITIES = ["北京", "上海", "广州", "深圳", "成都", "武汉", "西安", "南京", "杭州", "重庆"]
ASKS = ["{c}今天的气温是多少度？", "{c}的经济增长了多少？", "{c}地铁几号线明年开通？", "What happened in {c}?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    corpus = root / "corpus"
    corpus.mkdir()
    with open(corpus / "news.jsonl", "w", encoding="utf-8") as f:
        for i in range(60):
            c = CITIES[i % len(CITIES)]
            f.write(json.dumps({"title": f"{c}新闻{i}", "url": f"https://news.example/{i}", "published": "2024-05-08",
                                "text": f"{c}今天下雨了，气温是{i}度。\n\n{c}的经济增长了{i % 7 + 1}个百分点。"
                                        f"\n\n{c}地铁{i}号线将于明年开通。"}, ensure_ascii=False) + "\n")
    index_dir = root / "idx"
    index_paths([corpus], index_dir, FakeEmbedder(), progress=False)
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost"}
    proc = subprocess.Popen([sys.executable, str(WORKER), str(index_dir), str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    url = None
    deadline = time.monotonic() + 120
    while url is None and time.monotonic() < deadline and proc.poll() is None:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line.startswith("ready "):
            url = line.split()[1]
    if url is None:
        proc.kill()
        pytest.fail(f"server did not start: {proc.stderr.read()[-2000:]}")
    yield url, index_dir
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_200_questions_from_16_concurrent_clients(server):
    from gradio_client import Client

    url, index_dir = server
    assert app.QUEUE_SIZE >= USERS, "the queue must hold one request per concurrent user"
    todo: queue.Queue = queue.Queue()
    for n in range(QUESTIONS_TOTAL):
        todo.put(ASKS[n % len(ASKS)].format(c=CITIES[n % len(CITIES)]))
    latencies: list[float] = []
    errors: list[str] = []
    results: list[dict] = []
    mu = threading.Lock()
    clients_ready = threading.Barrier(USERS)

    def user():
        try:
            client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        except Exception as e:  # noqa: BLE001
            with mu:
                errors.append(f"connect: {e!r}")
            clients_ready.abort()
            return
        clients_ready.wait(timeout=120)  # all 16 start asking together
        while True:
            try:
                q = todo.get_nowait()
            except queue.Empty:
                return
            t0 = time.perf_counter()
            try:
                r = client.predict(q, 5, "", "", api_name="/ask")
            except Exception as e:  # noqa: BLE001
                with mu:
                    errors.append(f"{q}: {e!r}")
                continue
            dt = time.perf_counter() - t0
            wait_stream_closed(client)
            with mu:
                latencies.append(dt)
                results.append(r)

    t_start = time.perf_counter()
    threads = [threading.Thread(target=user) for _ in range(USERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - t_start
    assert not errors, f"{len(errors)} errors, first: {errors[:3]}"
    assert len(latencies) == QUESTIONS_TOTAL
    q = statistics.quantiles(latencies, n=100)
    print(f"\nload: {QUESTIONS_TOTAL} questions, {USERS} users, concurrency_limit={app.CONCURRENCY_LIMIT}, "
          f"max_size={app.QUEUE_SIZE}: p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms, {QUESTIONS_TOTAL / wall:.1f} questions/s")
    idx = Index.open(index_dir)
    for r in results:
        assert isinstance(r, dict) and r["text"]
        for c in r["citations"]:
            assert idx.article(c["article_id"]).text[c["start"] : c["end"]] == c["sentence"]
    assert any(r["citations"] for r in results)


@pytest.mark.slow
def test_16_users_and_a_hostile_one(server):
    from gradio_client import Client

    from eval.load_hostile import EventSession, hostile_payload
    from rag.ui.inputs import MAX_CHAT_MESSAGES, MAX_QUESTION_CHARS

    url, _ = server
    payload = hostile_payload("".join(c + "今天下雨了，气温是十八度。" for c in CITIES))
    assert len(payload[0]) == MAX_QUESTION_CHARS and len(payload[1]) == MAX_CHAT_MESSAGES
    stop = threading.Event()
    hostile: list[tuple[bool, dict]] = []

    def attacker():
        session = EventSession(url)
        fn, trigger = session.event("rag-send", "click")
        while not stop.is_set():
            hostile.append(session.call(fn, trigger, payload, timeout=300))
        session.close()

    errors, answered = [], []
    mu = threading.Lock()

    def user(n: int):
        client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        for i in range(5):
            q = ASKS[(n + i) % len(ASKS)].format(c=CITIES[(n * 5 + i) % len(CITIES)])
            try:
                r = client.predict(q, 5, "", "", api_name="/ask")
            except Exception as e:  # noqa: BLE001
                with mu:
                    errors.append(f"{q}: {e!r}")
                continue
            wait_stream_closed(client)
            with mu:
                answered.append(r)

    bad = threading.Thread(target=attacker)
    bad.start()
    threads = [threading.Thread(target=user, args=(n,)) for n in range(USERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    stop.set()
    bad.join(timeout=300)
    assert not errors, f"{len(errors)} errors, first: {errors[:3]}"
    assert len(answered) == USERS * 5 and all(r["text"] for r in answered)
    assert hostile and all(ok for ok, _ in hostile), [out for ok, out in hostile if not ok][:2]
    chat = hostile[-1][1]["data"][0]
    assert len(chat) == MAX_CHAT_MESSAGES  # the chat sent back is trimmed, not grown
    assert chat[-2]["content"][0]["text"].startswith("他")  # the question was read, not refused
