"""Ingest: article files (txt, md, html, jsonl; any common Chinese encoding) into Article records, chunks and
sentences."""
from .articles import DEFAULT_MAX_BYTES, SUPPORTED_SUFFIXES, count_files, iter_articles, load_file
from .chunks import CHUNK_OVERLAP, CHUNK_SIZE, Chunker
from .dates import parse_date
from .decode import decode_bytes
from .sentences import SPLITTER_VERSION, split_sentences

__all__ = ["CHUNK_OVERLAP", "CHUNK_SIZE", "Chunker", "DEFAULT_MAX_BYTES", "SPLITTER_VERSION", "SUPPORTED_SUFFIXES",
           "count_files", "decode_bytes", "iter_articles", "load_file", "parse_date", "split_sentences"]
