"""Read article files (.txt/.md/.html/.jsonl) into `Article` records: walk paths, check files, dispatch by suffix."""
from __future__ import annotations

import dataclasses
import os
import stat
from typing import Iterator

from ..errors import ArticleError, ArticleWarning
from ..types import Article
from .dates import date_from_text, parse_date
from .decode import decode_bytes
from .html import parse_html_page
from .jsonl import parse_jsonl
from .plain import VOA_START, parse_plain, parse_voa

DEFAULT_MAX_BYTES = 5_000_000
# A .jsonl file is an archive of articles, so the limit applies to each of its lines; the file itself may be this
# large (read whole: ~2-3x its size in memory while it is parsed).
JSONL_MAX_BYTES = 1_000_000_000
SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".jsonl"})
_MARKDOWN_SUFFIXES = {".md", ".markdown"}


def _read(path, max_bytes: int) -> tuple[list[Article], list[ArticleError]]:
    """The file's articles, and its line errors and warnings (`ArticleWarning`: something dropped, article kept).
    An article without a date takes the one its text's head states, if any (`dated_from_text`)."""
    articles, errors = _parse(path, max_bytes)
    return [dated_from_text(a) for a in articles], errors


def dated_from_text(article: Article) -> Article:
    """`article` with the date its head states (its text's, else its title's: rag.ingest.dates.date_from_text)
    when it has none, marked `date_from_text`; else `article` itself."""
    if article.published:
        return article
    published = date_from_text(article.text, article.url) or (
        date_from_text(article.title + "\n", article.url) if article.title else "")
    return dataclasses.replace(article, published=published, date_from_text=True) if published else article


def _parse(path, max_bytes: int) -> tuple[list[Article], list[ArticleError]]:
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
    limit = max(max_bytes, JSONL_MAX_BYTES) if suffix == ".jsonl" else max_bytes
    too_big = f"file too large: {{}} bytes, over the limit of {limit} bytes"
    if st.st_size > limit:
        raise ArticleError(path, too_big.format(st.st_size))
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise ArticleError(path, f"cannot read: {e.strerror or e}") from None
    if len(data) > limit:  # the file grew after the stat
        raise ArticleError(path, too_big.format(f"more than {limit}"))
    if not data:
        raise ArticleError(path, "no text: the file is empty")
    text = decode_bytes(data, path)
    if not text.strip():
        raise ArticleError(path, "no text: the file holds only whitespace")
    if suffix == ".jsonl":
        return parse_jsonl(text, path, max_bytes)
    if suffix in (".html", ".htm"):
        article, warnings = parse_html_page(text, path)
        return [article], warnings
    start = VOA_START.match(text)
    if start:
        return [parse_voa(text, path, start)], []
    article, warnings = parse_plain(text, path, markdown=suffix in _MARKDOWN_SUFFIXES)
    return [article], warnings


def load_file(path, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Article]:
    """Read one file into articles; any problem (for .jsonl: the first bad line) raises ArticleError. Warnings
    (a date dropped) do not: `iter_articles` reports them."""
    articles, line_errors = _read(path, max_bytes)
    for e in line_errors:
        if not isinstance(e, ArticleWarning):
            raise e
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

    The per-line errors also hold warnings (`ArticleWarning`, e.g. a date that cannot be read: the article is kept
    without it); they are not failures.

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


def count_files(paths) -> int:
    """How many article files `iter_articles(paths)` would read (for a progress estimate; unreadable ones count)."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    n = 0
    for given in paths:
        given = os.fsdecode(given)
        n += sum(1 for _ in _walk(given)) if os.path.isdir(given) else 1
    return n


# decode_bytes and parse_date live in .decode and .dates; they stay importable from here as before
__all__ = ["DEFAULT_MAX_BYTES", "SUPPORTED_SUFFIXES", "count_files", "decode_bytes", "iter_articles", "load_file", "parse_date"]
