"""HTML into paragraph and heading blocks (selectolax), with nesting-depth limits; whole HTML pages into articles."""
from __future__ import annotations

import html
import json
import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ..errors import ArticleError, ArticleWarning
from ..types import Article
from .dates import checked_date, parse_date
from .normalise import TITLE_MAX, assemble, collapse, first_line, merge_datelines, source_from_url

TAG = re.compile(r"<!--(?:(?!<!--).)*?-->|</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>", re.S)  # linear on "<!--"*n
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
_SENTENCE_END = ("。", "！", "？", ".", "!", "?", "；", ";")

_DROP_TAGS = {
    "script", "style", "noscript", "template", "head", "nav", "header", "footer", "aside", "form", "button",
    "select", "textarea", "input", "iframe", "svg", "canvas", "object", "embed", "img", "picture", "video",
    "audio", "source", "map", "math", "title", "meta", "link",
}  # fmt: skip
_BLOCK_TAGS = {
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "section", "article", "main", "figure",
    "figcaption", "table", "thead", "tbody", "tfoot", "tr", "caption", "pre", "address", "center", "details",
    "summary", "fieldset", "body", "html", "hgroup",
}  # fmt: skip
_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BOLD_TAGS = {"strong", "b"}
_CELL_TAGS = {"td", "th"}


class _Blocks:
    """Collects paragraphs from a DOM walk; a short paragraph whose text is all bold counts as a heading."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, bool]] = []
        self.buf: list[str] = []
        self.plain = False  # the buffer holds some non-bold text
        self.bold = 0
        self.heading = 0

    def add(self, s: str) -> None:
        if _ENTITY.search(s):  # double-escaped markup such as "&amp;nbsp;" in scraped feeds
            s = html.unescape(s)
        self.buf.append(s)
        if not self.bold and not self.heading and s.strip():
            self.plain = True

    def flush(self) -> None:
        text = collapse("".join(self.buf))
        if text:
            is_heading = self.heading > 0 or (
                not self.plain and len(text) <= TITLE_MAX and not text.endswith(_SENTENCE_END)
            )
            self.blocks.append((text, is_heading))
        self.buf, self.plain = [], False


def html_blocks(root: LexborNode | None) -> list[tuple[str, bool]]:
    out = _Blocks()
    if root is None:
        return []
    # iterative walk: (node, closing) pairs, so deeply nested markup cannot exhaust the recursion limit
    stack: list[tuple[LexborNode, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        tag = node.tag
        if closing:
            if tag in _BOLD_TAGS:
                out.bold -= 1
            elif tag in _HEADING_TAGS:
                out.flush()
                out.heading -= 1
            elif tag in _CELL_TAGS:
                out.add(" ")
            else:
                out.flush()
            continue
        if node.is_text_node:
            out.add(node.text_content or "")
            continue
        if not node.is_element_node and not node.is_document_node:
            continue
        if tag in _DROP_TAGS:
            continue
        if tag in ("br", "hr"):
            out.flush()
            continue
        if tag in _BOLD_TAGS:
            out.bold += 1
        elif tag in _HEADING_TAGS:
            out.flush()
            out.heading += 1
        elif tag in _CELL_TAGS:
            out.add(" ")
        elif tag in _BLOCK_TAGS:
            out.flush()
        else:
            tag = None  # inline element: nothing to do when it closes
        if tag is not None:
            stack.append((node, True))
        children = []
        child = node.first_child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((c, False) for c in reversed(children))
    out.flush()
    return merge_datelines(out.blocks)


def fragment_blocks(fragment: str) -> list[tuple[str, bool]]:
    if too_deep(fragment):  # keep the text, skip the (quadratic) parse
        text = collapse(TAG.sub(" ", fragment))
        return [(text, False)] if text else []
    return html_blocks(LexborHTMLParser(fragment).body)


MAX_HTML_DEPTH = 1000  # browsers stop nesting at 512; the HTML parser slows down quadratically with depth
_OPEN_CLOSE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^<>]*?(/?)>")
_FLAT_TAGS = frozenset(  # void elements and those whose end tag may be left out: they do not nest
    "area base br col embed hr img input link meta param source track wbr p li dt dd tr td th option optgroup "
    "tbody thead tfoot colgroup caption rb rt rp rtc html head body".split())


def too_deep(markup: str) -> bool:
    """Whether tags nest more than MAX_HTML_DEPTH levels (a "nesting bomb": a small file that stalls the parser)."""
    depth = 0
    for m in _OPEN_CLOSE.finditer(markup):
        if m.group(3) or m.group(2).lower() in _FLAT_TAGS:
            continue
        depth = max(0, depth - 1) if m.group(1) else depth + 1
        if depth > MAX_HTML_DEPTH:
            return True
    return False


def node_text(node: LexborNode | None) -> str:
    if node is None:
        return ""
    text = collapse(node.text(deep=True) or "")
    return collapse(html.unescape(text)) if _ENTITY.search(text) else text


def find_captions(root: LexborNode | None, selector: str) -> tuple[str, ...]:
    if root is None:
        return ()
    return tuple(dict.fromkeys(t for t in (node_text(n) for n in root.css(selector)) if t))


def _attr(parser: LexborHTMLParser, selector: str, attr: str) -> str:
    for node in parser.css(selector):
        value = (node.attributes.get(attr) or "").strip()
        if value:
            return value
    return ""


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _jsonld_date(parser: LexborHTMLParser) -> str:
    def find(obj):
        if isinstance(obj, dict):
            value = obj.get("datePublished")
            # a lone "\ud800" escape makes the field no text at all: ignored, like any other unreadable metadata
            if isinstance(value, str) and value.strip() and not _SURROGATE.search(value):
                return value
            obj = list(obj.values())
        if isinstance(obj, list):
            for item in obj:
                found = find(item)
                if found:
                    return found
        return ""

    for node in parser.css('script[type="application/ld+json"]'):
        try:
            found = find(json.loads(node.text() or ""))
        except (ValueError, RecursionError):
            continue
        if found:
            return found
    return ""


_DATE_SELECTORS = (
    ('meta[property="article:published_time"]', "content"),
    ('meta[name="article:published_time"]', "content"),
    ('meta[itemprop="datePublished"]', "content"),
    ('meta[property="og:published_time"]', "content"),
    ('meta[name="pubdate"]', "content"),
    ('meta[name="publishdate"]', "content"),
    ('meta[name="publish-date"]', "content"),
    ('meta[name="date"]', "content"),
    ('meta[name="DC.date.issued"]', "content"),
    ("time[datetime]", "datetime"),
)


def _published(parser: LexborHTMLParser, path: str) -> tuple[str, list[ArticleWarning]]:
    """The first readable date among the page's date tags; a warning when there are some but none can be read."""
    unread = None
    for selector, attr in (*_DATE_SELECTORS, ("JSON-LD", "datePublished")):
        value = _jsonld_date(parser) if selector == "JSON-LD" else _attr(parser, selector, attr)
        published = parse_date(value)
        if published:
            return published, []
        if value and unread is None:
            unread = (value, f"{selector} {attr}")
    return checked_date(unread[0], path, unread[1]) if unread else ("", [])


def parse_html_page(text: str, path: str) -> tuple[Article, list[ArticleWarning]]:
    if too_deep(text):
        raise ArticleError(path, f"HTML nested more than {MAX_HTML_DEPTH} levels deep")
    parser = LexborHTMLParser(text)
    title = node_text(parser.css_first("title")) or collapse(_attr(parser, 'meta[property="og:title"]', "content"))
    published, warnings = _published(parser, path)
    url = _attr(parser, 'link[rel="canonical"]', "href") or _attr(parser, 'meta[property="og:url"]', "content")
    source = source_from_url(url) or collapse(_attr(parser, 'meta[property="og:site_name"]', "content"))

    regions = sorted(parser.css("article"), key=lambda n: -len(n.text(deep=True) or ""))
    regions += [n for n in (parser.css_first("main"), parser.body) if n is not None]
    blocks: list[tuple[str, bool]] = []
    region = None
    for region in regions:
        blocks = html_blocks(region)
        if any(not is_heading for _, is_heading in blocks):
            break
    if not title:
        title = node_text(parser.css_first("h1"))
    if blocks and blocks[0][1] and title and blocks[0][0] in title:
        blocks = blocks[1:]  # the <h1> repeating the title
    body, headings = assemble(blocks)
    if not body:
        raise ArticleError(path, "no text after parsing the HTML")
    return Article(
        title=title or first_line(body), text=body, url=url, published=published, source=source, path=path,
        headings=headings, captions=find_captions(region, "figcaption"),
    ), warnings  # fmt: skip
