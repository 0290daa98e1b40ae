"""Local index vs Milvus store over the same records (`python -m eval.store_parity`): the dev index is copied into
milvus-lite stores (vectors included: nothing is embedded again), one per lexical mode, then the same questions
are asked of each store in this one process and the scores are written side by side.

    python -m eval.store_parity --limit 100                 # ask() per question: hit@1, ans-sent hit, ask p50
    python -m eval.store_parity --limit 300 --retrieval-only  # retrieve() alone: hit@1/@5 (lexical mode choice)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV_INDEX = ROOT / "eval" / "out" / "dev-index"
OUT = ROOT / "eval" / "out" / "store-parity"
SETS = ("cmrc2018", "drcd", "xquad-zh", "xquad-en", "seed", "followup", "nonsense")


def stores(modes: list[str]) -> dict[str, str]:
    out = {"local": str(DEV_INDEX)}
    for mode in modes:
        out[f"milvus-{mode}"] = f"milvus:{OUT / f'dev-{mode}.db'}"
    return out


def ensure_copies(modes: list[str]) -> list[str]:
    from rag.errors import RagError
    from rag.store import open_store
    from rag.store.indexing import copy_index

    lines = []
    for mode in modes:
        spec = stores([mode])[f"milvus-{mode}"]
        try:
            open_store(spec).close()
            lines.append(f"{spec}: present")
        except RagError:
            lines.append(copy_index(DEV_INDEX, spec, lexical=mode, progress=True))
            print(lines[-1], file=sys.stderr)
    return lines


def retrieval_only(spec: str, questions) -> dict[str, dict]:
    from rag.evaluation.metrics import first_hit_rank
    from rag.pipeline import retrieve

    retrieve(questions[0].question, spec, k=1)  # open and warm up outside the timings
    per: dict[str, list] = {}
    for q in questions:
        if q.unanswerable or q.history:
            continue
        when = {"now": q.now} if q.now else {}
        t0 = time.perf_counter()
        ps = retrieve(q.question, spec, k=20, **when)
        ms = (time.perf_counter() - t0) * 1000
        per.setdefault(q.set, []).append((first_hit_rank(ps, q.answers, q.article_id), ms))
    out = {}
    for name, got in [*per.items(), ("all", [r for rs in per.values() for r in rs])]:
        ranks, lat = [r for r, _ in got], sorted(ms for _, ms in got)
        out[name] = {"n": len(got), "hit1": sum(r == 1 for r in ranks) / len(got),
                     "hit5": sum(r is not None and r <= 5 for r in ranks) / len(got), "p50_ms": lat[len(lat) // 2]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.store_parity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=100, help="questions per set (seeded sample; default 100)")
    p.add_argument("--sets", nargs="*", default=list(SETS))
    p.add_argument("--modes", nargs="*", default=["sparse", "bm25"], help="Milvus lexical modes to compare")
    p.add_argument("--retrieval-only", action="store_true", help="retrieve() alone, no ask()")
    p.add_argument("--only", nargs="*", default=None, help="run these stores only (local, milvus-sparse, ...)")
    args = p.parse_args(argv)
    from rag.evaluation import run_eval
    from rag.evaluation.questions import load_questions, sample_questions

    OUT.mkdir(parents=True, exist_ok=True)
    copies = ensure_copies(args.modes)
    paths = [str(ROOT / "eval" / "sets" / f"{s}.jsonl") for s in args.sets]
    report: dict = {"limit": args.limit, "sets": args.sets, "copies": copies, "stores": {}}
    for name, spec in stores(args.modes).items():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        if args.retrieval_only:
            qs = [q for path in paths for q in sample_questions(load_questions(path).questions, args.limit, 0)]
            report["stores"][name] = retrieval_only(spec, qs)
        else:
            run = run_eval(paths, spec, limit=args.limit, out_dir=OUT / name, label=name, progress=False,
                           command=f"eval.store_parity {name}")
            report["stores"][name] = {g: {"n": s.n, "hit1": s.hit1, "hit5": s.hit5, "ans_sent_hit": s.ans_sent_hit,
                                          "wrong_decline": s.wrong_decline, "abstain_correct": s.abstain_correct,
                                          "p50_ms": s.p50_ms, "p95_ms": s.p95_ms, "errors": s.errors}
                                      for g, s in run.groups.items()}
        report["stores"][name]["_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {report['stores'][name].get('all')} in {report['stores'][name]['_seconds']} s",
              file=sys.stderr, flush=True)
    kind = "retrieval" if args.retrieval_only else "ask"
    (OUT / f"{kind}-{args.limit}.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(table(report, kind))
    return 0


def table(report: dict, kind: str) -> str:
    names = list(report["stores"])
    cols = ("hit1", "hit5", "p50_ms") if kind == "retrieval" else ("hit1", "ans_sent_hit", "p50_ms")
    groups = [g for g in report["stores"][names[0]] if not g.startswith("_")]
    head = "| set | n | " + " | ".join(f"{n} {c}" for c in cols for n in names) + " |"
    lines = [head, "|" + "---|" * (2 + len(cols) * len(names))]
    for g in groups:
        row = [g, str(report["stores"][names[0]][g]["n"])]
        for c in cols:
            for n in names:
                v = report["stores"][n].get(g, {}).get(c)
                row.append("-" if v is None else f"{v:.0f}" if c.endswith("_ms") else f"{100 * v:.1f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
