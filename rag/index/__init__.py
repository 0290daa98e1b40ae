"""The index: generations listing immutable segments (SQLite rows, FAISS vectors, BM25 postings, sentence vectors),
read through `Index`, written by one `Writer` at a time, built from files by `index_paths` / `index_stream`."""
from .build import (
    CHECKPOINT,
    DEFAULT_INDEX,
    DEFAULT_SECOND,
    IndexSummary,
    compact_index,
    default_index_dir,
    index_articles,
    index_paths,
    index_stream,
    remove_articles,
)
from .files import CURRENT, SCHEMA_VERSION, WriteLock, printable, text_hash
from .generation import Index, Manifest
from .repair import repair_index
from .writer import Writer

__all__ = ["CHECKPOINT", "CURRENT", "DEFAULT_INDEX", "DEFAULT_SECOND", "Index", "IndexSummary", "Manifest", "SCHEMA_VERSION",
           "WriteLock", "Writer", "compact_index", "default_index_dir", "index_articles", "index_paths", "index_stream",
           "printable", "remove_articles", "repair_index", "text_hash"]
