"""What the answerer knows when it answers: per question, the signals a decline rule could use, to choose one.

    python -m eval.decline_probe --index eval/out/crud-noanswer/index --sets crud-noanswer crud-kept --out probe.jsonl
    python -m eval.decline_probe --rules probe-a.jsonl probe-b.jsonl ...

For each question (eval/sets/NAME.jsonl): whether `ask` declines today, the confidence (`sure`), the order head's
gap, the e5 reader's best cosine over the sentences it reads, the re-reader's scores of the order head's best three
sentences (read whether or not `ask` would read them), and whether the cited first sentence holds the answer. With
--rules, the records of several probes are scored under extra decline rules: declined share of unanswerable
questions against wrong declines of answerable ones, per set.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def probe(index: str, sets: list[str], limit: int | None, out: str) -> None:
    from rag.answer import AnswerConfig, Answerer
    from rag.answer.decide import confidence, rank, to_read, top_gap
    from rag.evaluation import contains_answer
    from rag.models import get_reader, pair_scores, read
    from rag.pipeline import gather
    from rag.retrieve import searcher

    s = searcher(index)
    cfg = AnswerConfig()
    answerer = Answerer(cfg)
    with open(out, "w", encoding="utf-8") as f:
        for name in sets:
            rows = [json.loads(line) for line in open(ROOT / "eval" / "sets" / f"{name}.jsonl", encoding="utf-8")
                    if line.strip()]
            rows = [r for r in rows if not r.get("history")]
            if limit:
                rows = rows[::max(1, len(rows) // limit)][:limit]
            for r in rows:
                ev = gather(r["question"], s, 5, now=r.get("now"))
                answer = answerer.run(ev)
                rec = {"set": name, "id": r["id"], "unanswerable": bool(r.get("unanswerable")),
                       "declined": answer.abstained}
                ev = answerer.kept(ev)
                if ev.candidates:
                    scored = rank(ev.candidates, ev.features, cfg)
                    ranked = sorted(scored, key=lambda c: -c.order)
                    rec["sure"] = confidence(scored)
                    rec["gap"] = top_gap(scored) if len(scored) > 1 else 9.0
                    texts = [c.text for c in ranked[:3]]
                    rec["reread"] = [float(x) for x in pair_scores(ev.question, texts)]
                    sims = read(get_reader(cfg.reader), [ev.question], [c.text for c in to_read(scored, cfg)],
                                ev.read_vectors)
                    rec["read"] = float(sims[-1].max())
                if r.get("answers") and answer.citations:
                    rec["sent_hit"] = contains_answer(answer.citations[0].sentence, r["answers"])
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()


def rules(paths: list[str]) -> None:
    recs = [json.loads(line) for p in paths for line in open(p, encoding="utf-8") if line.strip()]
    sets = list(dict.fromkeys(r["set"] for r in recs))

    def score(decide) -> dict:
        out = {}
        for s in sets:
            rs = [r for r in recs if r["set"] == s]
            d = [bool(r["declined"] or ("reread" in r and decide(r))) for r in rs]
            out[s] = round(100 * sum(d) / len(d), 1)
        return out

    print("today", score(lambda r: False))
    for t in (-6, -5, -4, -3, -2, -1, 0, 1):
        print(f"reread max < {t}", score(lambda r, t=t: max(r["reread"]) < t))
    for t in (-4, -3, -2, -1, 0):
        print(f"reread top < {t}", score(lambda r, t=t: r["reread"][0] < t))
    for t in np.linspace(0.80, 0.9, 6):
        print(f"read < {t:.2f}", score(lambda r, t=t: r["read"] < t))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.decline_probe", description=__doc__.split("\n")[0])
    p.add_argument("--index")
    p.add_argument("--sets", nargs="+", default=[])
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", default="probe.jsonl")
    p.add_argument("--rules", nargs="+", default=None, metavar="PROBE.jsonl")
    args = p.parse_args(argv)
    if args.rules:
        rules(args.rules)
    else:
        probe(args.index, args.sets, args.limit, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
