"""Split text into sentences with exact offsets (Chinese and English punctuation, quotes kept with their sentence)."""
from __future__ import annotations

import re

# A sentence ends at 。！？!? (or ；; …) possibly followed by closing quotes/brackets, at ". " before a capital or
# CJK character, or at a line break. Abbreviations such as "U.S." or "Mr." do not end a sentence.
_END = re.compile(
    r"""(?:[。！？!?；;]+|…{1,2}|\.{3})[”’"'」』）)\]]*"""  # CJK / strong ends, with closers
    r"""|(?<![A-Z])(?<!\b(?:Mr|Ms|Dr|St|Jr|Sr|vs|No|Mt))(?<!\b(?:Mrs|Gen|Col|Gov|Sen|Rep|etc))\.[”’"')\]]*(?=\s+[A-Z0-9“"(\u4e00-\u9fff]|\s*$|[\u4e00-\u9fff])"""
    r"""|\n+"""
)
_MIN_CHARS = 2


def split_sentences(text: str, max_chars: int = 240) -> list[tuple[int, int]]:
    """Return (start, end) spans of the sentences of `text`, stripped of surrounding whitespace.

    Over-long sentences are cut at commas so an answer never quotes a whole paragraph.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _END.finditer(text):
        _add(text, pos, m.end(), spans, max_chars)
        pos = m.end()
    _add(text, pos, len(text), spans, max_chars)
    return spans


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]], max_chars: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end - start < _MIN_CHARS:
        if end > start and spans and text[start:end].strip("”’\"'」』）)]") == "":
            spans[-1] = (spans[-1][0], end)  # a stray closing quote belongs to the sentence before
        elif end > start and not spans:
            spans.append((start, end))
        return
    if end - start <= max_chars:
        spans.append((start, end))
        return
    # Long run without an end mark: cut after the last comma before the limit.
    while end - start > max_chars:
        window = text[start : start + max_chars]
        cut = max(window.rfind(c) for c in "，,、：:")
        cut = start + (cut + 1 if cut > max_chars // 3 else max_chars)
        spans.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end - start >= _MIN_CHARS:
        spans.append((start, end))
    elif spans and end > start:
        spans[-1] = (spans[-1][0], end)


def sentences(text: str, max_chars: int = 240) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text, max_chars)]
