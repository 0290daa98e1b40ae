"""Text-file parsers: the VOA seed format (.txt with an HTML body), and plain text or markdown with front matter."""
from __future__ import annotations

import html
import re

from selectolax.lexbor import LexborHTMLParser

from ..errors import ArticleError, ArticleWarning
from ..types import Article
from .dates import checked_date, parse_date
from .html import MAX_HTML_DEPTH, TAG, find_captions, fragment_blocks, html_blocks, node_text, too_deep
from .normalise import assemble, clean_line, collapse, first_line, merge_datelines, source_from_url, truncate

_LINE_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


# ---------------------------------------------------------------- VOA seed format

VOA_START = re.compile(r"\A\s*<!--\s*(\d{9,14})\s*-->")
_MD_LINK_LINE = re.compile(r"^\[(.*)\]\(([^\s\]]*?)\)$")  # no "]" in the URL: linear on "[](x](x](x..."
_RULE = re.compile(r"^([-*_=])(?:\s*\1){2,}$")


def _unescape_md(s: str) -> str:
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!|<>])", r"\1", s)


def parse_voa(text: str, path: str, start: re.Match) -> Article:
    lines = _LINE_BREAKS.sub("\n", text[start.end():]).split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    title = url = ""
    if i < len(lines) and not TAG.match(lines[i].strip()):
        first = lines[i].strip()
        m = _MD_LINK_LINE.match(first)
        if m:
            title, url = m.group(1), m.group(2)
        else:
            title = first.lstrip("#")
        title = collapse(html.unescape(_unescape_md(title)))
        i += 1
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i < len(lines) and _RULE.match(lines[i].strip()):
            i += 1
    body = "\n".join(lines[i:])

    # The displayed date line wins over the leading timestamp: in the seed the two differ by 17 minutes and the
    # timestamp looks like a crawl/update time, while the date line is the publication time shown to readers.
    published = ""
    captions: tuple[str, ...] = ()
    if too_deep(body):
        raise ArticleError(path, f"HTML nested more than {MAX_HTML_DEPTH} levels deep")
    if TAG.search(body):
        root = LexborHTMLParser(body).body
        for italic in root.css("div > i") if root is not None else ():
            div = italic.parent
            date_text = node_text(italic)
            if date_text and node_text(div) == date_text and parse_date(date_text):
                published = parse_date(date_text)
                div.decompose()  # the date line is metadata, not article text
                break
        captions = find_captions(root, "small, figcaption")
        blocks = html_blocks(root)
    else:
        blocks = plain_blocks(body, headings=True, markdown=True)
    text_out, headings = assemble(blocks)
    if not text_out:
        raise ArticleError(path, "no text after parsing")
    return Article(
        title=title or first_line(text_out), text=text_out, url=url,
        published=published or parse_date(int(start.group(1))),
        source=source_from_url(url), path=path, headings=headings, captions=captions,
    )  # fmt: skip


# ---------------------------------------------------------------- markdown / plain text

_ATX = re.compile(r"^(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$")
# link text and targets stop at the next bracket, so "[[[[..." or "![a](((..." stay linear (not quadratic)
_MD_IMAGE = re.compile(r"\s*!\[([^\[\]]*)\]\([^()]*\)")
_MD_LINK = re.compile(r"\[([^\[\]]+)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_FRONT_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$")
_FRONT_FIELDS = {
    "title": "title", "date": "published", "published": "published", "pubdate": "published",
    "published_at": "published", "url": "url", "link": "url", "canonical_url": "url", "source": "source",
    "publisher": "source",
}  # fmt: skip


def _md_inline(s: str) -> str:
    s = _MD_IMAGE.sub("", s)
    return _MD_LINK.sub(r"\1", s).strip()


def plain_blocks(text: str, headings: bool, markdown: bool) -> list[tuple[str, bool]]:
    blocks: list[tuple[str, bool]] = []
    cur: list[str] = []

    def flush() -> None:
        if cur:
            para = "\n".join(cur)
            if TAG.search(para):
                blocks.extend(fragment_blocks(para))
            else:
                blocks.append((para, False))
            cur.clear()

    for raw in _LINE_BREAKS.sub("\n", text).split("\n"):
        line = clean_line(raw)
        if not line:
            flush()
            continue
        if headings:
            m = _ATX.match(line)
            if m:
                flush()
                heading = clean_line(_md_inline(m.group(2) or "") if markdown else (m.group(2) or ""))
                if heading.strip("#"):
                    blocks.append((heading, True))
                continue
            if _RULE.match(line):
                if len(cur) == 1 and line[0] in "=-":  # setext heading: "Title" underlined with === or ---
                    blocks.append((cur.pop(), True))
                flush()
                continue
        if markdown:
            line = _md_inline(line)
            if not line:
                continue
        cur.append(line)
    flush()
    return merge_datelines(blocks) if headings else blocks


def _front_matter(text: str) -> tuple[dict[str, str], dict[str, int], str]:
    """YAML-like front matter: its known fields, the line number of each, and the text after it."""
    lines = text.split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start >= len(lines) or lines[start].strip() != "---":
        return {}, {}, text
    for end in range(start + 1, min(len(lines), start + 100)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return {}, {}, text
    meta: dict[str, str] = {}
    line_of: dict[str, int] = {}
    for n, line in enumerate(lines[start + 1 : end], start + 2):
        if not line.strip() or line[0] in " \t" or line.lstrip().startswith(("- ", "#")):
            continue
        m = _FRONT_KEY.match(line)
        if not m:
            return {}, {}, text  # not YAML: just a rule followed by text
        field_name = _FRONT_FIELDS.get(m.group(1).lower())
        value = m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if field_name and value and field_name not in meta:
            meta[field_name], line_of[field_name] = value, n
    return meta, line_of, "\n".join(lines[end + 1 :])


def parse_plain(text: str, path: str, markdown: bool) -> tuple[Article, list[ArticleWarning]]:
    text = _LINE_BREAKS.sub("\n", text)
    meta, line_of, body = _front_matter(text)
    lines = body.split("\n")
    first_idx = next((i for i, line in enumerate(lines) if clean_line(line)), None)
    title = collapse(TAG.sub("", meta.get("title", "")))
    rest = body
    if first_idx is not None:
        first = clean_line(lines[first_idx])
        link = _MD_LINK_LINE.match(first)
        if link and link.group(1).strip():  # "[title](url)", as in the VOA exports
            first = lines[first_idx] = _unescape_md(link.group(1))
            meta.setdefault("url", link.group(2))
        m = _ATX.match(first)
        setext = first_idx + 1 < len(lines) and re.fullmatch(r"\s*(=+|-+)\s*", lines[first_idx + 1])
        if m or setext:
            heading = clean_line(m.group(2) or "") if m else first
            heading = collapse(_md_inline(heading) if markdown else heading)
            if not title or heading == title:
                title = title or heading
                rest = "\n".join(lines[first_idx + (1 if m else 2) :])
        elif not title and len(first) <= 200:
            title = first
            rest = "\n".join(lines[first_idx + 1 :])
            if not plain_blocks(rest, headings=True, markdown=markdown):
                rest = body  # a one-line article: the line is both title and text
    blocks = plain_blocks(rest, headings=True, markdown=markdown)
    text_out, headings = assemble(blocks)
    if not text_out:
        raise ArticleError(path, "no text after the title")
    if title and TAG.search(title):
        title = collapse(" ".join(t for t, _ in fragment_blocks(title)))
    url = meta.get("url", "")
    published, warnings = checked_date(meta.get("published"), path, "front matter date", line=line_of.get("published"))
    return Article(
        title=truncate(title) if title else first_line(text_out), text=text_out, url=url, published=published,
        source=meta.get("source", "") or source_from_url(url), path=path, headings=headings,
    ), warnings  # fmt: skip
