"""The Answerer: evidence in, an Answer out: rank the candidates, re-read close calls, pick 1-3 sentences, decline
when unsure."""
from __future__ import annotations

import dataclasses

from ..lang import detect_lang, gloss_overlap, misses_names
from ..models import get_reader, pair_scores, read
from ..types import Answer
from .candidates import Candidate
from .compose import build_answer
from .config import AnswerConfig
from .decide import (
    article_texts,
    by_date,
    confidence,
    declines,
    misses_year,
    rank,
    reread,
    rescore,
    select,
    tied,
    to_read,
    to_rescore,
    wants_reading_for_confidence,
    wants_reorder,
    wants_rescore,
)
from .evidence import Evidence

PER_PART = 2  # sentences cited for each part of a question in several parts


class Answerer:
    """Turns `Evidence` into an `Answer` by the rules and thresholds of `config`."""

    def __init__(self, config: AnswerConfig | None = None):
        config = AnswerConfig() if config is None else config
        if not isinstance(config, AnswerConfig):
            raise TypeError(f"config must be an AnswerConfig, got {type(config).__name__}")
        self.config = config

    def kept(self, ev: Evidence) -> Evidence:
        """The evidence without the candidates `tied` drops (self.config.tie_check)."""
        if not self.config.tie_check or not ev.candidates:
            return ev
        keep = tied(ev.lang, ev.candidates, ev.features)
        if keep.all():
            return ev
        wide = None if ev.confidence_features is None else ev.confidence_features[keep]
        return dataclasses.replace(ev, candidates=[c for c, k in zip(ev.candidates, keep) if k],
                                   features=ev.features[keep], confidence_features=wide)

    def run(self, ev: Evidence) -> Answer:
        """Answer from `ev` with 1-3 cited sentences, or decline."""
        ev = self.kept(ev)
        picked, abstain = self.choose(ev)
        return build_answer(ev.question, picked, ev.passages, ev.lang, abstain, dated=ev.when is not None,
                            stories=ev.stories, texts=ev.story_texts)

    def run_parts(self, question: str, parts: list[Evidence]) -> Answer:
        """One answer to a question in several parts ("Q1？Q2？"), each part's evidence gathered on its own: the
        best sentence of every part that is answered, in part order (rag.answer.parts); a decline when none is."""
        picks, passages, stories, texts = [], [], {}, {}
        for ev in parts:
            ev = self.kept(ev)
            picked, abstain = self.choose(ev)
            passages += [p for p in ev.passages if p not in passages]
            stories.update(ev.stories)
            texts.update(ev.story_texts)
            if not abstain and picked:
                picks += [c for c in picked[:PER_PART] if all(c.text != x.text for x in picks)]
        lang = parts[0].lang
        return build_answer(question, picks, passages, lang, not picks, dated=any(ev.when is not None for ev in parts),
                            stories=stories, texts=texts)

    def choose(self, ev: Evidence) -> tuple[list[Candidate], bool]:
        """The sentences to cite from `ev` (already `kept`) and whether to decline instead."""
        cfg = self.config
        if not ev.candidates:
            return [], True
        scored = rank(ev.candidates, ev.features, cfg)
        sure = confidence(scored if ev.confidence_features is None else rank(ev.candidates, ev.confidence_features, cfg))
        first = max(scored, key=lambda c: c.order).text
        pair = (ev.lang, detect_lang(first))
        th = cfg.thresholds(*pair)
        names_score = cfg.min_read_score_names if pair == ("en", "zh") else None
        # the new question picks the sentence; a follow-up's whole query says whether there is an answer at all
        pairs = glossed = None
        if wants_rescore(scored, cfg, ev.lang):
            texts = [c.text for c in to_rescore(scored, cfg, ev.lang)]
            pairs = pair_scores(ev.question, texts)
            glossed = gloss_overlap(ev.question, texts) if ev.lang == "en" else None
        reorder = pairs is None and wants_reorder(scored, cfg)
        sims = None
        if reorder or wants_reading_for_confidence(sure, th):
            questions = [ev.question] + ([ev.query] if ev.query and ev.query != ev.question else [])
            sims = read(get_reader(cfg.reader), questions, [c.text for c in to_read(scored, cfg)],
                        ev.read_vectors)
        if pairs is not None:
            scored = rescore(scored, pairs, cfg, ev.lang, glossed)
        elif sims is not None and reorder:
            scored = reread(scored, sims[0], cfg)
        if cfg.date_check and ev.when is not None:
            scored = by_date(scored, ev.when, cfg.date_ratio)
        picked = select(scored, cfg)
        best_read = float(sims[-1].max()) if sims is not None else None

        def names_missing() -> bool:  # read by declines only when the answer depends on it
            return bool(picked) and misses_names(ev.question, article_texts(ev.passages, picked[0].passage.article_id))

        abstain = (declines(sure, best_read, th, names_score, names_missing)
                   or (cfg.year_check and bool(picked)
                       and misses_year(ev.question, ev.passages, picked[0].passage.article_id)))
        return picked, abstain
