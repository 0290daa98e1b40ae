"""The `/ask` API through gradio_client, against `python app.py` started on a free loopback port.

RAG_INDEX points to a folder that does not exist yet, so the app builds it from seeds/ at start (with the real
default embedder, USE) -- the same path a fresh checkout takes.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED_TITLE = "布林肯前往危地马拉出席地区移民会议"
SEED_URL = "https://www.voachinese.com/a/blinken-in-guatemala-20240507/7602355.html"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(index_dir: Path, log_path: Path, argv: list[str] | None = None, timeout: float = 120.0,
                env: dict | None = None):
    """Start the app in a subprocess on a free port; yield its URL; stop it (by pid) afterwards."""
    port = free_port()
    env = dict(os.environ, RAG_INDEX=str(index_dir), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", **(env or {}))
    cmd = [sys.executable] + (argv or [str(ROOT / "app.py")])
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not answer on {url} in {timeout:.0f} s:\n"
                                   f"{log_path.read_text(errors='replace')}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    with running_app(tmp / "index", tmp / "app.log") as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def test_api_lists_the_ask_endpoint(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert "/ask" in info["named_endpoints"]
    params = [p["parameter_name"] for p in info["named_endpoints"]["/ask"]["parameters"]]
    assert params == ["question", "k", "date_from", "date_to"]


def test_ask_chinese_seed_question(client):
    r = client.predict("布林肯星期二前往哪个国家？", 5, "", "", api_name="/ask")
    assert r["abstained"] is False and r["lang"] == "zh"
    assert "危地马拉" in r["text"] and "[1]" in r["text"]
    c = r["citations"][0]
    assert c["number"] == 1 and c["title"] == SEED_TITLE and c["url"] == SEED_URL
    assert c["published"].startswith("2024-05-08")
    assert c["sentence"] in r["text"] and c["sentence"] in c["passage"]
    assert "passages" not in r


def test_ask_second_seed_question(client):
    r = client.predict("国务院星期一对谁实施了签证限制？", 3, "", "", api_name="/ask")
    assert not r["abstained"]
    assert "哥伦比亚交通公司" in r["text"] and "[1]" in r["text"]
    assert {c["title"] for c in r["citations"]} == {SEED_TITLE}


def test_ask_english_seed_question(client):
    r = client.predict("Where did Blinken travel on Tuesday?", 5, "", "", api_name="/ask")
    assert not r["abstained"], r["text"]
    assert "[1]" in r["text"] and "危地马拉" in r["citations"][0]["sentence"]
    assert r["citations"][0]["title"] == SEED_TITLE


def test_date_range_filters(client):
    inside = client.predict("布林肯星期二前往哪个国家？", 5, "2024-05-01", "2024-05-31", api_name="/ask")
    assert not inside["abstained"] and inside["citations"][0]["title"] == SEED_TITLE
    after = client.predict("布林肯星期二前往哪个国家？", 5, "2025-01-01", "", api_name="/ask")
    assert after["abstained"] and after["citations"] == []


def test_bad_input_gives_a_clear_error(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="YYYY-MM-DD"):
        client.predict("布林肯星期二前往哪个国家？", 5, "2024-13-01", "", api_name="/ask")
    with pytest.raises(AppError, match="from 1 to 10"):
        client.predict("布林肯星期二前往哪个国家？", 50, "", "", api_name="/ask")
    with pytest.raises(AppError, match="empty"):
        client.predict("   ", 5, "", "", api_name="/ask")


def test_parallel_requests(client):
    jobs = [client.submit("国务院星期一对谁实施了签证限制？", 5, "", "", api_name="/ask") for _ in range(6)]
    results = [j.result(timeout=60) for j in jobs]
    assert all(not r["abstained"] and r["citations"][0]["title"] == SEED_TITLE for r in results)
