"""Near-duplicate stories (rag.index.dedup): signatures, grouping at index time, adds and removes, citations."""
from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TESTS, FakeEmbedder

from rag.answer import PAIRS, AnswerConfig, Thresholds
from rag.index import Index, compact_index, dedup, index_articles, remove_articles
from rag.index.dedup import STORIES_FILE, Stories
from rag.pipeline import ask
from rag.retrieve import searcher
from rag.types import Article

STORY = ("美国国务卿布林肯星期二抵达危地马拉城，开始对中美洲为期两天的访问，讨论地区移民问题。"
         "布林肯在国家宫会见了阿雷瓦洛总统和外交部长马丁内斯，双方就打击人口走私交换了意见。"
         "双方签署了一项关于难民融入的合作协议，美国将为此提供两千万美元的援助。"
         "布林肯说，美国愿意同危地马拉一道，为想要移民的人创造合法途径。"
         "阿雷瓦洛表示，危地马拉将加强边境管理，同时保护移民的基本权利。"
         "这是布林肯今年第二次访问拉丁美洲，下一站他将前往墨西哥城。")
QUESTION = "布林肯和阿雷瓦洛签署了什么协议？"
ANSWER_SENTENCE = "双方签署了一项关于难民融入的合作协议，美国将为此提供两千万美元的援助。"
BOILER = ("免责声明：本文内容仅供参考，不构成任何投资建议，转载请注明出处。本网站所提供的信息仅供参考之用，"
          "并不代表本网赞同其观点，也不代表本网对其真实性负责。如有疑问请联系编辑部。")


def _art(key: str, text: str, published: str = "", url: str | None = None, title: str = "") -> Article:
    return Article(title or text[:12], text, f"https://news.example/{key}" if url is None else url, published,
                   "test")


ORIGINAL = _art("wire", STORY, "2024-05-07T12:00:00Z", title="布林肯访问危地马拉")
# a republished copy: its own dateline and footer, a word changed, one sentence left out
REPRINT = _art("reprint", "新华社危地马拉城5月7日电 " + STORY.replace("人口走私", "人口贩运").replace(
    "这是布林肯今年第二次访问拉丁美洲，下一站他将前往墨西哥城。", "") + "（编辑：张三）", "2024-05-08T03:00:00Z",
    title="布林肯抵达危地马拉")
# a corrected version published later still
CORRECTED = _art("corrected", STORY.replace("国家宫", "总统府") + "本文已更正会见地点。", "2024-05-09T00:00:00Z",
                 title="（更正）布林肯访问危地马拉")
# two different stories of one outlet, sharing its long footer
MARKET = _art("market", "上海证券交易所的股票指数今天上涨了三个百分点，成交额突破一万亿元。分析人士认为，上涨的原因是央行宣布"
                        "下调存款准备金率零点二五个百分点，市场流动性预期改善，券商和银行板块领涨。" + BOILER,
              "2024-04-02T09:30:00Z")
WEATHER = _art("weather", "北京今天全天小雨，最高气温只有十二度，比常年同期偏低五度。气象台预计周末冷空气过后将转晴，"
                          "下周一起气温逐步回升，提醒市民注意添衣保暖，出行携带雨具。" + BOILER, "2024-03-01T08:00:00Z")
SHORT = _art("short", "图为现场。", "2024-01-01")


@pytest.fixture
def emb():
    return FakeEmbedder()


def _index(root: Path, articles, emb, **kw):
    s = index_articles(articles, root, emb, progress=False, **kw)
    assert s.failed == 0, s
    return s


def _story(root: Path, article: Article) -> tuple[str, ...]:
    idx = Index.open(root)
    try:
        return idx.story(article.id)
    finally:
        idx.close()


# ---------------------------------------------------------------- signatures and pairs


def test_signature_is_pinned_and_short_texts_have_none():
    """The stored signatures must stay comparable: datasketch's scheme and permutations are named, not defaulted."""
    sig = dedup.signature(STORY)
    assert sig.dtype == np.uint32 and sig.shape == (dedup.NUM_PERM,)
    assert sig[:4].tolist() == PINNED
    assert dedup.signature("图为现场。") is None  # fewer than MIN_SHINGLES shingles
    assert np.array_equal(dedup.from_blobs([dedup.to_blob(sig)])[0], sig)


PINNED = [24288237, 42699408, 48156819, 27104407]  # datasketch 2.0.0, scheme affine32, seed 1


def _sim(a: Article, b: Article) -> float:
    s = np.stack([dedup.signature(a.text), dedup.signature(b.text)])
    return float(dedup.similarity(s, np.array([[0, 1]]))[0])


def test_copies_are_similar_and_a_shared_footer_is_not():
    assert _sim(ORIGINAL, REPRINT) >= dedup.THRESHOLD
    assert _sim(ORIGINAL, CORRECTED) >= dedup.THRESHOLD
    assert _sim(MARKET, WEATHER) < dedup.THRESHOLD
    assert dedup.normalise("Ａb，C 1。") == "abc1"


def test_regroup_from_scratch_and_incrementally_agree():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**32, size=(6, dedup.NUM_PERM), dtype=np.uint64).astype(np.uint32)
    sigs = np.concatenate([base, base[:2]])  # rows 6, 7 copy rows 0, 1
    sigs[7, :30] = 1  # row 7: ~77% like row 1
    ids = [f"a{i}" for i in range(8)]
    meta = lambda wanted: {a: (f"2024-01-0{int(a[1:]) % 9 + 1}", "", "") for a in wanted}
    full = dedup.regroup(None, (), ids, sigs, meta)
    assert sorted(full.groups) == [("a0", "a6"), ("a1", "a7")]
    step = dedup.regroup(Stories(), ids[6:], ids, sigs, meta)  # rows 6, 7 added to an index of 0-5
    assert sorted(step.groups) == sorted(full.groups)
    gone = dedup.regroup(full, ["a0"], ids[1:], sigs[1:], meta)  # a0 removed: a6 is alone
    assert gone.groups == (("a1", "a7"),)


# ---------------------------------------------------------------- the index


def test_republished_copies_are_one_story_named_by_the_earliest(tmp_path, emb):
    root = tmp_path / "idx"
    _index(root, [REPRINT, MARKET, ORIGINAL, WEATHER, SHORT], emb)
    idx = Index.open(root)
    try:
        assert idx.story(ORIGINAL.id) == (ORIGINAL.id, REPRINT.id) == idx.story(REPRINT.id)
        assert idx.story(MARKET.id) == idx.story(WEATHER.id) == idx.story(SHORT.id) == ()
        copies = idx.story_copies([REPRINT.id, MARKET.id])
        assert list(copies) == [REPRINT.id]
        assert [c.article_id for c in copies[REPRINT.id]] == [ORIGINAL.id, REPRINT.id]
        assert copies[REPRINT.id][0].title == ORIGINAL.title and copies[REPRINT.id][0].published.startswith("2024-05-07")
        assert idx.stats()["stories"] == 1 and idx.stats()["story_articles"] == 2
        by_article = {p.article_id: p.story for p in idx.passages(idx.chunk_ids)}
        assert by_article[REPRINT.id] == by_article[ORIGINAL.id] == ORIGINAL.id and by_article[MARKET.id] == ""
        data = json.loads((idx.gen_dir / STORIES_FILE).read_text(encoding="utf-8"))
        assert data["groups"] == [[ORIGINAL.id, REPRINT.id]] and data["threshold"] == dedup.THRESHOLD
    finally:
        idx.close()


def test_a_copy_added_later_joins_and_removing_the_representative_promotes_another(tmp_path, emb):
    root = tmp_path / "idx"
    _index(root, [ORIGINAL, MARKET], emb)
    assert _story(root, ORIGINAL) == ()
    _index(root, [CORRECTED], emb, source_name="memory:later")
    _index(root, [REPRINT], emb, source_name="memory:later-still")
    assert _story(root, REPRINT) == (ORIGINAL.id, REPRINT.id, CORRECTED.id)
    removed, _ = remove_articles(root, [ORIGINAL.id])
    assert removed == [ORIGINAL.id]
    assert _story(root, CORRECTED) == (REPRINT.id, CORRECTED.id)  # the earliest left
    assert _story(root, ORIGINAL) == ()
    remove_articles(root, [REPRINT.id])
    assert _story(root, CORRECTED) == ()
    assert json.loads((Index.open(root).gen_dir / STORIES_FILE).read_text())["groups"] == []


def test_an_undated_copy_gives_way_to_a_dated_one_and_an_edit_splits_a_story(tmp_path, emb):
    root = tmp_path / "idx"
    undated = _art("undated", "（转载）" + STORY, "", url="")
    _index(root, [undated, REPRINT], emb)
    assert _story(root, undated) == (REPRINT.id, undated.id)
    # the reprint is edited into another story (same URL, so the same id): the story splits
    edited = _art("reprint", WEATHER.text, "2024-05-08T03:00:00Z", title=REPRINT.title)
    assert edited.id == REPRINT.id
    _index(root, [edited], emb, source_name="memory:edit")
    assert _story(root, undated) == ()


def test_stories_survive_merges_and_compaction(tmp_path, emb):
    root = tmp_path / "idx"
    for n, a in enumerate([ORIGINAL, MARKET, REPRINT, WEATHER, CORRECTED]):
        _index(root, [a], emb, source_name=f"memory:{n}")
    before = _story(root, CORRECTED)
    assert before == (ORIGINAL.id, REPRINT.id, CORRECTED.id)
    compact_index(root)
    idx = Index.open(root)
    try:
        assert len(idx.views) == 1 and idx.story(CORRECTED.id) == before
        assert len(idx.views[0].seg.minhash()[0]) == 5  # the signatures were carried over
    finally:
        idx.close()


def test_an_index_from_before_stories_opens_and_is_grouped_by_its_next_write(tmp_path, emb):
    root = tmp_path / "v2"
    shutil.copytree(TESTS / "data" / "index-v2", root)
    idx = Index.open(root)
    try:
        assert idx.legacy and idx.stories is None and idx.story(idx.article_ids()[0]) == ()
        assert idx.stats()["stories"] == 0 and idx.story_copies(idx.article_ids()) == {}
    finally:
        idx.close()
    _index(root, [ORIGINAL, REPRINT], emb, source_name="memory:new")  # upgrades the format, then adds
    idx = Index.open(root)
    try:
        assert not idx.legacy and idx.stories is not None
        assert idx.story(REPRINT.id) == (ORIGINAL.id, REPRINT.id)
        assert all(v.seg.has_minhash() for v in idx.views)
    finally:
        idx.close()


def test_a_damaged_stories_file_is_named(tmp_path, emb):
    from rag.errors import CorruptIndexError

    root = tmp_path / "idx"
    _index(root, [ORIGINAL, REPRINT], emb)
    idx = Index.open(root)
    path = idx.gen_dir / STORIES_FILE
    idx.close()
    path.write_text('{"version": 1, "groups": [["a"]]}', encoding="utf-8")
    with pytest.raises(CorruptIndexError, match="stories"):
        Index.open(root)


# ---------------------------------------------------------------- answers


def test_an_answer_cites_one_article_per_story_with_the_count(tmp_path, emb):
    root = tmp_path / "idx"
    _index(root, [REPRINT, CORRECTED, ORIGINAL, MARKET, WEATHER], emb)
    searcher(root, emb)  # ask(index=root) uses this embedder
    always = AnswerConfig(extra_ratio=0.0, **{p.replace("-", "_"): Thresholds(0.0, (0.0, 0.0), 0.0, -1e9)
                                              for p in PAIRS})  # every sentence qualifies, nothing is declined
    ans = ask(QUESTION, index=root, k=5, config=always)
    assert not ans.abstained and ans.citations, ans
    story = {ORIGINAL.id, REPRINT.id, CORRECTED.id}
    texts = {a.id: a.text for a in (ORIGINAL, REPRINT, CORRECTED)}
    cited = [c for c in ans.citations if c.article_id in story]
    assert cited
    for c in cited:
        # the representative when it holds the sentence, else the copy quoted (a corrected sentence stays corrected)
        assert c.article_id == ORIGINAL.id or c.sentence not in ORIGINAL.text
        assert texts[c.article_id][c.start : c.end] == c.sentence and c.story_size == 3
        carriers = {a for a in story - {c.article_id} if dedup.normalise(c.sentence) in dedup.normalise(texts[a])}
        assert c.also_in == len(c.also) == len(carriers) and {x.article_id for x in c.also} == carriers
    plain = [dedup.normalise(c.sentence) for c in cited]  # no sentence of the story twice, nor a copy's version of it
    assert not any(difflib.SequenceMatcher(None, a, b).ratio() >= 0.8 for i, a in enumerate(plain) for b in plain[i + 1:])
    first = next(c for c in cited if "合作协议" in c.sentence)
    assert first.also_in == 2 and [x.article_id for x in first.also] == [REPRINT.id, CORRECTED.id]
    d = ans.to_dict()
    assert d["citations"][ans.citations.index(first)]["also"][1]["title"] == CORRECTED.title


def test_a_sentence_only_a_copy_holds_cites_that_copy_and_an_identical_one_is_not_repeated():
    from rag.answer import Candidate, build_answer
    from rag.types import Passage, StoryCopy

    def cand(a: Article, sentence: str) -> Candidate:
        i = a.text.index(sentence)
        p = Passage(1, a.id, a.title, a.text, 0, len(a.text), 1.0, a.url, a.published, a.source)
        return Candidate(p, 0, i, i + len(sentence), sentence, 0.9, 0.9)

    copies = tuple(StoryCopy(a.id, a.title, a.url, a.published, a.source) for a in (ORIGINAL, REPRINT, CORRECTED))
    stories = {a.id: copies for a in (ORIGINAL, REPRINT, CORRECTED)}
    texts = {a.id: a.text for a in (ORIGINAL, REPRINT, CORRECTED)}
    own = "新华社危地马拉城5月7日电"  # only the reprint has its dateline
    shared = ANSWER_SENTENCE
    ans = build_answer("q", [cand(REPRINT, own), cand(REPRINT, shared), cand(CORRECTED, shared)], [], "zh", False,
                       stories=stories, texts=texts)
    assert [(c.number, c.article_id) for c in ans.citations] == [(1, REPRINT.id), (2, ORIGINAL.id)]
    assert ans.citations[0].also_in == 0 and ans.citations[1].also_in == 2
    assert ans.text == f"{own} [1]{shared} [2]"
    assert ORIGINAL.text[ans.citations[1].start : ans.citations[1].end] == shared

