"""FAISS index types on a store's vectors (build time, size, latency, recall@10 against exact search), and a copy of
a store with its FAISS file rebuilt as another kind."""
from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from eval.bench.common import DIM, load_avg, log, now, pct, peak_rss_mb, rss_mb


def worker_kinds(spec: dict) -> dict:
    """Build each FAISS kind with `build_faiss` on an index's vectors; latency, recall@10 vs exact, size."""
    import faiss

    from rag.index.vectors import build_faiss, choose_faiss_kind

    vecs = np.load(spec["vectors"], mmap_mode="r", allow_pickle=False)
    ids = np.load(spec["ids"], allow_pickle=False)
    n = len(ids)
    x = np.ascontiguousarray(vecs, dtype=np.float32)
    del vecs
    q = np.load(spec["qvecs"], allow_pickle=False).astype(np.float32)
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

    from rag.index import CURRENT
    from rag.index.vectors import build_faiss

    shutil.rmtree(dst, ignore_errors=True)
    subprocess.run(["cp", "-al", str(src), str(dst)], check=True)
    g = dst / (dst / CURRENT).read_text().strip()
    vectors, ids = (np.load(g / f, allow_pickle=False) for f in ("vectors.npy", "ids.npy"))
    index, kind = build_faiss(vectors, ids, kind)
    del vectors, ids
    faiss.write_index(index, str(g / "vectors.faiss.tmp"))
    os.replace(g / "vectors.faiss.tmp", g / "vectors.faiss")  # a new inode: the source keeps its own file
    m = json.loads((g / "manifest.json").read_text())
    m["faiss_kind"] = kind
    (g / "manifest.json.tmp").write_text(json.dumps(m, indent=2))
    os.replace(g / "manifest.json.tmp", g / "manifest.json")
    return dst
