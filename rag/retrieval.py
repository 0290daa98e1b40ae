"""Hybrid retrieval: BM25 over character bigrams plus dense vectors, fused by normalised, language-aware weights."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import dictionary
from .bridge import question_words
from .names import mentions, question_names
from .store import CURRENT, Index
from .text import detect_lang
from .types import Embedder, Passage


@dataclass(frozen=True)
class Fusion:
    """How lexical and dense scores are combined (weights chosen on the dev sets, see eval/README.md)."""

    lexical_weight: float = 0.7  # for questions in the corpus's script (Chinese question over Chinese text)
    cross_lexical_weight: float = 0.4  # English question over Chinese text, BM25 over question + bridged words
    candidates: int = 100
    mode: str = "weighted"  # "weighted", "rrf", "lexical", "dense"
    # English question over Chinese text: the best `name_pool` fused chunks gain name_boost x the share of the
    # question's names (rag.names) they mention, spelled, translated or transliterated. XQuAD-en hit@1 69.0 ->
    # 71.6 at 0.25 (0.1: 70.4, 0.2: 71.4, 0.3: 71.5, 0.4: 71.3; each half of the set alike: 72.3 -> 75.8 and 65.7
    # -> 67.4), hit@5 86.5 -> 88.2.
    name_boost: float = 0.25
    name_pool: int = 20

    def __post_init__(self):
        for name in ("lexical_weight", "cross_lexical_weight", "name_boost"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"Fusion.{name} must be in [0, 1], got {v!r}")
        if self.name_pool < 1:
            raise ValueError(f"Fusion.name_pool must be >= 1, got {self.name_pool!r}")
        if self.candidates < 1:
            raise ValueError(f"Fusion.candidates must be >= 1, got {self.candidates!r}")
        if self.mode not in ("weighted", "rrf", "lexical", "dense"):
            raise ValueError(f"Fusion.mode must be weighted, rrf, lexical or dense, got {self.mode!r}")


DEFAULT_FUSION = Fusion()


class Searcher:
    """An open index with its query embedder; reopens itself when a writer publishes a new generation."""

    def __init__(self, root: str | os.PathLike, embedder: Embedder | None = None):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._embedder = embedder
        self._stamp = None
        self.index: Index | None = None
        self.refresh()

    def refresh(self) -> Index:
        try:  # the generation name itself, not an mtime: two quick publishes must not look alike
            stamp = (self.root / CURRENT).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, UnicodeDecodeError, IsADirectoryError):
            stamp = None
        if self.index is not None and stamp == self._stamp:
            return self.index
        with self._lock:
            if self.index is None or stamp != self._stamp:
                idx = Index.open(self.root, embedder_name=self._embedder.name if self._embedder else None)
                if self._embedder is None:
                    self._embedder = _shared_embedder(idx.manifest.embedder)
                self.index, self._stamp = idx, stamp
        return self.index

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @staticmethod
    def dense_scores(idx: Index, qvec: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(idx.vec_ids, chunk_ids)
        return np.asarray(idx.vectors[pos] @ qvec, dtype=np.float32)

    def search(self, question: str, k: int = 5, fusion: Fusion = DEFAULT_FUSION, date_from: str | None = None,
               date_to: str | None = None, source: str | None = None, qvec: np.ndarray | None = None,
               idx: Index | None = None, bridge: dict[str, float] | None = None) -> list[Passage]:
        """Ranked passages from `idx` (default: the current generation; pass one to read a single generation).
        `bridge`: the question's bridged words if already known (see `bridged_words`)."""
        idx = idx or self.refresh()
        allowed = idx.allowed_ids(date_from, date_to, source)
        n = idx.manifest.chunks
        if n == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        ncand = min(n, max(fusion.candidates, k))
        lex = []
        if fusion.mode != "dense":
            bridge = self.bridged_words(question, idx) if bridge is None else bridge
            lex = idx.search_lexical(" ".join([question, *bridge]), ncand, allowed)
        dense = []
        if fusion.mode != "lexical":
            if qvec is None:
                qvec = self.embedder.embed_queries([question])[0]
            dense = idx.search_dense(qvec, ncand, allowed)
        if fusion.mode == "lexical":
            ranked = lex
        elif fusion.mode == "dense":
            ranked = dense
        elif fusion.mode == "rrf":
            ranked = _rrf([lex, dense])
        else:
            ranked = self._weighted(idx, question, lex, dense, qvec, fusion)
            if fusion.name_boost and self._cross(question):
                ranked = self._boost_names(idx, question, ranked, fusion)
        top = ranked[:k]
        return idx.passages([c for c, _ in top], dict(top))

    def _weighted(self, idx: Index, question, lex, dense, qvec, fusion: Fusion) -> list[tuple[int, float]]:
        ids = np.array(sorted({c for c, _ in lex} | {c for c, _ in dense}), dtype=np.int64)
        if not len(ids):
            return []
        lex_map = dict(lex)
        lex_s = np.array([lex_map.get(int(c), 0.0) for c in ids], dtype=np.float32)
        dense_s = self.dense_scores(idx, qvec, ids)
        lex_n = lex_s / lex_s.max() if lex_s.max() > 0 else lex_s
        # Dense cosines bunch together; rescale between the candidates' floor and the best one.
        lo, hi = float(dense_s.min()), float(dense_s.max())
        dense_n = (dense_s - lo) / (hi - lo) if hi > lo else np.zeros_like(dense_s)
        w = fusion.lexical_weight if detect_lang(question) == self.corpus_lang else fusion.cross_lexical_weight
        score = w * lex_n + (1 - w) * dense_n
        order = np.argsort(-score, kind="stable")
        return [(int(ids[i]), float(score[i])) for i in order]

    @staticmethod
    def _boost_names(idx: Index, question: str, ranked, fusion: Fusion) -> list[tuple[int, float]]:
        asked = question_names(question)
        pool = ranked[: fusion.name_pool]
        if not asked or not pool:
            return ranked
        passages = idx.passages([c for c, _ in pool], dict(pool))
        share = {p.chunk_id: sum(mentions(n, f"{p.title}\n{p.text}") for n in asked) / len(asked) for p in passages}
        boosted = [(c, sc + fusion.name_boost * share.get(c, 0.0)) for c, sc in pool]
        return sorted(boosted, key=lambda x: -x[1]) + ranked[fusion.name_pool:]

    def _cross(self, question: str) -> bool:
        return detect_lang(question) == "en" and self.corpus_lang == "zh"

    def bridged_words(self, question: str, idx: Index) -> dict[str, float]:
        """Corpus words standing in for an English question's words, with their cosine (rag.bridge); none for
        other questions."""
        if not self._cross(question):
            return {}
        words = question_words(question)
        if not words:
            return {}
        lexicon = idx.lexicon()
        out = lexicon.translate_scored(self.embedder.embed_queries(words))
        for w in dictionary.translate(question, lexicon.vocabulary):
            out[w] = max(out.get(w, 0.0), dictionary.SIMILARITY)
        return out

    @property
    def corpus_lang(self) -> str:
        return "zh"  # the corpora this tool targets are Chinese first; a per-index language is future work


def _rrf(lists: list[list[tuple[int, float]]], k0: int = 60) -> list[tuple[int, float]]:
    score: dict[int, float] = {}
    for lst in lists:
        for rank, (c, _) in enumerate(lst):
            score[c] = score.get(c, 0.0) + 1.0 / (k0 + rank + 1)
    return sorted(score.items(), key=lambda x: -x[1])


_SEARCHERS: dict[str, Searcher] = {}
_EMBEDDERS: dict[str, Embedder] = {}
_GLOBAL = threading.Lock()


def _shared_embedder(name: str) -> Embedder:
    from .embedders import get_embedder

    with _GLOBAL:
        if name not in _EMBEDDERS:
            _EMBEDDERS[name] = get_embedder(name)
        return _EMBEDDERS[name]


def searcher(index: str | os.PathLike | Searcher, embedder: Embedder | None = None) -> Searcher:
    """The cached Searcher for an index directory (one per path per process)."""
    if isinstance(index, Searcher):
        return index
    key = os.path.abspath(index)
    with _GLOBAL:
        s = _SEARCHERS.get(key)
    if s is None or (embedder is not None and s.embedder is not embedder):
        s = Searcher(key, embedder)
        with _GLOBAL:
            _SEARCHERS[key] = s
    return s
