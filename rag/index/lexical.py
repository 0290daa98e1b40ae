"""BM25 as 8-bit impacts in a CSC matrix: built from tokens, saved, loaded and scored."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import CorruptIndexError, RagError
from .files import read_strings

# ---------------------------------------------------------------- lexical index


class Lexical:
    """BM25 (scored by bm25s at build time) kept as 8-bit impacts per (term, chunk) in CSC order.

    Each term's scores are quantised against that term's best score (error <= 0.2% of it), which quarters the
    memory of bm25s's float32 matrix: at 1M chunks of 500 characters, 2.2 GB instead of 3.6 GB (eval/bench).
    Files in `bm25/`: terms.json (term per column), indptr.npy, docs.npy (row of each entry), impact.npy (uint8),
    scale.npy (per-term score of impact 1), ids.npy (chunk id of each row).
    """

    FILES = ("terms.json", "indptr.npy", "docs.npy", "impact.npy", "scale.npy")

    def __init__(self, ids: np.ndarray, terms: list[str], indptr: np.ndarray, docs: np.ndarray, impact: np.ndarray,
                 scale: np.ndarray):
        self.ids, self.terms, self.indptr, self.docs, self.impact, self.scale = ids, terms, indptr, docs, impact, scale
        self.vocab = {t: i for i, t in enumerate(terms)}

    @classmethod
    def build(cls, corpus_tokens: list[list[str]], ids: np.ndarray, k1: float = 1.2, b: float = 0.75) -> "Lexical":
        import bm25s

        if not corpus_tokens:
            z = np.zeros(0, dtype=np.int64)
            return cls(ids, [], np.zeros(1, dtype=np.int64), z.astype(np.int32), z.astype(np.uint8), z.astype(np.float32))
        vocab: dict[str, int] = {}
        tok_ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in corpus_tokens]
        terms = list(vocab)  # before indexing: bm25s adds an empty token of its own to the dict it is given
        retriever = bm25s.BM25(k1=k1, b=b)
        retriever.index(bm25s.tokenization.Tokenized(ids=tok_ids, vocab=vocab), show_progress=False)
        sc = retriever.scores
        if len(sc["indptr"]) != len(terms) + 1:
            raise RagError(f"internal error: bm25s returned {len(sc['indptr']) - 1} term columns for {len(terms)} terms")
        return cls.from_csc(ids, terms, sc["indptr"], sc["indices"], sc["data"])

    @classmethod
    def from_csc(cls, ids, terms: list[str], indptr, docs, data) -> "Lexical":
        """Quantise a term-major (CSC) BM25 score matrix; every stored entry keeps an impact >= 1."""
        indptr = np.asarray(indptr, dtype=np.int64)
        data = np.asarray(data, dtype=np.float32)
        counts = np.diff(indptr)
        top = np.zeros(len(terms), dtype=np.float32)
        nz = counts > 0
        top[nz] = np.maximum.reduceat(data, indptr[:-1][nz]) if len(data) else 0
        top[top <= 0] = 1.0
        impact = np.empty(len(data), dtype=np.uint8)
        for s in range(0, len(data), 1 << 24):  # in slices: a float64 temporary of the whole matrix would double RAM
            e = min(len(data), s + (1 << 24))
            col = np.searchsorted(indptr, np.arange(s, e), side="right") - 1
            impact[s:e] = np.clip(np.rint(data[s:e] / top[col] * 255.0), 1, 255)
        return cls(np.asarray(ids, dtype=np.int64), list(terms), indptr, np.asarray(docs, dtype=np.int32), impact,
                   (top / 255.0).astype(np.float32))

    def save(self, bdir: Path) -> None:
        bdir.mkdir(parents=True, exist_ok=True)
        np.save(bdir / "ids.npy", self.ids, allow_pickle=False)
        (bdir / "terms.json").write_text(json.dumps(self.terms, ensure_ascii=False), encoding="utf-8")
        for name, arr in (("indptr", self.indptr), ("docs", self.docs), ("impact", self.impact), ("scale", self.scale)):
            np.save(bdir / f"{name}.npy", arr, allow_pickle=False)

    @classmethod
    def load(cls, bdir: Path, n_chunks: int) -> "Lexical":
        def bad(name, why):
            return CorruptIndexError(str(bdir / name), f"BM25 index is {why}")

        arrs = {}
        for name in ("ids",) + tuple(f[:-4] for f in cls.FILES[1:]):
            try:
                arrs[name] = np.load(bdir / f"{name}.npy", allow_pickle=False)
            except Exception as e:
                raise bad(f"{name}.npy", f"unreadable ({e.__class__.__name__}: {e})") from None
        terms = read_strings(bdir / "terms.json", "BM25 term list")
        ids, ptr, docs, impact, scale = (arrs[k] for k in ("ids", "indptr", "docs", "impact", "scale"))
        if ids.shape != (n_chunks,):
            raise bad("ids.npy", f"inconsistent: holds {len(ids)} documents but there are {n_chunks} chunks")
        if (ptr.ndim != 1 or len(ptr) != len(terms) + 1 or ptr[0] != 0 or np.any(np.diff(ptr) < 0)
                or ptr[-1] != len(docs) or len(impact) != len(docs) or len(scale) != len(terms)):
            raise bad("indptr.npy", "inconsistent (pointers, entries, terms and scales disagree)")
        if docs.dtype != np.int32 or impact.dtype != np.uint8 or (len(docs) and (docs.min() < 0 or docs.max() >= n_chunks)):
            raise bad("docs.npy", "inconsistent (an entry points outside the chunks)")
        return cls(ids, terms, ptr, docs, impact, scale)

    def scores(self, toks: list[str]) -> np.ndarray | None:
        """BM25 score of every row for a query (a term asked twice counts twice, as in bm25s), or None if no term is known."""
        cols = [self.vocab[t] for t in toks if t in self.vocab]
        if not cols:
            return None
        out = np.zeros(len(self.ids), dtype=np.float32)
        for c in cols:
            s, e = int(self.indptr[c]), int(self.indptr[c + 1])
            out[self.docs[s:e]] += self.impact[s:e] * self.scale[c]  # rows are unique within a column
        return out

    def doc_freq(self, terms: list[str]) -> dict[str, int]:
        return {t: int(self.indptr[self.vocab[t] + 1] - self.indptr[self.vocab[t]]) for t in terms if t in self.vocab}

    def bound(self, toks: list[str], absent: bool = False) -> float:
        """The sum of each query term's best score in any row: no row can score more for this query. With `absent`,
        a term no row holds counts as the mean of the others' (the query asks for it; nothing here has it)."""
        tops = [float(self.scale[self.vocab[t]]) * 255.0 for t in toks if t in self.vocab]
        missing = len(toks) - len(tops) if absent and tops else 0
        return float(sum(tops) + missing * (sum(tops) / len(tops) if tops else 0.0))
