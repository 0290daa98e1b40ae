"""The write side: one writer at a time (WriteLock) adds a segment, tombstones what it replaces or removes, publishes
a generation, then merges segments when the policy says so (rag.index.merge)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import CorruptIndexError, IndexMismatchError, RagError
from ..ingest import SPLITTER_VERSION
from ..lang import TOKEN_VERSION, tokens
from ..types import Article, Chunk
from .dedup import Stories, signature, to_blob
from .files import (
    CURRENT,
    FIRST,
    KEEP_GENERATIONS,
    SCHEMA_VERSION,
    SEGMENTS,
    atomic_write_text,
    check_folder,
    fsync_dir,
    generations,
    make_dir,
    now_iso,
    read_pointer,
    text_hash,
)
from .generation import (
    Index,
    Manifest,
    SegmentRef,
    View,
    interrupted_first,
    missing_current_error,
    newest_complete,
)
from .merge import finish_segment, merge_segments, new_segment_dir, plan_merge
from .segment import acquire, release
from .stories import stories_of


class Writer:
    """Stages changes to an index: new and replaced articles go to a new segment, removals become tombstones of
    the segments holding them; `commit()` (or `checkpoint()` in the middle of a long run) publishes them."""

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
        self.final: tuple[int, int, int] | None = None  # after commit(): articles, chunks, segments published
        self.notes: list[str] = []
        self.published: list[str] = []
        self._unpublished: list[str] = []  # segments this writer made that no published generation names yet
        if not os.path.lexists(self.root / CURRENT):
            self._without_current(rebuild)
        if not rebuild and os.path.lexists(self.root / CURRENT):
            self.base = Index.open(self.root, eager=False)
            try:  # a damaged lexicon is refused by name, not written over (English questions would keep failing)
                for v in self.base.views:
                    v.seg.lexicon()
            except BaseException:
                self.base.close()
                raise
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
        self._retokenize = False
        self._origin = self.base.generation if self.base is not None else None  # kept by _gc, as the one replaced
        # near-duplicate stories (rag.index.dedup): the base generation's (None: an index written before them,
        # grouped from scratch at the next publish), regrouped at each publish around the articles added and removed
        self.stories: Stories | None = self.base.stories if self.base is not None else Stories()
        self._added: set[str] = set()
        self._removed: set[str] = set()
        self._regroup_all = False
        self._partial, self._started = False, now_iso()
        # an earlier run stopped after publishing checkpoints: this one resumes it
        self.interrupted_run = bool(self.base is not None and self.base.manifest.extra.get("partial_run"))
        self.tmp = None
        try:
            if self.base is not None and self.base.legacy:
                self._upgrade()
            self._begin()
        except BaseException:
            self.abort()
            raise

    # ---- state

    def _begin(self) -> None:
        """Fresh staging over the current base generation: an empty new segment and the base's tombstones."""
        m = self.base.manifest if self.base is not None else None
        self.refs: list[SegmentRef] = list(m.segments) if m is not None else []
        self.views: list[View] = list(self.base.views) if self.base is not None else []
        self.dead: list[set[str]] = [set(r.dead) for r in self.refs]
        self.dead_sources: list[set[tuple[str, str]]] = [set(r.dead_sources) for r in self.refs]
        self.next_chunk = m.next_chunk_id if m is not None else 1
        self.next_sentence = m.next_sentence_id if m is not None else 1
        self.tmp, self.con = new_segment_dir(self.root)
        self._ids: list[int] = []
        self._vecs: dict[int, np.ndarray] = {}
        self._second: dict[int, np.ndarray] = {}
        self._svecs: dict[int, np.ndarray] = {}
        self._hash_vec: dict[str, np.ndarray] = {}
        self._hash_svec: dict[str, np.ndarray] = {}
        self._second_cache: dict[tuple[str, str], np.ndarray] = {}
        self._words: list[str] = []
        self._wvecs: list[np.ndarray] = []
        self._known_words = {w for v in self.views for w in (v.seg.words or ())}
        self.changed = False

    def _upgrade(self) -> None:
        """A generation of the format before segments, rewritten as one segment and published (once)."""
        legacy = self.base.views[0]
        name = merge_segments(self.root, [legacy], dim=self.dim, second_dim=self.second_dim,
                              faiss_kind=self.faiss_kind, word_tokens=self._tokens, doc_freq=self.base.doc_freq)
        self._unpublished.append(name)
        m = self.base.manifest
        ids = legacy.seg.ids
        sids = legacy.seg.sent_ids
        self.refs = [SegmentRef(name)]
        self.next_chunk = int(ids.max()) + 1 if len(ids) else 1
        self.next_sentence = int(sids.max()) + 1 if len(sids) else 1
        self._regroup_all = True  # the merge made its articles' signatures: every story is formed now
        gen = self._publish([SegmentRef(name)], m.articles, m.chunks)
        self._reopen()
        self.notes.append(f"index upgraded from format v{m.schema_version} to v{SCHEMA_VERSION} (segments) in {gen}")

    def _cleanup_temp(self) -> None:
        for pattern in (".tmp-gen-*", ".tmp-seg-*"):
            for p in self.root.glob(pattern):
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
        out = {r[0] for r in self.con.execute("SELECT id FROM articles")}
        for i, v in enumerate(self.views):
            out.update(r[0] for r in v.seg.sql("SELECT id FROM articles") if r[0] not in self.dead[i])
        return out

    def article_hash(self, article_id: str) -> str | None:
        r = self.con.execute("SELECT content_hash FROM articles WHERE id=?", (article_id,)).fetchone()
        if r:
            return r[0]
        for i, v in reversed(list(enumerate(self.views))):
            if article_id not in self.dead[i]:
                r = v.seg.sql("SELECT content_hash FROM articles WHERE id=?", (article_id,))
                if r:
                    return r[0][0]
        return None

    def paths(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for path, aid in self.con.execute("SELECT path, article_id FROM sources"):
            out.setdefault(path, set()).add(aid)
        for i, v in enumerate(self.views):
            for path, aid in v.seg.sql("SELECT path, article_id FROM sources"):
                if (path, aid) not in self.dead_sources[i]:
                    out.setdefault(path, set()).add(aid)
        return out

    def path_articles(self, path: str) -> set[str]:
        """The ids of the articles an indexed file holds (one file's part of `paths()`)."""
        out = {r[0] for r in self.con.execute("SELECT article_id FROM sources WHERE path=?", (path,))}
        for i, v in enumerate(self.views):
            out.update(r[0] for r in v.seg.sql("SELECT article_id FROM sources WHERE path=?", (path,))
                       if (path, r[0]) not in self.dead_sources[i])
        return out

    def _cached(self, table: str, hashes, sentences: bool) -> dict[str, np.ndarray]:
        """Vectors of stored rows with these text hashes, from any base segment (rows deleted by a tombstone too:
        their vectors are as good until a merge drops them)."""
        out: dict[str, np.ndarray] = {}
        uniq = list(set(hashes))
        for v in reversed(self.views):
            rows = v.seg.sent_vectors if sentences else v.seg.vectors
            own = v.seg.sent_ids if sentences else v.seg.ids
            for i in range(0, len(uniq), 500):
                part = [h for h in uniq[i : i + 500] if h not in out]
                if not part:
                    continue
                q = f"SELECT text_hash, id FROM {table} WHERE text_hash IN ({','.join('?' * len(part))})"
                for h, rid in v.seg.sql(q, part):
                    if h in out:
                        continue
                    p = int(np.searchsorted(own, rid))
                    if p < len(own) and own[p] == rid:
                        out[h] = np.asarray(rows[p][0], dtype=np.float32)
        return out

    def cached_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for chunks with these text hashes (so unchanged text is never re-embedded)."""
        out = {h: self._hash_vec[h] for h in hashes if h in self._hash_vec}
        rest = [h for h in hashes if h not in out]
        return {**self._cached("chunks", rest, False), **out} if rest else out

    def cached_sentence_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for sentences with these text hashes."""
        out = {h: self._hash_svec[h] for h in hashes if h in self._hash_svec}
        rest = [h for h in hashes if h not in out]
        return {**self._cached("sentences", rest, True), **out} if rest else out

    def cached_second_vectors(self, items: Sequence[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        """Second vectors already stored for chunks with this (title, text)."""
        if not items or not self.second_dim:
            return {}
        wanted = set(items)
        out = {k: self._second_cache[k] for k in wanted if k in self._second_cache}
        hashes = list({text_hash(t) for k, t in wanted if k not in out})
        for v in reversed(self.views):
            for i in range(0, len(hashes), 500):
                part = hashes[i : i + 500]
                q = (f"SELECT c.id, a.title, c.text FROM chunks c JOIN articles a ON a.id = c.article_id "
                     f"WHERE c.text_hash IN ({','.join('?' * len(part))})")
                for rid, title, text in v.seg.sql(q, part):
                    key = (title, text)
                    if key in out or key not in wanted:
                        continue
                    p = int(np.searchsorted(v.seg.ids, rid))
                    if p < len(v.seg.ids) and v.seg.ids[p] == rid:
                        out[key] = np.asarray(v.seg.second_vectors[p][0], dtype=np.float32)
        return out

    def lexicon_words(self) -> set[str]:
        """Words of the cross-lingual lexicon already embedded (base segments and this run)."""
        return self._known_words

    def put_lexicon(self, words: Sequence[str], vectors: np.ndarray) -> None:
        if len(words) != len(vectors):
            raise ValueError("one vector per word expected")
        self._words.extend(words)
        self._known_words.update(words)
        if len(words):
            self._wvecs.append(np.asarray(vectors, dtype=np.float16).reshape(len(words), self.dim))

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
            "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (article.id, article.title, article.url, article.published, article.source, article.text,
             json.dumps(list(article.headings), ensure_ascii=False), json.dumps(list(article.captions), ensure_ascii=False),
             article.content_hash, now_iso(), int(article.date_from_text)))
        sig = signature(article.text)
        if sig is not None:
            self.con.execute("INSERT INTO minhash VALUES (?,?)", (article.id, to_blob(sig)))
        self._added.add(article.id)
        vecs = np.asarray(vectors, dtype=np.float32).reshape(len(chunks), self.dim)
        for n, c in enumerate(chunks):
            cid, h = self.next_chunk, text_hash(c.text)
            self.next_chunk += 1
            self.con.execute("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)",
                             (cid, c.article_id, c.ordinal, c.start, c.end, c.heading, c.text, h,
                              self._chunk_tokens(article.title, c.ordinal, c.text)))
            self._vecs[cid] = vecs[n]
            self._hash_vec.setdefault(h, vecs[n])
            if self.second_dim:
                self._second[cid] = np.asarray(second_vectors[n], dtype=np.float16)
                self._second_cache.setdefault((article.title, c.text), np.asarray(second_vectors[n], dtype=np.float32))
        svecs = np.asarray(sentence_vectors, dtype=np.float32).reshape(len(sentences), self.dim) if len(sentences) else []
        for n, (s, e) in enumerate(sentences):
            sid, h = self.next_sentence, text_hash(article.text[s:e])
            self.next_sentence += 1
            self.con.execute("INSERT INTO sentences VALUES (?,?,?,?,?)", (sid, article.id, s, e, h))
            self._svecs[sid] = svecs[n]
            self._hash_svec.setdefault(h, svecs[n])
        if path is not None:
            self.add_source(path, article.id)
        self.changed = True

    def _source_live(self, path: str, article_id: str) -> bool:
        if self.con.execute("SELECT 1 FROM sources WHERE path=? AND article_id=?", (path, article_id)).fetchone():
            return True
        return any((path, article_id) not in self.dead_sources[i] and v.seg.sql(
            "SELECT 1 FROM sources WHERE path=? AND article_id=?", (path, article_id)) for i, v in enumerate(self.views))

    def add_source(self, path: str, article_id: str) -> None:
        if not self._source_live(path, article_id):
            self.con.execute("INSERT OR IGNORE INTO sources VALUES (?,?)", (path, article_id))
            self.changed = True

    def _drop_sources(self, path: str | None, article_id: str | None) -> list[str]:
        """Tombstone (or unstage) the live source rows matching `path` and/or `article_id`; their article ids."""
        cond = " AND ".join(c for c, v in (("path=?", path), ("article_id=?", article_id)) if v is not None)
        args = [v for v in (path, article_id) if v is not None]
        pairs = self.con.execute(f"SELECT path, article_id FROM sources WHERE {cond}", args).fetchall()
        self.con.execute(f"DELETE FROM sources WHERE {cond}", args)
        aids = [a for _, a in pairs]
        for i, v in enumerate(self.views):
            for p, a in v.seg.sql(f"SELECT path, article_id FROM sources WHERE {cond}", args):
                if (p, a) not in self.dead_sources[i]:
                    self.dead_sources[i].add((p, a))
                    aids.append(a)
        if aids or pairs:
            self.changed = True
        return list(dict.fromkeys(aids))

    def _held(self, article_id: str) -> bool:
        """Whether some live source row still names the article."""
        if self.con.execute("SELECT 1 FROM sources WHERE article_id=? LIMIT 1", (article_id,)).fetchone():
            return True
        return any((p, article_id) not in self.dead_sources[i] for i, v in enumerate(self.views)
                   for (p,) in v.seg.sql("SELECT path FROM sources WHERE article_id=?", (article_id,)))

    def drop_source(self, path: str, article_id: str | None = None) -> list[str]:
        """Forget that `path` holds an article; returns article ids no longer held by any path (and removes them)."""
        aids = self._drop_sources(path, article_id)
        if article_id is not None and article_id not in aids:
            aids.append(article_id)
        gone = []
        for aid in aids:
            if not self._held(aid):
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
        is embedded again); the number of chunks. The commit rewrites every segment with them."""
        self.tokens = TOKEN_VERSION
        self._retokenize = True
        self.changed = True
        rows = self.con.execute("SELECT c.id, c.ordinal, c.text, a.title FROM chunks c JOIN articles a "
                                "ON a.id = c.article_id").fetchall()
        self.con.executemany("UPDATE chunks SET tokens=? WHERE id=?",
                             [(self._chunk_tokens(title, ordinal, text), cid) for cid, ordinal, text, title in rows])
        return len(rows) + sum(v.live_chunks for v in self.views)

    def remove_article(self, article_id: str, keep_sources: bool = False) -> None:
        staged = [r[0] for r in self.con.execute("SELECT id FROM chunks WHERE article_id=?", (article_id,))]
        if staged or self.con.execute("SELECT 1 FROM articles WHERE id=?", (article_id,)).fetchone():
            self.changed = True
            for cid in staged:
                self._vecs.pop(cid, None)
                self._second.pop(cid, None)
            for (sid,) in self.con.execute("SELECT id FROM sentences WHERE article_id=?", (article_id,)).fetchall():
                self._svecs.pop(sid, None)
            self.con.execute("DELETE FROM chunks WHERE article_id=?", (article_id,))
            self.con.execute("DELETE FROM sentences WHERE article_id=?", (article_id,))
            self.con.execute("DELETE FROM articles WHERE id=?", (article_id,))
            self.con.execute("DELETE FROM minhash WHERE article_id=?", (article_id,))
        self._removed.add(article_id)
        for i, v in enumerate(self.views):
            if article_id not in self.dead[i] and v.seg.sql("SELECT 1 FROM articles WHERE id=?", (article_id,)):
                self.dead[i].add(article_id)
                self.changed = True
        if not keep_sources:
            self._drop_sources(None, article_id)
            self.changed = True

    # ---- publish

    def _staged_rows(self) -> bool:
        return any(self.con.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in ("articles", "sources")) \
            or bool(self._words)

    def _emptied(self, i: int) -> bool:
        """Whether every article and source row of base segment i is deleted now (it is then left out, unmerged)."""
        seg = self.views[i].seg
        if not self.dead[i] and not self.dead_sources[i]:
            return False
        arts = seg.sql("SELECT COUNT(*) FROM articles WHERE id NOT IN (SELECT value FROM json_each(?))",
                       (json.dumps(sorted(self.dead[i]), ensure_ascii=False),))[0][0]
        if arts:
            return False
        return all((p, a) in self.dead_sources[i] for p, a in seg.sql("SELECT path, article_id FROM sources"))

    def _seal(self) -> list[SegmentRef]:
        """The staged segment written (when it holds anything) and the refs of the generation to publish."""
        refs = [SegmentRef(r.name, tuple(sorted(self.dead[i])), tuple(sorted(self.dead_sources[i])))
                for i, r in enumerate(self.refs) if not self._emptied(i)]
        if self._staged_rows():
            ids = np.array(sorted(self._vecs), dtype=np.int64)
            sids = np.array(sorted(self._svecs), dtype=np.int64)
            words = self._words
            name = finish_segment(
                self.root, self.tmp, self.con, dim=self.dim, second_dim=self.second_dim, faiss_kind=self.faiss_kind,
                ids=ids, vectors=np.array([self._vecs[i] for i in ids], dtype=np.float32).reshape(len(ids), self.dim),
                second=(np.array([self._second[i] for i in ids], dtype=np.float16).reshape(len(ids), self.second_dim)
                        if self.second_dim else None),
                sent_ids=sids, sent_vectors=np.array([self._svecs[i] for i in sids], dtype=np.float16).reshape(
                    len(sids), self.dim),
                words=words, word_vectors=(np.concatenate(self._wvecs) if self._wvecs else
                                           np.zeros((0, self.dim), dtype=np.float16)))
            self._unpublished.append(name)
            refs.append(SegmentRef(name))
        else:
            self.con.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None
        return refs

    def commit(self) -> str | None:
        """Publish the staged changes, then merge segments when the policy says so. Returns the name of the last
        generation published, or None when nothing changed."""
        self._partial = False
        if not self.changed and self.base is not None:
            self.final = (self.base.manifest.articles, self.base.manifest.chunks, len(self.base.views))
            if self.base.manifest.extra.get("partial_run"):
                self._publish(list(self.base.manifest.segments), self.base.manifest.articles,
                              self.base.manifest.chunks)  # the run is complete: clear the mark
            gen = self.published[-1] if self.published else None
            self.abort()
            self._gc()
            return gen
        gen = self._publish_staged()
        gen = self._merge(all_=self._retokenize) or gen
        if self.base is not None:
            self.final = (self.base.manifest.articles, self.base.manifest.chunks, len(self.base.views))
            self.base.close()
            self.base = None
        self._gc()
        return gen

    def mark_run(self, partial: bool) -> None:
        """Checkpoints of this run mark their generations as a run in progress (a later run then says it resumed)."""
        self._partial = partial

    def checkpoint(self) -> str | None:
        """Publish what is staged so far (a long run: killed later, it keeps this) and go on staging."""
        if not self.changed:
            return None
        gen = self._publish_staged()
        gen = self._merge(all_=self._retokenize) or gen
        self._gc()
        self._begin()
        return gen

    def compact(self) -> str | None:
        """Publish what is staged, then merge every segment into one (dropping deleted rows). Returns the last
        generation published, or None when the index is one segment with nothing to drop already."""
        gen = self._publish_staged() if self.changed else None
        gen = self._merge(all_=True) or gen or (self.published[-1] if self.published else None)  # an upgrade
        if gen is None:
            self.abort()
            return None
        self.abort()
        self._gc()
        return gen

    def _publish_staged(self) -> str:
        refs = self._seal()
        n_articles, n_chunks = self._count(refs)
        gen = self._publish(refs, n_articles, n_chunks)
        self._reopen()
        return gen

    def _count(self, refs: list[SegmentRef]) -> tuple[int, int]:
        """Live articles and chunks of the segments `refs` name, tombstones applied."""
        arts = chunks = 0
        for ref in refs:
            seg = acquire(self.root / SEGMENTS / ref.name, self.dim, self.second_dim, eager=False)
            try:
                v = View(seg, ref)
                arts += v.live_articles
                chunks += v.live_chunks
            finally:
                release(seg)
        return arts, chunks

    def _reopen(self) -> None:
        # the new generation first, so that its unchanged segments are the cached ones, not opened again
        old, self.base = self.base, Index.open(self.root, eager=False)
        if old is not None:
            old.close()
        self.refs, self.views = list(self.base.manifest.segments), list(self.base.views)
        self.dead = [set(r.dead) for r in self.refs]
        self.dead_sources = [set(r.dead_sources) for r in self.refs]

    def _merge(self, all_: bool = False) -> str | None:
        """Merges the policy asks for (every segment with `all_`), each published as a generation."""
        gen = None
        while True:
            todo = list(range(len(self.views))) if all_ else plan_merge(self.views)
            if all_ and len(todo) <= 1 and not self._retokenize and not any(r.dead or r.dead_sources for r in self.refs):
                return gen
            if not todo:
                return gen
            views = [self.views[i] for i in todo]
            if not all(v.seg.has_minhash() for v in views):
                self._regroup_all = True  # the merge makes the signatures these segments lacked
            name = merge_segments(self.root, views, dim=self.dim, second_dim=self.second_dim, faiss_kind=self.faiss_kind,
                                  word_tokens=self._tokens, doc_freq=self._doc_freq(),
                                  chunk_tokens=self._chunk_tokens if self._retokenize else None)
            self._unpublished.append(name)
            new = SegmentRef(name)
            refs = [r for i, r in enumerate(self.refs) if i not in todo]
            refs.insert(min(todo), new)
            m = self.base.manifest
            gen = self._publish(refs, m.articles, m.chunks)
            self._reopen()
            self._retokenize = False
            all_ = False

    def _publish(self, refs: list[SegmentRef], n_articles: int, n_chunks: int) -> str:
        gen = self._next_generation()
        manifest = Manifest(
            schema_version=SCHEMA_VERSION, embedder=self.embedder_name, dim=self.dim, articles=n_articles,
            chunks=n_chunks, faiss_kind=self._kinds(refs), tokenizer=self.tokenizer, chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap, created=now_iso(), generation=gen, splitter=self.splitter,
            second_embedder=self.second_embedder, second_dim=self.second_dim, tokens=self.tokens,
            segments=tuple(refs), next_chunk_id=self.next_chunk, next_sentence_id=self.next_sentence,
            extra={"partial_run": {"started": self._started}} if self._partial else {})
        stories = self._next_stories(refs)
        tmp = make_dir(self.root, ".tmp-gen-")
        try:
            stories.write(tmp)  # first: the manifest's write fsyncs the folder
            atomic_write_text(tmp / "manifest.json", manifest.to_json())
            final = self.root / gen
            first = not os.path.lexists(self.root / CURRENT)
            if first:
                atomic_write_text(self.root / FIRST, gen + "\n")
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(self.root)
        try:
            atomic_write_text(self.root / CURRENT, gen + "\n")
        except BaseException:
            if read_pointer(self.root / CURRENT) != gen:  # never published (a full disk...): take it back
                shutil.rmtree(final, ignore_errors=True)
                if first:
                    (self.root / FIRST).unlink(missing_ok=True)
                self._drop_unpublished()
            raise
        if first:
            (self.root / FIRST).unlink(missing_ok=True)
        self.stories, self._regroup_all = stories, False
        self._added.clear()
        self._removed.clear()
        self.published.append(gen)
        self._unpublished.clear()
        return gen

    def _next_stories(self, refs: list[SegmentRef]) -> Stories:
        """The stories of the generation `refs` make (rag.index.regroup): the base's when nothing added or
        removed touches one; else formed again around the articles added and removed since the last publish (every
        story from scratch after a merge that made signatures, or over an index written before stories)."""
        old = None if self._regroup_all else self.stories
        if old is not None and not self._added and not any(old.of(a) for a in self._removed):
            return old
        return stories_of(self.root / SEGMENTS, refs, self.dim, self.second_dim, old, self._added | self._removed)

    def _drop_unpublished(self) -> None:
        """Remove the segments this writer made that no generation names (its publish failed or was abandoned)."""
        for name in self._unpublished:
            shutil.rmtree(self.root / SEGMENTS / name, ignore_errors=True)
        self._unpublished.clear()

    def _doc_freq(self):
        """The live document frequencies words are kept by in a merge: the base generation's; when its tokens are
        being remade (retokenize), those of the stored chunks' new tokens."""
        if not self._retokenize:
            return self.base.doc_freq
        from .lexical import Postings

        rows = [(o, t, title) for v in self.views for o, t, title in v.seg.sql(
            "SELECT c.ordinal, c.text, a.title FROM chunks c JOIN articles a ON a.id = c.article_id WHERE a.id NOT IN "
            "(SELECT value FROM json_each(?))", (v.dead_json,))]
        postings = Postings.build([self._chunk_tokens(title, o, t).split() for o, t, title in rows])
        return lambda terms: {t: len(c[0]) for t in terms if (c := postings.column(t)) is not None}

    def _kinds(self, refs: list[SegmentRef]) -> str:
        """The FAISS kinds of the segments (flat for small ones, IVF for large), "+"-joined when they differ."""
        kinds = []
        for r in refs:
            try:
                kinds.append(json.loads((self.root / SEGMENTS / r.name / "segment.json").read_text())["faiss_kind"])
            except (OSError, ValueError, KeyError):
                kinds.append("?")
        return "+".join(sorted(set(kinds))) or "flat"

    def abort(self) -> None:
        self._drop_unpublished()
        with contextlib.suppress(Exception):
            self.con.close()
        if self.base is not None:
            self.base.close()
            self.base = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def _next_generation(self) -> str:
        nums = [int(p.name[4:]) for p in self.root.glob("gen-*") if p.name[4:].isdigit()]
        return f"gen-{(max(nums) + 1) if nums else 1:06d}"

    def _gc(self) -> None:
        """Remove old generations (kept: the current one, the one this write started from, the newest others up to
        KEEP_GENERATIONS) and the segments no kept generation uses. A reader of an older generation keeps its files."""
        gens = generations(self.root)
        current = read_pointer(self.root / CURRENT)
        kept = [current] if current in gens else []
        if self._origin in gens and self._origin not in kept:  # the one this write replaced (a newer damaged one
            kept.append(self._origin)                           # left by `rag repair` goes first)
        for g in reversed(gens):
            if len(kept) >= KEEP_GENERATIONS:
                break
            if g not in kept:
                kept.append(g)
        for g in gens:
            if g not in kept:
                shutil.rmtree(self.root / g, ignore_errors=True)
        used: set[str] = set()
        for g in kept:
            try:
                used.update(r.name for r in Manifest.read(self.root / g / "manifest.json").segments)
            except CorruptIndexError:
                return  # a kept generation that does not read: remove nothing it might use
        seg_dir = self.root / SEGMENTS
        if seg_dir.is_dir():
            for p in seg_dir.iterdir():
                if p.name not in used and p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
