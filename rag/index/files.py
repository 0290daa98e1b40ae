"""The index directory's files: layout names, fsync, atomic writes, content hashes, string lists, disk-full and
printable-name helpers."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import time
import unicodedata
from pathlib import Path

from ..errors import CorruptIndexError, IndexLockedError, NoSpaceError, RagError

SCHEMA_VERSION = 3  # 3: segments (rag.index.segment); 2 (one folder per generation) still opens
CURRENT = "CURRENT"
# Written just before a first index renames its generation into place and removed once CURRENT names it: a
# generation without CURRENT but with this marker is a first publish cut short (the next writer finishes it), not
# an index whose CURRENT was lost (which nothing may write over).
FIRST = "CURRENT.first"
LOCK = "LOCK"
SEGMENTS = "segments"  # the folder of segments (rag.index.segment), shared by the generations
KEEP_GENERATIONS = 2
GENERATION = re.compile(r"gen-\d{1,12}")


def generations(root: Path) -> list[str]:
    """The generation folders under `root`, oldest first."""
    try:
        names = [p.name for p in Path(root).iterdir() if GENERATION.fullmatch(p.name) and p.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(names, key=lambda n: int(n[4:]))


def read_pointer(path: Path) -> str | None:
    """The generation name a pointer file (CURRENT, FIRST) holds, or None when it is missing or holds no name."""
    try:
        name = Path(path).read_bytes()[:200].decode("utf-8", "replace").strip()
    except OSError:
        return None
    return name if GENERATION.fullmatch(name) else None


def check_folder(root: Path) -> None:
    """Refuse an index path that is a file (or anything else but a folder)."""
    if os.path.lexists(root) and not Path(root).is_dir():
        raise RagError(f"{printable(str(root))} is a file, not an index folder")


def make_dir(parent: Path, prefix: str) -> Path:
    """A new uniquely named folder, with the permissions the umask gives (tempfile.mkdtemp would make it 0700)."""
    while True:
        path = Path(parent) / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(0o777)
            return path
        except FileExistsError:
            continue


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
    while True:  # mode 0666 less the umask, as for any other file (tempfile.mkstemp would make it 0600)
        tmp = path.parent / f"{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
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


_CONTROL = {"Cc", "Cs", "Zl", "Zp"}
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """`text` with control characters, line separators, bidi overrides and lone surrogates shown as repr-style
    escapes (a file named "a\\nnote: ..." cannot forge a line of a summary or an error)."""
    if text.isprintable() and not any(ch in _BIDI for ch in text):
        return text
    return "".join(repr(ch)[1:-1] if unicodedata.category(ch) in _CONTROL or ch in _BIDI else ch for ch in text)


_FULL = re.compile(r"No space left on device|database or disk is full|Disk quota exceeded|\d+ requested and \d+ written")


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether `exc` (or an exception it came from) says the disk is full: OSError ENOSPC/EDQUOT, SQLite's "database
    or disk is full", FAISS's C++ write error, numpy's short write ("N requested and M written", no errno)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if _FULL.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def disk_full_is_an_error(root: Path):
    """Turn a full disk met while writing the index at `root` into one NoSpaceError line. The code inside must leave
    the live generation as it was when it raises (a writer aborts and removes its temp generation first)."""
    try:
        yield
    except NoSpaceError:
        raise
    except Exception as e:
        if is_disk_full(e):
            raise NoSpaceError(f"no space left on {printable(str(root))}: nothing was changed") from None
        raise


class WriteLock:
    """An exclusive advisory lock on DIR/LOCK: one writer at a time; a second waits up to `timeout` then fails."""

    def __init__(self, root: Path, timeout: float = 0.0):
        self.root, self.timeout, self._f = Path(root), timeout, None

    def __enter__(self):
        check_folder(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._f = open(self.root / LOCK, "a+")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._f.close()
                    raise IndexLockedError(
                        f"{self.root}: another `rag index` is writing to this index; wait for it to finish "
                        "(or pass --wait SECONDS)") from None
                time.sleep(0.1)

    def __exit__(self, *exc):
        fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)
        self._f.close()
