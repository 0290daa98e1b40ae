"""Calibrate when `ask` declines, for answerable vs unanswerable questions.

Unanswerable questions are made by hiding the question's paragraph: the same question is asked with retrieval
restricted (source filter) to a sub-corpus that does not hold it. Answerable ones are asked against their own
sub-corpus. Two signals are recorded per ask: the ranker's confidence (highest probability of any candidate
sentence) and the reader's best cosine over the sentences it reads (rag.models.reader, multilingual-e5-small).

Groups: Chinese questions, English questions over Chinese text (dev pool), English questions over English text
(en-en: the mixed pool, each question asked against its own half of XQuAD's English paragraphs and the other half)
and Chinese questions over English text (zh-en: XQuAD's Chinese questions, the same way).
Two rules are compared per group, at the same rate of wrongly declined answerable questions:
- ranker alone (`--reader none`): decline when confidence < min_confidence;
- with the reader (the default): confidence outside read_band decides alone (below: decline, above: answer);
  inside it, decline when logit(confidence) + reader_weight * cosine < min_read_score.
Parameters are chosen on one seeded sample (--seed) and scored on another (--seed + 1), so the printed rates are
out of sample. The year check (rag.answer.misses_year: decline when the chosen passage lacks a year the question
names) is then added to the reader's rule and its held-out rates printed; for English questions, so is the name
check (rag.lang.names; its threshold, AnswerConfig.min_read_score_names, comes from eval.calibrate_names).

    python -m eval.calibrate_abstention --limit 150
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from rag.answer import AnswerConfig, Answerer, article_texts, confidence, misses_year, rank, to_read
from rag.evaluation import load_questions
from rag.lang import misses_names
from rag.models import get_reader, read
from rag.pipeline import gather

ROOT = Path(__file__).resolve().parent.parent

PLAN = [  # (set, its own source, a source that cannot answer it)
    ("cmrc2018", "cmrc2018", "drcd"),
    ("drcd", "drcd", "cmrc2018"),
    ("xquad-zh", "xquad-zh", "cmrc2018"),
    ("xquad-en", "xquad-zh", "cmrc2018"),
]
# English questions over English text, in the mixed pool (python -m eval.run --mixed): XQuAD's English paragraphs are split
# into two sources by article (rag.evaluation.datasets.xquad_halves); a question is asked against its own half and the other.
MIXED_SETS, MIXED_HALVES = {"en-en": "xquad-en-en", "zh-en": "xquad-zh-en"}, ("xquad-en-a", "xquad-en-b")
GROUPS = ("zh", "en", "en-en", "zh-en")
BANDS = ((0.0, 1.01), (0.02, 0.6), (0.02, 0.4), (0.03, 0.3))
WEIGHTS = (10.0, 20.0, 40.0, 80.0, 160.0)


def evidence(q, index, source, cfg, reader):
    """(confidence, reader's best cosine, whether the best sentence's article misses a year the question names,
    whether it mentions none of the names an English question asks about), and the best sentence (None if none);
    the candidates `ask` keeps (rag.answer.Answerer.kept)."""
    ev = Answerer(cfg).kept(gather(q.question, index, 5, source=source))
    if not ev.candidates:
        return (0.0, 0.0, 0.0, 0.0), None
    ranked = rank(ev.candidates, ev.features, cfg)
    sims = read(reader, [q.question], [c.text for c in to_read(ranked, cfg)])
    best = max(ranked, key=lambda c: c.order)
    aid = best.passage.article_id
    names = ev.lang == "en" and misses_names(q.question, article_texts(ev.passages, aid))
    return (confidence(ranked), float(sims.max()), float(misses_year(q.question, ev.passages, aid)),
            float(names)), best


def signals(q, index, source, cfg, reader):
    return evidence(q, index, source, cfg, reader)[0]


def sample(name, n, seed):
    qs = [q for q in load_questions(ROOT / "eval" / "sets" / f"{name}.jsonl").questions if q.answers]
    return random.Random(seed).sample(qs, min(n, len(qs)))


def collect(index, limit, seed, cfg, reader, mixed_index=None, groups=GROUPS):
    rows = {g: [] for g in groups}

    def add(group, q, index, own, other):
        (c1, r1, m1, n1), (c2, r2, m2, n2) = (signals(q, index, src, cfg, reader) for src in (own, other))
        rows[group].append((c1, r1, c2, r2, m1, m2, n1, n2))  # rows of older runs stop after 4 or 6 columns

    for name, own, other in PLAN:
        group = "en" if name.endswith("-en") else "zh"
        if group in rows:
            for q in sample(name, limit, seed):
                add(group, q, index, own, other)
    if mixed_index is not None:
        from rag.evaluation.datasets import read_articles

        half = {a.id: a.source for a in read_articles(ROOT / "eval" / "mixed" / "xquad-en.jsonl")}
        for group, name in MIXED_SETS.items():
            if group in rows:
                for q in sample(name, limit, seed):
                    own = half[q.article_id]
                    add(group, q, mixed_index, own, next(h for h in MIXED_HALVES if h != own))
    return {g: np.array(r, dtype=float).reshape(len(r), -1) for g, r in rows.items()}


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def decide(p, cos, band, weight, threshold):
    """True = decline, for arrays of confidences and reader cosines."""
    inside = (p >= band[0]) & (p < band[1])
    return np.where(inside, logit(p) + weight * cos < threshold, p < band[0])


def names_rule(p, cos, missing, band, weight, threshold):
    """True = decline for missing names: inside the band, the score must reach the stricter threshold."""
    inside = (p >= band[0]) & (p < band[1])
    return (missing > 0) & inside & (logit(p) + weight * cos < threshold)


def fit(a, max_wrong):
    """Band, weight and threshold with the most correct declines while wrongly declining <= max_wrong."""
    best = None
    for band in BANDS:
        for w in WEIGHTS:
            inside = (a[:, 0] >= band[0]) & (a[:, 0] < band[1])
            own = logit(a[inside, 0]) + w * a[inside, 1]
            for t in np.unique(np.round(own, 3)):
                wrong = decide(a[:, 0], a[:, 1], band, w, t).mean()
                if wrong > max_wrong:
                    break
                right = decide(a[:, 2], a[:, 3], band, w, t).mean()
                if best is None or right > best[0]:
                    best = (right, wrong, band, w, float(t))
    return best


def ranker_alone(a, max_wrong):
    best = (0.0, 0.0, 0.0)
    for t in np.unique(np.round(a[:, 0], 4)):
        wrong = (a[:, 0] < t).mean()
        if wrong > max_wrong:
            break
        best = ((a[:, 2] < t).mean(), wrong, float(t))
    return best


def shipped_rule(p, cos, cross, cfg, year=None, names=None, names_threshold=None, english=False, reverse=False):
    """True = decline, as `ask` decides with AnswerConfig `cfg`: the reader's rule (for an English question over
    English text, `english`, or a Chinese one over English text, `reverse`, their own band, weight and score), then
    the year check when `year` (misses per question) is given, then the name check when `names` and
    `names_threshold` are."""
    pair = ("en", "zh") if cross else ("en", "en") if english else ("zh", "en") if reverse else ("zh", "zh")
    th = cfg.thresholds(*pair)  # (question language, text language)
    band, w, t = th.read_band, th.reader_weight, th.min_read_score
    out = decide(p, cos, band, w, t)
    if year is not None:
        out = out | (year > 0)
    if cross and names is not None and names_threshold is not None:
        out = out | names_rule(p, cos, names, band, w, names_threshold)
    return out


def shipped(lang: str, b: np.ndarray, report: dict) -> None:
    """Held-out rates of the rule `ask` ships (AnswerConfig), then with its year and name checks added."""
    cfg, cross, english, reverse = AnswerConfig(), lang == "en", lang == "en-en", lang == "zh-en"
    t3 = cfg.min_read_score_names

    def rule(side, year=False, names=False):  # side 0: asked where it can be answered, 1: where it cannot
        return shipped_rule(b[:, 2 * side], b[:, 2 * side + 1], cross, cfg, year=b[:, 4 + side] if year else None,
                            names=b[:, 6 + side] if names else None, names_threshold=t3, english=english,
                            reverse=reverse)

    stages = [("shipped rule (AnswerConfig)", {})]
    if b.shape[1] >= 6:
        stages.append(("  + year check", {"year": True}))
    if b.shape[1] >= 8 and cross and t3 is not None:
        stages.append((f"  + names (score < {t3:g} when missed)", {"year": True, "names": True}))
    lines = [(label, rule(0, **kw), rule(1, **kw)) for label, kw in stages]
    for label, o, x in lines:
        print(f"  {label:<40s}{'':34s}{o.mean():6.3f} / {x.mean():.3f}")
    report[f"{lang}@shipped"] = {label.strip(" +"): {"held_out_wrong": o.mean(), "held_out_correct": x.mean()}
                                 for label, o, x in lines}


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.calibrate_abstention", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=str(ROOT / "eval" / "out" / "dev-index"))
    ap.add_argument("--limit", type=int, default=150, help="questions per set in each sample (default 150)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-wrong", type=float, nargs="+", default=[0.02, 0.03, 0.05],
                    help="rates of wrongly declined answerable questions to calibrate for (default 0.02 0.03 0.05)")
    ap.add_argument("--mixed-index", default=str(ROOT / "eval" / "out" / "mixed-index"),
                    help="the mixed pool (python -m eval.run --mixed builds it) for English and Chinese questions over "
                         "English text; skipped when missing")
    ap.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS), help="groups to ask (default all)")
    ap.add_argument("--out", default=str(ROOT / "eval" / "out" / "abstention.json"))
    ap.add_argument("--rows", default=None, help="re-fit from the signals a previous run saved (OUT's -rows.json)")
    args = ap.parse_args()
    rows_path = Path(args.out).with_name(Path(args.out).stem + "-rows.json")
    if args.rows:
        saved = json.loads(Path(args.rows).read_text(encoding="utf-8"))
        fit_rows, test_rows = ({k: np.array(v, dtype=float) for k, v in saved[part].items()} for part in ("fit", "test"))
    else:
        cfg, reader = AnswerConfig(), get_reader("e5")
        mixed = args.mixed_index if Path(args.mixed_index).is_dir() else None
        fit_rows = collect(args.index, args.limit, args.seed, cfg, reader, mixed, args.groups)
        test_rows = collect(args.index, args.limit, args.seed + 1, cfg, reader, mixed, args.groups)
        rows_path.parent.mkdir(parents=True, exist_ok=True)
        rows_path.write_text(json.dumps({part: {k: v.tolist() for k, v in rows.items()}
                                         for part, rows in (("fit", fit_rows), ("test", test_rows))}), encoding="utf-8")
    report = {}
    for lang in GROUPS:
        if lang not in fit_rows or not len(fit_rows[lang]):
            continue
        a, b = fit_rows[lang], test_rows[lang]
        print(f"\n{lang}: {len(a)} + {len(b)} questions, each asked twice (own sub-corpus / one without the answer)")
        print("  rule                                   fit: wrong / correct declines   held out: wrong / correct")
        for mw in args.max_wrong:
            right, wrong, t = ranker_alone(a, mw)
            hw, hr = (b[:, 0] < t).mean(), (b[:, 2] < t).mean()
            print(f"  ranker alone, confidence < {t:.3f}{'':9s} {wrong:6.3f} / {right:.3f}{'':17s} {hw:6.3f} / {hr:.3f}")
            fitted = fit(a, mw)
            if fitted is None:
                print(f"  reader: no band, weight and score decline <= {mw} of answerable questions")
                report[f"{lang}@{mw}"] = {"ranker_alone": {"min_confidence": t, "held_out_wrong": hw,
                                                           "held_out_correct": hr}}
                continue
            right2, wrong2, band, w, t2 = fitted
            own, other = decide(b[:, 0], b[:, 1], band, w, t2), decide(b[:, 2], b[:, 3], band, w, t2)
            hw2, hr2 = own.mean(), other.mean()
            read_share = ((b[:, 0] >= band[0]) & (b[:, 0] < band[1])).mean()
            print(f"  reader: band {band}, weight {w:g}, score < {t2:.2f}  {wrong2:6.3f} / {right2:.3f}{'':17s} "
                  f"{hw2:6.3f} / {hr2:.3f}  (answerable questions read: {read_share:.0%})")
            if b.shape[1] >= 6:  # the year check on top: a passage missing the question's year is declined too
                yw, yr = (own | (b[:, 4] > 0)).mean(), (other | (b[:, 5] > 0)).mean()
                print(f"  reader + year check{'':36s} {'':17s}{'':17s}  {yw:6.3f} / {yr:.3f}  (questions naming a "
                      f"year: {((b[:, 4] > 0) | (b[:, 5] > 0)).mean():.0%} misses on either side)")
            report[f"{lang}@{mw}"] = {"ranker_alone": {"min_confidence": t, "held_out_wrong": hw, "held_out_correct": hr},
                                      "reader": {"band": band, "weight": w, "min_read_score": t2,
                                                 "held_out_wrong": hw2, "held_out_correct": hr2,
                                                 "answerable_read": read_share}}
        shipped(lang, b, report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
