"""BM25 over segments: each segment keeps term frequencies and row lengths; scores use corpus-wide statistics."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import CorruptIndexError
from .files import read_strings

K1, B = 1.2, 0.75  # bm25s's defaults, which the index used before segments


class Postings:
    """One segment's postings in CSC order: for each term, the rows holding it (`docs`, int32) and how often
    (`tf`, uint8: a 500-character chunk holds a term at most ~250 times; higher counts are clipped at 255, which
    moves BM25's saturating term score by < 0.1%), and each row's length in tokens.
    Files in `bm25/`: terms.json, indptr.npy, docs.npy, tf.npy, lengths.npy."""

    FILES = ("terms.json", "indptr.npy", "docs.npy", "tf.npy", "lengths.npy")

    def __init__(self, terms: list[str], indptr: np.ndarray, docs: np.ndarray, tf: np.ndarray, lengths: np.ndarray):
        self.terms, self.indptr, self.docs, self.tf, self.lengths = terms, indptr, docs, tf, lengths
        self.vocab = {t: i for i, t in enumerate(terms)}

    @classmethod
    def build(cls, corpus_tokens: Sequence[Sequence[str]]) -> "Postings":
        vocab: dict[str, int] = {}
        cols, rows, lengths = [], [], np.zeros(len(corpus_tokens), dtype=np.int32)
        for r, doc in enumerate(corpus_tokens):
            lengths[r] = len(doc)
            ids = [vocab.setdefault(t, len(vocab)) for t in doc]
            cols.append(np.asarray(ids, dtype=np.int64))
            rows.append(np.full(len(ids), r, dtype=np.int64))
        terms = list(vocab)
        if not terms:
            z = np.zeros(0, dtype=np.int32)
            return cls([], np.zeros(1, dtype=np.int64), z, z.astype(np.uint8), lengths)
        col, row = np.concatenate(cols), np.concatenate(rows)
        key = col * max(1, len(corpus_tokens)) + row  # (term, row) pairs: counting them gives the term frequencies
        uniq, tf = np.unique(key, return_counts=True)
        ucol, urow = uniq // max(1, len(corpus_tokens)), uniq % max(1, len(corpus_tokens))
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(ucol, minlength=len(terms)), out=indptr[1:])
        return cls(terms, indptr, urow.astype(np.int32), np.minimum(tf, 255).astype(np.uint8), lengths)

    def save(self, bdir: Path) -> None:
        bdir.mkdir(parents=True, exist_ok=True)
        (bdir / "terms.json").write_text(json.dumps(self.terms, ensure_ascii=False), encoding="utf-8")
        for name, arr in (("indptr", self.indptr), ("docs", self.docs), ("tf", self.tf), ("lengths", self.lengths)):
            np.save(bdir / f"{name}.npy", arr, allow_pickle=False)

    @classmethod
    def load(cls, bdir: Path, n_rows: int) -> "Postings":
        def bad(name, why):
            return CorruptIndexError(str(bdir / name), f"BM25 postings are {why}")

        arrs = {}
        for name in ("indptr", "docs", "tf", "lengths"):
            try:
                arrs[name] = np.load(bdir / f"{name}.npy", allow_pickle=False)
            except Exception as e:
                raise bad(f"{name}.npy", f"unreadable ({e.__class__.__name__}: {e})") from None
        terms = read_strings(bdir / "terms.json", "BM25 term list")
        ptr, docs, tf, lengths = (arrs[k] for k in ("indptr", "docs", "tf", "lengths"))
        if lengths.shape != (n_rows,) or lengths.dtype != np.int32:
            raise bad("lengths.npy", f"inconsistent: holds {lengths.shape} lengths for {n_rows} chunks")
        if (ptr.ndim != 1 or len(ptr) != len(terms) + 1 or ptr[0] != 0 or np.any(np.diff(ptr) < 0)
                or ptr[-1] != len(docs) or len(tf) != len(docs)):
            raise bad("indptr.npy", "inconsistent (pointers, entries and terms disagree)")
        if docs.dtype != np.int32 or tf.dtype != np.uint8 or (len(docs) and (docs.min() < 0 or docs.max() >= n_rows)):
            raise bad("docs.npy", "inconsistent (an entry points outside the chunks)")
        return cls(terms, ptr, docs, tf, lengths)

    def column(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        c = self.vocab.get(term)
        if c is None:
            return None
        s, e = int(self.indptr[c]), int(self.indptr[c + 1])
        return self.docs[s:e], self.tf[s:e]


class BM25:
    """BM25 (Lucene's IDF, bm25s's defaults) over the live rows of several segments' postings: document
    frequencies, row count and average length are summed over the live rows of every segment, so an index scores
    the same whether its chunks sit in one segment or twenty (tests/index/test_segments.py)."""

    def __init__(self, parts: Sequence[tuple[Postings, np.ndarray | None]], k1: float = K1, b: float = B):
        """`parts`: each segment's postings and its dead-row mask (None when no row is deleted)."""
        self.parts, self.k1, self.b = list(parts), k1, b
        self.n = sum(len(p.lengths) - (int(d.sum()) if d is not None else 0) for p, d in self.parts)
        total = sum(int(p.lengths.sum()) - (int(p.lengths[d].sum()) if d is not None else 0) for p, d in self.parts)
        self.avgdl = total / self.n if self.n else 1.0
        self._norms: list[np.ndarray | None] = [None] * len(self.parts)

    def _norm(self, i: int) -> np.ndarray:
        if self._norms[i] is None:  # k1 * (1 - b + b * len / avgdl) per row, once per open generation
            lengths = self.parts[i][0].lengths.astype(np.float64)
            self._norms[i] = (self.k1 * ((1 - self.b) + self.b * lengths / self.avgdl)).astype(np.float32)
        return self._norms[i]

    def doc_freq(self, terms: Sequence[str]) -> dict[str, int]:
        """Live chunks holding each term (terms no live chunk holds are left out)."""
        out: dict[str, int] = {}
        for t in dict.fromkeys(terms):
            n = 0
            for postings, dead in self.parts:
                col = postings.column(t)
                if col is not None:
                    n += len(col[0]) if dead is None else int(np.count_nonzero(~dead[col[0]]))
            if n:
                out[t] = n
        return out

    def idf(self, terms: Sequence[str]) -> dict[str, np.float32]:
        return {t: np.float32(math.log(1 + (self.n - df + 0.5) / (df + 0.5))) for t, df in self.doc_freq(terms).items()}

    def scores(self, toks: Sequence[str]) -> list[np.ndarray] | None:
        """Per segment, every row's BM25 for a query (a term asked twice counts twice; dead rows 0), or None if no
        live row holds any query term."""
        idf = self.idf(toks)
        if not idf:
            return None
        out = []
        for i, (postings, dead) in enumerate(self.parts):
            row = np.zeros(len(postings.lengths), dtype=np.float32)
            norm = None
            for t in toks:
                col = postings.column(t) if t in idf else None
                if col is None:
                    continue
                norm = self._norm(i) if norm is None else norm
                docs, tf = col
                tf = tf.astype(np.float32)
                row[docs] += idf[t] * (tf / (norm[docs] + tf))  # rows are unique within a column
            if dead is not None:
                row[dead] = 0.0
            out.append(row)
        return out

    def bound(self, toks: Sequence[str], absent: bool = False) -> float:
        """The sum of each query term's best score in any live row: no row can score more for this query. With
        `absent`, a term no row holds counts as the mean of the others' (the query asks for it; nothing has it)."""
        idf, tops = self.idf(toks), []
        for t in toks:
            if t not in idf:
                continue
            best = 0.0
            for i, (postings, dead) in enumerate(self.parts):
                col = postings.column(t)
                if col is None:
                    continue
                docs, tf = col
                tf = tf.astype(np.float32)
                s = idf[t] * (tf / (self._norm(i)[docs] + tf))
                if dead is not None:
                    s = s[~dead[docs]]
                if len(s):
                    best = max(best, float(s.max()))
            tops.append(best)
        missing = len(toks) - len(tops) if absent and tops else 0
        return float(sum(tops) + missing * (sum(tops) / len(tops) if tops else 0.0))
