"""Tests for rag.ingest.dates: each accepted form keeps its value, anything out of range or malformed gives ""."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from rag.errors import ArticleWarning
from rag.ingest import parse_date
from rag.ingest.dates import checked_date

ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")

VALID = [
    # ISO 8601 (fromisoformat), with and without offsets, fractions, basic and week forms
    ("2024-05-08T01:22:03Z", "2024-05-08T01:22:03Z"),
    ("2024-05-08t01:22:03z", "2024-05-08T01:22:03Z"),
    ("2024-05-08T09:22:03+08:00", "2024-05-08T01:22:03Z"),
    ("2024-05-08T09:22:03+08", "2024-05-08T01:22:03Z"),
    ("2024-05-07T21:22:03-0400", "2024-05-08T01:22:03Z"),
    ("2024-05-08T01:22:03.999999Z", "2024-05-08T01:22:03Z"),
    ("2024-05-08T23:59:59-23:59", "2024-05-09T23:58:59Z"),
    ("2024-05-08T23:59:59+23:59", "2024-05-08T00:00:59Z"),
    ("2024-05-08 01:22", "2024-05-08T01:22:00Z"),
    ("20240508", "2024-05-08T00:00:00Z"),
    ("20240508T012203", "2024-05-08T01:22:03Z"),
    ("2024-W19-3", "2024-05-08T00:00:00Z"),
    ("2024-02-29", "2024-02-29T00:00:00Z"),
    ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
    ("0001-01-01T00:00:00-01:00", "0001-01-01T01:00:00Z"),  # four-digit years, always
    # numeric dates (/ . 年月日), times (: 时分秒), offsets and zone names after them
    ("2024/5/8", "2024-05-08T00:00:00Z"),
    ("2024.5.8", "2024-05-08T00:00:00Z"),
    ("2024/05/08 01:22:03", "2024-05-08T01:22:03Z"),
    ("2024/05/08 01:22:03.5", "2024-05-08T01:22:03Z"),
    ("2024年5月8日", "2024-05-08T00:00:00Z"),
    ("2024年5月8日 9时30分", "2024-05-08T09:30:00Z"),
    ("2024年5月8日 9時30分15秒", "2024-05-08T09:30:15Z"),
    ("2024年5月8日10时", "2024-05-08T10:00:00Z"),
    ("2024年5月8日 9点", "2024-05-08T09:00:00Z"),
    ("2024年05月08日 01:22", "2024-05-08T01:22:00Z"),
    ("发布时间：2024年5月8日 09:30 来源：新华社", "2024-05-08T09:30:00Z"),
    ("2024年5月8日 星期三", "2024-05-08T00:00:00Z"),
    ("2024/05/08 09:22 +0800", "2024-05-08T01:22:00Z"),
    ("2024/05/08 09:22 UTC+8", "2024-05-08T01:22:00Z"),
    ("2024/05/08 09:22 GMT+08:00", "2024-05-08T01:22:00Z"),
    ("2024/05/08 01:22 GMT", "2024-05-08T01:22:00Z"),
    ("2024/05/08 01:22Z", "2024-05-08T01:22:00Z"),
    # RFC 2822 and English month names
    ("Wed, 08 May 2024 01:22:03 GMT", "2024-05-08T01:22:03Z"),
    ("Wed, 08 May 2024 09:22:03 +0800", "2024-05-08T01:22:03Z"),
    ("8 May 2024 01:22 GMT", "2024-05-08T01:22:00Z"),
    ("May 8, 2024", "2024-05-08T00:00:00Z"),
    ("May 8, 2024 9:30 PM", "2024-05-08T21:30:00Z"),
    ("8 May 2024", "2024-05-08T00:00:00Z"),
    ("Sep. 8, 2024", "2024-09-08T00:00:00Z"),
    # epoch seconds and milliseconds: numbers and digit strings
    (1715131323, "2024-05-08T01:22:03Z"),
    (1715131323.5, "2024-05-08T01:22:03Z"),
    (1715131323000, "2024-05-08T01:22:03Z"),
    ("1715131323", "2024-05-08T01:22:03Z"),
    ("1715131323000", "2024-05-08T01:22:03Z"),
    # datetime objects: naive ones are UTC
    (datetime(2024, 5, 8, 1, 22, 3), "2024-05-08T01:22:03Z"),
    (datetime(2024, 5, 8, 9, 22, 3, tzinfo=timezone(timedelta(hours=8))), "2024-05-08T01:22:03Z"),
    ("  2024-05-08  ", "2024-05-08T00:00:00Z"),
]

INVALID = [
    # years out of range, or a longer number cut to four digits
    "99999-01-01", "0000-00-00", "0000-01-01", "10000-01-01T00:00:00Z", "199999-05-08",
    # months 13 and 0, day 32 and 0, Feb 30, Feb 29 of a common year
    "2024-13-01", "2024-00-10", "2024-12-32", "2024-05-00", "2024/2/30", "2023-02-29", "2024年13月1日", "2024年2月30日",
    # hours, minutes, seconds out of range; a time the pattern cannot read
    "2024-05-08T25:00:00Z", "2024-05-08T24:00:00", "2024-05-08 10:60", "2024/05/08 10:00:61", "2024-05-08 9:61",
    "2024-05-08 123:45", "2024-05-08 10:00:000",
    # offsets beyond +-23:59 (hours 24+, minutes 60+), or ones that cannot be read (never taken as UTC)
    "2024-05-01 10:00 +2500", "2024-05-08T01:22:03+24:00", "2024-05-08T01:22:03-25:00", "2024-05-08T10:00+00:99",
    "2024-05-08 10:00 +0099", "2024/05/08 10:00 GMT+24", "2024-05-08 10:00 +25000", "2024-05-08 10:00 (UTC+8)",
    "Wed, 08 May 2024 01:22:03 +2500",
    # a 12-hour time the RFC 2822 parser would read as the morning
    "May 8, 2024 9:30 PM EST", "Wed, 8 May 2024 9:30 PM",
    # valid as written, but past datetime's range once converted to UTC
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "Fri, 31 Dec 9999 23:59:59 -2359",
    # epochs: NaN, infinities, huge, negative, zero (the usual "unknown" placeholder)
    float("nan"), float("inf"), float("-inf"), 1e308, 10**30, 10**400, -(10**400), -1, -1715131323, 0, 0.0,
    "-1715131323", "1e308", "NaN", "inf", "-1", "9999999999999999999",
    # not dates at all, and values of other types
    "", "   ", "yesterday", "May 2024", "2024", "12", "Monday", "2024-05", True, False, None, [], ["2024-05-08"],
    {"date": "2024-05-08"}, b"2024-05-08", ("2024", 5, 8),
]


@pytest.mark.parametrize(("value", "expected"), VALID, ids=lambda v: repr(v)[:40])
def test_valid_forms_keep_their_value(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", INVALID, ids=lambda v: repr(v)[:40])
def test_invalid_dates_are_dropped_never_guessed(value):
    assert parse_date(value) == ""


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(
    st.text(alphabet=st.sampled_from(list("0123456789-/.:+ TZ年月日时分秒GMTUC")), max_size=40),
    st.text(max_size=40),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
))
def test_any_value_gives_a_utc_date_or_nothing(value):
    out = parse_date(value)
    assert out == "" or ISO_UTC.fullmatch(out)


def test_a_dropped_date_is_a_warning_naming_the_file_and_line():
    published, warnings = checked_date("2024-05-01 10:00 +2500", "news/a.md", "front matter date", line=3)
    assert published == ""
    (w,) = warnings
    assert isinstance(w, ArticleWarning) and (w.path, w.line) == ("news/a.md", 3)
    assert str(w).startswith("news/a.md:3: front matter date ('2024-05-01 10:00 +2500') is not a date")
    assert "ISO 8601" in w.reason  # and how to fix it

    _, (huge,) = checked_date(10**5000, "b.jsonl", "field 'published'", line=1)  # str() of it would raise
    assert "bit number" in huge.reason


@pytest.mark.parametrize("value", [None, "", "  ", "2024-05-08", 1715131323])
def test_absent_or_readable_dates_give_no_warning(value):
    published, warnings = checked_date(value, "a.jsonl", "field 'published'", line=1)
    assert warnings == [] and published == parse_date(value)
