"""The library tab's query: one page of the indexed articles, filtered by dates, source and a title search."""
from __future__ import annotations

from .inputs import parse_dates

PAGE_SIZE = 20
MAX_FILTER_CHARS = 200


def _clean(value) -> str:
    return value.strip()[:MAX_FILTER_CHARS] if isinstance(value, str) else ""


def query_library(index, page=1, date_from="", date_to="", source="", title="", lang: str = "zh",
                  page_size: int = PAGE_SIZE) -> dict:
    """{total, page, pages, rows} for 1-based `page` (clamped to the pages there are) of `index.list_articles`.

    Dates are checked like the chat's (InputError with a message fit to show when they are invalid)."""
    d_from, d_to = parse_dates(date_from, date_to, lang)
    filters = {"date_from": d_from, "date_to": d_to, "source": _clean(source) or None, "title": _clean(title) or None}
    try:
        want = max(1, int(page))
    except (TypeError, ValueError):
        want = 1
    total, rows = index.list_articles((want - 1) * page_size, page_size, **filters)
    pages = max(1, -(-total // page_size))
    if want > pages:  # past the end (the filters changed, or articles were removed): show the last page
        want = pages
        total, rows = index.list_articles((want - 1) * page_size, page_size, **filters)
    return {"total": total, "page": want, "pages": pages, "rows": rows}
