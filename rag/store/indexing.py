"""Indexing into a Milvus store: files or in-memory articles through the indexer's batches (rag.index.build.Batch)
into a MilvusWriter; removing articles; copying a local index's records (vectors included) into a Milvus store."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import RagError
from ..index import CHECKPOINT, Index, IndexSummary, build
from ..index.build import Progress
from ..ingest import CHUNK_OVERLAP, CHUNK_SIZE
from ..types import Article, Chunk, Embedder
from . import open_writer, parse_spec


def index_paths_into(paths: Sequence[str | os.PathLike], spec, embedder: str | Embedder = "use", *,
                     max_bytes: int = 5_000_000, **kw) -> IndexSummary:
    """rag.index.index_paths for a Milvus store `spec`."""
    return index_stream_into(build.path_stream(paths, max_bytes, kw), spec, embedder, **kw)


def index_articles_into(articles: Iterable[Article], spec, embedder: str | Embedder = "use",
                        source_name: str = "memory:articles", **kw) -> IndexSummary:
    """In-memory articles into a Milvus store; `source_name` stands in for the file path."""
    return index_stream_into([(source_name, list(articles), [])], spec, embedder, **kw)


def index_stream_into(stream, spec, embedder: str | Embedder = "use", *, prune: bool = False, rebuild: bool = False,
                      progress: bool = True, chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP,
                      tokenizer: str = "bigram", wait: float = 0.0, second: str | Embedder | None = "default",
                      checkpoint: int = CHECKPOINT, files: int | None = None, lexical: str | None = None,
                      fanout=None) -> IndexSummary:
    """rag.index.index_stream for a Milvus store: each `checkpoint` chunks a version is published. `lexical`: how
    a new store scores BM25 (rag.store.milvus_writer.DEFAULT_LEXICAL)."""
    t0 = time.perf_counter()
    if fanout is not None:
        raise RagError(f"{spec}: embedding in Ray workers (--ray) writes into an index folder for now; index into "
                       "the Milvus store without --ray")
    emb, second, counts = build.start_run(embedder, second, checkpoint)
    errors: list[str] = []
    notes: list[str] = []
    w = open_writer(spec, emb.name, emb.dim, tokenizer=tokenizer, chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                    rebuild=rebuild, second_embedder=second.name if second else "",
                    second_dim=second.dim if second else 0, lexical=lexical, wait=wait)
    gen = build.run_writer(w, stream, emb, second, counts, errors, notes, checkpoint=checkpoint, prune=prune,
                           bar=Progress(progress, files, counts))
    articles, chunks, segments = w.final
    return IndexSummary(**counts, seconds=time.perf_counter() - t0, total_articles=articles, total_chunks=chunks,
                        segments=segments, generation=gen, errors=tuple(errors), notes=tuple(notes))


def remove_from_store(spec, ids_or_paths: Iterable[str] | str, wait: float = 0.0) -> tuple[list[str], list[str]]:
    """rag.index.remove_articles for a Milvus store: (the ids removed, the items that matched nothing)."""
    return build.remove_with(open_writer(spec, None, None, wait=wait), ids_or_paths)


def copy_index(index_dir: str | os.PathLike, spec, *, lexical: str | None = None, progress: bool = False) -> str:
    """Copy a local index's live records into a new Milvus store `spec` (replacing what it held): articles, chunks,
    sentences, sources and lexicon words with their stored vectors, nothing embedded again. One line saying so."""
    t0 = time.perf_counter()
    src = Index.open(index_dir, eager=False)
    m = src.manifest
    w = open_writer(parse_spec(spec), m.embedder, m.dim, tokenizer=m.tokenizer, chunk_size=m.chunk_size,
                    chunk_overlap=m.chunk_overlap, rebuild=True, second_embedder=m.second_embedder,
                    second_dim=m.second_dim, lexical=lexical)
    try:
        w.splitter = m.splitter  # lexical tokens are made again, at this version's (nothing embedded)
        n = 0
        for v in src.views:
            seg, dead = v.seg, v.dead_articles
            words = seg.words or []
            if words:
                w.put_lexicon(words, np.load(Path(seg.path) / "lexicon.npy", allow_pickle=False))
            for (aid,) in seg.sql("SELECT id FROM articles ORDER BY id"):
                if aid in dead:
                    continue
                _copy_article(w, src, v, aid)
                n += 1
                if progress and n % 200 == 0:
                    print(f"copied {n} articles", flush=True)
            for path, aid in seg.sql("SELECT path, article_id FROM sources"):
                if (path, aid) not in v.dead_sources and aid not in dead:
                    w.add_source(path, aid)
        gen = w.commit()
    except BaseException:
        w.abort()
        raise
    finally:
        src.close()
    return (f"{spec}: {m.articles} articles / {m.chunks} chunks copied from {index_dir} in "
            f"{time.perf_counter() - t0:.1f} s ({gen})")


def _copy_article(w, src: Index, v, aid: str) -> None:
    seg = v.seg
    title, text, url, published, source, headings, captions, flag = seg.sql(
        f"SELECT title, text, url, published, source, headings, captions, {seg.date_from_text()} FROM articles "
        "WHERE id=?", (aid,))[0]
    article = Article(title, text, url, published, source, "", tuple((int(o), h) for o, h in json.loads(headings)),
                      tuple(json.loads(captions)), bool(flag))
    rows = seg.sql("SELECT id, ordinal, start, end_, heading, text FROM chunks WHERE article_id=? ORDER BY ordinal",
                   (aid,))
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    _, pos = seg.positions(ids)
    chunks = [Chunk(aid, r[1], r[5], r[2], r[3], r[4]) for r in rows]
    vecs = np.asarray(seg.vectors[pos], dtype=np.float32) if len(pos) else np.zeros((0, w.dim), np.float32)
    second = (np.asarray(seg.second_vectors[pos], dtype=np.float32) if w.second_dim and len(pos) else
              (np.zeros((0, w.second_dim), np.float32) if w.second_dim else None))
    srows = seg.sql("SELECT id, start, end_ FROM sentences WHERE article_id=? ORDER BY start", (aid,))
    sids = np.array([r[0] for r in srows], dtype=np.int64)
    _, spos = seg.positions(sids, sentences=True)
    svecs = np.asarray(seg.sent_vectors[spos], dtype=np.float32) if len(spos) else None
    w.put_article(article, chunks, vecs, None, [(r[1], r[2]) for r in srows], svecs, second)
