"""Question sets (JSONL): parsed, checked line by line, sampled."""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ..errors import RagError
from ..lang import detect_lang
from ..lang.when import as_date
from .chronoqa import chronoqa_questions, is_chronoqa


class EvalError(RagError):
    """A question set, index or report file cannot be used."""


# ---------------------------------------------------------------- question sets


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    set: str
    lang: str
    unanswerable: bool = False
    article_id: str | None = None
    history: tuple[tuple[str, str], ...] = ()
    where: str = ""  # "file:line", for messages
    now: str | None = None  # the day the question's "昨天"/"最新" are read against (YYYY-MM-DD); None: today


@dataclass(frozen=True)
class QuestionSet:
    path: str
    questions: tuple[Question, ...]
    errors: tuple[str, ...] = ()  # "file:line: reason" for each skipped line


def _parse_question(obj, set_name: str) -> Question:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    q = obj.get("question")
    if not isinstance(q, str) or not q.strip():
        raise ValueError("'question' must be a non-empty string")
    qid = obj.get("id")
    if not isinstance(qid, (str, int)) or isinstance(qid, bool) or str(qid) == "":
        raise ValueError("'id' must be a non-empty string or integer")
    answers = obj.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ValueError("'answers' must be a list of strings")
    answers = tuple(dict.fromkeys(a.strip() for a in answers if a.strip()))
    unanswerable = obj.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise ValueError("'unanswerable' must be true or false")
    if unanswerable and answers:
        raise ValueError("an 'unanswerable' question must have no answers")
    if not unanswerable and not answers:
        raise ValueError("'answers' is empty; mark the question \"unanswerable\": true if the corpus cannot answer it")
    article_id = obj.get("article_id")
    if article_id is not None and (not isinstance(article_id, str) or not article_id):
        raise ValueError("'article_id' must be a non-empty string or null")
    history = obj.get("history") or []
    if not isinstance(history, list) or not all(
        isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in history
    ):
        raise ValueError("'history' must be a list of [question, answer] string pairs")
    lang = obj.get("lang") or detect_lang(q)
    if not isinstance(lang, str):
        raise ValueError("'lang' must be a string")
    name = obj.get("set") or set_name
    if not isinstance(name, str):
        raise ValueError("'set' must be a string")
    now = obj.get("now")
    if now is not None:
        try:
            if not isinstance(now, str):
                raise ValueError
            now = as_date(now).isoformat()
        except ValueError:
            raise ValueError(f"'now' must be YYYY-MM-DD, got {now!r}") from None
    return Question(id=str(qid), question=q.strip(), answers=answers, set=name, lang=lang,
                    unanswerable=unanswerable, article_id=article_id,
                    history=tuple((a, b) for a, b in history), now=now)


def load_questions(path: str | os.PathLike) -> QuestionSet:
    """Read a JSONL question set. Bad lines are skipped and reported in `errors`; an unreadable file raises."""
    path = str(path)
    if is_chronoqa(path):
        return _chronoqa_set(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise EvalError(f"{path}: cannot read question set: {e}") from None
    set_name = Path(path).stem
    questions: list[Question] = []
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ValueError(f"invalid JSON ({e})") from None
            q = _parse_question(obj, set_name)
            if (q.set, q.id) in seen:
                raise ValueError(f"duplicate id {q.id!r} in set {q.set!r}")
        except ValueError as e:
            errors.append(f"{path}:{n}: {e}")
            continue
        seen.add((q.set, q.id))
        questions.append(replace(q, where=f"{path}:{n}"))
    return QuestionSet(path, tuple(questions), tuple(errors))


def _chronoqa_set(path: str) -> QuestionSet:
    """ChronoQA's CSV (rag.evaluation.chronoqa): its rows with a verbatim answer, each asked on its question_date."""
    try:
        records, errors = chronoqa_questions(path)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise EvalError(f"{path}: cannot read ChronoQA file: {e}") from None
    questions = []
    for r in records:
        try:
            questions.append(replace(_parse_question(r, r["set"]), where=f"{path}:{r['id']}"))
        except ValueError as e:
            errors.append(f"{path}: row {r['id']}: {e}")
    return QuestionSet(path, tuple(questions), tuple(errors))


def sample_questions(questions: Sequence[Question], limit: int | None, seed: int = 0) -> list[Question]:
    """`limit` questions drawn with a seeded RNG, kept in file order (all of them when limit is None or larger)."""
    if limit is None or limit >= len(questions):
        return list(questions)
    keep = set(random.Random(seed).sample(range(len(questions)), max(limit, 0)))
    return [q for i, q in enumerate(questions) if i in keep]
