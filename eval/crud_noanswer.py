"""Related news without the answer: CRUD-RAG questions asked over the slice with their gold articles taken out.

    python -m eval.crud_noanswer [--slice eval/out/crud/slice-2000.jsonl] [--out eval/out/crud-noanswer] [--sets eval/sets]
    rag index eval/out/crud-noanswer/corpus.jsonl --index eval/out/crud-noanswer/index -q
    python -m eval.run eval/sets/crud-noanswer.jsonl eval/sets/crud-kept.jsonl --index eval/out/crud-noanswer/index

Half of the 2Docs/3Docs entries (seeded) lose their gold articles: the corpus is the slice without them (it still
holds the same period's news, often the same events told by other articles). Their questions whose answer no
remaining article holds (rag.evaluation.normalise, as `rag eval` matches) are crud-noanswer.jsonl, marked
unanswerable: declining them is right. The other half's questions, whose gold articles stay, are crud-kept.jsonl:
declining them is wrong. A question of a removed entry whose answer some other article still holds is dropped (it
may be answerable) and counted.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from rag.evaluation import normalise
from rag.evaluation.datasets import read_articles, write_articles, write_jsonl

SETS = ("crud-2docs", "crud-3docs")
SEED = 0


def removed_entries(questions) -> set[str]:
    """The seeded half of the questions' entries (dicts with "entry") whose gold articles leave the corpus: their
    questions are crud-noanswer's; the other half's are crud-kept's (and what training may not see)."""
    entries = sorted({q["entry"] for q in questions})
    return set(random.Random(SEED).sample(entries, len(entries) // 2))


def read_sets(sets_dir) -> list[dict]:
    """Every question line of SETS in `sets_dir`."""
    return [json.loads(line) for s in SETS for line in open(Path(sets_dir) / f"{s}.jsonl", encoding="utf-8")
            if line.strip()]


def build(slice_path: str, out: str, sets_dir: str) -> dict:
    articles = read_articles(slice_path)
    questions = read_sets(sets_dir)
    removed = removed_entries(questions)
    gone = {a for q in questions if q["entry"] in removed for a in q["article_ids"]}
    kept_articles = [a for a in articles if a.id not in gone]
    texts = [normalise(a.title + "\n" + a.text) for a in kept_articles]
    noanswer, kept, still = [], [], 0
    for q in questions:
        if q["entry"] in removed:
            answers = [normalise(x) for x in q["answers"]]
            if any(x and x in t for x in answers for t in texts):
                still += 1
                continue
            noanswer.append({"id": f"{q['set']}:{q['id']}", "question": q["question"], "unanswerable": True, "lang": "zh",
                             "set": "crud-noanswer", "entry": q["entry"], "removed_answers": q["answers"]})
        elif all(a not in gone for a in q["article_ids"]):
            kept.append({**q, "id": f"{q['set']}:{q['id']}", "set": "crud-kept"})
    write_articles(kept_articles, Path(out) / "corpus.jsonl")
    write_jsonl(noanswer, Path(sets_dir) / "crud-noanswer.jsonl")
    write_jsonl(kept, Path(sets_dir) / "crud-kept.jsonl")
    return {"articles": len(kept_articles), "removed articles": len(articles) - len(kept_articles),
            "entries removed": len(removed), "noanswer questions": len(noanswer),
            "dropped (answer still in another article)": still, "kept questions": len(kept)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.crud_noanswer", description=__doc__.split("\n")[0])
    p.add_argument("--slice", default="eval/out/crud/slice-2000.jsonl")
    p.add_argument("--out", default="eval/out/crud-noanswer")
    p.add_argument("--sets", default="eval/sets")
    args = p.parse_args(argv)
    print(json.dumps(build(args.slice, args.out, args.sets), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
