"""Build or update an index from article files: parse, chunk, embed only what changed, publish atomically."""
from __future__ import annotations

import dataclasses
import itertools
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Container, Iterable, Sequence

import numpy as np

from ..errors import ArticleError, ArticleWarning, NothingToIndexError
from ..ingest import (
    CHUNK_OVERLAP,
    CHUNK_SIZE,
    SPLITTER_VERSION,
    Chunker,
    count_files,
    iter_articles,
    split_sentences,
)
from ..lang import TOKEN_VERSION, corpus_words
from ..models import indexing_embedder, registry
from ..models.registry import E5_SPECS
from ..types import Article, Chunk, Embedder
from .files import CURRENT, WriteLock, check_folder, disk_full_is_an_error, printable, text_hash
from .generation import Index
from .writer import Writer

DEFAULT_INDEX = ".rag-index"
EMBED_BATCH = 256
# A long run publishes what it has every CHECKPOINT chunks (~2-8 minutes at the default pipeline's 2-8 chunks/s on
# 2 cores): killed, it loses at most that much; run again, it skips what is in and goes on.
CHECKPOINT = 1000
PROGRESS_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal
RUN_CACHE = 200_000  # sentence vectors remembered across the batches of one run (about 400 MB at 512 dims)
# A new index also embeds each chunk (title and text) with multilingual-e5-small, a second dense retriever fused
# with BM25 and USE (rag.retrieve.Fusion.second_weight): dev pool hit@1 XQuAD en 71.6 -> 80.4, XQuAD zh 90.4 ->
# 93.2, at ~4 chunks/s on 2 cores (USE alone: ~40). None (`rag index --second none`) indexes without it.
DEFAULT_SECOND = "e5"


def default_index_dir() -> str:
    return os.environ.get("RAG_INDEX") or DEFAULT_INDEX


@dataclass(frozen=True)
class IndexSummary:
    added: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    removed: int = 0
    resplit: int = 0  # unchanged articles split again because the index used an older sentence splitter
    chunks: int = 0  # chunks written in this run
    embedded: int = 0  # chunks whose vectors were computed in this run (the rest came from the cache)
    sentences_embedded: int = 0  # sentences whose vectors were computed in this run
    words_embedded: int = 0  # new Chinese words added to the cross-lingual lexicon (rag.lang.bridge)
    second_embedded: int = 0  # chunks embedded by the index's second embedder in this run
    seconds: float = 0.0
    checkpoints: int = 0  # generations published before the end of the run (rag.index.build.CHECKPOINT)
    resumed: int = 0  # unchanged articles an interrupted earlier run had already indexed (skipped, not redone)
    segments: int = 0  # segments of the index after the run (merged by the tiered policy, `rag compact`)
    total_articles: int = 0
    total_chunks: int = 0
    generation: str | None = None
    errors: tuple[str, ...] = field(default=(), repr=False)
    notes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def passages_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        lines = [
            f"articles: {self.added} added, {self.updated} updated, {self.skipped} unchanged, "
            f"{self.failed} failed, {self.removed} removed"
            + (f", {self.resplit} re-split (a newer sentence splitter)" if self.resplit else ""),
            f"chunks: {self.chunks} written, {self.embedded} embedded "
            f"({self.chunks - self.embedded} from cache); {self.sentences_embedded} sentences and "
            f"{self.words_embedded} lexicon words embedded"
            + (f"; {self.second_embedded} chunks by the second embedder" if self.second_embedded else ""),
            f"index holds {self.total_articles} articles / {self.total_chunks} chunks in {self.segments} segment"
            f"{'s' if self.segments != 1 else ''}"
            + (f"; {self.checkpoints} checkpoints published during the run" if self.checkpoints else ""),
            f"time: {self.seconds:.1f} s, {self.passages_per_second:.1f} passages/s",
        ]
        if self.resumed:
            lines.insert(1, f"resumed an interrupted run: {self.resumed} articles it had indexed were kept")
        # file names and the errors quoting them are the corpus's: shown escaped, they cannot forge a line
        lines.extend("note: " + printable(n) for n in self.notes)
        if self.errors:
            lines.append(f"errors ({len(self.errors)}):")
            lines.extend("  " + printable(e) for e in self.errors)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Every field (errors and notes as lists) and passages_per_second: what `rag index --json` prints."""
        return {**dataclasses.asdict(self), "errors": list(self.errors), "notes": list(self.notes),
                "passages_per_second": self.passages_per_second}


@dataclass(frozen=True)
class Prepared:
    """A batch's articles and what follows from their text alone: chunk and sentence texts with their hashes, the
    Chinese words of the lexicon (rag.lang.bridge), the second embedder's keys (title, chunk text)."""

    items: tuple[tuple[Article, list[Chunk], str], ...]
    spans: tuple[list[tuple[int, int]], ...]
    texts: tuple[str, ...]
    hashes: tuple[str, ...]
    stexts: tuple[str, ...]
    shashes: tuple[str, ...]
    words: frozenset[str]
    keys: tuple[tuple[str, str], ...]
    checkpoint: bool  # publish a checkpoint once this batch is written


@dataclass(frozen=True)
class Pending:
    """What batches still being embedded elsewhere will have written (rag.index.fanout): a later batch counts it as
    cached, as it would be had those batches been written first."""

    hashes: Container[str] = frozenset()
    shashes: Container[str] = frozenset()
    words: Container[str] = frozenset()
    keys: Container[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Plan:
    """The vectors of a prepared batch the caches hold, and what is left to embed, each in the order it is embedded
    (sorted, duplicates once)."""

    cache: dict[str, np.ndarray]
    scache: dict[str, np.ndarray]
    seconds: dict[tuple[str, str], np.ndarray]
    todo: tuple[tuple[str, str], ...]  # (hash, chunk text)
    stodo: tuple[tuple[str, str], ...]  # (hash, sentence text)
    words: tuple[str, ...]
    second_todo: tuple[tuple[str, str], ...]  # (title, chunk text)

    def first_texts(self) -> list[str]:
        """The first embedder's texts: chunks then sentences, in one call (it batches them together)."""
        return [t for _, t in self.todo] + [t for _, t in self.stodo]

    def second_texts(self) -> list[str]:
        return [f"{t}\n{x}" for t, x in self.second_todo]


@dataclass(frozen=True)
class NewVectors:
    """The vectors a plan's embedding computed, by chunk hash, sentence hash, word and second key."""

    chunks: dict[str, np.ndarray]
    sentences: dict[str, np.ndarray]
    words: dict[str, np.ndarray]
    seconds: dict[tuple[str, str], np.ndarray]

    @classmethod
    def of(cls, plan: Plan, first: np.ndarray | None, words: np.ndarray | None,
           seconds: np.ndarray | None) -> "NewVectors":
        """From the rows of the embedders' calls on `plan.first_texts()`, `plan.words` and `plan.second_texts()`."""
        first = first if first is not None else ()
        return cls(dict(zip((h for h, _ in plan.todo), first[: len(plan.todo)])),
                   dict(zip((h for h, _ in plan.stodo), first[len(plan.todo):])),
                   dict(zip(plan.words, words if words is not None else ())),
                   dict(zip(plan.second_todo, seconds if seconds is not None else ())))


class Batch:
    """Articles waiting to be embedded and written, EMBED_BATCH chunks at a time (batches across articles keep the
    embedder busy); vectors of unchanged chunks and sentences come from the index's cache or this run's. Each batch
    is taken (`take`), planned against the caches (`plan`), embedded and written (`write`); rag.index.fanout's
    RayBatch embeds in Ray workers between `plan` and `write`."""

    def __init__(self, writer: Writer, embedder: Embedder, second: Embedder | None, counts: dict[str, int],
                 checkpoint: int = 0):
        self.w, self.emb, self.second, self.counts = writer, embedder, second, counts
        self.checkpoint, self._since = checkpoint, 0
        self.items: list[tuple[Article, list[Chunk], str]] = []
        self.n = 0
        self.run_cache: dict[str, np.ndarray] = {}  # sentence vectors: boilerplate recurs across batches of a run
        self.notes: list[str] = []  # for the run's summary
        self._pool: ThreadPoolExecutor | None = None

    def add(self, article: Article, chunks: list[Chunk], path: str) -> None:
        self.items.append((article, chunks, path))
        self.n += len(chunks)
        if self.n >= EMBED_BATCH or (self.checkpoint and self._since + self.n >= self.checkpoint):
            self.submit(self.take())

    def flush(self) -> None:
        """Everything added so far embedded and written."""
        if self.items:
            self.submit(self.take())

    def take(self) -> Prepared:
        """The batch's articles, prepared; the next batch starts empty."""
        items = tuple(self.items)
        spans = tuple(split_sentences(a.text) for a, _, _ in items)
        texts = tuple(c.text for _, cs, _ in items for c in cs)
        stexts = tuple(a.text[s:e] for (a, _, _), sp in zip(items, spans) for s, e in sp)
        words = frozenset().union(*(corpus_words(a.title + "\n" + a.text) for a, _, _ in items))
        keys = tuple((a.title, c.text) for a, cs, _ in items for c in cs) if self.second is not None else ()
        self._since += self.n
        checkpoint = bool(self.checkpoint) and self._since >= self.checkpoint
        if checkpoint:
            self._since = 0
        self.items, self.n = [], 0
        return Prepared(items, spans, texts, tuple(map(text_hash, texts)), stexts, tuple(map(text_hash, stexts)),
                        words, keys, checkpoint)

    def submit(self, prep: Prepared) -> None:
        """Embed what the caches lack and write the batch, here and now."""
        plan = self.plan(prep)
        seconds = self._second_vectors(plan)  # starts the second embedder in a thread: it runs while USE does
        first = self.emb.embed_documents(plan.first_texts()) if plan.todo or plan.stodo else None
        words = self.emb.embed_documents(list(plan.words)) if plan.words else None
        self.write(prep, plan, NewVectors.of(plan, first, words, seconds()))

    def plan(self, prep: Prepared, pending: Pending = Pending()) -> Plan:
        """What the index's caches and this run's hold of the batch, and what is left to embed (less `pending`)."""
        w = self.w
        cache = w.cached_vectors(prep.hashes)
        scache = w.cached_sentence_vectors(prep.shashes)
        scache.update({h: self.run_cache[h] for h in prep.shashes if h in self.run_cache})
        todo = sorted({h: t for h, t in zip(prep.hashes, prep.texts)
                       if h not in cache and h not in pending.hashes}.items())
        stodo = sorted({h: t for h, t in zip(prep.shashes, prep.stexts)
                        if h not in scache and h not in pending.shashes}.items())
        known = w.lexicon_words()
        words = sorted(x for x in prep.words if x not in known and x not in pending.words)
        seconds = w.cached_second_vectors(prep.keys) if self.second is not None else {}
        second_todo = sorted(k for k in set(prep.keys) - set(seconds) if k not in pending.keys)
        return Plan(cache, scache, seconds, tuple(todo), tuple(stodo), tuple(words), tuple(second_todo))

    def write(self, prep: Prepared, plan: Plan, new: NewVectors) -> None:
        """The batch's articles written with their vectors (the caches' and `new`), and a checkpoint if it is due."""
        w, emb, counts = self.w, self.emb, self.counts
        cache, scache = {**plan.cache, **new.chunks}, {**plan.scache, **new.sentences}
        seconds = {**plan.seconds, **new.seconds}
        counts["embedded"] += len(plan.todo)
        counts["sentences_embedded"] += len(plan.stodo)
        if plan.stodo and len(self.run_cache) < RUN_CACHE:
            self.run_cache.update({h: scache[h] for h, _ in plan.stodo})
        if plan.words:
            w.put_lexicon(list(plan.words), np.stack([new.words[x] for x in plan.words]))
            counts["words_embedded"] += len(plan.words)
        counts["second_embedded"] += len(plan.second_todo)
        ch, sh = iter(prep.hashes), iter(prep.shashes)  # in the order the texts were listed
        for (article, cs, path), sp in zip(prep.items, prep.spans):
            vecs = np.array([cache[next(ch)] for _ in cs], dtype=np.float32).reshape(len(cs), emb.dim)
            svecs = np.array([scache[next(sh)] for _ in sp], dtype=np.float32).reshape(len(sp), emb.dim)
            vecs2 = (np.array([seconds[(article.title, c.text)] for c in cs], dtype=np.float32)
                     .reshape(len(cs), self.second.dim) if self.second is not None else None)
            w.put_article(article, cs, vecs, path, sp, svecs, vecs2)
            counts["chunks"] += len(cs)
        if prep.checkpoint:
            w.checkpoint()
            counts["checkpoints"] += 1

    def _second_vectors(self, plan: Plan):
        """A function giving the second embedder's rows for `plan.second_texts()`, computed in a thread meanwhile
        (onnxruntime and BLAS release the GIL: on 2 cores the batch took 50.7 s one after the other, 40.5 s side by
        side; docs/performance.md)."""
        if self.second is None or not plan.second_todo:
            return lambda: None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="second-embedder")
        return self._pool.submit(self.second.embed_documents, plan.second_texts()).result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def index_paths(
    paths: Sequence[str | os.PathLike],
    index_dir: str | os.PathLike | None = None,
    embedder: str | Embedder = "use",
    *,
    max_bytes: int = 5_000_000,
    **kw,
) -> IndexSummary:
    """Add the articles under `paths` to the index at `index_dir` (created if needed). Paths that hold no article
    file at all raise NothingToIndexError before anything is created (unless `prune` is asked for)."""
    return index_stream(path_stream(paths, max_bytes, kw), index_dir, embedder, **kw)


def path_stream(paths, max_bytes: int, kw: dict):
    """The articles under `paths` as index_stream reads them; sets kw["files"] for the progress bar, and raises
    NothingToIndexError when the paths hold no article file (unless kw asks to prune)."""
    stream = iter_articles([str(p) for p in paths], max_bytes=max_bytes)
    if kw.get("progress", True) and "files" not in kw:
        kw["files"] = count_files([str(p) for p in paths])
    if paths and not kw.get("prune"):
        first = next(stream, None)
        if first is None:
            raise NothingToIndexError(f"no article files found under {', '.join(printable(str(p)) for p in paths)}: "
                                      "nothing indexed")
        stream = itertools.chain([first], stream)
    return stream


def index_articles(articles: Iterable[Article], index_dir, embedder: str | Embedder = "use",
                   source_name: str = "memory:articles", **kw) -> IndexSummary:
    """Index in-memory articles (tests, converters, uploads); `source_name` stands in for the file path."""
    return index_stream([(source_name, list(articles), [])], index_dir, embedder, **kw)


def index_stream(
    stream: Iterable[tuple[str, list[Article] | ArticleError, list[ArticleError]]],
    index_dir: str | os.PathLike | None = None,
    embedder: str | Embedder = "use",
    *,
    prune: bool = False,
    rebuild: bool = False,
    progress: bool = True,
    chunk_size: int = CHUNK_SIZE,
    chunk_overlap: int = CHUNK_OVERLAP,
    tokenizer: str = "bigram",
    wait: float = 0.0,
    second: str | Embedder | None = "default",
    checkpoint: int = CHECKPOINT,
    files: int | None = None,
    fanout: Callable[..., Batch] | None = None,
) -> IndexSummary:
    """Apply parsed files `(path, articles or error, line errors)` to the index and publish it: a new segment,
    published every `checkpoint` chunks (0: only at the end) so that a killed run keeps what it did.
    `second`: a new index's second dense retriever (an embedder or its spec; "default": DEFAULT_SECOND; None: none);
    an existing index keeps the one it was built with. `files`: how many files the stream holds, for the ETA.
    `fanout`: made like `Batch` (writer, embedder, second, counts, checkpoint), a batch that embeds elsewhere, such
    as Ray workers (rag.index.fanout.RayFanout); the writer stays here."""
    t0 = time.perf_counter()
    root = Path(index_dir or default_index_dir())
    check_folder(root)
    emb, second, counts = start_run(embedder, second, checkpoint)
    errors: list[str] = []
    notes: list[str] = []
    with disk_full_is_an_error(root), WriteLock(root, timeout=wait):
        w = Writer(root, emb.name, emb.dim, tokenizer=tokenizer, chunk_size=chunk_size,
                   chunk_overlap=chunk_overlap, rebuild=rebuild, second_embedder=second.name if second else "",
                   second_dim=second.dim if second else 0)
        gen = run_writer(w, stream, emb, second, counts, errors, notes, checkpoint=checkpoint, prune=prune,
                         bar=Progress(progress, files, counts), batch_type=fanout or Batch)
    if w.final is not None:  # the generation the writer left (opening the index again cost ~1 s at 1M chunks)
        articles, chunks, segments = w.final
    else:
        idx = Index.open(root, eager=False)
        articles, chunks, segments = idx.manifest.articles, idx.manifest.chunks, len(idx.views)
        idx.close()
    return IndexSummary(**counts, seconds=time.perf_counter() - t0, total_articles=articles,
                        total_chunks=chunks, segments=segments, generation=gen,
                        errors=tuple(errors), notes=tuple(notes))


def start_run(embedder: str | Embedder, second: str | Embedder | None,
              checkpoint: int) -> tuple[Embedder, Embedder | None, dict[str, int]]:
    """An indexing run's embedders (resolve_embedders), its checkpoint checked, and its counts at zero (IndexSummary's
    fields), for either store."""
    emb, second = resolve_embedders(embedder, second)
    if checkpoint < 0:
        raise ValueError(f"checkpoint must be >= 0 chunks, got {checkpoint!r}")
    counts = dict(added=0, updated=0, skipped=0, failed=0, removed=0, resplit=0, chunks=0, embedded=0,
                  sentences_embedded=0, words_embedded=0, second_embedded=0, checkpoints=0, resumed=0)
    return emb, second, counts


def resolve_embedders(embedder: str | Embedder, second: str | Embedder | None) -> tuple[Embedder, Embedder | None]:
    """The run's embedder and second embedder from specs ("default": DEFAULT_SECOND, read now: tests set it); a
    second that is the first embedder already is none."""
    if isinstance(embedder, str):  # e5 through its fast backend where it runs; others new, as the caller may expect
        embedder = indexing_embedder(embedder) if embedder.strip().lower() in E5_SPECS else registry.get_embedder(embedder)
    if second == "default":
        second = DEFAULT_SECOND
    if isinstance(second, str):
        second = indexing_embedder(second)
    if second is not None and second.name == embedder.name:
        second = None
    return embedder, second


def run_writer(w, stream, emb: Embedder, second: Embedder | None, counts: dict[str, int], errors: list[str],
               notes: list[str], *, checkpoint: int, prune: bool, bar: "Progress", batch_type=None) -> str | None:
    """One indexing run on an open writer (a Writer, or a store's writer with the same methods): the stream applied
    in batches (`batch_type`, default Batch), files gone pruned, the splitter version settled, committed; aborted on
    any error. Returns the generation published."""
    notes.extend(w.notes)
    interrupted = w.interrupted_run
    try:
        second = prepare_writer(w, second, notes)
        w.mark_run(checkpoint > 0)
        batch = (batch_type or Batch)(w, emb, second, counts, checkpoint)
        try:
            seen_ids = apply_stream(stream, w, batch, counts, errors, notes, bar)
        finally:
            batch.close()
        notes.extend(getattr(batch, "notes", ()))
        if prune:
            for path in list(w.paths()):
                if not path.startswith("memory:") and not os.path.exists(path):
                    counts["removed"] += len(w.drop_source(path))
        if w.splitter != SPLITTER_VERSION:
            left = len(w.article_ids() - seen_ids)
            if left:
                notes.append(f"{left} articles keep sentences split by an older version (v{w.splitter}, now "
                             f"v{SPLITTER_VERSION}): index their files again, or rebuild with --rebuild")
            else:
                w.splitter = SPLITTER_VERSION
        gen = w.commit()
    except BaseException:
        w.abort()
        raise
    if interrupted:
        counts["resumed"] = counts["skipped"]
    return gen


def prepare_writer(w, second: Embedder | None, notes: list[str]) -> Embedder | None:
    """The second embedder this index uses (an existing index keeps its own), and the stored BM25 tokens brought
    to this version's. `w`: a Writer, or a store's writer (rag.store) with the same methods."""
    if w.second_embedder and (second is None or second.name != w.second_embedder):
        second = indexing_embedder(w.second_embedder)  # an existing index's own
    elif not w.second_embedder:
        if second is not None:
            notes.append("this index has no second embedder (built before it): rebuild it with --rebuild "
                         f"to add {second.name}'s passage vectors, which retrieve better")
        second = None
    if w.tokens != TOKEN_VERSION:
        old_version = w.tokens
        n = w.retokenize()
        notes.append(f"BM25 tokens of {n} stored chunks made again (token version {old_version} -> "
                     f"{TOKEN_VERSION}: accented Latin letters now match their plain forms)")
    return second


def apply_stream(stream, w, batch: Batch, counts: dict[str, int], errors: list[str], notes: list[str],
           bar: "Progress") -> set[str]:
    """Each file of `stream` applied to the writer: new and changed articles chunked and batched, unchanged ones
    kept, articles a file no longer holds dropped after the last batch (unless some of its lines could not be read:
    any of them may hold those articles, so they are kept). Returns the ids seen."""
    chunker = Chunker(w.chunk_size, w.chunk_overlap)
    seen_ids: set[str] = set()
    stale: list[tuple[str, str]] = []
    for path, result, line_errors in stream:
        key = path if path.startswith("memory:") else os.path.abspath(path)
        notes.extend(str(e) for e in line_errors if isinstance(e, ArticleWarning))  # e.g. a date dropped, not a failure
        line_errors = [e for e in line_errors if not isinstance(e, ArticleWarning)]
        errors.extend(str(e) for e in line_errors)
        if isinstance(result, ArticleError):
            counts["failed"] += 1
            errors.append(str(result))
            bar.update(1)
            continue
        counts["failed"] += len(line_errors)
        before = w.path_articles(key)
        in_file = set()
        for article in result:
            in_file.add(article.id)
            if article.id in seen_ids:  # the same article twice in this run (duplicate file): store once
                w.add_source(key, article.id)
                counts["skipped"] += 1
                continue
            seen_ids.add(article.id)
            old = w.article_hash(article.id)
            if old == article.content_hash and w.splitter == SPLITTER_VERSION:
                w.add_source(key, article.id)
                counts["skipped"] += 1
                continue
            # an unchanged article of an index split by an older splitter: split again (its chunk and unchanged
            # sentence vectors come from the cache)
            counts["resplit" if old == article.content_hash else "updated" if old else "added"] += 1
            batch.add(article, chunker.run(article), key)
        # the file no longer holds these (edited file): forget them after the last batch, so that the vectors of
        # their unchanged chunks can still be reused (an edited article without URL gets a new id)
        gone = sorted(before - in_file)
        if gone and line_errors:
            lines = ", ".join(str(e.line) for e in line_errors if e.line is not None)
            notes.append(f"{path}: {len(gone)} articles kept from the last good version: "
                         f"line{'s' if len(line_errors) > 1 else ''} {lines} could not be read")
        else:
            stale.extend((key, aid) for aid in gone)
        bar.update(1)
    batch.flush()
    for key, aid in stale:
        counts["removed"] += len(w.drop_source(key, aid))
    bar.close()
    return seen_ids


def remove_articles(index_dir: str | os.PathLike | None, ids_or_paths: Iterable[str] | str,
                    wait: float = 0.0) -> tuple[list[str], list[str]]:
    """Remove articles by id, or the articles of an indexed file (its path as given to `rag index`, or a `memory:`
    name) that no other indexed file also holds, in one new generation. Returns (the ids removed, the items that
    matched nothing)."""
    root = Path(index_dir or default_index_dir())
    if not root.is_dir() or not os.path.lexists(root / CURRENT):
        Index.open(root, eager=False).close()  # raises what is wrong (no index, a file, a lost CURRENT), creating nothing
    with disk_full_is_an_error(root), WriteLock(root, timeout=wait):
        return remove_with(Writer(root, None, None), ids_or_paths)


def remove_with(w, ids_or_paths: Iterable[str] | str) -> tuple[list[str], list[str]]:
    """Remove through the writer `w` (either store's) articles by id or the articles of an indexed file that no
    other indexed file also holds, then commit (abort when nothing changed or on error): (the ids removed, the items
    that matched nothing)."""
    items = [ids_or_paths] if isinstance(ids_or_paths, str) else [str(x) for x in ids_or_paths]
    removed: list[str] = []
    unknown: list[str] = []
    try:
        ids, paths = w.article_ids(), w.paths()
        for item in items:
            key = item if item in paths else os.path.abspath(item)
            if item in ids:
                if item not in removed:
                    w.remove_article(item)
                    removed.append(item)
            elif key in paths:  # the file's articles that no other indexed file also holds
                removed.extend(a for a in w.drop_source(key) if a not in removed)
            else:
                unknown.append(item)
        if removed or w.changed:
            w.commit()
        else:
            w.abort()
    except BaseException:
        w.abort()
        raise
    return removed, unknown


class Progress:
    """A bar on a terminal; otherwise (cron, CI, a log) a line every PROGRESS_EVERY seconds: files, articles,
    chunks, chunks/s and, when the number of files is known, the time left."""

    def __init__(self, enabled: bool, total: int | None, counts: dict[str, int], every: float = PROGRESS_EVERY,
                 stream=None):
        from tqdm import tqdm

        self.stream = stream or sys.stderr
        self.tty = enabled and self.stream.isatty()
        self.enabled, self.total, self.counts, self.every = enabled, total, counts, every
        self.done, self.t0 = 0, time.monotonic()
        self.last = self.t0
        self.bar = tqdm(unit=" files", desc="indexing", total=total, disable=not self.tty, file=self.stream)

    def update(self, n: int = 1) -> None:
        self.done += n
        self.bar.update(n)
        now = time.monotonic()
        if self.enabled and not self.tty and now - self.last >= self.every:
            self.last = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float) -> str:
        c, took = self.counts, max(now - self.t0, 1e-9)
        articles = c["added"] + c["updated"] + c["skipped"] + c["resplit"]
        eta = ""
        if self.total and self.done:
            left = took / self.done * max(self.total - self.done, 0)
            eta = f", about {_duration(left)} left"
        files = f"{self.done}/{self.total}" if self.total else str(self.done)
        return (f"indexing: {files} files, {articles} articles, {c['chunks']} chunks, "
                f"{c['chunks'] / took:.1f} chunks/s, {_duration(took)} so far{eta}")

    def close(self) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def compact_index(index_dir: str | os.PathLike | None = None, wait: float = 0.0) -> str:
    """Merge every segment of the index into one, dropping deleted rows; one line saying what was done."""
    root = Path(index_dir or default_index_dir())
    Index.open(root, eager=False).close()  # raises what is wrong (no index, a lost CURRENT), creating nothing
    with disk_full_is_an_error(root), WriteLock(root, timeout=wait):
        w = Writer(root, None, None)
        before = len(w.views)
        t0 = time.perf_counter()
        try:
            gen = w.compact()
        except BaseException:
            w.abort()
            raise
    if gen is None:
        return f"{root}: one segment, nothing deleted: nothing to compact"
    idx = Index.open(root, eager=False)
    try:
        if w.notes and before == len(idx.views) == 1:
            return f"{root}: {'; '.join(w.notes)} ({idx.manifest.articles} articles, {idx.manifest.chunks} chunks)"
        return (f"{root}: {before} segments merged into {len(idx.views)} in {time.perf_counter() - t0:.1f} s "
                f"({idx.manifest.articles} articles, {idx.manifest.chunks} chunks, {gen})")
    finally:
        idx.close()

