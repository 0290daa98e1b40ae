"""Choose AnswerConfig.min_read_score_names: the stricter score an English question over Chinese text must reach when
the cited article mentions none of the names it asks about (rag.lang.names).

Every XQuAD-en question is asked against its own sub-corpus (answerable) and against CMRC 2018 (unanswerable), as in
eval.calibrate_abstention; the questions are shuffled and halved. For each candidate threshold the rates of wrongly
declined answerable questions (and of those among them that had been answered right), and of correctly declined
unanswerable ones are printed for the half used to choose and for the other half.

    python -m eval.calibrate_names            # ~8 min on 2 cores; --rows OUT.json re-prints from a saved run
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from eval.calibrate_abstention import evidence, shipped_rule
from rag.answer import AnswerConfig
from rag.evaluation import contains_answer, load_questions
from rag.models import get_reader

ROOT = Path(__file__).resolve().parent.parent

THRESHOLDS = (None, 118.0, 120.0, 122.0, 124.0, 126.0, 130.0)


def signals(q, index, source, cfg, reader):
    """[confidence, reader's best cosine, year missed, names missed, first sentence holds the answer]"""
    sig, best = evidence(q, index, source, cfg, reader)
    right = best is not None and best.passage.article_id == q.article_id and contains_answer(best.text, q.answers)
    return [*sig, float(right)]


def rates(own: np.ndarray, other: np.ndarray, threshold: float | None, cfg: AnswerConfig) -> tuple:
    def rule(a):
        return shipped_rule(a[:, 0], a[:, 1], True, cfg, year=a[:, 2], names=a[:, 3], names_threshold=threshold)

    d_own, d_other = rule(own), rule(other)
    return d_own.mean(), (d_own & (own[:, 4] > 0)).mean(), d_other.mean()


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.calibrate_names", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=str(ROOT / "eval" / "out" / "dev-index"))
    ap.add_argument("--limit", type=int, default=None, help="questions (default: all)")
    ap.add_argument("--out", default=str(ROOT / "eval" / "out" / "names-rows.json"))
    ap.add_argument("--rows", default=None, help="re-print from the rows a previous run saved")
    args = ap.parse_args()
    cfg = AnswerConfig()
    if args.rows:
        rows = json.loads(Path(args.rows).read_text(encoding="utf-8"))
    else:
        qs = [q for q in load_questions(ROOT / "eval" / "sets" / "xquad-en.jsonl").questions if q.answers]
        random.Random(0).shuffle(qs)
        reader = get_reader("e5")
        rows = [{"id": q.id, "own": signals(q, args.index, "xquad-zh", cfg, reader),
                 "other": signals(q, args.index, "cmrc2018", cfg, reader)} for q in qs[: args.limit]]
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows), encoding="utf-8")
    own, other = (np.array([r[k] for r in rows], dtype=float) for k in ("own", "other"))
    half = len(rows) // 2
    print(f"{len(rows)} XQuAD-en questions; names missed by the cited article: answerable {own[:, 3].mean():.1%}, "
          f"unanswerable {other[:, 3].mean():.1%}")
    print("threshold   choosing half: wrong (answered right) / correct     other half: wrong (answered right) / correct")
    for t in THRESHOLDS:
        a = rates(own[:half], other[:half], t, cfg)
        b = rates(own[half:], other[half:], t, cfg)
        label = "off" if t is None else f"{t:g}"
        print(f"{label:>9}   {a[0]:6.1%} ({a[1]:5.1%}) / {a[2]:6.1%}{'':13s}{b[0]:6.1%} ({b[1]:5.1%}) / {b[2]:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
