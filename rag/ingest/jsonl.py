"""Parse .jsonl files: one JSON object per line into an article, bad lines reported by line number."""
from __future__ import annotations

import json

from ..errors import ArticleError
from ..types import Article
from .dates import parse_date
from .normalise import assemble, collapse, first_line, source_from_url
from .plain import plain_blocks

_JSON_TYPES = {
    dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
    type(None): "null",
}  # fmt: skip


def parse_jsonl(text: str, path: str) -> tuple[list[Article], list[ArticleError]]:
    articles: list[Article] = []
    errors: list[ArticleError] = []
    for n, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(ArticleError(path, f"not valid JSON ({e.msg} at column {e.colno})", line=n))
            continue
        except RecursionError:
            errors.append(ArticleError(path, "not valid JSON (nested too deeply)", line=n))
            continue
        if not isinstance(obj, dict):
            errors.append(ArticleError(path, f"not a JSON object (got {_JSON_TYPES[type(obj)]})", line=n))
            continue
        bad = None
        for key in ("title", "url", "published", "text", "source"):
            value = obj.get(key)
            if value is None or isinstance(value, str):
                continue
            if key == "published" and isinstance(value, (int, float)) and not isinstance(value, bool):
                continue  # epoch seconds or milliseconds
            bad = f"field '{key}' must be a string, not {_JSON_TYPES[type(value)]}"
            break
        if bad:
            errors.append(ArticleError(path, bad, line=n))
            continue
        body, _ = assemble(plain_blocks(obj.get("text") or "", headings=False, markdown=False))
        if not body:
            errors.append(ArticleError(path, "missing or empty field 'text'", line=n))
            continue
        url = (obj.get("url") or "").strip()
        articles.append(
            Article(
                title=collapse(obj.get("title") or "") or first_line(body), text=body, url=url,
                published=parse_date(obj.get("published")), path=path,
                source=collapse(obj.get("source") or "") or source_from_url(url),
            )  # fmt: skip
        )
    if not articles and not errors:
        raise ArticleError(path, "no text: no articles in the file")
    return articles, errors
