"""The API of a live server process (tests/helpers/serve_worker.py runs it as `rag serve` does), through the real
`openai` client and httpx: zh and en questions, a follow-up, streaming, a decline, a bad token, a bad body."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest
from conftest import HELPERS

openai = pytest.importorskip("openai", reason="the OpenAI client comes with the test extra")
KEY = "test-key-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import SEEDS, FakeEmbedder

    from rag.index import index_paths

    root = tmp_path_factory.mktemp("api") / "index"
    index_paths([SEEDS], root, FakeEmbedder(), progress=False)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HELPERS / "serve_worker.py"), str(root), str(port),
                             "--uploads", "off", "--api-key", KEY], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while not line.startswith("ready") and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=60)


def test_a_chinese_and_an_english_question_get_cited_answers(client):
    r = client.chat.completions.create(model="rag-news", messages=[{"role": "user", "content": "布林肯星期二前往哪个国家？"}])
    msg = r.choices[0].message
    assert "危地马拉" in msg.content and "[1]" in msg.content
    assert msg.annotations and msg.annotations[0].type == "url_citation"
    assert msg.annotations[0].url_citation.url.startswith("https://www.voachinese.com/")
    extra = msg.model_extra
    assert extra["citations"][0]["sentence"] in msg.content and extra["declined"] is False
    en = client.chat.completions.create(model="anything",
                                        messages=[{"role": "user", "content": "Which country did Blinken travel to?"}])
    assert en.model == "anything" and en.choices[0].message.content


def test_a_follow_up_through_messages(client):
    first = client.chat.completions.create(model="rag-news",
                                           messages=[{"role": "user", "content": "布林肯星期二前往哪个国家？"}])
    r = client.chat.completions.create(model="rag-news", messages=[
        {"role": "user", "content": "布林肯星期二前往哪个国家？"},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "他在那里见了谁？"}])
    assert "阿雷瓦洛" in r.choices[0].message.content


def test_streaming_with_the_client(client):
    stream = client.chat.completions.create(model="rag-news", stream=True,
                                            messages=[{"role": "user", "content": "布林肯星期二前往哪个国家？"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "危地马拉" in text and chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.model_extra["citations"]


def test_a_decline_is_a_normal_message(client):
    r = client.chat.completions.create(model="rag-news", messages=[{"role": "user", "content": "你是谁？"}])
    assert r.choices[0].message.model_extra["declined"] is True and r.choices[0].message.content


def test_a_bad_token_and_a_bad_body(server):
    bad = openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    r = httpx.post(f"{server}/v1/chat/completions", content=b"{oops", headers={
        "Authorization": f"Bearer {KEY}", "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request_error"
    assert "Traceback" not in r.text and "/tmp" not in r.text
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"
    assert "/v1/chat/completions" in httpx.get(f"{server}/openapi.json").json()["paths"]
    assert httpx.get(f"{server}/").status_code == 200  # the UI is mounted beside the API
