"""Near-duplicate stories in CRUD-RAG's corpus: how similar the candidate pairs are, hand-checked pairs around the
threshold, and how many stories (groups of two or more articles) each threshold makes.

    python -m eval.dedup_report                    # the whole corpus (63,604 articles; ~2 min on 2 cores)
    python -m eval.dedup_report --limit 20000      # the first 20k articles in corpus order
    python -m eval.dedup_report --show 0.4 0.6     # print sampled pairs in that band of similarity, to check

Signatures are rag.index.dedup's (the index's own: NUM_PERM MinHash values over SHINGLE-character shingles of
the normalised text), cached in OUT/sigs.npy. Candidate pairs come from LSH bands at a low threshold (0.3) and are
kept when their estimated Jaccard similarity is >= 0.2; their exact Jaccard similarity (of the shingle sets) is
computed for a sample of EXACT_SAMPLE pairs per bin. `--show LO HI` prints --per pairs of each 0.05-wide bin between LO and HI (seeded), with a key per
pair; eval/dedup_labels.json holds the hand labels given to such pairs (key -> "same" for one story: a reprint, a
corrected or cut version; "different" for two stories, e.g. two daily reports of one series sharing a template),
and the report shows, per bin, how many labelled pairs were the same story. Writes OUT/report.json.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.index import dedup
from rag.types import Article

CORPUS = ROOT / "eval" / "out" / "crud" / "corpus"
OUT = ROOT / "eval" / "out" / "dedup"
LABELS = ROOT / "eval" / "dedup_labels.json"
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
EXACT_SAMPLE = 200
BINS = [round(0.2 + 0.05 * i, 2) for i in range(17)]  # 0.20 .. 1.00


def read_corpus(folder: Path, limit: int | None) -> list[dict]:
    out = []
    for part in sorted(folder.glob("*.jsonl")):
        with open(part, encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                d["id"] = Article(d["title"], d["text"], d.get("url", ""), d.get("published", ""),
                                  d.get("source", "")).id
                out.append(d)
                if limit and len(out) >= limit:
                    return out
    return out


def signatures(arts: list[dict], out: Path) -> tuple[np.ndarray, np.ndarray]:
    """(n, NUM_PERM) signatures and a mask of the articles that have one (cached by corpus size and fingerprint)."""
    cache = out / f"sigs-{len(arts)}.npz"
    fp = dedup.current_fingerprint()
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if str(z["fingerprint"]) == fp:
            return z["sigs"], z["has"]
    t0 = time.time()
    sigs = np.zeros((len(arts), dedup.NUM_PERM), dtype=np.uint32)
    has = np.zeros(len(arts), dtype=bool)
    for i, a in enumerate(arts):
        s = dedup.signature(a["text"])
        if s is not None:
            sigs[i], has[i] = s, True
    print(f"signatures of {len(arts)} articles in {time.time() - t0:.0f} s "
          f"({(time.time() - t0) / max(len(arts), 1) * 1000:.2f} ms each)", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(cache, sigs=sigs, has=has, fingerprint=np.array(fp))
    return sigs, has


def jaccard(a: str, b: str) -> float:
    x, y = dedup.shingles(a), dedup.shingles(b)
    return len(x & y) / len(x | y) if x or y else 1.0


def pair_key(a: dict, b: dict) -> str:
    return "|".join(sorted((a["url"], b["url"])))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--limit", type=int, default=None, help="the first N articles only")
    ap.add_argument("--show", type=float, nargs=2, metavar=("LO", "HI"), help="print sampled pairs in [LO, HI)")
    ap.add_argument("--per", type=int, default=4, help="pairs shown per 0.05 bin with --show")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--chars", type=int, default=260, help="characters of each text shown")
    args = ap.parse_args(argv)

    arts = read_corpus(args.corpus, args.limit)
    sigs, has = signatures(arts, args.out)
    rows = np.flatnonzero(has)
    s = sigs[rows]
    t0 = time.time()
    cand = dedup.candidate_pairs(s, None, threshold=0.3)
    est = dedup.similarity(s, cand)
    keep = est >= 0.2
    pairs, est = rows[cand[keep]], est[keep]
    print(f"{len(cand)} candidate pairs at LSH threshold 0.3, {len(pairs)} with estimated similarity >= 0.2 "
          f"({time.time() - t0:.0f} s)", file=sys.stderr)
    # exact similarity of up to EXACT_SAMPLE pairs per bin (all 440k pairs of the whole corpus would take minutes)
    exact = np.full(len(pairs), np.nan)
    rng = np.random.default_rng(args.seed)
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        idx = np.flatnonzero((est >= lo) & (est < hi if hi < 1.0 else est <= hi))
        for n in (rng.choice(idx, EXACT_SAMPLE, replace=False) if len(idx) > EXACT_SAMPLE else idx):
            exact[n] = jaccard(arts[pairs[n][0]]["text"], arts[pairs[n][1]]["text"])
    labels = json.loads(LABELS.read_text(encoding="utf-8")) if LABELS.exists() else {}

    report: dict = {"articles": len(arts), "with_signature": int(has.sum()), "num_perm": dedup.NUM_PERM,
                    "shingle": dedup.SHINGLE, "candidate_pairs_lsh_0.3": len(cand), "bins": [], "thresholds": []}
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        inb = (est >= lo) & ((est < hi) if hi < 1.0 else (est <= hi))
        keys = [pair_key(arts[i], arts[j]) for i, j in pairs[inb]]
        got = [labels[k] for k in keys if k in labels]
        report["bins"].append({"estimated": [lo, hi], "pairs": int(inb.sum()),
                               "exact_mean": round(float(np.nanmean(exact[inb])), 3) if inb.any() else None,
                               "labelled": len(got), "same": got.count("same"), "different": got.count("different")})
    for th in THRESHOLDS:
        ok = est >= th
        groups = dedup.components(len(arts), pairs[ok])
        sizes = sorted((len(g) for g in groups), reverse=True)
        labelled = [labels[pair_key(arts[i], arts[j])] for i, j in pairs[ok] if pair_key(arts[i], arts[j]) in labels]
        below = [labels[pair_key(arts[i], arts[j])] for i, j in pairs[~ok] if pair_key(arts[i], arts[j]) in labels]
        report["thresholds"].append({
            "threshold": th, "pairs": int(ok.sum()), "groups": len(groups), "articles_in_groups": int(sum(sizes)),
            "copies_folded": int(sum(sizes) - len(sizes)), "largest": sizes[:5],
            "labelled_same_grouped": labelled.count("same"), "labelled_different_grouped": labelled.count("different"),
            "labelled_same_missed": below.count("same")})
    # what the index does (rag.index.dedup.regroup from scratch: its own LSH bands for THRESHOLD, then the check)
    t0 = time.time()
    own = dedup.components(len(rows), dedup.similar_pairs(s, None, dedup.THRESHOLD))
    sizes = sorted((len(g) for g in own), reverse=True)
    report["index"] = {"threshold": dedup.THRESHOLD, "bands_rows": list(dedup.lsh_params(dedup.LSH_THRESHOLD)),
                       "groups": len(own), "articles_in_groups": int(sum(sizes)),
                       "copies_folded": int(sum(sizes) - len(sizes)), "largest": sizes[:5],
                       "seconds": round(time.time() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")

    print(f"{len(arts)} articles ({report['with_signature']} with a signature); pairs by estimated similarity:")
    print("  estimated     pairs  exact(mean)  labelled same/different")
    for b in report["bins"]:
        print(f"  {b['estimated'][0]:.2f}-{b['estimated'][1]:.2f} {b['pairs']:8d}  {b['exact_mean'] or 0:11.3f}  "
              f"{b['same']}/{b['different']}")
    print("  threshold  pairs  groups  articles  folded  largest     labelled: same grouped / different grouped / "
          "same missed")
    for t in report["thresholds"]:
        print(f"  {t['threshold']:.1f} {t['pairs']:10d} {t['groups']:7d} {t['articles_in_groups']:9d} "
              f"{t['copies_folded']:7d}  {t['largest']!s:18s} {t['labelled_same_grouped']}/"
              f"{t['labelled_different_grouped']}/{t['labelled_same_missed']}")

    i = report["index"]
    print(f"  the index's grouping at {i['threshold']} (LSH {i['bands_rows'][0]} bands x {i['bands_rows'][1]} rows): "
          f"{i['groups']} stories of 2+ articles holding {i['articles_in_groups']} articles "
          f"({i['copies_folded']} copies folded), largest {i['largest']}, {i['seconds']} s")

    if args.show:
        lo, hi = args.show
        rng = random.Random(args.seed)
        for blo, bhi in zip(BINS[:-1], BINS[1:]):
            if blo < lo - 1e-9 or blo >= hi - 1e-9:
                continue
            idx = list(np.flatnonzero((est >= blo) & (est < bhi)))
            for n in sorted(rng.sample(idx, min(args.per, len(idx)))):
                i, j = pairs[n]
                a, b = arts[i], arts[j]
                key = pair_key(a, b)
                ex = exact[n] if not np.isnan(exact[n]) else jaccard(a["text"], b["text"])
                print(f"\n=== est {est[n]:.2f} exact {ex:.2f} key {key} label {labels.get(key, '?')}")
                for x in (a, b):
                    print(f"--- {x['published'] or 'undated'} {x['url']} ({len(x['text'])} chars)")
                    print(x["text"][: args.chars].replace("\n", " "))
                    print("   ...", x["text"][-120:].replace("\n", " "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
