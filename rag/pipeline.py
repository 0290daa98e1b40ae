"""`retrieve()` and `ask()`: the two calls the CLI, the UI and eval stand on."""
from __future__ import annotations

import dataclasses
import datetime
import re
from dataclasses import dataclass

import numpy as np

from .answer import (CROSS_NOTE, FEATURES, NOT_FOUND, AnswerConfig, Candidate, article_texts, build_answer,
                     candidates, confidence, declines, features, idf_table, misses_year, query_terms, rank, reread,
                     rescore, select, tied, to_read, to_rescore, wants_reading_for_confidence, wants_reorder,
                     wants_rescore)
from .dictionary import gloss_overlap
from .names import misses_names
from .reader import get_reader, pair_scores, read
from .retrieval import DEFAULT_FUSION, Fusion, Searcher, searcher
from .text import clean, detect_lang
from .types import Answer, Embedder, Passage

MAX_QUESTION_CHARS = 1000
ANSWER_CHARS = 300  # of an earlier answer carried into a follow-up's retrieval query
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


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z?)?")


def _check_filters(k, date_from, date_to) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    for name, v in (("date_from", date_from), ("date_to", date_to)):
        if v is None:
            continue
        try:
            if not isinstance(v, str) or not _DATE.fullmatch(v):
                raise ValueError
            datetime.date.fromisoformat(v[:10])
        except ValueError:
            raise ValueError(f"{name} must be an ISO date such as 2024-05-01, got {v!r}") from None


def _resolve_index(index) -> Searcher:
    if index is None:
        from .indexer import default_index_dir

        index = default_index_dir()
    return searcher(index)


def contextualise(question: str, history: list[tuple[str, str]] | None) -> tuple[str, str]:
    """(query for retrieval, question for sentence scoring): a short or anaphoric follow-up borrows the last turn.

    The earlier question (and its answer's text) only widens retrieval; sentences are scored against the new
    question alone, else the earlier turn's answer sentence outranks what the follow-up asks (followup set:
    answer-sentence hit 57.1 -> 71.4). The earlier answer keeps retrieval on its story: with e5 as a second retriever
    a chunk of an unrelated article that also says "他" came up to rank 4 for "他在那里见了谁？" and was cited
    (followup set, ans-sent hit with the earlier question alone / and its answer: 76.2 / 85.7, wrong declines 4.8 /
    0.0).
    """
    if not history:
        return question, question
    prev_q = str(history[-1][0]) if history[-1] else ""
    if not prev_q:
        return question, question
    # A follow-up points back ("他在那里见了谁？") or is too short to stand alone ("那2023年呢？").
    if _ANAPHORA.search(question) or len(query_terms(question)) <= 2:
        prev_a = _answer_words(str(history[-1][1]) if len(history[-1]) > 1 else "")
        return " ".join(x for x in (prev_q, prev_a, question) if x), question
    return question, question


_MARKER = re.compile(r"\s*\[\d+\]")


def _answer_words(answer: str) -> str:
    """An earlier answer's text without citation markers and notes ("" for a decline): it keeps a follow-up's
    retrieval on the story that answer came from."""
    if answer.strip() in NOT_FOUND.values():
        return ""
    for note in CROSS_NOTE.values():
        answer = answer.replace(note, "")
    return _MARKER.sub("", answer).strip()[:ANSWER_CHARS]


def retrieve(question: str, index=None, k: int = 5, *, date_from: str | None = None, date_to: str | None = None,
             source: str | None = None, fusion: Fusion = DEFAULT_FUSION) -> list[Passage]:
    """The `k` best passages for `question`, best first."""
    q = _check_question(question)
    _check_filters(k, date_from, date_to)
    return _resolve_index(index).search(q, k, fusion, date_from, date_to, source)


@dataclass(frozen=True)
class Evidence:
    """What `ask` reads before it chooses: the retrieved passages and their candidate sentences with features."""

    question: str
    lang: str
    passages: list[Passage]
    candidates: list[Candidate]
    features: np.ndarray
    # for a follow-up, the features against the earlier question + this one: they decide whether to answer at all
    # (followup set: fewer wrong declines than with the new question alone, which may hold no content word)
    confidence_features: np.ndarray | None = None
    query: str = ""  # what was retrieved: the question, or for a follow-up the earlier question + this one
    # query vectors the reader need not compute again: the retrieval query's, when the index's second retriever is
    # the reader's own e5 (one embedding of ~20 ms per question read)
    read_vectors: dict = dataclasses.field(default_factory=dict)


def gather(question: str, index=None, k: int = 5, *, history=None, date_from=None, date_to=None, source=None,
           fusion: Fusion = DEFAULT_FUSION, config: AnswerConfig = DEFAULT_ANSWER) -> Evidence:
    q = _check_question(question)
    _check_filters(k, date_from, date_to)
    s = _resolve_index(index)
    lang = detect_lang(q)
    query, scoring_q = contextualise(q, history)
    qvec = s.embedder.embed_queries([query])[0]
    idx = s.refresh()  # one generation for passages and IDF alike, even if a writer publishes meanwhile
    bridge = s.bridged_words(query, idx)
    second = s.second_embedder(idx)
    evec = second.embed_queries([query])[0] if second is not None else None
    known = {query: evec} if evec is not None and second is get_reader(config.reader) else {}
    passages = s.search(query, k, fusion, date_from, date_to, source, qvec=qvec, idx=idx, bridge=bridge, svec=evec)
    cands = candidates(passages, idx.sentences(passages))
    if not cands:
        return Evidence(q, lang, passages, [], np.zeros((0, len(FEATURES))), query=query, read_vectors=known)
    vecs = _sentence_vectors(s.embedder, idx, cands)
    svec = qvec if scoring_q == query else s.embedder.embed_queries([scoring_q])[0]

    # A Chinese question's bridge (English glosses, only for an index with English articles) is cheap to take again
    # for the new question alone: the earlier turn's words must not pick the sentence of a follow-up.
    own = bridge if lang == "en" or scoring_q == query else s.bridged_words(scoring_q, idx)

    def feats(text: str, qv: np.ndarray, words: dict[str, float]) -> np.ndarray:
        terms = query_terms(text, list(words))
        return features(text, cands, idf_table(terms, idx.doc_freq(terms), idx.manifest.chunks), vecs @ qv,
                        config.topic_share, words)

    wide = None if scoring_q == query else feats(query, qvec, bridge)
    return Evidence(q, lang, passages, cands, feats(scoring_q, svec, own), wide, query, known)


def kept(ev: Evidence, config: AnswerConfig = DEFAULT_ANSWER) -> Evidence:
    """The evidence without the candidates `tied` drops (config.tie_check)."""
    if not config.tie_check or not ev.candidates:
        return ev
    keep = tied(ev.lang, ev.candidates, ev.features)
    if keep.all():
        return ev
    wide = None if ev.confidence_features is None else ev.confidence_features[keep]
    return dataclasses.replace(ev, candidates=[c for c, k in zip(ev.candidates, keep) if k],
                               features=ev.features[keep], confidence_features=wide)


def ask(question: str, index=None, k: int = 5, *, history: list[tuple[str, str]] | None = None,
        date_from: str | None = None, date_to: str | None = None, source: str | None = None,
        fusion: Fusion = DEFAULT_FUSION, config: AnswerConfig = DEFAULT_ANSWER) -> Answer:
    """Answer `question` with 1-3 sentences quoted from the indexed articles, each cited; or decline."""
    ev = gather(question, index, k, history=history, date_from=date_from, date_to=date_to, source=source,
                fusion=fusion, config=config)
    ev = kept(ev, config)
    if not ev.candidates:
        return build_answer(ev.question, [], ev.passages, ev.lang, True)
    scored = rank(ev.candidates, ev.features, config)
    sure = confidence(scored if ev.confidence_features is None else rank(ev.candidates, ev.confidence_features, config))
    first = max(scored, key=lambda c: c.order).text
    # which thresholds apply: English over Chinese (_cross), English over English (_en), Chinese over English (_rev)
    pair = (ev.lang, detect_lang(first))
    cross, english, reverse = pair == ("en", "zh"), pair == ("en", "en"), pair == ("zh", "en")
    # the new question picks the sentence; a follow-up's whole query says whether there is an answer at all
    pairs = glossed = None
    if wants_rescore(scored, config, ev.lang):
        texts = [c.text for c in to_rescore(scored, config, ev.lang)]
        pairs = pair_scores(ev.question, texts)
        glossed = gloss_overlap(ev.question, texts) if ev.lang == "en" else None
    reorder = pairs is None and wants_reorder(scored, config)
    sims = None
    if reorder or wants_reading_for_confidence(sure, cross, config, english, reverse):
        questions = [ev.question] + ([ev.query] if ev.query and ev.query != ev.question else [])
        sims = read(get_reader(config.reader), questions, [c.text for c in to_read(scored, config)], ev.read_vectors)
    if pairs is not None:
        scored = rescore(scored, pairs, config, ev.lang, glossed)
    elif sims is not None and reorder:
        scored = reread(scored, sims[0], config)
    picked = select(scored, config)
    best_read = float(sims[-1].max()) if sims is not None else None

    def names_missing() -> bool:  # read by declines only when the answer depends on it
        return bool(picked) and misses_names(ev.question, article_texts(ev.passages, picked[0].passage.article_id))

    abstain = (declines(sure, best_read, cross, config, names_missing, english, reverse)
               or (config.year_check and bool(picked)
                   and misses_year(ev.question, ev.passages, picked[0].passage.article_id)))
    return build_answer(ev.question, picked, ev.passages, ev.lang, abstain)


def _sentence_vectors(embedder: Embedder, idx, cands: list[Candidate]) -> np.ndarray:
    """The candidates' stored sentence vectors (embedding only sentences without one)."""
    vecs = np.zeros((len(cands), idx.manifest.dim), dtype=np.float32)
    stored = [i for i, c in enumerate(cands) if c.sentence_id >= 0]
    if stored:
        vecs[stored] = idx.sentence_vectors([cands[i].sentence_id for i in stored])
    missing = [i for i, c in enumerate(cands) if c.sentence_id < 0]
    if missing:
        vecs[missing] = embedder.embed_documents([cands[i].text for i in missing])
    return vecs
