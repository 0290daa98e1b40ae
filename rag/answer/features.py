"""The ranker's features of each candidate sentence against the question."""
from __future__ import annotations

import math
import re

import numpy as np

from ..lang import SOUND_RUN, answer_kinds as kinds, bigram_tokens, detect_lang, fold, term_weight
from ..models import (
    FEATURES,
)
from .candidates import Candidate

_DIGIT = re.compile(r"\d|[一二三四五六七八九十百千万亿两]")
_YEAR = re.compile(r"\d{2,4}\s*年|\d{4}|世纪|年代|月|日|星期|周[一二三四五六日]")
_Q_NUM = re.compile(r"多少|几|多大|多长|多高|多重|多远|多久|数量|人数|比例|百分|how (many|much|long|old|far|large|big|tall|high)|what (percentage|number)", re.I)
_Q_TIME = re.compile(r"哪一?年|何时|什么时候|哪个时候|哪天|哪一天|日期|时间|年代|世纪|\b(when|(what|which) years?|what date)\b", re.I)
_Q_WORDS = re.compile(
    r"什么时候|为什么|怎么样|怎么|如何|哪一年|哪一个|哪一些|哪个|哪些|哪里|哪儿|哪|什么|多少|是谁|谁|几|吗|呢|？|\?|"
    r"\b(what|which|who|whom|whose|when|where|why|how)\b", re.I)


_KINDS_AT = FEATURES.index("who_ok")  # the features of rag.lang.answer_kinds come last

def query_terms(question: str, bridge: list[str] | tuple = ()) -> list[str]:
    """Lexical terms of a question, plus those of corpus words bridged from an English question (rag.lang.bridge)."""
    q = _Q_WORDS.sub(" ", fold(question))
    return list(dict.fromkeys(bigram_tokens(q) + [t for w in bridge for t in bigram_tokens(fold(w))]))



def features(question: str, cands: list[Candidate], idf: dict[str, float], dense: np.ndarray | None,
             topic_share: float = 0.5, bridge: dict[str, float] | None = None) -> np.ndarray:
    """One row of FEATURES per candidate sentence (`bridge`: Chinese words standing in for an English question's,
    with their cosine)."""
    own = query_terms(question)
    loose: dict[str, float] = {}  # terms only a bridged word brings count by that word's cosine
    for w, sim in (bridge or {}).items():
        for t in bigram_tokens(fold(w)):
            loose[t] = max(loose.get(t, 0.0), term_weight(sim))
    terms = list(dict.fromkeys(own + list(loose)))
    own_set = set(own)
    weight = {t: idf.get(t, 1.0) * (1.0 if t in own_set else loose[t]) for t in terms}
    folded = [fold(c.text) for c in cands]  # the type patterns below are Simplified, like the folded text
    toksets = [set(bigram_tokens(f)) for f in folded]
    qlang = detect_lang(question)
    # A Chinese question's English glosses (rag.lang.dictionary) count in English sentences only: in Chinese ones they
    # would only dilute the question's own terms. An English question's bridged words count everywhere.
    own_weight = weight if qlang == "en" else {t: w for t, w in weight.items() if t in own_set}
    # Topic terms of an article (its title, or terms in most of its sentences) hold for every sentence of it, even
    # where the subject is left out ("此外，更在1982年..."): they rank articles but must not pick the sentence.
    by_article: dict[str, list[int]] = {}
    for i, c in enumerate(cands):
        by_article.setdefault(c.passage.article_id, []).append(i)
    topic: dict[str, set[str]] = {}
    for aid, idxs in by_article.items():
        title = set(bigram_tokens(fold(cands[idxs[0]].passage.title)))
        common = set()
        if len(idxs) >= 3:
            common = {t for t in terms if sum(1 for i in idxs if t in toksets[i]) >= topic_share * len(idxs)}
        topic[aid] = (title & set(terms)) | common
    latin_q = {t for t in own if t.isascii()}
    if qlang == "en" and latin_q:
        # An English name the question spells is glossed once, at its first mention ("安东尼·布林肯（Antony
        # Blinken）"), and written in Chinese after that: every sentence naming 布林肯 mentions Blinken.
        for aid, idxs in by_article.items():
            alias = name_glosses([p.text for p in dict.fromkeys(cands[i].passage for i in idxs)], latin_q)
            for i in idxs:
                extra = {t for zh, ts in alias.items() if zh in cands[i].text for t in ts} - toksets[i]
                if extra:
                    toksets[i] |= extra
                    folded[i] += " " + " ".join(sorted(extra))
    fq = fold(question)
    wants_num, wants_time = bool(_Q_NUM.search(fq)), bool(_Q_TIME.search(fq))
    qcore, focus = _core_and_focus(question)
    wanted = kinds.asked(fq)
    dense = np.zeros(len(cands)) if dense is None else np.asarray(dense, dtype=np.float64)
    dmax = float(dense.max()) if len(dense) else 0.0
    pmax = max((c.passage.score for c in cands), default=0.0) or 1.0
    disc = np.zeros(len(cands))
    rows = np.zeros((len(cands), len(FEATURES)))
    for i, c in enumerate(cands):
        toks, tp = toksets[i], topic[c.passage.article_id]
        cross = crosses(qlang, c.text)
        w_i = weight if cross else own_weight
        lex = sum(w for t, w in w_i.items() if t in toks or t in tp) / (sum(w_i.values()) or 1.0)
        rest = {t: w for t, w in w_i.items() if t not in tp}
        rest_total = sum(rest.values())
        disc[i] = sum(w for t, w in rest.items() if t in toks) / rest_total if rest_total else 0.0
        has_time, has_num = bool(_YEAR.search(folded[i])), bool(_DIGIT.search(folded[i]))
        type_ok = float((wants_time and has_time) or (wants_num and not wants_time and has_num))
        type_miss = float((wants_time and not has_time) or (wants_num and not has_num))
        novel = len(toks - set(terms)) / max(1, len(toks))
        latin = len(latin_q & toks) / len(latin_q) if latin_q else 0.0
        rows[i, :_KINDS_AT] = (
            lex, disc[i], dense[i], dense[i] - dmax, 1.0 / (1 + c.rank), c.passage.score / pmax, type_ok, type_miss,
            0.0, 0.0, math.log1p(len(c.text)), novel, float(c.start == c.passage.start), float(cross),
            cross * dense[i], cross * (dense[i] - dmax), cross * latin, cross * type_ok, cross * lex, 0.0, 0.0, 0.0,
            len(focus & toks) / len(focus) if focus else 0.0)
        run = _longest_shared_run(qcore, folded[i])
        rows[i, 19:21] = run / max(1, len(qcore)), math.log1p(run)
        # The answer to "who/where/which company" is a name the question does not hold; numbers the question
        # names ("第 33 届") are repeated by the sentence that answers it.
        names = kinds.named(c.text, wanted, fq)
        nums = kinds.number_match(fq, folded[i])
        rows[i, _KINDS_AT:] = ("person" in wanted and "person" in names, "person" in wanted and "person" not in names,
                               "place" in wanted and "place" in names, "place" in wanted and "place" not in names,
                               "org" in wanted and "org" in names, nums or 0.0, nums == 0.0)
    if len(cands):
        rows[:, 21] = rows[:, 19] - rows[:, 19].max()
    # The answer often sits next to the sentence that restates the question: neighbours' overlap is evidence.
    for i, c in enumerate(cands):
        if i > 0 and cands[i - 1].passage is c.passage:
            rows[i, 8] = disc[i - 1]
        if i + 1 < len(cands) and cands[i + 1].passage is c.passage:
            rows[i, 9] = disc[i + 1]
    return rows


_TRAILING_SOUND = re.compile(SOUND_RUN.pattern + "$")
_GLOSS = re.compile(r"([\u4e00-\u9fff][\u4e00-\u9fff·・]*)\s*[（(]\s*([A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f .'’\-]{0,60}?)\s*[）)]")


def name_glosses(texts: list[str], wanted: set[str]) -> dict[str, set[str]]:
    """Chinese names glossed with their Latin spelling in `texts`, as {Chinese name: its folded Latin terms among
    `wanted`}: "国务卿安东尼·布林肯（Antony Blinken）" -> {"布林肯": {"blinken"}} when the question asks about
    Blinken. The name is the part after the last "·", else the run of transliteration characters (rag.lang.names)
    before the bracket."""
    out: dict[str, set[str]] = {}
    for text in texts:
        for m in _GLOSS.finditer(text):
            terms = set(bigram_tokens(fold(m.group(2)))) & wanted
            if not terms:
                continue
            parts = [x for x in re.split("[·・]", m.group(1)) if x]
            if len(parts) > 1:
                names = parts[-1:]
            else:
                m2 = _TRAILING_SOUND.search(parts[0])
                names = [m2.group()] if m2 else []
            for zh in names:
                if len(zh) >= 2:
                    out.setdefault(zh, set()).update(terms)
    return out


def crosses(question_lang: str, sentence: str) -> bool:
    """A question over a sentence in the other language (English over Chinese, Chinese over English): the
    cross-lingual answer features."""
    return detect_lang(sentence) != question_lang


def _core_and_focus(question: str) -> tuple[str, set[str]]:
    """The question without its question words, and the terms right next to them (the asked-about thing:
    "花冠是什么颜色" -> 花冠, 颜色), which the answer sentence tends to repeat."""
    fq = fold(question)
    core = "".join(p.strip() for p in _Q_WORDS.split(fq) if p and p.strip())
    focus: set[str] = set()
    for m in _Q_WORDS.finditer(fq):
        for seg in (fq[max(0, m.start() - 3) : m.start()], fq[m.end() : m.end() + 3]):
            focus.update(bigram_tokens(seg.strip()))
    return core, focus


def _longest_shared_run(q: str, s: str) -> int:
    """Length of the longest substring of `q` that occurs in `s` (binary search; `in` runs in C)."""
    lo, hi = 0, min(len(q), len(s), 64)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if any(q[i : i + mid] in s for i in range(len(q) - mid + 1)):
            lo = mid
        else:
            hi = mid - 1
    return lo



def idf_table(terms: list[str], df: dict[str, int], n_docs: int) -> dict[str, float]:
    return {t: math.log(1.0 + (n_docs - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in terms}
