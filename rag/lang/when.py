"""Dates in questions (Chinese and English) resolved against `now`, recency words, and the dates a passage states."""
from __future__ import annotations

import calendar
import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable

GRANULARITIES = ("day", "week", "month", "quarter", "half", "year", "recent")
RECENT_DAYS = 30  # what "最近"/"recently" alone spans, ending on `now`


@dataclass(frozen=True)
class DateRange:
    """The dates a question asks about, both ends included.

    `granularity`: day, week, month, quarter, half (上半年, H1), year, or recent (a recency word alone: the last
    RECENT_DAYS days). `text`: the question's words it was read from. `relative`: it depends on `now` ("昨天",
    "last week", and a date without a year: "4月2日" is the latest 2 April on or before `now`). `latest`: the
    question asks for the newest ("最新", "目前", "latest", "recently"...).
    """

    start: date
    end: date
    granularity: str
    text: str
    relative: bool
    latest: bool = False
    now: date | None = None  # the day it was read against

    @property
    def coarse(self) -> bool:
        """A month or longer: its articles come out after it, so only what they say about it counts."""
        return self.granularity in ("month", "quarter", "half", "year")

    def __contains__(self, d: date) -> bool:
        return self.start <= d <= self.end

    def holds(self, start: date, end: date) -> bool:
        """Whether the span start..end lies inside the range (a day inside a month, not a year inside a day)."""
        return self.start <= start and end <= self.end


def as_date(now=None) -> date:
    """`now` as a date: a date, a datetime, an ISO string (YYYY-MM-DD, a time may follow) or None for today's
    local date (the reader's "yesterday" is the day before their own today)."""
    if now is None:
        return date.today()
    if isinstance(now, datetime):
        return now.date()
    if isinstance(now, date):
        return now
    if isinstance(now, str):
        m = re.fullmatch(r"\s*(\d{4}-\d{2}-\d{2})(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?\s*", now)
        if m:
            try:
                return date.fromisoformat(m[1])
            except ValueError:
                pass
    raise ValueError(f"now must be YYYY-MM-DD, got {now!r}")


# ---------------------------------------------------------------- calendar arithmetic


def _month_end(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def _add_months(y: int, m: int, n: int) -> tuple[int, int]:
    k = y * 12 + (m - 1) + n
    return k // 12, k % 12 + 1


def _day(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _past_day(m: int, d: int, now: date) -> date | None:
    """The latest m-d on or before `now` (29 February: the latest leap year's)."""
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return None
    for y in range(now.year, now.year - 8, -1):
        day = _day(y, m, d)
        if day is not None and day <= now:
            return day
    return None


def _week(monday: date) -> tuple[date, date]:
    return monday, monday + timedelta(days=6)


def _quarter(y: int, q: int) -> tuple[date, date]:
    return date(y, 3 * q - 2, 1), _month_end(y, 3 * q)


def _half(y: int, first: bool) -> tuple[date, date]:
    return (date(y, 1, 1), date(y, 6, 30)) if first else (date(y, 7, 1), date(y, 12, 31))


def _year(y: int) -> tuple[date, date] | None:
    return (date(y, 1, 1), date(y, 12, 31)) if 1 <= y <= 9999 else None


# ---------------------------------------------------------------- normalising a question

_CN_DIGIT = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
             "九": 9}
# a Chinese numeral before a date unit: "二〇二三年", "七月二十八日", "三天前", "第二季度", "一个月"
_CN_NUMBER = re.compile(r"[〇零一二两兩三四五六七八九十]{1,5}(?=\s*(?:年|月|日|号|號|天|周|週|个|個|星期|礼拜|禮拜|季))")


def _cn_value(s: str) -> int | None:
    if "十" not in s:
        return int("".join(str(_CN_DIGIT[c]) for c in s))  # digit by digit: 二〇二三 -> 2023
    tens, _, ones = s.partition("十")
    if len(tens) > 1 or len(ones) > 1 or "十" in ones:
        return None
    return (_CN_DIGIT[tens] if tens else 1) * 10 + (_CN_DIGIT[ones] if ones else 0)


def _normalise(text: str) -> tuple[str, list[int]]:
    """NFKC (full-width digits and colons) with Chinese numerals before date units as digits, and for each character
    of the result the offset of the character of `text` it came from."""
    out, where = [], []
    for i, ch in enumerate(text):
        n = unicodedata.normalize("NFKC", ch)
        out.append(n)
        where.extend([i] * len(n))
    s = "".join(out)
    if not _CN_NUMBER.search(s):
        return s, where
    parts, w2, pos = [], [], 0
    for m in _CN_NUMBER.finditer(s):
        value = _cn_value(m.group())
        if value is None:
            continue
        parts.append(s[pos:m.start()])
        w2.extend(where[pos:m.start()])
        digits = str(value)
        parts.append(digits)
        w2.extend([where[m.start()]] * (len(digits) - 1) + [where[m.end() - 1]])
        pos = m.end()
    parts.append(s[pos:])
    w2.extend(where[pos:])
    return "".join(parts), w2


# ---------------------------------------------------------------- rules: a pattern and what it means

_WEEKDAY_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "1": 0, "2": 1, "3": 2, "4": 3,
               "5": 4, "6": 5, "7": 6}
_WEEKDAY_EN = {name: i for i, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                                  "sunday"))}
_MONTHS_EN = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
              "nov": 11, "dec": 12}
_EN_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
               "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
_ORDINAL = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
_STEP = {"上上": -2, "上": -1, "本": 0, "这": 0, "這": 0, "今": 0, "下": 1, "last": -1, "previous": -1, "this": 0,
         "next": 1, "coming": 1}
_YEAR_WORD = {"今年": 0, "本年": 0, "去年": -1, "前年": -2, "大前年": -3, "明年": 1}

_MON = (r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
        r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_EN_N = r"(?P<n>\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_UNIT_ZH = r"(?P<u>天|日|周|週|星期|礼拜|禮拜|月|年)"
_GE = r"(?:个|個)"
_DAY_MARK = r"[日号號]"
# a day number may go without 日 before a range's end: "7月28-30日"
_ZH_DAY = rf"(?P<d>\d{{1,2}})\s*(?:{_DAY_MARK}|(?=\s*[-~～至到—–]\s*\d{{1,2}}\s*{_DAY_MARK}))"

Span = tuple[date, date, str, bool]  # start, end, granularity, relative


def _ymd(y: int | None, m: int, d: int | None, now: date, xun: str | None = None) -> Span | None:
    """A day (d) or month (no d; `xun` 上旬/中旬/下旬 narrows it) of year y, or the latest such on/before now."""
    if d is not None:
        day = _day(y, m, d) if y is not None else _past_day(m, d, now)
        return None if day is None else (day, day, "day", y is None)
    if not 1 <= m <= 12:
        return None
    if y is None:
        y = now.year if date(now.year, m, 1) <= now else now.year - 1
        relative = True
    else:
        relative = False
    if not 1 <= y <= 9999:
        return None
    start, end = date(y, m, 1), _month_end(y, m)
    if xun in ("上旬", "初"):
        return start, min(end, date(y, m, 10)), "day", relative
    if xun == "中旬":
        return date(y, m, 11), date(y, m, 20), "day", relative
    if xun == "下旬":
        return date(y, m, 21), end, "day", relative
    return start, end, "month", relative


def _zh_year(m: re.Match, now: date) -> Span | None:
    word = m["yw"]
    y = int(word[:4]) if word[:4].isdigit() else now.year + _YEAR_WORD[word]
    relative = not word[:4].isdigit()
    if m["m"]:
        r = _ymd(y, int(m["m"]), int(m["d"]) if m["d"] else None, now, m["xun"])
        return None if r is None else (*r[:3], relative)
    if m["q"]:
        q = int(m["q"])
        return (*_quarter(y, q), "quarter", relative) if 1 <= q <= 4 else None
    if m["h"]:
        return (*_half(y, m["h"] == "上"), "half", relative)
    years = _year(y)
    return None if years is None else (*years, "year", relative)


def _zh_month(m: re.Match, now: date) -> Span | None:
    return _ymd(None, int(m["m"]), int(m["d"]) if m["d"] else None, now, m["xun"])


def _iso(m: re.Match, now: date) -> Span | None:
    day = _day(int(m["y"]), int(m["m"]), int(m["d"]))
    return None if day is None else (day, day, "day", False)


_REL_DAYS = {"大前天": -3, "前天": -2, "昨天": -1, "昨日": -1, "昨晚": -1, "昨夜": -1, "今天": 0, "今日": 0, "今晨": 0,
             "今早": 0, "今晚": 0, "明天": 1, "明日": 1, "后天": 2, "後天": 2, "the day before yesterday": -2,
             "yesterday": -1, "last night": -1, "today": 0, "tonight": 0, "this morning": 0, "tomorrow": 1}


def _rel_day(m: re.Match, now: date) -> Span:
    day = now + timedelta(days=_REL_DAYS[" ".join(m.group().lower().split())])
    return day, day, "day", True


def _ago(n: int, unit: str, now: date) -> Span | None:
    if unit in ("天", "日", "day"):
        day = now - timedelta(days=n)
        return day, day, "day", True
    if unit in ("周", "週", "星期", "礼拜", "禮拜", "week"):
        return (*_week(now - timedelta(days=now.weekday() + 7 * n)), "week", True)
    if unit in ("月", "month"):
        y, mo = _add_months(now.year, now.month, -n)
        return (date(y, mo, 1), _month_end(y, mo), "month", True) if y >= 1 else None
    years = _year(now.year - n)
    return None if years is None else (*years, "year", True)


def _last_n(n: int, unit: str, now: date) -> Span | None:
    """The last n days/weeks/months/years up to `now`, as days."""
    if n < 1:
        return None
    if unit in ("天", "日", "day"):
        start = now - timedelta(days=n - 1)
    elif unit in ("周", "週", "星期", "礼拜", "禮拜", "week"):
        start = now - timedelta(days=7 * n - 1)
    elif unit in ("月", "month"):
        y, mo = _add_months(now.year, now.month, -n)
        start = (_day(y, mo, now.day) or _month_end(y, mo)) + timedelta(days=1)
    else:
        start = _day(now.year - n, now.month, now.day) or date(now.year - n, 2, 28)
        start += timedelta(days=1)
    return start, now, "day", True


def _zh_ago(m: re.Match, now: date) -> Span | None:
    return _ago(int(m["n"]), m["u"], now)


def _zh_last_n(m: re.Match, now: date) -> Span | None:
    return _last_n(int(m["n"]), m["u"], now)


def _weekday_in(monday: date, wd: str) -> Span:
    if wd == "末":
        return monday + timedelta(days=5), monday + timedelta(days=6), "day", True
    day = monday + timedelta(days=_WEEKDAY_ZH[wd])
    return day, day, "day", True


def _zh_week(m: re.Match, now: date) -> Span:
    monday = now - timedelta(days=now.weekday()) + timedelta(weeks=_STEP[m["p"]])
    if m["wd"]:
        return _weekday_in(monday, m["wd"])
    return (*_week(monday), "week", True)


def _zh_rel_month(m: re.Match, now: date) -> Span | None:
    y, mo = _add_months(now.year, now.month, _STEP[m["p"]])
    span = _ymd(y, mo, int(m["d"]) if m["d"] else None, now, m["xun"])
    return None if span is None else (*span[:3], True)


def _zh_rel_quarter(m: re.Match, now: date) -> Span:
    q = (now.month - 1) // 3 + _STEP[m["p"]]
    y, q = now.year + (q // 4), q % 4 + 1
    return (*_quarter(y, q), "quarter", True)


def _past_quarter(q: int, now: date) -> Span | None:
    if not 1 <= q <= 4:
        return None
    y = now.year if date(now.year, 3 * q - 2, 1) <= now else now.year - 1
    return (*_quarter(y, q), "quarter", True)


def _zh_quarter(m: re.Match, now: date) -> Span | None:
    return _past_quarter(int(m["q"]), now)


def _zh_half(m: re.Match, now: date) -> Span:
    return (*_half(now.year, m["h"] == "上"), "half", True)


def _en_month(name: str) -> int:
    return _MONTHS_EN[name.lower()[:3]]


def _en_day_month(m: re.Match, now: date) -> Span | None:
    y = int(m["y"]) if m["y"] else None
    return _ymd(y, _en_month(m["mon"]), int(m["d"]), now)


def _en_month_year(m: re.Match, now: date) -> Span | None:
    return _ymd(int(m["y"]), _en_month(m["mon"]), None, now)


def _en_month_alone(m: re.Match, now: date) -> Span | None:
    return _ymd(None, _en_month(m["mon"]), None, now)


def _en_year(m: re.Match, now: date) -> Span | None:
    years = _year(int(m["y"]))
    return None if years is None else (*years, "year", False)


def _en_count(s: str) -> int:
    return int(s) if s.isdigit() else _EN_NUMBERS[s.lower()]


def _en_ago(m: re.Match, now: date) -> Span | None:
    return _ago(_en_count(m["n"]), m["u"].lower(), now)


def _en_last_n(m: re.Match, now: date) -> Span | None:
    return _last_n(_en_count(m["n"]), m["u"].lower(), now)


def _en_relative(m: re.Match, now: date) -> Span | None:
    p, unit = m["p"].lower(), m["u"].lower()
    if p == "past" and unit in ("week", "month", "year"):  # "the past week": the last 7 days, not last week
        return _last_n(1, unit, now)
    step = _STEP.get(p, -1)
    if unit == "week":
        return (*_week(now - timedelta(days=now.weekday()) + timedelta(weeks=step)), "week", True)
    if unit == "weekend":
        saturday = now - timedelta(days=now.weekday()) + timedelta(weeks=step, days=5)
        return saturday, saturday + timedelta(days=1), "day", True
    if unit == "month":
        y, mo = _add_months(now.year, now.month, step)
        return date(y, mo, 1), _month_end(y, mo), "month", True
    if unit == "quarter":
        q = (now.month - 1) // 3 + step
        return (*_quarter(now.year + q // 4, q % 4 + 1), "quarter", True)
    years = _year(now.year + step)
    return None if years is None else (*years, "year", True)


def _en_weekday(m: re.Match, now: date) -> Span:
    # "last Tuesday" is the Tuesday of last week, as 上周二 is (a Monday-Sunday week)
    monday = now - timedelta(days=now.weekday()) + timedelta(weeks=_STEP[m["p"].lower()])
    day = monday + timedelta(days=_WEEKDAY_EN[m["wd"].lower()])
    return day, day, "day", True


def _en_quarter(m: re.Match, now: date) -> Span | None:
    q = int(m["q"]) if m["q"] else _ORDINAL[m["qo"].lower()]
    if m["y"]:
        return (*_quarter(int(m["y"]), q), "quarter", False)
    return _past_quarter(q, now)


def _en_half(m: re.Match, now: date) -> Span:
    first = (m["h"] or m["ho"]).lower() in ("1", "first")
    y = int(m["y"]) if m["y"] else now.year
    return (*_half(y, first), "half", not m["y"])


_I = re.I


@functools.cache
def _rules() -> list[tuple[re.Pattern, Callable[[re.Match, date], Span | None]]]:
    """The question patterns and what each means (compiled on first use: ~10 ms that a CLI start need not pay)."""
    return [
        (re.compile(r"(?<!\d)(?P<y>\d{4})\s*[-/.]\s*(?P<m>\d{1,2})\s*[-/.]\s*(?P<d>\d{1,2})(?!\d)"), _iso),
        (re.compile(r"(?P<yw>(?<!\d)\d{4}\s*年|大前年|前年|去年|今年|本年|明年)(?:度)?\s*(?:"
                    rf"(?P<m>\d{{1,2}})\s*月份?\s*(?:{_ZH_DAY})?\s*(?P<xun>上旬|中旬|下旬|初)?"
                    r"|第?\s*(?P<q>\d)\s*季度?|Q(?P<q2>[1-4])|(?P<h>上|下)半年)?", _I),
         lambda m, now: _zh_year(m, now) if not m["q2"] else (*_quarter(
             int(m["yw"][:4]) if m["yw"][:4].isdigit() else now.year + _YEAR_WORD[m["yw"]], int(m["q2"])), "quarter",
             not m["yw"][:4].isdigit())),
        (re.compile(rf"(?<![\d年.\-/])(?P<m>\d{{1,2}})\s*月份?\s*(?:{_ZH_DAY})?\s*(?P<xun>上旬|中旬|下旬|初)?"), _zh_month),
        (re.compile("(?:" + "|".join(sorted((k for k in _REL_DAYS if not k.isascii()), key=len, reverse=True))
                    + r")(?!头条|頭條|方舟|之星|香)"), _rel_day),
        (re.compile(rf"(?<!\d)(?P<n>\d{{1,3}})\s*{_GE}?\s*{_UNIT_ZH}\s*(?:以)?前"), _zh_ago),
        (re.compile(rf"(?:最近|近|过去|過去)\s*(?P<n>\d{{1,3}})\s*{_GE}?\s*{_UNIT_ZH}"), _zh_last_n),
        (re.compile(rf"(?P<p>上上|上|本|这|這|下)\s*(?:1?\s*{_GE})?\s*(?:周|週|星期|礼拜|禮拜)"
                    r"(?:(?P<wd>[一二三四五六日天1-7]|末)|(?![边邊围圍期岁歲刊报報]))"), _zh_week),
        (re.compile(rf"(?P<p>上上|上|本|这|這|下)\s*(?:1?\s*{_GE})?\s*月份?\s*(?:(?P<d>\d{{1,2}})\s*{_DAY_MARK}"
                    r"|(?P<xun>上旬|中旬|下旬|初)|(?!\d))"), _zh_rel_month),
        (re.compile(rf"(?P<p>上|本|这|這|下)\s*(?:1?\s*{_GE})?\s*季度"), _zh_rel_quarter),
        (re.compile(r"(?<![\d年])第?\s*(?P<q>[1-4])\s*季度"), _zh_quarter),
        (re.compile(r"(?<![年\d])(?P<h>上|下)半年"), _zh_half),
        # English
        (re.compile(r"\b(?:the\s+day\s+before\s+yesterday|yesterday|last\s+night|today|tonight|this\s+morning"
                    r"|tomorrow)\b", _I), _rel_day),
        (re.compile(rf"\b{_MON}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:\s*,?\s*(?P<y>\d{{4}})\b)?", _I), _en_day_month),
        (re.compile(rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MON}(?:\s*,?\s*(?P<y>\d{{4}})\b)?", _I),
         _en_day_month),
        (re.compile(rf"\b{_MON}\s*,?\s*(?:of\s+)?(?P<y>\d{{4}})\b", _I), _en_month_year),
        # a month alone: capitalised ("March", not "the march"), May only after a preposition ("in May", not "May I")
        (re.compile(r"\b(?:(?:in|since|during|until|of|early|late|mid-?|last|this)\s+(?P<mon>May)"
                    r"|(?P<mon2>January|February|March|April|June|July|August|September|October|November|December))\b"),
         lambda m, now: _ymd(None, _en_month(m["mon"] or m["mon2"]), None, now)),
        (re.compile(r"\b(?:in|of|during|since|for|throughout|by|early|late|mid-?|year)\s+"
                    r"(?P<y>(?:19|20)\d{2})\b(?![-.]\d)", _I), _en_year),
        (re.compile(rf"\b{_EN_N}\s+(?P<u>day|week|month|year)s?\s+ago\b", _I), _en_ago),
        (re.compile(rf"\b(?:last|past|previous)\s+{_EN_N}\s+(?P<u>day|week|month|year)s\b", _I), _en_last_n),
        (re.compile(r"\b(?P<p>last|this|next|past|previous|coming)\s+(?P<u>week|weekend|month|quarter|year)\b", _I),
         _en_relative),
        (re.compile(r"\b(?P<p>last|this|next|previous|coming)\s+"
                    r"(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", _I), _en_weekday),
        (re.compile(r"\bQ(?P<q>[1-4])(?:\s*(?P<y>\d{4}))?\b"
                    r"|\b(?P<qo>first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter(?:\s+of\s+(?P<y2>\d{4}))?\b", _I),
         lambda m, now: _en_quarter(_Groups(m, y=m["y"] or m["y2"]), now)),
        (re.compile(r"\b(?P<y>\d{4})\s*Q(?P<q>[1-4])\b", _I), lambda m, now: _en_quarter(_Groups(m, qo=None), now)),
        (re.compile(r"\b(?:H(?P<h>[12])\s*(?P<y>\d{4})|(?P<ho>first|second)\s+half(?:\s+of\s+(?P<y2>\d{4}))?)\b", _I),
         lambda m, now: _en_half(_Groups(m, y=m["y"] or m["y2"]), now)),
    ]


class _Groups:
    """A match's groups with some replaced (two spellings of one rule merged)."""

    def __init__(self, m: re.Match, **over):
        self._m, self._over = m, over

    def __getitem__(self, key):
        return self._over[key] if key in self._over else self._m[key]


# the end of a range: "至3月5日", "-30日", "to May 5", "and 5"
_CONNECTOR = re.compile(r"\s*(?:至|到|~|～|-|—|–|－|——|\bto\b|\bthrough\b|\buntil\b|\btill\b|\band\b)\s*", _I)
_TAIL_ZH = re.compile(rf"(?:(?P<y>\d{{4}})\s*年)?\s*(?:(?P<m>\d{{1,2}})\s*月)?\s*(?P<d>\d{{1,2}})\s*{_DAY_MARK}")
_TAIL_EN = re.compile(rf"(?:{_MON}\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:\s*,?\s*(?P<y>\d{{4}})\b)?", _I)

_LATEST = re.compile(
    r"最新|(?<![离離距])最近(?![的地]?(?:距离|距離|的港|的城|的车|的車|的地))|近期|近日|近来|近來|目前|现在|現在|当前|當前|如今|眼下|现阶段|迄今|至今"
    r"|\b(?:latest|newest|most\s+recent(?:ly)?|recent(?:ly)?|currently|now|nowadays|these\s+days|so\s+far|to\s+date"
    r"|up\s+to\s+date)\b", _I)


def _matches(s: str, now: date) -> list[tuple[int, int, Span]]:
    """Every rule's readable matches, the longest kept where they overlap, in order."""
    found = []
    for pattern, rule in _rules():
        for m in pattern.finditer(s):
            if m.end() == m.start():
                continue
            span = rule(m, now)
            if span is not None:
                found.append((m.start(), m.end(), span))
    found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
    kept: list[tuple[int, int, Span]] = []
    for f in found:
        if kept and f[0] < kept[-1][1]:
            continue
        kept.append(f)
    return kept


def _range_end(s: str, begin: int, pos: int, first: Span,
               later: list[tuple[int, int, Span]]) -> tuple[int, date] | None:
    """Where a range that starts with `first` (at s[begin:pos]) ends ("至3月5日", "-30日", "to May 5", "between May 1
    and 5"), and its last day."""
    c = _CONNECTOR.match(s, pos)
    if c is None or (c.group().strip().lower() == "and" and not re.search(r"\bbetween\s+$", s[:begin], _I)):
        return None
    at = c.end()
    for start, end, span in later:  # a whole expression: "2023年1月至2023年3月", "from May 1 to June 5"
        if start == at:
            if span[1] < first[0]:
                return None
            if span[3] and not first[3]:  # "2023年3月1日至5月2日": the second takes the first's year
                try:
                    moved = span[1].replace(year=first[0].year)
                except ValueError:
                    return None
                return end, moved if moved >= first[0] else span[1]
            return end, span[1]
    if first[2] != "day":
        return None
    for tail in (_TAIL_ZH, _TAIL_EN):
        m = tail.match(s, at)
        if m is None:
            continue
        month = first[0].month
        if m["m"] if tail is _TAIL_ZH else m["mon"]:
            month = int(m["m"]) if tail is _TAIL_ZH else _en_month(m["mon"])
        y = int(m["y"]) if m["y"] else first[0].year
        day = _day(y, month, int(m["d"]))
        if day is not None and day < first[0] and not m["y"] and month != first[0].month:  # "12月30日至1月2日"
            day = _day(y + 1, month, int(m["d"]))
        if day is not None and day >= first[0]:
            return m.end(), day
    return None


def resolve(question: str, now=None) -> DateRange | None:
    """The dates `question` asks about, read against `now` (see `as_date`), or None when it names none.

    The first date expression counts; one joined to the next by 至/到/-/~/to/and makes a range. A date without a
    year is the latest such date on or before `now` ("4月2日" asked in January is last year's); 上周 and "last week"
    are the Monday-Sunday week before this one, "last Tuesday" and 上周二 that week's Tuesday; a weekday alone
    ("布林肯星期二前往…", "on Tuesday") is not read: questions echo the story's own weekday, whose week `now` does not
    tell. "the past week" and 近7天 are the 7 days ending on `now`. A recency word
    alone (最近, 最新, 目前, latest, recently...) gives the last RECENT_DAYS days with `latest` set.
    """
    today = as_date(now)
    if not isinstance(question, str) or not question:
        return None
    s, where = _normalise(question)
    found = _matches(s, today)
    latest = _LATEST.search(s)
    if latest is not None and latest.group().endswith("最近") and re.search(r"[离離距]", s[:latest.start()]):
        latest = None  # "距离中国最近的": nearest, not latest
    if not found:
        if latest is None:
            return None
        text = question[where[latest.start()]:where[latest.end() - 1] + 1]
        return DateRange(today - timedelta(days=RECENT_DAYS - 1), today, "recent", text, True, True, today)
    a, b, span = found[0]
    start, end, granularity, relative = span
    tail = _range_end(s, a, b, span, found[1:])
    if tail is not None:
        b, end = tail
    text = question[where[a]:where[b - 1] + 1].strip()
    return DateRange(start, end, granularity, text, relative, latest is not None, today)


# ---------------------------------------------------------------- dates a passage states


_CN_QUARTER = {"1": 1, "2": 2, "3": 3, "4": 4, "一": 1, "二": 2, "三": 3, "四": 4}


@functools.cache
def _stated_pattern() -> re.Pattern:
    """One pass over a passage: each alternative a named group (its own groups prefixed with its name), the longer
    readings first where two start at one place."""
    q = r"(?:第\s*)?(?P<q>[1-4一二三四])\s*季度"
    kinds = [
        ("ymd", r"(?<!\d)(?P<y>\d{4})\s*(?:年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]"
                r"|[-/.](?P<m2>\d{1,2})[-/.](?P<d2>\d{1,2})(?!\d))"),
        ("yq", rf"(?<!\d)(?P<y>\d{{4}})\s*年\s*{q}"),
        ("yh", r"(?<!\d)(?P<y>\d{4})\s*年\s*(?P<h>上|下)半年"),
        ("ym", r"(?<!\d)(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月(?!\s*\d{1,2}\s*[日号])"),
        ("md", r"(?<![\d年.\-/])(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]"),
        ("m", r"(?<![\d年.\-/])(?P<m>\d{1,2})\s*月(?!\s*\d{1,2}\s*[日号])"),
        ("d", r"(?<![\d月年.\-/:])(?P<d>\d{1,2})\s*日(?!\s*(?:内|以|前|后|後|之内|之後|之后|起))"),
        ("q", rf"(?<![\d年]){q}"),
        ("h", r"(?<![年\d])(?P<h>上|下)半年"),
        ("y", r"(?<!\d)(?P<y>(?:19|20)\d{2})\s*年(?!代|度)"),
        ("en_md", rf"\b{_MON}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:\s*,?\s*(?P<y>\d{{4}})\b)?"),
        ("en_dm", rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+{_MON}(?:\s*,?\s*(?P<y>\d{{4}})\b)?"),
    ]
    named = re.compile(r"\(\?P<(\w+)>")
    # every reading starts with one of these (digits, 上/下半年, 第/一..四季度, a month's first letter): any other
    # character is skipped at once, 0.53 -> ~0.12 ms for a 475-character Chinese chunk
    first = r"(?=[\d上下第一二三四adfjmnos])"
    return re.compile(first + "(?:" + "|".join("(?P<%s>%s)" % (k, named.sub(r"(?P<%s_\1>" % k, p))
                                               for k, p in kinds) + ")", _I)


class _Branch:
    """The groups of one alternative of _stated_pattern's match, by their own names."""

    def __init__(self, m: re.Match, kind: str):
        self._m, self._kind = m, kind

    def __getitem__(self, name: str):
        try:
            return self._m.group(f"{self._kind}_{name}")
        except IndexError:
            return None


# full-width ASCII (１２月, ：) as ASCII: what NFKC would do to the characters the patterns read, at a fraction of its cost
_HALF_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20}


def _near(candidates: list[date | None], published: date) -> date | None:
    ok = [c for c in candidates if c is not None]
    return min(ok, key=lambda c: abs((c - published).days)) if ok else None


def _stated(kind: str, m: re.Match, published: date | None) -> tuple[date, date] | None:
    if kind == "ymd":
        day = _day(int(m["y"]), int(m["m"] or m["m2"]), int(m["d"] or m["d2"]))
        return None if day is None else (day, day)
    if kind == "yq":
        return _quarter(int(m["y"]), _CN_QUARTER[m["q"]]) if 1 <= int(m["y"]) <= 9999 else None
    if kind == "yh":
        return _half(int(m["y"]), m["h"] == "上") if 1 <= int(m["y"]) <= 9999 else None
    if kind == "ym":
        y, mo = int(m["y"]), int(m["m"])
        return (date(y, mo, 1), _month_end(y, mo)) if 1 <= mo <= 12 and 1 <= y <= 9999 else None
    if kind == "y":
        return _year(int(m["y"]))
    if kind == "en_md" and m["y"]:
        day = _day(int(m["y"]), _en_month(m["mon"]), int(m["d"]))
        return None if day is None else (day, day)
    if published is None:
        return None
    y = published.year
    if kind in ("md", "en_md"):
        mo = int(m["m"]) if kind == "md" else _en_month(m["mon"])
        day = _near([_day(y + k, mo, int(m["d"])) for k in (-1, 0, 1)], published)
    elif kind == "d":  # "28日": this month's, last month's or next month's 28th, whichever is nearest
        day = _near([_day(*_add_months(y, published.month, k), int(m["d"])) for k in (-1, 0, 1)], published)
    elif kind == "m":  # "7月": the nearest July
        mo = int(m["m"])
        if not 1 <= mo <= 12:
            return None
        first = _near([_day(y + k, mo, 15) for k in (-1, 0, 1)], published)
        return date(first.year, mo, 1), _month_end(first.year, mo)
    elif kind == "q":  # "二季度": the latest second quarter begun by then (reports follow their quarter)
        span = _past_quarter(_CN_QUARTER[m["q"]], published)
        return None if span is None else span[:2]
    else:  # "上半年": the article's year's
        return _half(y, m["h"] == "上")
    return None if day is None else (day, day)


def stated_dates(text: str, published: date | None = None) -> list[tuple[date, date]]:
    """The dates `text` states, each as (first day, last day): days, months, quarters (二季度), halves (上半年) and
    years; what lacks its year or month ("7月28日", "28日", "7月", "二季度", "May 7") is read with the article's
    `published` date (the nearest reading; a quarter: the latest begun by then). Without `published`, only what
    carries its own year."""
    return list(_stated_dates(text, published))


@functools.lru_cache(maxsize=4096)  # the same chunks come back question after question
def _stated_dates(text: str, published: date | None) -> tuple[tuple[date, date], ...]:
    s = text.translate(_HALF_WIDTH)
    out = []
    for m in _stated_pattern().finditer(s):
        kind = m.lastgroup
        span = _stated("en_md" if kind == "en_dm" else kind, _Branch(m, kind), published)
        if span is not None:
            out.append(span)
    return tuple(out)


def published_date(published: str) -> date | None:
    """An article's ISO `published` ("2024-05-08T01:22:03Z") as a date, None when unknown."""
    try:
        return date.fromisoformat(published[:10]) if published else None
    except ValueError:
        return None


def date_evidence(r: DateRange, text: str, published: date | None, stated: float = 1.0) -> float:
    """1 when an article dated `published` falls in `r` (a day, a week or recent days), else `stated` when `text`
    states a date inside `r` (for a month or longer, where the article's date does not count: 1), else 0."""
    if published is not None and not r.coarse and published in r:
        return 1.0
    if any(r.holds(a, b) for a, b in stated_dates(text, published)):
        return 1.0 if r.coarse else stated
    return 0.0


def in_range(r: DateRange, text: str, published: date | None) -> bool:
    """Whether `text` (of an article dated `published`) states a date inside `r`, or, for a day, a week or a recent
    range, the article is dated inside it. A month's, quarter's or year's figures come out after it ("2023年7月新能
    源汽车零售量" in August): there only what the text says counts (crud-2docs/3docs, eval/README.md)."""
    if published is not None and not r.coarse and published in r:
        return True
    return any(r.holds(a, b) for a, b in stated_dates(text, published))
