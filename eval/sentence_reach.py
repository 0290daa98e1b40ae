"""Where a set's first-sentence hits are lost: whether some candidate sentence holds the answer, where the order head
ranks the first that does, and what `ask`'s choice (order head, re-reader, dates) cites first.

    python -m eval.sentence_reach --index eval/out/crud-noanswer/index --set crud-kept [--limit N] [--out FILE.jsonl]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def reach(index: str, name: str, limit: int | None) -> list[dict]:
    from rag.answer import AnswerConfig, Answerer
    from rag.answer.decide import rank
    from rag.evaluation import contains_answer
    from rag.pipeline import gather
    from rag.retrieve import searcher

    s, answerer = searcher(index), Answerer(AnswerConfig())
    rows = [json.loads(line) for line in open(ROOT / "eval" / "sets" / f"{name}.jsonl", encoding="utf-8") if line.strip()]
    out = []
    for r in [r for r in rows if r.get("answers")][:limit]:
        ev = answerer.kept(gather(r["question"], s, 5, now=r.get("now")))
        rec = {"id": r["id"], "candidates": len(ev.candidates)}
        if ev.candidates:
            held = [contains_answer(c.text, r["answers"]) for c in ev.candidates]
            order = np.argsort([-c.order for c in rank(ev.candidates, ev.features, answerer.config)], kind="stable")
            picked, declined = answerer.choose(ev)
            rec.update(held=sum(held), first_held_at=next((i for i, j in enumerate(order) if held[j]), None),
                       cited_first=bool(picked) and contains_answer(picked[0].text, r["answers"]), declined=declined)
        out.append(rec)
    return out


def summary(recs: list[dict]) -> dict:
    n = len(recs) or 1
    at = [r.get("first_held_at") for r in recs]
    return {"questions": len(recs),
            "some candidate holds the answer": round(100 * sum(bool(r.get("held")) for r in recs) / n, 1),
            "order head first": round(100 * sum(a == 0 for a in at) / n, 1),
            "order head best 3": round(100 * sum(a is not None and a < 3 for a in at) / n, 1),
            "cited first (ask's choice)": round(100 * sum(bool(r.get("cited_first")) for r in recs) / n, 1),
            "declined": round(100 * sum(bool(r.get("declined")) for r in recs) / n, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.sentence_reach", description=__doc__.split("\n")[0])
    p.add_argument("--index", required=True)
    p.add_argument("--set", required=True, help="a question set in eval/sets (its name)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", default=None, help="per-question records (JSONL)")
    args = p.parse_args(argv)
    recs = reach(args.index, args.set, args.limit)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    print(json.dumps(summary(recs), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
