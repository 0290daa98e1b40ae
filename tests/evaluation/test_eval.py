"""Evaluation: metrics on hand-made cases, SQuAD converters, question-set loading, reports and compare."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from rag import evaluation as ev
from rag.evaluation.datasets import (
    read_articles,
    squad_to_articles,
    squad_to_questions,
    write_articles,
    xquad_crosslingual,
    xquad_english,
    xquad_halves,
)
from rag.types import Answer, Article, Citation, Passage

ROOT = Path(__file__).resolve().parents[2]


def P(text, article_id="a1", chunk_id=0):
    return Passage(chunk_id=chunk_id, article_id=article_id, title="t", text=text, start=0, end=len(text), score=1.0)


def C(sentence, article_id="a1", passage=None):
    return Citation(number=1, article_id=article_id, title="t", url="", published="", passage=passage or sentence,
                    sentence=sentence, start=0, end=len(sentence))


# ---------------------------------------------------------------- metrics


def test_normalise_folds_width_case_space_and_traditional():
    assert ev.normalise("ＡＢＣ  d\u3000e") == "abcde"
    assert ev.normalise("歐洲 梵語") == ev.normalise("欧洲梵语")
    assert ev.contains_answer("在歐洲，梵語的學術研究", ["欧洲"])
    assert ev.contains_answer("在欧洲，梵语的学术研究", ["歐洲"])


def test_contains_answer_edge_cases():
    assert not ev.contains_answer("anything", [])
    assert not ev.contains_answer("anything", ["", "  "])
    assert ev.contains_answer("Bernardo  Arévalo", ["bernardo arévalo", "bernardo arévalo"])
    assert not ev.contains_answer("", ["x"])


def test_retrieval_rank_needs_answer_and_gold_article():
    ps = [P("no answer here", "gold"), P("危地马拉 in other", "other"), P("前往危地马拉", "gold"), P("危地马拉", "gold")]
    assert ev.passage_hits(ps, ["危地马拉"], "gold") == [False, False, True, True]
    assert ev.first_hit_rank(ps, ["危地马拉"], "gold") == 3  # several passages hold it: the first counts
    assert ev.first_hit_rank(ps, ["危地马拉"]) == 2  # gold article unknown: any passage with the answer
    assert ev.first_hit_rank(ps, ["危地马拉", "危地马拉"], "gold") == 3  # duplicate answers change nothing
    assert ev.first_hit_rank([], ["x"], "gold") is None  # empty retrieval
    assert ev.first_hit_rank(ps, [], "gold") is None  # no answers
    assert ev.first_hit_rank(ps, ["危地马拉"], "gold", depth=2) is None
    assert ev.hit_at(3, 5) and not ev.hit_at(3, 1) and not ev.hit_at(None, 20)
    assert ev.reciprocal_rank(4) == 0.25 and ev.reciprocal_rank(None) == 0.0 and ev.reciprocal_rank(21) == 0.0


def test_score_answer_sentence_hit_any_hit_and_precision():
    cites = (C("布林肯前往危地马拉。"), C("他见了阿雷瓦洛总统。"), C("无关句子。", "other"))
    a = Answer(question="q", text="布林肯前往危地马拉。他见了阿雷瓦洛总统。", abstained=False, citations=cites)
    s = ev.score_answer(a, ["阿雷瓦洛"], "a1")
    assert (s.sentence_hit, s.answer_hit) == (False, True)
    assert s.citation_precision == pytest.approx(1 / 3)
    assert s.length == len(a.text)
    # A citation whose passage (from the gold article) holds the answer counts as correct.
    c = C("总统说了话。", "a1", passage="阿雷瓦洛总统说了话。")
    assert ev.citation_correct(c, ["阿雷瓦洛"], "a1")
    assert not ev.citation_correct(c, ["阿雷瓦洛"], "a2")
    assert not ev.citation_correct(c, ["阿雷瓦洛"], None)


def test_score_answer_abstained_and_traditional_gold():
    s = ev.score_answer(Answer(question="q", text="I don't know.", abstained=True), ["x"])
    assert s == ev.AnswerScores(False, False, None, None)
    a = Answer(question="q", text="在欧洲。", abstained=False, citations=(C("在欧洲，梵语的学术研究。"),))
    assert ev.score_answer(a, ["歐洲"]).sentence_hit


def _result(**kw):
    base = dict(set="s", id="1", lang="zh", question="q", answers=("a",), unanswerable=False, article_id=None,
                history_turns=0, rank=None, retrieved=(), answer="", abstained=False, citations=0, cited_articles=(),
                sentence_hit=False, answer_hit=False, citation_precision=None, answer_len=None, ask_ms=10.0,
                retrieve_ms=1.0)
    base.update(kw)
    return ev.QuestionResult(**base)


def test_aggregate_rates_abstention_and_latency():
    rs = [
        _result(id="1", rank=1, sentence_hit=True, answer_hit=True, citation_precision=1.0, answer_len=10, ask_ms=10),
        _result(id="2", rank=4, answer_hit=True, citation_precision=0.5, answer_len=20, ask_ms=20),
        _result(id="3", rank=None, abstained=True, ask_ms=30),
        _result(id="4", answers=(), unanswerable=True, abstained=True, sentence_hit=None, answer_hit=None, ask_ms=40),
        _result(id="5", answers=(), unanswerable=True, answer_len=5, sentence_hit=None, answer_hit=None, ask_ms=50),
    ]
    s = ev.aggregate(rs)
    assert (s.n, s.answerable, s.unanswerable) == (5, 3, 2)
    assert s.hit1 == pytest.approx(1 / 3) and s.hit5 == pytest.approx(2 / 3) and s.hit20 == pytest.approx(2 / 3)
    assert s.mrr == pytest.approx((1 + 0.25 + 0) / 3)
    assert s.ans_sent_hit == pytest.approx(1 / 3) and s.ans_hit == pytest.approx(2 / 3)
    assert s.cit_precision == pytest.approx(0.75)
    assert s.avg_len == pytest.approx(35 / 3)
    assert s.abstain_correct == 0.5 and s.wrong_decline == pytest.approx(1 / 3)
    assert s.p50_ms == 30 and s.p95_ms == pytest.approx(48)
    assert len(s.hit_curve) == 20 and s.hit_curve[0] == pytest.approx(1 / 3) and s.hit_curve[3] == pytest.approx(2 / 3)
    only_unans = ev.aggregate([rs[3]])
    assert only_unans.hit5 is None and only_unans.abstain_correct == 1.0 and only_unans.hit_curve == ()
    assert ev.percentile([], 50) is None


def test_group_results_adds_language_rows_only_for_mixed_sets():
    rs = [_result(set="a", lang="zh"), _result(set="a", id="2", lang="en"), _result(set="b", id="3")]
    assert list(ev.group_results(rs)) == ["a", "a/en", "a/zh", "b", "all", "all/en", "all/zh"]
    assert list(ev.group_results(rs[2:])) == ["b"]


# ---------------------------------------------------------------- converters


def _squad(tmp_path, name, data):
    p = tmp_path / name
    p.write_text(json.dumps({"version": "1", "data": data}, ensure_ascii=False), encoding="utf-8")
    return p


@pytest.fixture
def xquad(tmp_path):
    zh = _squad(tmp_path, "zh.json", [
        {"title": "甲", "paragraphs": [
            {"context": "北京是中国的首都。", "qas": [{"id": "q1", "question": "中国的首都是哪里？",
                                              "answers": [{"text": "北京", "answer_start": 0}, {"text": "北京", "answer_start": 0}]}]},
            {"context": "上海在东部。", "qas": [{"id": "q2", "question": "哪个城市在东部？",
                                          "answers": [{"text": "上海", "answer_start": 0}, {"text": "上海市", "answer_start": -1}]}]},
        ]},
        {"title": "乙", "paragraphs": [{"context": "长江很长。", "qas": [{"id": "q3", "question": "什么很长？",
                                                                   "answers": [{"text": "长江", "answer_start": 0}]}]}]},
    ])
    en = _squad(tmp_path, "en.json", [
        {"title": "A", "paragraphs": [
            {"context": "Shanghai is in the east.", "qas": [{"id": "q2", "question": "Which city is in the east?",
                                                              "answers": [{"text": "Shanghai", "answer_start": 0}]}]},
            {"context": "Beijing is the capital.", "qas": [{"id": "q1", "question": "What is the capital?",
                                                             "answers": [{"text": "Beijing", "answer_start": 0}]},
                                                            {"id": "q9", "question": "No twin?", "answers": [{"text": "x"}]}]},
        ]},
    ])
    return zh, en


def test_squad_to_articles_titles_urls_and_jsonl_round_trip(xquad, tmp_path):
    zh, _ = xquad
    arts = squad_to_articles(zh, "xq")
    assert [a.title for a in arts] == ["甲 (1)", "甲 (2)", "乙"]
    assert [a.url for a in arts] == ["squad://xq/0-0", "squad://xq/0-1", "squad://xq/1-0"]
    assert arts[0].text == "北京是中国的首都。" and arts[0].source == "xq" and arts[0].published == ""
    assert [a.id for a in squad_to_articles(zh, "xq")] == [a.id for a in arts]  # stable
    out = tmp_path / "corpus.jsonl"
    write_articles(arts, out)
    back = [Article(**{k: r[k] for k in ("title", "text", "url", "published", "source")})
            for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())]
    assert [a.id for a in back] == [a.id for a in arts] == [a.id for a in read_articles(out)]
    assert set(json.loads(out.read_text(encoding="utf-8").splitlines()[0])) == {"title", "url", "published", "text", "source"}


def test_squad_paragraph_ids_are_used_when_present(tmp_path):
    p = _squad(tmp_path, "c.json", [{"title": "T", "id": "X", "paragraphs": [
        {"id": "DEV_7", "context": "abc", "qas": [{"id": "DEV_7_Q", "question": "?", "answers": [{"text": "b"}]}]}]}])
    (a,) = squad_to_articles(p, "cmrc")
    assert a.url == "squad://cmrc/DEV_7" and a.title == "T"
    (q,) = squad_to_questions(p, "cmrc", "zh")
    assert q == {"id": "DEV_7_Q", "question": "?", "answers": ["b"], "lang": "zh", "article_id": a.id, "set": "cmrc"}


def test_squad_to_questions_dedupes_and_drops_answers_not_in_context(xquad):
    zh, _ = xquad
    arts = squad_to_articles(zh, "xq")
    qs = squad_to_questions(zh, "xq", "zh")
    assert [(q["id"], q["answers"], q["article_id"]) for q in qs] == [
        ("q1", ["北京"], arts[0].id), ("q2", ["上海"], arts[1].id), ("q3", ["长江"], arts[2].id)]


def test_xquad_crosslingual_pairs_by_question_id(xquad):
    zh, en = xquad
    arts = squad_to_articles(zh, "xquad-zh")
    qs = {q["id"]: q for q in xquad_crosslingual(en, zh)}
    assert set(qs) == {"q1", "q2"}  # q9 has no Chinese twin
    assert qs["q1"]["question"] == "What is the capital?" and qs["q1"]["answers"] == ["北京"]
    assert qs["q1"]["article_id"] == arts[0].id and qs["q2"]["article_id"] == arts[1].id
    assert qs["q1"]["lang"] == "en" and qs["q1"]["set"] == "xquad-en"


def test_xquad_english_gives_the_mixed_pool_its_articles_and_both_question_sets(xquad):
    zh, en = xquad
    arts, en_en, zh_en = xquad_english(en, zh)
    assert [a.text for a in arts] == ["Shanghai is in the east.", "Beijing is the capital."]
    assert [a.id for a in arts] == [a.id for a in squad_to_articles(en, "xquad-en")]  # ids the sets point at
    assert {a.source for a in arts} == {"xquad-en-b"}  # one title: the first half (len // 2 titles) is empty
    assert [(q["id"], q["answers"], q["lang"], q["set"]) for q in en_en] == [
        ("q2", ["Shanghai"], "en", "xquad-en-en"), ("q1", ["Beijing"], "en", "xquad-en-en"), ("q9", ["x"], "en", "xquad-en-en")]
    assert {q["article_id"] for q in en_en[:2]} == {a.id for a in arts}
    by_id = {q["id"]: q for q in zh_en}
    assert set(by_id) == {"q1", "q2"}  # q9 has no Chinese twin
    assert by_id["q1"]["question"] == "中国的首都是哪里？" and by_id["q1"]["answers"] == ["Beijing"]
    assert by_id["q1"]["lang"] == "zh" and by_id["q1"]["set"] == "xquad-zh-en"
    assert by_id["q1"]["article_id"] == arts[1].id


def test_xquad_halves_split_sorted_titles(tmp_path):
    p = _squad(tmp_path, "h.json", [{"title": t, "paragraphs": []} for t in ("D", "B", "A", "C")])
    assert xquad_halves(p) == {"A": "a", "B": "a", "C": "b", "D": "b"}


def test_bad_squad_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json"):
        squad_to_articles(bad, "x")


def test_shipped_sets_load_cleanly_and_seed_answers_are_in_the_seed():
    seed_text = next((ROOT / "seeds").glob("*.txt")).read_text(encoding="utf-8")
    for name in ("seed", "followup", "cmrc2018", "drcd", "xquad-zh", "xquad-en", "xquad-en-en", "xquad-zh-en"):
        qs = ev.load_questions(ROOT / "eval" / "sets" / f"{name}.jsonl")
        assert qs.errors == () and qs.questions, name
    seed = ev.load_questions(ROOT / "eval" / "sets" / "seed.jsonl").questions
    assert sum(q.unanswerable for q in seed) >= 8 and {q.lang for q in seed} == {"zh", "en"}
    assert all(a in seed_text for q in seed for a in q.answers)
    assert all(q.history for q in ev.load_questions(ROOT / "eval" / "sets" / "followup.jsonl").questions)


# ---------------------------------------------------------------- question sets


def test_load_questions_reports_bad_lines_and_keeps_the_rest(tmp_path):
    p = tmp_path / "mine.jsonl"
    lines = [
        {"id": "1", "question": "谁？", "answers": ["甲", "甲", " "], "article_id": "abc"},
        "{broken",
        {"id": "2", "question": "", "answers": ["x"]},
        {"id": "3", "question": "what?", "answers": []},
        {"id": "4", "question": "out of corpus?", "answers": [], "unanswerable": True},
        {"id": "1", "question": "dup?", "answers": ["x"]},
        {"id": "5", "question": "他呢？", "answers": ["乙"], "history": [["谁？", "甲"]]},
        {"id": "6", "question": "q", "answers": ["x"], "history": [["only one"]]},
        [1, 2],
        {"id": "7", "question": "q", "answers": ["x"], "unanswerable": True},
    ]
    p.write_text("\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n",
                 encoding="utf-8")
    qs = ev.load_questions(p)
    assert [q.id for q in qs.questions] == ["1", "4", "5"]
    q1, q4, q5 = qs.questions
    assert q1.answers == ("甲",) and q1.set == "mine" and q1.lang == "zh" and q1.article_id == "abc"
    assert q4.unanswerable and q4.lang == "en" and q5.history == (("谁？", "甲"),)
    assert [e.split(": ")[0] for e in qs.errors] == [f"{p}:{n}" for n in (2, 3, 4, 6, 8, 9, 10)]
    assert "invalid JSON" in qs.errors[0] and "unanswerable" in qs.errors[2] and "duplicate" in qs.errors[3]
    with pytest.raises(ev.EvalError, match="nope.jsonl"):
        ev.load_questions(tmp_path / "nope.jsonl")


def test_sample_questions_is_seeded_and_keeps_order():
    qs = [ev.Question(id=str(i), question="q", answers=("a",), set="s", lang="en") for i in range(50)]
    a, b = ev.sample_questions(qs, 10, seed=1), ev.sample_questions(qs, 10, seed=1)
    assert a == b and len(a) == 10 and [int(q.id) for q in a] == sorted(int(q.id) for q in a)
    assert ev.sample_questions(qs, 10, seed=2) != a
    assert ev.sample_questions(qs, None) == qs and ev.sample_questions(qs, 99) == qs


# ---------------------------------------------------------------- runner, report, compare (fake core)

DOCS = {"g1": "美国国务卿布林肯星期二前往危地马拉。他同阿雷瓦洛总统讨论移民。", "g2": "北京是中国的首都。"}


def fake_retrieve(question, index, k=5, **_):
    ps = [P(text, aid, i) for i, (aid, text) in enumerate(DOCS.items())]
    if "首都" in question:
        ps.reverse()
    return ps[:k]


def fake_ask(question, index, k=5, history=None, **_):
    if "boom" in question:
        raise RuntimeError("boom")
    if "奥运" in question or "Nobel" in question:
        return Answer(question=question, text="No answer in the indexed articles.", abstained=True)
    p = fake_retrieve(question, index, 1)[0]
    first = p.text.split("。")[0] + "。"
    return Answer(question=question, text=first, abstained=False,
                  citations=(Citation(1, p.article_id, "t", "", "", p.text, first, 0, len(first)),))


def _write_set(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def sets(tmp_path):
    a = _write_set(tmp_path / "alpha.jsonl", [
        {"id": "1", "question": "布林肯前往哪里？", "answers": ["危地马拉"], "article_id": "g1"},
        {"id": "2", "question": "他见了谁？", "answers": ["阿雷瓦洛"], "article_id": "g1", "history": [["布林肯前往哪里？", "危地马拉"]]},
        {"id": "3", "question": "Who won the 2023 Nobel Prize in Literature?", "answers": [], "unanswerable": True},
        {"id": "4", "question": "中国的首都？", "answers": ["北京"], "article_id": "g2"},
    ])
    b = _write_set(tmp_path / "beta.jsonl", [
        {"id": "1", "question": "中国的首都是哪里？", "answers": ["北京"], "article_id": "g2"},
        {"id": "2", "question": "boom", "answers": ["x"]},
    ])
    (b.parent / "beta.jsonl").write_text(b.read_text(encoding="utf-8") + "not json\n", encoding="utf-8")
    return a, b


def test_run_eval_writes_reports_and_records_errors(sets, tmp_path):
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "manifest.json").write_text('{"embedder": "fake-64"}', encoding="utf-8")
    out = tmp_path / "out"
    run = ev.run_eval(sets, idx, k=3, out_dir=out, label="fake", progress=False, command="test",
                      ask_fn=fake_ask, retrieve_fn=fake_retrieve)
    assert {Path(p).name for p in run.files.values() if Path(p).stat().st_size} == {
        "report.md", "report.json", "hit_at_k.png", "latency.png"}
    assert any("beta.jsonl:3" in e for e in run.errors) and any("boom" in e for e in run.errors)
    alpha = run.groups["alpha"]
    assert (alpha.n, alpha.hit1, alpha.ans_hit, alpha.abstain_correct) == (4, 1.0, pytest.approx(2 / 3), 1.0)
    # Question 2 cites a sentence without the answer, but from the gold passage that holds it: still precise.
    assert alpha.ans_sent_hit == pytest.approx(2 / 3) and alpha.cit_precision == 1.0
    assert run.groups["beta"].errors == 1 and "all/en" in run.groups
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "fake-64" in md and "| alpha |" in md and "hit@5" in md and "p95 ms" in md and "command: `test`" in md
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert doc["meta"]["embedder"] == "fake-64" and len(doc["records"]) == 6
    assert doc["groups"]["alpha"]["hit5"] == 1.0
    assert (out / "hit_at_k.png").read_bytes()[:4] == b"\x89PNG"


def test_run_eval_limit_and_missing_inputs(sets, tmp_path):
    idx = tmp_path / "idx"
    idx.mkdir()
    run = ev.run_eval([sets[0], tmp_path / "missing.jsonl"], idx, limit=2, out_dir=tmp_path / "o", progress=False,
                      ask_fn=fake_ask, retrieve_fn=fake_retrieve)
    assert len(run.results) == 2 and any("missing.jsonl" in e for e in run.errors)
    assert run.meta["embedder"] == ""
    with pytest.raises(ev.EvalError, match="no index"):
        ev.run_eval(sets, tmp_path / "nowhere", out_dir=tmp_path / "o", ask_fn=fake_ask, retrieve_fn=fake_retrieve)
    empty = _write_set(tmp_path / "empty.jsonl", [])
    with pytest.raises(ev.EvalError, match="no usable questions"):
        ev.run_eval([empty], idx, out_dir=tmp_path / "o", ask_fn=fake_ask, retrieve_fn=fake_retrieve)


def test_compare_and_cli_main(sets, tmp_path, capsys):
    idx = tmp_path / "idx"
    idx.mkdir()
    kw = dict(progress=False, ask_fn=fake_ask, retrieve_fn=fake_retrieve)
    ev.run_eval([sets[0]], idx, k=5, out_dir=tmp_path / "a", label="A", **kw)

    def worse_retrieve(question, index, k=5, **_):
        return list(reversed(fake_retrieve(question, index, k)))

    ev.run_eval([sets[0]], idx, k=5, out_dir=tmp_path / "b", label="B", progress=False, ask_fn=fake_ask,
                retrieve_fn=worse_retrieve)
    md = ev.compare(tmp_path / "a" / "report.json", tmp_path / "b" / "report.json")
    assert "## alpha" in md and "| hit@1 | 100.0 | 0.0 | -100.0 |" in md and "Questions that changed" in md

    parser = argparse.ArgumentParser()
    ev.add_arguments(parser)
    args = parser.parse_args(["--compare", str(tmp_path / "a" / "report.json"), str(tmp_path / "b" / "report.json"),
                              "--out", str(tmp_path / "cmp")])
    assert ev.main(args) == 0 and (tmp_path / "cmp" / "compare.md").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("[]", encoding="utf-8")
    assert ev.main(parser.parse_args(["--compare", str(bad), str(bad), "--out", str(tmp_path / "cmp")])) == 2
    assert "bad.json" in capsys.readouterr().err
    assert ev.main(parser.parse_args(["--out", str(tmp_path / "x")])) == 2
    assert ev.main(parser.parse_args([str(sets[0]), "--index", str(tmp_path / "nowhere")])) == 2


# ---------------------------------------------------------------- end to end over a real (tiny) index


def test_run_eval_end_to_end_on_a_fake_embedder_index(tmp_path, fake_embedder, seed_file):
    from rag.index import index_paths
    from rag.retrieve import searcher

    arts = squad_to_articles(_squad(tmp_path, "c.json", [
        {"title": "长江", "paragraphs": [{"id": "P1", "context": "长江是中国最长的河流，全长约6300公里，发源于青藏高原。",
                                        "qas": [{"id": "Q1", "question": "长江全长约多少公里？", "answers": [{"text": "6300公里"}]}]}]},
        {"title": "黄河", "paragraphs": [{"id": "P2", "context": "黄河是中国第二长河，被称为中华民族的母亲河。",
                                        "qas": [{"id": "Q2", "question": "哪条河被称为中华民族的母亲河？", "answers": [{"text": "黄河"}]}]}]},
    ]), "mini")
    corpus = tmp_path / "mini.jsonl"
    write_articles(arts, corpus)
    idx = tmp_path / "idx"
    index_paths([str(corpus), str(seed_file)], str(idx), embedder=fake_embedder, progress=False)
    searcher(str(idx), fake_embedder)  # ask/retrieve by path then reuse this searcher and its fake embedder

    seed = [json.loads(line) for line in (ROOT / "eval" / "sets" / "seed.jsonl").read_text(encoding="utf-8").splitlines()]
    follow = (ROOT / "eval" / "sets" / "followup.jsonl").read_text(encoding="utf-8").splitlines()[0]
    s1 = _write_set(tmp_path / "seedmini.jsonl", seed[:4] + seed[-2:] + [json.loads(follow)])
    s2 = _write_set(tmp_path / "mini-set.jsonl", squad_to_questions(tmp_path / "c.json", "mini", "zh"))
    out = tmp_path / "out"
    run = ev.run_eval([s1, s2], idx, k=3, out_dir=out, progress=False)
    assert run.errors == () and len(run.results) == 9
    assert run.meta["embedder"] == "fake-64" and run.meta["followup_retrieval"] == "contextualised"
    mini = run.groups["mini"]
    assert mini.hit20 == 1.0 and mini.p50_ms is not None
    assert all(r.ask_ms is not None and r.retrieve_ms is not None for r in run.results)
    for name in ("report.md", "report.json", "hit_at_k.png", "latency.png"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["groups"]["seedmini"]["n"] == 7
