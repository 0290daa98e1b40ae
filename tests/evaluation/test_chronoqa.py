"""ChronoQA's CSV layout: gold passages as articles the indexer ids the same way, questions asked on their date."""
from __future__ import annotations

import csv

import pytest

from rag import evaluation as ev
from rag.evaluation.chronoqa import read_chronoqa
from rag.evaluation.datasets import write_articles
from rag.index import Index, index_paths

FIELDS = ["", "question", "question_date", "answer", "temporal_expression_type", "temporal_scope",
          "temporal_granularity", "temporal_type", "answer_type", "reference_document_count", "golden_chunks"]
P1 = "2023年6月14日，荣盛发展被平台新增储能概念。自6月9日复牌以来，荣盛发展连续5日涨停。"
P2 = "2019年7月17日，苹果公司宣布停产iPhone 6系列。"
P3 = "2019年7月23日，COTODAMA推出了一款能显示歌词的音箱。"


def _csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FIELDS})
    return path


def _row(i, question, date, answer, expr, kind, atype, chunks):
    return {"": str(i), "question": question, "question_date": date, "answer": answer,
            "temporal_expression_type": expr, "temporal_type": kind, "answer_type": atype,
            "golden_chunks": repr(chunks)}


@pytest.fixture
def chrono_csv(tmp_path):
    return _csv(tmp_path / "chrono.csv", [
        _row(0, "截至上周，荣盛发展的股价连续多少日涨停？", "2023-6-20", "5日", "implicit", "relative", "numerical", [P1]),
        _row(2, "COTODAMA歌词音箱和苹果停产iPhone 6系列哪个事件更早发生？", "2023-10-30", "苹果停产iPhone 6系列",
             "implicit", "aggregate", "entity", [P3, P2]),
        _row(4, "2019年7月17日苹果停产了iPhone 6系列吗？", "2023-10-30", "是", "explicit", "absolute", "judgement", [P2]),
        _row(6, "坏行", "2023-10-30", "x", "explicit", "absolute", "entity", "not a list"),
    ])


def test_passages_are_articles_once_and_bad_rows_are_named(chrono_csv):
    articles, rows, errors = read_chronoqa(chrono_csv)
    assert sorted(a.text for a in articles) == sorted([P1, P2, P3])  # P2 is gold twice, stored once
    assert [r.id for r in rows] == ["0", "2", "4"]
    assert rows[1].gold == tuple(a.id for a in map(lambda t: next(x for x in articles if x.text == t), [P3, P2]))
    assert len(errors) == 1 and errors[0].startswith(f"{chrono_csv}:5:")


def test_rag_eval_reads_the_csv_with_each_question_on_its_date(chrono_csv, tmp_path, fake_embedder):
    articles, _, _ = read_chronoqa(chrono_csv)
    write_articles(articles, tmp_path / "corpus.jsonl")
    root = tmp_path / "index"
    index_paths([tmp_path / "corpus.jsonl"], root, fake_embedder, progress=False)
    idx = Index.open(root)
    indexed = set(idx.article_ids())
    idx.close()
    assert indexed == {a.id for a in articles}  # the ids `rag index` gives the written corpus

    qs = ev.load_questions(chrono_csv)
    # only verbatim answers a gold passage holds: the judgement row ("是") and the bad row are not scored
    assert [(q.id, q.set, q.now) for q in qs.questions] == [("0", "chronoqa/implicit-relative", "2023-06-20")]
    assert qs.questions[0].article_id in indexed and len(qs.errors) == 1

    seen = []

    def fake_ask(question, index, k=5, history=None, now=None):
        seen.append(now)
        from rag.types import Answer
        return Answer(question=question, text="", abstained=True)

    run = ev.run_eval([chrono_csv], root, out_dir=tmp_path / "out", progress=False, command="test",
                      ask_fn=fake_ask, retrieve_fn=lambda q, i, k=5, now=None: [])
    assert seen == ["2023-06-20"] and "chronoqa/implicit-relative" in run.groups


def test_not_chronoqa_columns_is_a_clear_error(tmp_path):
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ev.EvalError, match="other.csv.*no column question"):
        ev.load_questions(bad)


def test_a_bad_question_date_names_the_row(tmp_path):
    path = _csv(tmp_path / "d.csv", [_row(0, "问？", "2023-13-01", "5日", "explicit", "absolute", "numerical", [P1])])
    _, rows, errors = read_chronoqa(path)
    assert rows == [] and errors == [f"{path}:2: 'question_date' must be a date YYYY-MM-DD, got '2023-13-01'"]
