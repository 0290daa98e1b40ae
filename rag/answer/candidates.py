"""Candidate sentences: the stored sentences of the retrieved passages, each with its passage and span."""
from __future__ import annotations

from dataclasses import dataclass

from ..ingest import split_sentences
from ..types import Passage


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    rank: int
    start: int  # span in the article text
    end: int
    text: str
    score: float = 0.0  # probability that the sentence holds the answer
    order: float = 0.0  # ranking score among this question's candidates
    sentence_id: int = -1  # the index's sentence row (its vector is stored), or -1



def candidates(passages: list[Passage], stored: list[list[tuple[int, int, int]]] | None = None) -> list[Candidate]:
    """Every sentence of the passages once (overlapping chunks repeat sentences), with article spans.

    `stored` gives, per passage, the index's sentences overlapping it as (sentence id, start, end); a sentence cut
    by the passage's edge is quoted only as far as the passage goes (its whole sentence usually sits in the
    overlapping neighbour chunk). Without `stored`, the passage text is split here and candidates have no id.
    """
    seen: set = set()
    out = []
    for rank, p in enumerate(passages):
        spans = stored[rank] if stored is not None and stored[rank] else [
            (-1, p.start + s, p.start + e) for s, e in split_sentences(p.text)]
        for sid, s, e in spans:
            s, e = max(s, p.start), min(e, p.end)
            text = p.text[s - p.start : e - p.start]
            stripped = text.strip()
            if not stripped:
                continue
            s += len(text) - len(text.lstrip())
            e = s + len(stripped)
            key = sid if sid >= 0 else (p.article_id, s)
            if key in seen or (p.article_id, s) in seen:
                continue
            seen.update((key, (p.article_id, s)))
            out.append(Candidate(p, rank, s, e, stripped, sentence_id=sid))
    return out
