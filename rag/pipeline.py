"""`retrieve()` and `ask()`: the two calls the CLI, the UI and eval stand on."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from .answer import (FEATURES, AnswerConfig, Candidate, build_answer, candidates, features, idf_table, query_terms,
                     rank, select)
from .retrieval import DEFAULT_FUSION, Fusion, Searcher, searcher
from .text import clean, detect_lang
from .types import Answer, Embedder, Passage

MAX_QUESTION_CHARS = 1000
DEFAULT_ANSWER = AnswerConfig()

# Words that point back to an earlier turn ("he", "there", "该公司"...): the question needs its history.
_ANAPHORA = re.compile(
    r"他们|她们|它们|他|她|它|其|该|此|这个|那个|这些|那些|那里|那儿|这里|当时|对方|此后|之后|后来|同时|"
    r"\b(he|she|it|they|them|his|her|its|their|there|that|this|those|these|then)\b", re.I)


def _check_question(question) -> str:
    if not isinstance(question, str):
        raise TypeError(f"question must be a string, got {type(question).__name__}")
    q = clean(question).strip()
    if not q:
        raise ValueError("question is empty")
    return q[:MAX_QUESTION_CHARS]


def _resolve_index(index) -> Searcher:
    if index is None:
        from .indexer import default_index_dir

        index = default_index_dir()
    return searcher(index)


def contextualise(question: str, history: list[tuple[str, str]] | None) -> tuple[str, str]:
    """(query for retrieval, question for sentence scoring): a short or anaphoric follow-up borrows the last turn."""
    if not history:
        return question, question
    prev_q = str(history[-1][0]) if history[-1] else ""
    if not prev_q:
        return question, question
    # A follow-up points back ("他在那里见了谁？") or is too short to stand alone ("那2023年呢？").
    if _ANAPHORA.search(question) or len(query_terms(question)) <= 2:
        return f"{prev_q} {question}", question + " " + prev_q
    return question, question


def retrieve(question: str, index=None, k: int = 5, *, date_from: str | None = None, date_to: str | None = None,
             source: str | None = None, fusion: Fusion = DEFAULT_FUSION) -> list[Passage]:
    """The `k` best passages for `question`, best first."""
    q = _check_question(question)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return _resolve_index(index).search(q, k, fusion, date_from, date_to, source)


@dataclass(frozen=True)
class Evidence:
    """What `ask` reads before it chooses: the retrieved passages and their candidate sentences with features."""

    question: str
    lang: str
    passages: list[Passage]
    candidates: list[Candidate]
    features: np.ndarray


def gather(question: str, index=None, k: int = 5, *, history=None, date_from=None, date_to=None, source=None,
           fusion: Fusion = DEFAULT_FUSION, config: AnswerConfig = DEFAULT_ANSWER) -> Evidence:
    q = _check_question(question)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    s = _resolve_index(index)
    lang = detect_lang(q)
    query, scoring_q = contextualise(q, history)
    qvec = s.embedder.embed_queries([query])[0]
    idx = s.refresh()  # one generation for passages and IDF alike, even if a writer publishes meanwhile
    passages = s.search(query, max(k, 5), fusion, date_from, date_to, source, qvec=qvec, idx=idx)
    cands = candidates(passages[:k])
    if not cands:
        return Evidence(q, lang, passages, [], np.zeros((0, len(FEATURES))))
    dense = _sentence_similarity(s.embedder, scoring_q if scoring_q != q else None, qvec, [c.text for c in cands])
    terms = query_terms(scoring_q)
    idf = idf_table(terms, idx.doc_freq(terms), idx.manifest.chunks)
    return Evidence(q, lang, passages, cands, features(scoring_q, cands, idf, dense, config.topic_share))


def ask(question: str, index=None, k: int = 5, *, history: list[tuple[str, str]] | None = None,
        date_from: str | None = None, date_to: str | None = None, source: str | None = None,
        fusion: Fusion = DEFAULT_FUSION, config: AnswerConfig = DEFAULT_ANSWER) -> Answer:
    """Answer `question` with 1-3 sentences quoted from the indexed articles, each cited; or decline."""
    ev = gather(question, index, k, history=history, date_from=date_from, date_to=date_to, source=source,
                fusion=fusion, config=config)
    if not ev.candidates:
        return build_answer(ev.question, [], ev.passages, ev.lang, True)
    picked = select(rank(ev.candidates, ev.features, config), config)
    cross = ev.lang != detect_lang(picked[0].text)
    abstain = picked[0].score < (config.min_confidence_cross if cross else config.min_confidence)
    return build_answer(ev.question, picked, ev.passages, ev.lang, abstain)


def _sentence_similarity(embedder: Embedder, alt_question: str | None, qvec: np.ndarray, texts: list[str]) -> np.ndarray:
    if alt_question is not None:
        qvec = embedder.embed_queries([alt_question])[0]
    vecs = embedder.embed_documents(texts)
    return vecs @ qvec
