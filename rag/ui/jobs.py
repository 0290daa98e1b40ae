"""The UI's background indexer: one worker process at a time (`rag.ui.worker`, at lower priority) builds the index
from seeds/, indexes the stored uploads and removes them; per-file results for the upload panel."""
from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import CorruptIndexError, IndexMismatchError
from ..index import CURRENT
from ..retrieve import searcher
from .render import MAX_UPLOAD_BYTES, MAX_UPLOAD_FILES, t
from .uploads import UPLOADS_DIR, read_record, stored_uploads, write_record
from .worker import PROGRESS, RESULT, command

log = logging.getLogger("rag.ui")

MAX_PENDING_FILES = 2 * MAX_UPLOAD_FILES  # stored uploads waiting for the worker; more are refused
MAX_QUEUED_REMOVALS = 16
RESULTS_KEPT = 500  # per-file results remembered for the upload panel
JOB_SECONDS = 600.0  # a worker's time limit: this plus PER_FILE_SECONDS per file (seeding has none)
PER_FILE_SECONDS = 60.0


@dataclass
class FileResult:
    """What became of one stored upload: queued, indexing, indexed, rejected, waiting, removing or removed."""

    state: str
    articles: int = 0
    bad_lines: int = 0
    lines: list = field(default_factory=list)  # [[line, reason], ...], the first few
    reason: str = ""  # why it was rejected (the ingest's words), else the text of reason_key
    reason_key: str = "up_failed"

    def message(self, lang: str) -> str:
        if self.state == "indexed":
            msg = t(lang, "up_indexed", n=self.articles)
            if self.bad_lines:
                details = "; ".join(t(lang, "up_line", line=n, reason=r) for n, r in self.lines[:5])
                msg += " · " + t(lang, "up_line_errors", n=self.bad_lines) + (f" ({details})" if details else "")
            return msg
        if self.state == "rejected":
            return t(lang, "up_not_indexed", reason=self.reason or t(lang, self.reason_key))
        key = {"queued": "up_received", "indexing": "up_indexing", "waiting": "up_waiting", "removing": "up_removing",
               "removed": "up_removed"}
        return t(lang, key.get(self.state, "up_received"))


@dataclass
class WorkerResult:
    ok: bool
    kind: str = ""  # when not ok: "index" (the index or the machine: keep the files queued) or "crash"
    data: dict = field(default_factory=dict)


class IndexJobs:
    """Index builds, uploads and removals, run one at a time by a thread that starts worker processes.

    Every file in the uploads folder is either in its record (the index holds it) or waiting: a job indexes all the
    waiting ones, so a file stored before a crash or a failed job is indexed by the next one, and a file that yields
    no article is deleted. One bad file does not sink the others: a failed batch is retried file by file.
    """

    def __init__(self, index_dir: str | os.PathLike, seed_dir: str | os.PathLike | None = None,
                 worker_command: Sequence[str] | None = None):
        self.index_dir = Path(index_dir)
        self.seed_dir = Path(seed_dir) if seed_dir else None
        self.uploads = self.index_dir / UPLOADS_DIR
        self.command = list(worker_command or command())
        self.ready = threading.Event()  # the index exists (or its first build ended)
        self.results: collections.OrderedDict[str, FileResult] = collections.OrderedDict()
        self.last: dict | None = None  # the counts of the last indexing run
        self.problem: tuple[str, dict] | None = None  # a status text key for the last failure (the log has details)
        self.running = ""  # "seed", "index" or "remove"
        self.done = self.total = 0
        self._seed = self._index = False
        self._removals: collections.deque[str] = collections.deque()
        self._article_removals: collections.deque[str] = collections.deque()  # article ids (the library tab)
        self.article_results: collections.OrderedDict[str, str] = collections.OrderedDict()  # removing/removed/failed
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._closed = False
        self._logged = ""

    # ---------------------------------------------------------------- requests (any thread)

    def index_exists(self) -> bool:
        return (self.index_dir / CURRENT).exists()

    def bootstrap(self, background: bool = True) -> None:
        """Build the index from the seed folder when there is none; index uploads left waiting by a crash."""
        if self.index_exists():
            self.ready.set()
            if self.waiting_files():
                self._want(index=True, background=background)
            return
        log.info("no index at %s: building it from %s", self.index_dir,
                 self.seed_dir if self.seed_dir and self.seed_dir.is_dir() else "(no seeds folder: empty index)")
        self._want(seed=True, index=bool(self.waiting_files()), background=background)

    def too_busy(self, n_files: int) -> int:
        """How many stored uploads are already waiting, when `n_files` more would be too many; else 0."""
        waiting = len(self.waiting_files())
        return max(waiting, 1) if waiting + n_files > MAX_PENDING_FILES else 0

    def kick(self) -> None:
        """Index the uploads waiting in the folder (stored by the caller)."""
        self._want(index=True)

    def request_remove(self, name: str) -> bool:
        """Queue the removal of the stored upload `name` from the index; False when the queue is full."""
        with self._cv:
            if name in self._removals:
                return True
            if len(self._removals) >= MAX_QUEUED_REMOVALS:
                return False
            self._removals.append(name)
        self._result(name, FileResult("removing"))
        self._want()
        return True

    def request_remove_article(self, article_id: str) -> bool:
        """Queue the removal of one indexed article by id (the library tab); False when the queue is full."""
        with self._cv:
            if article_id not in self._article_removals:
                if len(self._article_removals) >= MAX_QUEUED_REMOVALS:
                    return False
                self._article_removals.append(article_id)
            self._article_result(article_id, "removing")
        self._want()
        return True

    def wait_article(self, article_id: str, timeout: float) -> str:
        """The state of an article's removal once it is no longer "removing" (or after `timeout` seconds)."""
        with self._cv:
            self._cv.wait_for(lambda: self.article_results.get(article_id) != "removing" or self._closed, timeout)
            return self.article_results.get(article_id, "")

    def _article_result(self, article_id: str, state: str) -> None:
        with self._cv:
            self.article_results.pop(article_id, None)
            self.article_results[article_id] = state
            while len(self.article_results) > RESULTS_KEPT:
                self.article_results.popitem(last=False)
            self._cv.notify_all()

    def close(self) -> None:
        """Stop the thread after its task and end a running worker (writes are atomic: the index stays whole)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def _want(self, seed: bool = False, index: bool = False, background: bool = True) -> None:
        with self._cv:
            self._seed |= seed
            self._index |= index
            self._cv.notify_all()
            if background and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._loop, name="rag-indexer", daemon=True)
                self._thread.start()
        if not background:
            self.run_pending()

    # ---------------------------------------------------------------- what the UI shows

    @property
    def is_busy(self) -> bool:
        with self._cv:
            return bool(self.running or self._seed or self._index or self._removals or self._article_removals)

    def uploaded_names(self) -> list[str]:
        """The stored uploads the index holds (the ones a user can remove)."""
        record = read_record(self.uploads)
        with self._cv:
            removing = set(self._removals)
        return [p.name for p in stored_uploads(self.uploads) if p.name in record and p.name not in removing]

    def waiting_files(self) -> list[Path]:
        record = read_record(self.uploads)
        return [p for p in stored_uploads(self.uploads) if p.name not in record]

    def file_message(self, name: str, lang: str) -> tuple[bool, str]:
        """(ok, message) for the stored upload `name`."""
        with self._cv:
            r = self.results.get(name)
        if r is None:
            info = read_record(self.uploads).get(name)
            r = FileResult("indexed", int(info.get("articles", 0)), int(info.get("bad_lines", 0))) if info else \
                FileResult("queued")
        return r.state != "rejected", r.message(lang)

    def index_state(self) -> tuple[str, dict | None]:
        """("ok", stats), ("missing", None), ("damaged", None) when a rebuild would mend it, or ("unavailable",
        None) for any other failure to open it (an embedder that cannot be loaded...); the details go to the log."""
        if not self.index_exists():
            return "missing", None
        try:
            return "ok", searcher(self.index_dir).refresh().stats()
        except Exception as e:  # noqa: BLE001 - shown as one fixed sentence, without its text
            detail = f"{e.__class__.__name__}: {e}"
            if detail != self._logged:
                self._logged = detail
                log.error("the index at %s cannot be opened: %s", self.index_dir, detail)
            return ("damaged" if isinstance(e, (CorruptIndexError, IndexMismatchError)) else "unavailable"), None

    def status(self, lang: str = "zh") -> str:
        with self._cv:
            running, done, total, last, problem = self.running, self.done, self.total, self.last, self.problem
        parts = []
        if running:
            key = {"seed": "status_building_seeds", "index": "status_busy", "remove": "status_removing",
                   "remove_article": "status_removing_article"}[running]
            parts.append(t(lang, key, done=done, total=total))
        state, stats = self.index_state()
        if stats:
            last_at = (stats.get("last_indexed") or "").replace("T", " ").rstrip("Z") or t(lang, "status_never")
            parts.append(t(lang, "status_index", articles=stats["articles"], chunks=stats["chunks"],
                           embedder=stats["embedder"], last=last_at))
        elif state in ("damaged", "unavailable"):
            parts.append(t(lang, f"status_{state}"))
        elif not running:
            parts.append(t(lang, "status_missing"))
        if last is not None and not running:
            parts.append(t(lang, "status_last", added=last["added"], updated=last["updated"],
                           skipped=last["skipped"], failed=last["failed"]))
        if problem:
            parts.append(t(lang, problem[0], **problem[1]))
        return " · ".join(parts)

    # ---------------------------------------------------------------- the indexer thread

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not (self._closed or self._seed or self._index or self._removals or self._article_removals):
                    self._cv.wait()
                if self._closed:
                    return
            self.run_pending()

    def run_pending(self) -> None:
        """Run what is asked for, in order: the seed build, waiting uploads, removals (the indexer thread's loop).
        `running` is set in the same step that takes a request, so that the UI never sees a gap between them."""
        try:
            if self._take("_seed", "seed"):
                self._run_seed()
            if self._take("_index", "index"):
                files = self.waiting_files()
                if files:
                    self._run_uploads(files)
            while True:
                with self._cv:
                    if not self._removals or self._closed:
                        break
                    name, self.running = self._removals[0], "remove"
                try:
                    self._run_removal(name)
                finally:
                    with self._cv:
                        self._removals.popleft()
            while True:
                with self._cv:
                    if not self._article_removals or self._closed:
                        break
                    aid, self.running = self._article_removals[0], "remove_article"
                try:
                    self._run_article_removal(aid)
                finally:
                    with self._cv:
                        self._article_removals.popleft()
        finally:
            with self._cv:
                self.running = ""

    def _take(self, flag: str, what: str) -> bool:
        with self._cv:
            wanted = getattr(self, flag)
            if wanted:
                setattr(self, flag, False)
                self.running, self.done, self.total = what, 0, 0
            return wanted

    def _start(self, what: str, total: int) -> None:
        with self._cv:
            self.running, self.done, self.total = what, 0, total

    def _run_seed(self) -> None:
        paths = [str(self.seed_dir)] if self.seed_dir and self.seed_dir.is_dir() else []
        try:
            res = self._worker("index", paths, timeout=None)
            if res.ok:
                self._finished(res.data)
                log.info("built the index from %s: %s", paths or "nothing", res.data.get("summary"))
            else:
                log.error("building the index from %s failed (%s); see the worker's output above", paths, res.kind)
        finally:
            self.ready.set()

    def _run_uploads(self, files: list[Path]) -> None:
        self._start("index", len(files))
        self._set(files, "indexing")
        res = self._worker("index", [os.path.abspath(p) for p in files],
                           timeout=JOB_SECONDS + PER_FILE_SECONDS * len(files))
        if res.ok:
            self._apply(files, res.data)
        elif res.kind == "index":
            self._set(files, "waiting")
            with self._cv:
                self.problem = ("status_waiting", {})
        elif len(files) > 1:  # one file sank the batch: find it by indexing them one by one
            log.warning("indexing %d uploads failed (%s); indexing them one by one", len(files), res.kind)
            for f in files:
                self._run_uploads([f])
        else:
            log.error("upload %s could not be indexed (%s): %s", files[0].name, res.kind, res.data.get("error", ""))
            self._reject(files[0], "", "up_failed")

    def _apply(self, files: list[Path], data: dict) -> None:
        by_path = {os.path.abspath(r.get("path", "")): r for r in data.get("files", []) if isinstance(r, dict)}
        record = read_record(self.uploads)
        indexed = []
        for f in files:
            r = by_path.get(os.path.abspath(f))
            if r is None or r.get("error") or not r.get("articles"):
                self._reject(f, _reason(r.get("error") if r else "", self.uploads), "up_no_articles")
                continue
            record[f.name] = {"articles": int(r["articles"]), "bad_lines": int(r.get("bad_lines", 0))}
            indexed.append((f.name, FileResult("indexed", record[f.name]["articles"], record[f.name]["bad_lines"],
                                               [[n, _reason(m, self.uploads)] for n, m in r.get("lines", [])])))
        write_record(self.uploads, record)  # first: a file shown as indexed is also one a user can remove
        for name, result in indexed:
            self._result(name, result)
        self._finished(data)
        log.info("indexed %d of %d uploads: %s", len(indexed), len(files), data.get("summary"))

    def _reject(self, f: Path, reason: str, reason_key: str) -> None:
        try:
            f.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            log.error("could not delete the rejected upload %s: %s", f, e)
        self._result(f.name, FileResult("rejected", reason=reason, reason_key=reason_key))

    def _run_removal(self, name: str) -> None:
        path = self.uploads / name
        res = self._worker("remove", [os.path.abspath(path)], timeout=JOB_SECONDS)
        if not res.ok:
            log.error("removing upload %s failed (%s): %s", name, res.kind, res.data.get("error", ""))
            with self._cv:
                self.problem = ("status_remove_failed", {"name": name})
                self.results.pop(name, None)  # shown as the record has it: still indexed
            return
        record = read_record(self.uploads)
        record.pop(name, None)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        write_record(self.uploads, record)
        self._result(name, FileResult("removed"))
        with self._cv:
            self.problem = None
        log.info("removed upload %s: %s articles", name, res.data.get("removed"))

    def _run_article_removal(self, article_id: str) -> None:
        """Remove one article by id in a worker (rag.index.remove_articles matches ids before paths)."""
        res = self._worker("remove", [article_id], timeout=JOB_SECONDS)
        if not res.ok:
            log.error("removing article %s failed (%s): %s", article_id, res.kind, res.data.get("error", ""))
            self._article_result(article_id, "failed")
            return
        self._article_result(article_id, "removed")
        log.info("removed article %s: %s removed", article_id, res.data.get("removed"))

    def _finished(self, data: dict) -> None:
        with self._cv:
            self.last = data.get("summary")
            self.problem = None

    def _set(self, files: list[Path], state: str) -> None:
        for f in files:
            self._result(f.name, FileResult(state))

    def _result(self, name: str, r: FileResult) -> None:
        with self._cv:
            self.results.pop(name, None)
            self.results[name] = r
            while len(self.results) > RESULTS_KEPT:
                self.results.popitem(last=False)

    def _worker(self, action: str, paths: list[str], timeout: float | None) -> WorkerResult:
        """Run one worker process to its end (killed after `timeout` s); its stderr goes to the server's log."""
        cmd = [*self.command, action, str(self.index_dir), str(MAX_UPLOAD_BYTES), *paths]
        with self._cv:
            if self._closed:
                return WorkerResult(False, "index", {"error": "the server is stopping"})
            proc = self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                                                 encoding="utf-8", errors="replace")
        timer = threading.Timer(timeout, proc.kill) if timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        result = None
        try:
            for line in proc.stdout:
                if line.startswith(PROGRESS):
                    done, _, total = line[len(PROGRESS):].partition(" ")
                    with self._cv:
                        self.done, self.total = int(done), int(total)
                elif line.startswith(RESULT):
                    result = json.loads(line[len(RESULT):])
            proc.wait()
        finally:
            if timer:
                timer.cancel()
            with self._cv:
                self._proc = None
        if proc.returncode == 0 and isinstance(result, dict) and result.get("ok"):
            return WorkerResult(True, data=result)
        if isinstance(result, dict):
            return WorkerResult(False, str(result.get("kind") or "crash"), result)
        killed = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        return WorkerResult(False, "crash", {"error": f"the worker ended without a result ({killed})"})


def _reason(text: str | None, uploads: Path) -> str:
    """A file's error for the upload panel: without the server's folder names."""
    text = str(text or "")
    for folder in {str(uploads.resolve()), os.path.abspath(uploads)}:
        text = text.replace(folder + os.sep, "").replace(folder, "")
    return text[:300]
