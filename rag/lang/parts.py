"""A question in several parts ("谁…？在哪里…？", "Who…? Where…?"), split so that each part is answered."""
from __future__ import annotations

import re

MAX_PARTS = 3
MIN_PART = 6  # letters or CJK characters a part needs to stand alone (DRCD writes unknown characters as "?")
_OPEN, _CLOSE = "“「『《（([‘", "”」』》）)]’"
_MARKS = "？?"
_WORDY = re.compile(r"[\w\u3400-\u9fff]")


def _pieces(question: str) -> list[str]:
    """The question cut after each run of question marks outside quotation marks and brackets; text after the last
    mark stays with the piece before it (a note, not a question)."""
    pieces, start, depth, i = [], 0, 0, 0
    while i < len(question):
        ch = question[i]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
        elif ch in _MARKS and depth == 0:
            while i + 1 < len(question) and question[i + 1] in _MARKS:
                i += 1
            pieces.append(question[start:i + 1])
            start = i + 1
        i += 1
    if pieces and question[start:].strip():
        pieces[-1] += question[start:]
    return pieces or [question]


def split_parts(question: str) -> list[str]:
    """The parts of `question`, each ending with its question mark; [question] when it asks one thing. A part too
    short to stand alone ("为什么？", "吗？") joins its neighbour."""
    out: list[str] = []
    carry = ""
    for p in _pieces(question):
        p = carry + p
        carry = ""
        if len(_WORDY.findall(p)) < MIN_PART:
            if out:
                out[-1] += p
            else:
                carry = p
        elif p.strip():
            out.append(p)
    if carry:
        out.append(carry)
    out = [p.strip() for p in out]
    if len(out) > MAX_PARTS:
        out = out[:MAX_PARTS - 1] + ["".join(out[MAX_PARTS - 1:])]
    return out if len(out) > 1 else [question]
