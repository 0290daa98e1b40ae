"""Evaluation and benchmark scripts of rag-news, run from the project root as `python -m eval.NAME`."""
