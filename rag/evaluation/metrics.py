"""Per-question scores (hit@k, MRR, answer-sentence hit, citation precision) and their aggregates."""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..lang import fold

MAX_RANK = 20  # retrieval depth for hit@k and MRR
_WS = re.compile(r"\s+")

@functools.lru_cache(maxsize=100_000)
def normalise(text: str) -> str:
    """Matching form: NFKC, lower case, Traditional folded to Simplified, all whitespace removed."""
    return _WS.sub("", fold(text))


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """True when some (non-empty) normalised answer is a substring of the normalised text."""
    t = normalise(text)
    return any(a and a in t for a in (normalise(x) for x in answers))


def passage_hits(passages: Sequence, answers: Sequence[str], article_id: str | None = None) -> list[bool]:
    """Per ranked passage: it contains a gold answer and, when the gold article is known, comes from it."""
    return [(article_id is None or p.article_id == article_id) and contains_answer(p.text, answers) for p in passages]


def first_hit_rank(passages: Sequence, answers: Sequence[str], article_id: str | None = None,
                   depth: int = MAX_RANK) -> int | None:
    """1-based rank of the first hit among the top `depth` passages, or None."""
    if not answers:
        return None
    for i, hit in enumerate(passage_hits(passages[:depth], answers, article_id), 1):
        if hit:
            return i
    return None


def hit_at(rank: int | None, k: int) -> bool:
    return rank is not None and rank <= k


def reciprocal_rank(rank: int | None, depth: int = MAX_RANK) -> float:
    return 1.0 / rank if rank is not None and rank <= depth else 0.0


def citation_correct(citation, answers: Sequence[str], article_id: str | None = None) -> bool:
    """A citation is correct when its sentence contains a gold answer, or when it cites the gold article
    and the passage it was taken from contains a gold answer (the sentence supports an answer-bearing passage). The
    gold article counts as cited when the citation names a copy of its story carrying the sentence (`also`:
    rag.index.dedup; citations name a story's representative)."""
    if contains_answer(citation.sentence, answers):
        return True
    cited = {citation.article_id} | {c.article_id for c in getattr(citation, "also", ())}
    return article_id is not None and article_id in cited and contains_answer(citation.passage, answers)


@dataclass(frozen=True)
class AnswerScores:
    sentence_hit: bool  # the first cited sentence contains a gold answer
    answer_hit: bool  # some cited sentence contains a gold answer
    citation_precision: float | None  # share of correct citations; None without citations
    length: int | None  # characters of the answer text; None when the system declined


def score_answer(answer, answers: Sequence[str], article_id: str | None = None) -> AnswerScores:
    cites = tuple(answer.citations or ())
    sentence_hits = [contains_answer(c.sentence, answers) for c in cites]
    precision = (sum(citation_correct(c, answers, article_id) for c in cites) / len(cites)) if cites else None
    return AnswerScores(
        sentence_hit=bool(sentence_hits and sentence_hits[0]),
        answer_hit=any(sentence_hits),
        citation_precision=precision,
        length=None if answer.abstained else len(answer.text),
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class QuestionResult:
    set: str
    id: str
    lang: str
    question: str
    answers: tuple[str, ...]
    unanswerable: bool
    article_id: str | None
    history_turns: int
    rank: int | None  # first retrieval hit in the top MAX_RANK
    retrieved: tuple[str, ...]  # article ids of the top 5 retrieved passages
    answer: str
    abstained: bool
    citations: int
    cited_articles: tuple[str, ...]
    sentence_hit: bool | None  # None for unanswerable questions
    answer_hit: bool | None
    citation_precision: float | None
    answer_len: int | None
    ask_ms: float | None
    retrieve_ms: float | None
    error: str = ""


@dataclass(frozen=True)
class Scores:
    """Aggregates for one group of questions; a rate is None when no question in the group can have it."""

    n: int
    answerable: int
    unanswerable: int
    hit1: float | None
    hit5: float | None
    hit20: float | None
    mrr: float | None
    ans_sent_hit: float | None
    ans_hit: float | None
    cit_precision: float | None  # mean over answerable questions with at least one citation
    avg_len: float | None  # mean answer length over questions the system answered
    abstain_correct: float | None  # unanswerable questions declined
    wrong_decline: float | None  # answerable questions declined
    p50_ms: float | None  # latency of ask()
    p95_ms: float | None
    errors: int = 0
    hit_curve: tuple[float, ...] = field(default=(), repr=False)  # hit@k for k = 1..MAX_RANK


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def aggregate(results: Sequence[QuestionResult]) -> Scores:
    ans = [r for r in results if not r.unanswerable]
    una = [r for r in results if r.unanswerable]
    lat = [r.ask_ms for r in results if r.ask_ms is not None and not r.error]
    curve = tuple(_mean([float(hit_at(r.rank, k)) for r in ans]) for k in range(1, MAX_RANK + 1)) if ans else ()
    return Scores(
        n=len(results),
        answerable=len(ans),
        unanswerable=len(una),
        hit1=_mean([float(hit_at(r.rank, 1)) for r in ans]),
        hit5=_mean([float(hit_at(r.rank, 5)) for r in ans]),
        hit20=_mean([float(hit_at(r.rank, 20)) for r in ans]),
        mrr=_mean([reciprocal_rank(r.rank) for r in ans]),
        ans_sent_hit=_mean([float(bool(r.sentence_hit)) for r in ans]),
        ans_hit=_mean([float(bool(r.answer_hit)) for r in ans]),
        cit_precision=_mean([r.citation_precision for r in ans if r.citation_precision is not None]),
        avg_len=_mean([float(r.answer_len) for r in results if r.answer_len is not None]),
        abstain_correct=_mean([float(r.abstained) for r in una]),
        wrong_decline=_mean([float(r.abstained) for r in ans]),
        p50_ms=percentile(lat, 50),
        p95_ms=percentile(lat, 95),
        errors=sum(1 for r in results if r.error),
        hit_curve=curve,
    )


def group_results(results: Sequence[QuestionResult]) -> dict[str, Scores]:
    """Rows: each set, set/lang when a set mixes languages, then `all` and all/lang when there are several sets."""
    groups: dict[str, list[QuestionResult]] = {}
    for r in results:
        groups.setdefault(r.set, []).append(r)
    out: dict[str, Scores] = {}
    for name, rs in groups.items():
        out[name] = aggregate(rs)
        langs = sorted({r.lang for r in rs})
        if len(langs) > 1:
            for lang in langs:
                out[f"{name}/{lang}"] = aggregate([r for r in rs if r.lang == lang])
    if len(groups) > 1:
        out["all"] = aggregate(results)
        for lang in sorted({r.lang for r in results}):
            out[f"all/{lang}"] = aggregate([r for r in results if r.lang == lang])
    return out


# ---------------------------------------------------------------- runner


@dataclass(frozen=True)
class EvalRun:
    out_dir: str
    meta: dict
    groups: dict[str, Scores]
    results: tuple[QuestionResult, ...]
    errors: tuple[str, ...]  # bad question-set files/lines and failed questions

    @property
    def files(self) -> dict[str, str]:
        d = Path(self.out_dir)
        return {name: str(d / name) for name in ("report.md", "report.json", "hit_at_k.png", "latency.png")}
