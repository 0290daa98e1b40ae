"""What kind of answer a question asks for (a person, a place, an organisation) and which sentences name one."""
from __future__ import annotations

import functools
import re

from .text import CJK_RE, fold, load_jieba

WHO = re.compile(r"谁|哪位|哪个人|什么人|哪些人|何人|\bwho(m|se)?\b", re.I)
WHERE = re.compile(r"哪里|哪儿|何处|哪个(国家|城市|地方|省|州|地区|县|镇)|哪(国|座城|一国)|什么地方|\bwhere\b|"
                   r"which (country|city|state|region|place)", re.I)
ORG = re.compile(r"哪(家|个)(公司|组织|机构|大学|学校|团体|球队|部门|政党|企业)|哪支|哪所|"
                 r"(which|what) (company|organization|team|university|school|party|agency|group)", re.I)
NUMBER = re.compile(r"\d+(?:\.\d+)?")
_TAGS = {"person": ("nr", "nrfg", "nrt"), "place": ("ns",), "org": ("nt", "nz")}
_TRANSLITERATED = re.compile(r"[\u3400-\u9fff]·[\u3400-\u9fff]")  # 玛丽·麦特琳
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")


def asked(question: str) -> set[str]:
    """The kinds of name the question asks for: "person", "place" and/or "org". Input must be folded."""
    return {k for k, pat in (("person", WHO), ("place", WHERE), ("org", ORG)) if pat.search(question)}


@functools.lru_cache(maxsize=20_000)
def _tagged(sentence: str) -> tuple[tuple[str, str], ...]:
    import jieba.posseg

    load_jieba()
    return tuple((w, t) for w, t in jieba.posseg.lcut(sentence))


def named(sentence: str, kinds: set[str], question: str) -> set[str]:
    """Which of `kinds` the sentence names with words the folded `question` lacks: for Chinese, by jieba's
    part-of-speech tags of the folded sentence or a "·" between Chinese names (a person); for English, any kind by a
    capitalised word inside the sentence."""
    if not kinds:
        return set()
    found: set[str] = set()
    if not CJK_RE.search(sentence):
        if any(m.group().lower() not in question for m in _CAPITALISED.finditer(sentence)):
            found |= kinds
        return found
    folded = fold(sentence)
    if "person" in kinds and _TRANSLITERATED.search(folded):
        found.add("person")
    for w, t in _tagged(folded):
        if len(w) < 2 or w in question:
            continue
        for k in kinds - found:
            if t in _TAGS[k]:
                found.add(k)
    return found


def number_match(question: str, sentence: str) -> float | None:
    """Share of the numbers in the folded question that the folded sentence repeats; None when it has none."""
    qn = set(NUMBER.findall(question))
    if not qn:
        return None
    return len(qn & set(NUMBER.findall(sentence))) / len(qn)
