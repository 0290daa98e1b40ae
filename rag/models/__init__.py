"""Models: embedders (USE, e5, sentence-transformers), the reader, the re-reader and the sentence ranker, loaded and
shared in one place (rag.models.registry)."""
from . import registry
from .e5 import E5NotAvailableError
from .ranker import FEATURES, RANKER_PATH, REREAD_FEATURES, Ranker
from .reader import pair_scores, read
from .registry import (
    DEFAULT_EMBEDDER,
    DEFAULT_READER,
    E5_SPECS,
    READER_SPECS,
    USE_SPECS,
    get_embedder,
    get_ranker,
    get_reader,
    get_rereader,
    indexing_embedder,
    shared_embedder,
)
from .rereader import Rereader, RereaderNotAvailableError

__all__ = ["DEFAULT_EMBEDDER", "DEFAULT_READER", "E5NotAvailableError", "E5_SPECS", "FEATURES", "RANKER_PATH",
           "READER_SPECS", "REREAD_FEATURES", "Ranker", "Rereader", "RereaderNotAvailableError", "USE_SPECS",
           "get_embedder", "get_ranker", "get_reader", "get_rereader", "indexing_embedder", "pair_scores", "read",
           "registry", "shared_embedder"]
