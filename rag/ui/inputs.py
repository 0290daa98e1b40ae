"""The form's inputs: the date range and number of sources, checked, and the chat history as plain text."""
from __future__ import annotations

import re
from datetime import date
from typing import Any, Iterable

from .render import from_display, t

K_MIN, K_MAX, K_DEFAULT = 1, 10, 5


class InputError(ValueError):
    """A user input (date, k, upload) that cannot be used; the message is ready to show."""


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


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
