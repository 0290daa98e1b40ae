"""Stores behind one interface (rag.types.Store / StoreWriter): the local segmented index (a folder) or Milvus
(`milvus:PATH.db` for a milvus-lite file, `http(s)://host:port` for a server; `#PREFIX` names its collections)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import RagError
from ..index import CURRENT, Index, default_index_dir, printable

DEFAULT_PREFIX = "rag_"
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")


@dataclass(frozen=True)
class StoreSpec:
    """Where a store lives: kind "local" (target: a folder) or "milvus" (target: a URI pymilvus opens), and for
    Milvus the prefix of its collection names."""

    kind: str
    target: str
    prefix: str = DEFAULT_PREFIX
    text: str = ""  # as given

    @property
    def milvus(self) -> bool:
        return self.kind == "milvus"

    def __str__(self) -> str:
        return self.text or self.target


def parse_spec(spec: str | os.PathLike | StoreSpec) -> StoreSpec:
    """A store spec: a folder path (local), `milvus:PATH` (milvus-lite; PATH must end in .db) or
    `http(s)://host:port` (a Milvus server), the last two optionally followed by `#PREFIX`."""
    if isinstance(spec, StoreSpec):
        return spec
    if not isinstance(spec, str):
        return StoreSpec("local", os.fspath(spec), text=os.fspath(spec))
    text = spec
    if spec.startswith(("milvus:", "http://", "https://")):
        uri, _, prefix = spec.partition("#")
        prefix = prefix or DEFAULT_PREFIX
        if not _PREFIX.fullmatch(prefix):
            raise RagError(f"{printable(spec)}: the collection prefix after # must be letters, digits and _ "
                           f"(up to 41), starting with a letter or _")
        if uri.startswith("milvus:"):
            path = uri[len("milvus:"):]
            if not path.endswith(".db"):
                raise RagError(f"{printable(spec)}: a milvus-lite store is a path ending in .db, e.g. milvus:./news.db")
            uri = os.path.abspath(path)
        return StoreSpec("milvus", uri.rstrip("/"), prefix, text)
    return StoreSpec("local", spec, text=text)


def default_store() -> str:
    """$RAG_STORE, else $RAG_INDEX, else ./.rag-index."""
    return os.environ.get("RAG_STORE") or default_index_dir()


def store_key(spec) -> str:
    """The same text for two specs naming the same store (a cache key)."""
    s = parse_spec(spec)
    return f"milvus:{s.target}#{s.prefix}" if s.milvus else os.path.abspath(s.target)


def open_store(spec, embedder_name: str | None = None, eager: bool = True):
    """A consistent snapshot of the store's published version (rag.types.Store). `eager=False`: a local index
    loads its FAISS indexes and postings on first use (records only: a Milvus store reads everything on demand)."""
    s = parse_spec(spec)
    if not s.milvus:
        return Index.open(s.target, embedder_name=embedder_name, eager=eager)
    from .milvus import MilvusIndex

    return MilvusIndex.open(s, embedder_name)


def store_stamp(spec) -> str | None:
    """What names the published version (a reader reopens when it changes), or None when there is none."""
    s = parse_spec(spec)
    if not s.milvus:
        try:
            return (Path(s.target) / CURRENT).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, UnicodeDecodeError, IsADirectoryError, NotADirectoryError):
            return None
    from .milvus_base import published_version

    v = published_version(s.target, s.prefix)
    return None if v is None else str(v)


def open_writer(spec, embedder_name: str | None, dim: int | None, *, wait: float = 0.0, **kw):
    """The Milvus store's writer (rag.types.StoreWriter); a local folder is written by rag.index (WriteLock +
    Writer, through index_paths and friends)."""
    s = parse_spec(spec)
    if not s.milvus:
        raise RagError(f"{printable(str(s))}: a local index is written with rag.index.index_paths")
    from .milvus_writer import MilvusWriter

    return MilvusWriter(s, embedder_name, dim, wait=wait, **kw)


__all__ = ["DEFAULT_PREFIX", "StoreSpec", "default_store", "open_store", "open_writer", "parse_spec", "store_key",
           "store_stamp"]
