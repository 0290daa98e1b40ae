"""The form's inputs: the question, the date range and number of sources, checked; the chat kept and its history."""
from __future__ import annotations

import re
from datetime import date
from typing import Any, Iterable

from ..lang import clean
from ..pipeline import MAX_QUESTION_CHARS
from .render import from_display, t

K_MIN, K_MAX, K_DEFAULT = 1, 10, 5
# The chat a request may carry: the oldest messages beyond these go, longer ones are cut (only the last turn is read
# as history; the rest is for the eye).
MAX_CHAT_MESSAGES = 40
MAX_MESSAGE_CHARS = 4000


class InputError(ValueError):
    """A user input (date, k, upload) that cannot be used; the message is ready to show."""


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_question(question: Any, lang: str = "zh") -> str:
    """The question stripped, or InputError when it is empty (after cleaning) or over MAX_QUESTION_CHARS."""
    q = question.strip() if isinstance(question, str) else ""
    if not q or not clean(q).strip():
        raise InputError(t(lang, "q_empty"))
    if len(q) > MAX_QUESTION_CHARS:
        raise InputError(t(lang, "q_long", n=len(q), max=MAX_QUESTION_CHARS))
    return q


def parse_dates(date_from: str | None, date_to: str | None, lang: str = "zh") -> tuple[str | None, str | None]:
    """Validate the optional YYYY-MM-DD range; returns (from, to) with None for empty boxes."""
    out = []
    for which, value in (("which_from", date_from), ("which_to", date_to)):
        v = (value or "").strip() if isinstance(value, str) else ("" if value is None else str(value).strip())
        if not v:
            out.append(None)
            continue
        try:
            if not _DAY.fullmatch(v):
                raise ValueError
            date.fromisoformat(v)
        except ValueError:
            raise InputError(t(lang, "bad_date", which=t(lang, which), value=v[:40])) from None
        out.append(v)
    if out[0] and out[1] and out[0] > out[1]:
        raise InputError(t(lang, "date_order", start=out[0], end=out[1]))
    return out[0], out[1]


def parse_k(k: Any, lang: str = "zh") -> int:
    try:
        f = float(k)
    except (TypeError, ValueError):
        raise InputError(t(lang, "bad_k", lo=K_MIN, hi=K_MAX)) from None
    if f != int(f) or not K_MIN <= int(f) <= K_MAX:
        raise InputError(t(lang, "bad_k", lo=K_MIN, hi=K_MAX))
    return int(f)


def message_text(content: Any) -> str:
    """The text of one Chatbot message content (a string, a text block, or a list of blocks)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        if content.get("type", "text") != "text":
            return ""
        return str(content.get("text", content.get("value", "")) or "")
    if isinstance(content, (list, tuple)):
        return "\n".join(s for s in (message_text(c) for c in content) if s)
    text = getattr(content, "text", None)
    return text if isinstance(text, str) else ""


def trim_chat(messages: Iterable[Any] | None, keep: int = MAX_CHAT_MESSAGES) -> list[Any]:
    """The last `keep` Chatbot messages, each message's text cut to MAX_MESSAGE_CHARS."""
    out = []
    for m in list(messages or [])[-keep:] if keep > 0 else []:
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        text = message_text(content)
        if len(text) > MAX_MESSAGE_CHARS:
            role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
            m = {"role": role, "content": text[:MAX_MESSAGE_CHARS]}
        out.append(m)
    return out


def history_pairs(messages: Iterable[Any] | None) -> list[tuple[str, str]]:
    """Chatbot messages (role/content dicts) -> [(question, answer), ...] of plain text for ask(history=...)."""
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for m in messages or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        text = from_display(message_text(content)).strip()
        if role == "user":
            if pending is not None:
                pairs.append((pending, ""))
            pending = text
        elif role == "assistant" and pending is not None:
            pairs.append((pending, text))
            pending = None
    return pairs
