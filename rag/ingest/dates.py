"""Normalise publication dates (ISO, Chinese, RFC 2822, English month names, epoch numbers) to UTC ISO strings."""
from __future__ import annotations

import email.utils
import math
import re
from datetime import datetime, timedelta, timezone

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
