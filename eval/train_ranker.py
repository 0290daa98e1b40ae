"""Learn the answer-sentence ranker over rag.models.FEATURES and write rag/models/ranker.json: an `order` head trained
listwise (softmax over each question's candidate sentences, maximising the probability of those holding the answer)
that picks the sentences (linear plus --hidden tanh units, averaged over --seeds random starts), a
logistic-regression head whose probability decides abstention, and a `reread` head (listwise too) that re-orders
the order head's --top best sentences by their cosine under the e5 reader (rag.models.reader), applied when the order
head's best two are closer than --gate. Reader vectors are cached in eval/out/reader-cache.npz (the first run
reads ~45k sentences, ~20 min; later runs ~5 min in all).

Training questions: CMRC 2018 dev (Simplified) and the English XQuAD questions of the first half of its articles
(cross-lingual). Everything else (DRCD, XQuAD zh, the other half of XQuAD en, the seed set and, when the mixed pool
of `python -m eval.run --mixed` exists, English questions over English text, Chinese questions over English text and
English questions over Chinese text with unrelated English articles beside) is held out and scored here, so the
figures printed are out-of-sample.

    python -m eval.train_ranker --index eval/out/dev-index
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from rag.answer import reread_features
from rag.evaluation import contains_answer, load_questions
from rag.models import FEATURES, REREAD_FEATURES, Ranker
from rag.pipeline import gather

ROOT = Path(__file__).resolve().parent.parent
SETS = ROOT / "eval" / "sets"
PROB_FEATURES_END = "cross_lex"
GATES = (0.25, 0.5, 1.0, 2.0, float("inf"))


def collect(questions, index, k, articles: dict | None = None):
    """Features, labels and question groups of every candidate sentence of `questions` over `index`, and per
    question its text and candidates' texts; `articles`, when given, gets per question its candidates' article ids."""
    X, y, groups, texts = [], [], [], {}
    for qi, q in enumerate(questions):
        ev = gather(q.question, index, k, history=q.history or None)
        if not ev.candidates:
            continue
        labels = [float(contains_answer(c.text, q.answers) and (not q.article_id or c.passage.article_id == q.article_id))
                  for c in ev.candidates]
        X.append(ev.features)
        y.extend(labels)
        groups.extend([qi] * len(labels))
        texts[qi] = (ev.question, [c.text for c in ev.candidates])
        if articles is not None:
            articles[qi] = [c.passage.article_id for c in ev.candidates]
    return np.vstack(X), np.array(y), np.array(groups), texts


class ReaderCache:
    """Reader vectors by text hash, kept in eval/out so retraining does not re-read (plain .npz, no pickle)."""

    def __init__(self, path: Path, reader):
        self.path, self.reader, self.vecs = path, reader, {}
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                self.vecs = dict(zip((str(k) for k in z["keys"]), z["vecs"]))

    def get(self, texts, query):
        keys = [("q:" if query else "p:") + hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        missing = list(dict.fromkeys(i for i, key in enumerate(keys) if key not in self.vecs))
        if missing:
            embed = self.reader.embed_queries if query else self.reader.embed_documents
            for i, v in zip(missing, embed([texts[i] for i in missing])):
                self.vecs[keys[i]] = v
        return np.stack([self.vecs[key] for key in keys])

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(tmp, keys=np.array(list(self.vecs)), vecs=np.stack(list(self.vecs.values())).astype(np.float32))
        os.replace(tmp, self.path)


def reread_data(X, y, groups, texts, order, top, cache):
    """Per question: REREAD_FEATURES of its `top` sentences by the order head, and their labels."""
    out = []
    for g in np.unique(groups):
        m = np.flatnonzero(groups == g)
        sc = order_scores(X[m], order)
        best = m[np.argsort(-sc, kind="stable")[:top]]
        question, cand_texts = texts[g]
        sents = [cand_texts[i - m[0]] for i in best]
        sims = cache.get(sents, False) @ cache.get([question], True)[0]
        out.append((reread_features(sc[best - m[0]], sims), y[best]))
    cache.save()
    return out


def train_listwise(X, y, groups, l2, hidden=0, seed=0):
    """Scores whose per-question softmax puts its mass on answer-bearing sentences: linear, plus a tanh hidden
    layer of `hidden` units when > 0 (L2 on all weights, features standardised). Returned in raw feature units
    as (linear weights, hidden w, hidden b, hidden v); the hidden parts are None when hidden == 0. `groups`
    must be contiguous per question."""
    from scipy.optimize import minimize

    mu, sd = X.mean(0), X.std(0) + 1e-6
    Xs = (X - mu) / sd
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    lens = np.diff(np.r_[starts, len(groups)])
    keep = np.repeat(np.add.reduceat(y > 0, starts) > 0, lens)  # questions with an answer-bearing sentence
    Xs, pos, groups = Xs[keep], (y > 0)[keep].astype(np.float64), groups[keep]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    lens = np.diff(np.r_[starts, len(groups)])
    gid, n, d = np.repeat(np.arange(len(lens)), lens), len(lens), X.shape[1]

    def unpack(p):
        e = d + hidden * d
        return p[:d], p[d:e].reshape(hidden, d), p[e : e + hidden], p[e + hidden :]

    def loss(p):
        u, W, b, v = unpack(p)
        H = np.tanh(Xs @ W.T + b)
        s = Xs @ u + H @ v
        e = np.exp(s - np.maximum.reduceat(s, starts)[gid])
        pr = e / np.add.reduceat(e, starts)[gid]
        pp = np.add.reduceat(pr * pos, starts)
        ds = (pr - pos * pr / (pp[gid] + 1e-12)) / n
        dH = np.outer(ds, v) * (1 - H**2)
        grad = np.concatenate([Xs.T @ ds, (dH.T @ Xs).ravel(), dH.sum(0), H.T @ ds])
        return -np.log(pp + 1e-12).sum() / n + l2 * p @ p, grad + 2 * l2 * p

    rng = np.random.default_rng(seed)
    p0 = np.concatenate([np.zeros(d), rng.normal(0, 0.3, hidden * d), np.zeros(hidden), rng.normal(0, 0.3, hidden)])
    u, W, b, v = unpack(minimize(loss, p0, jac=True, method="L-BFGS-B", options={"maxiter": 2000}).x)
    if not hidden:
        return u / sd, None, None, None
    return u / sd, W / sd, b - (W / sd) @ mu, v


def average(heads):
    """One head scoring the mean of `heads`' scores: their hidden units side by side, output weights divided."""
    u = np.mean([h[0] for h in heads], axis=0)
    if heads[0][1] is None:
        return u, None, None, None
    return (u, np.vstack([h[1] for h in heads]), np.concatenate([h[2] for h in heads]),
            np.concatenate([h[3] for h in heads]) / len(heads))


def order_scores(X, head):
    """Scores of a (linear, hidden w, b, v) order head, computed as `ask` computes them."""
    u, W, b, v = head
    return Ranker(u, np.zeros_like(u), 0.0, hidden_w=W, hidden_b=b, hidden_v=v).order_scores(X)


def against_scores(path: str):
    """The order scores of the ranker at `path` over FEATURES rows, its own features picked out by name (a ranker
    of an earlier feature list still compares)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    unknown = [f for f in data["features"] if f not in FEATURES]
    if unknown:
        raise SystemExit(f"--against {path}: features {unknown} are not in this version's FEATURES")
    cols = [FEATURES.index(f) for f in data["features"]]
    hidden = data.get("hidden")
    layer = [np.asarray(hidden[k]) for k in ("w", "b", "v")] if hidden else [None] * 3
    head = (np.asarray(data["order"]), *layer)
    return lambda X: order_scores(X[:, cols], head)


def head_json(head) -> dict:
    u, W, b, v = head[:4]
    return {"order": [round(float(x), 6) for x in u],
            **({"hidden": {"w": [[round(float(x), 6) for x in row] for row in W],
                           "b": [round(float(x), 6) for x in b], "v": [round(float(x), 6) for x in v]}}
               if W is not None else {})}


def first_hit(s, y, groups):
    hits, n = 0, 0
    for g in np.unique(groups):
        m = groups == g
        hits += y[m][np.argmax(s[m])] > 0
        n += 1
    return hits / n, n


def xquad_halves(questions):
    """XQuAD questions (over its Chinese paragraphs) split by its 48 source articles (titles), not paragraphs, so
    no article is on both sides: (first half of the titles, second half)."""
    from rag.types import Article

    arts = {}
    for line in open(ROOT / "eval" / "corpus" / "xquad-zh.jsonl", encoding="utf-8"):
        a = json.loads(line)
        arts[Article(title=a["title"], text=a["text"], url=a["url"]).id] = a["title"].split(" (")[0]
    titles = sorted(set(arts.values()))
    first = set(titles[: len(titles) // 2])
    return ([q for q in questions if arts.get(q.article_id) in first],
            [q for q in questions if arts.get(q.article_id) not in first])


def english_beside(dev_index: str, half: str) -> str:
    """The dev pool plus the English XQuAD paragraphs of one half (source `half`), built beside it if missing."""
    import shutil

    from rag.evaluation.datasets import read_articles, write_articles
    from rag.index import index_paths

    out = Path(f"{dev_index.rstrip('/')}+{half}")
    if not out.is_dir():
        print(f"building {out} (the dev pool and the English paragraphs of {half})", file=sys.stderr)
        corpus = out.with_name(out.name + ".jsonl")
        write_articles([a for a in read_articles(ROOT / "eval" / "mixed" / "xquad-en.jsonl") if a.source == half],
                       corpus)
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(dev_index, tmp)
        index_paths([str(corpus)], str(tmp), progress=False)
        tmp.rename(out)
    return str(out)


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.train_ranker", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=str(ROOT / "eval" / "out" / "dev-index"))
    ap.add_argument("--mixed-index", default=str(ROOT / "eval" / "out" / "mixed-index"),
                    help="the mixed Chinese/English pool (python -m eval.run --mixed builds it): the order head also "
                         "learns from English and Chinese questions over the English paragraphs of half of XQuAD's "
                         "articles there, and the other half is held out; skipped when missing")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None, help="questions per set (default: all)")
    ap.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the probability head")
    ap.add_argument("--l2", type=float, default=3e-3, help="L2 strength of the listwise order head")
    ap.add_argument("--hidden", type=int, default=8, help="tanh hidden units of the order head (0: linear)")
    ap.add_argument("--seeds", type=int, default=3,
                    help="order heads trained from as many random starts and averaged (one wider hidden layer)")
    ap.add_argument("--top", type=int, default=3, help="sentences the reader re-reads (default 3)")
    ap.add_argument("--gate", type=float, default=1.0,
                    help="read only when the order head's top-2 margin is below this (default 1.0)")
    ap.add_argument("--mixed-training", action="store_true",
                    help="also train the order head on English questions over Chinese text with unrelated English "
                         "articles beside (tried in session 6, not shipped: see the README)")
    ap.add_argument("--reader-cache", default=str(ROOT / "eval" / "out" / "reader-cache.npz"))
    ap.add_argument("--out", default=str(ROOT / "rag" / "models" / "ranker.json"))
    ap.add_argument("--against", default=str(ROOT / "rag" / "models" / "ranker.json"),
                    help="ranker whose order head is scored on the same lists first (default: the shipped one)")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    def qs(name):
        items = list(load_questions(SETS / f"{name}.jsonl").questions)
        items = [q for q in items if q.answers]
        if args.limit:
            items = random.Random(0).sample(items, min(args.limit, len(items)))
        return items

    en_train, en_test = xquad_halves(qs("xquad-en"))
    t0 = time.time()
    train_sets = {"cmrc2018": qs("cmrc2018"), "xquad-en(train half)": en_train}
    test_sets = {"drcd": qs("drcd"), "xquad-zh": qs("xquad-zh"), "xquad-en(test half)": en_test, "seed": qs("seed"),
                 "followup": qs("followup")}
    index_of = {}
    prob_sets = ["cmrc2018", "xquad-en(train half)"]  # the questions abstention was calibrated with
    if Path(args.mixed_index).is_dir():
        from rag.evaluation.datasets import read_articles

        half = {a.id: a.source for a in read_articles(ROOT / "eval" / "mixed" / "xquad-en.jsonl")}
        en_en = qs("xquad-en-en")
        # English questions over Chinese text with the English paragraphs of the other half of XQuAD's articles
        # beside it (unrelated English articles that must not win for being English): held out unless
        # --mixed-training.
        if args.mixed_training:
            train_sets["xquad-en(train half, English beside)"] = en_train
            index_of["xquad-en(train half, English beside)"] = english_beside(args.index, "xquad-en-b")
        test_sets["xquad-en(test half, English beside)"] = en_test
        test_sets["xquad-en-en(test half)"] = [q for q in en_en if half.get(q.article_id) == "xquad-en-b"]
        # Chinese questions over English text, the only data for that direction: the order head learns from the
        # questions of one half of the articles (as above), the other half is held out. It learns English questions
        # over English text beside them: with the Chinese ones alone every gold sentence of a mixed list is in the
        # other language than the question, and the head learned to prefer any such sentence (English over English,
        # held out: .73 -> .20). Trained over the English half alone instead, it never met Chinese sentences
        # beside English ones and preferred them (Chinese over English, held out: .09).
        zh_en = qs("xquad-zh-en")
        train_sets["xquad-zh-en(train half)"] = [q for q in zh_en if half.get(q.article_id) == "xquad-en-a"]
        train_sets["xquad-en-en(train half)"] = [q for q in en_en if half.get(q.article_id) == "xquad-en-a"]
        test_sets["xquad-zh-en(test half)"] = [q for q in zh_en if half.get(q.article_id) == "xquad-en-b"]
        index_of.update(dict.fromkeys(("xquad-en-en(train half)", "xquad-en-en(test half)", "xquad-zh-en(train half)",
                                       "xquad-zh-en(test half)"), args.mixed_index))
        index_of["xquad-en(test half, English beside)"] = english_beside(args.index, "xquad-en-a")
    else:
        print(f"no mixed index at {args.mixed_index}: no figures for mixed corpora", file=sys.stderr)
    data = {name: collect(v, index_of.get(name, args.index), args.k)
            for name, v in {**train_sets, **test_sets}.items()}
    print(f"features collected in {time.time() - t0:.0f} s", file=sys.stderr)
    # the order head: with --mixed-training the cross-lingual half with English beside replaces the plain one
    main_sets = [n for n in train_sets if n != "xquad-en(train half)"] if args.mixed_training else list(train_sets)
    if "xquad-zh-en(train half)" in train_sets:
        # CMRC's lists count twice, so that the Chinese ones keep their weight beside the two mixed halves (held out,
        # order head + reader, once -> twice: DRCD .862 -> .864, XQuAD zh .795 -> .804, XQuAD en .711 -> .703)
        main_sets.append("cmrc2018")
    Xp = np.vstack([data[n][0] for n in prob_sets])
    yp = np.concatenate([data[n][1] for n in prob_sets])
    Xtr = np.vstack([data[n][0] for n in main_sets])
    ytr = np.concatenate([data[n][1] for n in main_sets])
    # The probability head sees only the base features: with the shared-run and focus features its probabilities
    # separate answerable from unanswerable questions worse (eval.calibrate_abstention: 58% vs 69% correct
    # declines at 4% wrong declines on Chinese).
    nb = FEATURES.index(PROB_FEATURES_END) + 1
    clf = LogisticRegression(C=args.C, max_iter=5000)
    clf.fit(Xp[:, :nb], yp)
    w, b = np.concatenate([clf.coef_[0], np.zeros(len(FEATURES) - nb)]), float(clf.intercept_[0])
    gtr = np.concatenate([data[n][2] + 1_000_000 * i for i, n in enumerate(main_sets)])
    order = average([train_listwise(Xtr, ytr, gtr, args.l2, args.hidden, seed) for seed in range(args.seeds)])
    from rag.models import get_reader

    t1 = time.time()
    cache = ReaderCache(Path(args.reader_cache), get_reader("e5"))
    rr = {name: reread_data(*data[name], order, args.top, cache) for name in data}
    print(f"reader scores in {time.time() - t1:.0f} s", file=sys.stderr)
    # The reread head learns from single-language candidate lists: the reader's cosines run higher within a language
    # than across, so with English sentences beside Chinese ones it learned to distrust a high cosine.
    rtr = [(x, lab) for n in prob_sets for x, lab in rr[n] if len(lab) > 1 and x[0, 0] - x[1, 0] < args.gate]
    reread_w = train_listwise(np.vstack([x for x, _ in rtr]), np.concatenate([lab for _, lab in rtr]),
                              np.concatenate([[i] * len(lab) for i, (_, lab) in enumerate(rtr)]), args.l2)[0]
    against = against_scores(args.against) if Path(args.against).is_file() else None
    print(f"{'set':24s} {'n':>5s} first-sentence hit: order head / probability head / order head + reader "
          f"(top {args.top}, margin < {args.gate:g}) / reader alone" + ("; --against's order head" if against else ""))
    for name in data:
        X, y, g, _ = data[name]
        h, n = first_hit(order_scores(X, order), y, g)
        was = f"; {first_hit(against(X), y, g)[0]:.3f}" if against else ""
        h2, _ = first_hit(X @ w + b, y, g)
        h3 = np.mean([lab[np.argmax(x @ reread_w)] > 0 if x[0, 0] - x[min(1, len(x) - 1), 0] < args.gate else lab[0] > 0
                      for x, lab in rr[name]])
        h4 = np.mean([lab[np.argmax(x[:, 2])] > 0 for x, lab in rr[name]])
        tag = "train" if name in train_sets else "held out"
        print(f"{name:24s} {n:5d} {h:.3f} / {h2:.3f} / {h3:.3f} / {h4:.3f}{was}  ({tag})")
        gated = []
        for t in GATES:
            use = [len(lab) > 1 and x[0, 0] - x[1, 0] < t for x, lab in rr[name]]
            hit = np.mean([lab[np.argmax(x @ reread_w)] > 0 if u else lab[0] > 0 for u, (x, lab) in zip(use, rr[name])])
            gated.append(f"<{t:g}: {hit:.3f} ({np.mean(use):.0%} read)")
        print(f"{'':30s} read only when the order head's top-2 margin is " + ", ".join(gated))
    out = {
        "features": list(FEATURES), **head_json(order),
        "weights": [round(float(v), 6) for v in w], "bias": round(b, 6),
        "reread": {"reader": "e5", "top": args.top, "margin": args.gate, "features": list(REREAD_FEATURES),
                   "weights": [round(float(v), 6) for v in reread_w]},
        "trained_on": main_sets, "hidden_units": args.hidden, "seeds": args.seeds, "k": args.k, "C": args.C,
        "l2": args.l2, "created": time.strftime("%Y-%m-%d"),
    }
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1), encoding="utf-8")
    tmp.replace(args.out)
    print("order:", dict(zip(FEATURES, out["order"])))
    print("weights:", dict(zip(FEATURES, out["weights"])), "bias", out["bias"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
