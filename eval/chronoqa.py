"""ChronoQA: time-sensitive news questions over their gold passages, asked on their question_date, by temporal type.

    python -m eval.chronoqa build [--csv ../shared/data/chronoqa_dev.csv] [--out eval/out/chronoqa]
    rag index eval/out/chronoqa/corpus.jsonl --index eval/out/chronoqa/index -q
    python -m eval.chronoqa measure [--index eval/out/chronoqa/index] [--limit N] [--variants with,without]

Every gold passage of every row is indexed together (they are each other's distractors, as ChronoQA's README asks;
3,440 passages for the dev half). Each question is asked with `now` = its question_date, with the date handling
(the default) and without it (Fusion's date and recency boosts 0, AnswerConfig.date_check off). Scores, by
temporal_expression_type (explicit / implicit) and temporal_type (absolute / relative / aggregate):
- hit@1: the first retrieved passage is a gold one; hit@5: one of the first five is;
- cite@1: the first citation's article is a gold passage;
- sent@1 (entity / numerical / time answers that a gold passage holds verbatim): the first cited sentence holds the
  answer (normalised as rag eval does);
- declined: the share answered with a decline.
`rag eval ../shared/data/chronoqa_dev.csv --index eval/out/chronoqa/index` scores the verbatim rows the usual way.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from rag.evaluation import contains_answer
from rag.evaluation.chronoqa import read_chronoqa
from rag.evaluation.datasets import write_articles

CSV = "../shared/data/chronoqa_dev.csv"
OUT = "eval/out/chronoqa"


def build(csv_path: str, out: str) -> dict:
    articles, rows, errors = read_chronoqa(csv_path)
    write_articles(articles, Path(out) / "corpus.jsonl")
    return {"passages": len(articles), "questions": len(rows), "bad rows": errors[:10], "corpus": str(Path(out) / "corpus.jsonl")}


def _rate(v: list[int]) -> str:
    return f"{sum(v) / len(v):.3f} ({len(v)})" if v else "-"


def measure(csv_path: str, index: str, limit: int | None = None, variants: tuple[str, ...] = ("with", "without"),
            reader: str | None = None) -> dict:
    from rag.answer import AnswerConfig
    from rag.pipeline import ask
    from rag.retrieve import DEFAULT_FUSION, searcher

    articles, rows, _ = read_chronoqa(csv_path)
    text = {a.id: a.text for a in articles}
    if limit:
        rows = rows[::max(1, len(rows) // limit)][:limit]
    config = AnswerConfig() if reader is None else AnswerConfig(reader=reader)
    settings = {
        "with": dict(fusion=DEFAULT_FUSION, config=config),
        "without": dict(fusion=dataclasses.replace(DEFAULT_FUSION, date_boost=0.0, coarse_date_boost=0.0, recency_boost=0.0),
                        config=dataclasses.replace(config, date_check=False)),
    }
    s = searcher(index)
    ask(rows[0].question, s, now=rows[0].now)  # models and index loaded outside the timings
    report: dict = {"questions": len(rows), "index": index}
    for name in variants:
        scores: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        times = []
        for r in rows:
            t0 = time.perf_counter()
            answer = ask(r.question, s, k=5, now=r.now, **settings[name])
            times.append(time.perf_counter() - t0)
            gold = set(r.gold)
            ranked = [p.article_id for p in answer.passages]
            first_cite = answer.citations[0] if answer.citations else None
            got = {"hit@1": int(bool(ranked) and ranked[0] in gold), "hit@5": int(bool(gold & set(ranked[:5]))),
                   "cite@1": int(first_cite is not None and first_cite.article_id in gold),
                   "declined": int(answer.abstained)}
            if r.verbatim and any(r.answer in text[g] for g in r.gold):
                got["sent@1"] = int(first_cite is not None and contains_answer(first_cite.sentence, [r.answer]))
            for group in ("all", f"expression={r.expression}", f"type={r.kind}", f"{r.expression}-{r.kind}"):
                for metric, v in got.items():
                    scores[group][metric].append(v)
        times.sort()
        report[name] = {g: {m: _rate(v) for m, v in sorted(ms.items())} for g, ms in sorted(scores.items())}
        report[name]["ask ms p50/p95"] = f"{1000 * times[len(times) // 2]:.0f}/{1000 * times[int(len(times) * 0.95)]:.0f}"
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.chronoqa", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--csv", default=CSV)
    b.add_argument("--out", default=OUT)
    m = sub.add_parser("measure")
    m.add_argument("--csv", default=CSV)
    m.add_argument("--index", default=f"{OUT}/index")
    m.add_argument("--limit", type=int, default=None, help="every n-th row, N in all")
    m.add_argument("--variants", default="with,without")
    m.add_argument("--reader", default=None, choices=("none", "e5"))
    m.add_argument("--out", default=None, help="also write the report as JSON here")
    args = p.parse_args(argv)
    if args.command == "build":
        result = build(args.csv, args.out)
    else:
        result = measure(args.csv, args.index, args.limit, tuple(args.variants.split(",")), args.reader)
        if args.out:
            Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
