"""ChronoQA's CSV layout (time-sensitive news questions with the day they are asked) as articles and questions."""
from __future__ import annotations

import ast
import csv
import dataclasses
import datetime
import json
import os
import re
from dataclasses import dataclass

from ..ingest.jsonl import parse_jsonl
from ..types import Article

COLUMNS = ("question", "question_date", "answer", "temporal_expression_type", "temporal_type", "answer_type",
           "golden_chunks")
VERBATIM_TYPES = ("entity", "numerical", "time")  # answers that are written in a gold passage, usually
SOURCE = "chronoqa"


@dataclass(frozen=True)
class ChronoRow:
    id: str
    question: str
    now: str  # question_date: the day "上周" and "最近" are read against
    answer: str
    expression: str  # temporal_expression_type: explicit | implicit
    kind: str  # temporal_type: absolute | relative | aggregate
    answer_type: str
    gold: tuple[str, ...]  # the gold passages' article ids

    @property
    def verbatim(self) -> bool:
        """The answer is a span a cited sentence can hold (entity / numerical / time types)."""
        return self.answer_type in VERBATIM_TYPES


def _day(value: str) -> str:
    """question_date as YYYY-MM-DD ("2024-6-15" occurs)."""
    m = re.fullmatch(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*", value or "")
    if m:
        try:
            return datetime.date(*map(int, m.groups())).isoformat()
        except ValueError:
            pass
    raise ValueError(f"'question_date' must be a date YYYY-MM-DD, got {value!r}")


def is_chronoqa(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(".csv")


def passage_article(text: str) -> Article:
    """A gold passage as the article `rag index` makes of the JSONL line {"text": ..., "source": "chronoqa"} (so the
    ids agree): no URL or date (ChronoQA gives none; the date a passage states in its text is evidence for retrieval,
    not metadata), its first line as title."""
    articles, errors = parse_jsonl(json.dumps({"text": text, "source": SOURCE}, ensure_ascii=False), "<chronoqa>")
    if errors or len(articles) != 1:
        raise ValueError(f"a gold passage cannot be read as an article: {errors[0] if errors else 'empty'}")
    return dataclasses.replace(articles[0], path="")


def read_chronoqa(path: str | os.PathLike) -> tuple[list[Article], list[ChronoRow], list[str]]:
    """Articles (every gold passage once), rows, and "file:row: reason" for each row that cannot be used. An unreadable
    file raises OSError or UnicodeDecodeError; one without ChronoQA's columns, ValueError."""
    path = str(path)
    csv.field_size_limit(1 << 26)
    articles: dict[str, Article] = {}
    rows: list[ChronoRow] = []
    errors: list[str] = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"not ChronoQA's layout: no column {', '.join(missing)}")
        for n, r in enumerate(reader, 2):
            try:
                chunks = ast.literal_eval(r["golden_chunks"])
                if not isinstance(chunks, list) or not chunks or not all(isinstance(c, str) and c.strip() for c in chunks):
                    raise ValueError("'golden_chunks' must be a non-empty list of passages")
                if not r["question"].strip():
                    raise ValueError("'question' is empty")
                gold = []
                for c in chunks:
                    a = passage_article(c)
                    articles.setdefault(a.id, a)
                    gold.append(a.id)
                qid = (r.get("") or r.get("id") or str(n - 2)).strip()
                rows.append(ChronoRow(id=qid, question=r["question"].strip(), now=_day(r["question_date"]),
                                      answer=r["answer"].strip(), expression=r["temporal_expression_type"].strip(),
                                      kind=r["temporal_type"].strip(), answer_type=r["answer_type"].strip(),
                                      gold=tuple(dict.fromkeys(gold))))
            except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
                errors.append(f"{path}:{n}: {e}")
    return list(articles.values()), rows, errors


def chronoqa_questions(path: str | os.PathLike) -> tuple[list[dict], list[str]]:
    """The rows `rag eval` can score, as question-set records: the verbatim-answer ones whose answer one gold passage
    holds (article_id: that passage), asked on their question_date, in sets "chronoqa/<expression>-<kind>"."""
    articles, rows, errors = read_chronoqa(path)
    text = {a.id: a.text for a in articles}
    out = []
    for r in rows:
        holders = [g for g in r.gold if r.answer and r.answer in text[g]]
        if not r.verbatim or not holders:
            continue
        out.append({"id": r.id, "question": r.question, "answers": [r.answer], "now": r.now,
                    "article_id": holders[0] if len(holders) == 1 else None,
                    "set": f"chronoqa/{r.expression}-{r.kind}", "lang": "zh"})
    return out, errors
