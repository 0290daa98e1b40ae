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


def date_note(published: str, lang: str) -> str:
    """What goes before a quoted sentence to say its article's date: "（2023-07-28）", "(2023-07-28) "."""
    if not published[:10]:
        return ""
    return f"（{published[:10]}）" if lang == "zh" else f"({published[:10]}) "


def build_answer(question: str, picked: list[Candidate], passages: list[Passage], lang: str,
                 abstain: bool, dated: bool = False) -> Answer:
    """The answer text and citations for the `picked` sentences, or the decline message. `dated` (the question is
    about time): each sentence from another article than the one before opens with that article's date."""
    if abstain or not picked:
        return Answer(question, NOT_FOUND.get(lang, NOT_FOUND["en"]), True, (), lang, tuple(passages))
    cits = []
    parts = []
    for n, c in enumerate(picked, 1):
        p = c.passage
        cits.append(Citation(n, p.article_id, p.title, p.url, p.published, p.text, c.text, c.start, c.end))
        same = n > 1 and picked[n - 2].passage.article_id == p.article_id
        note = date_note(p.published, lang) if dated and not same else ""
        parts.append(f"{note}{c.text} [{n}]")
    langs = [detect_lang(c.text) for c in picked]
    text = "".join(p if i == 0 else ("" if lang == "zh" and langs[i] == "zh" else " ") + p for i, p in enumerate(parts))
    if lang != "zh" and all(x == "zh" for x in langs):
        text += " " + CROSS_NOTE["en"]
    elif lang == "zh" and all(x == "en" for x in langs):
        text += CROSS_NOTE["zh"]
    return Answer(question, text, False, tuple(cits), lang, tuple(passages))
