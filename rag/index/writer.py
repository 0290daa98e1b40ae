"""The write side: one writer at a time (WriteLock) builds the next generation from the live one and publishes it."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import CorruptIndexError, IndexLockedError, IndexMismatchError, RagError
from ..ingest import SPLITTER_VERSION
from ..lang import TOKEN_VERSION, tokens
from ..types import Article, Chunk
from .files import (
    CURRENT,
    FIRST,
    KEEP_GENERATIONS,
    LOCK,
    SCHEMA_VERSION,
    atomic_write_text,
    check_folder,
    disk_full_is_an_error,
    fsync_dir,
    fsync_tree,
    generations,
    make_dir,
    now_iso,
    printable,
    read_pointer,
    read_strings,
    text_hash,
)
from .generation import Index, Manifest, check_generation, interrupted_first, missing_current_error, newest_complete
from .lexical import Lexical
from .lexicon import MAX_WORDS, Lexicon
from .vectors import build_faiss

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
        check_folder(self.root)
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

    def __init__(self, root: str | os.PathLike, embedder_name: str | None, dim: int | None, tokenizer: str = "bigram",
                 chunk_size: int = 500, chunk_overlap: int = 100, rebuild: bool = False, faiss_kind: str = "auto",
                 second_embedder: str = "", second_dim: int = 0):
        """`second_embedder`/`second_dim`: the second dense retriever of a new index ("" for none); an existing
        index keeps its own, as it keeps its tokenizer and chunk size. `embedder_name`/`dim` None: the existing
        index's (an update that embeds nothing, such as removing articles)."""
        self.root = Path(root)
        check_folder(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._cleanup_temp()
        self.base: Index | None = None
        if not os.path.lexists(self.root / CURRENT):
            self._without_current(rebuild)
        if not rebuild and os.path.lexists(self.root / CURRENT):
            self.base = Index.open(self.root)
            m = self.base.manifest
            if embedder_name is None:
                embedder_name, dim = m.embedder, m.dim
            if m.embedder != embedder_name:
                self.base.close()
                raise IndexMismatchError(
                    f"{self.root}: index was built with embedder {m.embedder!r} (dim {m.dim}), not {embedder_name!r}. "
                    f"Use `--embedder {m.embedder}` or rebuild with `rag index --rebuild --embedder {embedder_name} PATH...`.")
            tokenizer, chunk_size, chunk_overlap = m.tokenizer, m.chunk_size, m.chunk_overlap
            second_embedder, second_dim = m.second_embedder, m.second_dim
        if embedder_name is None or dim is None:
            raise RagError(f"{self.root}: no index here to update. Build one with `rag index PATH --index {self.root}`.")
        if bool(second_embedder) != (second_dim > 0):
            raise ValueError(f"second_embedder {second_embedder!r} needs a positive second_dim, got {second_dim!r}")
        self.second_embedder, self.second_dim = second_embedder, second_dim
        # the sentence splitter the stored sentences follow: the indexer re-splits older ones and sets it when done
        self.splitter = self.base.manifest.splitter if self.base is not None else SPLITTER_VERSION
        # the token version the stored BM25 tokens follow: retokenize() brings an older index's up to date
        self.tokens = self.base.manifest.tokens if self.base is not None else TOKEN_VERSION
        self.embedder_name, self.dim, self.tokenizer = embedder_name, dim, tokenizer
        self.chunk_size, self.chunk_overlap, self.faiss_kind = chunk_size, chunk_overlap, faiss_kind
        self.tmp = make_dir(self.root, ".tmp-gen-")
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
            Lexicon.load(self.base.gen_dir, dim)  # a damaged lexicon.faiss is refused by name, not silently rebuilt
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
        if os.path.lexists(self.root / CURRENT):  # a first publish stopped after CURRENT was written
            (self.root / FIRST).unlink(missing_ok=True)

    def _without_current(self, rebuild: bool) -> None:
        """A folder without CURRENT: a new index (no generation here), a first publish to finish, or an index whose
        CURRENT was lost, which is refused (with --rebuild too while a generation opens): nothing is written over it."""
        if not generations(self.root):
            (self.root / FIRST).unlink(missing_ok=True)
            return
        first = interrupted_first(self.root)
        if first:
            atomic_write_text(self.root / CURRENT, first + "\n")
            (self.root / FIRST).unlink(missing_ok=True)
            return
        if rebuild and newest_complete(self.root) is None:
            return  # nothing here opens: a rebuild replaces it
        raise missing_current_error(self.root)

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
        fsync_tree(self.tmp)
        final = self.root / gen
        first = not os.path.lexists(self.root / CURRENT)
        if first:
            atomic_write_text(self.root / FIRST, gen + "\n")
        os.rename(self.tmp, final)
        fsync_dir(self.root)
        try:
            atomic_write_text(self.root / CURRENT, gen + "\n")
        except BaseException:
            if read_pointer(self.root / CURRENT) != gen:  # never published (a full disk...): take it back
                shutil.rmtree(final, ignore_errors=True)
                if first:
                    (self.root / FIRST).unlink(missing_ok=True)
            raise
        if first:
            (self.root / FIRST).unlink(missing_ok=True)
        if self.base is not None:
            self.base.close()
        self._gc(keep=gen)
        return gen

    def _save_lexicon(self, lexical: "Lexical") -> None:
        """Keep words whose every lexical token is still in the corpus (articles removed take their words along,
        unless each token of a word still occurs elsewhere), the most frequent first when over MAX_WORDS."""
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
        """Remove old generations: kept are `keep` (just published), the one it replaced, and the newest others up
        to KEEP_GENERATIONS (a damaged generation newer than the replaced one, after `rag repair`, goes first)."""
        gens = generations(self.root)
        kept = [keep] + ([self.base.generation] if self.base is not None and self.base.generation in gens else [])
        for g in reversed(gens):
            if len(kept) >= KEEP_GENERATIONS:
                break
            if g not in kept:
                kept.append(g)
        for g in gens:
            if g not in kept:
                shutil.rmtree(self.root / g, ignore_errors=True)


def repair_index(index_dir: str | os.PathLike, wait: float = 0.0) -> str:
    """Point CURRENT (atomically, under the write lock) at the newest generation that opens and passes the load
    checks, when CURRENT is missing or names one that does not. Returns what it found and did, one line each;
    nothing else is changed or removed."""
    root = Path(index_dir)
    if not root.exists():
        raise RagError(f"{printable(str(root))}: no such folder: nothing to repair")
    check_folder(root)
    with disk_full_is_an_error(root), WriteLock(root, timeout=wait):
        cur = root / CURRENT
        current, gens, lines = read_pointer(cur), generations(root), []
        if current is not None and current in gens:
            why = check_generation(root, current)
            if why is None:
                (root / FIRST).unlink(missing_ok=True)
                return f"{root}: {CURRENT} names {current}, which opens and passes the checks: nothing to repair"
            lines.append(f"{CURRENT} names {current}, which does not open: {why}")
        elif not os.path.lexists(cur):
            lines.append(f"{CURRENT} is missing")
        else:
            lines.append(f"{CURRENT} is a directory" if cur.is_dir() else
                         f"{CURRENT} names a missing generation ({current})" if current else f"{CURRENT} names no generation")
        chosen = None
        for g in reversed(gens):
            if g != current:
                why = check_generation(root, g)
                if why is None:
                    chosen = g
                    break
                lines.append(f"{g} does not open: {why}")
        if chosen is None:
            raise RagError(f"{root}: no generation here opens ({'; '.join(lines) or 'none found'}); nothing was "
                           f"changed. Rebuild the index with `rag index --rebuild PATH... --index {root}`.")
        if cur.is_dir() and not cur.is_symlink():
            try:
                cur.rmdir()
            except OSError:
                raise RagError(f"{cur} is a folder that is not empty: move it away, then run `rag repair` "
                               "again; nothing was changed") from None
        atomic_write_text(cur, chosen + "\n")
        (root / FIRST).unlink(missing_ok=True)
        m = Manifest.read(root / chosen / "manifest.json")
        lines.append(f"{CURRENT} now names {chosen} ({m.articles} articles, {m.chunks} chunks, written {m.created})")
        return "\n".join(f"{root}: {printable(line)}" for line in lines)
