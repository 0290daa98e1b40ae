"""Segment benchmarks (#26): add time vs index size, daily batches, query latency over 1/10/30 segments.

    python -m eval.bench.segments adds   --out eval/out/bench/adds.json   [--sizes 10000 100000 1000000]
    python -m eval.bench.segments daily  --out eval/out/bench/daily.json  [--batches 30 --per 300]
    python -m eval.bench.segments query  --out eval/out/bench/query.json  [--index eval/out/dev-index]
    python -m eval.bench.segments kills  --out eval/out/bench/kills.json  [--kills 10 --articles 3000]

`adds` and `daily` index real 2023 news (CRUD-RAG, `python -m eval.crud` writes eval/out/crud/corpus) through the
real write path (`adds` from --bulk-from chunks on: copies of it written by eval.bench.bulk; its timing step,
`time-adds`, runs in a fresh process; a plot of add time vs index size goes next to --out, as .png); `adds` uses a
hashing embedder (a text's vector from its hash: no model time, so the figures are the index's own cost of an add;
embedding is measured in eval.bench.embedding), `daily` the default USE embedder without the second one (--second e5
to include it). `query` splits one index into 1, 10 and 30 segments of the same chunks
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


def embedders() -> tuple[HashEmbedder, HashEmbedder]:
    """The adds benchmark's embedder and second embedder (hashing: no model time)."""
    return HashEmbedder(512, "bench-hash-512"), HashEmbedder(384, "bench-hash-384")


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


GOALS_ADD_1 = {100_000: 2.0, 1_000_000: 5.0}  # seconds to add one article at that many chunks (#26)
BULK_FROM = 300_000  # from this size (chunks) on, `adds` builds with eval.bench.bulk: the write path took 344 s at 100k


def adds(sizes: list[int], work: Path, repeat: int = 3, bulk_from: int = BULK_FROM, max_segment: int = 120_000) -> dict:
    """Build indexes of each size (in chunks) from real news, then time adding 1 article and 300 articles (each in a
    fresh process, for its peak RSS). Sizes under `bulk_from` grow one index through the write path; larger ones
    are built by eval.bench.bulk (copies of the corpus, in a process of their own) and add the corpus's last
    articles, which it leaves out."""
    import subprocess

    from eval.bench.bulk import held_out
    from eval.bench.common import load_avg
    from rag.index import Index, index_articles

    emb, second = embedders()
    stream = news()
    used = 0
    rows = []
    root = work / "adds"
    shutil.rmtree(root, ignore_errors=True)
    for size in sorted(sizes):
        t0 = time.perf_counter()
        load = load_avg()
        build = {}
        if size >= bulk_from:
            at, skip = work / f"adds-{size}", held_out()
            shutil.rmtree(at, ignore_errors=True)
            p = subprocess.run([sys.executable, "-m", "eval.bench.bulk", "--chunks", str(size), "--index", str(at),
                                "--max-segment", str(max_segment)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
            if p.returncode:
                sys.exit(f"the bulk build of {size} chunks failed ({p.returncode})")
            b = json.loads(p.stdout.splitlines()[-1])
            build = {"how": "bulk (eval.bench.bulk)", "build_rss_mb": b["peak_rss_mb"], "prepare_s": b["prepare_s"],
                     "check_s": b.get("check_s"), "copies": b["copies"], "disk_gb": b["disk_gb"],
                     "segment_chunks": [x["chunks"] for x in b["segments"]]}
        else:
            at = root
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
            build = {"how": "write path (index_articles)"}
            skip = used
            used += repeat * 301
            if used > held_out():
                sys.exit(f"{size} chunks through the write path leave too few articles to add: use --bulk-from")
            stream = news(skip=used)
        build_s = time.perf_counter() - t0
        idx = Index.open(at, eager=False)
        base = {"chunks": idx.manifest.chunks, "articles": idx.manifest.articles, "segments": len(idx.views)}
        idx.close()
        p = subprocess.run([sys.executable, "-m", "eval.bench.segments", "time-adds", "--index", str(at), "--skip",
                            str(skip), "--repeat", str(repeat)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        if p.returncode:
            sys.exit(f"the adds at {size} chunks failed ({p.returncode})")
        timing = json.loads(p.stdout.splitlines()[-1])
        rows.append({"target": size, **base, "build_s": round(build_s, 1), **build, **timing,
                     "segments_after": _segments(at), "load_before": load, "load_after": load_avg()})
        print(json.dumps(rows[-1]), flush=True)
    return {"bench": "adds", "embedder": "hash (no model time)", "rows": rows}


def time_adds(root: Path, skip: int, repeat: int = 3) -> dict:
    """Add 1 article, `repeat` times, then 300, `repeat` times, to the index at `root` (news from `skip` on): the
    median and every time, chunks added, and the peak RSS of each group (VmHWM, reset in between)."""
    import contextlib

    import faiss  # noqa: F401 - loaded before the clock starts, with jieba, OpenCC and the splitter below

    from eval.bench.common import peak_rss_mb
    from rag.index import index_articles
    from rag.ingest import Chunker
    from rag.lang import corpus_words, tokens
    from rag.types import Article

    corpus_words("预热分词")
    tokens("預熱")
    Chunker().run(Article("预热", "预热。"))
    emb, second = embedders()
    stream = news(skip=skip)
    out = {"rss_before_mb": round(peak_rss_mb())}
    for n in (1, 300):
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (Linux)
        took, segs = [], []
        for r in range(repeat):
            batch = [next(stream) for _ in range(n)]
            t = time.perf_counter()
            s = index_articles(batch, root, emb, progress=False, second=second,
                               source_name=f"memory:add{n}-{r}-{skip}", checkpoint=0)
            took.append(time.perf_counter() - t)
            segs.append(s.segments)
        out[f"add_{n}_s"] = sorted(took)[len(took) // 2]
        out[f"add_{n}_all_s"] = [round(x, 3) for x in took]
        out[f"add_{n}_segments"] = segs  # after each add: one fewer than the add before, or less, when it merged
        out[f"add_{n}_chunks"] = s.chunks
        out[f"add_{n}_peak_rss_mb"] = round(peak_rss_mb())
    return out


def plot_adds(res: dict, path: Path) -> None:
    """Add time (median) against index size, log-log: one line for 1 article, one for 300."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = sorted(res["rows"], key=lambda r: r["chunks"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, color in ((1, "#4477aa"), (300, "#cc3311")):
        xs = [r["chunks"] for r in rows]
        ax.plot(xs, [r[f"add_{n}_s"] for r in rows], marker="o", color=color, label=f"add {n} article{'s' * (n > 1)} "
                f"(median of {len(rows[0][f'add_{n}_all_s'])})")
        for r in rows:
            ax.scatter([r["chunks"]] * len(r[f"add_{n}_all_s"]), r[f"add_{n}_all_s"], color=color, s=8, alpha=0.4)
    merged = [(r["chunks"], x) for r in rows if "add_1_segments" in r for x, a, b in zip(
        r["add_1_all_s"] + r["add_300_all_s"], [r["segments"]] + r["add_1_segments"] + r["add_300_segments"],
        r["add_1_segments"] + r["add_300_segments"]) if b <= a]  # the add left no more segments than it found
    if merged:
        ax.scatter(*zip(*merged), marker="x", s=40, color="black", label="an add that merged segments")
    ax.scatter(list(GOALS_ADD_1), list(GOALS_ADD_1.values()), marker="_", s=300, color="#4477aa",
               label="goal for 1 article")
    ax.set(xscale="log", yscale="log", xlabel="index size (chunks)", ylabel="seconds",
           title=f"Add time vs index size ({res['embedder']})")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    ap.add_argument("what", choices=("adds", "daily", "query", "kills", "time-adds"))
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--articles", type=int, default=3000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--work", default=str(ROOT / "eval" / "out" / "bench" / "segments"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--bulk-from", type=int, default=BULK_FROM)
    ap.add_argument("--max-segment", type=int, default=120_000)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
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
    if args.what == "time-adds":
        print(json.dumps(time_adds(Path(args.index), args.skip, args.repeat)))
        return 0
    if args.what == "adds":
        res = adds(args.sizes, work, args.repeat, args.bulk_from, args.max_segment)
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
    if args.what == "adds":
        plot_adds(res, Path(args.out).with_suffix(".png") if args.out else work / "adds.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
