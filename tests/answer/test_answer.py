"""The answering layer: `rag.pipeline` (retrieve, ask, contextualise), `rag.answer` and `rag.retrieve.Fusion`."""
from __future__ import annotations

import json
import math
from dataclasses import fields

import numpy as np
import pytest
from conftest import FakeEmbedder
from news import ARTICLES, BLINKEN, OHIO, PANDA, ROCKET, STOCKS, WEATHER, FlatEmbedder  # noqa: E402

from rag import cli
from rag.answer import (
    CROSS_NOTE,
    NOT_FOUND,
    PAIRS,
    AnswerConfig,
    Candidate,
    Thresholds,
    build_answer,
    candidates,
    confidence,
    select,
)
from rag.answer.compose import date_note
from rag.index import Index, index_articles
from rag.ingest import split_sentences
from rag.models import registry
from rag.pipeline import ANSWER_CHARS, EARLIER_CHARS, MAX_QUESTION_CHARS, ask, contextualise, gather, retrieve
from rag.retrieve import Fusion, Searcher, searcher
from rag.types import Article, Citation, Passage, StoryCopy

FIRST_QUESTION = "布林肯星期二前往哪个国家？"
FIRST_ANSWER = "美国国务卿布林肯星期二前往危地马拉，讨论地区移民问题。"
MODES = ("weighted", "rrf", "lexical", "dense")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """An index of ARTICLES built with a FakeEmbedder, registered as the cached Searcher for its path."""
    path = tmp_path_factory.mktemp("answer") / "idx"
    emb = FakeEmbedder()
    summary = index_articles(ARTICLES, path, emb, progress=False)
    assert summary.added == len(ARTICLES) and summary.failed == 0
    assert searcher(path, emb).embedder is emb  # ask(index=path) now uses this embedder
    return path


@pytest.fixture(scope="module")
def idx(root):
    index = Index.open(root)
    yield index
    index.close()


def passage(article: Article, start: int = 0, end: int | None = None, score: float = 1.0, chunk_id: int = 0) -> Passage:
    end = len(article.text) if end is None else end
    return Passage(chunk_id, article.id, article.title, article.text[start:end], start, end, score, article.url,
                   article.published, article.source)


def cand(article: Article, sentence: str, score: float, rank: int = 0, order: float | None = None) -> Candidate:
    start = article.text.index(sentence)
    return Candidate(passage(article), rank, start, start + len(sentence), sentence, score,
                     score if order is None else order)


# ---------------------------------------------------------------- ask: citations


@pytest.mark.parametrize("question,config", [
    (FIRST_QUESTION, AnswerConfig()),
    ("熊猫将在哪里隔离检疫？", AnswerConfig()),
    ("What was the turnout in Ohio?", AnswerConfig()),
    ("上海股票指数今天上涨了多少？", AnswerConfig(extra_ratio=0.0)),  # every sentence qualifies: three citations
])
def test_citations_quote_the_article_exactly(root, idx, question, config):
    ans = ask(question, index=root, config=config)
    assert not ans.abstained and ans.citations
    assert len(ans.citations) <= config.max_sentences
    if config.extra_ratio == 0.0:
        assert len(ans.citations) == config.max_sentences
    assert [c.number for c in ans.citations] == list(range(1, len(ans.citations) + 1))
    assert "[1]" in ans.text
    for c in ans.citations:
        article = idx.article(c.article_id)
        assert article is not None and article.title == c.title and article.url == c.url
        assert article.published == c.published
        assert article.text[c.start : c.end] == c.sentence
        assert c.sentence in c.passage and c.passage in article.text
        assert f"{c.sentence} [{c.number}]" in ans.text
        assert (c.start, c.end) in split_sentences(article.text)
    assert len({(c.article_id, c.start) for c in ans.citations}) == len(ans.citations)


@pytest.mark.parametrize("question,article,words", [
    (FIRST_QUESTION, BLINKEN, "危地马拉"),
    ("熊猫将在哪里隔离检疫？", PANDA, "卧龙"),
    ("上海股票指数今天上涨了多少？", STOCKS, "三个百分点"),
    ("北京今天气温多少度？", WEATHER, "十二度"),
    ("长征五号在哪里发射？", ROCKET, "文昌"),
])
def test_the_article_holding_the_fact_is_cited_first(root, question, article, words):
    ans = ask(question, index=root)
    assert not ans.abstained and ans.lang == "zh"
    assert ans.citations[0].article_id == article.id
    assert words in ans.citations[0].sentence
    # a question about time ("今天") has each cited article's date before its sentences
    dated = "今天" in question
    assert ans.text.startswith(date_note(ans.citations[0].published, "zh") * dated + ans.citations[0].sentence)


def test_chinese_answer_is_the_cited_sentences_joined(root):
    ans = ask("上海股票指数今天上涨了多少？", index=root, config=AnswerConfig(extra_ratio=0.0, max_sentences=2))
    assert len(ans.citations) == 2
    notes = [date_note(c.published, "zh") if n == 0 or ans.citations[n - 1].article_id != c.article_id else ""
             for n, c in enumerate(ans.citations)]
    assert ans.text == "".join(f"{note}{c.sentence} [{c.number}]" for note, c in zip(notes, ans.citations))
    undated = ask("上海股票指数上涨了多少？", index=root, config=AnswerConfig(extra_ratio=0.0, max_sentences=2))
    assert undated.text == "".join(f"{c.sentence} [{c.number}]" for c in undated.citations)


def test_k_limits_the_passages_read(root):
    every = AnswerConfig(extra_ratio=0.0)
    wide = ask("上海股票指数今天上涨了多少？", index=root, k=5, config=every)
    narrow = ask("上海股票指数今天上涨了多少？", index=root, k=1, config=every)
    assert len(wide.citations) == 3 and len({c.article_id for c in wide.citations}) > 1
    assert [c.article_id for c in narrow.citations] == [STOCKS.id, STOCKS.id]  # the article has two sentences
    assert len(narrow.passages) == 1 and len(wide.passages) == 5  # the passages read, shown as sources


# ---------------------------------------------------------------- ask: abstention


@pytest.mark.parametrize("question", ["日本首相岸田文雄什么时候访问巴西？", "谁获得了诺贝尔文学奖？", "巴西足球队获得了几次世界杯冠军？"])
def test_chinese_question_about_nothing_indexed_is_declined_in_chinese(root, question):
    ans = ask(question, index=root)
    assert ans.abstained is True
    assert ans.citations == ()
    assert ans.lang == "zh" and ans.text == NOT_FOUND["zh"]
    assert ans.passages  # it did look


def test_english_question_is_declined_in_english(root):
    never = AnswerConfig(**{p.replace("-", "_"): Thresholds(0.999, (0.0, 0.0), 160.0, 0.0) for p in PAIRS})
    ans = ask("Who painted the Mona Lisa?", index=root, config=never)
    assert ans.abstained is True and ans.citations == ()
    assert ans.lang == "en" and ans.text == NOT_FOUND["en"]


def test_filters_that_exclude_everything_decline(root):
    ans = ask(FIRST_QUESTION, index=root, source="no-such-source")
    assert ans.abstained and ans.citations == () and ans.passages == ()
    assert ans.text == NOT_FOUND["zh"]


# ---------------------------------------------------------------- history


def test_anaphoric_follow_up_borrows_the_previous_question():
    query, scoring = contextualise("他在那里见了谁？", [(FIRST_QUESTION, "...")])
    assert FIRST_QUESTION in query and "他在那里见了谁？" in query
    assert scoring == "他在那里见了谁？"  # sentences are scored against the new question only


@pytest.mark.parametrize("question", ["那2023年呢？", "Where did they go?"])
def test_short_or_pointing_follow_ups_borrow_the_previous_question(question):
    query, _ = contextualise(question, [(FIRST_QUESTION, "")])
    assert query == f"{FIRST_QUESTION} {question}"


def test_follow_up_retrieval_carries_the_earlier_answer_without_markers_or_notes():
    shown = f"{FIRST_ANSWER} [1]第二句。 [2] {CROSS_NOTE['en']}"
    query, scoring = contextualise("他在那里见了谁？", [(FIRST_QUESTION, shown)])
    assert query == f"{FIRST_QUESTION} {FIRST_ANSWER}第二句。 他在那里见了谁？"
    assert scoring == "他在那里见了谁？"
    long = "很长的回答。" * 200
    assert len(contextualise("他在那里见了谁？", [(FIRST_QUESTION, long)])[0]) < len(long)


@pytest.mark.parametrize("declined", list(NOT_FOUND.values()))
def test_a_declined_earlier_turn_lends_only_its_question(declined):
    query, _ = contextualise("他在那里见了谁？", [(FIRST_QUESTION, declined)])
    assert query == f"{FIRST_QUESTION} 他在那里见了谁？"


@pytest.mark.parametrize("history", [None, [], (), [("", "...")]])
def test_without_a_previous_question_nothing_changes(history):
    assert contextualise("他在那里见了谁？", history) == ("他在那里见了谁？", "他在那里见了谁？")


def test_standalone_question_is_unchanged():
    q = "熊猫将在卧龙基地隔离检疫多少天？"
    assert contextualise(q, [(FIRST_QUESTION, FIRST_ANSWER)]) == (q, q)


def test_only_the_last_turn_is_borrowed():
    query, _ = contextualise("他在那里见了谁？", [("熊猫在哪里？", "..."), (FIRST_QUESTION, "...")])
    assert FIRST_QUESTION in query and "熊猫" not in query


def test_follow_up_finds_the_article_of_the_earlier_turn(root):
    follow_up = "他那天还做了什么？"
    alone = retrieve(follow_up, index=root, k=1)
    assert alone[0].article_id != BLINKEN.id  # on its own the follow-up points nowhere in particular
    ans = ask(follow_up, index=root, history=[(FIRST_QUESTION, FIRST_ANSWER)])
    assert not ans.abstained
    assert ans.citations[0].article_id == BLINKEN.id


def test_follow_up_without_history_answers_from_its_own_words(root):
    ans = ask("他们签了什么协议？", index=root)
    assert "签署" in ans.citations[0].sentence


def test_follow_up_with_history_does_not_repeat_the_previous_answer(root):
    ans = ask("他们签了什么协议？", index=root, history=[(FIRST_QUESTION, FIRST_ANSWER)])
    assert "签署" in ans.citations[0].sentence, ans.text


BAD_HISTORIES = {
    "a dict": ({"a": "b"}, TypeError, r"history must be a list .* got dict"),
    "a number": (5, TypeError, r"history must be a list .* got int 5"),
    "a string": ("他是谁？", TypeError, r"history must be a list .* got str"),
    "numbers": ([1, 2], TypeError, r"history\[0\] must be a \[question, answer\] pair of strings, got int 1"),
    "an empty turn": ([()], ValueError, r"history\[0\] must be a \[question, answer\] pair .* got 0 items"),
    "a turn of three": ([(FIRST_QUESTION, FIRST_ANSWER), ("a", "b", "c")], ValueError, r"history\[1\] .* got 3 items"),
    "a None answer": ([(FIRST_QUESTION, FIRST_ANSWER), ("他是谁？", None)], TypeError,
                      r"history\[1\] answer must be a string, got NoneType"),
    "a bytes question": ([(b"q", "a")], TypeError, r"history\[0\] question must be a string, got bytes"),
}


@pytest.mark.parametrize("history,error,words", BAD_HISTORIES.values(), ids=BAD_HISTORIES.keys())
def test_history_of_the_wrong_shape_is_refused_naming_the_turn(root, history, error, words):
    for call in (lambda: ask("他在那里见了谁？", index=root, history=history),
                 lambda: contextualise("他在那里见了谁？", history)):
        with pytest.raises(error, match=words):
            call()


def test_none_and_empty_history_answer_as_no_history(root):
    alone = ask("他们签了什么协议？", index=root)
    for history in (None, [], ()):
        assert ask("他们签了什么协议？", index=root, history=history) == alone


def test_history_turns_may_be_lists_as_read_from_json():
    as_lists = contextualise("他在那里见了谁？", [[FIRST_QUESTION, ""]])
    assert as_lists == contextualise("他在那里见了谁？", [(FIRST_QUESTION, "")]) == (f"{FIRST_QUESTION} 他在那里见了谁？", "他在那里见了谁？")


def test_follow_up_query_is_bounded_whatever_the_history_holds():
    huge_q, huge_a = "布林肯" * 7000, "危地马拉。" * 20000
    query, scoring = contextualise("他" * 100_000, [(huge_q, huge_a)] * 3)
    assert len(scoring) == MAX_QUESTION_CHARS
    assert len(query) <= EARLIER_CHARS + ANSWER_CHARS + MAX_QUESTION_CHARS + 2
    assert query.startswith("布林肯" * 10) and "危地马拉" in query  # the turn is still read, only cut


def test_earlier_question_is_cleaned_like_the_question():
    query, _ = contextualise("他在那里见了谁？", [("布林肯\x00星期二\ud800前往哪个国家？", "")])
    assert "\x00" not in query and "\ud800" not in query and query.startswith("布林肯星期二")


class RecordingEmbedder(FakeEmbedder):
    """A FakeEmbedder that records the length of every text it is asked to embed."""

    def __init__(self):
        super().__init__()
        self.lengths: list[int] = []

    def embed_documents(self, texts):
        self.lengths += [len(t) for t in texts]
        return super().embed_documents(texts)


class RecordingRereader:
    def __init__(self):
        self.lengths: list[int] = []

    def score(self, question, sentences):
        self.lengths += [len(question), *map(len, sentences)]
        return np.zeros(len(sentences))


@pytest.mark.parametrize("question,history", [
    ("他在那里见了谁？", [(FIRST_QUESTION + "布林肯" * 7000, FIRST_ANSWER * 500)]),  # a 20,000-character earlier turn
    ("布林肯" * 33_334, None),  # a 100,000-character question
    ("他" * 100_000, [("布林肯" * 7000, FIRST_ANSWER * 500)] * 50),
])
def test_long_questions_and_history_reach_the_models_cut(root, monkeypatch, question, history):
    """Issue #25: a 20,000-character earlier question made a follow-up take 67 s. Every text a model embeds or
    reads in `ask` is at most the follow-up query (EARLIER_CHARS + ANSWER_CHARS + MAX_QUESTION_CHARS + 2), article sentences
    aside."""
    emb, reader, rereader = RecordingEmbedder(), RecordingEmbedder(), RecordingRereader()
    monkeypatch.setitem(registry.SHARED, "e5", reader)  # the reader (and a second retriever's query embedder)
    monkeypatch.setitem(registry.SHARED, ("rereader",), rereader)
    s = Searcher(root, emb)
    bound = EARLIER_CHARS + ANSWER_CHARS + MAX_QUESTION_CHARS + 2
    ev = gather(question, s, history=history)
    assert len(ev.question) <= MAX_QUESTION_CHARS and len(ev.query) <= bound
    ask(question, s, history=history)
    ask(question, s, history=history, config=AnswerConfig(reader="none"))
    assert emb.lengths and max(emb.lengths) <= bound, max(emb.lengths)
    assert max(reader.lengths, default=0) <= bound and max(rereader.lengths, default=0) <= bound


@pytest.mark.parametrize("date_from,date_to", [
    ("2024-06-01", "2024-05-01"),
    ("2024-05-02", "2024-05-01T10:00Z"),
    ("2024-05-01T10:00:01Z", "2024-05-01T10:00"),
])
def test_date_from_after_date_to_is_refused(root, date_from, date_to):
    words = f"date_from {date_from} is after date_to {date_to}"
    with pytest.raises(ValueError, match=words):
        ask(FIRST_QUESTION, index=root, date_from=date_from, date_to=date_to)
    with pytest.raises(ValueError, match=words):
        retrieve(FIRST_QUESTION, index=root, date_from=date_from, date_to=date_to)


@pytest.mark.parametrize("date_from,date_to", [
    ("2024-05-07", "2024-05-07"),  # one day
    ("2024-05-07T11:00:00Z", "2024-05-07"),  # a bare date_to is the whole day
    ("2024-05-07T11:00", "2024-05-07T12:00:00Z"),
])
def test_a_date_range_of_one_day_is_not_refused(root, date_from, date_to):
    ans = ask(FIRST_QUESTION, index=root, date_from=date_from, date_to=date_to)
    assert ans.citations and ans.citations[0].article_id == BLINKEN.id  # published 2024-05-07T12:00:00Z


@pytest.mark.parametrize("date_to", ["2024-05-01T25:00", "2024-05-01T10:61Z", "2024-05-01T"])
def test_impossible_times_are_refused_naming_the_field(root, date_to):
    with pytest.raises(ValueError, match="date_to must be an ISO date"):
        retrieve(FIRST_QUESTION, index=root, date_to=date_to)


# ---------------------------------------------------------------- JSON


def test_answer_to_dict_round_trips_through_json(root):
    ans = ask("What was the turnout in Ohio?", index=root)
    assert ans.citations
    d = ans.to_dict()
    assert set(d) == {"question", "text", "abstained", "citations", "lang"}
    text = json.dumps(d, ensure_ascii=False)
    assert "\\u" not in text and "Ohio" in text
    back = json.loads(text)
    assert (back["question"], back["text"], back["abstained"], back["lang"]) == (ans.question, ans.text, False, "en")
    names = [f.name for f in fields(Citation)]
    # also: the other copies of a near-duplicate story; date_from_text: `published` read from the article's text
    assert names == ["number", "article_id", "title", "url", "published", "passage", "sentence", "start", "end",
                     "also_in", "also", "story_size", "date_from_text"]
    for c in back["citations"]:
        assert list(c) == names
    assert tuple(Citation(**{**c, "also": tuple(StoryCopy(**x) for x in c["also"])})
                 for c in back["citations"]) == ans.citations


def test_chinese_answer_json_keeps_chinese_text(root):
    ans = ask(FIRST_QUESTION, index=root)
    text = json.dumps(ans.to_dict(), ensure_ascii=False)
    assert "危地马拉" in text
    back = json.loads(text)
    assert back["citations"][0]["sentence"] == ans.citations[0].sentence


def test_with_passages_adds_the_retrieved_passages(root):
    ans = ask(FIRST_QUESTION, index=root)
    d = json.loads(json.dumps(ans.to_dict(with_passages=True), ensure_ascii=False))
    assert [p["chunk_id"] for p in d["passages"]] == [p.chunk_id for p in ans.passages]


def test_abstention_to_dict(root):
    d = json.loads(json.dumps(ask("谁获得了诺贝尔文学奖？", index=root).to_dict(), ensure_ascii=False))
    assert d["abstained"] is True and d["citations"] == [] and d["text"] == NOT_FOUND["zh"]


def test_cli_ask_json_with_history_file(root, tmp_path, capsys):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([[FIRST_QUESTION, FIRST_ANSWER]], ensure_ascii=False), encoding="utf-8")
    code = cli.main(["ask", "他那天还做了什么？", "--index", str(root), "--history", str(history), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["abstained"] is False and data["citations"][0]["article_id"] == BLINKEN.id


def test_cli_ask_json_with_date_range(root, capsys):
    code = cli.main(["ask", FIRST_QUESTION, "--index", str(root), "--to", "2023-12-31", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert all(c["published"] <= "2023-12-31" for c in data["citations"])
    assert all(c["article_id"] != BLINKEN.id for c in data["citations"])


# ---------------------------------------------------------------- retrieve and fusion


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [1, 3, 50])
def test_fusion_modes_return_at_most_k_passages_best_first(root, mode, k):
    ps = retrieve(FIRST_QUESTION, index=root, k=k, fusion=Fusion(mode=mode))
    assert 1 <= len(ps) <= k
    assert len(ps) <= len(ARTICLES)  # one chunk per article here
    assert len({p.chunk_id for p in ps}) == len(ps)
    scores = [p.score for p in ps]
    assert scores == sorted(scores, reverse=True)
    assert all(math.isfinite(s) for s in scores)
    assert ps[0].article_id == BLINKEN.id


def test_fusion_modes_score_differently(root):
    scores = {m: [p.score for p in retrieve(FIRST_QUESTION, index=root, k=3, fusion=Fusion(mode=m))] for m in MODES}
    assert scores["weighted"][0] == pytest.approx(1.0)  # normalised lexical and dense both best
    assert scores["rrf"][0] == pytest.approx(2 / 61)  # first in both lists
    assert scores["lexical"][0] > 1.0  # raw BM25
    assert 0.0 < scores["dense"][0] <= 1.0 + 1e-6  # cosine
    assert len({tuple(v) for v in scores.values()}) == len(MODES)


def test_weighted_fusion_follows_its_weights(root):
    # Chinese articles only: OHIO, in English, is scored by a Chinese question's English glosses at its own weight
    lexical_only = [p for p in retrieve(FIRST_QUESTION, index=root, k=6, fusion=Fusion(lexical_weight=1.0))
                    if p.article_id != OHIO.id]
    lexical = [p for p in retrieve(FIRST_QUESTION, index=root, k=6, fusion=Fusion(mode="lexical"))
               if p.article_id != OHIO.id]
    n = len([p for p in lexical if p.score > 0])
    assert [p.chunk_id for p in lexical_only[:n]] == [p.chunk_id for p in lexical[:n]]
    top = lexical[0].score
    for a, b in zip(lexical_only[:n], lexical[:n]):
        assert a.score == pytest.approx(b.score / top, rel=1e-5)


def test_index_knows_each_chunks_language(idx):
    ids = [int(c) for c in idx.bm25_ids]
    langs = dict(zip(ids, idx.chunk_langs(ids)))
    by_article = {p.article_id: langs[p.chunk_id] for p in idx.passages(ids)}
    assert by_article[OHIO.id] == "en"
    assert {by_article[a.id] for a in ARTICLES if a is not OHIO} == {"zh"}
    assert idx.chunk_langs(list(reversed(ids))) == [langs[c] for c in reversed(ids)]  # remembered, same answers


def test_mixed_index_scores_an_english_article_by_the_questions_own_words(tmp_path):
    """In a mixed index the Chinese words bridged from an English question score the Chinese chunks only: they
    must not drown the English article that shares the question's words (they did while one BM25 query over
    question + bridged words was normalised across both languages)."""
    emb = FlatEmbedder(name="flat-64")
    index_articles(ARTICLES, tmp_path / "idx", emb, progress=False)
    s = Searcher(tmp_path / "idx", emb)
    bridge = {"布林肯": 0.9, "危地马拉": 0.9, "星期二": 0.9, "移民": 0.9}
    question = "Who did the voters in Ohio elect on Tuesday?"
    ranked = s.search(question, 6, Fusion(name_boost=0.0, gloss_boost=0.0), bridge=bridge)  # scores without the name and gloss boosts
    assert ranked[0].article_id == OHIO.id
    assert ranked[1].article_id == BLINKEN.id  # the bridged words still find the Chinese article
    assert ranked[0].score == pytest.approx(Fusion().lexical_weight)  # own words, monolingual weight
    assert ranked[1].score == pytest.approx(Fusion().cross_lexical_weight)
    assert s.search(question, 1, bridge=bridge)[0].article_id == OHIO.id  # with the boost too
    # a Chinese question over the same index is scored as before: its own words, monolingual weight
    zh = s.search(FIRST_QUESTION, 6)
    assert zh[0].article_id == BLINKEN.id and zh[0].score == pytest.approx(Fusion().lexical_weight)


def test_an_unrelated_english_article_does_not_outrank_the_chinese_answer_for_sharing_a_word(tmp_path):
    emb = FlatEmbedder(name="flat-64")
    index_articles(ARTICLES, tmp_path / "idx", emb, progress=False)
    s = Searcher(tmp_path / "idx", emb)
    bridge = {"布林肯": 0.9, "星期二": 0.9, "危地马拉": 0.9}
    question = "Which country did Blinken travel to on Tuesday?"  # OHIO shares "Tuesday" and nothing else
    plain = Fusion(name_boost=0.0, gloss_boost=0.0)
    assert s.search(question, 1, plain, bridge=bridge)[0].article_id == BLINKEN.id
    # without the floor the best English chunk counts as a full match, however little of the question it holds
    assert s.search(question, 1, Fusion(name_boost=0.0, gloss_boost=0.0, english_floor=0.0), bridge=bridge)[0].article_id == OHIO.id
    idx = s.refresh()
    assert idx.lexical_bound(question, absent=True) == pytest.approx(4 * idx.lexical_bound("Tuesday"))
    assert idx.lexical_bound(question) == pytest.approx(idx.lexical_bound("Tuesday"))


def test_chinese_question_reaches_an_english_article_through_dictionary_glosses(tmp_path, monkeypatch):
    from rag.lang import dictionary

    emb = FlatEmbedder(name="flat-64")
    index_articles(ARTICLES, tmp_path / "idx", emb, progress=False)
    s = Searcher(tmp_path / "idx", emb)
    idx = s.refresh()
    assert idx.english_share() == pytest.approx(1 / len(ARTICLES))
    question = "选民选出了新的州长吗？"
    words = s.bridged_words(question, idx)
    assert {"voter", "elect", "governor"} <= set(words)  # glosses the English article holds
    assert "electorate" not in words and "us state governor" not in words  # glosses it does not hold
    english_only = Fusion(lexical_weight=0.0, reverse_lexical_weight=1.0)  # Chinese chunks: dense alone, tied
    top = s.search(question, 3, english_only)
    assert top[0].article_id == OHIO.id and top[0].score == pytest.approx(1.0)
    monkeypatch.setattr(dictionary, "load", lambda: {})  # control: without the glosses nothing reaches it
    assert s.bridged_words(question, idx) == {}
    assert s.search(question, 3, english_only)[0].score == pytest.approx(0.0)


def test_chinese_only_index_brings_no_english_glosses(tmp_path):
    emb = FlatEmbedder(name="flat-64")
    index_articles([a for a in ARTICLES if a is not OHIO], tmp_path / "idx", emb, progress=False)
    s = Searcher(tmp_path / "idx", emb)
    assert s.refresh().english_share() == 0.0
    assert s.bridged_words("选民选出了新的州长吗？", s.refresh()) == {}


def test_chinese_only_index_reads_no_chunk_language_at_search(tmp_path, monkeypatch):
    emb = FlatEmbedder(name="flat-64")
    index_articles([a for a in ARTICLES if a is not OHIO], tmp_path / "idx", emb, progress=False)
    s = Searcher(tmp_path / "idx", emb)
    idx = s.refresh()
    assert idx.english_share() == 0.0  # the one sample read, at the first question

    def no(*a, **k):
        raise AssertionError("a Chinese-only index must not look up chunk languages per question")

    monkeypatch.setattr(Index, "chunk_langs", no)
    monkeypatch.setattr(Index, "lexical_bound", no)
    assert s.search(FIRST_QUESTION, 3)[0].article_id == BLINKEN.id
    assert s.search("Which country did Blinken travel to on Tuesday?", 3, bridge={"布林肯": 0.9})
    # so is one whose English chunks are too few to be English articles (a quote or a name opening a chunk)
    from rag.retrieve.searcher import MIXED_SHARE

    monkeypatch.setattr(Index, "english_share", lambda self: MIXED_SHARE / 2)
    assert s.search(FIRST_QUESTION, 3)[0].article_id == BLINKEN.id
    assert s.bridged_words("选民选出了新的州长吗？", idx) == {}


@pytest.mark.parametrize("kwargs,field", [
    ({"lexical_weight": 1.5}, "lexical_weight"),
    ({"lexical_weight": -0.1}, "lexical_weight"),
    ({"lexical_weight": float("nan")}, "lexical_weight"),
    ({"cross_lexical_weight": 2.0}, "cross_lexical_weight"),
    ({"cross_lexical_weight": -1.0}, "cross_lexical_weight"),
    ({"reverse_lexical_weight": 1.1}, "reverse_lexical_weight"),
    ({"english_floor": -0.5}, "english_floor"),
    ({"chinese_floor": 1.5}, "chinese_floor"),
    ({"candidates": 0}, "candidates"),
    ({"candidates": -5}, "candidates"),
    ({"mode": "bm25"}, "mode"),
    ({"mode": "Weighted"}, "mode"),
])
def test_invalid_fusion_is_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"Fusion\.{field}\b"):
        Fusion(**kwargs)


@pytest.mark.parametrize("kwargs", [{"lexical_weight": 0.0}, {"lexical_weight": 1.0}, {"cross_lexical_weight": 0.0},
                                    {"candidates": 1}, *({"mode": m} for m in MODES)])
def test_fusion_edges_are_accepted(kwargs):
    assert getattr(Fusion(**kwargs), next(iter(kwargs))) == next(iter(kwargs.values()))


@pytest.mark.parametrize("fn", [retrieve, ask])
@pytest.mark.parametrize("k", [0, -1, 2.5, "3", None])
def test_bad_k_is_refused(root, fn, k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        fn(FIRST_QUESTION, index=root, k=k)


@pytest.mark.parametrize("fn", [retrieve, ask])
@pytest.mark.parametrize("question", ["", "   ", "\n\t", "\x00\x01\x7f"])
def test_empty_question_is_refused(root, fn, question):
    with pytest.raises(ValueError, match="question is empty"):
        fn(question, index=root)


@pytest.mark.parametrize("fn", [retrieve, ask])
def test_non_string_question_is_refused(root, fn):
    with pytest.raises(TypeError):
        fn(["布林肯"], index=root)


@pytest.mark.parametrize("date_from,date_to,expected", [
    ("2024-01-01", None, {BLINKEN, STOCKS, WEATHER}),
    (None, "2023-12-31", {PANDA, ROCKET, OHIO}),
    ("2023-01-01", "2024-03-31", {PANDA, WEATHER}),
    ("2024-05-07", "2024-05-07", {BLINKEN}),  # both ends inclusive, by day
    ("2025-01-01", None, set()),
])
def test_date_filters(root, date_from, date_to, expected):
    for mode in MODES:
        ps = retrieve(FIRST_QUESTION, index=root, k=10, date_from=date_from, date_to=date_to, fusion=Fusion(mode=mode))
        got = {p.article_id for p in ps}
        assert got <= {a.id for a in expected}, mode
        if mode != "lexical":  # dense search returns every allowed chunk; lexical only matching ones
            assert got == {a.id for a in expected}, mode
        for p in ps:
            assert (date_from is None or p.published >= date_from) and (date_to is None or p.published[:10] <= date_to)


def test_source_filter(root):
    ps = retrieve(FIRST_QUESTION, index=root, k=10, source="voachinese")
    assert {p.article_id for p in ps} == {BLINKEN.id, PANDA.id}
    assert all(p.source == "voachinese" for p in ps)


def test_ask_with_a_date_range_cites_only_articles_inside_it(root):
    ans = ask(FIRST_QUESTION, index=root, date_from="2024-01-01", date_to="2024-04-30")
    assert all("2024-01-01" <= c.published[:10] <= "2024-04-30" for c in ans.citations)
    assert all(p.article_id in {STOCKS.id, WEATHER.id} for p in ans.passages)


# ---------------------------------------------------------------- candidates, select, build_answer, AnswerConfig


def test_candidates_dedupe_overlapping_passages_with_article_offsets():
    text = BLINKEN.text
    mid = text.index("布林肯在")
    end2 = text.index("双方")
    first, second = passage(BLINKEN, 0, end2, chunk_id=1), passage(BLINKEN, mid, len(text), chunk_id=2)
    cands = candidates([first, second])
    assert [c.text for c in cands] == [text[s:e] for s, e in split_sentences(text)]
    assert [c.rank for c in cands] == [0, 0, 1]
    for c in cands:
        assert text[c.start : c.end] == c.text and c.sentence_id == -1
        assert c.passage.start <= c.start < c.end <= c.passage.end


def test_candidates_use_stored_sentence_spans():
    p = passage(BLINKEN, 0, len(BLINKEN.text))
    s = BLINKEN.text.index("双方")
    e = len(BLINKEN.text)
    (c,) = candidates([p], [[(42, s, e)]])
    assert (c.sentence_id, c.start, c.end, c.text) == (42, s, e, BLINKEN.text[s:e])
    assert len(candidates([p], [[]])) == len(split_sentences(BLINKEN.text))  # no stored rows: split here


def test_candidates_of_nothing():
    assert candidates([]) == []


def test_select_keeps_at_most_max_sentences_best_first():
    sents = ["美国国务卿布林肯星期二前往危地马拉，讨论地区移民问题。", "布林肯在危地马拉城会见了阿雷瓦洛总统和外交部长马丁内斯。",
             "双方签署了一项关于难民融入的合作协议。"]
    scored = [cand(BLINKEN, sents[0], 0.5), cand(BLINKEN, sents[1], 0.9), cand(BLINKEN, sents[2], 0.8),
              cand(PANDA, "熊猫将在卧龙基地隔离检疫三十天。", 0.85)]
    for n in (1, 2, 3):
        picked = select(scored, AnswerConfig(max_sentences=n, extra_ratio=0.0))
        assert len(picked) == n
        assert picked[0].score == 0.9
    three = select(scored, AnswerConfig(max_sentences=3, extra_ratio=0.0))
    # after the best: its own article's sentences in reading order, then other articles
    assert [c.text for c in three] == [sents[1], sents[2], "熊猫将在卧龙基地隔离检疫三十天。"]


def test_select_drops_sentences_far_below_the_best():
    best = cand(BLINKEN, "双方签署了一项关于难民融入的合作协议。", 0.8)
    close = cand(PANDA, "熊猫将在卧龙基地隔离检疫三十天。", 0.49)  # >= 0.6 * 0.8 = 0.48
    far = cand(STOCKS, "分析人士认为，上涨的原因是央行宣布降息。", 0.47)
    picked = select([far, close, best], AnswerConfig(extra_ratio=0.6))
    assert [c.text for c in picked] == [best.text, close.text]
    assert select([far, close, best], AnswerConfig(extra_ratio=0.7)) == [best]
    assert len(select([far, close, best], AnswerConfig(extra_ratio=0.5))) == 3


def test_select_orders_by_the_order_head_and_keeps_extras_near_the_confidence():
    first = cand(BLINKEN, "双方签署了一项关于难民融入的合作协议。", 0.3, order=5.0)  # ranked first, lower probability
    likely = cand(PANDA, "熊猫将在卧龙基地隔离检疫三十天。", 0.9, order=1.0)
    weak = cand(STOCKS, "分析人士认为，上涨的原因是央行宣布降息。", 0.5, order=3.0)  # below 0.6 * 0.9
    assert confidence([first, likely, weak]) == 0.9
    assert [c.text for c in select([likely, weak, first], AnswerConfig(extra_ratio=0.6))] == [first.text, likely.text]


def test_select_skips_sentences_contained_in_a_picked_one():
    best = cand(BLINKEN, "双方签署了一项关于难民融入的合作协议。", 0.9)
    part = Candidate(best.passage, 1, best.start, best.start + 4, best.text[:4], 0.8)
    other = cand(PANDA, "熊猫将在卧龙基地隔离检疫三十天。", 0.7)
    assert [c.text for c in select([part, best, other], AnswerConfig(extra_ratio=0.0))] == [best.text, other.text]


def test_select_of_nothing():
    assert select([], AnswerConfig()) == []


def test_build_answer_cites_in_order():
    picked = [cand(BLINKEN, FIRST_ANSWER, 0.9), cand(PANDA, "熊猫将在卧龙基地隔离检疫三十天。", 0.6)]
    ans = build_answer("问题？", picked, [p.passage for p in picked], "zh", False)
    assert not ans.abstained and ans.lang == "zh"
    assert ans.text == f"{FIRST_ANSWER} [1]熊猫将在卧龙基地隔离检疫三十天。 [2]"
    assert [(c.number, c.article_id, c.sentence) for c in ans.citations] == [
        (1, BLINKEN.id, FIRST_ANSWER), (2, PANDA.id, "熊猫将在卧龙基地隔离检疫三十天。")]
    assert ans.citations[0].passage == BLINKEN.text and ans.citations[0].url == BLINKEN.url


def test_build_answer_in_english_over_chinese_sources_says_so():
    ans = build_answer("Where did Blinken go?", [cand(BLINKEN, FIRST_ANSWER, 0.9)], [], "en", False)
    assert ans.text == f"{FIRST_ANSWER} [1] {CROSS_NOTE['en']}"
    english = cand(OHIO, "The turnout was 55 percent, officials said.", 0.9)
    assert CROSS_NOTE["en"] not in build_answer("Turnout?", [english], [], "en", False).text


def test_build_answer_in_chinese_over_english_sources_says_so_and_spaces_english_sentences():
    english = [cand(OHIO, "Voters in Ohio went to the polls on Tuesday to elect a new governor.", 0.9),
               cand(OHIO, "The turnout was 55 percent, officials said.", 0.8)]
    ans = build_answer("俄亥俄州的投票率是多少？", english, [], "zh", False)
    assert ans.text == f"{english[0].text} [1] {english[1].text} [2]{CROSS_NOTE['zh']}"
    mixed = build_answer("问题？", [cand(BLINKEN, FIRST_ANSWER, 0.9), english[1]], [], "zh", False)
    assert mixed.text == f"{FIRST_ANSWER} [1] {english[1].text} [2]"  # a note only when every sentence is English
    assert CROSS_NOTE["zh"] not in build_answer("问题？", [cand(BLINKEN, FIRST_ANSWER, 0.9)], [], "zh", False).text


@pytest.mark.parametrize("lang,expected", [("zh", NOT_FOUND["zh"]), ("en", NOT_FOUND["en"]), ("fr", NOT_FOUND["en"])])
def test_build_answer_abstains_in_the_question_language(lang, expected):
    picked = [cand(BLINKEN, FIRST_ANSWER, 0.9)]
    for p, abstain in ((picked, True), ([], False)):
        ans = build_answer("?", p, [], lang, abstain)
        assert ans.abstained and ans.citations == () and ans.text == expected


@pytest.mark.parametrize("kwargs,field", [
    ({"max_sentences": 0}, "max_sentences"),
    ({"max_sentences": 4}, "max_sentences"),
    ({"extra_ratio": 1.5}, "extra_ratio"),
    ({"rereader_weight": -1.0}, "rereader_weight"),
])
def test_invalid_answer_config_is_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"AnswerConfig\.{field}\b"):
        AnswerConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"max_sentences": 1}, {"max_sentences": 3},
                                    {"zh_zh": Thresholds(0.0, (0.0, 1.0), 0.0, 0.0)},
                                    {"en_zh": Thresholds(0.99, (1.0, 1.0), 1.0, -1.0)}])
def test_answer_config_edges_are_accepted(kwargs):
    AnswerConfig(**kwargs)


@pytest.mark.parametrize("args", [(-0.01, (0.0, 1.0), 1.0, 1.0), (1.0, (0.0, 1.0), 1.0, 1.0)])
def test_thresholds_refuse_a_confidence_outside_0_1(args):
    with pytest.raises(ValueError, match=r"Thresholds\.min_confidence\b"):
        Thresholds(*args)


@pytest.mark.parametrize("kwargs", [{"extra_ratio": -1.0}, {"topic_share": -0.5}, {"max_sentences": 2.5},
                                    {"max_sentences": True}, {"rereader_gloss_weight": float("nan")},
                                    {"min_read_score_names": "1"}, {"tie_check": 1}])
def test_answer_config_checks_every_field(kwargs):
    with pytest.raises(ValueError):
        AnswerConfig(**kwargs)


def _ranker_file(tmp_path, **changes):
    data = json.loads(open(AnswerConfig().ranker, encoding="utf-8").read())
    data.update(changes)
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_the_order_head_adds_its_hidden_layer(tmp_path):
    import numpy as np

    from rag.answer import rank
    from rag.models.ranker import FEATURES
    from rag.models.registry import get_ranker as load_ranker

    n = len(FEATURES)
    w = np.zeros((2, n))
    w[0, 0], w[1, 2] = 1.0, -2.0  # unit 0 reads "lex", unit 1 "dense"
    hidden = {"w": w.tolist(), "b": [0.5, 0.0], "v": [3.0, 1.0]}
    path = _ranker_file(tmp_path, order=[0.0] * n, hidden=hidden)
    r = load_ranker(path)
    x = np.random.default_rng(0).normal(size=(4, n))
    np.testing.assert_allclose(r.order_scores(x), np.tanh(x[:, 0] + 0.5) * 3.0 + np.tanh(-2.0 * x[:, 2]))
    # the hidden layer alone decides the order rank() gives
    p = Passage(0, "a", "t", "x" * 10, 0, 10, 1.0)
    cands = [Candidate(p, 0, i, i + 1, f"s{i}") for i in range(3)]
    feats = np.zeros((3, n))
    feats[:, 0] = [0.0, 2.0, -1.0]
    ranked = sorted(rank(cands, feats, AnswerConfig(ranker=path)), key=lambda c: -c.order)
    assert [c.text for c in ranked] == ["s1", "s0", "s2"]


N_FEATURES = len(__import__("rag.models", fromlist=["FEATURES"]).FEATURES)


@pytest.mark.parametrize("hidden,match", [
    ({"w": [[0.0] * 3], "b": [0.0], "v": [1.0]}, "shape"),
    ({"w": [[0.0] * N_FEATURES], "b": [0.0, 0.0], "v": [1.0]}, "shape"),
    ({"w": [[0.0] * N_FEATURES], "b": [0.0], "v": ["x"]}, "numeric"),
    ({"w": [[0.0] * N_FEATURES], "b": [0.0]}, "numeric"),
    ({"w": [[float("nan")] * N_FEATURES], "b": [0.0], "v": [1.0]}, "non-finite"),
    ({"w": [], "b": [], "v": []}, "shape"),
])
def test_a_damaged_hidden_layer_is_refused_naming_the_file(tmp_path, hidden, match):
    from rag.models.registry import get_ranker as load_ranker

    path = _ranker_file(tmp_path, hidden=hidden)
    with pytest.raises(ValueError, match=match) as e:
        load_ranker(path)
    assert path in str(e.value)


def test_the_shipped_ranker_orders_with_a_hidden_layer():
    from rag.models.registry import get_ranker as load_ranker

    r = load_ranker(AnswerConfig().ranker)
    assert r.hidden_w is not None and r.hidden_w.shape[0] == len(r.hidden_b) == len(r.hidden_v) > 0


@pytest.mark.parametrize("simplified,traditional", [
    ("喀山在哪一个世纪成为喀山公国的中心？", "喀山在哪一個世紀成為喀山公國的中心？"),
    ("韩国和日本谈判了几年？", "韓國和日本談判了幾年？"),
    ("他什么时候到达台北？", "他什麼時候到達臺北？"),
])
def test_traditional_questions_get_the_same_features_as_simplified(simplified, traditional):
    import numpy as np

    from rag.answer import features

    p = Passage(0, "a", "t", "", 0, 0, 1.0)
    texts = ["喀山在十三世紀成為了中心。", "他們談判了十三年。", "兩國沒有談判。", "他星期一到達。"]
    cands = [Candidate(p, 0, i, i + 1, t) for i, t in enumerate(texts)]
    np.testing.assert_allclose(features(traditional, cands, {}, None), features(simplified, cands, {}, None))


@pytest.mark.parametrize("question,text,published,title,missing", [
    ("Who won the 2023 Nobel Prize in Literature?", "2008年，迟子建获得茅盾文学奖。", "2009-01-02T00:00:00Z", "文学奖", True),
    ("Who won the 2023 Nobel Prize in Literature?", "2023年诺贝尔文学奖授予福瑟。", "", "", False),
    ("2024年巴黎奥运会开幕式在哪条河上举行？", "开幕式在塞纳河上举行。", "2024-07-27T00:00:00Z", "奥运", False),  # its date
    ("2024年巴黎奥运会开幕式在哪条河上举行？", "开幕式在塞纳河上举行。", "2021-07-23T00:00:00Z", "2024年奥运", False),  # title
    ("2024年巴黎奥运会开幕式在哪条河上举行？", "开幕式在塞纳河上举行。", "2021-07-23T00:00:00Z", "奥运", True),
    ("２０２４年的选举谁赢了？", "2024年选举结果揭晓。", "", "", False),  # full-width digits
    ("What happened in 2022 or 2023?", "In 2023 the law passed.", "", "", False),  # one of them is enough
    ("布林肯星期二前往哪个国家？", "布林肯前往危地马拉。", "", "", False),  # no year asked
    ("Which of the 12000 villages?", "No year here.", "", "", False),
    ("電腦學系於2005年時搬到哪裡？", "於二零零五年七月一日，電腦學系遷到資訊學院。", "", "", False),  # Chinese numerals
    ("哪一種藝術在1950年代被鼓勵？", "20世紀50年代東德官方鼓勵寫實主義。", "", "", False),  # a decade as a century
    ("哪一種藝術在1950年代被鼓勵？", "20世紀60年代東德官方鼓勵寫實主義。", "", "", True),
    ("萬里長城已有2000多年歷史，哪一朝修築最多？", "明朝修築的規模最大。", "", "", False),  # a duration
])
def test_misses_year(question, text, published, title, missing):
    from rag.answer import misses_year

    p = Passage(0, "a", title, text, 0, len(text), 1.0, published=published)
    assert misses_year(question, [p]) is missing


def test_misses_year_looks_at_every_passage_given():
    from rag.answer import misses_year

    a = Passage(0, "a", "t", "他在四月到達。", 0, 7, 1.0)
    b = Passage(1, "a", "t", "1939年，兩國簽訂條約。", 7, 20, 0.5)
    assert misses_year("1939年簽訂了什麼條約？", [a])
    assert not misses_year("1939年簽訂了什麼條約？", [a, b])
    assert misses_year("1939年簽訂了什麼條約？", [a, b], "other")  # only the named article's passages count


def test_a_question_about_another_year_is_declined(root):
    cfg_off = AnswerConfig(year_check=False)
    q_right, q_wrong = "布林肯2024年前往哪个国家？", "布林肯2019年前往哪个国家？"
    assert not ask(q_right, index=root).abstained
    assert ask(q_wrong, index=root).abstained
    off = ask(q_wrong, index=root, config=cfg_off)
    assert not off.abstained  # the same passage answers when the year is not checked


def test_an_english_question_whose_names_the_article_lacks_is_declined(root):
    # Every English-over-Chinese question is read and passes the usual score, so only the name check can decline.
    loose = dict(en_zh=Thresholds(0.12, (0.0, 1.0), 160.0, -1e9), year_check=False)
    strict, off = AnswerConfig(**loose, min_read_score_names=1e9), AnswerConfig(**loose, min_read_score_names=None)
    # Chinese sources only: this test is about Chinese articles (the fake embedder's English-English cosines would
    # let the English article compete for the English questions)
    named = "Which country did Blinken travel to on Tuesday?"  # 布林肯, transliterated
    assert not ask(named, index=root, config=strict, source="voachinese").abstained
    absent = "Which country did Macron visit to discuss regional migration?"
    answered = ask(absent, index=root, config=off, source="voachinese")
    assert not answered.abstained and answered.citations[0].title == BLINKEN.title
    assert ask(absent, index=root, config=strict, source="voachinese").abstained  # it never mentions Macron


def test_year_check_must_be_a_bool():
    with pytest.raises(ValueError, match=r"AnswerConfig\.year_check\b"):
        AnswerConfig(year_check="yes")


def test_a_chinese_questions_english_glosses_count_in_english_sentences_only():
    from rag.answer import crosses, features
    from rag.models.ranker import FEATURES

    p = Passage(0, "a", "t", "", 0, 0, 1.0)
    texts = ["Voters in Ohio went to the polls on Tuesday to elect a new governor.", "选民星期二选出了新的州长。",
             "The turnout was 55 percent, officials said."]
    zh = Passage(1, "b", "t", "", 0, 0, 1.0)  # another article: no neighbour across languages
    cands = [Candidate(zh if i == 1 else p, 0, i, i + 1, t) for i, t in enumerate(texts)]
    question = "选民选出了新的州长吗？"
    glosses = {"voter": 0.7, "elect": 0.7, "governor": 0.7}
    plain, bridged = features(question, cands, {}, None), features(question, cands, {}, None, bridge=glosses)
    lex, cross = FEATURES.index("lex"), FEATURES.index("cross")
    assert plain[0, lex] == 0.0 < bridged[0, lex]  # the English sentence is reached through the glosses
    assert bridged[0, lex] > bridged[2, lex]  # ... and the one holding them beats the one that does not
    np.testing.assert_allclose(bridged[1], plain[1])  # the Chinese sentence is scored as without them
    assert list(bridged[:, cross]) == [1.0, 0.0, 1.0]
    assert crosses("zh", texts[0]) and crosses("en", texts[1])
    assert not crosses("zh", texts[1]) and not crosses("en", texts[0])


def test_an_english_questions_features_do_not_change_with_the_reverse_direction():
    from rag.answer import features

    p = Passage(0, "a", "t", "", 0, 0, 1.0)
    texts = ["美国国务卿布林肯星期二前往危地马拉。", "Blinken went to Guatemala on Tuesday.", "他讨论了移民问题。"]
    cands = [Candidate(p, 0, i, i + 1, t) for i, t in enumerate(texts)]
    bridge = {"布林肯": 0.9, "危地马拉": 0.8}
    rows = features("Which country did Blinken visit?", cands, {}, None, bridge=bridge)
    # the bridged words weigh in every sentence's share, English ones included (as the ranker was trained)
    assert rows[1, 0] < 1.0 and rows[0, 0] > rows[2, 0]


def test_a_chinese_question_keeps_english_sentences_only_of_articles_sharing_a_term_with_it():
    from rag.answer import features, tied

    ohio, other, zh = (Passage(i, a, "t", "", 0, 0, 1.0) for i, a in enumerate(("ohio", "other", "zh")))
    cands = [Candidate(ohio, 0, 0, 1, "Voters in Ohio went to the polls on Tuesday to elect a new governor."),
             Candidate(ohio, 0, 1, 2, "The turnout was 55 percent, officials said."),
             Candidate(other, 1, 0, 1, "The museum opened a new wing."),
             Candidate(zh, 2, 0, 1, "博物馆开放了新的展厅。")]
    question = "选民选出了新的州长吗？"
    feats = features(question, cands, {}, None, bridge={"voter": 0.7, "governor": 0.7})
    # Ohio shares "voter" in one sentence: both of its sentences stay; the other English article shares nothing
    assert list(tied("zh", cands, feats)) == [True, True, False, True]
    assert tied("en", cands, feats).all()  # English questions keep everything
    assert list(tied("zh", cands, features(question, cands, {}, None))) == [False, False, False, True]


@pytest.mark.parametrize("reader", ["e5", "none"])
def test_chinese_question_is_answered_from_an_english_article_with_a_note(root, reader):
    ans = ask("俄亥俄州的选民星期二选出了新的州长吗？", index=root, config=AnswerConfig(reader=reader))
    assert not ans.abstained and ans.lang == "zh"
    first = ans.citations[0]
    assert first.article_id == OHIO.id and first.sentence.startswith("Voters in Ohio")
    assert OHIO.text[first.start:first.end] == first.sentence
    assert CROSS_NOTE["zh"] in ans.text


def test_a_chinese_question_finds_the_english_article_over_a_weak_chinese_match(tmp_path):
    """The best Chinese chunk counts as a full lexical match only up to chinese_floor of the most any chunk could
    score: a stray shared character (选, 的) must not outrank the English article the question's glosses find."""
    emb = FlatEmbedder(name="flat-64")
    index_articles(ARTICLES, tmp_path / "idx", emb, progress=False)
    s = Searcher(tmp_path / "idx", emb)
    idx = s.refresh()
    question = "选民选出了新的州长吗？"
    bridge = s.bridged_words(question, idx)
    plain = Fusion(name_boost=0.0, gloss_boost=0.0)
    assert s.search(question, 1, plain, bridge=bridge)[0].article_id == OHIO.id
    assert s.search(question, 1, Fusion(name_boost=0.0, gloss_boost=0.0, chinese_floor=0.0), bridge=bridge)[0].article_id == BLINKEN.id
    # a Chinese question that shares real words with a Chinese article still finds it
    tuesday = "选民在星期二选出了新的州长吗？"
    assert s.search(tuesday, 1, plain, bridge=s.bridged_words(tuesday, idx))[0].article_id == BLINKEN.id
    assert s.search(FIRST_QUESTION, 1, plain)[0].article_id == BLINKEN.id


def test_name_glosses_map_the_chinese_name_to_the_latin_terms_asked_about():
    from rag.answer import name_glosses

    texts = ["华盛顿 — 美国国务卿安东尼·布林肯（Antony Blinken）星期二前往危地马拉，同总统讨论移民。",
             "剧院还包括华沙的第一家文艺歌厅摩摩斯 (Momus)和音乐剧剧院。", "波兰的第二级行政区是县 (powiat)。"]
    assert name_glosses(texts, {"blinken"}) == {"布林肯": {"blinken"}}
    assert name_glosses(texts, {"blinken", "antony", "momu"}) == {"布林肯": {"blinken", "antony"}, "摩摩斯": {"momu"}}
    assert name_glosses(texts, {"powiat"}) == {}  # 县 is no transliterated name
    assert name_glosses(texts, {"obama"}) == {}


def test_a_sentence_naming_a_glossed_person_in_chinese_matches_the_english_name():
    from rag.answer import features
    from rag.models.ranker import FEATURES

    lead = "美国国务卿安东尼·布林肯（Antony Blinken）星期二前往危地马拉。"
    said = "布林肯在危地马拉城国家文化宫发表讲话。"
    other = "总统在国家文化宫发表讲话。"
    question = "Where did Blinken give his speech?"
    latin = FEATURES.index("cross_latin")
    same = Passage(0, "a", "t", lead + said + other, 0, 0, 1.0)
    cands = [Candidate(same, 0, i, i + 1, t) for i, t in enumerate((lead, said, other))]
    rows = features(question, cands, {}, None)
    assert rows[0, latin] == rows[1, latin] > 0.0 == rows[2, latin]
    # the gloss of another article says nothing of this one's 布林肯
    elsewhere = Passage(1, "b", "t", lead, 0, 0, 1.0)
    alone = Passage(0, "a", "t", said + other, 0, 0, 1.0)
    cands = [Candidate(elsewhere, 0, 0, 1, lead)] + [Candidate(alone, 1, i, i + 1, t) for i, t in enumerate((said, other))]
    rows = features(question, cands, {}, None)
    assert rows[0, latin] > 0.0 == rows[1, latin] == rows[2, latin]


@pytest.mark.parametrize("question, wants", [
    ("What year did the war end?", True), ("When did the war end?", True), ("Which years saw floods?", True),
    ("What yearly target did Blinken mention?", False), ("Whence did they come?", False)])
def test_an_english_question_asks_for_a_time_only_by_its_words(question, wants):
    from rag.answer import features
    from rag.models.ranker import FEATURES

    p = Passage(0, "a", "t", "", 0, 0, 1.0)
    cands = [Candidate(p, 0, 0, 1, "目标提高到每年12万5千。")]  # no date in it
    assert features(question, cands, {}, None)[0, FEATURES.index("type_miss")] == float(wants)


def test_a_question_in_two_parts_cites_an_answer_to_each(root):
    # one sentence a part: asked as one question, only one of the two would be answered
    ans = ask("熊猫将在哪里隔离检疫？长征五号火箭是在哪里发射的？", index=root, config=AnswerConfig(max_sentences=1))
    assert not ans.abstained
    assert {c.article_id for c in ans.citations} == {PANDA.id, ROCKET.id}
    assert any("卧龙" in c.sentence for c in ans.citations) and any("文昌" in c.sentence for c in ans.citations)
    assert [c.number for c in ans.citations] == list(range(1, len(ans.citations) + 1))
    assert ans.text.index("卧龙") < ans.text.index("文昌")  # parts answered in order
    for c in ans.citations:
        assert f"{c.sentence} [{c.number}]" in ans.text


def test_a_question_in_parts_none_of_which_the_articles_answer_is_declined(root):
    ans = ask("量子引力的弦论模型是什么？火星上的首都叫什么名字？", index=root)
    assert ans.abstained and ans.citations == ()
