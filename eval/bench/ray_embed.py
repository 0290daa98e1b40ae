"""`rag index --ray`: chunks/s with 1 and 2 Ray workers against the single-process run, and what a worker costs.

    python -m eval.bench.ray_embed --articles 400          # ~6 min on 2 idle cores

The first N articles of CRUD-RAG's slice (eval/out/crud/slice-2000.jsonl) are indexed into a new index with the
default embedders (USE + e5), once in one process and once per worker count with a local Ray cluster, each run in
a process of its own. For each run: wall seconds and chunks/s; the driver's CPU-seconds (parsing, planning,
writing; in the single-process run, embedding too); the workers' CPU-seconds inside their jobs, per chunk written;
the time Ray and the workers took to start (models loaded); and whether the index equals the single-process one
(every row, every vector). Last, the driver's own limit: 2,000 articles with 2 workers and embedders that cost
nothing, so the chunks/s is what one driver can parse, plan and write. Writes eval/out/bench/ray_embed.json; one
JSON line per run on stdout.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from eval.bench.common import ROOT, context, log

SLICE = ROOT / "eval" / "out" / "crud" / "slice-2000.jsonl"
OUT = ROOT / "eval" / "out" / "bench" / "ray_embed.json"


class Instant:
    """An embedder that costs nothing (one constant unit vector): what is left is the driver's own work."""

    def __init__(self, dim: int):
        self.name, self.dim = f"instant-{dim}", dim

    def embed_documents(self, texts):
        return np.full((len(texts), self.dim), self.dim ** -0.5, dtype=np.float32)

    embed_queries = embed_documents


def run_one(src: Path, index: Path, workers: int, instant: bool = False) -> dict:
    """One index build in this process (workers 0: no Ray) as `rag index` runs it; its figures. `instant`: with
    embedders that cost nothing, for the most chunks/s one driver can write."""
    from rag.index import index_paths

    fanout = None
    if workers:
        from rag.index.fanout import RayFanout

        fanout = RayFanout(workers=workers)
    shutil.rmtree(index, ignore_errors=True)
    first, second = (Instant(512), Instant(384)) if instant else ("use", "e5")
    c0, t0 = time.process_time(), time.perf_counter()
    s = index_paths([src], index, first, second=second, progress=False, fanout=fanout)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"workers": workers, "seconds": round(wall, 1), "chunks": s.chunks, "articles": s.added,
           "chunks_per_s": round(s.chunks / wall, 2), "driver_cpu_s": round(cpu, 1),
           "driver_ms_per_chunk": round(cpu / s.chunks * 1000, 1),
           "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if fanout is not None:
        (run,) = fanout.runs
        wcpu = sum(w.cpu for w in run.workers)
        out.update(start_s=round(run.start_seconds, 1), worker_cpu_s=round(wcpu, 1),
                   worker_ms_per_chunk=round(wcpu / s.chunks * 1000, 1),
                   chunks_per_cpu_s=round(s.chunks / wcpu, 2) if wcpu > 0.5 else None,
                   chunks_per_s_after_start=round(s.chunks / (wall - run.start_seconds), 2),
                   refetched=run.refetched,
                   per_worker=[{"worker": w.worker, "jobs": w.jobs, "cpu_s": round(w.cpu, 1),
                                "busy_s": round(w.busy, 1), "load_s": round(w.load_seconds, 1),
                                "peak_rss_mb": round(w.peak_rss_mb)} for w in run.workers])
    return out


def fingerprint(root: Path) -> str:
    """A hash of every live row of the index (ids included) and its vectors: equal indexes, equal hashes."""
    from rag.index import Index

    h = hashlib.sha256()
    idx = Index.open(root, eager=False)
    try:
        for v in idx.views:
            seg = v.seg
            vecs, svecs = np.load(seg.path / "vectors.npy", allow_pickle=False), np.load(seg.path / "sentvecs.npy", allow_pickle=False)
            second = np.load(seg.path / "second.npy", allow_pickle=False) if seg.second_dim else vecs[:, :0]
            for row in seg.sql("SELECT id, article_id, ordinal, start, end_, text_hash FROM chunks ORDER BY id"):
                p = int(np.searchsorted(seg.ids, row[0]))
                h.update(repr(row).encode() + vecs[p].tobytes() + second[p].tobytes())
            for row in seg.sql("SELECT id, article_id, start, end_, text_hash FROM sentences ORDER BY id"):
                h.update(repr(row).encode() + svecs[int(np.searchsorted(seg.sent_ids, row[0]))].tobytes())
            h.update((seg.path / "lexicon.json").read_bytes() + np.load(seg.path / "lexicon.npy", allow_pickle=False).tobytes())
    finally:
        idx.close()
    return h.hexdigest()


def _child(work: Path, articles: int, workers: int, instant: bool = False) -> dict | None:
    """One run in a process of its own, on the first `articles` articles of the slice; its figures and the load."""
    src = work / f"crud-{articles}.jsonl"
    if not src.exists():
        with open(SLICE, encoding="utf-8") as f:
            src.write_text("".join(line for _, line in zip(range(articles), f)), encoding="utf-8")
    before = context()
    what = "single process" if not workers else f"{workers} Ray workers"
    log(f"{what}{', instant embedders' if instant else ''}, {articles} articles: load {before['load']}")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "eval.bench.ray_embed", "--articles", str(articles), "--work",
                        str(work), "--one", str(workers), *(["--instant"] if instant else [])],
                       capture_output=True, text=True, cwd=ROOT, check=False)
    if p.returncode:
        print(p.stderr, file=sys.stderr)
        return None
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r.update(instant=instant, load_before=before["load"], load_after=context()["load"], others_busy=before["busy"],
             process_wall_s=round(time.perf_counter() - t, 1))
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench.ray_embed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=400)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to run")
    ap.add_argument("--work", default=str(ROOT / "eval" / "out" / "ray-bench"))
    ap.add_argument("--ceiling", type=int, default=2000, metavar="ARTICLES",
                    help="then index this many articles with 2 workers and embedders that cost nothing: the "
                         "driver's own limit (0: skip)")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # a child: one run, JSON on stdout
    ap.add_argument("--instant", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    work = Path(args.work)
    src = work / f"crud-{args.articles}.jsonl"
    if args.one is not None:
        name = f"index-{'instant-' if args.instant else ''}{args.one}"
        print(json.dumps(run_one(src, work / name, args.one, args.instant)))
        return 0
    work.mkdir(parents=True, exist_ok=True)
    runs, single = [], None
    for workers in [0, *args.workers]:
        r = _child(work, args.articles, workers)
        if r is None:
            return 1
        single = single or fingerprint(work / "index-0")
        r["identical_to_single_process"] = fingerprint(work / f"index-{workers}") == single
        print(json.dumps(r), flush=True)
        runs.append(r)
    ceiling = _child(work, args.ceiling, 2, instant=True) if args.ceiling else None
    if ceiling:
        print(json.dumps(ceiling), flush=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"articles": args.articles, "cpus": len(os.sched_getaffinity(0)), "runs": runs,
                               "driver_ceiling": ceiling,
                               "children_cpu_s": round(children.ru_utime + children.ru_stime, 1)}, indent=2) + "\n",
                   encoding="utf-8")
    log(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
