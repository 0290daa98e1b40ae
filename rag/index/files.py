"""The index directory's files: layout names, fsync, atomic writes, content hashes, string lists."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from ..errors import CorruptIndexError

SCHEMA_VERSION = 2
CURRENT = "CURRENT"
LOCK = "LOCK"
KEEP_GENERATIONS = 2

def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read_strings(path: Path, what: str) -> list[str]:
    """A JSON list of strings (BM25 terms, lexicon words), or CorruptIndexError naming the file."""
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
            raise ValueError("not a list of strings")
    except Exception as e:
        raise CorruptIndexError(str(path), f"{what} is unreadable ({e.__class__.__name__}: {e})") from None
    return items
