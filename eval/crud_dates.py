"""A date-sensitive check on CRUD-RAG news: the same story on different days, asked with a date or "昨天", and "最新".

    python -m eval.crud_dates build [--corpus eval/out/crud/corpus] [--out eval/out/crud-dates] [--sets eval/sets]
    rag index eval/out/crud-dates/corpus.jsonl --index eval/out/crud-dates/index --second none -q
    python -m eval.crud_dates measure [--index eval/out/crud-dates/index] [--set eval/sets/crud-dates.jsonl]

Topics are recurring reports (外交部例行记者会, 港股/A股开盘, 人民币汇率中间价, 中央气象台暴雨预警, 金店金价, 大乐透,
双色球, three stocks' daily fund flows), found by a pattern on the title or the text's first 80 characters. An
article's day is the day it reports: the first date in its title or its text's first 80 characters ("8月11日主力资金
...", "7月31日，体彩超级大乐透第23087期开奖" out on 1 August), else its publication date. Up to DAYS_PER_TOPIC
days with 1-3 articles each are picked per topic, evenly spread; each day is asked three ways: with its date ("7月28日港股开盘时恒生指数报多少点？", now = the day + 3), relatively ("昨天...",
"今天...", "前天..." in turn, now set to match) and for the latest ("港股最新开盘时恒生指数报多少点？", now = the day: its
articles are the newest on or before now, while later days' articles are in the index too; now is the day the
last of them came out when that is later). The right articles
(`article_ids`; `article_id` the first) are the topic's articles of that day; `answers` is the topic's keyword, so
that `rag eval` scores retrieval by the right article. The corpus is every topic article plus DISTRACTORS other
dated articles (seeded), written to OUT/corpus.jsonl; the set to SETS/crud-dates.jsonl.

`measure` asks each question without the date handling (Fusion's date and recency boosts 0, AnswerConfig.date_check
off), with the retrieval boosts alone, with both (the default), and with the resolved range as a hard filter
(date_from/date_to) for comparison; hit@1 is the first citation's article being one of the day's.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import random
import re
import sys
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

from rag.types import Article

DAYS_PER_TOPIC = 6
DISTRACTORS = 500
SEED = 0
YEAR = 2023  # of every dated CRUD-RAG article


@dataclasses.dataclass(frozen=True)
class Topic:
    name: str
    pattern: str  # on the title or the text's first 80 characters
    question: str  # "{when}" is replaced by the date or the relative word
    latest: str
    keyword: str


TOPICS = (
    Topic("mfa", r"外交部发言人\S{0,4}主持例行记者会", "{when}外交部发言人在例行记者会上回答了什么问题？",
          "外交部发言人最新一次例行记者会回答了什么问题？", "例行记者会"),
    Topic("hk_open", r"港股市场(?:低|高)开", "{when}港股开盘时恒生指数报多少点？", "港股最新开盘时恒生指数报多少点？",
          "恒生指数"),
    Topic("a_open", r"A股三大指数(?:集体|纷纷|悉数)?(?:低|高)开", "{when}A股三大指数开盘时沪指报多少点？",
          "A股三大指数最新开盘时沪指报多少点？", "沪指"),
    Topic("cny_mid", r"人民币对美元汇率中间价", "{when}人民币对美元汇率中间价报多少？", "最新的人民币对美元汇率中间价报多少？",
          "中间价"),
    Topic("cma_rain", r"中央气象台.{0,12}暴雨.{0,3}预警", "{when}中央气象台发布了什么暴雨预警？",
          "中央气象台最新发布了什么暴雨预警？", "暴雨"),
    Topic("gold_shops", r"金店", "{when}金店的黄金价格是多少？", "金店最新的黄金价格是多少？", "金店"),
    Topic("dlt", r"大乐透第\d+期", "{when}大乐透开出的奖号是什么？", "最新一期大乐透开出的奖号是什么？", "大乐透"),
    Topic("ssq", r"双色球第\d+期(?:开出)?奖号", "{when}双色球开出的奖号是什么？", "最新一期双色球开出的奖号是什么？", "双色球"),
    Topic("fuchun", r"富春环保（002479）\d{1,2}月\d{1,2}日主力资金", "{when}富春环保主力资金净流入多少？",
          "富春环保最新的主力资金流向如何？", "富春环保"),
    Topic("huaqi", r"华骐环保（300929）\d{1,2}月\d{1,2}日主力资金", "{when}华骐环保主力资金净流入多少？",
          "华骐环保最新的主力资金流向如何？", "华骐环保"),
    Topic("feida", r"菲达环保（600526）\d{1,2}月\d{1,2}日主力资金", "{when}菲达环保主力资金净流入多少？",
          "菲达环保最新的主力资金流向如何？", "菲达环保"),
)
RELATIVE = (("昨天", 1), ("今天", 0), ("前天", 2))
_TITLE_DAY = re.compile(r"(?<!\d)(\d{1,2})月(\d{1,2})日")


def _article(r: dict) -> Article:
    return Article(title=r["title"], text=r["text"], url=r["url"], published=r["published"], source=r.get("source", ""))


def _day(r: dict) -> date | None:
    """The day an article reports: the first date in its title or its text's first 80 characters ("7月31日，体彩
    超级大乐透第23087期开奖", out on 1 August), else its publication day."""
    m = _TITLE_DAY.search(r["title"]) or _TITLE_DAY.search(r["text"][:80])
    if m:
        try:
            return date(YEAR, int(m[1]), int(m[2]))
        except ValueError:
            pass
    return date.fromisoformat(r["published"][:10]) if r["published"] else None


def _spread(days: list[date], n: int) -> list[date]:
    if len(days) <= n:
        return days
    return [days[round(i * (len(days) - 1) / (n - 1))] for i in range(n)]


def build(corpus_dir: str, out: str, sets: str) -> dict:
    records = [json.loads(line) for f in sorted(glob.glob(f"{corpus_dir}/*.jsonl"))
               for line in open(f, encoding="utf-8")]
    taken: dict[str, dict] = {}
    questions = []
    for topic in TOPICS:
        rx = re.compile(topic.pattern)
        by_day: dict[date, list[dict]] = defaultdict(list)
        for r in records:
            if r["published"] and (rx.search(r["title"]) or rx.search(r["text"][:80])):
                day = _day(r)
                if day is not None:
                    by_day[day].append(r)
                    taken[r["url"]] = r
        days = _spread(sorted(d for d, rs in by_day.items() if len(rs) <= 3), DAYS_PER_TOPIC)
        for i, day in enumerate(days):
            ids = [_article(r).id for r in by_day[day]]
            rel, back = RELATIVE[i % len(RELATIVE)]
            # the latest are asked once the day's articles are out ("8月11日主力资金..." comes out on the 12th)
            out_by = max([day, *(date.fromisoformat(r["published"][:10]) for r in by_day[day])])
            for kind, question, now in (
                ("explicit", topic.question.format(when=f"{day.month}月{day.day}日"), day + timedelta(days=3)),
                ("relative", topic.question.format(when=rel), day + timedelta(days=back)),
                ("latest", topic.latest, out_by),
            ):
                questions.append({"id": f"{topic.name}-{day.isoformat()}-{kind}", "question": question,
                                  "answers": [topic.keyword], "lang": "zh", "set": "crud-dates",
                                  "article_id": ids[0], "article_ids": ids, "now": now.isoformat(), "kind": kind,
                                  "topic": topic.name})
    others = [r for r in records if r["published"] and r["url"] not in taken]
    rng = random.Random(SEED)
    corpus = list(taken.values()) + rng.sample(others, min(DISTRACTORS, len(others)))
    Path(out).mkdir(parents=True, exist_ok=True)
    with open(Path(out) / "corpus.jsonl", "w", encoding="utf-8") as f:
        for r in corpus:
            f.write(json.dumps({k: r[k] for k in ("title", "url", "published", "text", "source") if k in r},
                               ensure_ascii=False) + "\n")
    Path(sets).mkdir(parents=True, exist_ok=True)
    with open(Path(sets) / "crud-dates.jsonl", "w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    return {"topic articles": len(taken), "articles": len(corpus), "questions": len(questions)}


def measure(index: str, set_path: str, reader: str = "none") -> dict:
    from rag.answer import AnswerConfig
    from rag.pipeline import ask, question_dates
    from rag.retrieve import DEFAULT_FUSION, searcher

    qs = [json.loads(line) for line in open(set_path, encoding="utf-8") if line.strip()]
    config = AnswerConfig(reader=reader)
    off = dataclasses.replace(DEFAULT_FUSION, date_boost=0.0, coarse_date_boost=0.0, recency_boost=0.0)
    undated = dataclasses.replace(config, date_check=False)
    variants = {
        "without": dict(fusion=off, config=undated),
        "retrieval boost only": dict(fusion=DEFAULT_FUSION, config=undated),
        "with": dict(fusion=DEFAULT_FUSION, config=config),
        "hard filter": None,
    }
    s = searcher(index)
    out: dict[str, dict[str, list[int]]] = {}
    times: list[float] = []
    for name, kw in variants.items():
        hits: dict[str, list[int]] = defaultdict(list)
        for q in qs:
            gold = set(q["article_ids"])
            args = kw
            if kw is None:  # the resolved range as date_from/date_to; a recency question keeps its boost
                when = question_dates(q["question"], q["now"])
                args = dict(fusion=DEFAULT_FUSION, config=config)
                if when is not None and when.granularity != "recent":
                    args.update(date_from=when.start.isoformat(), date_to=when.end.isoformat())
            t0 = time.perf_counter()
            answer = ask(q["question"], s, now=q["now"], **args)
            if name == "with":
                times.append(time.perf_counter() - t0)
            first = answer.citations[0].article_id if answer.citations else None
            hits[q["kind"]].append(int(first in gold))
            hits["all"].append(int(first in gold))
        out[name] = hits
    times.sort()
    return {"questions": len(qs), "hit@1": {name: {k: f"{sum(v)}/{len(v)} = {sum(v) / len(v):.3f}"
                                                   for k, v in hits.items()} for name, hits in out.items()},
            "ask p50 ms (with)": round(1000 * times[len(times) // 2], 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.crud_dates", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--corpus", default="eval/out/crud/corpus")
    b.add_argument("--out", default="eval/out/crud-dates")
    b.add_argument("--sets", default="eval/sets")
    m = sub.add_parser("measure")
    m.add_argument("--index", default="eval/out/crud-dates/index")
    m.add_argument("--set", default="eval/sets/crud-dates.jsonl")
    m.add_argument("--reader", default="none", choices=("none", "e5"))
    args = p.parse_args(argv)
    if args.command == "build":
        result = build(args.corpus, args.out, args.sets)
    else:
        result = measure(args.index, args.set, args.reader)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
