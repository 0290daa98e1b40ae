"""The answer text: the chosen sentences with their [n] markers and citations, or the decline message."""
from __future__ import annotations

from ..lang import detect_lang
from ..types import Answer, Citation, Passage
from .candidates import Candidate

NOT_FOUND = {
    "zh": "在已索引的文章中没有找到这个问题的答案。",
    "en": "I could not find an answer to this question in the indexed articles.",
}
CROSS_NOTE = {"en": "(Quoted from Chinese-language sources.)", "zh": "（引自英文资料。）"}


def build_answer(question: str, picked: list[Candidate], passages: list[Passage], lang: str,
                 abstain: bool) -> Answer:
    if abstain or not picked:
        return Answer(question, NOT_FOUND.get(lang, NOT_FOUND["en"]), True, (), lang, tuple(passages))
    cits = []
    parts = []
    for n, c in enumerate(picked, 1):
        p = c.passage
        cits.append(Citation(n, p.article_id, p.title, p.url, p.published, p.text, c.text, c.start, c.end))
        parts.append(f"{c.text} [{n}]")
    langs = [detect_lang(c.text) for c in picked]
    text = "".join(p if i == 0 else ("" if lang == "zh" and langs[i] == "zh" else " ") + p for i, p in enumerate(parts))
    if lang != "zh" and all(x == "zh" for x in langs):
        text += " " + CROSS_NOTE["en"]
    elif lang == "zh" and all(x == "en" for x in langs):
        text += CROSS_NOTE["zh"]
    return Answer(question, text, False, tuple(cits), lang, tuple(passages))
