"""eval.crud_noanswer and eval.crud_twopart on tiny synthetic sets: which questions they keep, and why."""
from __future__ import annotations

import json

from eval import crud_noanswer, crud_twopart
from rag.evaluation.datasets import read_articles, write_articles
from rag.types import Article

A = Article(title="体育消费券", text="上海市体育局发放总额500万元的体育消费券。", url="crud://a/1")
B = Article(title="台风预警", text="气象台发布台风蓝色预警，福建沿海风力达到十级。", url="crud://a/2")
C = Article(title="消费券转载", text="转载：上海发放总额500万元的体育消费券。", url="crud://a/3")  # holds A's answer too
D = Article(title="农业丰收", text="江西早稻丰收，亩产达到四百五十公斤。", url="crud://a/4")


def _q(set_, entry, n, question, answer, article):
    return {"id": f"{entry}-{n}", "question": question, "answers": [answer], "lang": "zh", "set": set_,
            "entry": entry, "article_ids": [article.id], "article_id": article.id}


def _sets(tmp_path, rows):
    for name in crud_noanswer.SETS:
        with open(tmp_path / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                if r["set"] == name:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")


def test_noanswer_keeps_only_questions_no_remaining_article_answers(tmp_path, monkeypatch):
    write_articles([A, B, C, D], tmp_path / "slice.jsonl")
    rows = [_q("crud-2docs", "e1", 1, "上海发放了多少体育消费券？", "500万元", A),
            _q("crud-2docs", "e1", 2, "台风预警是什么颜色？", "蓝色预警", B),
            _q("crud-3docs", "e2", 1, "江西早稻亩产多少？", "四百五十公斤", D)]
    _sets(tmp_path, rows)
    monkeypatch.setattr(crud_noanswer.random, "Random", lambda seed: type("R", (), {"sample": lambda self, xs, n: ["e1"]})())
    got = crud_noanswer.build(str(tmp_path / "slice.jsonl"), str(tmp_path / "out"), str(tmp_path))
    left = {a.id for a in read_articles(tmp_path / "out" / "corpus.jsonl")}
    assert left == {C.id, D.id}  # e1's gold articles taken out
    noanswer = [json.loads(x) for x in open(tmp_path / "crud-noanswer.jsonl", encoding="utf-8")]
    kept = [json.loads(x) for x in open(tmp_path / "crud-kept.jsonl", encoding="utf-8")]
    # "500万元" is still in C: that question may be answerable and is dropped, not called unanswerable
    assert [q["question"] for q in noanswer] == ["台风预警是什么颜色？"] and noanswer[0]["unanswerable"]
    assert "answers" not in noanswer[0] and got["dropped (answer still in another article)"] == 1
    assert [q["id"] for q in kept] == ["crud-3docs:e2-1"]


def test_twopart_pairs_questions_of_one_entry_answered_by_different_articles(tmp_path):
    rows = [_q("crud-2docs", "e1", 1, "上海发放了多少体育消费券？", "500万元", A),
            _q("crud-2docs", "e1", 2, "台风预警是什么颜色？", "蓝色预警", B),
            _q("crud-2docs", "e1", 3, "上海市体育局发放的是什么券？", "体育消费券", A),
            _q("crud-3docs", "e2", 1, "江西早稻亩产多少？", "四百五十公斤", D)]
    _sets(tmp_path, rows)
    got = crud_twopart.build(str(tmp_path), per_entry=5)
    out = [json.loads(x) for x in open(tmp_path / "crud-twopart.jsonl", encoding="utf-8")]
    assert got["questions"] == 2 and all(len(set(q["article_ids"])) == 2 for q in out)  # e1-1 + e1-3 share A
    assert {q["question"] for q in out} == {"上海发放了多少体育消费券？台风预警是什么颜色？",
                                            "台风预警是什么颜色？上海市体育局发放的是什么券？"}  # in file order
