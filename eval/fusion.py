"""Compare retrieval fusion settings on the dev index: lexical only, dense only, RRF, weighted (several weights).

    python -m eval.fusion --index eval/out/dev-index --limit 1000
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

from rag.evaluation import first_hit_rank, load_questions
from rag.retrieve import Fusion, searcher

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.fusion", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=str(ROOT / "eval" / "out" / "dev-index"))
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--weights", nargs="+", default=["0.7:0.15", "0.8:0.15", "0.9:0.15", "0.7:0.3"])
    args = ap.parse_args()
    s = searcher(args.index)
    configs = {"lexical": Fusion(mode="lexical"), "dense": Fusion(mode="dense"), "rrf": Fusion(mode="rrf")}
    for w in args.weights:
        a, b = (float(x) for x in w.split(":"))
        configs[f"weighted {a}/{b}"] = Fusion(lexical_weight=a, cross_lexical_weight=b)
    print(f"{'set':10s} {'fusion':22s} {'hit@1':>6s} {'hit@5':>6s} {'hit@20':>6s}")
    for name in ("cmrc2018", "drcd", "xquad-zh", "xquad-en", "seed"):
        qs = [q for q in load_questions(ROOT / "eval" / "sets" / f"{name}.jsonl").questions if q.answers]
        qs = random.Random(0).sample(qs, min(args.limit, len(qs)))
        vecs = s.embedder.embed_queries([q.question for q in qs])
        for label, f in configs.items():
            ranks = [first_hit_rank(s.search(q.question, 20, f, qvec=v), q.answers, q.article_id) for q, v in zip(qs, vecs)]
            h = [np.mean([r is not None and r <= k for r in ranks]) for k in (1, 5, 20)]
            print(f"{name:10s} {label:22s} {h[0]:6.3f} {h[1]:6.3f} {h[2]:6.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
