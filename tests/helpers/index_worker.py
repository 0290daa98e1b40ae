"""A `rag index` stand-in for tests that kill or race the indexer: same code path, deterministic fake embedder.

usage: python index_worker.py INDEX_DIR PATH... [--rebuild] [--wait S] [--phase-delay S] [--separately] [--pause S]

--phase-delay S   before every step of the save (embedding, each file written, fsync, rename, the CURRENT swap,
                  cleanup) print `phase <name>` on stdout and sleep S seconds, so a test can SIGKILL at that step
--separately      index each PATH in its own run, publishing one generation per PATH (--pause S between runs)
Prints `start` once imports are done and `done <generation> <articles>` after each run.
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for conftest.FakeEmbedder

import bm25s  # noqa: E402
import faiss  # noqa: E402
import numpy as np  # noqa: E402
from conftest import FakeEmbedder  # noqa: E402

from rag.errors import RagError  # noqa: E402
from rag.index import (
    index_paths,  # noqa: E402
    writer as store,  # noqa: E402
)


def _install_phases(delay: float) -> None:
    def wrap(owner, attr, name=None):
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def slow(*a, **kw):
            print(f"phase {name or attr}", flush=True)
            time.sleep(delay)
            return fn(*a, **kw)

        setattr(owner, attr, slow)

    wrap(FakeEmbedder, "embed_documents", "embed")
    wrap(store.Writer, "commit")
    wrap(np, "save")
    wrap(store, "build_faiss")
    wrap(faiss, "write_index")
    wrap(bm25s.BM25, "save", "bm25_save")
    wrap(store, "fsync_tree")
    wrap(store, "fsync_dir")
    wrap(os, "rename")
    wrap(os, "replace")
    wrap(store.Writer, "_gc")
    wrap(shutil, "rmtree")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("index_dir")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--wait", type=float, default=0.0)
    ap.add_argument("--phase-delay", type=float, default=None)
    ap.add_argument("--separately", action="store_true")
    ap.add_argument("--pause", type=float, default=0.0)
    args = ap.parse_args()
    if args.phase_delay is not None:
        _install_phases(args.phase_delay)
    print("start", flush=True)
    runs = [[p] for p in args.paths] if args.separately else [args.paths]
    try:
        for n, paths in enumerate(runs):
            if n and args.pause:
                time.sleep(args.pause)
            s = index_paths(paths, args.index_dir, FakeEmbedder(), progress=False, rebuild=args.rebuild, wait=args.wait,
                            second=None)
            print(f"done {s.generation} {s.total_articles}", flush=True)
    except RagError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
