"""Learn the answer-sentence ranker (logistic regression over rag.answer.FEATURES) and write rag/ranker.json.

Training questions: CMRC 2018 dev (Simplified) and the English XQuAD questions of the first half of its articles
(cross-lingual). Everything else (DRCD, XQuAD zh, the other half of XQuAD en, the seed set) is held out and scored
here, so the figures printed are out-of-sample.

    python eval/train_ranker.py --index eval/out/dev-index
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer import FEATURES  # noqa: E402
from rag.evaluation import contains_answer, load_questions  # noqa: E402
from rag.pipeline import gather  # noqa: E402

SETS = ROOT / "eval" / "sets"


def collect(questions, index, k):
    X, y, groups = [], [], []
    for qi, q in enumerate(questions):
        ev = gather(q.question, index, k, history=q.history or None)
        if not ev.candidates:
            continue
        labels = [float(contains_answer(c.text, q.answers) and (not q.article_id or c.passage.article_id == q.article_id))
                  for c in ev.candidates]
        X.append(ev.features)
        y.extend(labels)
        groups.extend([qi] * len(labels))
    return np.vstack(X), np.array(y), np.array(groups)


def first_hit(X, y, groups, w, b):
    s = X @ w + b
    hits, n = 0, 0
    for g in np.unique(groups):
        m = groups == g
        hits += y[m][np.argmax(s[m])] > 0
        n += 1
    return hits / n, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=str(ROOT / "eval" / "out" / "dev-index"))
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None, help="questions per set (default: all)")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--out", default=str(ROOT / "rag" / "ranker.json"))
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    def qs(name):
        items = list(load_questions(SETS / f"{name}.jsonl").questions)
        items = [q for q in items if q.answers]
        if args.limit:
            items = random.Random(0).sample(items, min(args.limit, len(items)))
        return items

    en = qs("xquad-en")
    arts = sorted({q.article_id for q in list(load_questions(SETS / "xquad-en.jsonl").questions)})
    # split XQuAD by its 48 source articles (titles), not paragraphs, so no article is on both sides
    zh_arts = {}
    for line in open(ROOT / "eval" / "corpus" / "xquad-zh.jsonl", encoding="utf-8"):
        a = json.loads(line)
        from rag.types import Article

        zh_arts[Article(title=a["title"], text=a["text"], url=a["url"]).id] = a["title"].split(" (")[0]
    titles = sorted(set(zh_arts.values()))
    train_titles = set(titles[: len(titles) // 2])
    en_train = [q for q in en if zh_arts.get(q.article_id) in train_titles]
    en_test = [q for q in en if zh_arts.get(q.article_id) not in train_titles]
    t0 = time.time()
    train_sets = {"cmrc2018": qs("cmrc2018"), "xquad-en(train half)": en_train}
    test_sets = {"drcd": qs("drcd"), "xquad-zh": qs("xquad-zh"), "xquad-en(test half)": en_test, "seed": qs("seed")}
    data = {name: collect(v, args.index, args.k) for name, v in {**train_sets, **test_sets}.items()}
    print(f"features collected in {time.time() - t0:.0f} s", file=sys.stderr)
    Xtr = np.vstack([data[n][0] for n in train_sets])
    ytr = np.concatenate([data[n][1] for n in train_sets])
    clf = LogisticRegression(C=args.C, max_iter=5000)
    clf.fit(Xtr, ytr)
    w, b = clf.coef_[0], float(clf.intercept_[0])
    print(f"{'set':24s} {'n':>5s} first-sentence hit")
    for name in data:
        X, y, g = data[name]
        h, n = first_hit(X, y, g, w, b)
        tag = "train" if name in train_sets else "held out"
        print(f"{name:24s} {n:5d} {h:.3f}  ({tag})")
    out = {
        "features": list(FEATURES), "weights": [round(float(v), 6) for v in w], "bias": round(b, 6),
        "trained_on": list(train_sets), "k": args.k, "C": args.C, "created": time.strftime("%Y-%m-%d"),
    }
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1), encoding="utf-8")
    tmp.replace(args.out)
    print("weights:", dict(zip(FEATURES, out["weights"])), "bias", out["bias"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
