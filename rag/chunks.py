"""Split articles into overlapping chunks with exact character offsets into the article text."""
from __future__ import annotations

import re
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
        pieces = [p for p in self._splitter().split_text(text) if p]
        starts = _place(text, pieces, self.overlap)
        # A piece can start where the previous one did and extend it (the overlap the splitter carried over was the
        # previous piece minus stripped whitespace): keep only the longer one.
        spans = [(p, s) for n, (p, s) in enumerate(zip(pieces, starts)) if n + 1 == len(starts) or starts[n + 1] != s]
        return [Chunk(article.id, n, piece, start, start + len(piece), article.heading_at(start))
                for n, (piece, start) in enumerate(spans)]


_WS = re.compile(r"\s*")


def _place(text: str, pieces: list[str], overlap: int) -> list[int]:
    """Start offset of each piece in `text`.

    A piece can occur several times (repeated text), so the first match is not always right: choose offsets so that
    starts increase (or stay put when a piece extends the previous one), each piece begins at most `overlap` chars before the previous one ends and only whitespace lies
    between consecutive pieces (and before the first / after the last). The splitter's own layout satisfies these
    rules, so a depth-first search over the few candidates in each window (dead ends memoised) always finds one.
    """
    if not pieces:
        return []
    last = len(pieces) - 1

    def candidates(i: int, prev_start: int, prev_end: int):
        grows = i > 0 and len(pieces[i]) >= prev_end - prev_start  # may then start where the previous did
        lo = 0 if i == 0 else max(prev_start + (0 if grows else 1), prev_end - overlap)
        hi = _WS.match(text, 0 if i == 0 else prev_end).end()  # latest start leaving no non-space gap
        piece, found = pieces[i], []
        s = text.find(piece, lo, hi + len(piece))
        while s >= 0:
            if (i, s) not in dead and (i < last or _WS.match(text, s + len(piece)).end() == len(text)):
                found.append(s)
            s = text.find(piece, s + 1, hi + len(piece))
        return reversed(found)  # latest first: usually the right one

    dead: set[tuple[int, int]] = set()
    pos: list[int] = []
    stack = [candidates(0, -1, 0)]
    while stack:
        s = next(stack[-1], None)
        if s is None:
            stack.pop()
            if pos:
                dead.add((len(pos) - 1, pos.pop()))
            continue
        pos.append(s)
        if len(pos) == len(pieces):
            return pos
        stack.append(candidates(len(pos), s, s + len(pieces[len(pos) - 1])))
    # cannot happen for a splitter that only cuts and strips; kept as a guard: first match after the previous start
    pos, prev = [], -1
    for piece in pieces:
        prev = text.find(piece, prev + 1)
        if prev < 0:
            raise ValueError("chunk not found in the article text")
        pos.append(prev)
    return pos


def split_article(article: Article, size: int = 300, overlap: int = 60) -> list[Chunk]:
    return Chunker(size, overlap).run(article)
