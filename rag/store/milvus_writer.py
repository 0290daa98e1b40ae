"""The Milvus store's write side (rag.types.StoreWriter): one writer at a time stages adds, updates and deletes in
memory and publishes them as version P + 1 (rag.store.milvus_base): new rows first, deleted rows marked, term
statistics updated, every collection flushed, and the published meta row flipped last.

The writer's lock is a meta row with a token and an expiry, written and read back: advisory (Milvus has no
compare-and-swap), enough for `rag index` runs that do not start within the same fraction of a second. A writer
that finds rows of an unpublished version (a run killed mid-publish) removes them first, and deletes the rows no
reader of the last two versions can see."""
from __future__ import annotations

import json
import os
import secrets
import socket
import time
from typing import Sequence

import numpy as np

from ..errors import IndexLockedError, IndexMismatchError, RagError
from ..index.files import now_iso, text_hash
from ..ingest import SPLITTER_VERSION
from ..lang import TOKEN_VERSION, detect_lang, tokens as lang_tokens
from ..types import Article, Chunk
from .milvus_base import (
    ALIVE,
    COLLECTIONS,
    DUMMY,
    FLAG,
    FORMAT_ROW,
    HISTORY,
    INSERT_BATCH,
    LEXICAL_MODES,
    LOCK_ROW,
    PART_CHARS,
    PUBLISHED_ROW,
    TEXT,
    VERSIONED,
    WINDOW,
    StoreInfo,
    analyzer_word,
    client,
    create_collections,
    df_at,
    doc_weights,
    drop_collections,
    field_names,
    live,
    query_in,
    read_meta,
    scan,
    store_info,
    term_id,
    write_meta,
)

DEFAULT_LEXICAL = "sparse"  # BM25 weights as sparse vectors, IDF on the query side (docs/scale-out.md: measured)
LOCK_SECONDS = 600.0  # a writer's lock lapses this long after its last sign of life
NO_TERMS = {0x80000000: 1e-9}  # the sparse vector of a chunk without lexical tokens (no term hashes to it)


class MilvusWriter:
    """Stages changes to a Milvus store; `commit()` (or `checkpoint()` in a long run) publishes them."""

    def __init__(self, spec, embedder_name: str | None, dim: int | None, tokenizer: str = "bigram",
                 chunk_size: int = 500, chunk_overlap: int = 100, rebuild: bool = False, faiss_kind: str = "auto",
                 second_embedder: str = "", second_dim: int = 0, lexical: str | None = None, wait: float = 0.0):
        """As rag.index.Writer; `lexical`: how a new store scores BM25 ("sparse" or "bm25", LEXICAL_MODES)."""
        self.spec, self.uri, self.prefix, self.where = spec, spec.target, spec.prefix, str(spec)
        self.notes: list[str] = []
        self.published: list[str] = []
        self.final: tuple[int, int, int] | None = None
        self.interrupted_run = False
        self._token, self._locked, self._lock_at = secrets.token_hex(8), False, 0.0
        self._partial = False
        lexical = lexical or os.environ.get("RAG_MILVUS_LEXICAL") or DEFAULT_LEXICAL
        if lexical not in LEXICAL_MODES:
            raise ValueError(f"lexical must be one of {', '.join(LEXICAL_MODES)}, got {lexical!r}")
        meta = read_meta(self.uri, self.prefix)
        if FORMAT_ROW in meta and PUBLISHED_ROW in meta and not rebuild:
            info = store_info(self.where, meta)
            if embedder_name is None:
                embedder_name, dim = info.embedder, info.dim
            if info.embedder != embedder_name:
                raise IndexMismatchError(
                    f"{self.where}: index was built with embedder {info.embedder!r} (dim {info.dim}), not "
                    f"{embedder_name!r}. Use `--embedder {info.embedder}` or rebuild with `rag index --rebuild "
                    f"--embedder {embedder_name} --store {self.where} PATH...`.")
            self._acquire(wait)
            try:
                self.info = store_info(self.where, read_meta(self.uri, self.prefix))
                self._recover(self.info.version)
            except BaseException:
                self._release()
                raise
            self.interrupted_run = bool(self.info.partial_run)
        else:
            if embedder_name is None or dim is None:
                raise RagError(f"{self.where}: no index here to update. Build one with `rag index PATH --store "
                               f"{self.where}`.")
            if bool(second_embedder) != (second_dim > 0):
                raise ValueError(f"second_embedder {second_embedder!r} needs a positive second_dim, got {second_dim!r}")
            if meta:
                self._acquire(wait)  # rebuilding (or finishing a first build that never published): start over
            drop_collections(self.uri, self.prefix)
            create_collections(self.uri, self.prefix, dim, second_dim, lexical)
            self.info = StoreInfo(embedder=embedder_name, dim=dim, second_embedder=second_embedder,
                                  second_dim=second_dim, tokenizer=tokenizer, tokens=TOKEN_VERSION,
                                  chunk_size=chunk_size, chunk_overlap=chunk_overlap, lexical=lexical, avgdl=0.0,
                                  created=now_iso(), uid=secrets.token_hex(8), splitter=SPLITTER_VERSION)
            write_meta(self.uri, self.prefix, FORMAT_ROW, self.info.format_json())
            self._locked = False
            self._acquire(wait)
        i = self.info
        self.embedder_name, self.dim, self.tokenizer = i.embedder, i.dim, i.tokenizer
        self.chunk_size, self.chunk_overlap = i.chunk_size, i.chunk_overlap
        self.second_embedder, self.second_dim = i.second_embedder, i.second_dim
        self.splitter, self.tokens = i.splitter, i.tokens
        self._flag = FLAG in field_names(self.uri, self._c("chunks"), i.uid)
        if not self._flag:
            self.notes.append(f"this store was made before it kept whether an article's date was read from its text: "
                              f"such dates show as given ones; rebuild it with `rag index --rebuild --store "
                              f"{self.where} PATH...` to keep that")
        self._base_hash: dict[str, str] | None = None  # live article id -> content hash at the base version
        self._base_sources: set[tuple[str, str]] | None = None
        self._known_words: set[str] | None = None
        self._begin()

    def _c(self, name: str) -> str:
        return self.prefix + name

    # ---- lock

    def _acquire(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            held = read_meta(self.uri, self.prefix).get(LOCK_ROW)
            if held is None or held.get("expires", 0) < time.time() or held.get("token") == self._token:
                self._write_lock()
                time.sleep(0.3)  # a writer racing us wrote its row meanwhile: the later row wins, both read back
                held = read_meta(self.uri, self.prefix).get(LOCK_ROW)
                if held is not None and held.get("token") == self._token:
                    self._locked = True
                    return
            if time.monotonic() >= deadline:
                who, lapse = "", ""
                if held:
                    who = f" (pid {held.get('pid')} on {held.get('host')})"
                    lapse = (", or, if that writer was killed, until its lock lapses at "
                             + time.strftime("%H:%M:%S", time.localtime(float(held.get("expires", 0)))))
                raise IndexLockedError(f"{self.where}: another `rag index` is writing to this store{who}; wait for it "
                                       f"to finish (or pass --wait SECONDS){lapse}")
            time.sleep(0.2)

    def _write_lock(self) -> None:
        self._lock_at = time.time()
        write_meta(self.uri, self.prefix, LOCK_ROW, json.dumps({
            "token": self._token, "expires": self._lock_at + LOCK_SECONDS, "pid": os.getpid(),
            "host": socket.gethostname()}))

    def _keep_lock(self, check: bool = False) -> None:
        """Renew the lock (at most once a minute); with `check`, first make sure it is still ours."""
        if check:
            held = read_meta(self.uri, self.prefix).get(LOCK_ROW) or {}
            if held.get("token") != self._token:
                raise IndexLockedError(f"{self.where}: this writer's lock was taken over (it lapsed after "
                                       f"{LOCK_SECONDS:.0f} s without a sign of life); nothing more was published")
        if time.time() - self._lock_at > 60:
            self._write_lock()

    def _release(self) -> None:
        if self._locked:
            held = read_meta(self.uri, self.prefix).get(LOCK_ROW) or {}
            if held.get("token") == self._token:
                client(self.uri).delete(self._c("meta"), filter=f"id == {LOCK_ROW}")
            self._locked = False

    # ---- state

    def _recover(self, version: int) -> None:
        """Remove what an unpublished write left (rows added after `version`, deletion marks after it) and the rows
        no reader of the last two versions sees."""
        c = client(self.uri)
        for name in VERSIONED:
            coll = self._c(name)
            c.delete(coll, filter=f"v_from > {version}")
            marked = scan(self.uri, coll, f"v_to > {version} and v_to < {ALIVE}", ["*"], self._max_id(name))
            if marked:
                self._upsert(name, [{**r, "v_to": ALIVE} for r in marked])
            if version > 1:
                c.delete(coll, filter=f"v_to <= {version - 1}")
        while True:  # term rows a write after `version` touched: its (version, df) pairs dropped
            rows = c.query(self._c("terms"), filter=f"max_v > {version}", output_fields=["*"], limit=WINDOW)
            if not rows:
                break
            fixed = []
            for r in rows:
                hist = [h for h in json.loads(r["hist"]) if h[0] <= version]
                fixed.append({**r, "hist": json.dumps(hist), "max_v": max((h[0] for h in hist), default=0)})
            self._upsert("terms", fixed)

    def _max_id(self, name: str) -> int:
        i = self.info
        return {"chunks": i.next_chunk_id, "sentences": i.next_sentence_id}.get(name, i.next_row_id)

    def _begin(self) -> None:
        i = self.info
        self.next_chunk, self.next_sentence, self.next_row = i.next_chunk_id, i.next_sentence_id, i.next_row_id
        self._chunks: dict[int, dict] = {}
        self._toks: dict[int, list[str]] = {}
        self._sents: dict[int, dict] = {}
        self._arts: dict[str, list[dict]] = {}
        self._art_hash: dict[str, str] = {}
        self._art_rows: dict[str, tuple[list[int], list[int]]] = {}
        self._srcs: set[tuple[str, str]] = set()
        self._removed: set[str] = set()
        self._dropped: set[tuple[str, str]] = set()
        self._words: list[tuple[str, np.ndarray]] = []
        self._hash_vec: dict[str, np.ndarray] = {}
        self._hash_svec: dict[str, np.ndarray] = {}
        self._second_cache: dict[tuple[str, str], np.ndarray] = {}
        self.changed = False

    def _hashes(self) -> dict[str, str]:
        if self._base_hash is None:
            rows = scan(self.uri, self._c("articles"), f"part == 0 and {live(self.info.version)}",
                        ["article_id", "content_hash"], self.info.next_row_id)
            self._base_hash = {r["article_id"]: r["content_hash"] for r in rows}
        return self._base_hash

    def _sources(self) -> set[tuple[str, str]]:
        if self._base_sources is None:
            rows = scan(self.uri, self._c("sources"), live(self.info.version), ["path", "article_id"],
                        self.info.next_row_id)
            self._base_sources = {(r["path"], r["article_id"]) for r in rows}
        return self._base_sources

    # ---- queries used by the indexer

    def article_ids(self) -> set[str]:
        return (set(self._hashes()) - self._removed) | set(self._arts)

    def article_hash(self, article_id: str) -> str | None:
        if article_id in self._art_hash:
            return self._art_hash[article_id]
        return None if article_id in self._removed else self._hashes().get(article_id)

    def paths(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for path, aid in (self._sources() - self._dropped) | self._srcs:
            out.setdefault(path, set()).add(aid)
        return out

    def path_articles(self, path: str) -> set[str]:
        return {a for p, a in (self._sources() - self._dropped) | self._srcs if p == path}

    def _cached(self, name: str, hashes, field: str) -> dict[str, np.ndarray]:
        """Vectors of stored rows with these text hashes (rows of deleted articles too: as good until removed)."""
        out: dict[str, np.ndarray] = {}
        for r in query_in(self.uri, self._c(name), "text_hash", list(set(hashes)), ["text_hash", field]):
            out.setdefault(r["text_hash"], np.asarray(r[field], dtype=np.float32))
        return out

    def cached_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for chunks with these text hashes (so unchanged text is never re-embedded)."""
        out = {h: self._hash_vec[h] for h in hashes if h in self._hash_vec}
        rest = [h for h in hashes if h not in out]
        return {**self._cached("chunks", rest, "vec"), **out} if rest else out

    def cached_sentence_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out = {h: self._hash_svec[h] for h in hashes if h in self._hash_svec}
        rest = [h for h in hashes if h not in out]
        return {**self._cached("sentences", rest, "vec"), **out} if rest else out

    def cached_second_vectors(self, items: Sequence[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        """Second vectors already stored for chunks with this (title, text)."""
        if not items or not self.second_dim:
            return {}
        wanted = set(items)
        out = {k: self._second_cache[k] for k in wanted if k in self._second_cache}
        hashes = list({text_hash(t) for k, t in wanted if k not in out})
        for r in query_in(self.uri, self._c("chunks"), "text_hash", hashes, ["title", "text", "second"]):
            key = (r["title"], r["text"])
            if key in wanted and key not in out:
                out[key] = np.asarray(r["second"], dtype=np.float32)
        return out

    def lexicon_words(self) -> set[str]:
        """Words of the cross-lingual lexicon already embedded (stored and this run's)."""
        if self._known_words is None:
            rows = scan(self.uri, self._c("words"), "", ["word"], self.info.next_row_id)
            self._known_words = {r["word"] for r in rows}
        return self._known_words

    def put_lexicon(self, words: Sequence[str], vectors: np.ndarray) -> None:
        if len(words) != len(vectors):
            raise ValueError("one vector per word expected")
        known = self.lexicon_words()
        vecs = np.asarray(vectors, dtype=np.float16).astype(np.float32).reshape(len(words), self.dim)
        for w, v in zip(words, vecs):
            if w not in known:
                known.add(w)
                self._words.append((w, v))
                self.changed = True

    # ---- mutations

    def put_article(self, article: Article, chunks: Sequence[Chunk], vectors: np.ndarray, path: str | None,
                    sentences: Sequence[tuple[int, int]] = (), sentence_vectors: np.ndarray | None = None,
                    second_vectors: np.ndarray | None = None) -> None:
        """Insert or replace an article with its chunks and sentences (spans in its text) and their vectors."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk expected")
        if self.second_dim and (second_vectors is None or len(second_vectors) != len(chunks)):
            raise ValueError("one second vector per chunk expected")
        if len(sentences) != (0 if sentence_vectors is None else len(sentence_vectors)):
            raise ValueError("one vector per sentence expected")
        self._keep_lock()
        aid = article.id
        for what, value in (("title", article.title), ("url", article.url), ("source", article.source)):
            if len(value.encode("utf-8", "surrogatepass")) > TEXT:
                raise RagError(f"{article.path or aid}: the article's {what} is over {TEXT} bytes, more than a "
                               f"Milvus text field holds; nothing of it was stored")
        self.remove_article(aid, keep_sources=True)
        body = json.dumps({"text": article.text, "headings": [list(h) for h in article.headings],
                           "captions": list(article.captions)}, ensure_ascii=False)
        pieces = [body[n : n + PART_CHARS] for n in range(0, len(body), PART_CHARS)] or [""]
        stamp = now_iso()
        flag = {FLAG: article.date_from_text} if self._flag else {}
        self._arts[aid] = [{
            "article_id": aid, "part": n, "parts": len(pieces), "title": article.title if n == 0 else "",
            "url": article.url if n == 0 else "", "published": article.published if n == 0 else "",
            "source": article.source if n == 0 else "", "content_hash": article.content_hash if n == 0 else "",
            "indexed_at": stamp if n == 0 else "", "chars": len(article.text) if n == 0 else 0, "body": piece,
            **flag} for n, piece in enumerate(pieces)]
        self._art_hash[aid] = article.content_hash
        vecs = np.asarray(vectors, dtype=np.float32).reshape(len(chunks), self.dim)
        seconds = (np.asarray(second_vectors, dtype=np.float16).astype(np.float32).reshape(len(chunks), self.second_dim)
                   if self.second_dim else None)
        cids, sids = [], []
        sent_first = self.next_sentence  # the sentences below take the ids from here on
        for n, ch in enumerate(chunks):
            if max(len(t.encode("utf-8", "surrogatepass")) for t in (ch.heading, ch.text)) > TEXT:
                raise RagError(f"{article.path or aid}: a chunk or heading is over {TEXT} bytes, more than a Milvus "
                               "text field holds (use a smaller --chunk-size)")
            cid, h = self.next_chunk, text_hash(ch.text)
            self.next_chunk += 1
            toks = self._chunk_tokens(article.title, ch.ordinal, ch.text)
            row = {"id": cid, "article_id": aid, "ordinal": ch.ordinal, "start": ch.start, "end_": ch.end,
                   "heading": ch.heading, "text": ch.text, "text_hash": h, "title": article.title, "url": article.url,
                   "published": article.published, "source": article.source, "lang": detect_lang(ch.text[:200]),
                   "n_tokens": len(toks), "sent_first": sent_first, "sent_count": len(sentences), "vec": vecs[n],
                   **flag}
            if seconds is not None:
                row["second"] = seconds[n]
                self._second_cache.setdefault((article.title, ch.text), seconds[n])
            self._chunks[cid], self._toks[cid] = row, toks
            self._hash_vec.setdefault(h, vecs[n])
            cids.append(cid)
        svecs = (np.asarray(sentence_vectors, dtype=np.float16).astype(np.float32).reshape(len(sentences), self.dim)
                 if len(sentences) else [])
        for n, (s, e) in enumerate(sentences):
            sid, h = self.next_sentence, text_hash(article.text[s:e])
            self.next_sentence += 1
            self._sents[sid] = {"id": sid, "article_id": aid, "start": s, "end_": e, "text_hash": h, "vec": svecs[n]}
            self._hash_svec.setdefault(h, svecs[n])
            sids.append(sid)
        self._art_rows[aid] = (cids, sids)
        if path is not None:
            self.add_source(path, aid)
        self.changed = True

    def _chunk_tokens(self, title: str, ordinal: int, text: str) -> list[str]:
        """A chunk's lexical tokens: the first chunk of an article carries its title too (rag.index.Writer)."""
        return lang_tokens(title + "\n" + text if ordinal == 0 else text, self.tokenizer, self.tokens)

    def add_source(self, path: str, article_id: str) -> None:
        pair = (path, article_id)
        if pair not in self._srcs and (pair not in self._sources() or pair in self._dropped):
            self._srcs.add(pair)
            self.changed = True

    def _drop_sources(self, path: str | None, article_id: str | None) -> list[str]:
        def match(p: str, a: str) -> bool:
            return (path is None or p == path) and (article_id is None or a == article_id)

        staged = [pair for pair in self._srcs if match(*pair)]
        self._srcs.difference_update(staged)
        aids = [a for _, a in staged]
        for pair in self._sources():
            if pair not in self._dropped and match(*pair):
                self._dropped.add(pair)
                aids.append(pair[1])
        if aids:
            self.changed = True
        return list(dict.fromkeys(aids))

    def _held(self, article_id: str) -> bool:
        return any(a == article_id for _, a in self._srcs) or any(
            a == article_id and (p, a) not in self._dropped for p, a in self._sources())

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

    def remove_article(self, article_id: str, keep_sources: bool = False) -> None:
        if article_id in self._arts:
            cids, sids = self._art_rows.pop(article_id)
            for cid in cids:
                self._chunks.pop(cid, None)
                self._toks.pop(cid, None)
            for sid in sids:
                self._sents.pop(sid, None)
            del self._arts[article_id]
            del self._art_hash[article_id]
            self.changed = True
        if article_id in self._hashes() and article_id not in self._removed:
            self._removed.add(article_id)
            self.changed = True
        if not keep_sources:
            self._drop_sources(None, article_id)
            self.changed = True

    def retokenize(self) -> int:
        raise RagError(f"{self.where}: the store's lexical tokens are version {self.tokens}, this version makes "
                       f"version {TOKEN_VERSION}: rebuild it with `rag index --rebuild --store {self.where} PATH...`")

    def mark_run(self, partial: bool) -> None:
        self._partial = partial

    # ---- publish

    def _upsert(self, name: str, rows: list[dict]) -> None:
        if self.info.lexical == "bm25" and name == "chunks":
            rows = [{k: v for k, v in r.items() if k != "lex"} for r in rows]  # the BM25 function's output
        for n in range(0, len(rows), INSERT_BATCH):
            client(self.uri).upsert(self._c(name), rows[n : n + INSERT_BATCH])

    def _insert(self, name: str, rows: list[dict]) -> None:
        for n in range(0, len(rows), INSERT_BATCH):
            client(self.uri).insert(self._c(name), rows[n : n + INSERT_BATCH])

    def _publish(self) -> str:
        """Write the staged changes as version P + 1 and publish it (the meta row last)."""
        self._keep_lock(check=True)
        base = self.info
        version, old = base.version + 1, live(base.version)
        removed = sorted(self._removed)
        dead_chunks = query_in(self.uri, self._c("chunks"), "article_id", removed, ["*"], old) if removed else []
        dead_sents = query_in(self.uri, self._c("sentences"), "article_id", removed, ["*"], old) if removed else []
        dead_arts = query_in(self.uri, self._c("articles"), "article_id", removed, ["*"], old) if removed else []
        dropped = sorted(self._dropped)
        dead_srcs = [r for r in query_in(self.uri, self._c("sources"), "article_id", [a for _, a in dropped], ["*"],
                                         old) if (r["path"], r["article_id"]) in self._dropped] if dropped else []
        delta: dict[str, int] = {}
        length = base.length
        for r in dead_chunks:
            toks = self._chunk_tokens(r["title"], int(r["ordinal"]), r["text"])
            length -= int(r["n_tokens"])
            for t in set(toks):
                delta[t] = delta.get(t, 0) - 1
        for toks in self._toks.values():
            length += len(toks)
            for t in set(toks):
                delta[t] = delta.get(t, 0) + 1
        n_chunks = base.chunks - len(dead_chunks) + len(self._chunks)
        n_live_removed = sum(1 for a in removed if a in self._hashes())
        n_articles = base.articles - n_live_removed + len(self._arts)
        info = base
        if not base.avgdl and n_chunks:  # the first chunks fix the length BM25 weights are normalised by
            info = _replace(base, avgdl=length / n_chunks)
            write_meta(self.uri, self.prefix, FORMAT_ROW, info.format_json())
        stamp = {"v_from": version, "v_to": ALIVE}
        chunk_rows = []
        for cid, row in self._chunks.items():
            toks = self._toks[cid]
            lex = ({"toks": " ".join(analyzer_word(t) for t in toks)} if info.lexical == "bm25"
                   else {"lex": doc_weights(toks, info.avgdl) or NO_TERMS})
            chunk_rows.append({**row, **lex, **stamp, "vec": _floats(row["vec"]),
                               **({"second": _floats(row["second"])} if "second" in row else {})})
        self._insert("chunks", chunk_rows)
        self._insert("sentences", [{**r, **stamp, "vec": _floats(r["vec"])} for r in self._sents.values()])
        rows = []
        for parts in self._arts.values():
            for r in parts:
                rows.append({**r, **stamp, "id": self.next_row, DUMMY: [0.0, 0.0]})
                self.next_row += 1
        self._insert("articles", rows)
        rows = []
        for path, aid in sorted(self._srcs):
            rows.append({"id": self.next_row, "path": path, "article_id": aid, **stamp, DUMMY: [0.0, 0.0]})
            self.next_row += 1
        self._insert("sources", rows)
        rows = []
        for word, vec in self._words:
            rows.append({"id": self.next_row, "word": word, **stamp, "vec": _floats(vec)})
            self.next_row += 1
        self._insert("words", rows)
        for name, dead in (("chunks", dead_chunks), ("sentences", dead_sents), ("articles", dead_arts),
                           ("sources", dead_srcs)):
            self._upsert(name, [{**r, "v_to": version} for r in dead])
        self._update_terms(delta, version)
        for name in (*COLLECTIONS, "meta"):
            try:  # milvus-lite searches a flushed segment through cached indexes, its memtable by a full scan
                client(self.uri).flush(self._c(name))
            except Exception:  # noqa: BLE001 - a server may rate-limit flushes; its reads see the rows regardless
                pass
        self._flip(_replace(info, version=version, articles=n_articles, chunks=n_chunks, length=length,
                            splitter=self.splitter, next_chunk_id=self.next_chunk,
                            next_sentence_id=self.next_sentence, next_row_id=self.next_row, last_indexed=now_iso(),
                            removed=base.removed + n_live_removed,
                            partial_run={"started": base.created} if self._partial else None))
        if self._base_hash is not None:
            for aid in removed:
                self._base_hash.pop(aid, None)
            self._base_hash.update(self._art_hash)
        if self._base_sources is not None:
            self._base_sources = (self._base_sources - self._dropped) | self._srcs
        self.published.append(self.info.generation)
        return self.info.generation

    def _flip(self, info: StoreInfo) -> None:
        """Publish: the one row readers poll names the new version (everything it shows is written already)."""
        self._keep_lock(check=True)
        write_meta(self.uri, self.prefix, PUBLISHED_ROW, info.published_json())
        self.info = info

    def _update_terms(self, delta: dict[str, int], version: int) -> None:
        """Each changed term's document frequency at `version` added to its row's history (the last HISTORY kept)."""
        ids = {term_id(t): t for t, d in delta.items() if d}
        if not ids:
            return
        current = {int(r["id"]): r for r in query_in(self.uri, self._c("terms"), "id", list(ids), ["id", "hist"])}
        rows = []
        for key, t in ids.items():
            hist = json.loads(current[key]["hist"]) if key in current else []
            df = df_at(json.dumps(hist), version - 1) + delta[t]
            hist = sorted([h for h in hist if h[0] < version] + [[version, max(df, 0)]])[-HISTORY:]
            rows.append({"id": key, "term": t, "hist": json.dumps(hist), "max_v": version, DUMMY: [0.0, 0.0]})
        self._upsert("terms", rows)

    def checkpoint(self) -> str | None:
        """Publish what is staged so far (a long run: killed later, it keeps this) and go on staging."""
        if not self.changed:
            return None
        gen = self._publish()
        self._begin()
        return gen

    def commit(self) -> str | None:
        """Publish the staged changes and release the lock. Returns the version published (None: nothing changed)."""
        self._partial = False
        try:
            if self.changed:
                self._publish()
            elif self.info.partial_run:  # the run is complete: clear the mark
                self.info = _replace(self.info, partial_run=None)
                write_meta(self.uri, self.prefix, PUBLISHED_ROW, self.info.published_json())
            self.final = (self.info.articles, self.info.chunks, 1)
        finally:
            self._release()
        return self.published[-1] if self.published else None

    def abort(self) -> None:
        """Drop what is staged; rows a failed publish left are removed (else the next writer removes them)."""
        if self._locked:
            try:
                self._recover(self.info.version)
            except Exception:  # noqa: BLE001 - the next writer recovers; the lock must still go
                pass
        self._release()
        self._begin()


def _replace(info: StoreInfo, **kw) -> StoreInfo:
    import dataclasses

    return dataclasses.replace(info, **kw)


def _floats(v) -> list[float]:
    return np.asarray(v, dtype=np.float32).reshape(-1).tolist()
