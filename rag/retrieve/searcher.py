"""Hybrid retrieval: BM25 over character bigrams plus dense vectors, fused by normalised, language-aware weights."""
from __future__ import annotations

import datetime
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..lang import detect_lang, dictionary, mentions, question_names, question_words
from ..lang.when import DateRange, date_evidence, published_date
from ..models import shared_embedder
from ..store import open_store, parse_spec, store_key, store_stamp
from ..types import Embedder, Passage, Store


@dataclass(frozen=True)
class Fusion:
    """How lexical and dense scores are combined (weights chosen on the dev sets, see eval/README.md)."""

    lexical_weight: float = 0.7  # for questions in the corpus's script (Chinese question over Chinese text)
    cross_lexical_weight: float = 0.4  # English question over Chinese text, BM25 over question + bridged words
    reverse_lexical_weight: float = 0.2  # Chinese question over English text, BM25 over question + English glosses
    candidates: int = 100
    mode: str = "weighted"  # "weighted", "rrf", "lexical", "dense"
    # English question over Chinese text: the best `name_pool` fused chunks gain name_boost x the share of the
    # question's names (rag.lang.names) they mention, spelled, translated or transliterated. XQuAD-en hit@1 69.0 ->
    # 71.6 at 0.25 (0.1: 70.4, 0.2: 71.4, 0.3: 71.5, 0.4: 71.3; each half of the set alike: 72.3 -> 75.8 and 65.7
    # -> 67.4), hit@5 86.5 -> 88.2.
    name_boost: float = 0.25
    name_pool: int = 20
    # ... and gloss_boost x the dictionary's gloss overlap with the chunk's title and text (rag.lang.dictionary.
    # gloss_overlap: the share of the question's words, weighted by rarity, that some Chinese word of it means).
    # Off: it ranks articles better but answers worse. Session 15, XQuAD-en (dev pool) hit@1 / hit@5 at 0 / 0.1 /
    # 0.2 / 0.3 / 0.5: .805 / .932, .818 / .932, .823 / .932, .824 / .929, .815 / .930 (half A .787 -> .802, half B
    # .823 -> .842 at 0.2); XQuAD's English questions over the mixed pool .912 -> .924. But end to end at 0.2,
    # xquad-en ans-sent hit 78.1 -> 77.6 (half B 77.6 -> 76.9): of the 29 questions whose article it moved to the
    # top, 24 were answered right already (the sentence ranker looks past the passage order) and 1 more became so,
    # while 8 others lost their answer as the passage scores the ranker reads (and was trained without) shifted.
    gloss_boost: float = 0.0
    # An English question over a mixed corpus: its own BM25 over the English chunks is normalised by the best of
    # them, but by no less than english_floor x the most any chunk could score (Index.lexical_bound, words the
    # corpus lacks counted), so that the best of a few unrelated English articles does not look like a full match
    # beside the Chinese ones. 300 questions, hit@1: XQuAD-en over the dev pool plus the English paragraphs of the
    # other XQuAD articles (unrelated English beside the Chinese answer) / XQuAD English questions over the mixed
    # pool (the answer in English): no floor .650 / .843, 0.25 .663 / .843, 0.5 .687 / .817, 0.75 .693 / .747;
    # before per-language scoring .687 / .580.
    english_floor: float = 0.5
    # The same for a Chinese question over a mixed corpus, its own BM25 over the Chinese chunks (session 8, once its
    # answers from English text were measured). 300 questions each over the mixed pool, hit@1: XQuAD's Chinese
    # questions over its English paragraphs / CMRC / DRCD (200) / the seed's Chinese questions: no floor .507 /
    # .973 / .950 / .950, 0.25 .557 / .973 / .950 / .950, 0.35 .653 / .970 / .950 / .950, 0.4 .693 / .963 / .945 /
    # .950, 0.5 .723 / .953 / .935 / .950, 0.75 .757 / .880 / .850 / .800.
    chinese_floor: float = 0.35
    # An index with a second embedder (multilingual-e5-small, rag.index.DEFAULT_SECOND): its cosine, min-max
    # scaled over the candidates, takes this share of the fused score for a Chinese question, cross_second_weight
    # for an English one; its own best `candidates` chunks join the candidates. Dev pool hit@1 at 0.3 / 0.4 / 0.5 /
    # 0.6 (without it: CMRC .949, DRCD .935, XQuAD zh .904, en .716): CMRC .961 / .964 / .962 / .959, DRCD .938 /
    # .935 / .928 / .919, XQuAD zh .926 / .932 / .930 / .929, XQuAD en .783 / .792 / .801 / .792. Min-max scaling
    # the fused score too ranked as well but lifted unrelated chunks' passage scores, a ranker feature (xquad-en
    # ans-sent hit 76.6 against 77.1).
    second_weight: float = 0.4
    cross_second_weight: float = 0.5
    # A question's dates (rag.lang.when.resolve), as evidence rather than a filter (an article of 4月3日 reports 4月2日's
    # accident): of the best date_pool chunks, one whose article is dated in a day, week or recent-days range scores
    # (1 + date_boost) x its score; one whose title or text only states a date inside it ("7月28日", "28日" read with
    # the article's month; rag.lang.when.stated_dates) gains stated_date_share of that. For a month or longer only
    # what the text states counts, at coarse_date_boost: its figures come out after it ("2023年7月零售量" in August).
    # eval/crud_dates.py (132 date and 昨天/今天/前天 questions, 11 topics in two halves A/B), retrieval hit@1: none
    # 24/132; date_boost 0.3 / 0.5 / 0.75 / 1.0 (share 1): 80 / 106 / 111 / 113; share 0.5 at 0.5 / 0.75 / 1.0: 111 /
    # 120 / 121 (A 69/72, B 51/60 at 0.75; the B half gains from the share: 42 -> 51). A year, month or quarter
    # (806 questions of the dev sets, before the month-or-longer rule) at 0 / 0.3 / 0.5 / 1.0: 734 / 751 / 743 / 705.
    # The 937 dev-set questions naming a date or recency (cmrc, drcd, xquad, seed, crud-2docs/3docs; now = today),
    # at these defaults: 842 -> 860 (crud-3docs -2: gold articles saying "2021年7月" for a 2023年7月 question).
    date_boost: float = 0.75
    coarse_date_boost: float = 0.3
    stated_date_share: float = 0.5
    date_pool: int = 50
    # A question asking for the latest ("最新", "目前", "latest"): the best recency_pool chunks gain up to
    # recency_boost x their score by how new their article is among them: the newest day dated by `now` x (1 +
    # recency_boost), each older day half the gain of the one after it; undated and later articles x 1. crud_dates'
    # 66 最新 questions (now: the asked day; later days' articles indexed too; default reader), hit@1: none 5, linear
    # newness (pool 20, 0.75) 43, halving 49, halving with a pool of 50: 56 at 0.75, 59 at 1.0 (tuned on that set:
    # optimistic); the 13 such questions of crud-2docs/3docs: 4 at every setting.
    recency_boost: float = 1.0
    recency_pool: int = 50

    def __post_init__(self):
        for name in ("lexical_weight", "cross_lexical_weight", "reverse_lexical_weight", "name_boost", "gloss_boost",
                     "english_floor",
                     "chinese_floor", "second_weight", "cross_second_weight", "date_boost", "coarse_date_boost",
                     "stated_date_share", "recency_boost"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"Fusion.{name} must be in [0, 1], got {v!r}")
        for name in ("name_pool", "date_pool", "recency_pool"):
            if getattr(self, name) < 1:
                raise ValueError(f"Fusion.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.candidates < 1:
            raise ValueError(f"Fusion.candidates must be >= 1, got {self.candidates!r}")
        if self.mode not in ("weighted", "rrf", "lexical", "dense"):
            raise ValueError(f"Fusion.mode must be weighted, rrf, lexical or dense, got {self.mode!r}")


DEFAULT_FUSION = Fusion()
# An index counts as mixed when at least this share of an even sample of its chunks is English; below it (a
# Chinese corpus whose chunks now and then open with an English quote or name: 0.1-0.5% of the dev pool and its
# synthetic 10k/100k stores) it is scored as one Chinese corpus and spared the per-question language lookups.
MIXED_SHARE = 0.02


def mixed(idx: Store) -> bool:
    """Whether `idx` holds English articles beside Chinese ones (MIXED_SHARE of its sampled chunks)."""
    return idx.english_share() >= MIXED_SHARE


class Searcher:
    """An open store with its query embedder; reopens itself when a writer publishes a new version."""

    def __init__(self, root: str | os.PathLike, embedder: Embedder | None = None, second: Embedder | None = None):
        """`root`: a store spec (rag.store.parse_spec: an index folder, or a Milvus store); `embedder`/`second`: the
        query embedders (default: those the store names, loaded once per process)."""
        self.spec = parse_spec(root)
        self.root = Path(self.spec.target) if not self.spec.milvus else self.spec.text
        self._lock = threading.Lock()
        self._embedder = embedder
        self._second = second
        self._stamp = None
        self.index: Store | None = None
        self.refresh()

    def refresh(self) -> Store:
        # the generation name (or Milvus version) itself, not an mtime: two quick publishes must not look alike
        stamp = store_stamp(self.spec)
        if self.index is not None and stamp == self._stamp:
            return self.index
        with self._lock:
            if self.index is None or stamp != self._stamp:
                idx = open_store(self.spec, embedder_name=self._embedder.name if self._embedder else None)
                if self._embedder is None:
                    self._embedder = shared_embedder(idx.manifest.embedder)
                self.index, self._stamp = idx, stamp
        return self.index

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def second_embedder(self, idx: Store) -> Embedder | None:
        """The query embedder of `idx`'s second dense retriever, or None when it has none."""
        name = idx.manifest.second_embedder
        if not name:
            return None
        if self._second is None or self._second.name != name:
            self._second = shared_embedder(name)
        return self._second

    def search(self, question: str, k: int = 5, fusion: Fusion = DEFAULT_FUSION, date_from: str | None = None,
               date_to: str | None = None, source: str | None = None, qvec: np.ndarray | None = None,
               idx: Store | None = None, bridge: dict[str, float] | None = None,
               svec: np.ndarray | None = None, when: DateRange | None = None,
               recency: datetime.date | None = None) -> list[Passage]:
        """Ranked passages from `idx` (default: the current generation; pass one to read a single generation).
        `bridge`: the question's bridged words if already known (see `bridged_words`); `svec`: its query vector
        from `second_embedder(idx)`, likewise. `when`: the dates the question asks about, favoured as
        Fusion.date_boost says; `recency`: prefer the newest articles dated by this day (Fusion.recency_boost)."""
        idx = idx or self.refresh()
        allowed = idx.allowed_ids(date_from, date_to, source)
        n = idx.manifest.chunks
        if n == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        ncand = min(n, max(fusion.candidates, k))
        lex, bridged = [], []
        if fusion.mode != "dense":
            bridge = self.bridged_words(question, idx) if bridge is None else bridge
            # the question's own BM25 matters for chunks in its language: a Chinese question, or any in a mixed index
            if not bridge or mixed(idx):
                lex = idx.search_lexical(question, ncand, allowed)
            bridged = idx.search_lexical(" ".join([question, *bridge]), ncand, allowed) if bridge else lex
        dense = []
        if fusion.mode != "lexical":
            if qvec is None:
                qvec = self.embedder.embed_queries([question])[0]
            dense = idx.search_dense(qvec, ncand, allowed)
        second = []
        sec = self.second_embedder(idx) if fusion.mode == "weighted" else None
        if sec is not None and (fusion.cross_second_weight if detect_lang(question) == "en" else fusion.second_weight):
            svec = sec.embed_queries([question])[0] if svec is None else svec
            second = idx.search_second(svec, ncand, allowed)
        else:
            svec = None
        if fusion.mode == "lexical":
            ranked = bridged
        elif fusion.mode == "dense":
            ranked = dense
        elif fusion.mode == "rrf":
            ranked = _rrf([bridged, dense])
        else:
            ranked = self._weighted(idx, question, lex, bridged, dense, qvec, fusion, second, svec)
            if (fusion.name_boost or fusion.gloss_boost) and self._cross(question):
                ranked = self._boost(idx, question, ranked, fusion)
        if when is not None and not (fusion.coarse_date_boost if when.coarse else fusion.date_boost):
            when = None
        if when is not None or (recency is not None and fusion.recency_boost):
            ranked = self._by_date(idx, ranked, fusion, when, recency)
        top = ranked[:k]
        return idx.passages([c for c, _ in top], dict(top))

    def _weighted(self, idx: Store, question, lex, bridged, dense, qvec, fusion: Fusion, second=(),
                  svec: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Each candidate chunk in the question's language is scored with the question's own BM25 at
        lexical_weight; one in the other language with the BM25 of the question plus its bridged words (English
        question: Chinese words, at cross_lexical_weight; Chinese question: English glosses, at
        reverse_lexical_weight). Each side is normalised by its own best chunk (the question's own side by no less
        than english_floor or chinese_floor of its bound), so that in a mixed corpus the bridged words of one language do
        not drown the other's BM25. An index with fewer English chunks than MIXED_SHARE of its sample
        (Index.english_share) is scored as one Chinese corpus, as before, without reading any chunk's language.
        With the second embedder's query vector `svec` (and its hits `second`), that score and its cosine (min-max
        scaled) are mixed by Fusion.second_weight (cross_second_weight for an English question)."""
        ids = np.array(sorted({c for c, _ in lex} | {c for c, _ in bridged} | {c for c, _ in dense}
                              | {c for c, _ in second}), dtype=np.int64)
        if not len(ids):
            return []

        def normalised(hits, group: np.ndarray, floor: float = 0.0) -> np.ndarray:  # by the best in `group`
            m = dict(hits)
            v = np.array([m.get(int(c), 0.0) for c in ids], dtype=np.float32)
            top = max(float(v[group].max()) if group.any() else 0.0, floor)
            return v / top if top > 0 else np.zeros_like(v)

        dense_s = idx.dense_scores(qvec, ids)
        dense_n = _minmax(dense_s)  # dense cosines bunch together: rescale between the candidates' floor and best
        qlang = detect_lang(question)
        both = mixed(idx)  # else every chunk counts as Chinese and nothing is looked up
        same = np.array([lang == qlang for lang in idx.chunk_langs(ids)]) if both else np.full(len(ids), qlang == "zh")
        floor = ((fusion.english_floor if qlang == "en" else fusion.chinese_floor)
                 * idx.lexical_bound(question, absent=True) if both else 0.0)
        lex_n = np.where(same, normalised(lex, same, floor), normalised(bridged, ~same))
        w = np.where(same, fusion.lexical_weight,
                     fusion.reverse_lexical_weight if qlang == "zh" else fusion.cross_lexical_weight)
        score = w * lex_n + (1 - w) * dense_n
        if svec is not None:
            sw = fusion.cross_second_weight if qlang == "en" else fusion.second_weight
            cos = idx.second_scores(svec, ids)
            # per language, like BM25 above: e5 ranks chunks in the question's language above the other's
            second_n = np.zeros_like(cos)
            for group in ((same, ~same) if both else (np.ones(len(ids), dtype=bool),)):
                if group.any():
                    second_n[group] = _minmax(cos[group])
            score = (1 - sw) * score + sw * second_n
        order = np.argsort(-score, kind="stable")
        return [(int(ids[i]), float(score[i])) for i in order]

    @staticmethod
    def _boost(idx: Store, question: str, ranked, fusion: Fusion) -> list[tuple[int, float]]:
        """An English question over Chinese text: the best name_pool chunks gain name_boost x the share of the
        question's names they mention and gloss_boost x their gloss overlap with it."""
        asked = question_names(question) if fusion.name_boost else []
        pool = ranked[: fusion.name_pool]
        if not pool or not (asked or fusion.gloss_boost):
            return ranked
        passages = idx.passages([c for c, _ in pool], dict(pool))
        texts = [f"{p.title}\n{p.text}" for p in passages]
        gain = np.zeros(len(passages))
        if asked:
            gain += fusion.name_boost * np.array([sum(mentions(n, t) for n in asked) / len(asked) for t in texts])
        if fusion.gloss_boost:
            gain += fusion.gloss_boost * dictionary.gloss_overlap(question, texts)
        extra = {p.chunk_id: float(g) for p, g in zip(passages, gain)}
        boosted = [(c, sc + extra.get(c, 0.0)) for c, sc in pool]
        return sorted(boosted, key=lambda x: -x[1]) + ranked[fusion.name_pool:]

    @staticmethod
    def _by_date(idx: Store, ranked, fusion: Fusion, when: DateRange | None,
                 recency: datetime.date | None) -> list[tuple[int, float]]:
        """The best chunks re-scored by the question's dates (Fusion.date_boost) and recency (Fusion.recency_boost)."""
        n = max(fusion.date_pool if when is not None else 0,
                fusion.recency_pool if recency is not None and fusion.recency_boost else 0)
        pool = ranked[:n]
        if not pool:
            return ranked
        passages = idx.passages([c for c, _ in pool], dict(pool))
        factor = np.ones(len(passages))
        days = [published_date(p.published) for p in passages]
        if when is not None:
            on = [date_evidence(when, f"{p.title}\n{p.text}", day, fusion.stated_date_share)
                  for p, day in zip(passages[:fusion.date_pool], days)]
            boost = fusion.coarse_date_boost if when.coarse else fusion.date_boost
            factor[:len(on)] += boost * np.array(on)
        if recency is not None and fusion.recency_boost:
            m = min(fusion.recency_pool, len(passages))
            dated = sorted({d for d in days[:m] if d is not None and d <= recency})
            if len(dated) > 1:
                newness = {d: 0.5 ** (len(dated) - 1 - i) for i, d in enumerate(dated)}
                factor[:m] += fusion.recency_boost * np.array([newness.get(d, 0.0) for d in days[:m]])
        rescored = [(p.chunk_id, p.score * float(f)) for p, f in zip(passages, factor)]
        return sorted(rescored, key=lambda x: -x[1]) + ranked[len(pool):]

    def _cross(self, question: str) -> bool:
        return detect_lang(question) == "en" and self.corpus_lang == "zh"

    def bridged_words(self, question: str, idx: Store) -> dict[str, float]:
        """Corpus words standing in for an English question's words, with their cosine (rag.lang.bridge); for a Chinese
        question over an index with English articles, the English glosses of its words (rag.lang.dictionary) that
        the corpus holds."""
        if not self._cross(question):
            if detect_lang(question) != "zh" or not mixed(idx):
                return {}

            def in_corpus(glosses: list[str]) -> set[str]:
                toks = {g: idx.tokens(g) for g in glosses}
                df = idx.doc_freq(sorted({t for ts in toks.values() for t in ts}))
                return {g for g, ts in toks.items() if ts and all(df.get(t, 0) for t in ts)}

            return dict.fromkeys(dictionary.english(question, in_corpus), dictionary.SIMILARITY)
        words = question_words(question)
        if not words:
            return {}
        lexicon = idx.lexicon()
        out = lexicon.translate_scored(self.embedder.embed_queries(words))
        for w in dictionary.translate(question, lexicon.vocabulary):
            out[w] = max(out.get(w, 0.0), dictionary.SIMILARITY)
        return out

    @property
    def corpus_lang(self) -> str:
        return "zh"  # the corpora this tool targets are Chinese first; a per-index language is future work


def _minmax(v: np.ndarray) -> np.ndarray:
    lo, hi = float(v.min()), float(v.max())
    return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)


def _rrf(lists: list[list[tuple[int, float]]], k0: int = 60) -> list[tuple[int, float]]:
    score: dict[int, float] = {}
    for lst in lists:
        for rank, (c, _) in enumerate(lst):
            score[c] = score.get(c, 0.0) + 1.0 / (k0 + rank + 1)
    return sorted(score.items(), key=lambda x: -x[1])


_SEARCHERS: dict[str, Searcher] = {}
_GLOBAL = threading.Lock()


def searcher(index: str | os.PathLike | Searcher, embedder: Embedder | None = None) -> Searcher:
    """The cached Searcher for a store (an index directory or a Milvus spec; one per store per process)."""
    if isinstance(index, Searcher):
        return index
    key = store_key(index)
    with _GLOBAL:
        s = _SEARCHERS.get(key)
    if s is None or (embedder is not None and s.embedder is not embedder):
        s = Searcher(index if parse_spec(index).milvus else key, embedder)
        with _GLOBAL:
            _SEARCHERS[key] = s
    return s
