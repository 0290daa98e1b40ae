"""Segment benchmarks (#26): add time vs index size, daily batches, query latency over 1/10/30 segments.

    python -m eval.bench.segments adds   --out eval/out/bench/adds.json   [--sizes 10000 100000]
    python -m eval.bench.segments daily  --out eval/out/bench/daily.json  [--batches 30 --per 300]
    python -m eval.bench.segments query  --out eval/out/bench/query.json  [--index eval/out/dev-index]
    python -m eval.bench.segments kills  --out eval/out/bench/kills.json  [--kills 10 --articles 3000]

`adds` and `daily` index real 2023 news (CRUD-RAG, `python -m eval.crud` writes eval/out/crud/corpus) through the
real write path; `adds` uses a hashing embedder (a text's vector from its hash: no model time, so the figures are the
index's own cost of an add; embedding is measured in eval.bench.embedding), `daily` the default USE embedder without
the second one (--second e5 to include it). `query` splits one index into 1, 10 and 30 segments of the same chunks
(ids kept) and times ask() over dev questions, checking the answers are the same."""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CRUD = ROOT / "eval" / "out" / "crud" / "corpus"


class HashEmbedder:
    """A unit vector drawn from a seed hashed from the text: deterministic, ~20 µs a text, no model."""

    def __init__(self, dim: int, name: str):
        self.dim, self.name = dim, name

    def embed_documents(self, texts):
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out

    embed_queries = embed_documents


def news(skip: int = 0):
    """CRUD-RAG's articles, part by part, as rag Articles."""
    from rag.types import Article

    if not CRUD.is_dir():
        sys.exit(f"{CRUD} is missing: run `python -m eval.crud --source <CRUD_RAG snapshot> --out eval/out/crud`")
    n = 0
    for part in sorted(CRUD.glob("*.jsonl")):
        with open(part, encoding="utf-8") as f:
            for line in f:
                n += 1
                if n <= skip:
                    continue
                d = json.loads(line)
                yield Article(d["title"], d["text"], url=d["url"], published=d.get("published", ""),
                              source="crud-rag")


def _chunks(root: Path) -> int:
    from rag.index import Index

    idx = Index.open(root, eager=False)
    try:
        return idx.manifest.chunks
    finally:
        idx.close()


def adds(sizes: list[int], work: Path, repeat: int = 3) -> dict:
    """Build indexes of each size (in chunks) from real news, then time adding 1 article and 300 articles."""
    from rag.index import Index, index_articles

    emb, second = HashEmbedder(512, "bench-hash-512"), HashEmbedder(384, "bench-hash-384")
    stream = news()
    used = 0
    rows = []
    root = work / "adds"
    shutil.rmtree(root, ignore_errors=True)
    for size in sorted(sizes):
        t0 = time.perf_counter()
        while True:
            have = _chunks(root) if root.exists() else 0
            if have >= size:
                break
            batch = []
            for a in stream:
                batch.append(a)
                used += 1
                if len(batch) >= max(50, min(5000, (size - have) // 2)):
                    break
            if not batch:
                break
            index_articles(batch, root, emb, progress=False, second=second, source_name=f"memory:base{used}",
                           checkpoint=0)
        build_s = time.perf_counter() - t0
        idx = Index.open(root, eager=False)
        base = {"chunks": idx.manifest.chunks, "articles": idx.manifest.articles, "segments": len(idx.views)}
        idx.close()
        timing = {}
        for n in (1, 300):
            took = []
            for r in range(repeat):
                batch = [next(stream) for _ in range(n)]
                used += n
                t = time.perf_counter()
                s = index_articles(batch, root, emb, progress=False, second=second, source_name=f"memory:add{used}",
                                   checkpoint=0)
                took.append(time.perf_counter() - t)
            timing[f"add_{n}_s"] = sorted(took)[len(took) // 2]
            timing[f"add_{n}_all_s"] = [round(x, 3) for x in took]
            timing[f"add_{n}_chunks"] = s.chunks
        rows.append({"target": size, **base, "build_s": round(build_s, 1), **timing,
                     "segments_after": _segments(root)})
        print(json.dumps(rows[-1]), flush=True)
    return {"bench": "adds", "embedder": "hash (no model time)", "rows": rows}


def _segments(root: Path) -> int:
    from rag.index import Index

    idx = Index.open(root, eager=False)
    try:
        return len(idx.views)
    finally:
        idx.close()


def daily(batches: int, per: int, work: Path, second: str | None) -> dict:
    """`batches` runs of `per` new articles each (a day's news), one after another: time per run."""
    from rag.index import index_articles

    root = work / "daily"
    shutil.rmtree(root, ignore_errors=True)
    stream = news()
    rows = []
    for b in range(batches):
        batch = [next(stream) for _ in range(per)]
        t = time.perf_counter()
        s = index_articles(batch, root, "use", progress=False, second=second, source_name=f"memory:day{b:02d}",
                           checkpoint=0)
        rows.append({"batch": b, "seconds": round(time.perf_counter() - t, 2), "chunks": s.chunks,
                     "total_chunks": s.total_chunks, "segments": s.segments})
        print(json.dumps(rows[-1]), flush=True)
    return {"bench": "daily", "per": per, "second": second or "none", "rows": rows}


def kills(n: int, articles: int, work: Path, seed: int = 0, min_s: float = 5, max_s: float = 30) -> dict:
    """`rag index` over `articles` news articles (files of 20), SIGKILLed `n` times at random moments, each time run
    again; then run to the end. Every article must end indexed once (ids as written, no chunk twice)."""
    import os
    import random
    import signal
    import subprocess

    from rag.index import Index

    src, root = work / "kills-src", work / "kills-index"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    src.mkdir(parents=True)
    stream, want = news(), set()
    for f in range(0, articles, 20):
        with open(src / f"{f // 20:04d}.jsonl", "w", encoding="utf-8") as out:
            for a in (next(stream) for _ in range(min(20, articles - f))):
                want.add(a.id)
                out.write(json.dumps({"title": a.title, "text": a.text, "url": a.url, "published": a.published},
                                     ensure_ascii=False) + "\n")
    cmd = [sys.executable, "-m", "rag.cli", "index", str(src), "--index", str(root), "--second", "none",
           "--checkpoint", "200", "-q", "--json"]
    rng, rows, t0 = random.Random(seed), [], time.perf_counter()
    for k in range(n):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait = rng.uniform(min_s, max_s)
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
        p.communicate()
        have = 0
        if (root / "CURRENT").exists():
            idx = Index.open(root, eager=False)
            have = idx.manifest.articles
            idx.close()
        rows.append({"kill": k, "after_s": round(wait, 1), "exit": p.returncode, "articles_in": have})
        print(json.dumps(rows[-1]), flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True)
    summary = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-500:]}
    idx = Index.open(root)
    ids = set(idx.article_ids())
    dead = {(v.seg.name, a) for v in idx.views for a in v.ref.dead}
    live = [(a, o) for v in idx.views for a, o in v.seg.sql("SELECT article_id, ordinal FROM chunks")
            if (v.seg.name, a) not in dead]
    check = {"articles": len(ids), "expected": len(want), "same_ids": ids == want, "chunks": len(live),
             "chunks_unique": len(set(live)), "manifest_chunks": idx.manifest.chunks, "segments": len(idx.views)}
    idx.close()
    return {"bench": "kills", "kills": rows, "final_run": {k: summary.get(k) for k in
                                                           ("added", "skipped", "resumed", "seconds", "checkpoints")},
            "check": check, "ok": check["same_ids"] and check["chunks"] == check["chunks_unique"]
            == check["manifest_chunks"], "seconds": round(time.perf_counter() - t0, 1)}


def split(src: Path, dst: Path, parts: int) -> None:
    """A copy of a one-segment index as `parts` segments holding the same chunks under the same ids."""
    from rag.index import Index
    from rag.index.files import SCHEMA_VERSION, atomic_write_text, now_iso
    from rag.index.generation import Manifest, SegmentRef, View
    from rag.index.merge import merge_segments

    idx = Index.open(src)
    if len(idx.views) != 1 or idx.views[0].ref.dead:
        sys.exit(f"{src}: compact it first (`rag compact`): a split starts from one segment without deletions")
    v, m = idx.views[0], idx.manifest
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    ids = sorted(r[0] for r in v.seg.sql("SELECT id FROM articles"))
    sources = v.seg.sql("SELECT path, article_id FROM sources")
    refs = []
    for k, part in enumerate(np.array_split(np.array(ids, dtype=object), parts)):
        keep = set(part.tolist())
        ref = SegmentRef(v.ref.name, tuple(a for a in ids if a not in keep),
                         tuple((p, a) for p, a in sources if a not in keep))
        name = merge_segments(dst, [View(v.seg, ref)], dim=m.dim, second_dim=m.second_dim, faiss_kind="auto",
                              word_tokens=idx.tokens, doc_freq=idx.doc_freq if k == 0 else (lambda terms: {}))
        refs.append(SegmentRef(name))
    out = Manifest(**{**{f: getattr(m, f) for f in m.__dataclass_fields__ if f != "extra"},
                      "schema_version": SCHEMA_VERSION, "segments": tuple(refs), "generation": "gen-000001",
                      "created": now_iso(), "next_chunk_id": int(v.seg.ids.max()) + 1,
                      "next_sentence_id": int(v.seg.sent_ids.max()) + 1})
    idx.close()
    (dst / "gen-000001").mkdir()
    atomic_write_text(dst / "gen-000001" / "manifest.json", out.to_json())
    atomic_write_text(dst / "CURRENT", "gen-000001\n")


def query(index: Path, work: Path, per_set: int) -> dict:
    """ask() p50/p95 over 1, 10 and 30 segments of the same chunks; the answers must not differ."""
    from eval.same_answers import questions
    from rag import ask
    from rag.index import compact_index

    one = work / "seg-1"
    shutil.rmtree(one, ignore_errors=True)
    shutil.copytree(index, one)
    print(compact_index(one), flush=True)  # upgrades an index of the format before segments too
    qs = [q for q in questions() if not q.get("history")][: per_set]
    rows, answers = [], {}
    for n in (1, 10, 30):
        root = one if n == 1 else work / f"seg-{n}"
        if n > 1:
            split(one, root, n)
        ask(qs[0]["question"], root)  # models loaded, index opened
        took, got = [], []
        for q in qs:
            t = time.perf_counter()
            a = ask(q["question"], root)
            took.append((time.perf_counter() - t) * 1000)
            got.append((a.text, [(c.article_id, c.start) for c in a.citations]))
        answers[n] = got
        took.sort()
        rows.append({"segments": n, "questions": len(qs), "p50_ms": round(took[len(took) // 2], 1),
                     "p95_ms": round(took[int(len(took) * 0.95)], 1), "mean_ms": round(sum(took) / len(took), 1)})
        print(json.dumps(rows[-1]), flush=True)
    same = {n: sum(a == b for a, b in zip(answers[1], answers[n])) for n in answers}
    for r in rows:
        r["ratio_p50"] = round(r["p50_ms"] / rows[0]["p50_ms"], 2)
        r["ratio_p95"] = round(r["p95_ms"] / rows[0]["p95_ms"], 2)
        r["same_answers"] = same[r["segments"]]
    return {"bench": "query", "index": str(index), "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench.segments", description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("adds", "daily", "query", "kills"))
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--articles", type=int, default=3000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--work", default=str(ROOT / "eval" / "out" / "bench" / "segments"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--per", type=int, default=300)
    ap.add_argument("--second", default=None, choices=("e5",))
    ap.add_argument("--index", default=str(ROOT / "eval" / "out" / "dev-index"))
    ap.add_argument("--questions", type=int, default=200)
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    from eval.bench.common import machine

    t0 = time.perf_counter()
    if args.what == "adds":
        res = adds(args.sizes, work)
    elif args.what == "kills":
        res = kills(args.kills, args.articles, work)
    elif args.what == "daily":
        res = daily(args.batches, args.per, work, args.second)
    else:
        res = query(Path(args.index), work, args.questions)
    res.update(seconds=round(time.perf_counter() - t0, 1), machine=machine())
    text = json.dumps(res, indent=1, ensure_ascii=False)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
