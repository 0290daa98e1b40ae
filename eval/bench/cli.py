"""The command line: options, the worker dispatch (`--worker`), one runner per section and `main`."""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np

from eval import bench as package
from eval.bench.cold_start import bench_cold
from eval.bench.common import (
    CORPUS,
    DEV_SETS,
    FULL,
    QUICK,
    ROOT,
    context,
    load_avg,
    log,
    machine,
    now,
    run_worker,
    sample_questions,
)
from eval.bench.embedder import bench_profile, bench_threads
from eval.bench.faiss_kinds import faiss_variant, worker_kinds
from eval.bench.indexing import bench_build, corpus_texts, usable_index
from eval.bench.latency import worker_ours, worker_peer
from eval.bench.million import worker_build_big
from eval.bench.report import goal_rows, render_doc, render_md, summary_table
from eval.bench.synthetic import worker_build_synth

SECTIONS = "threads,build,sizes,peer,faiss,million,cold,profile"
WORKERS = {"ours": worker_ours, "peer": worker_peer, "kinds": worker_kinds, "build_synth": worker_build_synth,
           "build_big": worker_build_big}
DEFAULT_OUT = "eval/out/bench"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m eval.bench", description=package.__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few minutes: smaller sizes, fewer repeats, no 1M")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    ap.add_argument("--doc", default=None, help="also write the performance page (e.g. docs/performance.md)")
    ap.add_argument("--keep", action="store_true", help="keep the built 100k/1M stores (several GB)")
    ap.add_argument("--skip", default="", help=f"comma-separated sections to skip: {SECTIONS}")
    ap.add_argument("--big", type=int, default=None, help="size of the large synthetic store (default 1M; none in --quick)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return ap


def run_task(spec_json: str) -> int:
    """A worker process: run one task spec and print its JSON result as the last stdout line."""
    spec = json.loads(spec_json)
    print(json.dumps(WORKERS[spec["task"]](spec)), flush=True)
    return 0


def embed_questions(qs: list[dict], threads: int) -> np.ndarray:
    from rag.models.use import USEEmbedder

    return USEEmbedder(threads=threads).embed_queries([q["question"] for q in qs])


class Run:
    """One benchmark run: its options, configuration, output directory and results `R` (saved after each section)."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.cfg = dict(QUICK if args.quick else FULL)
        if args.big is not None:
            self.cfg["big"] = args.big or None
        self.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
        self.out = (ROOT / args.out).resolve() if not os.path.isabs(args.out) else Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.t0 = now()
        self.R: dict = {"mode": self.cfg["mode"], "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "command": "python -m eval.bench" + (" --quick" if args.quick else "") +
                        ("" if args.out == DEFAULT_OUT else f" --out {args.out}"),
                        "machine": machine(), "context_start": context(), "config": self.cfg}
        self.dev = self.out / "dev-index"
        self.stores: dict = {"dev": self.dev}
        self.threads = 0
        self.qpath = self.out / "questions.json"
        self.qvec_path = self.out / "qvecs.npy"

    def save(self) -> None:
        R = self.R
        R["total_min"] = round((now() - self.t0) / 60, 1)
        R["context_end"] = R.get("context_end") or {"load": load_avg(), "busy": []}
        R["goals"] = goal_rows(R)
        (self.out / "bench.json").write_text(json.dumps(R, indent=2, ensure_ascii=False), encoding="utf-8")
        (self.out / "bench.md").write_text(render_md(R), encoding="utf-8")

    def ours(self, index: Path) -> dict:
        return run_worker({"task": "ours", "index": str(index), "questions": str(self.qpath),
                           "warmup": self.cfg["warmup"]})


# ---------------------------------------------------------------- one runner per section


def run_threads(run: Run, sample_texts: list[str], rnd: random.Random) -> None:
    """1. USE threads=1 vs 2; the faster one embeds for the rest of the bench."""
    from rag.models.use import default_threads

    run.threads = default_threads()
    if "threads" in run.skip:
        return
    log("threads: USE threads=1 vs threads=2, embedding only")
    t = run.R["threads"] = bench_threads(rnd.sample(sample_texts, run.cfg["threads_texts"]), run.cfg["threads_reps"])
    t["context"] = context()
    run.threads = t["faster"]
    t["default_threads"] = default_threads()
    log(f"  passages/s {t['pps_median']} -> threads={run.threads}; default_threads() = {default_threads()}")
    run.save()


def run_build(run: Run) -> None:
    """2. Index build: pipeline vs embedder only, re-index (also when skipped but no usable dev index is there)."""
    if "build" in run.skip and usable_index(run.dev):
        return
    log("build: pipeline vs embedder only, re-index")
    b = run.R["build"] = bench_build(run.cfg, run.out, run.threads)
    b["context"] = context()
    log(f"  pipeline {b['pipeline_pps']} vs embedder {b['embed_only_pps']} passages/s "
        f"({b['pipeline_over_embedder']:.0%}); re-index {b['reindex_speedup']}x faster")
    run.save()


def prepare_questions(run: Run) -> None:
    qs = sample_questions(run.dev, run.cfg["per_set"])
    run.qpath.write_text(json.dumps(qs, ensure_ascii=False), encoding="utf-8")
    np.save(run.qvec_path, embed_questions(qs, run.threads))
    log(f"questions: {len(qs)} answerable dev questions ({run.cfg['per_set']} per set from {', '.join(DEV_SETS)})")


def build_synthetic_stores(run: Run) -> None:
    for n in run.cfg["sizes"]:
        root = run.out / f"store-{n // 1000}k"
        log(f"build synthetic store {n:,} chunks via Writer")
        res = run_worker({"task": "build_synth", "base": str(run.dev), "root": str(root), "n": n, "seed": n})
        run.R["synthetic_builds"][f"{n // 1000}k"] = res
        log(f"  {res['chunks']} chunks, {res['synthetic_sentences']} synthetic sentences ({res['faiss_kind']}) in "
            f"{res['total_s']} s, peak RSS {res['peak_rss_mb']} MB")
        run.stores[n] = root
        run.save()


def run_sizes(run: Run) -> None:
    """3. Sizes dev, 10k, 100k: ours and the peer, each in its own process."""
    run.R["synthetic_builds"] = {}
    if "sizes" in run.skip:
        return
    build_synthetic_stores(run)
    run.R["sizes"] = []
    for n, root in run.stores.items():
        log(f"ask latency / memory at {n}: ours")
        entry = {"n": n, "ours": run.ours(root)}
        o = entry["ours"]
        log(f"  ours: ask p50/p95 {o['ask_p50_ms']}/{o['ask_p95_ms']} ms, retrieve {o['retrieve_p50_ms']}/"
            f"{o['retrieve_p95_ms']} ms, RSS {o['rss_mb']} MB, hit@5 {o['hit5']} ({o['faiss_kind']})")
        if "peer" not in run.skip:
            log(f"ask latency / memory at {n}: LangChain peer")
            entry["peer"] = run_worker({"task": "peer", "index": str(root), "questions": str(run.qpath),
                                        "warmup": run.cfg["warmup"], "k": run.cfg["peer_k"]})
            p = entry["peer"]
            log(f"  peer: p50/p95 {p['p50_ms']}/{p['p95_ms']} ms, RSS {p['rss_mb']} MB (peak {p['peak_rss_mb']}), "
                f"hit@5 {p['hit5']}, build {p['build_s']} s")
        entry["context"] = context()
        run.R["sizes"].append(entry)
        run.save()
    run_flat_variant(run)


def run_flat_variant(run: Run) -> None:
    """The largest size again with exact search, to see what the automatic FAISS kind costs end to end."""
    n_last = run.cfg["sizes"][-1] if run.cfg["sizes"] else None
    if not n_last or run.R["sizes"][-1]["ours"]["faiss_kind"] == "flat":
        return
    log(f"ask latency at {n_last:,} with exact (flat) search, for comparison")
    v = faiss_variant(run.stores[n_last], run.out / "store-flat-variant", "flat")
    f = run.R["flat_variant"] = run.ours(v)
    shutil.rmtree(v, ignore_errors=True)
    log(f"  flat: ask p50/p95 {f['ask_p50_ms']}/{f['ask_p95_ms']} ms, retrieve {f['retrieve_p50_ms']}/"
        f"{f['retrieve_p95_ms']} ms, RSS {f['rss_mb']} MB, hit@5 {f['hit5']}")
    run.save()


def kinds_spec(run: Run, gdir: Path, kinds: list[str], nprobes: list[int]) -> dict:
    return {"task": "kinds", "vectors": str(gdir / "vectors.npy"), "ids": str(gdir / "ids.npy"),
            "qvecs": str(run.qvec_path), "tmp": str(run.out), "kinds": kinds, "nprobes": nprobes}


def run_faiss(run: Run) -> None:
    """4. FAISS kinds on the stores of cfg['kinds_sizes']."""
    run.R["faiss"] = []
    if "faiss" in run.skip:
        return
    for n in run.cfg["kinds_sizes"]:
        root = run.stores.get(n)
        if root is None:
            continue
        from rag.index import Index

        idx = Index.open(root)
        gdir = idx.gen_dir
        idx.close()
        log(f"FAISS kinds at {n:,}")
        res = run_worker(kinds_spec(run, gdir, ["flat", "hnsw", "hnsw-sq8", "ivf", "ivf-sq8"], [16, 32, 64, 128]))
        res["context"] = context()
        run.R["faiss"].append(res)
        run.save()


def run_million(run: Run) -> None:
    """5. The large store (1M chunks by default): bulk build, query process, FAISS kinds on it."""
    if not run.cfg["big"] or "million" in run.skip:
        return
    n = run.cfg["big"]
    root = run.out / "store-1m"
    log(f"1M: bulk-build {n:,} chunks")
    m = run.R["million"] = {"build": run_worker({"task": "build_big", "base": str(run.dev), "root": str(root),
                                                   "n": n, "seed": 7})}
    b = m["build"]
    log(f"  built in {b['total_s']} s ({b['faiss_kind']}), {b['sentences']:,} sentences, bm25 check "
        f"{b['bm25_check']}, {b['disk_gb']} GB, builder peak {b['peak_rss_mb']} MB")
    run.save()
    log("1M: query process")
    o = m["ours"] = run.ours(root)
    log(f"  retrieve p50/p95 {o['retrieve_p50_ms']}/{o['retrieve_p95_ms']} ms, ask {o['ask_p50_ms']}/"
        f"{o['ask_p95_ms']} ms, RSS {o['rss_mb']} MB {o['rss_split_mb']}, peak {o['peak_rss_mb']} MB, hit@5 {o['hit5']}")
    run.save()
    if "faiss" not in run.skip:
        log(f"FAISS kinds at {n:,}")
        res = run_worker(kinds_spec(run, root / "gen-000001", ["flat", "ivf-sq8"], [32, 64, 128, 256]))
        res["estimates"] = hnsw_estimates(run.R["faiss"], n)
        res["context"] = context()
        run.R["faiss"].append(res)
        run.save()
    if not run.args.keep:
        shutil.rmtree(root, ignore_errors=True)


def hnsw_estimates(faiss_blocks: list[dict], n: int) -> list[dict]:
    """HNSW at 1M is not built: its build rate at 100k puts it far past the time budget; estimated from that rate."""
    est = []
    for blk in faiss_blocks:
        for r in blk["kinds"]:
            if r["kind"].startswith("hnsw") and r["n"] >= 50_000:
                est.append({"kind": r["kind"], "build_s": round(r["build_s"] * n / r["n"] * 1.3),
                            "note": f"not built; estimated from {r['n']:,} build rate x1.3 (log n)"})
    return est


def run_cold(run: Run) -> None:
    """6. Cold start: `rag ask` on the seed index."""
    if "cold" in run.skip:
        return
    log("cold start: rag ask on the seed index")
    c = run.R["cold"] = bench_cold(run.out, run.cfg["cold_reps"], run.threads)
    log(f"  {c['runs_s']} s (median {c['median_s']})")
    run.save()


def run_profile(run: Run, sample_texts: list[str], rnd: random.Random) -> None:
    """7. Where the USE embedder spends its time."""
    if "profile" in run.skip:
        return
    log("profile: USE embedder")
    run.R["profile"] = bench_profile(rnd.sample(sample_texts, run.cfg["profile_texts"]), run.threads)
    log(f"  stages {run.R['profile']['stage_share']}")


def finish(run: Run) -> None:
    """Drop the large stores unless --keep, save, write the performance page (--doc) and print the summary."""
    R, out = run.R, run.out
    if not run.args.keep:
        for n in run.cfg["sizes"]:
            if n >= 100_000:
                shutil.rmtree(out / f"store-{n // 1000}k", ignore_errors=True)
    R["context_end"] = context()
    run.save()
    if run.args.doc:
        doc = Path(run.args.doc) if os.path.isabs(run.args.doc) else ROOT / run.args.doc
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(render_doc(R), encoding="utf-8")
    print()
    print("\n".join(summary_table(R)))
    print()
    for g in R["goals"]:
        print(f"{'MET ' if g['met'] else 'MISS' if g['met'] is False else '  - '}  {g['goal']}: {g['measured']} {g['unit']} "
              f"(target {g['target']})")
    print(f"\nwrote {out / 'bench.json'} and {out / 'bench.md'} in {R['total_min']} min")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        return run_task(args.worker)
    run = Run(args)
    M = run.R["machine"]
    log(f"machine: {M['nproc']} cores, {M['cpu']}, {M['ram_gb']} GB; "
        f"load {run.R['context_start']['load']}; busy: {run.R['context_start']['busy']}")
    sample_texts = corpus_texts([p for p in CORPUS if p.endswith(".jsonl")][:1]).texts
    rnd = random.Random(0)
    run_threads(run, sample_texts, rnd)
    run_build(run)
    prepare_questions(run)
    run_sizes(run)
    run_faiss(run)
    run_million(run)
    from rag.index.vectors import choose_faiss_kind

    run.R["auto_kinds"] = {n: choose_faiss_kind(n) for n in (5_000, 10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000)}
    run_cold(run)
    run_profile(run, sample_texts, rnd)
    finish(run)
    return 0
