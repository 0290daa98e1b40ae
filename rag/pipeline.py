"""`retrieve()` and `ask()`: the two calls the CLI, the UI and eval stand on."""
from __future__ import annotations

import collections
import dataclasses
import datetime
import os
import re
import reprlib
import threading

from .answer import CROSS_NOTE, NOT_FOUND, AnswerConfig, Answerer, Evidence, gather as evidence, query_terms
from .lang import clean
from .lang.parts import split_parts
from .lang.when import DateRange, as_date, resolve
from .retrieve import DEFAULT_FUSION, Fusion, Searcher, searcher
from .store import default_store
from .types import Answer, Passage

# Questions are cut here (the longest of 12,800 dev questions has 200 characters): e5 embeds a 500-character query
# in ~0.4 s and a 1,000-character one in ~0.8 s, time every other caller waits for (eval/load_hostile.py).
MAX_QUESTION_CHARS = 500
EARLIER_CHARS = 200  # of an earlier question carried into a follow-up's retrieval query
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


_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2})?)Z?)?")


def check_dates(date_from, date_to, names: tuple[str, str] = ("date_from", "date_to")) -> None:
    """Raise ValueError unless each date is None or ISO (2024-05-01, optionally with a time such as T08:30Z) and
    the range is not empty. `names`: what the caller calls the two (the CLI: --from, --to)."""
    instants = []
    for name, v, end_of_day in ((names[0], date_from, False), (names[1], date_to, True)):
        if v is None:
            instants.append(None)
            continue
        try:
            m = _DATE.fullmatch(v) if isinstance(v, str) else None
            if m is None:
                raise ValueError
            day = datetime.date.fromisoformat(m[1])
            # a bare date_to means the whole of that day, as the index's filter reads it
            at = datetime.time.fromisoformat(m[2]) if m[2] else datetime.time.max if end_of_day else datetime.time()
        except ValueError:
            raise ValueError(f"{name} must be an ISO date such as 2024-05-01, got {v!r}") from None
        instants.append(datetime.datetime.combine(day, at))
    if None not in instants and instants[0] > instants[1]:
        raise ValueError(f"{names[0]} {date_from} is after {names[1]} {date_to}")


def _check_filters(k, date_from, date_to) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    check_dates(date_from, date_to)


def check_history(history) -> list[tuple[str, str]]:
    """`history` as a list of (question, answer) pairs; None and [] are no history. A TypeError or ValueError
    names the first turn that is not a pair of strings."""
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise TypeError("history must be a list of [question, answer] pairs of strings, "
                        f"got {type(history).__name__} {reprlib.repr(history)}")
    for i, turn in enumerate(history):
        if not isinstance(turn, (list, tuple)):
            raise TypeError(f"history[{i}] must be a [question, answer] pair of strings, "
                            f"got {type(turn).__name__} {reprlib.repr(turn)}")
        if len(turn) != 2:
            raise ValueError(f"history[{i}] must be a [question, answer] pair of strings, "
                             f"got {len(turn)} items: {reprlib.repr(turn)}")
        for part, x in zip(("question", "answer"), turn):
            if not isinstance(x, str):
                raise TypeError(f"history[{i}] {part} must be a string, got {type(x).__name__} {reprlib.repr(x)}")
    return [tuple(turn) for turn in history]


def workers() -> int:
    """How many questions a server answers at once: $RAG_WORKERS, else one per core. A question is single-threaded
    CPU work (the readers run one onnxruntime thread each), so more at once only share the cores and stretch every
    answer's time, while the ones waiting in line keep their turn (docs/performance.md, "Serving")."""
    try:
        n = int(os.environ.get("RAG_WORKERS", "0"))
    except ValueError:
        n = 0
    return n if n > 0 else (os.cpu_count() or 1)


class Gate:
    """At most `n` holders at once (`with gate: ...`); the others wait in arrival order: a freed slot passes straight
    to the longest waiter, so a caller that has just left cannot overtake it (threading.Semaphore lets it: measured,
    16 callers over 2 slots, one question waited 22 s)."""

    def __init__(self, n: int):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"a gate needs at least one slot, got {n!r}")
        self.n = n
        self._free = n
        self._lock = threading.Lock()
        self._waiting: collections.deque[threading.Event] = collections.deque()

    def __enter__(self) -> "Gate":
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return self
            turn = threading.Event()
            self._waiting.append(turn)
        turn.wait()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()  # the slot changes hands without being free
            else:
                self._free += 1


_gate: Gate | None = None
_gate_lock = threading.Lock()


def answer_slot() -> Gate:
    """The process-wide gate a server's ask/retrieve calls pass through (`with answer_slot(): ...`): `workers()` at
    a time, the rest wait their turn in line."""
    global _gate
    with _gate_lock:
        if _gate is None:
            _gate = Gate(workers())
        return _gate


def _resolve_index(index) -> Searcher:
    if index is None:
        index = default_store()  # $RAG_STORE, else $RAG_INDEX, else ./.rag-index
    return searcher(index)


def contextualise(question: str, history: list[tuple[str, str]] | None) -> tuple[str, str]:
    """(query for retrieval, question for sentence scoring): a short or anaphoric follow-up borrows the last turn.

    The earlier question (and its answer's text) only widens retrieval; sentences are scored against the new
    question alone, else the earlier turn's answer sentence outranks what the follow-up asks (followup set:
    answer-sentence hit 57.1 -> 71.4). The earlier answer keeps retrieval on its story: with e5 as a second retriever
    a chunk of an unrelated article that also says "他" came up to rank 4 for "他在那里见了谁？" and was cited
    (followup set, ans-sent hit with the earlier question alone / and its answer: 76.2 / 85.7, wrong declines 4.8 /
    0.0). The query is at most EARLIER_CHARS + ANSWER_CHARS + MAX_QUESTION_CHARS + 2 characters, whatever the
    history holds.
    """
    history = check_history(history)
    question = question[:MAX_QUESTION_CHARS]
    if not history:
        return question, question
    prev_q = clean(history[-1][0]).strip()[:EARLIER_CHARS]
    if not prev_q:
        return question, question
    # A follow-up points back ("他在那里见了谁？") or is too short to stand alone ("那2023年呢？").
    if _ANAPHORA.search(question) or len(query_terms(question)) <= 2:
        prev_a = _answer_words(clean(history[-1][1]))
        return " ".join(x for x in (prev_q, prev_a, question) if x), question
    return question, question


# a citation marker, and the article date a time question's answer puts before a sentence (rag.answer.date_note)
_MARKER = re.compile(r"\s*\[\d+\]|[（(]\d{4}-\d{2}-\d{2}[）)] ?")


def _answer_words(answer: str) -> str:
    """An earlier answer's text without citation markers and notes ("" for a decline): it keeps a follow-up's
    retrieval on the story that answer came from."""
    if answer.strip() in NOT_FOUND.values():
        return ""
    for note in CROSS_NOTE.values():
        answer = answer.replace(note, "")
    return _MARKER.sub("", answer).strip()[:ANSWER_CHARS]


def question_dates(question: str, now=None, history: list[tuple[str, str]] | None = None) -> DateRange | None:
    """The dates `question` asks about, read against `now` (a date, datetime, "YYYY-MM-DD" or None for today):
    rag.lang.when.resolve; a follow-up that names none keeps its earlier question's ("那他还说了什么？")."""
    today = as_date(now)
    found = resolve(question, today)
    if found is None and history:
        found = resolve(clean(history[-1][0])[:EARLIER_CHARS], today)
    return found


def retrieve(question: str, index=None, k: int = 5, *, date_from: str | None = None, date_to: str | None = None,
             source: str | None = None, fusion: Fusion = DEFAULT_FUSION, now=None) -> list[Passage]:
    """The `k` best passages for `question`, best first. The question's dates (read against `now`, default today:
    see `question_dates`) favour the articles of those days, unless date_from/date_to filter."""
    q = _check_question(question)
    _check_filters(k, date_from, date_to)
    when = question_dates(q, now)
    recency = when.now if when is not None and when.latest else None
    explicit = date_from is not None or date_to is not None
    return _resolve_index(index).search(q, k, fusion, date_from, date_to, source, when=None if explicit else when,
                                        recency=recency)


def gather(question: str, index=None, k: int = 5, *, history=None, date_from=None, date_to=None, source=None,
           fusion: Fusion = DEFAULT_FUSION, config: AnswerConfig = DEFAULT_ANSWER, now=None) -> Evidence:
    """What `ask` reads before it chooses (checked input, a follow-up's history applied)."""
    q = _check_question(question)
    _check_filters(k, date_from, date_to)
    query, scoring_q = contextualise(q, history)
    when = question_dates(q, now, check_history(history) if query != q else None)
    explicit = date_from is not None or date_to is not None
    if explicit and when is not None:  # the filter's days are the ones the answer is about
        lo = datetime.date.fromisoformat(date_from[:10]) if date_from else datetime.date.min
        hi = datetime.date.fromisoformat(date_to[:10]) if date_to else datetime.date.max
        when = dataclasses.replace(when, start=lo, end=hi, granularity="day", relative=False)
    return evidence(_resolve_index(index), q, query, scoring_q, k, fusion, config, date_from, date_to, source,
                    when=when, explicit=explicit)


def ask(question: str, index=None, k: int = 5, *, history: list[tuple[str, str]] | None = None,
        date_from: str | None = None, date_to: str | None = None, source: str | None = None,
        fusion: Fusion = DEFAULT_FUSION, config: AnswerConfig = DEFAULT_ANSWER, now=None) -> Answer:
    """Answer `question` with 1-3 sentences quoted from the indexed articles, each cited; or decline.

    `now` (a date, datetime, "YYYY-MM-DD"; default today's local date) is the day "昨天", "last week" or "最新" are
    read against. The question's dates favour the articles of those days and the passages that state them (a
    soft boost, Fusion.date_boost); date_from/date_to, when given, filter instead. A question about time gets
    each cited article's date in the answer text. A question in several parts ("谁…？在哪里…？") is answered part by
    part: the best sentence of each (rag.lang.parts)."""
    parts = split_parts(_check_question(question))
    if len(parts) > 1:  # "Q1？Q2？": each part gathers its own evidence, a later one with the earlier as its history
        evs = [gather(part, index, k, history=(history or []) + ([(" ".join(parts[:i]), "")] if i else []) or None,
                      date_from=date_from, date_to=date_to, source=source, fusion=fusion, config=config, now=now)
               for i, part in enumerate(parts)]
        return Answerer(config).run_parts(_check_question(question), evs)
    ev = gather(question, index, k, history=history, date_from=date_from, date_to=date_to, source=source,
                fusion=fusion, config=config, now=now)
    return Answerer(config).run(ev)
