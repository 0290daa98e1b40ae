"""`rag repair`: point CURRENT at the newest generation that opens, when it is lost or names a damaged one."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import RagError
from .files import (
    CURRENT,
    FIRST,
    WriteLock,
    atomic_write_text,
    check_folder,
    disk_full_is_an_error,
    generations,
    printable,
    read_pointer,
)
from .generation import Manifest, check_generation


def repair_index(index_dir: str | os.PathLike, wait: float = 0.0) -> str:
    """Point CURRENT (atomically, under the write lock) at the newest generation that opens and passes the load
    checks, when CURRENT is missing or names one that does not. Returns what it found and did, one line each;
    nothing else is changed or removed."""
    root = Path(index_dir)
    if not root.exists():
        raise RagError(f"{printable(str(root))}: no such folder: nothing to repair")
    check_folder(root)
    with disk_full_is_an_error(root), WriteLock(root, timeout=wait):
        cur = root / CURRENT
        current, gens, lines = read_pointer(cur), generations(root), []
        if current is not None and current in gens:
            why = check_generation(root, current)
            if why is None:
                (root / FIRST).unlink(missing_ok=True)
                return f"{root}: {CURRENT} names {current}, which opens and passes the checks: nothing to repair"
            lines.append(f"{CURRENT} names {current}, which does not open: {why}")
        elif not os.path.lexists(cur):
            lines.append(f"{CURRENT} is missing")
        else:
            lines.append(f"{CURRENT} is a directory" if cur.is_dir() else
                         f"{CURRENT} names a missing generation ({current})" if current else f"{CURRENT} names no generation")
        chosen = None
        for g in reversed(gens):
            if g != current:
                why = check_generation(root, g)
                if why is None:
                    chosen = g
                    break
                lines.append(f"{g} does not open: {why}")
        if chosen is None:
            raise RagError(f"{root}: no generation here opens ({'; '.join(lines) or 'none found'}); nothing was "
                           f"changed. Rebuild the index with `rag index --rebuild PATH... --index {root}`.")
        if cur.is_dir() and not cur.is_symlink():
            try:
                cur.rmdir()
            except OSError:
                raise RagError(f"{cur} is a folder that is not empty: move it away, then run `rag repair` "
                               "again; nothing was changed") from None
        atomic_write_text(cur, chosen + "\n")
        (root / FIRST).unlink(missing_ok=True)
        m = Manifest.read(root / chosen / "manifest.json")
        lines.append(f"{CURRENT} now names {chosen} ({m.articles} articles, {m.chunks} chunks, written {m.created})")
        return "\n".join(f"{root}: {printable(line)}" for line in lines)
