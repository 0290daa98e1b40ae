"""The index directory: SQLite metadata, FAISS vectors, 8-bit BM25 impacts and sentence vectors, saved as atomic
generations.

Layout: `DIR/CURRENT` names the live generation `DIR/gen-NNNNNN/` holding `manifest.json`, `meta.sqlite`,
`vectors.npy` + `ids.npy` (the chunk vectors FAISS is built from), `vectors.faiss`, `bm25/`,
`sentvecs.npy` + `sent_ids.npy` (float16 vectors of every sentence, so answering never embeds article text),
`lexicon.*` (the cross-lingual word list, rag.bridge) and, when the index has a second embedder (manifest
`second_embedder`, multilingual-e5-small by default), `second.npy` + `second.faiss`: each chunk's title and text
embedded by it, a second dense retriever (rag.retrieval).
A save writes a whole new generation into a temp folder, fsyncs it, renames it into place and then swaps
`CURRENT` with `os.replace`, so a reader (or a crash) only ever sees a complete generation, old or new.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import CorruptIndexError, IndexLockedError, IndexMismatchError, RagError
from .sentences import SPLITTER_VERSION
from .text import TOKEN_VERSION, detect_lang, tokens
from .types import Article, Chunk, Passage

SCHEMA_VERSION = 2
CURRENT = "CURRENT"
LOCK = "LOCK"
KEEP_GENERATIONS = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, url TEXT NOT NULL, published TEXT NOT NULL, source TEXT NOT NULL,
    text TEXT NOT NULL, headings TEXT NOT NULL, captions TEXT NOT NULL, content_hash TEXT NOT NULL,
    indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    path TEXT NOT NULL, article_id TEXT NOT NULL, PRIMARY KEY (path, article_id)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, article_id TEXT NOT NULL, ordinal INTEGER NOT NULL, start INTEGER NOT NULL,
    end_ INTEGER NOT NULL, heading TEXT NOT NULL, text TEXT NOT NULL, text_hash TEXT NOT NULL, tokens TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE TABLE IF NOT EXISTS sentences (
    id INTEGER PRIMARY KEY, article_id TEXT NOT NULL, start INTEGER NOT NULL, end_ INTEGER NOT NULL,
    text_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sentences_article ON sentences(article_id, start);
CREATE INDEX IF NOT EXISTS articles_published ON articles(published);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------- FAISS choice


def choose_faiss_kind(n: int) -> str:
    """Exact search up to 50k chunks, IVF with 8-bit scalar quantisation beyond (eval/bench.py, docs/performance.md).

    At 100k chunks (2-core box, real dev questions as queries): ivf-sq8 reaches recall@10 0.94 against exact search,
    builds in ~1-4 s (HNSW: 23 s and recall@10 0.84; every commit rebuilds the index) and takes 52 MB (flat 196 MB).
    At 1M: ~15-30 s to build, 0.5 GB (flat 2 GB), ~25 ms per search (flat ~180 ms); HNSW would take ~5 min to
    build. Below ~50k chunks exact search stays near 1-10 ms on one thread and IVF's recall is lower.
    """
    return "flat" if n <= 50_000 else "ivf-sq8"


def build_faiss(vectors: np.ndarray, ids: np.ndarray, kind: str = "auto"):
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # training and adding use every core; queries use one
    try:
        return _build_faiss(vectors, ids, kind)
    finally:
        faiss.omp_set_num_threads(before)


def _build_faiss(vectors: np.ndarray, ids: np.ndarray, kind: str):
    import faiss

    n, dim = vectors.shape if vectors.size else (0, vectors.shape[1] if vectors.ndim == 2 else 0)
    kind = choose_faiss_kind(n) if kind == "auto" else kind
    if kind == "flat":
        base = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        base = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = 80
        base.hnsw.efSearch = 96
    elif kind == "hnsw-sq8":
        base = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = 80
        base.hnsw.efSearch = 96
        if n:
            base.train(vectors)
    elif kind.startswith("ivf"):
        # ~2*sqrt(n) lists, k-means on 40 vectors per list (at 1M: 31 s to build on the 2-core box; the former
        # 4*sqrt(n) lists / 50 per list meant 5x the k-means work for the same recall at 100k). Probe a quarter of
        # the lists, at most 256: recall@10 on the dev questions 0.94 at 100k and 0.89 at 1M, where the former 1/8
        # (at most 128) gave ~0.89 and 0.84 and cost end-to-end hit@5 (eval/bench.py sweep; 1M search 30-40 ms).
        nlist = max(1, min(4096, n, int(2 * np.sqrt(max(n, 1)))))
        quant = faiss.IndexFlatIP(dim)
        if kind == "ivf-sq8":
            base = faiss.IndexIVFScalarQuantizer(quant, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        else:
            base = faiss.IndexIVFFlat(quant, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.sort(np.random.default_rng(0).choice(n, size=min(n, 40 * nlist), replace=False))] if n else vectors
        base.train(sample)
        base.nprobe = max(1, min(256, nlist // 4))
        base.own_fields = True
        quant.this.disown()
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r}")
    index = faiss.IndexIDMap2(base)
    if n:
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))
    return index, kind


def read_strings(path: Path, what: str) -> list[str]:
    """A JSON list of strings (BM25 terms, lexicon words), or CorruptIndexError naming the file."""
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
            raise ValueError("not a list of strings")
    except Exception as e:
        raise CorruptIndexError(str(path), f"{what} is unreadable ({e.__class__.__name__}: {e})") from None
    return items


# ---------------------------------------------------------------- lexical index


class Lexical:
    """BM25 (scored by bm25s at build time) kept as 8-bit impacts per (term, chunk) in CSC order.

    Each term's scores are quantised against that term's best score (error <= 0.2% of it), which quarters the
    memory of bm25s's float32 matrix: at 1M chunks of 500 characters, 2.2 GB instead of 3.6 GB (eval/bench.py).
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


# ---------------------------------------------------------------- generation (read side)


class Rows:
    """The rows of a 2-D .npy file, read on demand with pread (never pickle, never memory-mapped).

    A query reads ~200 scattered chunk vectors and ~20 sentence vectors. Memory-mapped, even with MADV_RANDOM,
    each page fault also maps up to 16 neighbouring pages already in the page cache, which kept 1.8 GB of a
    1M-chunk vectors.npy resident after 120 questions (eval/bench.py); pread leaves them in the page cache only.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._f = open(self.path, "rb")
            version = np.lib.format.read_magic(self._f)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = header(self._f)
        except Exception as e:
            raise CorruptIndexError(str(self.path), f"array file is unreadable ({e.__class__.__name__}: {e})") from None
        if dtype.hasobject or fortran or len(shape) != 2:
            raise CorruptIndexError(str(self.path), f"not a 2-D numeric array (dtype {dtype}, shape {shape})")
        self.shape, self.dtype = tuple(shape), dtype
        self._offset, self._row = self._f.tell(), dtype.itemsize * shape[1]
        size = os.fstat(self._f.fileno()).st_size
        if size != self._offset + self._row * shape[0]:
            raise CorruptIndexError(str(self.path), f"holds {size} bytes, not the {self._offset + self._row * shape[0]} "
                                    f"its header announces")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, positions) -> np.ndarray:
        pos = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        if len(pos) and (pos.min() < 0 or pos.max() >= self.shape[0]):
            raise IndexError(f"{self.path}: row out of range")
        if self._f.closed:  # reopened after Index.close(), as its SQLite connections are
            self._f = open(self.path, "rb")
        fd = self._f.fileno()
        buf = b"".join(os.pread(fd, self._row, self._offset + int(p) * self._row) for p in pos)
        return np.frombuffer(buf, dtype=self.dtype).reshape(len(pos), self.shape[1])

    def close(self) -> None:
        self._f.close()


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    embedder: str
    dim: int
    articles: int
    chunks: int
    faiss_kind: str
    tokenizer: str
    chunk_size: int
    chunk_overlap: int
    created: str
    generation: str
    splitter: int = 1  # rag.sentences.SPLITTER_VERSION the stored sentences were split with (absent: the first)
    second_embedder: str = ""  # the second dense retriever's embedder ("" for none: indexes built before it)
    second_dim: int = 0
    tokens: int = 1  # rag.text.TOKEN_VERSION the stored BM25 tokens were made with (absent: the first)

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            # fields with a default were added later: a manifest written before them lacks them
            m = cls(**{k: data[k] for k, f in cls.__dataclass_fields__.items()
                       if k in data or f.default is dataclasses.MISSING})
            for name in ("splitter", "tokens"):
                v = getattr(m, name)
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise ValueError(f"{name} must be a positive integer, got {v!r}")
            if not isinstance(m.second_embedder, str) or not isinstance(m.second_dim, int) or (
                    bool(m.second_embedder) != (m.second_dim > 0)):
                raise ValueError(f"second_embedder {m.second_embedder!r} and second_dim {m.second_dim!r} disagree")
            return m
        except FileNotFoundError:
            raise CorruptIndexError(str(path), "manifest is missing") from None
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptIndexError(str(path), f"manifest is unreadable ({e.__class__.__name__}: {e})") from None


class Index:
    """A read-only, consistent view of one generation of an index directory (the `Store`)."""

    def __init__(self, root: str | os.PathLike, gen_dir: Path, manifest: Manifest):
        import faiss

        self.root, self.gen_dir, self.manifest = Path(root), gen_dir, manifest
        self._local = threading.local()
        db = gen_dir / "meta.sqlite"
        if not db.exists():
            raise CorruptIndexError(str(db), "SQLite file is missing")
        try:
            con = self._con()
            n_chunks = con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            n_articles = con.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise CorruptIndexError(str(db), f"SQLite database is damaged ({e})") from None
        if (n_chunks, n_articles) != (manifest.chunks, manifest.articles):
            raise CorruptIndexError(
                str(db), f"holds {n_articles} articles / {n_chunks} chunks but the manifest says "
                f"{manifest.articles} / {manifest.chunks}")
        fpath = gen_dir / "vectors.faiss"
        # One OpenMP thread per single-query search: on a 2-core laptop that is busy (embedding an upload, serving
        # another user) FAISS's thread team spin-waits, adding ~7 ms to every search (docs/performance.md).
        faiss.omp_set_num_threads(1)
        self.faiss = _read_faiss(fpath, n_chunks, manifest.dim)
        self.bm25 = Lexical.load(gen_dir / "bm25", n_chunks)
        self.bm25_ids = self.bm25.ids
        # the vectors the dense scores are read from (loaded without pickle, checked against the chunk ids)
        n_sent = con.execute("SELECT COUNT(*) FROM sentences").fetchone()[0]
        for name in ("ids.npy", "sent_ids.npy"):
            try:
                arr = np.load(gen_dir / name, allow_pickle=False)
            except Exception as e:
                raise CorruptIndexError(str(gen_dir / name), f"array file is unreadable ({e.__class__.__name__}: {e})") from None
            if name == "ids.npy" and not np.array_equal(arr, self.bm25_ids):
                raise CorruptIndexError(str(gen_dir / name), "chunk ids disagree with the BM25 index and the database")
            if name == "sent_ids.npy" and (arr.shape != (n_sent,) or (n_sent and np.any(np.diff(arr) <= 0))):
                raise CorruptIndexError(str(gen_dir / name), f"holds {arr.shape} ids, not the {n_sent} sorted sentence ids")
            setattr(self, "vec_ids" if name == "ids.npy" else "sent_ids", arr)
        # the vectors dense scores and answer features are read from, a few rows per question
        self.second_faiss = self.second_vectors = None
        rows = [("vectors", "vectors.npy", n_chunks, manifest.dim), ("sent_vectors", "sentvecs.npy", n_sent, manifest.dim)]
        if manifest.second_embedder:
            self.second_faiss = _read_faiss(gen_dir / "second.faiss", n_chunks, manifest.second_dim)
            rows.append(("second_vectors", "second.npy", n_chunks, manifest.second_dim))
        for attr, name, n, dim in rows:
            arr = Rows(gen_dir / name)
            if arr.shape != (n, dim):
                raise CorruptIndexError(str(gen_dir / name), f"shape {arr.shape} != ({n}, {dim})")
            setattr(self, attr, arr)
        for name in ("lexicon.json", "lexicon.faiss"):
            if not (gen_dir / name).is_file():
                raise CorruptIndexError(str(gen_dir / name), "cross-lingual lexicon file is missing")
        self._lexicon = None
        self._langs: dict[int, str] = {}  # chunk id -> "zh"/"en", filled as chunks are retrieved
        self._english: float | None = None

    # One connection per thread: sqlite3 connections must not be shared across threads.
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            uri = f"file:{self.gen_dir / 'meta.sqlite'}?mode=ro&immutable=1"
            con = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._local.con = con
        return con

    @classmethod
    def open(cls, root: str | os.PathLike, embedder_name: str | None = None) -> "Index":
        root = Path(root)
        cur = root / CURRENT
        if not root.exists():
            raise RagError(f"{root}: no index here yet. Build one with `rag index PATH --index {root}`.")
        for attempt in range(5):
            try:
                gen = cur.read_bytes()[:200].decode("utf-8", "replace").strip()
            except FileNotFoundError:
                raise RagError(f"{root}: not an index (no {CURRENT} file). Build one with `rag index PATH --index {root}`.") from None
            except OSError as e:  # a directory, unreadable...
                raise CorruptIndexError(str(cur), f"cannot be read ({e.strerror or e})") from None
            if not re.fullmatch(r"gen-\d{1,12}", gen):
                raise CorruptIndexError(str(cur), f"names no valid generation ({gen[:40]!r})")
            gen_dir = root / gen
            if not gen_dir.is_dir():
                if attempt < 4:  # a writer may have just replaced and removed it: read CURRENT again
                    time.sleep(0.05)
                    continue
                raise CorruptIndexError(str(gen_dir), "the generation named by CURRENT is missing")
            manifest = Manifest.read(gen_dir / "manifest.json")
            if manifest.schema_version != SCHEMA_VERSION:
                raise IndexMismatchError(
                    f"{root}: index schema v{manifest.schema_version}, this version reads v{SCHEMA_VERSION}; "
                    "rebuild with `rag index --rebuild PATH...`")
            if embedder_name is not None and embedder_name != manifest.embedder:
                raise IndexMismatchError(
                    f"{root}: index was built with embedder {manifest.embedder!r} (dim {manifest.dim}), "
                    f"not {embedder_name!r}. Use `--embedder {manifest.embedder}` or rebuild with "
                    f"`rag index --rebuild --embedder {embedder_name} PATH...`.")
            try:
                return cls(root, gen_dir, manifest)
            except CorruptIndexError:
                if attempt < 4 and cur.read_text(encoding="utf-8").strip() != gen:
                    continue  # raced with a writer
                raise
        raise CorruptIndexError(str(cur), "could not open a stable generation")

    @property
    def generation(self) -> str:
        return self.gen_dir.name

    def close(self) -> None:
        for rows in (getattr(self, "vectors", None), getattr(self, "sent_vectors", None),
                     getattr(self, "second_vectors", None)):
            if rows is not None:
                rows.close()
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # ---- Store protocol

    def search_dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        return _search(self.faiss, vector, k, allowed)

    def search_second(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The second embedder's nearest chunks (empty for an index without one)."""
        return _search(self.second_faiss, vector, k, allowed) if self.second_faiss is not None else []

    def dense_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        """Cosine of a query vector with these chunks' vectors."""
        return _row_scores(self.vectors, self.vec_ids, vector, chunk_ids)

    def second_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        """Cosine of the second embedder's query vector with these chunks' second vectors."""
        return _row_scores(self.second_vectors, self.vec_ids, vector, chunk_ids)

    def search_lexical(self, query: str | list[str], k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        if not len(self.bm25_ids) or k <= 0:
            return []
        toks = self.tokens(query) if isinstance(query, str) else query
        scores = self.bm25.scores(toks)
        if scores is None:
            return []
        if allowed is not None:
            mask = np.isin(self.bm25_ids, allowed)
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.bm25_ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def lexical_bound(self, query: str, absent: bool = False) -> float:
        """The most BM25 any chunk could score for `query` (Lexical.bound)."""
        return self.bm25.bound(self.tokens(query), absent) if len(self.bm25_ids) else 0.0

    def tokens(self, text: str) -> list[str]:
        """`text`'s BM25 tokens as this index's were made (its tokenizer and token version)."""
        return tokens(text, self.manifest.tokenizer, self.manifest.tokens)

    def passages(self, chunk_ids: Iterable[int], scores: dict[int, float] | None = None) -> list[Passage]:
        chunk_ids = list(chunk_ids)
        if not chunk_ids:
            return []
        marks = ",".join("?" * len(chunk_ids))
        rows = self._con().execute(
            f"SELECT c.id, c.article_id, a.title, c.text, c.start, c.end_, a.url, a.published, a.source, c.heading "
            f"FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id IN ({marks})", chunk_ids).fetchall()
        by_id = {r[0]: r for r in rows}
        scores = scores or {}
        out = []
        for cid in chunk_ids:
            r = by_id.get(cid)
            if r is not None:
                out.append(Passage(r[0], r[1], r[2], r[3], r[4], r[5], float(scores.get(cid, 0.0)), r[6], r[7], r[8], r[9]))
        return out

    def chunk_langs(self, chunk_ids: Sequence[int]) -> list[str]:
        """The language of each chunk ("zh"/"en", rag.text.detect_lang of its first 200 characters), read once per
        chunk and remembered."""
        missing = [int(c) for c in chunk_ids if int(c) not in self._langs]
        for i in range(0, len(missing), 500):
            part = missing[i : i + 500]
            rows = self._con().execute(
                f"SELECT id, substr(text, 1, 200) FROM chunks WHERE id IN ({','.join('?' * len(part))})", part).fetchall()
            self._langs.update((cid, detect_lang(text)) for cid, text in rows)
        return [self._langs.get(int(c), "zh") for c in chunk_ids]

    def english_share(self) -> float:
        """The share of English chunks in an even sample of up to 400 (0.0 for a Chinese-only index), computed once:
        whether Chinese questions need a bridge to English text."""
        if self._english is None:
            ids = self.bm25_ids[np.linspace(0, len(self.bm25_ids) - 1, min(400, len(self.bm25_ids))).astype(int)] \
                if len(self.bm25_ids) else []
            langs = self.chunk_langs([int(c) for c in ids])
            self._english = langs.count("en") / len(langs) if langs else 0.0
        return self._english

    def lexicon(self):
        """The cross-lingual lexicon (rag.bridge.Lexicon), loaded on first use: only English questions need it."""
        if self._lexicon is None:
            from .bridge import Lexicon

            self._lexicon = Lexicon.load(self.gen_dir, self.manifest.dim)
        return self._lexicon

    def sentences(self, passages: Sequence[Passage]) -> list[list[tuple[int, int, int]]]:
        """Per passage, the stored sentences overlapping it as (sentence id, start, end) in article offsets."""
        con = self._con()
        return [con.execute("SELECT id, start, end_ FROM sentences WHERE article_id=? AND start<? AND end_>? "
                            "ORDER BY start", (p.article_id, p.end, p.start)).fetchall() for p in passages]

    def sentence_vectors(self, sentence_ids: Sequence[int]) -> np.ndarray:
        """float32 vectors of stored sentences, in the order asked."""
        ids = np.asarray(sentence_ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.manifest.dim), dtype=np.float32)
        pos = np.searchsorted(self.sent_ids, ids)
        if np.any(pos >= len(self.sent_ids)) or np.any(self.sent_ids[np.minimum(pos, len(self.sent_ids) - 1)] != ids):
            raise CorruptIndexError(str(self.gen_dir / "sent_ids.npy"), "a sentence in the database has no vector")
        return np.asarray(self.sent_vectors[pos], dtype=np.float32)

    def doc_freq(self, terms: list[str]) -> dict[str, int]:
        """How many chunks hold each lexical term (for IDF weights)."""
        return self.bm25.doc_freq(terms)

    def neighbours(self, article_id: str, ordinal: int) -> list[tuple[int, str, int, int]]:
        """Chunks ordinal-1..ordinal+1 of an article as (ordinal, text, start, end)."""
        return self._con().execute(
            "SELECT ordinal, text, start, end_ FROM chunks WHERE article_id=? AND ordinal BETWEEN ? AND ? ORDER BY ordinal",
            (article_id, ordinal - 1, ordinal + 1)).fetchall()

    def article(self, article_id: str) -> Article | None:
        r = self._con().execute(
            "SELECT title, text, url, published, source, headings, captions FROM articles WHERE id=?", (article_id,)
        ).fetchone()
        if r is None:
            return None
        heads = tuple((int(o), h) for o, h in json.loads(r[5]))
        return Article(r[0], r[1], r[2], r[3], r[4], "", heads, tuple(json.loads(r[6])))

    def allowed_ids(self, date_from: str | None = None, date_to: str | None = None, source: str | None = None) -> np.ndarray | None:
        """Chunk ids passing the metadata filters, or None when no filter is set."""
        if not (date_from or date_to or source):
            return None
        where, args = [], []
        if date_from:
            where.append("a.published >= ?")
            args.append(date_from)
        if date_to:
            where.append("a.published != '' AND a.published <= ?")
            args.append(date_to if "T" in date_to else date_to + "T23:59:59Z")
        if source:
            where.append("a.source = ?")
            args.append(source)
        rows = self._con().execute(
            "SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE " + " AND ".join(where), args).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def stats(self) -> dict:
        con = self._con()
        last = con.execute("SELECT MAX(indexed_at) FROM articles").fetchone()[0]
        return {
            "articles": self.manifest.articles,
            "chunks": self.manifest.chunks,
            "embedder": self.manifest.embedder,
            "dim": self.manifest.dim,
            "faiss": self.manifest.faiss_kind,
            "second_embedder": self.manifest.second_embedder,
            "generation": self.generation,
            "created": self.manifest.created,
            "last_indexed": last or "",
        }

    def article_ids(self) -> list[str]:
        return [r[0] for r in self._con().execute("SELECT id FROM articles ORDER BY id")]


def _read_faiss(path: Path, n_chunks: int, dim: int):
    """A FAISS file, checked against the chunk count and the manifest's dimension."""
    import faiss

    try:
        index = faiss.read_index(str(path))
    except Exception as e:  # faiss raises RuntimeError with C++ text
        raise CorruptIndexError(str(path), f"FAISS index is unreadable ({str(e).splitlines()[0][:200]})") from None
    if index.ntotal != n_chunks:
        raise CorruptIndexError(str(path), f"holds {index.ntotal} vectors but there are {n_chunks} chunks")
    if n_chunks and index.d != dim:
        raise CorruptIndexError(str(path), f"vector dimension {index.d} != manifest dimension {dim}")
    return index


def _row_scores(rows, row_ids: np.ndarray, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(row_ids, chunk_ids)
    return np.asarray(rows[pos], dtype=np.float32) @ np.asarray(vector, dtype=np.float32)


def _search(index, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    import faiss

    if index.ntotal == 0 or k <= 0:
        return []
    q = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
    k = min(k, index.ntotal)
    params = None
    if allowed is not None:
        if len(allowed) == 0:
            return []
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64)))
    scores, ids = index.search(q, k, params=params) if params is not None else index.search(q, k)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


# ---------------------------------------------------------------- write side


def _read_lexicon(gen_dir: Path, dim: int) -> tuple[list[str], np.ndarray]:
    """The base generation's lexicon words and their float16 vectors, checked against each other."""
    words, vec_path = read_strings(gen_dir / "lexicon.json", "lexicon"), gen_dir / "lexicon.npy"
    try:
        vecs = np.load(vec_path, allow_pickle=False)
    except Exception as e:
        raise CorruptIndexError(str(vec_path), f"array file is unreadable ({e.__class__.__name__}: {e})") from None
    if vecs.shape != (len(words), dim):
        raise CorruptIndexError(str(vec_path), f"shape {vecs.shape} != ({len(words)}, {dim}) words of lexicon.json")
    return words, vecs


def _merge(ids: np.ndarray, vecs: np.ndarray, removed: set[int], new_ids: list[np.ndarray],
           new_vecs: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    """The base generation's rows minus removed ids plus new rows, sorted by id."""
    if removed:
        keep = ~np.isin(ids, np.fromiter(removed, dtype=np.int64))
        ids, vecs = ids[keep], vecs[keep]
    if new_ids:
        ids = np.concatenate([ids] + new_ids)
        vecs = np.concatenate([np.asarray(vecs, dtype=dtype)] + [np.asarray(v, dtype=dtype) for v in new_vecs])
    order = np.argsort(ids, kind="stable")
    return ids[order], np.ascontiguousarray(vecs[order], dtype=dtype)


class WriteLock:
    """An exclusive advisory lock on DIR/LOCK: one writer at a time; a second waits up to `timeout` then fails."""

    def __init__(self, root: Path, timeout: float = 0.0):
        self.root, self.timeout, self._f = Path(root), timeout, None

    def __enter__(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self._f = open(self.root / LOCK, "a+")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._f.close()
                    raise IndexLockedError(
                        f"{self.root}: another `rag index` is writing to this index; wait for it to finish "
                        "(or pass --wait SECONDS)") from None
                time.sleep(0.1)

    def __exit__(self, *exc):
        fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)
        self._f.close()


class Writer:
    """Stages changes to an index in a temp generation; `commit()` publishes it atomically."""

    def __init__(self, root: str | os.PathLike, embedder_name: str, dim: int, tokenizer: str = "bigram",
                 chunk_size: int = 500, chunk_overlap: int = 100, rebuild: bool = False, faiss_kind: str = "auto",
                 second_embedder: str = "", second_dim: int = 0):
        """`second_embedder`/`second_dim`: the second dense retriever of a new index ("" for none); an existing
        index keeps its own, as it keeps its tokenizer and chunk size."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._cleanup_temp()
        self.base: Index | None = None
        if not rebuild and (self.root / CURRENT).exists():
            self.base = Index.open(self.root)
            m = self.base.manifest
            if m.embedder != embedder_name:
                raise IndexMismatchError(
                    f"{self.root}: index was built with embedder {m.embedder!r} (dim {m.dim}), not {embedder_name!r}. "
                    f"Use `--embedder {m.embedder}` or rebuild with `rag index --rebuild --embedder {embedder_name} PATH...`.")
            tokenizer, chunk_size, chunk_overlap = m.tokenizer, m.chunk_size, m.chunk_overlap
            second_embedder, second_dim = m.second_embedder, m.second_dim
        if bool(second_embedder) != (second_dim > 0):
            raise ValueError(f"second_embedder {second_embedder!r} needs a positive second_dim, got {second_dim!r}")
        self.second_embedder, self.second_dim = second_embedder, second_dim
        # the sentence splitter the stored sentences follow: the indexer re-splits older ones and sets it when done
        self.splitter = self.base.manifest.splitter if self.base is not None else SPLITTER_VERSION
        # the token version the stored BM25 tokens follow: retokenize() brings an older index's up to date
        self.tokens = self.base.manifest.tokens if self.base is not None else TOKEN_VERSION
        self.embedder_name, self.dim, self.tokenizer = embedder_name, dim, tokenizer
        self.chunk_size, self.chunk_overlap, self.faiss_kind = chunk_size, chunk_overlap, faiss_kind
        self.tmp = Path(tempfile.mkdtemp(prefix=".tmp-gen-", dir=self.root))
        try:
            self._start(dim)
        except BaseException:
            self.abort()
            raise

    def _start(self, dim: int) -> None:
        db = self.tmp / "meta.sqlite"
        if self.base is not None:
            src = sqlite3.connect(f"file:{self.base.gen_dir / 'meta.sqlite'}?mode=ro", uri=True)
            self.con = sqlite3.connect(db)
            src.backup(self.con)
            src.close()
            self.vec_ids = np.load(self.base.gen_dir / "ids.npy", allow_pickle=False)
            self.vectors = np.load(self.base.gen_dir / "vectors.npy", allow_pickle=False)
            self.sent_ids = np.load(self.base.gen_dir / "sent_ids.npy", allow_pickle=False)
            self.sent_vectors = np.load(self.base.gen_dir / "sentvecs.npy", allow_pickle=False)
            self.lex_words, self.lex_vectors = _read_lexicon(self.base.gen_dir, dim)
            self.second_vectors = (np.load(self.base.gen_dir / "second.npy", allow_pickle=False) if self.second_dim
                                   else np.zeros((len(self.vec_ids), 0), dtype=np.float16))
        else:
            self.con = sqlite3.connect(db)
            self.vec_ids = np.zeros(0, dtype=np.int64)
            self.vectors = np.zeros((0, dim), dtype=np.float32)
            self.sent_ids = np.zeros(0, dtype=np.int64)
            self.sent_vectors = np.zeros((0, dim), dtype=np.float16)
            self.lex_words, self.lex_vectors = [], np.zeros((0, dim), dtype=np.float16)
            self.second_vectors = np.zeros((0, self.second_dim), dtype=np.float16)
        self.con.executescript(_SCHEMA)
        self.con.execute("PRAGMA journal_mode=OFF")  # the temp generation is thrown away whole on failure
        self.con.execute("PRAGMA synchronous=OFF")
        self._new_ids: list[np.ndarray] = []
        self._new_vecs: list[np.ndarray] = []
        self._new_second: list[np.ndarray] = []
        self._removed: set[int] = set()
        self._new_sids: list[np.ndarray] = []
        self._new_svecs: list[np.ndarray] = []
        self._s_removed: set[int] = set()
        self._new_words: list[str] = []
        self._new_wvecs: list[np.ndarray] = []
        self._known_words = set(self.lex_words)
        self.changed = False

    def _cleanup_temp(self) -> None:
        for p in self.root.glob(".tmp-gen-*"):
            shutil.rmtree(p, ignore_errors=True)
        for p in self.root.glob(CURRENT + ".*.tmp"):  # a CURRENT swap cut short (atomic_write_text's temp file)
            p.unlink(missing_ok=True)

    # ---- queries used by the indexer

    def article_ids(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT id FROM articles")}

    def article_hash(self, article_id: str) -> str | None:
        r = self.con.execute("SELECT content_hash FROM articles WHERE id=?", (article_id,)).fetchone()
        return r[0] if r else None

    def paths(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for path, aid in self.con.execute("SELECT path, article_id FROM sources"):
            out.setdefault(path, set()).add(aid)
        return out

    def cached_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for chunks with these text hashes (so unchanged text is never re-embedded)."""
        if not hashes or not len(self.vec_ids):
            return {}
        return self._cached("chunks", hashes, self.vec_ids, self.vectors, self._removed)

    def cached_sentence_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for sentences with these text hashes."""
        if not hashes or not len(self.sent_ids):
            return {}
        return self._cached("sentences", hashes, self.sent_ids, self.sent_vectors, self._s_removed)

    def cached_second_vectors(self, items: Sequence[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        """Second vectors already stored for chunks with this (title, text)."""
        if not items or not self.second_dim or not len(self.vec_ids):
            return {}
        wanted = set(items)
        hashes = list({text_hash(t) for _, t in wanted})
        out: dict[tuple[str, str], np.ndarray] = {}
        for i in range(0, len(hashes), 500):
            part = hashes[i : i + 500]
            q = (f"SELECT c.id, a.title, c.text FROM chunks c JOIN articles a ON a.id = c.article_id "
                 f"WHERE c.text_hash IN ({','.join('?' * len(part))})")
            for rid, title, text in self.con.execute(q, part):
                key = (title, text)
                if key in out or key not in wanted or rid in self._removed:
                    continue
                p = int(np.searchsorted(self.vec_ids, rid))
                if p < len(self.vec_ids) and self.vec_ids[p] == rid:
                    out[key] = np.asarray(self.second_vectors[p], dtype=np.float32)
        return out

    def _cached(self, table: str, hashes, ids: np.ndarray, vectors: np.ndarray, removed: set[int]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        uniq = list(set(hashes))
        for i in range(0, len(uniq), 500):
            part = uniq[i : i + 500]
            q = f"SELECT text_hash, id FROM {table} WHERE text_hash IN ({','.join('?' * len(part))})"
            for h, rid in self.con.execute(q, part):
                if h in out or rid in removed:
                    continue
                p = int(np.searchsorted(ids, rid))
                if p < len(ids) and ids[p] == rid:
                    out[h] = np.asarray(vectors[p], dtype=np.float32)
        return out

    def lexicon_words(self) -> set[str]:
        """Words of the cross-lingual lexicon already embedded (base generation and this run)."""
        return self._known_words

    def put_lexicon(self, words: Sequence[str], vectors: np.ndarray) -> None:
        if len(words) != len(vectors):
            raise ValueError("one vector per word expected")
        self._new_words.extend(words)
        self._known_words.update(words)
        if len(words):
            self._new_wvecs.append(np.asarray(vectors, dtype=np.float16).reshape(len(words), self.dim))

    # ---- mutations

    def put_article(self, article: Article, chunks: Sequence[Chunk], vectors: np.ndarray, path: str | None,
                    sentences: Sequence[tuple[int, int]] = (), sentence_vectors: np.ndarray | None = None,
                    second_vectors: np.ndarray | None = None) -> None:
        """Insert or replace an article with its chunks and sentences (spans in its text) and their vectors (and,
        for an index with a second embedder, the chunks' second vectors)."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk expected")
        if self.second_dim and (second_vectors is None or len(second_vectors) != len(chunks)):
            raise ValueError("one second vector per chunk expected")
        if len(sentences) != (0 if sentence_vectors is None else len(sentence_vectors)):
            raise ValueError("one vector per sentence expected")
        self.remove_article(article.id, keep_sources=True)
        self.con.execute(
            "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?)",
            (article.id, article.title, article.url, article.published, article.source, article.text,
             json.dumps(list(article.headings), ensure_ascii=False), json.dumps(list(article.captions), ensure_ascii=False),
             article.content_hash, now_iso()))
        ids = []
        for c in chunks:
            toks = self._chunk_tokens(article.title, c.ordinal, c.text)
            cur = self.con.execute(
                "INSERT INTO chunks (article_id, ordinal, start, end_, heading, text, text_hash, tokens) VALUES (?,?,?,?,?,?,?,?)",
                (c.article_id, c.ordinal, c.start, c.end, c.heading, c.text, text_hash(c.text), toks))
            ids.append(cur.lastrowid)
        if ids:
            self._new_ids.append(np.array(ids, dtype=np.int64))
            self._new_vecs.append(np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim))
            if self.second_dim:
                self._new_second.append(np.asarray(second_vectors, dtype=np.float16).reshape(len(ids), self.second_dim))
        sids = []
        for s, e in sentences:
            cur = self.con.execute("INSERT INTO sentences (article_id, start, end_, text_hash) VALUES (?,?,?,?)",
                                   (article.id, s, e, text_hash(article.text[s:e])))
            sids.append(cur.lastrowid)
        if sids:
            self._new_sids.append(np.array(sids, dtype=np.int64))
            self._new_svecs.append(np.asarray(sentence_vectors, dtype=np.float16).reshape(len(sids), self.dim))
        if path is not None:
            self.add_source(path, article.id)
        self.changed = True

    def add_source(self, path: str, article_id: str) -> None:
        cur = self.con.execute("INSERT OR IGNORE INTO sources VALUES (?,?)", (path, article_id))
        self.changed |= cur.rowcount > 0

    def drop_source(self, path: str, article_id: str | None = None) -> list[str]:
        """Forget that `path` holds an article; returns article ids no longer held by any path (and removes them)."""
        if article_id is None:
            aids = [r[0] for r in self.con.execute("SELECT article_id FROM sources WHERE path=?", (path,))]
            self.con.execute("DELETE FROM sources WHERE path=?", (path,))
        else:
            aids = [article_id]
            self.con.execute("DELETE FROM sources WHERE path=? AND article_id=?", (path, article_id))
        gone = []
        for aid in aids:
            if self.con.execute("SELECT 1 FROM sources WHERE article_id=? LIMIT 1", (aid,)).fetchone() is None:
                self.remove_article(aid)
                gone.append(aid)
        self.changed = True
        return gone

    def _tokens(self, text: str) -> list[str]:
        return tokens(text, self.tokenizer, self.tokens)

    def _chunk_tokens(self, title: str, ordinal: int, text: str) -> str:
        """A chunk's stored BM25 tokens: the first chunk of an article carries its title too."""
        return " ".join(self._tokens(title + "\n" + text if ordinal == 0 else text))

    def retokenize(self) -> int:
        """Make every stored chunk's BM25 tokens again with the current TOKEN_VERSION (from the stored text: nothing
        is embedded again); the number of chunks. The next commit publishes them."""
        self.tokens = TOKEN_VERSION
        rows = self.con.execute("SELECT c.id, c.ordinal, c.text, a.title FROM chunks c JOIN articles a "
                                "ON a.id = c.article_id").fetchall()
        self.con.executemany("UPDATE chunks SET tokens=? WHERE id=?",
                             [(self._chunk_tokens(title, ordinal, text), cid) for cid, ordinal, text, title in rows])
        self.changed = True
        return len(rows)

    def remove_article(self, article_id: str, keep_sources: bool = False) -> None:
        old = [r[0] for r in self.con.execute("SELECT id FROM chunks WHERE article_id=?", (article_id,))]
        if old or not keep_sources:
            self.changed = True
        self._removed.update(old)
        self._s_removed.update(r[0] for r in self.con.execute("SELECT id FROM sentences WHERE article_id=?", (article_id,)))
        self.con.execute("DELETE FROM chunks WHERE article_id=?", (article_id,))
        self.con.execute("DELETE FROM sentences WHERE article_id=?", (article_id,))
        self.con.execute("DELETE FROM articles WHERE id=?", (article_id,))
        if not keep_sources:
            self.con.execute("DELETE FROM sources WHERE article_id=?", (article_id,))

    # ---- publish

    def commit(self) -> str | None:
        """Write the staged generation and make it current. Returns its name, or None when nothing changed."""
        import faiss

        if not self.changed and self.base is not None:
            self.abort()
            return None
        ids, vecs = _merge(self.vec_ids, self.vectors, self._removed, self._new_ids, self._new_vecs, np.float32)
        sids, svecs = _merge(self.sent_ids, self.sent_vectors, self._s_removed, self._new_sids, self._new_svecs, np.float16)
        if self.second_dim:
            _, second = _merge(self.vec_ids, self.second_vectors, self._removed, self._new_ids, self._new_second,
                               np.float16)
        self.con.commit()
        rows = self.con.execute("SELECT id, tokens FROM chunks ORDER BY id").fetchall()
        n_articles = self.con.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        chunk_ids = np.array([r[0] for r in rows], dtype=np.int64)
        if not np.array_equal(chunk_ids, ids):
            raise RagError("internal error: vectors and chunk rows disagree; nothing was written")
        sent_rows = np.array([r[0] for r in self.con.execute("SELECT id FROM sentences ORDER BY id")], dtype=np.int64)
        if not np.array_equal(sent_rows, sids):
            raise RagError("internal error: sentence vectors and sentence rows disagree; nothing was written")
        self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self.con.commit()
        self.con.execute("VACUUM")
        self.con.close()

        np.save(self.tmp / "ids.npy", ids, allow_pickle=False)
        np.save(self.tmp / "vectors.npy", vecs.reshape(len(ids), self.dim), allow_pickle=False)
        np.save(self.tmp / "sent_ids.npy", sids, allow_pickle=False)
        np.save(self.tmp / "sentvecs.npy", svecs.reshape(len(sids), self.dim), allow_pickle=False)
        index, kind = build_faiss(vecs.reshape(len(ids), self.dim), ids, self.faiss_kind)
        faiss.write_index(index, str(self.tmp / "vectors.faiss"))
        if self.second_dim:
            second = second.reshape(len(ids), self.second_dim)
            np.save(self.tmp / "second.npy", second, allow_pickle=False)
            faiss.write_index(build_faiss(second.astype(np.float32), ids, self.faiss_kind)[0],
                              str(self.tmp / "second.faiss"))
        lexical = Lexical.build([r[1].split() for r in rows], chunk_ids)
        lexical.save(self.tmp / "bm25")
        self._save_lexicon(lexical)
        gen = self._next_generation()
        manifest = {
            "schema_version": SCHEMA_VERSION, "embedder": self.embedder_name, "dim": self.dim,
            "articles": n_articles, "chunks": len(rows), "faiss_kind": kind, "tokenizer": self.tokenizer,
            "chunk_size": self.chunk_size, "chunk_overlap": self.chunk_overlap, "created": now_iso(),
            "generation": gen, "splitter": self.splitter, "second_embedder": self.second_embedder,
            "second_dim": self.second_dim, "tokens": self.tokens,
        }
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        _fsync_tree(self.tmp)
        final = self.root / gen
        os.rename(self.tmp, final)
        _fsync_dir(self.root)
        atomic_write_text(self.root / CURRENT, gen + "\n")
        if self.base is not None:
            self.base.close()
        self._gc(keep=gen)
        return gen

    def _save_lexicon(self, lexical: "Lexical") -> None:
        """Keep words whose every lexical token is still in the corpus (articles removed take their words along,
        unless each token of a word still occurs elsewhere), the most frequent first when over MAX_WORDS."""
        from .bridge import MAX_WORDS, Lexicon

        words = self.lex_words + self._new_words
        vecs = np.concatenate([np.asarray(self.lex_vectors, dtype=np.float16)] + self._new_wvecs)
        df = lexical.doc_freq
        keep, freq = [], []
        for i, w in enumerate(words):
            grams = set(self._tokens(w))
            counts = df(list(grams))
            if grams and len(counts) == len(grams):
                keep.append(i)
                freq.append(min(counts.values()))
        if len(keep) > MAX_WORDS:
            keep = [keep[j] for j in sorted(np.argsort(-np.array(freq), kind="stable")[:MAX_WORDS])]
        Lexicon.save(self.tmp, [words[i] for i in keep], vecs[keep] if keep else vecs[:0], self.dim)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()
        if self.base is not None:
            self.base.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _next_generation(self) -> str:
        nums = [int(p.name[4:]) for p in self.root.glob("gen-*") if p.name[4:].isdigit()]
        return f"gen-{(max(nums) + 1) if nums else 1:06d}"

    def _gc(self, keep: str) -> None:
        gens = sorted(p for p in self.root.glob("gen-*") if p.is_dir() and p.name[4:].isdigit())
        for p in gens[:-KEEP_GENERATIONS]:
            if p.name != keep:
                shutil.rmtree(p, ignore_errors=True)
