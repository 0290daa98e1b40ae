"""Uploaded files (name and size checks, storing them under the index) and the background index builds."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import RagError
from ..index import index_stream
from ..ingest import SUPPORTED_SUFFIXES, iter_articles
from ..retrieve import searcher
from .render import t

UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".jsonl")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_FILES = 50
UPLOADS_DIR = "uploads"


class UploadRejected(ValueError):
    def __init__(self, key: str, **detail):
        self.key, self.detail = key, detail
        super().__init__(t("en", key, **detail))

    def message(self, lang: str) -> str:
        detail = dict(self.detail)
        if "detail_key" in detail:
            detail["detail"] = t(lang, detail.pop("detail_key"))
        return t(lang, self.key, **detail)


_NAME_KEEP = re.compile(r"[^\w.\-()]+", re.UNICODE)


def safe_filename(name: Any) -> str:
    """A safe basename for an uploaded file, or UploadRejected.

    Never trusts the client's path: directories are stripped, '..' components and control characters are
    rejected, anything but letters, digits, '.', '-', '_' and '()' becomes '_', leading dots go, and the
    suffix must be one of UPLOAD_SUFFIXES.
    """
    if not isinstance(name, str) or not name.strip():
        raise UploadRejected("rej_name", detail_key="detail_empty", detail="empty")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in name):
        raise UploadRejected("rej_name", detail_key="detail_control", detail="control characters")
    parts = name.replace("\\", "/").split("/")
    if any(p.strip() == ".." for p in parts):
        raise UploadRejected("rej_name", detail_key="detail_dotdot", detail="a '..' path")
    base = parts[-1].strip()
    base = _NAME_KEEP.sub("_", base).lstrip(".")
    stem, suffix = os.path.splitext(base)
    suffix = suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise UploadRejected("rej_type", suffix=suffix or "(none)")
    stem = stem.strip("._")[:100]
    if not stem or stem in (".", ".."):
        raise UploadRejected("rej_name", detail_key="detail_empty", detail="empty")
    return stem + suffix


def _fmt_size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def check_upload(src: str | os.PathLike, client_name: str | None = None) -> str:
    """Validate one uploaded temp file; returns the sanitised name to store it under (or UploadRejected)."""
    name = safe_filename(client_name if client_name is not None else os.path.basename(os.fspath(src)))
    try:
        size = os.path.getsize(src)
    except OSError as e:
        raise UploadRejected("rej_io", detail=e.strerror or str(e)) from None
    if size > MAX_UPLOAD_BYTES:
        raise UploadRejected("rej_size", size=_fmt_size(size))
    if size == 0:
        raise UploadRejected("rej_empty")
    return name


def store_upload(src: str | os.PathLike, name: str, uploads: Path) -> Path:
    """Copy `src` into `uploads/name`; a different file already there keeps its name and this one gets a hash."""
    uploads.mkdir(parents=True, exist_ok=True)
    data = Path(src).read_bytes()[: MAX_UPLOAD_BYTES + 1]
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRejected("rej_size", size=_fmt_size(len(data)))
    dest = uploads / name
    if dest.exists() and dest.read_bytes() != data:
        stem, suffix = os.path.splitext(name)
        dest = uploads / f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}{suffix}"
    if dest.resolve().parent != uploads.resolve():  # belt and braces: never write outside uploads/
        raise UploadRejected("rej_name", detail_key="detail_dotdot", detail="a '..' path")
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=uploads)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return dest


def receive_upload(f: Any, uploads: Path, lang: str) -> tuple[tuple[bool, str, str], Path | None]:
    """Check, parse and store one uploaded file: the row to show (ok, name, message) and where it went, or None."""
    src = os.fspath(getattr(f, "path", None) or getattr(f, "name", None) or f)
    shown = os.path.basename(src.replace("\\", "/"))
    try:
        name = check_upload(src, shown)
        _, result, line_errors = next(iter(iter_articles([src], max_bytes=MAX_UPLOAD_BYTES)))
        if isinstance(result, Exception):
            raise UploadRejected("rej_parse", detail=getattr(result, "reason", str(result)))
        dest = store_upload(src, name, uploads)
    except UploadRejected as e:
        return (False, shown, e.message(lang)), None
    except OSError as e:
        return (False, shown, t(lang, "rej_io", detail=e.strerror or str(e))), None
    msg = t(lang, "up_accepted") + " · " + t(lang, "up_articles", n=len(result))
    if line_errors:
        msg += " · " + t(lang, "up_line_errors", n=len(line_errors))
    return (True, dest.name, msg), dest


@dataclass
class IndexJobs:
    """Index builds and uploads run here, one at a time, off the request threads."""

    index_dir: Path
    seed_dir: Path | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    busy: int = 0
    done: int = 0
    total: int = 0
    seeding: bool = False
    last: Any = None  # IndexSummary of the last run
    error: str = ""
    _write: threading.Lock = field(default_factory=threading.Lock)
    _mu: threading.Lock = field(default_factory=threading.Lock)

    def index_exists(self) -> bool:
        return (self.index_dir / "CURRENT").exists()

    def bootstrap(self, background: bool = True) -> threading.Thread | None:
        """Build the index from the seed folder when there is none yet."""
        if self.index_exists():
            self.ready.set()
            return None
        paths = [self.seed_dir] if self.seed_dir and self.seed_dir.is_dir() else []
        print(f"[rag] no index at {self.index_dir}: building it from "
              f"{self.seed_dir if paths else '(no seeds folder: empty index)'}", file=sys.stderr, flush=True)
        return self.submit(paths, seeding=True, background=background)

    def submit(self, paths: Sequence[Path], seeding: bool = False, background: bool = True) -> threading.Thread | None:
        with self._mu:
            self.busy += 1
            if seeding:
                self.seeding = True
        if not background:
            self._run(list(paths), seeding)
            return None
        th = threading.Thread(target=self._run, args=(list(paths), seeding), name="rag-indexer", daemon=True)
        th.start()
        return th

    def _embedder(self):
        if self.index_exists():
            try:
                return searcher(self.index_dir).embedder
            except RagError:
                pass
        return "use"

    def _run(self, paths: list[Path], seeding: bool) -> None:
        try:
            with self._write:
                total = sum(1 for _ in _files(paths))
                with self._mu:
                    self.done, self.total = 0, total

                def counted():
                    for item in iter_articles([str(p) for p in paths], max_bytes=MAX_UPLOAD_BYTES):
                        yield item
                        with self._mu:
                            self.done += 1
                        if seeding and (self.done == total or self.done % 50 == 0):
                            print(f"[rag] indexed {self.done}/{total} files", file=sys.stderr, flush=True)

                summary = index_stream(counted(), self.index_dir, self._embedder(), progress=False, wait=300.0)
            print("[rag] " + summary.render().replace("\n", "\n[rag] "), file=sys.stderr, flush=True)
            with self._mu:
                self.last, self.error = summary, ""
        except Exception as e:  # shown in the status line; the server keeps answering from the old index
            print(f"[rag] indexing failed: {e}", file=sys.stderr, flush=True)
            with self._mu:
                self.error = str(e) or e.__class__.__name__
        finally:
            with self._mu:
                self.busy -= 1
                if seeding:
                    self.seeding = False
            if seeding or self.index_exists():
                self.ready.set()

    @property
    def is_busy(self) -> bool:
        with self._mu:
            return self.busy > 0

    def status(self, lang: str = "zh") -> str:
        parts = []
        with self._mu:
            busy, seeding, done, total, last, error = (self.busy, self.seeding, self.done, self.total, self.last,
                                                       self.error)
        if busy:
            parts.append(t(lang, "status_building_seeds" if seeding else "status_busy", done=done, total=total))
        stats = None
        if self.index_exists():
            try:
                stats = searcher(self.index_dir).refresh().stats()
            except Exception:  # a half-built or damaged index: show what we know
                stats = None
        if stats:
            last_at = (stats.get("last_indexed") or "").replace("T", " ").rstrip("Z") or t(lang, "status_never")
            parts.append(t(lang, "status_index", articles=stats["articles"], chunks=stats["chunks"],
                           embedder=stats["embedder"], last=last_at))
        elif not busy:
            parts.append(t(lang, "status_missing"))
        if last is not None and not busy:
            parts.append(t(lang, "status_last", added=last.added, updated=last.updated, skipped=last.skipped,
                           failed=last.failed))
        if error:
            parts.append(t(lang, "status_error", error=error[:300]))
        return " · ".join(parts)


def _files(paths: Iterable[Path]) -> Iterable[str]:
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for f in files:
                    if not f.startswith(".") and os.path.splitext(f)[1].lower() in SUPPORTED_SUFFIXES:
                        yield os.path.join(root, f)
        else:
            yield str(p)


def default_seed_dir() -> Path | None:
    for cand in (Path(__file__).resolve().parents[2] / "seeds", Path.cwd() / "seeds"):
        if cand.is_dir():
            return cand
    return None
