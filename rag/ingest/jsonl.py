"""Parse .jsonl files: one JSON object per line into an article, bad lines reported by line number."""
from __future__ import annotations

import json
import math
import re

from ..errors import ArticleError
from ..types import Article
from .dates import checked_date
from .normalise import assemble, collapse, first_line, source_from_url
from .plain import plain_blocks

_JSON_TYPES = {
    dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
    type(None): "null",
}  # fmt: skip
_FIELDS = ("title", "url", "published", "text", "source")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _int(digits: str) -> int | float:
    # past 4,300 digits int() refuses (json.loads would fail with a bare ValueError); no date is that long anyway
    return int(digits) if len(digits) <= 4000 else math.copysign(math.inf, -1 if digits.startswith("-") else 1)


def _field_problem(obj: dict) -> str | None:
    for key in _FIELDS:
        value = obj.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            bad = _SURROGATE.search(value)
            if bad:  # a "\ud800" escape without its pair: no character, and no text that can be stored
                return (f"field '{key}' holds a lone surrogate escape (\\u{ord(bad.group()):04x} at character "
                        f"{bad.start()}): not a character; fix or remove that escape")
            continue
        if key == "published" and isinstance(value, (int, float)) and not isinstance(value, bool):
            continue  # epoch seconds or milliseconds
        return f"field '{key}' must be a string, not {_JSON_TYPES[type(value)]}"
    return None


def parse_jsonl(text: str, path: str, max_bytes: int | None = None) -> tuple[list[Article], list[ArticleError]]:
    """One article per line; bad lines (and lines over `max_bytes` in UTF-8) become line errors, dropped dates
    warnings (`ArticleWarning`)."""
    articles: list[Article] = []
    errors: list[ArticleError] = []
    for n, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        if max_bytes is not None and len(line) * 4 > max_bytes and len(line.encode("utf-8", "surrogatepass")) > max_bytes:
            errors.append(ArticleError(path, f"article too large: {len(line.encode('utf-8', 'surrogatepass'))} "
                                             f"bytes, over the limit of {max_bytes} bytes (--max-mb)", line=n))
            continue
        try:
            obj = json.loads(line, parse_int=_int)
        except json.JSONDecodeError as e:
            errors.append(ArticleError(path, f"not valid JSON ({e.msg} at column {e.colno})", line=n))
            continue
        except RecursionError:
            errors.append(ArticleError(path, "not valid JSON (nested too deeply)", line=n))
            continue
        if not isinstance(obj, dict):
            errors.append(ArticleError(path, f"not a JSON object (got {_JSON_TYPES[type(obj)]})", line=n))
            continue
        bad = _field_problem(obj)
        if bad:
            errors.append(ArticleError(path, bad, line=n))
            continue
        body, _ = assemble(plain_blocks(obj.get("text") or "", headings=False, markdown=False))
        if not body:
            errors.append(ArticleError(path, "missing or empty field 'text'", line=n))
            continue
        url = (obj.get("url") or "").strip()
        published, warnings = checked_date(obj.get("published"), path, "field 'published'", line=n)
        errors.extend(warnings)
        articles.append(
            Article(
                title=collapse(obj.get("title") or "") or first_line(body), text=body, url=url,
                published=published, path=path,
                source=collapse(obj.get("source") or "") or source_from_url(url),
            )  # fmt: skip
        )
    if not articles and not errors:
        raise ArticleError(path, "no text: no articles in the file")
    return articles, errors
