"""Domain records (frozen dataclasses) and the two protocols: Embedder and Store."""
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
    # (rag.ingest.dates.date_from_text); not kept by the index
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
    """A persistent hybrid index: articles, chunks, vectors and a lexical index, saved atomically."""

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]: ...

    def search_lexical(self, query: str, k: int) -> list[tuple[int, float]]: ...

    def passages(self, chunk_ids: Iterable[int]) -> list[Passage]: ...

    def stats(self) -> dict: ...

    def close(self) -> None: ...
