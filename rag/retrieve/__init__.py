"""Retrieval: BM25, USE and e5 candidates fused by `Fusion`'s weights, through a per-index `Searcher`."""
from .searcher import DEFAULT_FUSION, Fusion, Searcher, searcher

__all__ = ["DEFAULT_FUSION", "Fusion", "Searcher", "searcher"]
