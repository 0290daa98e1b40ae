"""Time `retrieve` and `ask(reader="none")` on one existing store, with whatever `rag` is first on PYTHONPATH, so
two commits can be compared on the same store (eval.bench rebuilds its synthetic stores at random on every run).
From the project root (`-P` keeps the current directory off the path, so `rag` comes from PYTHONPATH's first entry):

    python -m eval.bench --keep ...          # leaves eval/out/bench/store-100k
    git worktree add /tmp/old e4f688b
    PYTHONPATH=/tmp/old:. python -P -m eval.same_store eval/out/bench/store-100k
    python -m eval.same_store eval/out/bench/store-100k
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rag.answer import AnswerConfig
from rag.pipeline import ask, retrieve
from rag.retrieve import searcher


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.same_store", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index")
    ap.add_argument("--questions", default=str(Path(__file__).parent / "out" / "bench" / "questions.json"),
                    help="eval.bench's questions (JSON list of {question, lang})")
    ap.add_argument("--passes", type=int, default=2)
    args = ap.parse_args()
    qs = json.loads(Path(args.questions).read_text(encoding="utf-8"))
    s = searcher(args.index)
    s.embedder.embed_queries(["warm"])
    for q in qs[:5]:
        retrieve(q["question"], args.index, k=5)
    plain = AnswerConfig(reader="none")
    import rag

    print(f"code: {Path(rag.__file__).parent}  store: {args.index}")
    for lang in sorted({q["lang"] for q in qs}):
        r, a = [], []
        for _ in range(args.passes):
            for q in (q for q in qs if q["lang"] == lang):
                t = time.perf_counter()
                retrieve(q["question"], args.index, k=5)
                r.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                ask(q["question"], args.index, config=plain)
                a.append((time.perf_counter() - t) * 1000)
        print(f"{lang}: retrieve p50 {statistics.median(r):.1f} ms, ask without the reader p50 {statistics.median(a):.1f} ms"
              f" ({len(r)} timings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
