"""Evidence: what `ask` reads before it chooses: the retrieved passages, their candidate sentences and features."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..lang import chinese_terms, detect_lang, dictionary, latin_terms, unaskable
from ..lang.when import DateRange
from ..models import FEATURES, get_reader
from ..retrieve import Fusion, Searcher
from ..types import Embedder, Passage
from .candidates import Candidate, candidates
from .config import AnswerConfig
from .features import features, idf_table, query_terms


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
    # why the query asks about nothing an article could hold (rag.lang.askable; "no word the corpus knows"), or None
    unaskable: str | None = None
    # the dates the question asks about (rag.lang.when.resolve), or None: the answer then says each article's date
    when: DateRange | None = None
    # near-duplicate stories of the passages' articles (rag.index.dedup): article id -> every copy of its story, the
    # representative first (only articles other articles carry too), and the texts of those copies
    stories: dict = dataclasses.field(default_factory=dict)
    story_texts: dict = dataclasses.field(default_factory=dict)


def gather(s: Searcher, q: str, query: str, scoring_q: str, k: int, fusion: Fusion, config: AnswerConfig,
           date_from: str | None = None, date_to: str | None = None, source: str | None = None,
           when: DateRange | None = None, explicit: bool = False) -> Evidence:
    """The evidence for question `q` from searcher `s`: passages retrieved for `query` (the question, or for a
    follow-up the earlier turn + the question) and their sentences' features against `scoring_q` (the question).
    `when`: the dates the question asks about, favoured in retrieval unless `explicit` (date_from/date_to given:
    they filter instead); its recency word counts either way."""
    lang = detect_lang(q)
    idx = s.refresh()  # one generation for passages and IDF alike, even if a writer publishes meanwhile
    why = askable_check(query, idx) if config.askable_check else None
    if why is not None:
        return Evidence(q, lang, [], [], np.zeros((0, len(FEATURES))), query=query, unaskable=why, when=when)
    qvec = s.embedder.embed_queries([query])[0]
    bridge = s.bridged_words(query, idx)
    second = s.second_embedder(idx)
    evec = second.embed_queries([query])[0] if second is not None else None
    known = {query: evec} if evec is not None and second is get_reader(config.reader) else {}
    recency = when.now if when is not None and when.latest else None
    passages = s.search(query, k, fusion, date_from, date_to, source, qvec=qvec, idx=idx, bridge=bridge, svec=evec,
                        when=None if explicit else when, recency=recency)
    cands = candidates(passages, idx.sentences(passages))
    if not cands:
        return Evidence(q, lang, passages, [], np.zeros((0, len(FEATURES))), query=query, read_vectors=known,
                        when=when)
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
    stories, texts = story_copies(idx, passages)
    return Evidence(q, lang, passages, cands, feats(scoring_q, svec, own), wide, query, known, when=when,
                    stories=stories, story_texts=texts)


def story_copies(idx, passages: list[Passage]) -> tuple[dict, dict]:
    """The stories the passages' articles share with other articles, and the texts of their copies (a store
    without stories: none)."""
    copies = getattr(idx, "story_copies", None)
    found = copies([p.article_id for p in passages]) if copies is not None and passages else {}
    if not found:
        return {}, {}
    return found, idx.texts({c.article_id for group in found.values() for c in group})


def askable_check(query: str, idx) -> str | None:
    """Why `query` asks about nothing the index could hold (rag.lang.askable's reasons, or "no word the corpus
    knows": an all-Latin query none of whose content words the corpus holds or the dictionary glosses), or None."""
    why = unaskable(query)
    if why is not None or chinese_terms(query):
        return why
    terms = latin_terms(query)
    toks = {t: idx.tokens(t) for t in terms}
    df = idx.doc_freq(sorted({x for ts in toks.values() for x in ts}))
    if any(ts and all(df.get(x, 0) for x in ts) for ts in toks.values()) or any(map(dictionary.knows, terms)):
        return None
    return "no word the corpus knows"


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
