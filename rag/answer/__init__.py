"""Answer: candidate sentences of the retrieved passages, their features, the ranker's order, the readers' second
look, the decline rules and the cited answer text, driven by one `Answerer` under one `AnswerConfig`."""
from .answerer import Answerer
from .candidates import Candidate, candidates
from .compose import CROSS_NOTE, NOT_FOUND, build_answer, date_note
from .config import PAIRS, AnswerConfig, Reach, Thresholds
from .decide import (
    article_texts,
    by_date,
    confidence,
    declines,
    misses_year,
    rank,
    reread,
    reread_features,
    rescore,
    select,
    tied,
    to_read,
    to_rescore,
    top_gap,
    wants_reading_for_confidence,
    wants_reorder,
    wants_rescore,
)
from .evidence import Evidence, gather
from .features import crosses, features, idf_table, name_glosses, query_terms

__all__ = ["Answerer", "AnswerConfig", "CROSS_NOTE", "Candidate", "Evidence", "NOT_FOUND", "PAIRS", "Reach",
           "Thresholds", "article_texts", "build_answer", "by_date", "candidates", "confidence", "crosses",
           "date_note", "declines", "features", "gather", "idf_table", "misses_year", "name_glosses", "query_terms",
           "rank", "reread", "reread_features", "rescore", "select", "tied", "to_read", "to_rescore", "top_gap",
           "wants_reading_for_confidence", "wants_reorder", "wants_rescore"]
