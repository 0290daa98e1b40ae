"""The UI's indexing worker process: index or remove files, print progress and one JSON result (run by rag.ui.jobs)."""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from ..errors import ArticleError, ArticleWarning, CorruptIndexError, IndexLockedError, IndexMismatchError, NoSpaceError
from ..index import CURRENT, Index, index_stream, remove_articles
from ..ingest import SUPPORTED_SUFFIXES, iter_articles
from ..models import indexing_embedder

NICE = 10
WAIT = 60.0  # seconds to wait for another writer (an operator's `rag index`)
LINES_SHOWN = 20  # line errors reported per file; the count covers them all
RESULT = "result "
PROGRESS = "progress "
# The niceness is set before anything is imported: on Linux it is a per-thread value that only threads started
# afterwards (numpy's and the embedders' pools) inherit.
BOOT = f"import os, sys; os.nice({NICE}); from rag.ui.worker import main; sys.exit(main(sys.argv[1:]))"
# Failures that are the index's or the machine's, not a file's: the files stay queued for the next job.
INDEX_FAILURES = (CorruptIndexError, IndexMismatchError, IndexLockedError, NoSpaceError, OSError)


def command() -> list[str]:
    """The argv prefix that starts a worker at lower priority; append `index|remove INDEX_DIR MAX_BYTES FILE...`."""
    return [sys.executable, "-c", BOOT]


def _count(paths: list[str]) -> int:
    n = 0
    for p in paths:
        if os.path.isdir(p):
            for _, dirs, files in os.walk(p):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                n += sum(1 for f in files
                         if not f.startswith(".") and os.path.splitext(f)[1].lower() in SUPPORTED_SUFFIXES)
        else:
            n += 1
    return n


def _emit(prefix: str, payload) -> None:
    text = json.dumps(payload, ensure_ascii=True) if not isinstance(payload, str) else payload
    try:
        sys.stdout.write(prefix + text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the server is gone; what was written to the index stays
        sys.exit(2)


def index(root: Path, max_bytes: int, paths: list[str]) -> dict:
    """Index `paths` into `root` with the index's own embedders; one record per file read."""
    embedder, second = "use", "default"
    if (root / CURRENT).exists():
        idx = Index.open(root)
        embedder, second = idx.manifest.embedder, idx.manifest.second_embedder or None
        idx.close()
    files: list[dict] = []
    total = _count(paths)

    def stream():
        for n, (path, result, line_errors) in enumerate(iter_articles(paths, max_bytes=max_bytes), 1):
            failed = isinstance(result, ArticleError)
            bad = [e for e in line_errors if not isinstance(e, ArticleWarning)]  # a warning drops no article
            files.append({"path": path, "articles": 0 if failed else len(result),
                          "error": result.reason if failed else "", "bad_lines": len(bad),
                          "lines": [[e.line, e.reason] for e in bad[:LINES_SHOWN]]})
            yield path, result, line_errors
            _emit(PROGRESS, f"{n} {max(n, total)}")

    s = index_stream(stream(), root, indexing_embedder(embedder), progress=False, wait=WAIT, second=second)
    return {"ok": True, "files": files, "summary": {"added": s.added, "updated": s.updated, "skipped": s.skipped,
                                                    "failed": s.failed, "removed": s.removed,
                                                    "articles": s.total_articles, "chunks": s.total_chunks}}


def remove(root: Path, paths: list[str]) -> dict:
    """Remove the articles of the files stored at `paths` from the index (rag.index.remove_articles)."""
    removed, unknown = remove_articles(root, paths, wait=WAIT)
    return {"ok": True, "removed": len(removed), "unknown": [str(u) for u in unknown]}


def main(argv: list[str]) -> int:
    """`index INDEX_DIR MAX_BYTES PATH...` or `remove INDEX_DIR MAX_BYTES PATH...`: prints `progress N TOTAL`
    lines, then `result {json}`; exit 0, or 2 with {"ok": false, "kind": "index"|"crash"} (details on stderr)."""
    if len(argv) < 3 or argv[0] not in ("index", "remove"):
        print("usage: python -m rag.ui.worker index|remove INDEX_DIR MAX_BYTES PATH...", file=sys.stderr)
        return 2
    action, root, max_bytes, paths = argv[0], Path(argv[1]), int(argv[2]), argv[3:]
    try:
        result = index(root, max_bytes, paths) if action == "index" else remove(root, paths)
    except Exception as e:  # noqa: BLE001 - reported to the server, whose log gets the traceback from stderr
        traceback.print_exc(file=sys.stderr)
        _emit(RESULT, {"ok": False, "kind": "index" if isinstance(e, INDEX_FAILURES) else "crash",
                       "error": f"{e.__class__.__name__}: {e}"[:2000]})
        return 2
    _emit(RESULT, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
