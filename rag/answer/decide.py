"""Decisions over scored candidates: order, re-read, re-score, select, and when to decline."""
from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from typing import Callable

import numpy as np

from ..lang import detect_lang
from ..lang.when import DateRange, date_evidence, published_date
from ..models import (
    FEATURES,
    get_ranker,
)
from ..types import Passage
from .candidates import Candidate
from .config import AnswerConfig, Thresholds

READ_TOP = 3  # sentences read for the confidence when the ranker has no reread head

def rank(cands: list[Candidate], feats: np.ndarray, cfg: AnswerConfig) -> list[Candidate]:
    """Each candidate with its probability of holding the answer."""
    if not cands:
        return []
    r = get_ranker(cfg.ranker)
    prob = 1.0 / (1.0 + np.exp(-(feats @ r.weights + r.bias)))
    order = r.order_scores(feats)
    return [dataclasses.replace(c, score=float(p), order=float(o)) for c, p, o in zip(cands, prob, order)]


def to_read(scored: list[Candidate], cfg: AnswerConfig) -> list[Candidate]:
    """The sentences the reader reads: the ranker's `top` best by order."""
    return sorted(scored, key=lambda c: -c.order)[: get_ranker(cfg.ranker).reread_top or READ_TOP]


def wants_reorder(scored: list[Candidate], cfg: AnswerConfig) -> bool:
    """Whether the reader's view of the best sentences would be used to re-order them: only when the order
    head's best two are closer than the ranker's margin (else the order head is about as right alone)."""
    r = get_ranker(cfg.ranker)
    if r.reread is None or r.reader != cfg.reader or len(scored) < 2:
        return False
    return top_gap(scored) < r.reread_margin


def top_gap(scored: list[Candidate]) -> float:
    """How far the order head's best sentence is ahead of its second (two or more candidates)."""
    first, second = sorted((c.order for c in scored), reverse=True)[:2]
    return first - second


def wants_reading_for_confidence(sure: float, th: Thresholds) -> bool:
    """Whether the confidence falls inside the band where the reader's view decides."""
    low, high = th.read_band
    return low <= sure < high


def reread(scored: list[Candidate], sims: np.ndarray, cfg: AnswerConfig) -> list[Candidate]:
    """The candidates with the `to_read` ones re-ordered by the reread head given the reader's cosines `sims`
    (in `to_read` order); the rest keep their order below them."""
    r = get_ranker(cfg.ranker)
    n = min(len(scored), r.reread_top or READ_TOP)
    if r.reread is None or len(sims) != n:
        raise ValueError(f"reread needs the ranker's reread head and one cosine per sentence read ({n})")
    ranked = sorted(scored, key=lambda c: -c.order)
    return _reordered(ranked, reread_features([c.order for c in ranked[:n]], sims) @ r.reread)


def _reordered(ranked: list[Candidate], new: np.ndarray) -> list[Candidate]:
    """`ranked` (by order) with its first len(new) candidates given the orders `new`, the rest below them in their
    old order."""
    n = len(new)
    floor = float(new.min()) if n else 0.0
    out = [dataclasses.replace(c, order=float(o)) for c, o in zip(ranked[:n], new)]
    return out + [dataclasses.replace(c, order=floor - 1.0 - i) for i, c in enumerate(ranked[n:])]


def to_rescore(scored: list[Candidate], cfg: AnswerConfig, question_lang: str = "zh") -> list[Candidate]:
    """The sentences the re-reader reads: the order head's `reach.top` best, those within `reach.window` of the
    first (`cfg.reach(question_lang)`)."""
    reach = cfg.reach(question_lang)
    best = sorted(scored, key=lambda c: -c.order)[:reach.top]
    return [c for c in best if best[0].order - c.order < reach.window]


def wants_rescore(scored: list[Candidate], cfg: AnswerConfig, question_lang: str) -> bool:
    """Whether the re-reader reads: it is on, the reader is not "none" (the ranker alone), the order head's best
    two are closer than its reach's margin, and it is not an English
    question with an English sentence among those it would read: it never learned English over English (mixed pool,
    xquad-en-en ans-sent hit 74.8 with the reader's reread head, 73.7 with it), so there the reader re-orders as
    before."""
    if not cfg.rereader or cfg.reader == "none" or len(scored) < 2 or top_gap(scored) >= cfg.reach(question_lang).margin:
        return False
    return question_lang != "en" or all(detect_lang(c.text) != "en" for c in to_rescore(scored, cfg, question_lang))


def rescore(scored: list[Candidate], scores: np.ndarray, cfg: AnswerConfig,
            question_lang: str = "zh", glossed: np.ndarray | None = None) -> list[Candidate]:
    """The candidates with the `to_rescore` ones ordered by order + rereader_weight * the re-reader's `scores` (in
    `to_rescore` order) + rereader_gloss_weight * `glossed` (an English question's gloss overlap with them, if
    given); the rest keep their order below them."""
    n = len(to_rescore(scored, cfg, question_lang))
    if len(scores) != n:
        raise ValueError(f"rescore needs one re-reader score per sentence read ({n}), got {len(scores)}")
    if glossed is not None and len(glossed) != n:
        raise ValueError(f"rescore needs one gloss overlap per sentence read ({n}), got {len(glossed)}")
    ranked = sorted(scored, key=lambda c: -c.order)
    new = np.array([c.order for c in ranked[:n]]) + cfg.rereader_weight * np.asarray(scores, dtype=np.float64)
    if glossed is not None:
        new = new + cfg.rereader_gloss_weight * np.asarray(glossed, dtype=np.float64)
    return _reordered(ranked, new)


def declines(sure: float, best_read: float | None, th: Thresholds, names_score: float | None = None,
             names_missing: bool | Callable[[], bool] = False) -> bool:
    """Whether to decline under thresholds `th` (see Thresholds), given the confidence `sure` and the reader's best
    cosine (None: not read). `names_score`: a stricter min_read_score for when the cited article mentions none of
    the question's names (`names_missing`, a bool or a function called only when the answer depends on it)."""
    if best_read is None:
        return sure < th.min_confidence
    if not th.read_band[0] <= sure < th.read_band[1]:
        return sure < th.read_band[0]
    p = min(max(sure, 1e-6), 1 - 1e-6)
    threshold = th.min_read_score
    if names_score is not None and (names_missing() if callable(names_missing) else names_missing):
        threshold = max(threshold, names_score)
    return math.log(p / (1 - p)) + th.reader_weight * best_read < threshold


def article_texts(passages: list[Passage], article_id: str) -> list[str]:
    """The title and the retrieved passages of one article: what a decline check may read of it."""
    ps = [p for p in passages if p.article_id == article_id]
    return [ps[0].title] + [p.text for p in ps] if ps else []


_YEAR_IN_Q = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?![\d多余])")  # "2000多年" is a duration
_CN_DIGITS = str.maketrans("零〇○一二三四五六七八九", "000123456789")
_CN_YEAR = re.compile(r"[零〇○一二三四五六七八九]{4}(?=年)")
_DECADE = re.compile(r"(1[5-9]|2[01])(?:世纪|世紀)([1-9]0)年代")


def _years_written(text: str) -> str:
    """`text` plus its years spelled another way, as digits: "二零零五年" -> 2005, "20世纪50年代" -> 1950."""
    extra = [m.group().translate(_CN_DIGITS) for m in _CN_YEAR.finditer(text)]
    extra += [f"{int(m.group(1)) - 1}{m.group(2)}" for m in _DECADE.finditer(text)]
    return " ".join([text, *extra])


def tied(question_lang: str, cands: list[Candidate], feats: np.ndarray) -> np.ndarray:
    """Which candidates to keep: for a Chinese question, an English sentence only when some sentence of its article
    shares a term with the question (`feats`' lex > 0: one of its English glosses, Latin words or numbers). The
    reader's cosines between Chinese and English run high even for unrelated texts, and without a shared term the
    cross-lingual features rank an unrelated English sentence on similarity alone."""
    keep = np.ones(len(cands), dtype=bool)
    if question_lang != "zh":
        return keep
    lex, cross = FEATURES.index("lex"), FEATURES.index("cross")  # cross: for a Chinese question, an English sentence
    with_term = {c.passage.article_id for i, c in enumerate(cands) if feats[i, lex] > 0}
    for i, c in enumerate(cands):
        keep[i] = c.passage.article_id in with_term or not feats[i, cross]
    return keep


def misses_year(question: str, passages: list[Passage], article_id: str | None = None) -> bool:
    """Whether the question names a year (1500-2099) that the passages of `article_id` (all passages when None),
    their title and their article's publication year all lack: a passage about the asked event almost always
    states its year (eval/README.md)."""
    years = set(_YEAR_IN_Q.findall(unicodedata.normalize("NFKC", question)))
    if not years:
        return False
    ps = [p for p in passages if article_id is None or p.article_id == article_id]
    where = " ".join(f"{p.title} {p.published[:4]} {p.text}" for p in ps)
    where = _years_written(unicodedata.normalize("NFKC", where))
    return not any(y in where for y in years)


def reread_features(order, sims) -> np.ndarray:
    o, e = np.asarray(order, dtype=np.float64), np.asarray(sims, dtype=np.float64)
    return np.stack([o, o - o.max(), e, e - e.max(), (e - e.mean()) / (e.std() + 1e-3)], axis=1)


def confidence(scored: list[Candidate]) -> float:
    """How sure `ask` is that the passages answer at all: the best probability of any candidate (measured better
    than the first-ranked sentence's own probability at telling unanswerable questions apart)."""
    return max((c.score for c in scored), default=0.0)


def select(scored: list[Candidate], cfg: AnswerConfig) -> list[Candidate]:
    """The best sentence by the order head, then up to two more whose probability is close to the confidence."""
    if not scored:
        return []
    ranked = sorted(scored, key=lambda c: -c.order)
    best = ranked[0]
    picked = [best]
    floor = cfg.extra_ratio * confidence(scored)
    for c in ranked[1:]:
        if len(picked) >= cfg.max_sentences:
            break
        if c.score < floor:
            continue
        if any(c.text in p.text or p.text in c.text for p in picked):
            continue
        picked.append(c)
    rest = sorted(picked[1:], key=lambda c: (c.passage.article_id != best.passage.article_id, c.passage.article_id, c.start))
    return [best] + rest


def by_date(scored: list[Candidate], when: DateRange, ratio: float) -> list[Candidate]:
    """`scored` with, among the candidates whose probability is at least `ratio` of the best, the one that fits the
    question's dates best ordered first: from an article of the asked days, else one stating them
    (rag.lang.when.date_evidence), and for a question asking for the latest from the newest article dated by `now`;
    the order head decides among equals. Unchanged when the order head's first already fits best."""
    if not scored:
        return scored
    floor = ratio * max(c.score for c in scored)
    fits: dict[int, tuple] = {}

    def fit(c: Candidate) -> tuple:
        p = c.passage
        if p.chunk_id not in fits:
            day = published_date(p.published)
            newest = day.toordinal() if when.latest and day is not None and day <= when.now else 0
            fits[p.chunk_id] = (date_evidence(when, f"{p.title}\n{p.text}", day, 0.5), newest)
        return fits[p.chunk_id]

    first = max(scored, key=lambda c: c.order)
    lead = max((c for c in scored if c.score >= floor), key=lambda c: (fit(c), c.order), default=first)
    if lead is first or fit(lead) <= fit(first):
        return scored
    return [dataclasses.replace(c, order=first.order + 1.0) if c is lead else c for c in scored]
