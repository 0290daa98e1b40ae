"""The answer text: the chosen sentences with their [n] markers and citations, or the decline message."""
from __future__ import annotations

import difflib
import unicodedata

from ..lang import detect_lang
from ..types import Answer, Citation, Passage, StoryCopy
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


PASSAGE_MARGIN = 200  # characters around a sentence quoted from a story's representative, as its passage
SAME_SENTENCE = 0.8  # two sentences of one story this alike (difflib ratio, letters and digits) are quoted once


def _plain(text: str) -> str:
    """Letters and digits only (rag.index.dedup.normalise): a sentence is found in a copy whatever its spacing."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text or "").casefold() if ch.isalnum())


def cite(n: int, c: Candidate, stories: dict, texts: dict) -> Citation:
    """Citation `n` of candidate `c`. When the sentence's article shares its story with others (rag.index.dedup):
    the story's representative is cited if its text holds the sentence, and the other copies holding it are
    listed (`also`)."""
    p = c.passage
    copies: tuple[StoryCopy, ...] = stories.get(p.article_id, ())
    if not copies:
        return Citation(n, p.article_id, p.title, p.url, p.published, p.text, c.text, c.start, c.end,
                        date_from_text=p.date_from_text)
    aid, title, url, published, passage, start, end = (p.article_id, p.title, p.url, p.published, p.text, c.start,
                                                       c.end)
    derived = p.date_from_text
    rep = copies[0]
    text = texts.get(rep.article_id, "")
    i = text.find(c.text) if rep.article_id != aid and text else -1
    if i >= 0:
        aid, title, url, published, start, end = rep.article_id, rep.title, rep.url, rep.published, i, i + len(c.text)
        derived = rep.date_from_text
        if passage not in text:
            passage = text[max(0, i - PASSAGE_MARGIN): end + PASSAGE_MARGIN]
    plain = _plain(c.text)
    also = tuple(x for x in copies if x.article_id != aid and plain and plain in _plain(texts.get(x.article_id, "")))
    return Citation(n, aid, title, url, published, passage, c.text, start, end, len(also), also, len(copies),
                    derived)


def build_answer(question: str, picked: list[Candidate], passages: list[Passage], lang: str,
                 abstain: bool, dated: bool = False, stories: dict | None = None,
                 texts: dict | None = None) -> Answer:
    """The answer text and citations for the `picked` sentences, or the decline message. `dated` (the question is
    about time): each sentence from another article than the one before opens with that article's date.
    `stories`/`texts` (rag.answer.Evidence): the near-duplicate stories of the passages' articles, and their
    copies' texts: a story is cited by its representative, with the other copies that carry the sentence, and a
    sentence one citation already quotes from the same story (or a copy's version of it) is not repeated."""
    if abstain or not picked:
        return Answer(question, NOT_FOUND.get(lang, NOT_FOUND["en"]), True, (), lang, tuple(passages))
    stories, texts = stories or {}, texts or {}
    cits: list[Citation] = []
    parts = []
    quoted: dict[str, list[str]] = {}  # a story's representative -> its sentences already cited
    kept = []
    for c in picked:
        cit = cite(len(cits) + 1, c, stories, texts)
        if stories.get(c.passage.article_id):  # a copy's version of a sentence already quoted is left out
            plain, done = _plain(c.text), quoted.setdefault(stories[c.passage.article_id][0].article_id, [])
            if any(plain == q or difflib.SequenceMatcher(None, plain, q, autojunk=False).ratio() >= SAME_SENTENCE
                   for q in done):
                continue
            done.append(plain)
        n = cit.number
        same = bool(cits) and cits[-1].article_id == cit.article_id
        note = date_note(cit.published, lang) if dated and not same else ""
        cits.append(cit)
        kept.append(c)
        parts.append(f"{note}{c.text} [{n}]")
    picked = kept
    langs = [detect_lang(c.text) for c in picked]
    text = "".join(p if i == 0 else ("" if lang == "zh" and langs[i] == "zh" else " ") + p for i, p in enumerate(parts))
    if lang != "zh" and all(x == "zh" for x in langs):
        text += " " + CROSS_NOTE["en"]
    elif lang == "zh" and all(x == "en" for x in langs):
        text += CROSS_NOTE["zh"]
    return Answer(question, text, False, tuple(cits), lang, tuple(passages))
