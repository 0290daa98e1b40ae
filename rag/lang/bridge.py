"""Cross-lingual bridge: an English question's words mapped to the corpus's Chinese words by embedding similarity."""
from __future__ import annotations

import re

import numpy as np

from .text import CJK_RE, QUESTION_STOP, fold, load_jieba

WORD = re.compile(r"[^\W\d_][\w'\-]*", re.UNICODE)


def question_words(question: str) -> list[str]:
    """Content words of an English question, in order, once each."""
    seen: set[str] = set()
    out = []
    for w in (w.strip("'-") for w in WORD.findall(question)):
        if len(w) > 1 and w.lower() not in QUESTION_STOP and not CJK_RE.search(w) and w.lower() not in seen:
            seen.add(w.lower())
            out.append(w)
    return out


def corpus_words(text: str) -> set[str]:
    """Chinese words (jieba, two or more characters) of a text, folded to Simplified."""
    return {w for w in load_jieba().lcut(fold(text)) if len(w) >= 2 and CJK_RE.search(w)}


def term_weight(similarity: float) -> float:
    """How much a bridged word counts beside the question's own words: a loose match ("Nobel" -> 贝尔纳, 0.55) far
    less than a close one ("Tuesday" -> 星期二, 0.82)."""
    return float(np.clip((similarity - 0.45) / 0.3, 0.2, 1.0))
