"""A `rag index` stand-in for tests that kill or race the indexer: same code path, deterministic fake embedder.

usage: python index_worker.py INDEX_DIR PATH... [--rebuild] [--wait S] [--phase-delay S] [--separately] [--pause S]
       [--checkpoint N] [--embed-delay S]

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

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from conftest import FakeEmbedder  # noqa: E402

from rag.errors import RagError  # noqa: E402
from rag.index import (
    index_paths,  # noqa: E402
    merge,  # noqa: E402
    writer as store,  # noqa: E402
)
from rag.index.lexical import Postings  # noqa: E402


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
    wrap(merge, "build_faiss")
    wrap(faiss, "write_index")
    wrap(Postings, "save", "bm25_save")
    wrap(merge, "fsync_tree")
    wrap(merge, "fsync_dir")
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
    ap.add_argument("--checkpoint", type=int, default=0, help="publish every N chunks (rag.index.build.CHECKPOINT)")
    ap.add_argument("--embed-delay", type=float, default=0.0, help="seconds per embedding call (a slow embedder)")
    args = ap.parse_args()
    if args.phase_delay is not None:
        _install_phases(args.phase_delay)
    if args.embed_delay:
        slow = FakeEmbedder.embed_documents

        def embed(self, texts):
            time.sleep(args.embed_delay)
            return slow(self, texts)

        FakeEmbedder.embed_documents = embed
    print("start", flush=True)
    runs = [[p] for p in args.paths] if args.separately else [args.paths]
    try:
        for n, paths in enumerate(runs):
            if n and args.pause:
                time.sleep(args.pause)
            s = index_paths(paths, args.index_dir, FakeEmbedder(), progress=False, rebuild=args.rebuild, wait=args.wait,
                            second=None, checkpoint=args.checkpoint)
            print(f"done {s.generation} {s.total_articles}", flush=True)
    except RagError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
