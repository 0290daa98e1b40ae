"""Questions that need two articles: two CRUD-RAG questions of one entry, answered by different gold articles, asked
as one ("Q1？Q2？"), and how often the cited sentences cover each part's answer.

    python -m eval.crud_twopart build [--sets eval/sets] [--per-entry 1]
    python -m eval.crud_twopart measure --index eval/out/crud-index [--set eval/sets/crud-twopart.jsonl]

An entry of QuestAnswer2Docs/3Docs (eval/crud.py) draws on two or three articles; its generated questions each ask
one fact, and `article_id` is the gold article holding the answer. Pairs of an entry's questions whose answers sit
in different gold articles (and neither answer in the other's article) make one two-part question. Measured: both
answers in the cited sentences ("both"), each part's answer in them ("parts"), and a decline.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

SETS = ("crud-2docs", "crud-3docs")
SEED = 0


def build(sets_dir: str, per_entry: int) -> dict:
    rows = [json.loads(line) for s in SETS for line in open(Path(sets_dir) / f"{s}.jsonl", encoding="utf-8") if line.strip()]
    by_entry: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("article_id"):
            by_entry[r["entry"]].append(r)
    rng = random.Random(SEED)
    out = []
    for entry, qs in sorted(by_entry.items()):
        pairs = [(a, b) for i, a in enumerate(qs) for b in qs[i + 1:] if a["article_id"] != b["article_id"]
                 and a["answers"][0] not in b["question"] and b["answers"][0] not in a["question"]]
        for a, b in rng.sample(pairs, min(per_entry, len(pairs))):
            question = a["question"].rstrip("？?") + "？" + b["question"].rstrip("？?") + "？"
            out.append({"id": f"{a['id']}+{b['id'].rsplit('-', 1)[-1]}", "question": question, "lang": "zh",
                        "set": "crud-twopart", "entry": entry, "parts": [a["answers"], b["answers"]],
                        "answers": a["answers"] + b["answers"], "article_ids": [a["article_id"], b["article_id"]]})
    path = Path(sets_dir) / "crud-twopart.jsonl"
    with open(path.with_suffix(".tmp"), "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    path.with_suffix(".tmp").replace(path)
    return {"questions": len(out), "entries": len(by_entry), "set": str(path)}


def measure(index: str, set_path: str, limit: int | None = None) -> dict:
    from rag.evaluation import contains_answer
    from rag.pipeline import ask
    from rag.retrieve import searcher

    rows = [json.loads(line) for line in open(set_path, encoding="utf-8") if line.strip()]
    if limit:
        rows = rows[::max(1, len(rows) // limit)][:limit]
    s = searcher(index)
    both = parts = declined = cites = 0
    times = []
    for r in rows:
        t0 = time.perf_counter()
        a = ask(r["question"], s)
        times.append(time.perf_counter() - t0)
        sentences = [c.sentence for c in a.citations]
        got = [any(contains_answer(x, p) for x in sentences) for p in r["parts"]]
        both += all(got)
        parts += sum(got)
        declined += a.abstained
        cites += len(a.citations)
    n = len(rows)
    times.sort()
    return {"questions": n, "both answers cited": round(both / n, 3), "part answers cited": round(parts / (2 * n), 3),
            "declined": round(declined / n, 3), "citations per answer": round(cites / n, 2),
            "ask ms p50": round(1000 * times[n // 2])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.crud_twopart", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--sets", default="eval/sets")
    b.add_argument("--per-entry", type=int, default=1)
    m = sub.add_parser("measure")
    m.add_argument("--index", default="eval/out/crud-index")
    m.add_argument("--set", default="eval/sets/crud-twopart.jsonl")
    m.add_argument("--limit", type=int, default=None)
    args = p.parse_args(argv)
    result = build(args.sets, args.per_entry) if args.command == "build" else measure(args.index, args.set, args.limit)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
