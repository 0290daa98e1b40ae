"""The Milvus store's read side: one published version, read with the methods of rag.index.Index (rag.types.Store).

Searches run in Milvus: dense (FLAT, inner product) on each embedder's field, lexical as sparse BM25 weights with
query-side IDF (or Milvus's BM25 function, rag.store.milvus_base.LEXICAL_MODES) and the lexicon's nearest words;
the date/source filters and the version are expressions. Chunk and sentence rows never change under their id, so
the rows a question reads (passages, vectors for the candidates' scores, sentences) come by primary key in one
fetch each and stay cached for the process (RowCache); document frequencies come by key from the terms collection
(cached per snapshot); the English share is counted exactly (the local store samples)."""
from __future__ import annotations

import json
import threading
from typing import Iterable, Sequence

import numpy as np

from ..errors import CorruptIndexError, IndexMismatchError
from ..index.lexicon import Lexicon, Lexicons
from ..lang import tokens as lang_tokens
from ..types import Article, Passage
from .milvus_base import (
    FLAG,
    StoreInfo,
    analyzer_word,
    article_filters,
    client,
    count,
    df_at,
    ensure_loaded,
    field_names,
    idf,
    live,
    query_in,
    read_meta,
    scan,
    store_info,
    term_dim,
    term_id,
)

CACHE_CHUNKS = 20_000  # chunk rows (with their vectors) a process keeps per store: ~70 MB at 512 + 384 dims
CACHE_SENTENCES = 30_000  # sentence rows (with their vectors): ~60 MB at 512 dims
CHUNK_FIELDS = ["id", "article_id", "title", "text", "start", "end_", "url", "published", "source", "heading", "lang",
                "sent_first", "sent_count", "vec"]
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")  # SQLite's lower()


class RowCache:
    """Chunk and sentence rows of one store by id, shared by the snapshots of a process (a row's fields never change:
    an updated article gets new rows; only its deletion mark does, which the snapshots check for themselves)."""

    def __init__(self):
        self.chunks: dict[int, dict] = {}
        self.sentences: dict[int, tuple[int, int, np.ndarray]] = {}
        self.lock = threading.Lock()


_CACHES: dict[str, RowCache] = {}
_CACHES_LOCK = threading.Lock()


def row_cache(key: str) -> RowCache:
    with _CACHES_LOCK:
        return _CACHES.setdefault(key, RowCache())


class ChunkFilter:
    """The chunks passing date/source filters, as a Milvus expression the searches apply; len() counts them."""

    def __init__(self, expr: str, n: int):
        self.expr, self.n = expr, n

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"ChunkFilter({self.expr!r}, {self.n})"


class MilvusIndex:
    """A read-only, consistent view of one published version of a Milvus store."""

    def __init__(self, spec, info: StoreInfo):
        self.spec, self.info = spec, info
        self.uri, self.prefix, self.version = spec.target, spec.prefix, info.version
        self.manifest = info
        self.live = live(self.version)
        self._df: dict[str, int] = {}
        self._cache = row_cache(f"{self.uri}#{self.prefix}#{info.uid}")
        self._seen: set[int] = set()  # chunk ids this snapshot's searches returned: live at its version
        self._english: float | None = None
        self._lexicon: Lexicons | None = None
        self._lock = threading.RLock()
        self._flag = FLAG in field_names(self.uri, self._c("chunks"), info.uid)  # False: a store made before it

    @classmethod
    def open(cls, spec, embedder_name: str | None = None) -> "MilvusIndex":
        where = str(spec)
        info = store_info(where, read_meta(spec.target, spec.prefix))
        if embedder_name is not None and embedder_name != info.embedder:
            raise IndexMismatchError(
                f"{where}: index was built with embedder {info.embedder!r} (dim {info.dim}), not {embedder_name!r}. "
                f"Use `--embedder {info.embedder}` or rebuild with `rag index --rebuild --embedder {embedder_name} "
                f"--store {where} PATH...`.")
        ensure_loaded(spec.target, [spec.prefix + n for n in ("chunks", "sentences", "articles", "sources", "words",
                                                              "terms")])
        return cls(spec, info)

    def _c(self, name: str) -> str:
        return self.prefix + name

    @property
    def generation(self) -> str:
        return self.info.generation

    @property
    def legacy(self) -> bool:
        return False

    def close(self) -> None:
        pass  # the connection is the process's (rag.store.milvus_base.client)

    def _where(self, allowed: ChunkFilter | None) -> str:
        return self.live + (f" and {allowed.expr}" if allowed is not None else "")

    # ---- dense

    def _search(self, field: str, vector: np.ndarray, k: int, allowed: ChunkFilter | None) -> list[tuple[int, float]]:
        if k <= 0 or not self.info.chunks or (allowed is not None and not len(allowed)):
            return []
        q = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        hits = client(self.uri).search(self._c("chunks"), data=[q], anns_field=field, limit=min(k, 16_384),
                                       filter=self._where(allowed), output_fields=["id"],
                                       search_params={"metric_type": "IP"}, consistency_level="Strong")[0]
        found = sorted(((int(h["id"]), float(h["distance"])) for h in hits), key=lambda h: (-h[1], h[0]))
        self._saw(found)
        return found

    def _saw(self, hits: list[tuple[int, float]]) -> None:
        with self._lock:
            self._seen.update(c for c, _ in hits)

    def search_dense(self, vector: np.ndarray, k: int, allowed: ChunkFilter | None = None) -> list[tuple[int, float]]:
        return self._search("vec", vector, k, allowed)

    def search_second(self, vector: np.ndarray, k: int, allowed: ChunkFilter | None = None) -> list[tuple[int, float]]:
        """The second embedder's nearest chunks (empty for a store without one)."""
        return self._search("second", vector, k, allowed) if self.info.second_embedder else []

    def _chunk_rows(self, chunk_ids) -> dict[int, dict]:
        """The rows of these chunks (any version), from the process's cache or one fetch by key."""
        ids = list(dict.fromkeys(int(c) for c in chunk_ids))
        cache = self._cache
        with cache.lock:
            have = {c: cache.chunks[c] for c in ids if c in cache.chunks}
        missing = [c for c in ids if c not in have]
        if missing:
            fields = CHUNK_FIELDS + (["second"] if self.info.second_embedder else []) + ([FLAG] if self._flag else [])
            got = {}
            for r in query_in(self.uri, self._c("chunks"), "id", missing, fields):
                r["vec"] = np.asarray(r["vec"], dtype=np.float32)
                if "second" in r:
                    r["second"] = np.asarray(r["second"], dtype=np.float32)
                got[int(r["id"])] = r
            with cache.lock:
                if len(cache.chunks) + len(got) > CACHE_CHUNKS:
                    cache.chunks.clear()
                cache.chunks.update(got)
            have.update(got)
        return have

    def _scores(self, field: str, vector: np.ndarray, chunk_ids) -> np.ndarray:
        """Inner products with these chunks' stored vectors (float32, as the local store computes them)."""
        ids = [int(c) for c in np.asarray(chunk_ids, dtype=np.int64).reshape(-1)]
        out = np.zeros(len(ids), dtype=np.float32)
        rows = self._chunk_rows(ids)
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        for i, c in enumerate(ids):
            r = rows.get(c)
            if r is not None and field in r:
                out[i] = r[field] @ q
        return out

    def dense_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        """Cosine of a query vector with these chunks' vectors."""
        return self._scores("vec", vector, chunk_ids)

    def second_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        return self._scores("second", vector, chunk_ids)

    def allowed_ids(self, date_from: str | None = None, date_to: str | None = None,
                    source: str | None = None) -> ChunkFilter | None:
        """The chunks passing the metadata filters (a pushed-down expression and their count), or None when no
        filter is set."""
        where = article_filters(date_from, date_to, source)
        if not where:
            return None
        expr = " and ".join(where)
        return ChunkFilter(expr, count(self.uri, self._c("chunks"), f"{self.live} and {expr}"))

    # ---- lexical

    def tokens(self, text: str) -> list[str]:
        """`text`'s BM25 tokens as this store's were made (its tokenizer and token version)."""
        return lang_tokens(text, self.info.tokenizer, self.info.tokens)

    def doc_freq(self, terms: list[str]) -> dict[str, int]:
        """How many live chunks hold each lexical term (terms none holds are left out)."""
        want = {term_id(t): t for t in dict.fromkeys(terms) if t not in self._df}
        if want:
            got = dict.fromkeys(want.values(), 0)
            for r in query_in(self.uri, self._c("terms"), "id", list(want), ["id", "term", "hist"]):
                if want.get(int(r["id"])) == r["term"]:
                    got[r["term"]] = df_at(r["hist"], self.version)
            with self._lock:
                self._df.update(got)
        return {t: self._df[t] for t in dict.fromkeys(terms) if self._df.get(t)}

    def _idf(self, toks: Sequence[str]) -> dict[str, np.float32]:
        return {t: idf(df, self.info.chunks) for t, df in self.doc_freq(list(toks)).items()}

    def _lex_queries(self, weights: list[dict[str, float]]) -> list:
        """Query payloads for the lexical field, one per {term: weight}."""
        if self.info.lexical == "bm25":  # Milvus weighs the terms itself (its own IDF); a term asked twice repeats
            return [" ".join(analyzer_word(t) for t, w in q.items() for _ in range(max(1, round(w)))) for q in weights]
        out = []
        for q in weights:
            v: dict[int, float] = {}
            for t, w in q.items():
                v[term_dim(t)] = v.get(term_dim(t), 0.0) + w
            out.append(v)
        return out

    def _lex_search(self, weights: list[dict[str, float]], k: int, expr: str) -> list[list[tuple[int, float]]]:
        metric = "BM25" if self.info.lexical == "bm25" else "IP"
        res = client(self.uri).search(self._c("chunks"), data=self._lex_queries(weights), anns_field="lex",
                                      limit=min(k, 16_384), filter=expr, output_fields=["id"],
                                      search_params={"metric_type": metric}, consistency_level="Strong")
        # milvus-lite reports BM25 as a negated distance; a server as a positive score
        return [[(int(h["id"]), abs(float(h["distance"]))) for h in hits] for hits in res]

    def search_lexical(self, query: str | list[str], k: int,
                       allowed: ChunkFilter | None = None) -> list[tuple[int, float]]:
        if k <= 0 or not self.info.chunks or (allowed is not None and not len(allowed)):
            return []
        toks = self.tokens(query) if isinstance(query, str) else list(query)
        weights = self._idf(toks)
        if not weights:
            return []
        q: dict[str, float] = {}
        for t in toks:  # a term asked twice counts twice, as in rag.index.lexical.BM25.scores
            if t in weights:
                q[t] = q.get(t, 0.0) + (1.0 if self.info.lexical == "bm25" else float(weights[t]))
        hits = self._lex_search([q], k, self._where(allowed))[0]
        found = sorted(((c, s) for c, s in hits if s > 0), key=lambda h: (-h[1], h[0]))[:k]
        self._saw(found)
        return found

    def lexical_bound(self, query: str, absent: bool = False) -> float:
        """The most BM25 any chunk could score for `query`: each term's best chunk, found by one search per term."""
        if not self.info.chunks:
            return 0.0
        toks = self.tokens(query)
        weights = self._idf(toks)
        terms = list(weights)
        best: dict[str, float] = {}
        if terms:
            one = [{t: 1.0 if self.info.lexical == "bm25" else float(weights[t])} for t in terms]
            for t, hits in zip(terms, self._lex_search(one, 1, self.live)):
                best[t] = hits[0][1] if hits else 0.0
        tops = [best[t] for t in toks if t in best]
        missing = len(toks) - len(tops) if absent and tops else 0
        return float(sum(tops) + missing * (sum(tops) / len(tops) if tops else 0.0))

    def english_share(self) -> float:
        """The share of live chunks in English, counted (the local store samples 400)."""
        if self._english is None:
            n = self.info.chunks
            en = count(self.uri, self._c("chunks"), f'{self.live} and lang == "en"') if n else 0
            self._english = en / n if n else 0.0
        return self._english

    def lexicon(self) -> Lexicons:
        """The cross-lingual lexicon (read on first use: only English questions need it)."""
        with self._lock:
            if self._lexicon is None:
                self._lexicon = store_lexicon(self)
        return self._lexicon

    # ---- records

    def passages(self, chunk_ids: Iterable[int], scores: dict[int, float] | None = None) -> list[Passage]:
        chunk_ids = [int(c) for c in chunk_ids]
        if not chunk_ids:
            return []
        unknown = [c for c in dict.fromkeys(chunk_ids) if c not in self._seen]
        if unknown:  # ids no search of this snapshot returned: keep those live at its version
            self._saw([(int(r["id"]), 0.0) for r in query_in(self.uri, self._c("chunks"), "id", unknown, ["id"],
                                                             self.live)])
        rows = self._chunk_rows(c for c in chunk_ids if c in self._seen)
        scores = scores or {}
        out = []
        for cid in chunk_ids:
            r = rows.get(cid)
            if r is not None:
                out.append(Passage(cid, r["article_id"], r["title"], r["text"], int(r["start"]), int(r["end_"]),
                                   float(scores.get(cid, 0.0)), r["url"], r["published"], r["source"], r["heading"],
                                   date_from_text=bool(r.get(FLAG))))
        return out

    def chunk_langs(self, chunk_ids: Sequence[int]) -> list[str]:
        """The language of each chunk ("zh"/"en", stored when it was written: rag.lang.detect_lang of its first 200
        characters, as the local store computes it)."""
        rows = self._chunk_rows(chunk_ids)
        return [rows[int(c)]["lang"] if int(c) in rows else "zh" for c in chunk_ids]

    def sentences(self, passages: Sequence[Passage]) -> list[list[tuple[int, int, int]]]:
        """Per passage, the stored sentences overlapping it as (sentence id, start, end) in article offsets."""
        if not passages:
            return []
        chunks = self._chunk_rows(p.chunk_id for p in passages)
        ranges = {p.chunk_id: range(int(r["sent_first"]), int(r["sent_first"]) + int(r["sent_count"]))
                  for p in passages if (r := chunks.get(p.chunk_id)) is not None}
        sents = self._sentence_rows([sid for r in ranges.values() for sid in r])
        out = []
        for p in passages:
            spans = [(sid, sents[sid][0], sents[sid][1]) for sid in ranges.get(p.chunk_id, ()) if sid in sents]
            out.append(sorted((s for s in spans if s[1] < p.end and s[2] > p.start), key=lambda s: (s[1], s[0])))
        return out

    def _sentence_rows(self, sentence_ids) -> dict[int, tuple[int, int, np.ndarray]]:
        """(start, end, vector) of these sentences, from the process's cache or one fetch by key."""
        ids = list(dict.fromkeys(int(s) for s in sentence_ids))
        cache = self._cache
        with cache.lock:
            have = {s: cache.sentences[s] for s in ids if s in cache.sentences}
        missing = [s for s in ids if s not in have]
        if missing:
            got = {int(r["id"]): (int(r["start"]), int(r["end_"]), np.asarray(r["vec"], dtype=np.float32))
                   for r in query_in(self.uri, self._c("sentences"), "id", missing, ["id", "start", "end_", "vec"])}
            with cache.lock:
                if len(cache.sentences) + len(got) > CACHE_SENTENCES:
                    cache.sentences.clear()
                cache.sentences.update(got)
            have.update(got)
        return have

    def sentence_vectors(self, sentence_ids: Sequence[int]) -> np.ndarray:
        """float32 vectors of stored sentences, in the order asked."""
        ids = [int(s) for s in sentence_ids]
        out = np.zeros((len(ids), self.info.dim), dtype=np.float32)
        got = self._sentence_rows(ids)
        for i, sid in enumerate(ids):
            if sid not in got:
                raise CorruptIndexError(f"{self.spec} ({self._c('sentences')})", f"sentence {sid} has no row")
            out[i] = got[sid][2]
        return out

    def neighbours(self, article_id: str, ordinal: int) -> list[tuple[int, str, int, int]]:
        """Chunks ordinal-1..ordinal+1 of an article as (ordinal, text, start, end)."""
        rows = query_in(self.uri, self._c("chunks"), "article_id", [article_id], ["ordinal", "text", "start", "end_"],
                        f"{self.live} and ordinal >= {int(ordinal) - 1} and ordinal <= {int(ordinal) + 1}")
        return sorted((int(r["ordinal"]), r["text"], int(r["start"]), int(r["end_"])) for r in rows)

    def article(self, article_id: str) -> Article | None:
        rows = query_in(self.uri, self._c("articles"), "article_id", [article_id],
                        ["part", "title", "url", "published", "source", "body"] + ([FLAG] if self._flag else []),
                        self.live)
        if not rows:
            return None
        rows.sort(key=lambda r: int(r["part"]))
        head = rows[0]
        body = json.loads("".join(r["body"] for r in rows))
        heads = tuple((int(o), h) for o, h in body["headings"])
        return Article(head["title"], body["text"], head["url"], head["published"], head["source"], "", heads,
                       tuple(body["captions"]), bool(head.get(FLAG)))

    def _articles(self, expr: str, fields: list[str]) -> list[dict]:
        return scan(self.uri, self._c("articles"), f"part == 0 and {self.live}" + (f" and {expr}" if expr else ""),
                    fields, self.info.next_row_id)

    def article_ids(self) -> list[str]:
        return sorted(r["article_id"] for r in self._articles("", ["article_id"]))

    def list_articles(self, offset: int = 0, limit: int = 20, *, date_from: str | None = None,
                      date_to: str | None = None, source: str | None = None,
                      title: str | None = None) -> tuple[int, list[dict]]:
        """(how many articles pass the filters, a page of them newest first); sorted here, as Milvus queries do
        not order rows."""
        rows = self._articles(" and ".join(article_filters(date_from, date_to, source)),
                              ["article_id", "title", "url", "published", "source", "chars"])
        if title:
            needle = title.translate(_ASCII_LOWER)
            rows = [r for r in rows if needle in r["title"].translate(_ASCII_LOWER)]
        rows.sort(key=lambda r: r["article_id"])
        rows.sort(key=lambda r: r["published"], reverse=True)  # stable: ids ascending within a date
        page = rows[int(offset): int(offset) + int(limit)]
        return len(rows), [{"id": r["article_id"], "title": r["title"], "url": r["url"], "published": r["published"],
                            "source": r["source"], "chars": int(r["chars"])} for r in page]

    def stats(self) -> dict:
        i = self.info
        return {"articles": i.articles, "chunks": i.chunks, "embedder": i.embedder, "dim": i.dim,
                "faiss": f"milvus flat ({i.lexical} lexical)", "second_embedder": i.second_embedder,
                "generation": i.generation, "created": i.created, "last_indexed": i.last_indexed, "segments": 1,
                "store": str(self.spec)}


class LexiconParts:
    """A store's lexicon as the process has read it: one rag.index.lexicon.Lexicon per range of versions (lo, hi]
    read, as the local store has one per segment; a snapshot of version P searches the parts up to P."""

    def __init__(self):
        self.parts: list[tuple[int, int, Lexicon]] = []
        self.lock = threading.Lock()

    def upto(self, idx: "MilvusIndex") -> list[Lexicon]:
        version = idx.version
        with self.lock:
            hi = self.parts[-1][1] if self.parts else 0
            if hi < version:
                self.parts.append((hi, version, _read_lexicon(idx, hi, version)))
            out = [lex for lo, h, lex in self.parts if h <= version]
            straddle = [(lo, h) for lo, h, _ in self.parts if lo < version < h]
        if straddle:  # a snapshot older than what this process read since: its own part for the versions it lacks
            out.append(_read_lexicon(idx, straddle[0][0], version))
        return out


def _read_lexicon(idx: "MilvusIndex", lo: int, hi: int) -> Lexicon:
    rows = scan(idx.uri, idx._c("words"), f"v_from > {lo} and v_from <= {hi}", ["id", "word", "vec"],
                idx.info.next_row_id)
    rows.sort(key=lambda r: int(r["id"]))  # the order they were written in, as a segment keeps them
    vecs = np.asarray([r["vec"] for r in rows], dtype=np.float32).reshape(len(rows), idx.info.dim)
    return Lexicon.of([r["word"] for r in rows], vecs, idx.info.dim)


_LEXICONS: dict[str, LexiconParts] = {}


def lexicon_parts(key: str) -> LexiconParts:
    with _CACHES_LOCK:
        return _LEXICONS.setdefault(key, LexiconParts())


def store_lexicon(idx: "MilvusIndex") -> Lexicons:
    """The cross-lingual lexicon at a snapshot's version (rag.index.lexicon.Lexicons): the words and vectors are
    read once per process and searched here with the local store's FAISS index (a FLAT search in milvus-lite took
    ~180 ms per English question over 54k words; this, ~2 ms). Words of deleted articles are dropped as the local
    store drops them, checked only in a store that has deleted articles."""
    parts = lexicon_parts(f"{idx.uri}#{idx.prefix}#{idx.info.uid}").upto(idx)
    dead: set[str] = set()
    if idx.info.removed:
        toks = {w: set(idx.tokens(w)) for p in parts for w in p.words}
        df = idx.doc_freq(sorted(set().union(*toks.values()))) if toks else {}
        dead = {w for w, ts in toks.items() if not ts or not ts <= df.keys()}
    return Lexicons(parts, dead)
