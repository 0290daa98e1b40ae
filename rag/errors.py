"""Exceptions with messages that name the file or field at fault."""
from __future__ import annotations


class RagError(Exception):
    """Base class for errors shown to users without a traceback."""


class ArticleError(RagError):
    """An input file (or one line of it) could not be read as an article."""

    def __init__(self, path: str, reason: str, line: int | None = None):
        self.path, self.reason, self.line = str(path), reason, line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class ArticleWarning(ArticleError):
    """Part of an article was dropped (e.g. an unreadable date) but the article itself was read: reported among a
    file's line errors by `iter_articles`, never a failure."""


class IndexMismatchError(RagError):
    """The index was built with another embedder (or another schema) than the one asked for."""


class CorruptIndexError(RagError):
    """An index file is missing, truncated or inconsistent with the others."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: {reason}. Rebuild it with `rag index --rebuild PATH...`.")


class IndexLockedError(RagError):
    """Another process is writing to the index."""


class NoSpaceError(RagError):
    """The disk filled up while the index was being written; the live generation is unchanged."""


class NothingToIndexError(RagError):
    """The paths given to the indexer hold no article file."""
