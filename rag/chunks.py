"""Split articles into overlapping chunks with exact character offsets into the article text."""
from __future__ import annotations

from dataclasses import dataclass

from .types import Article, Chunk

SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", "!", "?", ";", ". ", "，", ",", "、", " ", ""]


@dataclass(frozen=True)
class Chunker:
    """Recursive character splitting (langchain-text-splitters) tuned for Chinese and English punctuation."""

    size: int = 300
    overlap: int = 60

    def __post_init__(self):
        if not isinstance(self.size, int) or self.size < 20:
            raise ValueError(f"chunk size must be an integer >= 20, got {self.size!r}")
        if not isinstance(self.overlap, int) or not 0 <= self.overlap < self.size:
            raise ValueError(f"chunk overlap must be an integer in [0, size), got {self.overlap!r}")

    def _splitter(self):
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        return RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            chunk_size=self.size,
            chunk_overlap=self.overlap,
            keep_separator="end",
            strip_whitespace=True,
            length_function=len,
        )

    def run(self, article: Article) -> list[Chunk]:
        text = article.text
        chunks: list[Chunk] = []
        cursor = 0
        prev_start = -1
        for piece in self._splitter().split_text(text):
            if not piece:
                continue
            # Pieces come in order; search from just after the previous start so overlaps resolve to the right place.
            start = text.find(piece, prev_start + 1)
            if start < 0:
                start = text.find(piece, cursor)
            if start < 0:  # cannot happen for a splitter that only cuts and strips; kept as a guard
                raise ValueError(f"chunk not found in article {article.id}")
            end = start + len(piece)
            chunks.append(Chunk(article.id, len(chunks), piece, start, end, article.heading_at(start)))
            prev_start, cursor = start, end
        return chunks


def split_article(article: Article, size: int = 300, overlap: int = 60) -> list[Chunk]:
    return Chunker(size, overlap).run(article)
