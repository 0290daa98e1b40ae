"""Several processes on one Milvus store. A milvus-lite .db file is one process's (the first to open it holds its
lock; another is refused with a message saying what to do); a `milvus-lite server` over the same kind of folder
serves any number of processes over http: two readers answer, each snapshot one whole version, while a third
process publishes new versions."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FakeEmbedder

pytest.importorskip("milvus_lite", reason="the milvus extra is not installed (pip install -e '.[milvus]')")

from rag.store import parse_spec  # noqa: E402
from rag.store.indexing import index_articles_into  # noqa: E402
from rag.store.milvus_base import forget_client, published_version  # noqa: E402
from rag.types import Article  # noqa: E402

WORKER = Path(__file__).resolve().parents[1] / "helpers" / "store_worker.py"
BASE = [Article(title=f"城市新闻{n}", text=f"第{n}号城市今天下雨，气温{n + 10}度。\n\n市政府宣布新的交通措施。",
                url=f"https://news.example/base/{n}", published=f"2024-06-{n + 1:02d}T00:00:00Z", source="city")
        for n in range(4)]
ADDS = 3  # the writer's versions: one article each, then one removal


def worker(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


@pytest.mark.slow
def test_a_milvus_lite_file_is_opened_by_one_process(tmp_path):
    path = tmp_path / "one.db"
    spec = f"milvus:{path}"
    index_articles_into(BASE, spec, FakeEmbedder(), progress=False)  # this process now holds the file
    r = subprocess.run([sys.executable, str(WORKER), "open", spec], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "only one process may open it" in r.stdout and "milvus-lite server" in r.stdout
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))  # let go of it: now another process may open it
    forget_client(parse_spec(spec).target)
    r = subprocess.run([sys.executable, str(WORKER), "open", spec], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["articles"] == len(BASE)


@pytest.fixture
def lite_server(tmp_path):
    """`milvus-lite server` on a free port over a folder of the test's; its http URI."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "milvus-lite"
    proc = subprocess.Popen([str(exe), "server", "--data-dir", str(tmp_path / "served.db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"milvus-lite server did not start: {proc.stderr.read()[-2000:]}")
            time.sleep(0.2)
    try:
        yield uri
    finally:
        forget_client(uri)
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_two_readers_answer_while_a_third_process_writes(lite_server):
    spec = lite_server
    index_articles_into(BASE, spec, FakeEmbedder(), progress=False)
    start = published_version(spec, "rag_")
    final = start + ADDS + 1
    readers = [worker("read", spec, str(final), "240") for _ in range(2)]
    for r in readers:  # both asking before the writer starts
        line = r.stdout.readline()
        assert line.strip() == "ready", line + r.stderr.read()
    writer = worker("write", spec, str(ADDS), "0.5")
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, out + err
    assert out.split() == [*(w for i in range(ADDS) for w in ("published", str(i))), "removed", "0"]
    for r in readers:
        out, err = r.communicate(timeout=300)
        assert r.returncode == 0, err
        got = json.loads(out.splitlines()[-1])
        assert got["errors"] == [], got
        assert got["versions"] == sorted(got["versions"]) and got["versions"][-1] == final, got
        assert len(got["versions"]) >= 2 and got["checks"] >= len(got["versions"]) and got["asked"] > 0, got
