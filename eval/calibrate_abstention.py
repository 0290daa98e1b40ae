"""Calibrate when `ask` declines: its confidence (the highest probability of any candidate sentence) for answerable
vs unanswerable questions.

Unanswerable questions are made by hiding the question's paragraph: the same question is asked with retrieval
restricted (source filter) to a sub-corpus that does not hold it. Answerable ones are asked against their own
sub-corpus. Prints the rates for a range of thresholds, per language, and the chosen ones.

    python eval/calibrate_abstention.py --index eval/out/dev-index --limit 300
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer import AnswerConfig, confidence, rank  # noqa: E402
from rag.evaluation import contains_answer, load_questions  # noqa: E402
from rag.pipeline import gather  # noqa: E402

PLAN = [  # (set, its own source, a source that cannot answer it)
    ("cmrc2018", "cmrc2018", "drcd"),
    ("drcd", "drcd", "cmrc2018"),
    ("xquad-zh", "xquad-zh", "cmrc2018"),
    ("xquad-en", "xquad-zh", "cmrc2018"),
]


def best_prob(q, index, source):
    ev = gather(q.question, index, 5, source=source)
    if not ev.candidates:
        return 0.0, False
    ranked = rank(ev.candidates, ev.features, AnswerConfig())
    top = max(ranked, key=lambda c: c.order)  # the sentence `ask` would cite first
    return confidence(ranked), contains_answer(top.text, q.answers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=str(ROOT / "eval" / "out" / "dev-index"))
    ap.add_argument("--limit", type=int, default=300)
    args = ap.parse_args()
    rows = {"zh": [], "en": []}
    for name, own, other in PLAN:
        qs = [q for q in load_questions(ROOT / "eval" / "sets" / f"{name}.jsonl").questions if q.answers]
        qs = random.Random(0).sample(qs, min(args.limit, len(qs)))
        lang = "en" if name.endswith("-en") else "zh"
        for q in qs:
            p_in, correct = best_prob(q, args.index, own)
            p_out, _ = best_prob(q, args.index, other)
            rows[lang].append((p_in, correct, p_out))
    for lang, r in rows.items():
        a = np.array(r, dtype=float)
        print(f"\n{lang}: {len(a)} questions asked twice (own sub-corpus / a sub-corpus without the answer)")
        print("threshold  wrong-decline(answerable)  correct-decline(unanswerable)  declined-when-wrong")
        for t in [0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4]:
            wd = np.mean(a[:, 0] < t)
            cd = np.mean(a[:, 2] < t)
            wrong = a[:, 1] == 0
            dw = np.mean(a[wrong, 0] < t) if wrong.any() else float("nan")
            print(f"{t:9.2f}  {wd:25.3f}  {cd:29.3f}  {dw:19.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
