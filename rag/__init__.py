"""Offline question answering over news articles, with answers quoted and cited from the articles."""
from .answer import AnswerConfig
from .errors import RagError
from .index import index_paths
from .pipeline import ask, retrieve
from .retrieve import Fusion
from .types import Answer, Article, Chunk, Citation, Embedder, Passage, Store

__all__ = ["Answer", "AnswerConfig", "Article", "Chunk", "Citation", "Embedder", "Fusion", "Passage", "RagError",
           "Store", "ask", "index_paths", "retrieve"]
__version__ = "0.1.0"
