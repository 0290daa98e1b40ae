"""Text clean-up shared by the format parsers: control characters, whitespace, titles, blocks and source names."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

TITLE_MAX = 80
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ufeff]")


def clean_line(s: str) -> str:
    """Drop control characters, collapse runs of whitespace (except newlines) to one space, strip."""
    return re.sub(r"[^\S\n]+", " ", _CONTROL.sub("", s)).strip()


def collapse(s: str) -> str:
    return re.sub(r"\s+", " ", _CONTROL.sub("", s)).strip()


def truncate(s: str, n: int = TITLE_MAX) -> str:
    return s if len(s) <= n else s[:n].rstrip()


def first_line(text: str) -> str:
    return truncate(text.split("\n", 1)[0].strip())


def assemble(blocks: list[tuple[str, bool]]) -> tuple[str, tuple[tuple[int, str], ...]]:
    parts, headings, pos = [], [], 0
    for text, is_heading in blocks:
        if parts:
            pos += 2
        if is_heading:
            headings.append((pos, text))
        parts.append(text)
        pos += len(text)
    return "\n\n".join(parts), tuple(headings)


def merge_datelines(blocks: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Join a short dateline such as "华盛顿 —" or "WASHINGTON -" to the paragraph that follows it."""
    out: list[tuple[str, bool]] = []
    for text, is_heading in blocks:
        if out and not is_heading and not out[-1][1]:
            prev = out[-1][0]
            if len(prev) <= 40 and prev[-1] in "—–-―" and prev[:-1].strip():
                out[-1] = (prev + " " + text, False)
                continue
        out.append((text, is_heading))
    return out


_SECOND_LEVEL = {"co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go"}


def source_from_url(url: str) -> str:
    """The publisher's name from a URL host: www.voachinese.com -> voachinese."""
    try:
        host = (urlsplit(url).hostname or "").strip(".").lower()
    except ValueError:
        return ""
    if not host or re.fullmatch(r"[\d.]+|[0-9a-f:]+", host):
        return host
    labels = host.split(".")
    if len(labels) >= 2:
        tld = labels.pop()
        if len(labels) >= 2 and len(tld) == 2 and labels[-1] in _SECOND_LEVEL:  # news.bbc.co.uk -> bbc
            labels.pop()
    return labels[-1]
