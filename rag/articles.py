"""Read news articles from .txt/.md/.html/.jsonl files (any common Chinese encoding) into `Article` records."""
from __future__ import annotations

import codecs
import email.utils
import html
import json
import math
import os
import re
import stat
from datetime import datetime, timedelta, timezone
from typing import Iterator
from urllib.parse import urlsplit

from charset_normalizer import from_bytes
from selectolax.lexbor import LexborHTMLParser, LexborNode

from .errors import ArticleError
from .types import Article

DEFAULT_MAX_BYTES = 5_000_000
SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".jsonl"})
_MARKDOWN_SUFFIXES = {".md", ".markdown"}
_TITLE_MAX = 80

# ---------------------------------------------------------------- decoding

# charset_normalizer's 499 most common simplified characters plus their traditional forms (via OpenCC s2t/s2twp).
_COMMON_ZH = frozenset(
    "一七万三上下不与专且世业东两严个中为主么义之九也习书了争事二于五些交产京亲人什今从他代以们件价任众会传但位低住体何作你使例便保信"
    "候值做儿元先光克党入全八公六共关其具养内再写军农决况准几出分切划列则利别到制前力办加务动劳包化北区十千半华单南即却厂历压原去县参又及"
    "反发取受变口只叫可史号各合同名后向听员周命和品响商器四回因团国图圆土在地场型基增声处备复外多大天太头她好如始委子存学它安完定实家容对"
    "导将小少就局层展属山工己已市布带常干平年并广应府度建开式引张强当形影往很律得心必志快思性总情想意感成我或战所手才打技把报拉持指按据接"
    "提支收改放政效教数整文斗料断斯新方族无日时明易是更最月有期本术机权条来极构林果查标样根格次正此步段每比毛民气水求江没油治法活派流济海"
    "消深清温满火点热然照片物特状率王现理生用由电界白百的目直相省看真眼着知石矿研确示社离种科积程究空立第等算管米类精系素红约级线组细织经"
    "结给统维置美群老者而联育能自至般色节花行表被装西要见观规角解计认议记许论设证识话该说调象质资走起越路身车转较边达过运近还这进连适选通"
    "速造道那部都酸采里重量金铁长门问间队阶际院除难集需青非面革音须领题风飞马验高龙"
    "並來們備傳價兒內兩別則劃動務勞區卻參員問單嚴國圓圖團報場壓學實寫將專對導層屬帶幹幾廠廣張強後從復應戰採據數斷於時書會東條業極構標樣機"
    "權歷氣決沒況準溫滿濟為無熱爭爲狀現產當發眾確礦種積箇節約紅級細組結給統經維線縣總織纔羣義習聯聲聽與華萬著處號衆術裏裝裡見規親觀計記設許"
    "話該認說調論證識議變資質車軍較轉辦農這連進運過達適選還邊鐵長門開間關隊階際離難電響須領頭題類風飛養馬驗體鬥麼點黨齣龍"
)
# Characters a wrong double-byte decoding tends to produce: ideographs, kana, hangul, private use, U+FFFD.
_WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\ue000-\uf8ff\uf900-\ufaff\ufffd]")
_ZH_CODECS = {"gb2312", "gbk", "gb18030", "big5", "big5hkscs", "cp950", "hz"}
_BINARY_CTRL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")


def decode_bytes(data: bytes, path) -> str:
    """Decode a file's bytes: UTF-8 (BOM stripped), UTF-16 with a BOM, else GB18030/Big5/charset-normalizer's best."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            text = data[len(codecs.BOM_UTF8):].decode("utf-8")
        except UnicodeDecodeError as e:
            reason = f"binary or undecodable: invalid UTF-8 at byte {e.start + 3} despite a UTF-8 BOM"
            raise ArticleError(path, reason) from None
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ArticleError(path, "binary or undecodable: invalid UTF-16 despite a UTF-16 BOM") from None
    elif b"\x00" in data:
        raise ArticleError(path, "binary or undecodable: contains NUL bytes")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            _reject_damaged_utf8(data, e, path)
            text = _guess_decode(data, path)
    if text.startswith("\ufeff"):
        text = text[1:]
    sample = text[:100_000]
    if sample and len(_BINARY_CTRL.findall(sample)) > 0.1 * len(sample):
        raise ArticleError(path, "binary or undecodable: mostly control characters")
    return text


def _reject_damaged_utf8(data: bytes, error: UnicodeDecodeError, path) -> None:
    """UTF-8 text with a few bad bytes is reported, rather than decoded as mojibake in some legacy encoding."""
    text = data[:200_000].decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ch >= "\x80") - bad
    if good >= 10 and bad <= max(4, good // 20):
        reason = f"binary or undecodable: invalid UTF-8 at byte {error.start} in an otherwise UTF-8 file"
        raise ArticleError(path, reason)


_plausible_zh: frozenset[str] | None = None


def _plausible_zh_chars() -> frozenset[str]:
    """GB2312 ideographs, Big5 level-1 ideographs and CJK punctuation: what real Chinese text is made of."""
    global _plausible_zh
    if _plausible_zh is None:
        chars = set("·—–‘’“”…")
        for lead, trails, codec in ((range(0xB0, 0xF8), range(0xA1, 0xFF), "gb2312"),
                                    (range(0xA4, 0xC7), [*range(0x40, 0x7F), *range(0xA1, 0xFF)], "big5")):  # fmt: skip
            for hi in lead:
                for lo in trails:
                    try:
                        chars.add(bytes((hi, lo)).decode(codec))
                    except UnicodeDecodeError:
                        pass
        chars.update(map(chr, range(0x3000, 0x3040)))
        chars.update(map(chr, range(0xFF01, 0xFF5F)))
        _plausible_zh = frozenset(chars)
    return _plausible_zh


def _zh_plausible(text: str) -> tuple[bool, tuple[int, float]]:
    """Whether `text` reads as Chinese, and a score to rank candidate decodings by."""
    sample = text[:100_000]
    common = sum(1 for ch in sample if ch in _COMMON_ZH)
    wide = len(_WIDE.findall(sample))
    plausible_set = _plausible_zh_chars()
    non_ascii = [ch for ch in sample if ch >= "\x80"]
    plausible = sum(1 for ch in non_ascii if ch in plausible_set) / len(non_ascii) if non_ascii else 0.0
    ok = (common > 0 and common >= 0.3 * wide) or (wide < 20 and plausible >= 0.9)
    return ok, (common, plausible)


def _guess_decode(data: bytes, path) -> str:
    matches = from_bytes(data)
    best = matches.best()
    # charset-normalizer often mistakes short GBK text for Big5 or CP949 (and vice versa), so every Chinese
    # decoding is ranked by how many very common Chinese characters it yields, then by the share of its
    # non-ASCII characters that are ordinary Chinese ones; the best plausible one wins (GB18030 on ties).
    candidates = ["gb18030", "big5", *(m.encoding for m in matches if m.encoding.replace("_", "") in _ZH_CODECS)]
    chosen, chosen_score = None, (-1, 0.0)
    for enc in dict.fromkeys(candidates):
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        ok, score = _zh_plausible(text)
        if ok and score > chosen_score:
            chosen, chosen_score = text, score
    if chosen is not None:
        return chosen
    if best is not None:
        return str(best)
    raise ArticleError(path, "binary or undecodable: not UTF-8 and no text encoding fits")


# ---------------------------------------------------------------- dates

_NUM_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)\s*日?"
    r"(?:\s*T?\s*(\d{1,2})\s*[:时時点點]\s*(\d{1,2})\s*分?(?:\s*:?\s*(\d{1,2})(?:\.\d+)?\s*秒?)?)?"
    r"\s*(Z|(?:UTC|GMT)?\s*[+-]\d{2}:?\d{2}(?!\d)|UTC|GMT)?",
    re.I,
)
_EN_FORMATS = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%B %d %Y", "%b %d %Y", "%b. %d, %Y")
_EN_TIME_FORMATS = ("%I:%M %p", "%I:%M%p", "%H:%M", "%H:%M:%S")


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_epoch(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return ""
    if abs(value) >= 1e11:  # milliseconds (1e11 seconds would be the year 5138)
        value /= 1000
    try:
        return _iso(datetime.fromtimestamp(value, timezone.utc))
    except (OverflowError, OSError, ValueError):
        return ""


def parse_date(value) -> str:
    """Normalise a date (string in many formats, or epoch seconds/milliseconds) to "YYYY-MM-DDTHH:MM:SSZ", or ""."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, (int, float)):
        return _from_epoch(float(value))
    s = " ".join(str(value).split())
    if not s:
        return ""
    if re.fullmatch(r"-?\d{9,13}(\.\d+)?", s):
        return _from_epoch(float(s))
    try:
        # naive times are taken as UTC; "Z" is spelled out for Python 3.10's fromisoformat
        return _iso(datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", s)))
    except ValueError:
        pass
    m = _NUM_DATE.search(s)
    if m:
        y, mo, d, hh, mi, ss, tz = m.groups()
        try:
            dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=timezone.utc)
        except ValueError:
            return ""
        tz = re.sub(r"^(?:UTC|GMT)\s*", "", (tz or "").upper())
        if tz not in ("", "Z"):
            digits = tz[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            dt = dt.replace(tzinfo=timezone(-offset if tz[0] == "-" else offset))
        return _iso(dt)
    try:
        return _iso(email.utils.parsedate_to_datetime(s))
    except (TypeError, ValueError, IndexError):
        pass
    plain = re.sub(r"\s*(UTC|GMT)$", "", s, flags=re.I)
    for fmt in _EN_FORMATS:
        for tfmt in ("", *_EN_TIME_FORMATS):
            try:
                return _iso(datetime.strptime(plain, f"{fmt} {tfmt}" if tfmt else fmt))
            except ValueError:
                continue
    return ""


# ---------------------------------------------------------------- text normalisation

_LINE_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ufeff]")
_TAG = re.compile(r"<!--(?:(?!<!--).)*?-->|</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>", re.S)  # linear on "<!--"*n
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
_SENTENCE_END = ("。", "！", "？", ".", "!", "?", "；", ";")


def _clean_line(s: str) -> str:
    """Drop control characters, collapse runs of whitespace (except newlines) to one space, strip."""
    return re.sub(r"[^\S\n]+", " ", _CONTROL.sub("", s)).strip()


def _collapse(s: str) -> str:
    return re.sub(r"\s+", " ", _CONTROL.sub("", s)).strip()


def _truncate(s: str, n: int = _TITLE_MAX) -> str:
    return s if len(s) <= n else s[:n].rstrip()


def _first_line(text: str) -> str:
    return _truncate(text.split("\n", 1)[0].strip())


def _assemble(blocks: list[tuple[str, bool]]) -> tuple[str, tuple[tuple[int, str], ...]]:
    parts, headings, pos = [], [], 0
    for text, is_heading in blocks:
        if parts:
            pos += 2
        if is_heading:
            headings.append((pos, text))
        parts.append(text)
        pos += len(text)
    return "\n\n".join(parts), tuple(headings)


def _merge_datelines(blocks: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
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


def _source_from_url(url: str) -> str:
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


# ---------------------------------------------------------------- HTML

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
        text = _collapse("".join(self.buf))
        if text:
            is_heading = self.heading > 0 or (
                not self.plain and len(text) <= _TITLE_MAX and not text.endswith(_SENTENCE_END)
            )
            self.blocks.append((text, is_heading))
        self.buf, self.plain = [], False


def _html_blocks(root: LexborNode | None) -> list[tuple[str, bool]]:
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
    return _merge_datelines(out.blocks)


def _fragment_blocks(fragment: str) -> list[tuple[str, bool]]:
    if _too_deep(fragment):  # keep the text, skip the (quadratic) parse
        text = _collapse(_TAG.sub(" ", fragment))
        return [(text, False)] if text else []
    return _html_blocks(LexborHTMLParser(fragment).body)


MAX_HTML_DEPTH = 1000  # browsers stop nesting at 512; the HTML parser slows down quadratically with depth
_OPEN_CLOSE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^<>]*?(/?)>")
_FLAT_TAGS = frozenset(  # void elements and those whose end tag may be left out: they do not nest
    "area base br col embed hr img input link meta param source track wbr p li dt dd tr td th option optgroup "
    "tbody thead tfoot colgroup caption rb rt rp rtc html head body".split())


def _too_deep(markup: str) -> bool:
    """Whether tags nest more than MAX_HTML_DEPTH levels (a "nesting bomb": a small file that stalls the parser)."""
    depth = 0
    for m in _OPEN_CLOSE.finditer(markup):
        if m.group(3) or m.group(2).lower() in _FLAT_TAGS:
            continue
        depth = max(0, depth - 1) if m.group(1) else depth + 1
        if depth > MAX_HTML_DEPTH:
            return True
    return False


def _node_text(node: LexborNode | None) -> str:
    if node is None:
        return ""
    text = _collapse(node.text(deep=True) or "")
    return _collapse(html.unescape(text)) if _ENTITY.search(text) else text


def _captions(root: LexborNode | None, selector: str) -> tuple[str, ...]:
    if root is None:
        return ()
    return tuple(dict.fromkeys(t for t in (_node_text(n) for n in root.css(selector)) if t))


def _attr(parser: LexborHTMLParser, selector: str, attr: str) -> str:
    for node in parser.css(selector):
        value = (node.attributes.get(attr) or "").strip()
        if value:
            return value
    return ""


def _jsonld_date(parser: LexborHTMLParser) -> str:
    def find(obj):
        if isinstance(obj, dict):
            if isinstance(obj.get("datePublished"), str):
                return obj["datePublished"]
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


def _parse_html_page(text: str, path: str) -> Article:
    if _too_deep(text):
        raise ArticleError(path, f"HTML nested more than {MAX_HTML_DEPTH} levels deep")
    parser = LexborHTMLParser(text)
    title = _node_text(parser.css_first("title")) or _collapse(_attr(parser, 'meta[property="og:title"]', "content"))
    published = ""
    for selector, attr in _DATE_SELECTORS:
        published = parse_date(_attr(parser, selector, attr))
        if published:
            break
    published = published or parse_date(_jsonld_date(parser))
    url = _attr(parser, 'link[rel="canonical"]', "href") or _attr(parser, 'meta[property="og:url"]', "content")
    source = _source_from_url(url) or _collapse(_attr(parser, 'meta[property="og:site_name"]', "content"))

    regions = sorted(parser.css("article"), key=lambda n: -len(n.text(deep=True) or ""))
    regions += [n for n in (parser.css_first("main"), parser.body) if n is not None]
    blocks: list[tuple[str, bool]] = []
    region = None
    for region in regions:
        blocks = _html_blocks(region)
        if any(not is_heading for _, is_heading in blocks):
            break
    if not title:
        title = _node_text(parser.css_first("h1"))
    if blocks and blocks[0][1] and title and blocks[0][0] in title:
        blocks = blocks[1:]  # the <h1> repeating the title
    body, headings = _assemble(blocks)
    if not body:
        raise ArticleError(path, "no text after parsing the HTML")
    return Article(
        title=title or _first_line(body), text=body, url=url, published=published, source=source, path=path,
        headings=headings, captions=_captions(region, "figcaption"),
    )  # fmt: skip


# ---------------------------------------------------------------- VOA seed format

_VOA_START = re.compile(r"\A\s*<!--\s*(\d{9,14})\s*-->")
_MD_LINK_LINE = re.compile(r"^\[(.*)\]\(([^\s\]]*?)\)$")  # no "]" in the URL: linear on "[](x](x](x..."
_RULE = re.compile(r"^([-*_=])(?:\s*\1){2,}$")


def _unescape_md(s: str) -> str:
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!|<>])", r"\1", s)


def _parse_voa(text: str, path: str, start: re.Match) -> Article:
    lines = _LINE_BREAKS.sub("\n", text[start.end():]).split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    title = url = ""
    if i < len(lines) and not _TAG.match(lines[i].strip()):
        first = lines[i].strip()
        m = _MD_LINK_LINE.match(first)
        if m:
            title, url = m.group(1), m.group(2)
        else:
            title = first.lstrip("#")
        title = _collapse(html.unescape(_unescape_md(title)))
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
    if _too_deep(body):
        raise ArticleError(path, f"HTML nested more than {MAX_HTML_DEPTH} levels deep")
    if _TAG.search(body):
        root = LexborHTMLParser(body).body
        for italic in root.css("div > i") if root is not None else ():
            div = italic.parent
            date_text = _node_text(italic)
            if date_text and _node_text(div) == date_text and parse_date(date_text):
                published = parse_date(date_text)
                div.decompose()  # the date line is metadata, not article text
                break
        captions = _captions(root, "small, figcaption")
        blocks = _html_blocks(root)
    else:
        blocks = _plain_blocks(body, headings=True, markdown=True)
    text_out, headings = _assemble(blocks)
    if not text_out:
        raise ArticleError(path, "no text after parsing")
    return Article(
        title=title or _first_line(text_out), text=text_out, url=url,
        published=published or parse_date(int(start.group(1))),
        source=_source_from_url(url), path=path, headings=headings, captions=captions,
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


def _plain_blocks(text: str, headings: bool, markdown: bool) -> list[tuple[str, bool]]:
    blocks: list[tuple[str, bool]] = []
    cur: list[str] = []

    def flush() -> None:
        if cur:
            para = "\n".join(cur)
            if _TAG.search(para):
                blocks.extend(_fragment_blocks(para))
            else:
                blocks.append((para, False))
            cur.clear()

    for raw in _LINE_BREAKS.sub("\n", text).split("\n"):
        line = _clean_line(raw)
        if not line:
            flush()
            continue
        if headings:
            m = _ATX.match(line)
            if m:
                flush()
                heading = _clean_line(_md_inline(m.group(2) or "") if markdown else (m.group(2) or ""))
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
    return _merge_datelines(blocks) if headings else blocks


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    lines = text.split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start >= len(lines) or lines[start].strip() != "---":
        return {}, text
    for end in range(start + 1, min(len(lines), start + 100)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return {}, text
    meta: dict[str, str] = {}
    for line in lines[start + 1 : end]:
        if not line.strip() or line[0] in " \t" or line.lstrip().startswith(("- ", "#")):
            continue
        m = _FRONT_KEY.match(line)
        if not m:
            return {}, text  # not YAML: just a rule followed by text
        field_name = _FRONT_FIELDS.get(m.group(1).lower())
        value = m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if field_name and value and field_name not in meta:
            meta[field_name] = value
    return meta, "\n".join(lines[end + 1 :])


def _parse_plain(text: str, path: str, markdown: bool) -> Article:
    text = _LINE_BREAKS.sub("\n", text)
    meta, body = _front_matter(text)
    lines = body.split("\n")
    first_idx = next((i for i, line in enumerate(lines) if _clean_line(line)), None)
    title = _collapse(_TAG.sub("", meta.get("title", "")))
    rest = body
    if first_idx is not None:
        first = _clean_line(lines[first_idx])
        link = _MD_LINK_LINE.match(first)
        if link and link.group(1).strip():  # "[title](url)", as in the VOA exports
            first = lines[first_idx] = _unescape_md(link.group(1))
            meta.setdefault("url", link.group(2))
        m = _ATX.match(first)
        setext = first_idx + 1 < len(lines) and re.fullmatch(r"\s*(=+|-+)\s*", lines[first_idx + 1])
        if m or setext:
            heading = _clean_line(m.group(2) or "") if m else first
            heading = _collapse(_md_inline(heading) if markdown else heading)
            if not title or heading == title:
                title = title or heading
                rest = "\n".join(lines[first_idx + (1 if m else 2) :])
        elif not title and len(first) <= 200:
            title = first
            rest = "\n".join(lines[first_idx + 1 :])
            if not _plain_blocks(rest, headings=True, markdown=markdown):
                rest = body  # a one-line article: the line is both title and text
    blocks = _plain_blocks(rest, headings=True, markdown=markdown)
    text_out, headings = _assemble(blocks)
    if not text_out:
        raise ArticleError(path, "no text after the title")
    if title and _TAG.search(title):
        title = _collapse(" ".join(t for t, _ in _fragment_blocks(title)))
    url = meta.get("url", "")
    return Article(
        title=_truncate(title) if title else _first_line(text_out), text=text_out, url=url,
        published=parse_date(meta.get("published", "")), source=meta.get("source", "") or _source_from_url(url),
        path=path, headings=headings,
    )  # fmt: skip


# ---------------------------------------------------------------- JSON lines

_JSON_TYPES = {
    dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
    type(None): "null",
}  # fmt: skip


def _parse_jsonl(text: str, path: str) -> tuple[list[Article], list[ArticleError]]:
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
        body, _ = _assemble(_plain_blocks(obj.get("text") or "", headings=False, markdown=False))
        if not body:
            errors.append(ArticleError(path, "missing or empty field 'text'", line=n))
            continue
        url = (obj.get("url") or "").strip()
        articles.append(
            Article(
                title=_collapse(obj.get("title") or "") or _first_line(body), text=body, url=url,
                published=parse_date(obj.get("published")), path=path,
                source=_collapse(obj.get("source") or "") or _source_from_url(url),
            )  # fmt: skip
        )
    if not articles and not errors:
        raise ArticleError(path, "no text: no articles in the file")
    return articles, errors


# ---------------------------------------------------------------- files and walks


def _read(path, max_bytes: int) -> tuple[list[Article], list[ArticleError]]:
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUPPORTED_SUFFIXES:
        expected = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise ArticleError(path, f"unsupported file type {suffix or '(no suffix)'}; expected one of {expected}")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ArticleError(path, "no such file (or a broken symlink)") from None
    except OSError as e:
        raise ArticleError(path, f"cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ArticleError(path, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise ArticleError(path, "not a regular file")
    too_big = f"file too large: {{}} bytes, over the limit of {max_bytes} bytes"
    if st.st_size > max_bytes:
        raise ArticleError(path, too_big.format(st.st_size))
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise ArticleError(path, f"cannot read: {e.strerror or e}") from None
    if len(data) > max_bytes:  # the file grew after the stat
        raise ArticleError(path, too_big.format(f"more than {max_bytes}"))
    if not data:
        raise ArticleError(path, "no text: the file is empty")
    text = decode_bytes(data, path)
    if not text.strip():
        raise ArticleError(path, "no text: the file holds only whitespace")
    if suffix == ".jsonl":
        return _parse_jsonl(text, path)
    if suffix in (".html", ".htm"):
        return [_parse_html_page(text, path)], []
    start = _VOA_START.match(text)
    if start:
        return [_parse_voa(text, path, start)], []
    return [_parse_plain(text, path, markdown=suffix in _MARKDOWN_SUFFIXES)], []


def load_file(path, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Article]:
    """Read one file into articles; any problem (for .jsonl: the first bad line) raises ArticleError."""
    articles, line_errors = _read(path, max_bytes)
    if line_errors:
        raise line_errors[0]
    return articles


def _inside(target: str, root: str) -> bool:
    try:
        return os.path.commonpath([target, root]) == root
    except ValueError:
        return False


def _walk(root: str) -> Iterator[tuple[str, ArticleError | None]]:
    real_root = os.path.realpath(root)
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            yield directory, ArticleError(directory, f"cannot list directory: {e.strerror or e}")
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                # symlinked directories are not followed (no loops, no escaping the tree)
                if entry.is_dir() or os.path.splitext(entry.name)[1].lower() not in SUPPORTED_SUFFIXES:
                    continue
                target = os.path.realpath(entry.path)
                if not _inside(target, real_root):
                    yield entry.path, ArticleError(entry.path, f"symlink points outside {root}: {target}")
                else:
                    yield entry.path, None
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.path)
            elif os.path.splitext(entry.name)[1].lower() in SUPPORTED_SUFFIXES:
                yield entry.path, None
        # files of a directory come before its subdirectories, each in name order
        stack.extend(reversed(subdirs))


def iter_articles(
    paths, max_bytes: int = DEFAULT_MAX_BYTES
) -> Iterator[tuple[str, list[Article] | ArticleError, list[ArticleError]]]:
    """Yield (file, articles or the file's error, per-line errors) for each file under `paths`, in a stable order.

    Directories are walked recursively in name order, skipping hidden entries, unsupported suffixes and
    symlinked directories. A file reached twice (listed twice, or through a symlink) is read once.
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    seen: set[str] = set()

    def one(file_path: str):
        key = os.path.realpath(file_path)
        if key in seen:
            return
        seen.add(key)
        try:
            articles, line_errors = _read(file_path, max_bytes)
        except ArticleError as e:
            yield file_path, e, []
        else:
            yield file_path, articles, line_errors

    for given in paths:
        given = os.fsdecode(given)
        if os.path.isdir(given):
            for file_path, error in _walk(given):
                if error is not None:
                    yield file_path, error, []
                else:
                    yield from one(file_path)
        elif not os.path.lexists(given):
            yield given, ArticleError(given, "no such file or directory"), []
        else:
            yield from one(given)


__all__ = ["SUPPORTED_SUFFIXES", "decode_bytes", "iter_articles", "load_file", "parse_date"]
