"""Compare chunk sizes by lexical retrieval on the dev sets (the dense side needs a full re-embedding per size).

    python -m eval.chunk_sizes --sizes 200:40 300:60 500:100 800:150 --limit 500
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from rag.evaluation import first_hit_rank, load_questions
from rag.index import index_paths
from rag.retrieve import Fusion, Searcher

ROOT = Path(__file__).resolve().parent.parent


class ZeroEmbedder:
    """Constant vectors: only the lexical side is measured here."""

    name, dim = "zero-8", 8

    def embed_documents(self, texts):
        v = np.zeros((len(texts), self.dim), np.float32)
        v[:, 0] = 1.0
        return v

    embed_queries = embed_documents


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.chunk_sizes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["200:40", "300:60", "500:100", "800:150"])
    ap.add_argument("--limit", type=int, default=500)
    args = ap.parse_args()
    corpus = sorted((ROOT / "eval" / "corpus").glob("*.jsonl"))
    sets = {}
    for name in ("cmrc2018", "drcd", "xquad-zh"):
        qs = [q for q in load_questions(ROOT / "eval" / "sets" / f"{name}.jsonl").questions if q.answers]
        sets[name] = random.Random(0).sample(qs, min(args.limit, len(qs)))
    print(f"{'size:overlap':>12s} {'chunks':>7s} " + " ".join(f"{n + ' h@1':>13s} {n + ' h@5':>13s}" for n in sets))
    for spec in args.sizes:
        size, overlap = (int(x) for x in spec.split(":"))
        with tempfile.TemporaryDirectory() as d:
            s = index_paths(corpus, d, ZeroEmbedder(), progress=False, chunk_size=size, chunk_overlap=overlap)
            searcher = Searcher(d, ZeroEmbedder())
            cells = []
            for qs in sets.values():
                ranks = [first_hit_rank(searcher.search(q.question, 5, Fusion(mode="lexical")), q.answers, q.article_id)
                         for q in qs]
                cells += [np.mean([r is not None and r <= 1 for r in ranks]), np.mean([r is not None for r in ranks])]
            print(f"{spec:>12s} {s.total_chunks:7d} " + " ".join(f"{c:13.3f}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
