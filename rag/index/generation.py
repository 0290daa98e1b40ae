"""One published generation, read-only: its manifest, SQLite metadata, vectors, BM25 and sentence vectors.

Layout: `DIR/CURRENT` names the live generation `DIR/gen-NNNNNN/` holding `manifest.json`, `meta.sqlite`,
`vectors.npy` + `ids.npy` (the chunk vectors FAISS is built from), `vectors.faiss`, `bm25/`,
`sentvecs.npy` + `sent_ids.npy` (float16 vectors of every sentence, so answering never embeds article text),
`lexicon.*` (the cross-lingual word list, rag.index.lexicon) and, when the index has a second embedder (manifest
`second_embedder`, multilingual-e5-small by default), `second.npy` + `second.faiss`: each chunk's title and text
embedded by it, a second dense retriever (rag.retrieve).
A save writes a whole new generation into a temp folder, fsyncs it, renames it into place and then swaps
`CURRENT` with `os.replace`, so a reader (or a crash) only ever sees a complete generation, old or new."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import CorruptIndexError, IndexMismatchError, RagError
from ..lang import detect_lang, tokens
from ..types import Article, Passage
from .files import CURRENT, FIRST, SCHEMA_VERSION, check_folder, generations, read_pointer, read_strings
from .lexical import Lexical
from .lexicon import Lexicon
from .vectors import Rows, read_faiss, row_scores, search_index

SQLITE_POOL = 4  # read connections per open generation

# ---------------------------------------------------------------- generation (read side)


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
    splitter: int = 1  # rag.ingest.sentences.SPLITTER_VERSION the stored sentences were split with (absent: the first)
    second_embedder: str = ""  # the second dense retriever's embedder ("" for none: indexes built before it)
    second_dim: int = 0
    tokens: int = 1  # rag.lang.text.TOKEN_VERSION the stored BM25 tokens were made with (absent: the first)

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
        db = gen_dir / "meta.sqlite"
        if not db.exists():
            raise CorruptIndexError(str(db), "SQLite file is missing")
        try:
            self._open_pool()
            n_chunks = self.sql("SELECT COUNT(*) FROM chunks")[0][0]
            n_articles = self.sql("SELECT COUNT(*) FROM articles")[0][0]
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
        self.faiss = read_faiss(fpath, n_chunks, manifest.dim)
        self.bm25 = Lexical.load(gen_dir / "bm25", n_chunks)
        self.bm25_ids = self.bm25.ids
        # the vectors the dense scores are read from (loaded without pickle, checked against the chunk ids)
        n_sent = self.sql("SELECT COUNT(*) FROM sentences")[0][0]
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
            self.second_faiss = read_faiss(gen_dir / "second.faiss", n_chunks, manifest.second_dim)
            rows.append(("second_vectors", "second.npy", n_chunks, manifest.second_dim))
        for attr, name, n, dim in rows:
            arr = Rows(gen_dir / name)
            if arr.shape != (n, dim):
                raise CorruptIndexError(str(gen_dir / name), f"shape {arr.shape} != ({n}, {dim})")
            setattr(self, attr, arr)
        self._lex_words = _check_lexicon(gen_dir, manifest.dim)
        # open now, read on the first English question: a writer may have removed the folder by then
        try:
            self._lex_file = open(gen_dir / "lexicon.faiss", "rb")
        except OSError as e:
            raise CorruptIndexError(str(gen_dir / "lexicon.faiss"), f"cannot be opened ({e.strerror or e})") from None
        self._lexicon = None
        self._langs: dict[int, str] = {}  # chunk id -> "zh"/"en", filled as chunks are retrieved
        self._english: float | None = None

    # One connection per thread: sqlite3 connections must not be shared across threads.
    def _open_pool(self) -> None:
        """SQLITE_POOL read-only connections opened now: a reader thread whose first query comes after writers have
        deleted this generation's folder still reads it (an open file outlives its name; a path does not)."""
        uri = f"file:{self.gen_dir / 'meta.sqlite'}?mode=ro&immutable=1"
        self._pool: queue.SimpleQueue = queue.SimpleQueue()
        self._cons = []
        for _ in range(SQLITE_POOL):
            con = sqlite3.connect(uri, uri=True, check_same_thread=False)
            con.execute("SELECT 1 FROM articles LIMIT 1").fetchall()  # opens the file
            self._cons.append(con)
            self._pool.put(con)

    @contextlib.contextmanager
    def _con(self):
        """A pooled connection for one or more queries (a thread waits while all are lent)."""
        con = self._pool.get()
        try:
            yield con
        finally:
            self._pool.put(con)

    def sql(self, sql: str, args=()) -> list:
        """The rows of a read-only query on this generation's metadata (tools and tests; the file is immutable)."""
        with self._con() as con:
            return con.execute(sql, args).fetchall()

    @classmethod
    def open(cls, root: str | os.PathLike, embedder_name: str | None = None) -> "Index":
        """The generation `root/CURRENT` names. A folder whose CURRENT is lost or names a generation that does not
        open is reported with the newest complete generation and `rag repair`, never treated as no index."""
        root = Path(root)
        if not root.exists():
            raise RagError(f"{root}: no index here yet. Build one with `rag index PATH --index {root}`.")
        check_folder(root)
        try:
            return cls._open(root, embedder_name)
        except CorruptIndexError as e:
            raise _with_repair_hint(root, e) from None

    @classmethod
    def _open(cls, root: Path, embedder_name: str | None) -> "Index":
        cur = root / CURRENT
        for attempt in range(5):
            try:
                gen = cur.read_bytes()[:200].decode("utf-8", "replace").strip()
            except FileNotFoundError:
                raise missing_current_error(root) from None
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
                     getattr(self, "second_vectors", None), getattr(self, "_lex_file", None)):
            if rows is not None:
                rows.close()
        for con in getattr(self, "_cons", ()):
            con.close()
        self._cons = []

    # ---- Store protocol

    def search_dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        return search_index(self.faiss, vector, k, allowed)

    def search_second(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The second embedder's nearest chunks (empty for an index without one)."""
        return search_index(self.second_faiss, vector, k, allowed) if self.second_faiss is not None else []

    def dense_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        """Cosine of a query vector with these chunks' vectors."""
        return row_scores(self.vectors, self.vec_ids, vector, chunk_ids)

    def second_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        """Cosine of the second embedder's query vector with these chunks' second vectors."""
        return row_scores(self.second_vectors, self.vec_ids, vector, chunk_ids)

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
        rows = self.sql(
            f"SELECT c.id, c.article_id, a.title, c.text, c.start, c.end_, a.url, a.published, a.source, c.heading "
            f"FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id IN ({marks})", chunk_ids)
        by_id = {r[0]: r for r in rows}
        scores = scores or {}
        out = []
        for cid in chunk_ids:
            r = by_id.get(cid)
            if r is not None:
                out.append(Passage(r[0], r[1], r[2], r[3], r[4], r[5], float(scores.get(cid, 0.0)), r[6], r[7], r[8], r[9]))
        return out

    def chunk_langs(self, chunk_ids: Sequence[int]) -> list[str]:
        """The language of each chunk ("zh"/"en", rag.lang.text.detect_lang of its first 200 characters), read once per
        chunk and remembered."""
        missing = [int(c) for c in chunk_ids if int(c) not in self._langs]
        for i in range(0, len(missing), 500):
            part = missing[i : i + 500]
            rows = self.sql(
                f"SELECT id, substr(text, 1, 200) FROM chunks WHERE id IN ({','.join('?' * len(part))})", part)
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
        """The cross-lingual lexicon (rag.index.lexicon), loaded on first use: only English questions need it."""
        if self._lexicon is None:
            if self._lex_file.closed:  # reopened after close(), as the SQLite connections are
                self._lex_file = open(self.gen_dir / "lexicon.faiss", "rb")
            self._lexicon = Lexicon.load(self.gen_dir, self.manifest.dim, self._lex_words, self._lex_file.fileno())
        return self._lexicon

    def sentences(self, passages: Sequence[Passage]) -> list[list[tuple[int, int, int]]]:
        """Per passage, the stored sentences overlapping it as (sentence id, start, end) in article offsets."""
        with self._con() as con:
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
        return self.sql(
            "SELECT ordinal, text, start, end_ FROM chunks WHERE article_id=? AND ordinal BETWEEN ? AND ? ORDER BY ordinal",
            (article_id, ordinal - 1, ordinal + 1))

    def article(self, article_id: str) -> Article | None:
        rows = self.sql(
            "SELECT title, text, url, published, source, headings, captions FROM articles WHERE id=?", (article_id,))
        if not rows:
            return None
        r = rows[0]
        heads = tuple((int(o), h) for o, h in json.loads(r[5]))
        return Article(r[0], r[1], r[2], r[3], r[4], "", heads, tuple(json.loads(r[6])))

    def allowed_ids(self, date_from: str | None = None, date_to: str | None = None, source: str | None = None) -> np.ndarray | None:
        """Chunk ids passing the metadata filters, or None when no filter is set."""
        if not (date_from or date_to or source):
            return None
        where, args = _article_filters("a.", date_from, date_to, source)
        rows = self.sql(
            "SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE " + " AND ".join(where), args)
        return np.array([r[0] for r in rows], dtype=np.int64)

    def list_articles(self, offset: int = 0, limit: int = 20, *, date_from: str | None = None,
                      date_to: str | None = None, source: str | None = None,
                      title: str | None = None) -> tuple[int, list[dict]]:
        """(how many articles pass the filters, a page of them newest first): id, title, url, published, source,
        characters. `title` matches a substring of the title, case-insensitively."""
        where, args = _article_filters("", date_from, date_to, source)
        where.insert(0, "1=1")
        if title:
            where.append("instr(lower(title), lower(?)) > 0")
            args.append(title)
        cond = " AND ".join(where)
        total = self.sql(f"SELECT COUNT(*) FROM articles WHERE {cond}", args)[0][0]
        rows = self.sql(f"SELECT id, title, url, published, source, length(text) FROM articles WHERE {cond} "
                          "ORDER BY published DESC, id LIMIT ? OFFSET ?", [*args, int(limit), int(offset)])
        keys = ("id", "title", "url", "published", "source", "chars")
        return int(total), [dict(zip(keys, r)) for r in rows]

    def stats(self) -> dict:
        last = self.sql("SELECT MAX(indexed_at) FROM articles")[0][0]
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
        return [r[0] for r in self.sql("SELECT id FROM articles ORDER BY id")]


def _article_filters(prefix: str, date_from: str | None, date_to: str | None,
                     source: str | None) -> tuple[list[str], list[str]]:
    """SQL conditions on the articles table (column prefix `prefix`) for the date and source filters."""
    where, args = [], []
    if date_from:
        where.append(f"{prefix}published >= ?")
        args.append(date_from)
    if date_to:
        where.append(f"{prefix}published != '' AND {prefix}published <= ?")
        args.append(date_to if "T" in date_to else date_to + "T23:59:59Z")
    if source:
        where.append(f"{prefix}source = ?")
        args.append(source)
    return where, args


# ---------------------------------------------------------------- lexicon check, lost CURRENT, repair


def _check_lexicon(gen_dir: Path, dim: int) -> list[str] | None:
    """The lexicon files present and lexicon.npy's header (not its data) agreeing with lexicon.json's words and the
    dimension. Returns the words, or None when lexicon.json does not parse: that is reported by the first English
    question (`Index.lexicon`), so that Chinese questions keep working."""
    for name in ("lexicon.json", "lexicon.npy", "lexicon.faiss"):
        if not (gen_dir / name).is_file():
            raise CorruptIndexError(str(gen_dir / name), "cross-lingual lexicon file is missing")
    rows = Rows(gen_dir / "lexicon.npy")
    rows.close()
    try:
        words = read_strings(gen_dir / "lexicon.json", "lexicon")
    except CorruptIndexError:
        return None
    if rows.shape != (len(words), dim):
        raise CorruptIndexError(str(gen_dir / "lexicon.npy"), f"shape {rows.shape} != ({len(words)}, {dim}): "
                                f"lexicon.json lists {len(words)} words of dimension {dim}")
    return words


def check_generation(root: str | os.PathLike, name: str) -> str | None:
    """None when generation `name` opens and passes every load check (its lexicon's too), else the reason."""
    gen_dir = Path(root) / name
    try:
        m = Manifest.read(gen_dir / "manifest.json")
        if m.schema_version != SCHEMA_VERSION:
            return f"{gen_dir}: index schema v{m.schema_version}, this version reads v{SCHEMA_VERSION}"
        idx = Index(root, gen_dir, m)
        try:
            idx.lexicon()
        finally:
            idx.close()
    except CorruptIndexError as e:
        return f"{e.path}: {e.reason}"
    except Exception as e:
        return f"{gen_dir}: {e.__class__.__name__}: {e}"
    return None


def newest_complete(root: str | os.PathLike, skip: str | None = None) -> str | None:
    """The newest generation under `root` (other than `skip`) that opens and passes the load checks, or None."""
    return next((g for g in reversed(generations(Path(root))) if g != skip and check_generation(root, g) is None), None)


def interrupted_first(root: Path) -> str | None:
    """The generation a first `rag index` renamed into place but was stopped before CURRENT named it, if that is
    the folder's state (and the generation is complete): the next writer finishes that publish."""
    first, gens = read_pointer(root / FIRST), generations(root)
    if first and gens == [first] and not os.path.lexists(root / CURRENT) and check_generation(root, first) is None:
        return first
    return None


def missing_current_error(root: Path) -> RagError:
    """What to say about a folder without CURRENT: not an index, a first index to finish, or (generations are
    there) an index whose CURRENT was lost, which nothing may write over until `rag repair` restores it."""
    gens = generations(root)
    if not gens:
        return RagError(f"{root}: not an index (no {CURRENT} file). Build one with `rag index PATH --index {root}`.")
    if interrupted_first(root):
        return RagError(f"{root}: not an index yet: the first `rag index` into it stopped before publishing; "
                        "run it again to finish")
    newest = newest_complete(root)
    if newest is None:
        return RagError(f"{root}: {CURRENT} is missing and none of its generations ({', '.join(gens)}) opens; nothing "
                        f"was changed. Rebuild the index with `rag index --rebuild PATH... --index {root}`.")
    return RagError(f"{root}: {CURRENT} is missing, but the folder holds generations; the newest complete one is "
                    f"{newest}. Nothing was changed: run `rag repair --index {root}` to make it current.")


def _with_repair_hint(root: Path, err: CorruptIndexError) -> CorruptIndexError:
    """`err` naming the newest complete generation and `rag repair` when one other than CURRENT's opens."""
    newest = newest_complete(root, skip=read_pointer(root / CURRENT))
    if newest is None:
        return err
    return CorruptIndexError(err.path, f"{err.reason}; the newest complete generation is {newest}: run "
                             f"`rag repair --index {root}` to make it current")
