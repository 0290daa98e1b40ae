"""Offline question answering over news articles, with answers quoted and cited from the articles."""
from .pipeline import ask, retrieve
from .types import Answer, Article, Chunk, Citation, Embedder, Passage, Store

__all__ = ["ask", "retrieve", "Answer", "Article", "Chunk", "Citation", "Embedder", "Passage", "Store"]
__version__ = "0.1.0"
