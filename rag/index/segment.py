"""One immutable segment, read-only: its rows (SQLite), chunk and sentence vectors, FAISS, BM25 postings, lexicon words.

A segment is written once (rag.index.writer, rag.index.merge) and never changed: a generation lists the segments it
uses with the rows it deletes from each (tombstones). Segments are shared by the generations of one process
(`acquire` / `release`), so opening a new generation loads only the segments it adds."""
from __future__ import annotations

import contextlib
import json
import os
import queue
import sqlite3
import threading
from pathlib import Path

import numpy as np

from ..errors import CorruptIndexError
from .files import read_strings
from .lexical import Postings
from .lexicon import Lexicon
from .vectors import Rows, read_faiss

SEGMENT_FORMAT = 3
SQLITE_POOL = 4  # read connections per open segment

SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, url TEXT NOT NULL, published TEXT NOT NULL, source TEXT NOT NULL,
    text TEXT NOT NULL, headings TEXT NOT NULL, captions TEXT NOT NULL, content_hash TEXT NOT NULL,
    indexed_at TEXT NOT NULL, date_from_text INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sources (
    path TEXT NOT NULL, article_id TEXT NOT NULL, PRIMARY KEY (path, article_id)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, article_id TEXT NOT NULL, ordinal INTEGER NOT NULL, start INTEGER NOT NULL,
    end_ INTEGER NOT NULL, heading TEXT NOT NULL, text TEXT NOT NULL, text_hash TEXT NOT NULL, tokens TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS sentences (
    id INTEGER PRIMARY KEY, article_id TEXT NOT NULL, start INTEGER NOT NULL, end_ INTEGER NOT NULL,
    text_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sentences_article ON sentences(article_id, start);
CREATE INDEX IF NOT EXISTS sentences_hash ON sentences(text_hash);
CREATE INDEX IF NOT EXISTS articles_published ON articles(published);
CREATE INDEX IF NOT EXISTS sources_article ON sources(article_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS minhash (article_id TEXT PRIMARY KEY, sig BLOB NOT NULL);
"""
# minhash: each article's MinHash signature (rag.index.dedup: NUM_PERM little-endian uint32; none for a text too
# short to say), and meta's "minhash" row how they were made. A segment written before them has neither table row
# nor table: its articles are their own stories until a merge rewrites it with signatures.
# articles.date_from_text: 1 when `published` was read from the text (rag.types.Article.date_from_text). A segment
# written before it has no such column and reads 0 (Segment.date_from_text); a merge rewrites it with the column.
ARTICLE_COLUMNS = "id, title, url, published, source, text, headings, captions, content_hash, indexed_at"  # in all


class Segment:
    """The files of one segment folder, checked against each other and against segment.json on open.

    `legacy`: a generation folder of the format before segments (v2), read as one segment: its BM25 postings are
    made from the stored tokens in memory (its 8-bit impacts cannot be rescored), its lexicon is its own."""

    def __init__(self, path: Path, dim: int, second_dim: int, legacy: bool = False, eager: bool = True):
        """`eager`: load the FAISS indexes and BM25 postings now (a reader); else on first use (a writer, which
        only looks rows and vectors up: opening a large index costs it no more than a small one)."""
        self.path, self.dim, self.second_dim, self.legacy = Path(path), dim, second_dim, legacy
        self.name = self.path.name
        db = self.path / "meta.sqlite"
        if not db.exists():
            raise CorruptIndexError(str(db), "SQLite file is missing")
        info = None if legacy else _read_info(self.path / "segment.json")
        self._cons: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._loaded = False
        try:
            self._open_pool(db)
            counts = {t: self.sql(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("chunks", "articles", "sentences")}
            self.has_date_flag = any(r[1] == "date_from_text" for r in self.sql("PRAGMA table_info(articles)"))
        except sqlite3.DatabaseError as e:
            self.close()
            raise CorruptIndexError(str(db), f"SQLite database is damaged ({e})") from None
        try:
            self._sizes = (info or {}).get("files", {})
            # the lexicon is checked when first read (an English question): Chinese questions work without it
            self._check_sizes([r for r in self._sizes if not r.startswith("lexicon.")])
            if info is not None and any(counts[t] != info[t] for t in counts):
                raise CorruptIndexError(str(db), f"holds {counts['articles']} articles / {counts['chunks']} chunks / "
                                        f"{counts['sentences']} sentences but segment.json says {info['articles']} / "
                                        f"{info['chunks']} / {info['sentences']}")
            self.n_chunks, self.n_articles, self.n_sentences = counts["chunks"], counts["articles"], counts["sentences"]
            self.ids = _ids(self.path / "ids.npy", self.n_chunks, "chunk")
            self.sent_ids = _ids(self.path / "sent_ids.npy", self.n_sentences, "sentence")
            self.second_vectors = None
            rows = [("vectors", "vectors.npy", self.n_chunks, dim),
                    ("sent_vectors", "sentvecs.npy", self.n_sentences, dim)]
            if second_dim:
                rows.append(("second_vectors", "second.npy", self.n_chunks, second_dim))
            for attr, name, n, d in rows:
                arr = Rows(self.path / name)
                setattr(self, attr, arr)
                if arr.shape != (n, d):
                    raise CorruptIndexError(str(self.path / name), f"shape {arr.shape} != ({n}, {d})")
            self.words = _check_lexicon(self.path, dim)
            try:  # opened now, read on the first English question: a writer may have removed the folder by then
                self._lex_file = open(self.path / "lexicon.faiss", "rb")
            except OSError as e:
                raise CorruptIndexError(str(self.path / "lexicon.faiss"), f"cannot be opened ({e.strerror or e})") from None
            if eager:
                self.load()
        except BaseException:
            self.close()
            raise
        self._lexicon: Lexicon | None = None
        self._minhash: tuple[list[str], np.ndarray] | None = None
        self.refs = 0

    def _check_sizes(self, names) -> None:
        for rel in names:
            f, size = self.path / rel, self._sizes[rel]
            try:
                have = f.stat().st_size
            except FileNotFoundError:
                raise CorruptIndexError(str(f), "file of the segment is missing") from None
            if have != size:
                raise CorruptIndexError(str(f), f"holds {have} bytes, segment.json says {size}: it was truncated "
                                        "or changed")

    def load(self) -> None:
        """Read the FAISS indexes and BM25 postings (once), checking them against the rows."""
        with self._lock:
            if self._loaded:
                return
            import faiss

            faiss.omp_set_num_threads(1)  # one thread per single-query search (docs/performance.md)
            sql_ids = np.array([r[0] for r in self.sql("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
            if not np.array_equal(sql_ids, self.ids):
                raise CorruptIndexError(str(self.path / "ids.npy"), "chunk ids disagree with the database")
            self._faiss = read_faiss(self.path / "vectors.faiss", self.n_chunks, self.dim)
            self._second_faiss = (read_faiss(self.path / "second.faiss", self.n_chunks, self.second_dim)
                                  if self.second_dim else None)
            self._postings = (Postings.build([r[0].split() for r in self.sql("SELECT tokens FROM chunks ORDER BY id")])
                              if self.legacy else Postings.load(self.path / "bm25", self.n_chunks))
            self._loaded = True

    @property
    def faiss(self):
        self.load()
        return self._faiss

    @property
    def second_faiss(self):
        self.load()
        return self._second_faiss

    @property
    def postings(self) -> Postings:
        self.load()
        return self._postings

    def _open_pool(self, db: Path) -> None:
        """SQLITE_POOL read-only connections opened now: a reader whose first query comes after a writer removed
        this segment's folder still reads it (an open file outlives its name; a path does not)."""
        uri = f"file:{db}?mode=ro&immutable=1"
        self._pool: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(SQLITE_POOL):
            con = sqlite3.connect(uri, uri=True, check_same_thread=False)
            con.execute("SELECT 1 FROM articles LIMIT 1").fetchall()  # opens the file
            self._cons.append(con)
            self._pool.put(con)

    @contextlib.contextmanager
    def con(self):
        """A pooled connection for one or more queries (a thread waits while all are lent)."""
        c = self._pool.get()
        try:
            yield c
        finally:
            self._pool.put(c)

    def sql(self, sql: str, args=()) -> list:
        with self.con() as c:
            return c.execute(sql, args).fetchall()

    def lexicon(self) -> Lexicon:
        with self._lock:
            if getattr(self, "_lexicon", None) is None:
                self._check_sizes([r for r in self._sizes if r.startswith("lexicon.")])
                if self.words is None:  # lexicon.json did not parse: reported by the first English question
                    Lexicon.load(self.path, self.dim)
                if self._lex_file.closed:
                    self._lex_file = open(self.path / "lexicon.faiss", "rb")
                self._lexicon = Lexicon.load(self.path, self.dim, self.words, self._lex_file.fileno())
            return self._lexicon

    def date_from_text(self, table: str = "") -> str:
        """The SQL expression of an article's date_from_text (`table`: its alias with the dot, e.g. "a."): the
        column, or 0 in a segment written before it."""
        return f"{table}date_from_text" if self.has_date_flag else "0"

    def has_minhash(self) -> bool:
        """Whether this segment holds signatures made the way this version makes them (rag.index.dedup)."""
        from .dedup import META_KEY, current_fingerprint

        if not self.sql("SELECT 1 FROM sqlite_master WHERE type='table' AND name='minhash'"):
            return False
        row = self.sql("SELECT value FROM meta WHERE key=?", (META_KEY,))
        return bool(row) and row[0][0] == current_fingerprint()

    def minhash(self) -> tuple[list[str], np.ndarray]:
        """(article ids, their signatures as rows) of the articles with one; empty without `has_minhash`. Read
        once (a segment never changes) and only by writers: readers need the stories, not the signatures."""
        with self._lock:
            if self._minhash is None:
                from .dedup import NUM_PERM, from_blobs

                rows = self.sql("SELECT article_id, sig FROM minhash ORDER BY article_id") if self.has_minhash() else []
                if any(len(r[1]) != 4 * NUM_PERM for r in rows):
                    raise CorruptIndexError(str(self.path / "meta.sqlite"), "a MinHash signature has the wrong size")
                self._minhash = ([r[0] for r in rows], from_blobs([r[1] for r in rows]))
            return self._minhash

    def positions(self, ids: np.ndarray, sentences: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(which of `ids` this segment holds as a mask, their row positions)."""
        own = self.sent_ids if sentences else self.ids
        if not len(own) or not len(ids):
            return np.zeros(len(ids), dtype=bool), np.zeros(0, dtype=np.int64)
        pos = np.searchsorted(own, ids)
        hit = own[np.minimum(pos, len(own) - 1)] == ids
        return hit, pos[hit]

    def close(self) -> None:
        for attr in ("vectors", "sent_vectors", "second_vectors", "_lex_file"):
            f = getattr(self, attr, None)
            if f is not None:
                f.close()
        for c in self._cons:
            c.close()
        self._cons = []


def _read_info(path: Path) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        for k in ("chunks", "articles", "sentences", "words"):
            if not isinstance(info.get(k), int) or info[k] < 0:
                raise ValueError(f"{k} must be a count, got {info.get(k)!r}")
        files = info.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(k, str) and ".." not in k and isinstance(v, int)
                                                  for k, v in files.items()):
            raise ValueError("files must map file names to sizes")
        if info.get("format") != SEGMENT_FORMAT:
            raise ValueError(f"format {info.get('format')!r}, this version reads {SEGMENT_FORMAT}")
        return info
    except FileNotFoundError:
        raise CorruptIndexError(str(path), "segment description is missing") from None
    except (ValueError, TypeError, AttributeError) as e:
        raise CorruptIndexError(str(path), f"segment description is unreadable ({e})") from None


def _ids(path: Path, n: int, what: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:
        raise CorruptIndexError(str(path), f"array file is unreadable ({e.__class__.__name__}: {e})") from None
    if arr.shape != (n,) or arr.dtype != np.int64 or (n and np.any(np.diff(arr) <= 0)):
        raise CorruptIndexError(str(path), f"holds {arr.shape} ids, not the {n} sorted {what} ids of the database")
    return arr


def _check_lexicon(path: Path, dim: int) -> list[str] | None:
    """The lexicon files present and lexicon.npy's header agreeing with lexicon.json's words and the dimension.
    Returns the words, or None when lexicon.json does not parse: the first English question reports that."""
    for name in ("lexicon.json", "lexicon.npy", "lexicon.faiss"):
        if not (path / name).is_file():
            raise CorruptIndexError(str(path / name), "cross-lingual lexicon file is missing")
    rows = Rows(path / "lexicon.npy")
    rows.close()
    try:
        words = read_strings(path / "lexicon.json", "lexicon")
    except CorruptIndexError:
        return None
    if rows.shape != (len(words), dim):
        raise CorruptIndexError(str(path / "lexicon.npy"), f"shape {rows.shape} != ({len(words)}, {dim}): "
                                f"lexicon.json lists {len(words)} words of dimension {dim}")
    return words


# ---------------------------------------------------------------- segments shared by the generations of a process

_OPEN: dict[tuple, Segment] = {}
_OPEN_LOCK = threading.RLock()  # re-entered when a dropped Index is collected while a segment opens


def acquire(path: Path, dim: int, second_dim: int, legacy: bool = False, eager: bool = True) -> Segment:
    """The open segment at `path` (opened now, or shared with a generation already open in this process); `eager`:
    with its FAISS indexes and postings loaded."""
    try:
        st = os.stat(path / ("manifest.json" if legacy else "segment.json"))
    except FileNotFoundError:
        raise CorruptIndexError(str(path / "segment.json"), "segment description is missing") from None
    key = (str(Path(path).resolve()), st.st_ino, st.st_mtime_ns, dim, second_dim, legacy)
    with _OPEN_LOCK:
        seg = _OPEN.get(key)
        if seg is None:
            seg = Segment(path, dim, second_dim, legacy, eager)
            seg.key = key
            _OPEN[key] = seg
        seg.refs += 1
    if eager:
        try:
            seg.load()
        except BaseException:
            release(seg)
            raise
    return seg


def release(seg: Segment) -> None:
    with _OPEN_LOCK:
        seg.refs -= 1
        if seg.refs <= 0:
            _OPEN.pop(getattr(seg, "key", None), None)
            seg.close()
