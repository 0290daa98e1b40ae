"""Domain records (frozen dataclasses) and the protocols: Embedder, Store (read side) and StoreWriter."""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Iterable, Protocol, Sequence, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Article:
    """One news article, normalised to plain text.

    `text` is plain text: paragraphs separated by a blank line, section headings as their own paragraph.
    `headings` lists (offset in text, heading) for each section heading, in order.
    """

    title: str
    text: str
    url: str = ""
    published: str = ""  # ISO 8601 UTC ("2024-05-08T01:22:03Z") or "" when unknown
    source: str = ""  # publisher or collection name, e.g. "voachinese"
    path: str = ""  # file it was read from ("" when built in memory)
    headings: tuple[tuple[int, str], ...] = ()
    captions: tuple[str, ...] = ()
    # `published` was read from the text's head (a header stamp or a dated dateline), the file giving no date
    # (rag.ingest.dates.date_from_text); kept by both stores (False in one
    # stored before they kept it, until it is indexed again: its content_hash differs)
    date_from_text: bool = False

    @property
    def id(self) -> str:
        """Stable id: from the URL when there is one (so an edited article keeps its id), else from content."""
        key = ("url:" + self.url.strip()) if self.url.strip() else ("text:" + self.title.strip() + "\n" + self.text)
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        for part in (self.title, self.url, self.published, self.source, self.text, repr(self.headings)):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        if self.date_from_text:  # only when set: an article stored before the stores kept the flag is stored again
            h.update(b"date_from_text\x00")
        return h.hexdigest()

    def heading_at(self, offset: int) -> str:
        current = ""
        for start, heading in self.headings:
            if start <= offset:
                current = heading
            else:
                break
        return current


@dataclass(frozen=True)
class Chunk:
    """A span of an article: `article.text[start:end] == text`."""

    article_id: str
    ordinal: int
    text: str
    start: int
    end: int
    heading: str = ""


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its article's metadata and a retrieval score."""

    chunk_id: int
    article_id: str
    title: str
    text: str
    start: int
    end: int
    score: float
    url: str = ""
    published: str = ""
    source: str = ""
    heading: str = ""
    # the representative of the article's near-duplicate story (rag.index.dedup), "" when no other article carries it
    story: str = ""
    date_from_text: bool = False  # `published` was read from the article's text (Article.date_from_text)


@dataclass(frozen=True)
class StoryCopy:
    """An article carrying the same story as another (a near-duplicate: republished copy, corrected version)."""

    article_id: str
    title: str
    url: str = ""
    published: str = ""
    source: str = ""
    date_from_text: bool = False


@dataclass(frozen=True)
class Citation:
    number: int
    article_id: str
    title: str
    url: str
    published: str
    passage: str
    sentence: str
    start: int  # char span of `sentence` in the article text
    end: int
    # the other articles of the cited article's story that carry the quoted sentence too (the cited one is the
    # story's representative when it holds the sentence): how many, and which
    also_in: int = 0
    also: tuple[StoryCopy, ...] = ()
    story_size: int = 0  # how many articles carry the cited article's story (0: it alone)
    date_from_text: bool = False  # `published` was read from the cited article's text (Article.date_from_text)


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    lang: str = ""
    passages: tuple[Passage, ...] = field(default=(), repr=False)

    def to_dict(self, with_passages: bool = False) -> dict:
        d = asdict(self)
        if not with_passages:
            d.pop("passages")
        return d


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape (n, dim)."""

    name: str  # recorded in the index, e.g. "use-m3" or "st:/models/e5-small"
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Store(Protocol):
    """One consistent, read-only snapshot of a store (the local segmented index, rag.index.Index, or Milvus,
    rag.store.milvus.MilvusIndex): everything `retrieve()`/`ask()` read for one question comes from the same
    published version, whatever a writer publishes meanwhile.

    Chunk ids are integers, stable for a chunk's lifetime (an updated article gets new ones). `allowed` is what
    `allowed_ids` returns: None (no filter) or a sized collection of the chunks passing the date/source filters
    (len() = how many), which the search methods apply inside the store (pushed down)."""

    manifest: "object"  # .embedder, .dim, .second_embedder, .second_dim, .chunks, .articles, .tokenizer, .tokens

    @property
    def generation(self) -> str: ...  # the published version this snapshot reads

    # candidates: (chunk id, score), best first
    def search_dense(self, vector: np.ndarray, k: int, allowed=None) -> list[tuple[int, float]]: ...

    def search_second(self, vector: np.ndarray, k: int, allowed=None) -> list[tuple[int, float]]: ...

    def search_lexical(self, query: str | list[str], k: int, allowed=None) -> list[tuple[int, float]]: ...

    def dense_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray: ...

    def second_scores(self, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray: ...

    def allowed_ids(self, date_from: str | None = None, date_to: str | None = None, source: str | None = None): ...

    # corpus statistics and the lexical side
    def tokens(self, text: str) -> list[str]: ...

    def doc_freq(self, terms: list[str]) -> dict[str, int]: ...

    def lexical_bound(self, query: str, absent: bool = False) -> float: ...

    def english_share(self) -> float: ...

    def lexicon(self): ...  # .translate_scored(vectors) -> {word: cosine}, .vocabulary

    # records
    def passages(self, chunk_ids: Iterable[int], scores: dict[int, float] | None = None) -> list[Passage]: ...

    def chunk_langs(self, chunk_ids: Sequence[int]) -> list[str]: ...

    def sentences(self, passages: Sequence[Passage]) -> list[list[tuple[int, int, int]]]: ...

    def sentence_vectors(self, sentence_ids: Sequence[int]) -> np.ndarray: ...

    def neighbours(self, article_id: str, ordinal: int) -> list[tuple[int, str, int, int]]: ...

    def article(self, article_id: str) -> Article | None: ...

    def article_ids(self) -> list[str]: ...

    def list_articles(self, offset: int = 0, limit: int = 20, *, date_from: str | None = None,
                      date_to: str | None = None, source: str | None = None,
                      title: str | None = None) -> tuple[int, list[dict]]: ...

    def stats(self) -> dict: ...

    def close(self) -> None: ...


@runtime_checkable
class StoreWriter(Protocol):
    """The write side the indexer (rag.index.build.Batch and the indexing loop) drives: one writer at a time stages
    adds, updates and deletes; `checkpoint()`/`commit()` publish them as one new version readers switch to at once.
    rag.index.Writer (local) and rag.store.milvus_writer.MilvusWriter implement it."""

    embedder_name: str
    dim: int
    second_embedder: str
    second_dim: int
    tokenizer: str
    chunk_size: int
    chunk_overlap: int
    splitter: int  # the sentence splitter version the stored sentences follow (the indexer may raise it)
    tokens: int  # the token version the stored lexical tokens follow
    changed: bool
    notes: list[str]

    def article_ids(self) -> set[str]: ...

    def article_hash(self, article_id: str) -> str | None: ...

    def paths(self) -> dict[str, set[str]]: ...

    def path_articles(self, path: str) -> set[str]: ...

    def cached_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def cached_sentence_vectors(self, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def cached_second_vectors(self, items: Sequence[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]: ...

    def lexicon_words(self) -> set[str]: ...

    def put_lexicon(self, words: Sequence[str], vectors: np.ndarray) -> None: ...

    def put_article(self, article: Article, chunks: Sequence[Chunk], vectors: np.ndarray, path: str | None,
                    sentences: Sequence[tuple[int, int]] = (), sentence_vectors: np.ndarray | None = None,
                    second_vectors: np.ndarray | None = None) -> None: ...

    def add_source(self, path: str, article_id: str) -> None: ...

    def drop_source(self, path: str, article_id: str | None = None) -> list[str]: ...

    def remove_article(self, article_id: str, keep_sources: bool = False) -> None: ...

    def retokenize(self) -> int: ...

    def mark_run(self, partial: bool) -> None: ...

    def checkpoint(self) -> str | None: ...

    def commit(self) -> str | None: ...

    def abort(self) -> None: ...
