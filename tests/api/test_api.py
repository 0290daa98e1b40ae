"""The HTTP API (rag.api) in-process: OpenAI chat completions with citations, ask/retrieve, the library, errors."""
from __future__ import annotations

import json

import pytest
from conftest import DATED_QUESTIONS
from fastapi.testclient import TestClient

from rag.api import MAX_BODY, build_api
from rag.models import registry

QUESTION = "布林肯星期二前往哪个国家？"


@pytest.fixture
def client(seed_index, fake_embedder, monkeypatch):
    monkeypatch.setitem(registry.SHARED, "fake-64", fake_embedder)  # what the index's manifest names
    return TestClient(build_api(seed_index, api_key=""))


def chat(client, *messages, **kw):
    body = {"model": "rag-news", "messages": [{"role": r, "content": c} for r, c in messages], **kw}
    return client.post("/v1/chat/completions", json=body)


def test_chat_answers_with_markers_annotations_and_citations(client):
    r = chat(client, ("system", "You are helpful."), ("user", QUESTION))
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "rag-news"
    msg = body["choices"][0]["message"]
    assert msg["role"] == "assistant" and "危地马拉" in msg["content"] and "[1]" in msg["content"]
    cit = msg["citations"][0]
    assert cit["number"] == 1 and cit["sentence"] in msg["content"] and cit["url"].startswith("https://")
    ann = msg["annotations"][0]
    assert ann["type"] == "url_citation" and ann["url_citation"]["url"] == cit["url"]
    span = msg["content"][ann["url_citation"]["start_index"]:ann["url_citation"]["end_index"]]
    assert span.startswith(cit["sentence"]) and span.endswith("[1]")


def test_a_follow_up_through_messages_uses_the_history(client):
    first = chat(client, ("user", QUESTION)).json()["choices"][0]["message"]["content"]
    r = chat(client, ("user", QUESTION), ("assistant", first), ("user", "他在那里见了谁？"))
    assert "阿雷瓦洛" in r.json()["choices"][0]["message"]["content"]


def test_a_question_the_articles_cannot_answer_is_a_normal_decline(client):
    msg = chat(client, ("user", "'; DROP TABLE articles; --")).json()["choices"][0]["message"]
    assert msg["declined"] is True and msg["citations"] == [] and msg["annotations"] == []
    assert "没有找到" in msg["content"] or "could not find" in msg["content"]


def test_streaming_sends_the_answer_then_the_citations_then_done(client):
    with client.stream("POST", "/v1/chat/completions",
                       json={"model": "x", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    whole = chat(client, ("user", QUESTION)).json()["choices"][0]["message"]
    assert text == whole["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"][0]["delta"]["citations"] == whole["citations"]


@pytest.mark.parametrize("body,status,param", [
    ({"messages": []}, 422, "messages"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 422, "messages.0.role"),
    ({"messages": [{"role": "user", "content": QUESTION}], "k": 500}, 422, "k"),
    ({"model": "x"}, 422, "messages"),
])
def test_bad_chat_bodies_get_a_json_error_naming_the_field(client, body, status, param):
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == status and r.json()["error"]["param"] == param


def test_a_body_that_is_not_json_or_too_large_is_refused(client):
    r = client.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()
    r = client.post("/v1/ask", content=b"x" * (MAX_BODY + 1), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "request body over" in r.json()["error"]["message"]


def test_ask_and_retrieve_return_the_records(client):
    a = client.post("/v1/ask", json={"question": QUESTION, "k": 3, "reader": "none"}).json()
    assert a["abstained"] is False and a["citations"][0]["sentence"] in a["passages"][0]["text"] + "".join(
        p["text"] for p in a["passages"])
    p = client.post("/v1/retrieve", json={"question": QUESTION, "k": 2}).json()["passages"]
    assert len(p) == 2 and {"chunk_id", "article_id", "title", "text", "score"} <= set(p[0])
    r = client.post("/v1/ask", json={"question": QUESTION, "date_from": "2024-06-01", "date_to": "2024-05-01"})
    assert r.status_code == 400  # an empty range is the caller's mistake
    r = client.post("/v1/ask", json={"question": QUESTION, "history": [["only one"]]})
    assert r.status_code == 422


def test_the_library_lists_filters_and_opens_articles(client):
    page = client.get("/v1/articles", params={"limit": 5}).json()
    assert page["total"] == 1 and page["articles"][0]["title"].startswith("布林肯")
    aid = page["articles"][0]["id"]
    assert client.get("/v1/articles", params={"q": "不存在的标题"}).json()["total"] == 0
    assert client.get("/v1/articles", params={"source": "voachinese", "date_from": "2024-05-01"}).json()["total"] == 1
    art = client.get(f"/v1/articles/{aid}").json()
    assert art["id"] == aid and "危地马拉" in art["text"] and "<" not in art["text"]
    r = client.get("/v1/articles/nope")
    assert r.status_code == 404 and r.json()["error"]["param"] == "article_id"


def test_a_date_read_from_the_text_is_marked_in_citations_and_the_article(dated_index, fake_embedder, monkeypatch):
    monkeypatch.setitem(registry.SHARED, "fake-64", fake_embedder)
    c = TestClient(build_api(dated_index, api_key=""))
    for url, q in DATED_QUESTIONS.items():
        derived = url.endswith("/rate")
        a = c.post("/v1/ask", json={"question": q, "reader": "none"}).json()
        cit = a["citations"][0]
        assert (cit["url"], cit["date_from_text"]) == (url, derived)
        assert [p["date_from_text"] for p in a["passages"] if p["url"] == url] == [derived]
        msg = chat(c, ("user", q)).json()["choices"][0]["message"]
        assert msg["citations"][0]["url"] == url and msg["citations"][0]["date_from_text"] is derived
        art = c.get(f"/v1/articles/{cit['article_id']}").json()
        assert (art["published"], art["date_from_text"]) == (cit["published"], derived)
    assert cit["published"] == "2023-11-09T01:00:00Z"


def test_models_health_and_openapi(client):
    assert client.get("/v1/models").json()["data"][0]["id"] == "rag-news"
    assert client.get("/healthz").json() == {"status": "ok", "articles": 1, "chunks": client.get("/healthz").json()[
        "chunks"]}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/chat/completions", "/v1/ask", "/v1/retrieve", "/v1/articles", "/v1/articles/{article_id}",
            "/v1/models", "/healthz"} <= set(paths)


def test_a_bearer_token_is_required_when_set(seed_index, fake_embedder, monkeypatch):
    monkeypatch.setitem(registry.SHARED, "fake-64", fake_embedder)
    c = TestClient(build_api(seed_index, api_key="s3cret"))
    assert c.get("/v1/models").status_code == 401
    assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).json()["error"]["type"] == \
        "authentication_error"
    assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/healthz").status_code == 200  # liveness stays open


def test_a_damaged_or_missing_index_is_a_503_without_paths(tmp_path, seed_index, fake_embedder, monkeypatch):
    monkeypatch.setitem(registry.SHARED, "fake-64", fake_embedder)
    missing = TestClient(build_api(tmp_path / "no-index", api_key=""))
    r = missing.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 503 and str(tmp_path) not in r.text and "Traceback" not in r.text
    assert "rag index --rebuild" in r.json()["error"]["message"]
    assert missing.get("/healthz").status_code == 503


def test_docs_api_md_is_generated_from_the_current_schema(tmp_path):
    from conftest import ROOT

    from rag.api.reference import render

    assert (ROOT / "docs" / "api.md").read_text(encoding="utf-8") == render(build_api(tmp_path).openapi()), \
        "regenerate it: python -m rag.api.reference > docs/api.md"


def test_the_server_answers_workers_questions_at_once_and_the_rest_wait_their_turn(client, monkeypatch):
    import threading

    from rag import pipeline

    monkeypatch.setenv("RAG_WORKERS", "3")
    assert pipeline.workers() == 3
    monkeypatch.setenv("RAG_WORKERS", "x")
    assert pipeline.workers() >= 1  # a bad value: one per core
    gate = pipeline.Gate(1)
    monkeypatch.setattr(pipeline, "_gate", gate)
    assert pipeline.answer_slot() is gate
    gate.__enter__()  # the one slot is taken: a question waits in line
    got = []
    t = threading.Thread(target=lambda: got.append(client.post("/v1/ask", json={"question": QUESTION})))
    t.start()
    t.join(1.0)
    assert t.is_alive() and not got
    gate.__exit__(None, None, None)
    t.join(30)
    assert got and got[0].status_code == 200 and "危地马拉" in got[0].json()["text"]


def test_the_gate_serves_waiters_in_arrival_order_and_a_leaver_cannot_overtake():
    import threading
    import time

    from rag.pipeline import Gate

    gate, order, started = Gate(1), [], []
    gate.__enter__()

    def wait(i):
        started.append(i)
        with gate:
            order.append(i)

    threads = []
    for i in range(5):
        threads.append(threading.Thread(target=wait, args=(i,)))
        threads[-1].start()
        while len(started) <= i:  # each one queues before the next starts
            time.sleep(0.001)
        time.sleep(0.02)
    gate.__exit__(None, None, None)
    with gate:  # the holder leaves and comes straight back: it queues behind the five
        order.append("again")
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4, "again"]
    with pytest.raises(ValueError, match="at least one slot"):
        Gate(0)
