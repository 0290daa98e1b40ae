"""`--store` on the command line (and $RAG_STORE): rag index / ask / status / remove / eval over a milvus-lite store;
the maintenance commands of an index folder refuse it by name."""
from __future__ import annotations

import json

import pytest
from conftest import SEEDS, FakeEmbedder

pytest.importorskip("pymilvus", reason="the milvus extra is not installed (pip install -e '.[milvus]')")

from rag.cli import main  # noqa: E402
from rag.models import registry  # noqa: E402

QUESTION = "布林肯星期二前往哪个国家？"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def store(tmp_path, monkeypatch, capsys):
    """The seeds indexed into a milvus-lite store by `rag index --store`, with the fake embedder."""
    import rag.models.registry

    real = rag.models.registry.get_embedder
    monkeypatch.setattr(rag.models.registry, "get_embedder",
                        lambda spec="use", **kw: FakeEmbedder() if spec == "use" else real(spec, **kw))
    monkeypatch.setitem(registry.SHARED, "fake-64", FakeEmbedder())
    spec = f"milvus:{tmp_path / 'news.db'}"
    code, out, err = run(capsys, "index", SEEDS, "--store", spec, "-q")
    assert code == 0, err
    assert "articles: 1 added" in out and "index holds 1 articles" in out
    return spec


def test_index_ask_status_remove(store, capsys):
    code, out, err = run(capsys, "index", SEEDS, "--store", store, "-q")
    assert code == 0 and "1 unchanged" in out and "0 written" in out, err
    code, out, err = run(capsys, "status", "--store", store)
    assert code == 0, err
    stats = json.loads(out)
    assert (stats["articles"], stats["embedder"], stats["generation"]) == (1, "fake-64", "v000001")
    code, out, err = run(capsys, "ask", QUESTION, "--store", store, "--json", "--reader", "none")
    assert code == 0, err
    data = json.loads(out)
    assert data["citations"] and "危地马拉" in " ".join(c["sentence"] for c in data["citations"])
    aid = data["citations"][0]["article_id"]
    code, out, err = run(capsys, "remove", aid, "--store", store)
    assert code == 0 and out.startswith(f"removed {aid}") and "index holds 0 articles (v000002)" in out, err


def test_rag_store_environment(store, capsys, monkeypatch):
    monkeypatch.setenv("RAG_STORE", store)
    monkeypatch.setenv("RAG_INDEX", "/nonexistent/index")
    code, out, err = run(capsys, "status")
    assert code == 0, err
    assert json.loads(out)["store"] == store


def test_eval_over_a_milvus_store(store, capsys, tmp_path):
    code, _, err = run(capsys, "eval", SEEDS.parent / "eval" / "sets" / "seed.jsonl", "--store", store, "--limit",
                         "3", "--out", tmp_path / "run", "--no-progress", "--reader", "none")
    assert code == 0, err
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert report["meta"]["index"] == store and report["meta"]["articles"] == 1


@pytest.mark.parametrize("command", ["compact", "repair"])
def test_index_folder_commands_refuse_a_milvus_store(store, capsys, command):
    code, _, err = run(capsys, command, "--store", store)
    assert code == 2 and f"`rag {command}` works on an index folder" in err


def test_a_bad_spec_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "status", "--store", f"milvus:{tmp_path / 'news'}")
    assert code == 2 and "ending in .db" in err
    code, _, err = run(capsys, "status", "--store", f"milvus:{tmp_path / 'empty.db'}")
    assert code == 2 and "no index in this Milvus store yet" in err and "rag index PATH --store" in err


def test_the_http_api_over_a_milvus_store(store):
    """What `rag serve --store MILVUS` serves: the API's routes, the spec kept whole (an http:// one too)."""
    from fastapi.testclient import TestClient

    from rag.api import build_api

    c = TestClient(build_api(store, api_key=""))
    assert c.get("/healthz").json()["articles"] == 1
    r = c.post("/v1/ask", json={"question": QUESTION, "reader": "none"})
    assert r.status_code == 200 and r.json()["citations"], r.text
    aid = r.json()["citations"][0]["article_id"]
    page = c.get("/v1/articles").json()
    assert page["total"] == 1 and page["articles"][0]["id"] == aid
    assert "危地马拉" in c.get(f"/v1/articles/{aid}").json()["text"]
