"""Dump `ask()`'s answers for a fixed sample of dev questions to JSON, or compare two dumps (`--compare A B`)."""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name, how many (0 = all)
SAMPLE = (("cmrc2018", 100), ("drcd", 50), ("xquad-zh", 50), ("xquad-en", 100), ("seed", 50), ("followup", 0))


def questions(seed: int = 0) -> list[dict]:
    out = []
    for name, n in SAMPLE:
        rows = [json.loads(line) for line in (ROOT / "eval" / "sets" / f"{name}.jsonl").open(encoding="utf-8")
                if line.strip()]
        if n and n < len(rows):
            rows = random.Random(f"{seed}:{name}").sample(rows, n)
        out += [{**r, "_set": name} for r in rows]
    return out


def dump(index: str, out: str) -> None:
    from rag import ask

    rows = []
    for q in questions():
        history = [tuple(t) for t in q.get("history") or []] or None
        a = ask(q["question"], index, history=history)
        rows.append({"id": f'{q.get("set") or q["_set"]}:{q["id"]}', "text": a.text, "declined": a.abstained,
                     "citations": [[c.number, c.article_id, c.sentence, c.start, c.end] for c in a.citations]})
    Path(out).write_text(json.dumps(rows, ensure_ascii=False, indent=0), encoding="utf-8")
    print(f"{len(rows)} answers written to {out}")


def compare(a: str, b: str) -> int:
    x = {r["id"]: r for r in json.loads(Path(a).read_text(encoding="utf-8"))}
    y = {r["id"]: r for r in json.loads(Path(b).read_text(encoding="utf-8"))}
    differ = sorted(i for i in x.keys() | y.keys() if x.get(i) != y.get(i))
    for i in differ[:20]:
        print(f"{i}:\n  {x.get(i)}\n  {y.get(i)}")
    print(f"{len(x.keys() & y.keys())} questions in both, {len(differ)} differ")
    return 1 if differ else 0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m eval.same_answers", description=__doc__)
    p.add_argument("--index", default=str(ROOT / "eval" / "out" / "dev-index"))
    p.add_argument("--out", default="answers.json")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = p.parse_args()
    if args.compare:
        return compare(*args.compare)
    dump(args.index, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
