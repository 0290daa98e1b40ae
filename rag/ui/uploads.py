"""Uploaded files: name and size checks, storing them under the index, Gradio's temp copies, the record of those
indexed."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from .render import MAX_UPLOAD_BYTES, t

UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".jsonl")
UPLOADS_DIR = "uploads"
RECORD = ".indexed.json"  # the uploads the index holds (hidden: the indexer never reads it as an article)


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
        raise UploadRejected("rej_io", detail=e.strerror or e.__class__.__name__) from None
    if size > MAX_UPLOAD_BYTES:
        raise UploadRejected("rej_size", size=_fmt_size(size))
    if size == 0:
        raise UploadRejected("rej_empty")
    return name


def store_upload(src: str | os.PathLike, name: str, uploads: Path) -> Path:
    """Copy `src` into `uploads/name`; a different file already there keeps its name and this one gets a hash."""
    uploads.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as f:
        data = f.read(MAX_UPLOAD_BYTES + 1)
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


def discard_temp(src: str | os.PathLike, temp_root: str | os.PathLike | None) -> None:
    """Delete Gradio's cached copy of an upload (and its folder when empty); only inside `temp_root`."""
    if temp_root is None:
        return
    try:
        path, root = Path(src).resolve(), Path(temp_root).resolve()
    except (OSError, RuntimeError):
        return
    if root not in path.parents:
        return
    with contextlib.suppress(OSError):
        path.unlink()
    parent = path.parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break
        parent = parent.parent


def receive_upload(f: Any, uploads: Path, lang: str, temp_root: str | os.PathLike | None = None
                   ) -> tuple[tuple[bool, str, str], Path | None]:
    """Check and store one uploaded file (it is read by the indexing worker, not here): the row to show
    (ok, name, message) and where it went, or None. Gradio's temp copy under `temp_root` is deleted either way."""
    src = os.fspath(getattr(f, "path", None) or getattr(f, "name", None) or f)
    shown = os.path.basename(src.replace("\\", "/"))
    try:
        name = check_upload(src, shown)
        dest = store_upload(src, name, uploads)
    except UploadRejected as e:
        return (False, shown, e.message(lang)), None
    except OSError as e:
        return (False, shown, t(lang, "rej_io", detail=e.strerror or e.__class__.__name__)), None
    finally:
        discard_temp(src, temp_root)
    return (True, dest.name, t(lang, "up_received")), dest


# ---------------------------------------------------------------- which stored uploads the index holds

def read_record(uploads: Path) -> dict[str, dict]:
    """The uploads the index holds, by stored name ({name: {"articles": n, "bad_lines": n}}); {} when unreadable."""
    try:
        data = json.loads((uploads / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, dict)}


def write_record(uploads: Path, record: dict[str, dict]) -> None:
    uploads.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".record-", dir=uploads)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "files": record}, f, ensure_ascii=False, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, uploads / RECORD)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def stored_uploads(uploads: Path) -> list[Path]:
    """The upload files in `uploads` (no hidden or temp files), by name."""
    try:
        entries = sorted(uploads.iterdir())
    except OSError:
        return []
    return [p for p in entries if not p.name.startswith(".") and p.suffix.lower() in UPLOAD_SUFFIXES and p.is_file()]


def default_seed_dir() -> Path | None:
    for cand in (Path(__file__).resolve().parents[2] / "seeds", Path.cwd() / "seeds"):
        if cand.is_dir():
            return cand
    return None
