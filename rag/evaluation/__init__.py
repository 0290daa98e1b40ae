"""Evaluation: question sets, per-question metrics, the runner behind `rag eval` / eval/run.py, reports and the
SQuAD-format converters that build eval/corpus and eval/sets."""
from .metrics import (
    MAX_RANK,
    AnswerScores,
    EvalRun,
    QuestionResult,
    Scores,
    aggregate,
    citation_correct,
    contains_answer,
    first_hit_rank,
    group_results,
    hit_at,
    normalise,
    passage_hits,
    percentile,
    reciprocal_rank,
    score_answer,
)
from .questions import (
    EvalError,
    Question,
    QuestionSet,
    load_questions,
    sample_questions,
)
from .report import compare, render_markdown, scores_table, write_report
from .runner import (
    DEFAULT_OUT,
    add_arguments,
    evaluate_question,
    index_info,
    main,
    run_eval,
)

__all__ = ["AnswerScores", "DEFAULT_OUT", "EvalError", "EvalRun", "MAX_RANK", "Question", "QuestionResult",
           "QuestionSet", "Scores", "add_arguments", "aggregate", "citation_correct", "compare", "contains_answer", "evaluate_question",
           "first_hit_rank", "group_results", "hit_at", "index_info", "load_questions", "main", "normalise", "passage_hits",
           "percentile", "reciprocal_rank", "render_markdown", "run_eval", "sample_questions", "score_answer",
           "scores_table", "write_report"]
