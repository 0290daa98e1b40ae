"""Shared fixtures: a fake deterministic embedder and paths to the shipped data."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
HELPERS = TESTS / "helpers"
SEEDS = ROOT / "seeds"
SHARED_DATA = ROOT.parent / "shared" / "data"
# the dictionary's parse cache (rag.lang.dictionary.cache_dir) goes to a temp folder, not the user's ~/.cache
os.environ.setdefault("RAG_CACHE_DIR", tempfile.mkdtemp(prefix="rag-test-cache-"))

import rag.index.build  # noqa: E402

# Indexes built in-process have no second embedder unless a test asks for one (tests/test_second.py): e5 would
# embed every test corpus at ~4 chunks/s and mix its own cosines into rankings the fake embedder's tests assert.
rag.index.build.DEFAULT_SECOND = None


class FakeEmbedder:
    """Hashes character unigrams and bigrams into a small normalised vector: fast, deterministic, lexical."""

    def __init__(self, dim: int = 64, name: str = "fake-64"):
        self.name, self.dim = name, dim
        self.calls = 0  # texts embedded so far, to check that re-indexing embeds nothing

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        t = text.lower()
        grams = list(t) + [t[i : i + 2] for i in range(len(t) - 1)]
        for g in grams:
            if g.strip():
                h = int.from_bytes(hashlib.blake2b(g.encode("utf-8", "surrogatepass"), digest_size=4).digest(), "little")
                v[h % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(self, texts):
        self.calls += len(texts)
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_queries(self, texts):
        return self.embed_documents(texts)


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture
def seed_file():
    return next(SEEDS.glob("*.txt"))


@pytest.fixture
def seed_index(tmp_path, fake_embedder):
    """An index of seeds/ built with the test's `fake_embedder` (the same instance), at tmp_path/'seed-index'."""
    from rag.index import index_paths

    root = tmp_path / "seed-index"
    summary = index_paths([SEEDS], root, fake_embedder, progress=False)
    assert summary.added == 1 and summary.total_chunks > 0, summary
    return root


# Two articles whose text opens with a dated header (rag.ingest.articles.dated_from_text): the first's file gives no
# date, so it takes the header's, marked date_from_text; the second's gives its own, which wins, unmarked.
DATED_ROWS = [
    {"title": "人民币汇率中间价", "url": "https://news.example/rate", "published": "",
     "text": "2023-07-28 16:40，正文：人民币对美元汇率中间价报7.1，较前一交易日调升10个基点。"},
    {"title": "大熊猫回国", "url": "https://news.example/panda", "published": "2023-11-09T01:00:00Z",
     "text": "2023-07-28 16:40，正文：旅美大熊猫乘坐专机抵达成都，将在基地隔离检疫。"},
]
DATED_QUESTIONS = {"https://news.example/rate": "人民币对美元汇率中间价报多少？",
                   "https://news.example/panda": "旅美大熊猫乘坐专机抵达哪里？"}


def write_dated(path: Path) -> Path:
    """DATED_ROWS as a .jsonl file at `path`."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in DATED_ROWS), encoding="utf-8")
    return path


@pytest.fixture
def dated_index(tmp_path, fake_embedder):
    """A local index of DATED_ROWS' file built with the test's `fake_embedder`, at tmp_path/'dated-index'."""
    from rag.index import index_paths

    root = tmp_path / "dated-index"
    summary = index_paths([write_dated(tmp_path / "dated.jsonl")], root, fake_embedder, progress=False)
    assert summary.added == 2 and summary.failed == 0, summary
    return root


@pytest.fixture(scope="session")
def tiny_st_model(tmp_path_factory):
    """A tiny random BERT + mean-pooling sentence-transformers model directory, built offline (tests/tiny_model.py)."""
    pytest.importorskip("sentence_transformers", reason="the st extra is not installed (pip install -e '.[st]')")
    from tiny_model import build_tiny_st_model

    return build_tiny_st_model(tmp_path_factory.mktemp("st-model") / "tiny-bert")


def pytest_collection_modifyitems(items):
    """Tests under tests/robustness/ (crash, corruption, hostile input, concurrency, load) carry the robustness
    marker: `pytest -m "not robustness"` runs the stage tests alone."""
    for item in items:
        if HELPERS.parent / "robustness" in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.robustness)

