"""Shared by every section of the benchmark: its configurations and goals, timing, memory and machine-load
readings, the worker launcher (`--worker`) and the sample of dev questions."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

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
    cmd = [sys.executable, "-m", "eval.bench", "--worker", json.dumps(spec)]
    t0 = now()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    if p.returncode != 0:
        raise RuntimeError(f"worker {spec.get('task')} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    res = json.loads(lines[-1])
    res["wall_s"] = round(now() - t0, 1)
    return res


def index_chunk_count(root: Path) -> int:
    from rag.index import Index

    idx = Index.open(root)
    n = idx.manifest.chunks
    idx.close()
    return n


def lexicon_size(root: Path) -> int | None:
    """Words in the cross-lingual lexicon of an index's current generation (its segments', summed)."""
    from rag.errors import RagError
    from rag.index import Index

    with contextlib.suppress(OSError, RagError):
        idx = Index.open(root, eager=False)
        try:
            return sum(len(v.seg.words or ()) for v in idx.views)
        finally:
            idx.close()
    return None


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def sample_questions(index: Path, per_set: int, seed: int = 0) -> list[dict]:
    """Answerable dev questions (per_set from each of DEV_SETS) whose gold article is in `index`."""
    from rag.evaluation import load_questions, sample_questions as _sample
    from rag.index import Index

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
