"""The index: immutable generations of SQLite metadata, FAISS vectors, BM25 impacts and sentence vectors, read
through `Index`, written by one `Writer` at a time, built from files by `index_paths` / `index_stream`."""
from .build import (
    DEFAULT_INDEX,
    DEFAULT_SECOND,
    IndexSummary,
    default_index_dir,
    index_articles,
    index_paths,
    index_stream,
    remove_articles,
)
from .files import CURRENT, SCHEMA_VERSION, printable, text_hash
from .generation import Index, Manifest
from .writer import WriteLock, Writer, repair_index

__all__ = ["CURRENT", "DEFAULT_INDEX", "DEFAULT_SECOND", "Index", "IndexSummary", "Manifest", "SCHEMA_VERSION",
           "WriteLock", "Writer", "default_index_dir", "index_articles", "index_paths", "index_stream",
           "printable", "remove_articles", "repair_index", "text_hash"]
