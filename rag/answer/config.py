"""`AnswerConfig`: how many sentences to cite, when the readers look again and when to decline, validated at once."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..models import DEFAULT_READER, RANKER_PATH, READER_SPECS

PAIRS = ("zh-zh", "en-zh", "en-en", "zh-en")  # (question language)-(language of the first cited sentence)


def _number(owner: str, name: str, v, low: float = -math.inf, high: float = math.inf, *, finite: bool = True,
            closed_high: bool = True) -> None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)
    ok = ok and (math.isfinite(v) or not finite) and low <= v and (v <= high if closed_high else v < high)
    if not ok:
        span = "" if (low, high) == (-math.inf, math.inf) else f" in [{low}, {high}{']' if closed_high else ')'}"
        raise ValueError(f"{owner}.{name} must be a {'finite ' if finite else ''}number{span}, got {v!r}")


@dataclass(frozen=True)
class Thresholds:
    """When to decline for one language pair (docs/decisions.md#abstention). Without a reading: a confidence (the
    best probability of any sentence) below `min_confidence`. With the reader's best cosine: a confidence outside
    `read_band` decides alone (below: decline); inside, logit(confidence) + reader_weight x cosine must reach
    `min_read_score`."""

    min_confidence: float
    read_band: tuple[float, float]
    reader_weight: float
    min_read_score: float

    def __post_init__(self):
        _number("Thresholds", "min_confidence", self.min_confidence, 0.0, 1.0, closed_high=False)
        band = self.read_band
        if (not isinstance(band, tuple) or len(band) != 2 or not all(isinstance(v, (int, float)) for v in band)
                or not 0.0 <= band[0] <= band[1] <= 1.0):
            raise ValueError(f"Thresholds.read_band must be a pair 0 <= low <= high <= 1, got {band!r}")
        _number("Thresholds", "reader_weight", self.reader_weight)
        _number("Thresholds", "min_read_score", self.min_read_score)


@dataclass(frozen=True)
class Reach:
    """Which of the order head's best sentences the re-reader reads (docs/decisions.md#when-it-reads): it reads
    only when the best two are closer than `margin`, and then the `top` best within `window` of the first."""

    top: int
    margin: float
    window: float

    def __post_init__(self):
        if not isinstance(self.top, int) or isinstance(self.top, bool) or self.top < 2:
            raise ValueError(f"Reach.top must be an integer >= 2, got {self.top!r}")
        for name in ("margin", "window"):  # inf: no limit
            _number("Reach", name, getattr(self, name), 0.0, finite=False)
            if getattr(self, name) <= 0:
                raise ValueError(f"Reach.{name} must be a positive number (inf: no limit), got {getattr(self, name)!r}")


@dataclass(frozen=True)
class AnswerConfig:
    """How `ask` answers: thresholds chosen on the dev sets (docs/decisions.md#abstention, #re-reader)."""

    max_sentences: int = 3
    extra_ratio: float = 0.6  # a 2nd/3rd sentence needs at least this share of the confidence
    topic_share: float = 0.5
    ranker: str = str(RANKER_PATH)
    reader: str = DEFAULT_READER  # "e5": re-read the best sentences (rag.models.reader); "none": the ranker alone
    # one Thresholds per language pair (PAIRS)
    zh_zh: Thresholds = Thresholds(0.12, (0.03, 0.3), 160.0, 137.44)
    en_zh: Thresholds = Thresholds(0.12, (0.03, 0.3), 160.0, 117.65)
    en_en: Thresholds = Thresholds(0.016, (0.0, 1.0), 160.0, 128.46)
    zh_en: Thresholds = Thresholds(0.052, (0.0, 1.0), 160.0, 121.08)
    # English over Chinese whose cited article mentions none of the question's names: inside en_zh's band it must
    # reach this stricter score instead (docs/decisions.md#name-check); None: off
    min_read_score_names: float | None = 120.0
    year_check: bool = True  # docs/decisions.md#year-check
    tie_check: bool = True  # docs/decisions.md#tie-check
    askable_check: bool = True  # decline code, chat, instructions and words no article holds (docs/decisions.md#askable)
    # a question's dates (rag.lang.when) pick the first sentence among those with at least date_ratio of the best
    # probability: the article of the asked day first, then one that states the day, and for "最新" the newest
    # (rag.answer.decide.by_date; eval/crud_dates.py)
    date_check: bool = True
    date_ratio: float = 0.5
    # the re-reader (rag.models.rereader) re-orders close calls by order + rereader_weight x its score (+ for an
    # English question rereader_gloss_weight x the dictionary's gloss overlap): docs/decisions.md#re-reader
    rereader: bool = True
    rereader_weight: float = 0.75
    rereader_gloss_weight: float = 2.0
    reach_zh: Reach = field(default=Reach(5, 2.0, 3.0))  # a Chinese question
    reach_en: Reach = field(default=Reach(7, 3.0, 4.0))  # an English question reads wider

    def __post_init__(self):
        if not isinstance(self.reader, str) or self.reader.strip().lower() not in READER_SPECS:
            raise ValueError(f"AnswerConfig.reader must be one of {', '.join(READER_SPECS)}, got {self.reader!r}")
        object.__setattr__(self, "reader", self.reader.strip().lower())
        for pair in PAIRS:
            name = pair.replace("-", "_")
            if not isinstance(getattr(self, name), Thresholds):
                raise ValueError(f"AnswerConfig.{name} must be a Thresholds, got {getattr(self, name)!r}")
        for name in ("reach_zh", "reach_en"):
            if not isinstance(getattr(self, name), Reach):
                raise ValueError(f"AnswerConfig.{name} must be a Reach, got {getattr(self, name)!r}")
        if self.min_read_score_names is not None:
            _number("AnswerConfig", "min_read_score_names", self.min_read_score_names)
        for name in ("rereader_weight", "rereader_gloss_weight"):
            _number("AnswerConfig", name, getattr(self, name), 0.0)
        for name in ("year_check", "tie_check", "askable_check", "date_check", "rereader"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"AnswerConfig.{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.max_sentences, int) or isinstance(self.max_sentences, bool) or not 1 <= self.max_sentences <= 3:
            raise ValueError(f"AnswerConfig.max_sentences must be an integer 1..3, got {self.max_sentences!r}")
        for name in ("extra_ratio", "topic_share", "date_ratio"):
            _number("AnswerConfig", name, getattr(self, name), 0.0, 1.0)

    def thresholds(self, question_lang: str, text_lang: str) -> Thresholds:
        """The thresholds of a question in `question_lang` answered from a sentence in `text_lang`."""
        pair = f"{question_lang}-{text_lang}"
        return getattr(self, pair.replace("-", "_") if pair in PAIRS else "zh_zh")

    def reach(self, question_lang: str) -> Reach:
        return self.reach_en if question_lang == "en" else self.reach_zh
