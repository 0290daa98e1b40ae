"""Normalise publication dates (ISO, Chinese, RFC 2822, English month names, epoch numbers) to UTC ISO strings."""
from __future__ import annotations

import email.utils
import math
import re
import unicodedata
from datetime import datetime, timedelta, timezone

from ..errors import ArticleWarning

# the year may not continue a longer number ("99999-01-01" is no date, not 9999-01-01)
_NUM_DATE = re.compile(
    r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)\s*日?"
    r"(?:\s*T?\s*(\d{1,2})\s*(?::\s*(\d{1,2})(?!\d)|[时時点點]\s*(?:(\d{1,2})(?!\d)\s*分?)?)"
    r"(?:\s*:?\s*(\d{1,2})(?!\d)(?:\.\d+)?\s*秒?)?)?"
    r"\s*(Z|(?:UTC|GMT)\s*[+-]\d{1,2}(?::?\d{2})?(?!\d)|[+-]\d{2}:?\d{2}(?!\d)|UTC|GMT)?",
    re.I,
)
# what may not follow a numeric date: more digits, an offset or a time the pattern could not read
_JUNK_AFTER = re.compile(r"[\d:]|\s*(?:[+-]\d|\(?\s*(?:UTC|GMT)\s*[+-]?\d|T?\s*\d+\s*[:时時点點])", re.I)
_OFFSET = re.compile(r"([+-])(\d{1,2}):?(\d{2})?")
_ISO_OFFSET = re.compile(r"[+-]\d{2}:?(\d{2})?(?::?(\d{2}))?(?:\.\d+)?$")
_EN_FORMATS = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%B %d %Y", "%b %d %Y", "%b. %d, %Y")
_EN_TIME_FORMATS = ("%I:%M %p", "%I:%M%p", "%H:%M", "%H:%M:%S")


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        u = dt.astimezone(timezone.utc)
    except (OverflowError, ValueError):  # 9999-12-31T23:59-01:00 is past datetime's last day in UTC
        return ""
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


def _from_epoch(value: float) -> str:
    try:
        value = float(value)
    except OverflowError:  # an integer past float's range
        return ""
    if not math.isfinite(value) or value <= 0:  # 0 is the usual "unknown" placeholder; negatives are not dates
        return ""
    if value >= 1e11:  # milliseconds (1e11 seconds would be the year 5138)
        value /= 1000
    try:
        return _iso(datetime.fromtimestamp(value, timezone.utc))
    except (OverflowError, OSError, ValueError):
        return ""


def _numeric(s: str, m: re.Match) -> str:
    if _JUNK_AFTER.match(s, m.end()):
        return ""
    y, mo, d, hh, mi, zh_mi, ss, tz = m.groups()
    mi = mi or zh_mi  # "9时" alone is 9 o'clock
    try:
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0))
    except ValueError:
        return ""
    tz = re.sub(r"^(?:UTC|GMT)\s*", "", (tz or "").upper())
    if tz in ("", "Z"):
        return _iso(dt)
    sign, hours, minutes = _OFFSET.fullmatch(tz).groups()
    hours, minutes = int(hours), int(minutes or 0)
    if hours > 23 or minutes > 59:
        return ""
    offset = timedelta(hours=hours, minutes=minutes)
    return _iso(dt.replace(tzinfo=timezone(-offset if sign == "-" else offset)))


def parse_date(value) -> str:
    """Normalise a date (string in many formats, or epoch seconds/milliseconds) to "YYYY-MM-DDTHH:MM:SSZ".

    Anything that is not a date, or not one datetime can hold once in UTC, gives "": a date is never guessed.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float, datetime)):
        return ""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, (int, float)):
        return _from_epoch(value)
    s = " ".join(value.split())
    if not s:
        return ""
    if re.fullmatch(r"-?\d{9,13}(\.\d+)?", s):
        return _from_epoch(float(s))
    try:
        # naive times are taken as UTC; "Z" is spelled out for Python 3.10's fromisoformat
        dt = datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", s))
    except ValueError:
        pass
    else:
        offset = _ISO_OFFSET.search(s) if dt.tzinfo is not None else None
        if offset and any(int(f or 0) > 59 for f in offset.groups()):
            return ""  # fromisoformat reads "+00:99" as 1 h 39 min
        return _iso(dt)
    m = _NUM_DATE.search(s)
    if m:
        return _numeric(s, m)
    plain = re.sub(r"\s*(UTC|GMT)$", "", s, flags=re.I)
    for fmt in _EN_FORMATS:
        for tfmt in ("", *_EN_TIME_FORMATS):
            try:
                return _iso(datetime.strptime(plain, f"{fmt} {tfmt}" if tfmt else fmt))
            except ValueError:
                continue
    if re.search(r"\d\s*[AP]\.?M\b", s, re.I):
        return ""  # the RFC 2822 parser would read "9:30 PM" as 09:30
    try:
        return _iso(email.utils.parsedate_to_datetime(s))
    except (TypeError, ValueError, IndexError, OverflowError):
        return ""


def _shown(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"a {value.bit_length()}-bit number"  # str() refuses integers of over 4,300 digits
    if isinstance(value, float) and math.isinf(value):
        return "a number too large to be a time"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def checked_date(value, path: str, where: str, line: int | None = None) -> tuple[str, list[ArticleWarning]]:
    """parse_date(value), and a warning naming the file (and line) when a date was given but cannot be read."""
    published = parse_date(value)
    if published or value is None or (isinstance(value, str) and not value.strip()):
        return published, []
    reason = (f"{where} ({_shown(value)}) is not a date (unknown form, or out of range): the article is kept "
              "without a date; write it as ISO 8601, e.g. 2024-05-08T09:30:00+08:00")
    return "", [ArticleWarning(path, reason, line=line)]


# ---------------------------------------------------------------- a date from the text's head

HEAD_CHARS = 150  # how far into the text a header stamp or a dateline is looked for
_LABEL = r"(?:发布时间|發布時間|发布日期|發布日期|更新时间|更新時間|时间|時間|日期|published|updated|posted|date)\s*:?\s*"
_SOURCE = r"(?:来源|來源)\s*:[^|\n]{0,30}\|\s*"  # "来源：新华网  |  2023年..."
# a header stamp: the text opens with a date (optionally bracketed, labelled or after the source) that ends the
# header: a bracket, a bar, a line break, "正文"/"来自"/"来源", or the time of day; "2020年4月2日，广州..." is an
# event's date in the story, not the article's
_STAMP = re.compile(
    rf"\s*[\[【(]?\s*(?:{_SOURCE})?(?:{_LABEL})?(?P<date>(?:\d{{4}}\s*[-/.年]\s*\d{{1,2}}\s*[-/.月]\s*\d{{1,2}}\s*日?"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4})"
    r"(?:\s*T?\s*\d{1,2}\s*:\s*\d{2}(?:\s*:\s*\d{2})?(?:\s*[ap]\.?m\.?)?)?)"
    r"(?=\s*(?:[\])】|]|\n|$|[,，]?\s*(?:正文|来自|來自|来源|來源))|(?<=\d:\d\d)|(?<=\d:\d\d:\d\d)|(?<=[ap]m)|(?<=[ap]\.m\.))",
    re.I)
# a dateline: "新华社北京7月28日电", "IT之家 7 月 29 日消息", "长沙晚报7月25日讯"; "WASHINGTON, May 7 (Reuters) -"
_DATELINE_ZH = re.compile(r"(?:(?P<y>\d{4})\s*年\s*)?(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日\s*(?:电|電|讯|訊|消息)")
_DATELINE_EN = re.compile(r"\s*[A-Z][A-Za-z .'-]{1,40},\s+"
                          r"(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
                          r"\s+(?P<d>\d{1,2})(?:,\s*(?P<y>\d{4}))?\s*(?:\(|-|—|–)", re.I)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# a publication date in a URL's path: /2023-07/28/, /2023/07/28/, /20230728/
_URL_DATE = re.compile(r"(?<![\d])(?P<y>(?:19|20)\d{2})[-/_]?(?P<m>0[1-9]|1[0-2])(?:[-/_]?(?P<d>[0-3]\d))?(?!\d)")


def _url_month(url: str) -> tuple[int, int] | None:
    path = re.sub(r"^[a-z][a-z0-9+.-]*://[^/]*", "", url.strip(), flags=re.I)
    m = _URL_DATE.search(path)
    return (int(m["y"]), int(m["m"])) if m else None


def date_from_text(text: str, url: str = "") -> str:
    """The publication date the text's head states, as parse_date gives it, or "" when it states none.

    A header stamp ("2023-07-28 16:40，正文：", "[ 2023-07-28 16：40 ]", "发布时间：2023年07月19日 18:14:59 来自北京") is
    read whole. A dateline ("新华社北京7月28日电", "WASHINGTON, May 7 (Reuters) -") gives a date only with its year:
    its own ("2023年7月28日电"), or the year of a date in `url`'s path of the same month. A year is never guessed.
    """
    head = unicodedata.normalize("NFKC", text[:HEAD_CHARS])
    m = _STAMP.match(head)
    if m:
        published = parse_date(m["date"])
        if published:
            return published
    zh = _DATELINE_ZH.search(head)
    en = _DATELINE_EN.match(head)
    for found, month in ((zh, zh and int(zh["m"])), (en, en and _MONTHS.index(en["mon"].lower()[:3]) + 1)):
        if not found:
            continue
        year = int(found["y"]) if found["y"] else None
        if year is None:
            from_url = _url_month(url)
            year = from_url[0] if from_url and from_url[1] == month else None
        if year is not None:
            return parse_date(f"{year:04d}-{month:02d}-{int(found['d']):02d}")
    return ""
