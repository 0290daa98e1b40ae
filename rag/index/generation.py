"""One published generation, read-only: a manifest listing the segments it uses and the rows it deletes from each.

Layout: `DIR/CURRENT` names the live generation `DIR/gen-NNNNNN/`, whose `manifest.json` lists segments under
`DIR/segments/` (rag.index.segment: each a folder of SQLite rows, vectors, FAISS, BM25 postings and lexicon words,
written once) with, for each, the articles and file sources it no longer holds (tombstones). A write adds a segment
and a generation; a merge (rag.index.merge) replaces several segments by one. Publishing swaps `CURRENT` with
`os.replace`, so a reader (or a crash) only ever sees a complete generation, old or new. A generation of the format
before segments (v2: everything in the generation folder) opens as one segment; the next write upgrades it."""
from __future__ import annotations

import dataclasses
import heapq
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import CorruptIndexError, IndexMismatchError, RagError
from ..lang import detect_lang, tokens
from ..types import Article, Passage, StoryCopy
from .dedup import STORIES_FILE, Stories
from .files import CURRENT, FIRST, SCHEMA_VERSION, SEGMENTS, check_folder, generations, read_pointer
from .lexical import BM25
from .lexicon import Lexicons
from .segment import Segment, acquire, release
from .vectors import search_index

LEGACY_VERSION = 2  # the format before segments: read as one segment, upgraded by the next write
SEGMENT_NAME = re.compile(r"seg-\d{1,12}")


@dataclass(frozen=True)
class SegmentRef:
    """A segment a generation uses, and the rows it deletes from it: articles (their chunks and sentences too)
    and (file path, article id) source rows."""

    name: str
    dead: tuple[str, ...] = ()
    dead_sources: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict:
        return {"name": self.name, "dead": list(self.dead), "dead_sources": [list(p) for p in self.dead_sources]}


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
    segments: tuple[SegmentRef, ...] = ()  # v3; a v2 generation is its own single segment
    next_chunk_id: int = 1
    next_sentence_id: int = 1
    extra: dict = field(default_factory=dict, compare=False)  # fields a later version may add, kept on rewrite

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not an object")
            known = cls.__dataclass_fields__
            kw = {k: data[k] for k, f in known.items() if k != "extra" and (k in data or (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING))}
            if "segments" in kw:
                kw["segments"] = tuple(SegmentRef(str(s["name"]), tuple(str(a) for a in s.get("dead", ())),
                                                  tuple((str(p), str(a)) for p, a in s.get("dead_sources", ())))
                                       for s in kw["segments"])
                for s in kw["segments"]:
                    if not SEGMENT_NAME.fullmatch(s.name):
                        raise ValueError(f"segment name {s.name[:40]!r}")
            m = cls(**kw, extra={k: v for k, v in data.items() if k not in known})
            for name in ("splitter", "tokens", "next_chunk_id", "next_sentence_id"):
                v = getattr(m, name)
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise ValueError(f"{name} must be a positive integer, got {v!r}")
            if not isinstance(m.second_embedder, str) or not isinstance(m.second_dim, int) or (
                    bool(m.second_embedder) != (m.second_dim > 0)):
                raise ValueError(f"second_embedder {m.second_embedder!r} and second_dim {m.second_dim!r} disagree")
            return m
        except FileNotFoundError:
            raise CorruptIndexError(str(path), "manifest is missing") from None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CorruptIndexError(str(path), f"manifest is unreadable ({e.__class__.__name__}: {e})") from None

    def to_json(self) -> str:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extra"}
        data["segments"] = [s.to_json() for s in self.segments]
        return json.dumps({**self.extra, **data}, indent=1, ensure_ascii=False)


class View:
    """One segment as a generation sees it: the segment minus the generation's tombstones for it."""

    def __init__(self, seg: Segment, ref: SegmentRef):
        self.seg, self.ref = seg, ref
        self.dead_articles = frozenset(ref.dead)
        self.dead_sources = frozenset(ref.dead_sources)
        self.dead_rows: np.ndarray | None = None  # a mask over the segment's chunk rows
        self.dead_sentences = np.zeros(0, dtype=np.int64)
        self.dead_chunk_ids = np.zeros(0, dtype=np.int64)
        if ref.dead:
            arg = json.dumps(list(ref.dead), ensure_ascii=False)
            cids = np.array(sorted(r[0] for r in seg.sql(
                "SELECT id FROM chunks WHERE article_id IN (SELECT value FROM json_each(?))", (arg,))), dtype=np.int64)
            self.dead_chunk_ids = cids
            if len(cids):
                self.dead_rows = np.zeros(len(seg.ids), dtype=bool)
                self.dead_rows[np.searchsorted(seg.ids, cids)] = True
            self.dead_sentences = np.array(sorted(r[0] for r in seg.sql(
                "SELECT id FROM sentences WHERE article_id IN (SELECT value FROM json_each(?))", (arg,))), dtype=np.int64)
        self.n_dead_articles = seg.sql("SELECT COUNT(*) FROM articles WHERE id IN (SELECT value FROM json_each(?))",
                                       (json.dumps(list(ref.dead), ensure_ascii=False),))[0][0] if ref.dead else 0
        self.live_chunks = len(seg.ids) - len(self.dead_chunk_ids)
        self.live_articles = seg.n_articles - self.n_dead_articles

    @property
    def dead_json(self) -> str:
        return json.dumps(sorted(self.dead_articles), ensure_ascii=False)

    def live_ids(self) -> np.ndarray:
        return self.seg.ids if self.dead_rows is None else self.seg.ids[~self.dead_rows]

    def holds(self, article_id: str) -> bool:
        return article_id not in self.dead_articles and bool(
            self.seg.sql("SELECT 1 FROM articles WHERE id=?", (article_id,)))


class Index:
    """A read-only, consistent view of one generation of an index directory (the `Store`)."""

    def __init__(self, root: str | os.PathLike, gen_dir: Path, manifest: Manifest, eager: bool = True):
        """`eager`: load every segment's FAISS indexes and postings now (readers); the writer opens lazily."""
        self.root, self.gen_dir, self.manifest = Path(root), gen_dir, manifest
        legacy = manifest.schema_version == LEGACY_VERSION
        refs = manifest.segments if not legacy else (SegmentRef(gen_dir.name),)
        self.views: list[View] = []
        try:
            for ref in refs:
                path = gen_dir if legacy else self.root / SEGMENTS / ref.name
                if not legacy and not path.is_dir():
                    raise CorruptIndexError(str(path), "a segment this generation lists is missing")
                seg = acquire(path, manifest.dim, manifest.second_dim, legacy, eager)
                try:
                    self.views.append(View(seg, ref))
                except BaseException:
                    release(seg)
                    raise
        except BaseException:
            self.close()
            raise
        n_chunks = sum(v.live_chunks for v in self.views)
        n_articles = sum(v.live_articles for v in self.views)
        if (n_chunks, n_articles) != (manifest.chunks, manifest.articles):
            self.close()
            raise CorruptIndexError(
                str(gen_dir / "manifest.json"), f"its segments hold {n_articles} articles / {n_chunks} chunks but "
                f"the manifest says {manifest.articles} / {manifest.chunks}")
        try:  # near-duplicate stories (rag.index.dedup); None: written before them, every article its own
            self.stories: Stories | None = None if legacy else Stories.read(gen_dir / STORIES_FILE)
        except BaseException:
            self.close()
            raise
        self._bm25: BM25 | None = None
        self._langs: dict[int, str] = {}  # chunk id -> "zh"/"en", filled as chunks are retrieved
        self._english: float | None = None
        self._lexicons: Lexicons | None = None

    @property
    def bm25(self) -> BM25:
        if self._bm25 is None:
            self._bm25 = BM25([(v.seg.postings, v.dead_rows) for v in self.views])
        return self._bm25

    @property
    def legacy(self) -> bool:
        return self.manifest.schema_version == LEGACY_VERSION

    @property
    def chunk_ids(self) -> np.ndarray:
        """Every live chunk id, sorted."""
        parts = [v.live_ids() for v in self.views]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    vec_ids = bm25_ids = chunk_ids  # the names of the format before segments

    def sql(self, sql: str, args=()) -> list:
        """The rows of a read-only query run on every segment of this generation, one after another (tools and
        tests: rows of articles this generation deleted are included; aggregates are per segment)."""
        return [r for v in self.views for r in v.seg.sql(sql, args)]

    @classmethod
    def open(cls, root: str | os.PathLike, embedder_name: str | None = None, eager: bool = True) -> "Index":
        """The generation `root/CURRENT` names. A folder whose CURRENT is lost or names a generation that does not
        open is reported with the newest complete generation and `rag repair`, never treated as no index."""
        root = Path(root)
        if not root.exists():
            raise RagError(f"{root}: no index here yet. Build one with `rag index PATH --index {root}`.")
        check_folder(root)
        try:
            return cls._open(root, embedder_name, eager)
        except CorruptIndexError as e:
            raise _with_repair_hint(root, e) from None

    @classmethod
    def _open(cls, root: Path, embedder_name: str | None, eager: bool = True) -> "Index":
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
            check_version(root, manifest)
            if embedder_name is not None and embedder_name != manifest.embedder:
                raise IndexMismatchError(
                    f"{root}: index was built with embedder {manifest.embedder!r} (dim {manifest.dim}), "
                    f"not {embedder_name!r}. Use `--embedder {manifest.embedder}` or rebuild with "
                    f"`rag index --rebuild --embedder {embedder_name} PATH...`.")
            try:
                return cls(root, gen_dir, manifest, eager)
            except CorruptIndexError:
                if attempt < 4 and cur.read_text(encoding="utf-8").strip() != gen:
                    continue  # raced with a writer
                raise
        raise CorruptIndexError(str(cur), "could not open a stable generation")

    @property
    def generation(self) -> str:
        return self.gen_dir.name

    def close(self) -> None:
        views, self.views = getattr(self, "views", []), []
        for v in views:
            release(v.seg)

    def __del__(self):
        # a Searcher drops the generation it replaced without closing it (a question may still be reading it): the
        # last reference gone, its segments are released, and those no open generation shares are closed
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ---- routing ids to segments

    def _locate(self, ids: np.ndarray, sentences: bool = False):
        """For each segment holding some of `ids`: (view, which of ids as a mask, their row positions)."""
        for v in self.views:
            hit, pos = v.seg.positions(ids, sentences)
            if len(pos):
                yield v, hit, pos

    # ---- Store protocol

    def _search(self, attr: str, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        found: list[tuple[int, float]] = []
        for v in self.views:
            index = getattr(v.seg, attr)
            if index is None or index.ntotal == 0:
                continue
            kk = min(index.ntotal, k + len(v.dead_chunk_ids))
            hits = search_index(index, vector, kk, allowed)
            if len(v.dead_chunk_ids):
                dead = set(v.dead_chunk_ids.tolist())
                hits = [h for h in hits if h[0] not in dead]
            found.extend(hits[:k])
        return heapq.nsmallest(k, found, key=lambda h: (-h[1], h[0])) if k > 0 else []

    def search_dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        return self._search("faiss", vector, k, allowed)

    def search_second(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The second embedder's nearest chunks (empty for an index without one)."""
        return self._search("second_faiss", vector, k, allowed) if self.manifest.second_embedder else []

    def _row_scores(self, attr: str, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(chunk_ids, dtype=np.int64)
        out = np.zeros(len(ids), dtype=np.float32)
        q = np.asarray(vector, dtype=np.float32)
        for v, hit, pos in self._locate(ids):
            out[hit] = np.asarray(getattr(v.seg, attr)[pos], dtype=np.float32) @ q
        return out

    def dense_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        """Cosine of a query vector with these chunks' vectors."""
        return self._row_scores("vectors", vector, chunk_ids)

    def second_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        """Cosine of the second embedder's query vector with these chunks' second vectors."""
        return self._row_scores("second_vectors", vector, chunk_ids)

    def search_lexical(self, query: str | list[str], k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        if k <= 0 or not self.manifest.chunks:
            return []
        toks = self.tokens(query) if isinstance(query, str) else query
        parts = self.bm25.scores(toks)
        if parts is None:
            return []
        found: list[tuple[int, float]] = []
        for v, scores in zip(self.views, parts):
            if allowed is not None:
                scores = np.where(np.isin(v.seg.ids, allowed), scores, 0.0)
            kk = min(k, len(scores))
            if kk == 0:
                continue
            top = np.argpartition(-scores, kk - 1)[:kk]
            found.extend((int(v.seg.ids[i]), float(scores[i])) for i in top if scores[i] > 0)
        return heapq.nsmallest(k, found, key=lambda h: (-h[1], h[0]))

    def lexical_bound(self, query: str, absent: bool = False) -> float:
        """The most BM25 any chunk could score for `query` (BM25.bound)."""
        return self.bm25.bound(self.tokens(query), absent) if self.manifest.chunks else 0.0

    def tokens(self, text: str) -> list[str]:
        """`text`'s BM25 tokens as this index's were made (its tokenizer and token version)."""
        return tokens(text, self.manifest.tokenizer, self.manifest.tokens)

    def passages(self, chunk_ids: Iterable[int], scores: dict[int, float] | None = None) -> list[Passage]:
        chunk_ids = [int(c) for c in chunk_ids]
        if not chunk_ids:
            return []
        by_id = {}
        for v, hit, _ in self._locate(np.asarray(chunk_ids, dtype=np.int64)):
            part = [c for c, h in zip(chunk_ids, hit) if h]
            for i in range(0, len(part), 500):
                marks = ",".join("?" * len(part[i : i + 500]))
                for r in v.seg.sql(
                        f"SELECT c.id, c.article_id, a.title, c.text, c.start, c.end_, a.url, a.published, a.source, "
                        f"c.heading, {v.seg.date_from_text('a.')} FROM chunks c JOIN articles a ON a.id = c.article_id "
                        f"WHERE c.id IN ({marks})",
                        part[i : i + 500]):
                    if r[1] not in v.dead_articles:
                        by_id[r[0]] = r
        scores = scores or {}
        out = []
        for cid in chunk_ids:
            r = by_id.get(cid)
            if r is not None:
                out.append(Passage(r[0], r[1], r[2], r[3], r[4], r[5], float(scores.get(cid, 0.0)), r[6], r[7], r[8], r[9],
                                   (self.story(r[1]) or ("",))[0], bool(r[10])))
        return out

    # ---- near-duplicate stories (rag.index.dedup)

    def story(self, article_id: str) -> tuple[str, ...]:
        """The ids of the articles carrying the same story as `article_id`, its representative first (the one
        citations name: the earliest dated, then the one with a link); () when no other article carries it."""
        return self.stories.of(article_id) if self.stories is not None else ()

    def story_copies(self, article_ids: Iterable[str]) -> dict[str, tuple[StoryCopy, ...]]:
        """For each of `article_ids` that shares its story with other articles: every copy of the story (itself
        included, the representative first) with its title, link, date and source."""
        groups = {a: g for a in dict.fromkeys(article_ids) if (g := self.story(a))}
        if not groups:
            return {}
        info = self._article_rows(sorted({m for g in groups.values() for m in g}),
                                  "id, title, url, published, source", flag=True)
        return {a: tuple(StoryCopy(*info[m]) for m in g if m in info) for a, g in groups.items()}

    def texts(self, article_ids: Iterable[str]) -> dict[str, str]:
        """The stored text of each of `article_ids` the generation holds."""
        return {a: r[1] for a, r in self._article_rows(sorted(set(article_ids)), "id, text").items()}

    def _article_rows(self, ids: list[str], columns: str, flag: bool = False) -> dict[str, tuple]:
        """`columns` of these articles by id; `flag`: with their date_from_text (as a bool) last."""
        out: dict[str, tuple] = {}
        for i in range(0, len(ids), 500):
            arg = json.dumps(ids[i : i + 500], ensure_ascii=False)
            for v in self.views:
                cols = f"{columns}, {v.seg.date_from_text()}" if flag else columns
                for r in v.seg.sql(f"SELECT {cols} FROM articles WHERE id IN (SELECT value FROM json_each(?))",
                                   (arg,)):
                    if r[0] not in v.dead_articles:
                        out[r[0]] = (*r[:-1], bool(r[-1])) if flag else tuple(r)
        return out

    def chunk_langs(self, chunk_ids: Sequence[int]) -> list[str]:
        """The language of each chunk ("zh"/"en", rag.lang.text.detect_lang of its first 200 characters), read once per
        chunk and remembered."""
        missing = np.array(sorted({int(c) for c in chunk_ids if int(c) not in self._langs}), dtype=np.int64)
        for v, hit, _ in self._locate(missing):
            part = [int(c) for c in missing[hit]]
            for i in range(0, len(part), 500):
                rows = v.seg.sql(f"SELECT id, substr(text, 1, 200) FROM chunks WHERE id IN "
                                 f"({','.join('?' * len(part[i : i + 500]))})", part[i : i + 500])
                self._langs.update((cid, detect_lang(text)) for cid, text in rows)
        return [self._langs.get(int(c), "zh") for c in chunk_ids]

    def english_share(self) -> float:
        """The share of English chunks in an even sample of up to 400 (0.0 for a Chinese-only index), computed once:
        whether Chinese questions need a bridge to English text."""
        if self._english is None:
            ids = self.chunk_ids
            ids = ids[np.linspace(0, len(ids) - 1, min(400, len(ids))).astype(int)] if len(ids) else []
            langs = self.chunk_langs([int(c) for c in ids])
            self._english = langs.count("en") / len(langs) if langs else 0.0
        return self._english

    def lexicon(self) -> Lexicons:
        """The cross-lingual lexicon (rag.index.lexicon) of every segment, loaded on first use: only English
        questions need it."""
        if self._lexicons is None:
            parts = [v.seg.lexicon() for v in self.views]
            # a word whose tokens no live chunk holds any more is dead (its articles were deleted): only the words
            # of segments with deletions can be, since every other word came from a live article
            toks = {w: set(self.tokens(w)) for v in self.views if v.ref.dead for w in (v.seg.words or ())}
            df = self.bm25.doc_freq(sorted(set().union(*toks.values()))) if toks else {}
            self._lexicons = Lexicons(parts, {w for w, ts in toks.items() if not ts or not ts <= df.keys()})
        return self._lexicons

    def sentences(self, passages: Sequence[Passage]) -> list[list[tuple[int, int, int]]]:
        """Per passage, the stored sentences overlapping it as (sentence id, start, end) in article offsets."""
        out: list[list[tuple[int, int, int]]] = [[] for _ in passages]
        ids = np.asarray([p.chunk_id for p in passages], dtype=np.int64)
        for v, hit, _ in self._locate(ids):
            with v.seg.con() as con:
                for i in np.flatnonzero(hit):
                    p = passages[i]
                    out[i] = con.execute("SELECT id, start, end_ FROM sentences WHERE article_id=? AND start<? AND "
                                         "end_>? ORDER BY start", (p.article_id, p.end, p.start)).fetchall()
        return out

    def sentence_vectors(self, sentence_ids: Sequence[int]) -> np.ndarray:
        """float32 vectors of stored sentences, in the order asked."""
        ids = np.asarray(sentence_ids, dtype=np.int64)
        out = np.zeros((len(ids), self.manifest.dim), dtype=np.float32)
        found = np.zeros(len(ids), dtype=bool)
        for v, hit, pos in self._locate(ids, sentences=True):
            out[hit] = np.asarray(v.seg.sent_vectors[pos], dtype=np.float32)
            found |= hit
        if not found.all():
            missing = int(ids[~found][0])
            raise CorruptIndexError(str(self.gen_dir), f"sentence {missing} is in no segment's sent_ids.npy (a "
                                    "sentence in the database has no vector)")
        return out

    def doc_freq(self, terms: list[str]) -> dict[str, int]:
        """How many live chunks hold each lexical term (for IDF weights)."""
        return self.bm25.doc_freq(terms)

    def _holder(self, article_id: str) -> View | None:
        """The segment holding the live copy of an article (the newest segment first)."""
        return next((v for v in reversed(self.views) if v.holds(article_id)), None)

    def neighbours(self, article_id: str, ordinal: int) -> list[tuple[int, str, int, int]]:
        """Chunks ordinal-1..ordinal+1 of an article as (ordinal, text, start, end)."""
        v = self._holder(article_id)
        return [] if v is None else v.seg.sql(
            "SELECT ordinal, text, start, end_ FROM chunks WHERE article_id=? AND ordinal BETWEEN ? AND ? ORDER BY ordinal",
            (article_id, ordinal - 1, ordinal + 1))

    def article(self, article_id: str) -> Article | None:
        v = self._holder(article_id)
        if v is None:
            return None
        r = v.seg.sql(f"SELECT title, text, url, published, source, headings, captions, {v.seg.date_from_text()} "
                      "FROM articles WHERE id=?", (article_id,))[0]
        heads = tuple((int(o), h) for o, h in json.loads(r[5]))
        return Article(r[0], r[1], r[2], r[3], r[4], "", heads, tuple(json.loads(r[6])), bool(r[7]))

    def allowed_ids(self, date_from: str | None = None, date_to: str | None = None, source: str | None = None) -> np.ndarray | None:
        """Chunk ids passing the metadata filters, or None when no filter is set."""
        if not (date_from or date_to or source):
            return None
        where, args = _article_filters("a.", date_from, date_to, source)
        ids = []
        for v in self.views:
            ids.extend(r[0] for r in v.seg.sql(
                "SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE " + " AND ".join(where)
                + " AND a.id NOT IN (SELECT value FROM json_each(?))", [*args, v.dead_json]))
        return np.array(sorted(ids), dtype=np.int64)

    def list_articles(self, offset: int = 0, limit: int = 20, *, date_from: str | None = None,
                      date_to: str | None = None, source: str | None = None,
                      title: str | None = None) -> tuple[int, list[dict]]:
        """(how many articles pass the filters, a page of them newest first): id, title, url, published, source,
        characters. `title` matches a substring of the title, case-insensitively."""
        where, args = _article_filters("", date_from, date_to, source)
        where.insert(0, "id NOT IN (SELECT value FROM json_each(?))")
        if title:
            where.append("instr(lower(title), lower(?)) > 0")
            args.append(title)
        cond = " AND ".join(where)
        total, pages = 0, []
        for v in self.views:
            total += v.seg.sql(f"SELECT COUNT(*) FROM articles WHERE {cond}", [v.dead_json, *args])[0][0]
            pages.append(v.seg.sql(f"SELECT id, title, url, published, source, length(text) FROM articles WHERE "
                                   f"{cond} ORDER BY published DESC, id LIMIT ?", [v.dead_json, *args,
                                                                                  int(offset) + int(limit)]))
        rows = sorted((r for p in pages for r in p), key=lambda r: (_desc(r[3]), r[0]))[int(offset): int(offset) + int(limit)]
        keys = ("id", "title", "url", "published", "source", "chars")
        return int(total), [dict(zip(keys, r)) for r in rows]

    def stats(self) -> dict:
        last = max((v.seg.sql("SELECT MAX(indexed_at) FROM articles")[0][0] or "" for v in self.views), default="")
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
            "segments": len(self.views),
            # near-duplicate stories: groups of two or more articles, and the articles in them
            "stories": len(self.stories) if self.stories is not None else 0,
            "story_articles": self.stories.articles if self.stories is not None else 0,
        }

    def article_ids(self) -> list[str]:
        return sorted(r[0] for v in self.views for r in v.seg.sql("SELECT id FROM articles")
                      if r[0] not in v.dead_articles)


def _desc(text: str) -> tuple:
    """A sort key ordering strings from the largest down (SQLite's ORDER BY x DESC on text, by code points)."""
    return tuple(-ord(c) for c in text) + (1,)


def check_version(root: Path, m: Manifest) -> None:
    if m.schema_version not in (SCHEMA_VERSION, LEGACY_VERSION):
        raise IndexMismatchError(f"{root}: index schema v{m.schema_version}, this version reads v{SCHEMA_VERSION} "
                                 f"(and v{LEGACY_VERSION}); rebuild with `rag index --rebuild PATH...`")


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


def check_generation(root: str | os.PathLike, name: str) -> str | None:
    """None when generation `name` opens and passes every load check (its lexicon's too), else the reason."""
    gen_dir = Path(root) / name
    try:
        m = Manifest.read(gen_dir / "manifest.json")
        if m.schema_version not in (SCHEMA_VERSION, LEGACY_VERSION):
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
