"""Split text into sentences with exact offsets (Chinese and English punctuation, quotes kept with their sentence)."""
from __future__ import annotations

import re

# A sentence ends at 。！？!? (or …) possibly followed by closing quotes/brackets, at ". " before a capital or
# CJK character, or at a line break. Abbreviations such as "U.S.", "J." or "Mr." do not end a sentence; an
# acronym does ("He joined NATO. Then...").
_END = re.compile(
    r"""(?:(?:[。！？?]|(?<!<)!)+|…{1,2}|\.{3})[”’"'」』）)\]]*"""  # CJK / strong ends, with closers ("<!" is markup)
    r"""|(?<!\b[A-Z])(?<!\b(?:Mr|Ms|Dr|St|Jr|Sr|vs|No|Mt))(?<!\b(?:Mrs|Gen|Col|Gov|Sen|Rep|etc))\.[”’"')\]]*(?=\s+[A-Z0-9“"(\u4e00-\u9fff]|\s*$|[\u4e00-\u9fff])"""
    r"""|\n+"""
)

# Bumped whenever the spans split_sentences returns change, so that indexes split by an older version are re-split
# (rag.index): 1 = the first rules; 2 = a bracketed aside with no end mark joins the sentence before it; 3 = a
# list number ("2." in "第一条。2. 第二条。") starts the sentence after it instead of ending the one before.
SPLITTER_VERSION = 3
_LIST_NUMBER = re.compile(r"\s*\d{1,3}\.\s*")

_ASIDE = re.compile(r"[（(][^（()）。！？!?\n]*[）)]")


def split_sentences(text: str, max_chars: int = 240) -> list[tuple[int, int]]:
    """Return (start, end) spans of the sentences of `text`, stripped of surrounding whitespace.

    Over-long sentences are cut at commas so an answer never quotes a whole paragraph.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _END.finditer(text):
        if _LIST_NUMBER.fullmatch(text, pos, m.end()):
            continue
        _add(text, pos, m.end(), spans, max_chars)
        pos = m.end()
    _add(text, pos, len(text), spans, max_chars)
    return [(s, e) for s, e in spans if _content(text, s, e, 1)]  # punctuation alone answers nothing


def _content(text: str, start: int, end: int, need: int) -> bool:
    """At least `need` letters, digits or CJK characters in text[start:end]."""
    n = 0
    for ch in text[start:end]:
        if ch.isalnum():
            n += 1
            if n >= need:
                return True
    return False


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]], max_chars: int) -> None:
    # Long run without an end mark: cut after the last comma before the limit (else the last space, else hard).
    start, end = _strip(text, start, end)
    while end - start > max_chars:
        window = text[start : start + max_chars]
        cut = max(window.rfind(c) for c in "，,、：:；")
        if cut <= max_chars // 3:
            cut = window.rfind(" ")
        cut = start + (cut + 1 if cut > max_chars // 3 else max_chars)
        _put(text, start, cut, spans, max_chars)
        start, end = _strip(text, cut, end)
    _put(text, start, end, spans, max_chars)


def _put(text: str, start: int, end: int, spans: list[tuple[int, int]], max_chars: int) -> None:
    start, end = _strip(text, start, end)
    if start >= end:
        return
    # "是。", a closing quote, "!!" or "<!--": too little to stand alone (and hostile input must not make one
    # sentence per mark); it joins the sentence before when that stays within the limit
    if spans and not _content(text, start, end, 2) and end - spans[-1][0] <= max_chars:
        spans[-1] = (spans[-1][0], end)
    # "握手。（2024年5月7日）": a bracketed aside with no end mark of its own belongs to the sentence before it
    elif spans and _ASIDE.fullmatch(text, start, end) and "\n" not in text[spans[-1][1] : start] \
            and end - spans[-1][0] <= max_chars:
        spans[-1] = (spans[-1][0], end)
    else:
        spans.append((start, end))


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentences(text: str, max_chars: int = 240) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text, max_chars)]
