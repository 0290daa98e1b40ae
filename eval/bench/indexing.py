"""Index build speed: the full pipeline vs embedding the same texts alone, and re-indexing an unchanged corpus."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

from eval.bench.common import CORPUS, ROOT, lexicon_size, log, med, now


def corpus_paths(out: Path, n_articles: int | None) -> list[str]:
    """The dev corpus, or its first `n_articles` articles spread over the corpus files (plus seeds/)."""
    if n_articles is None:
        return CORPUS
    files = [p for p in CORPUS if p.endswith(".jsonl")]
    sub = out / "subset"
    shutil.rmtree(sub, ignore_errors=True)
    sub.mkdir(parents=True)
    per = max(1, n_articles // len(files))
    for f in files:
        lines = Path(f).read_text(encoding="utf-8").splitlines()[:per]
        (sub / Path(f).name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [str(sub), str(ROOT / "seeds")]


def corpus_texts(paths: list[str], with_words: bool = False) -> SimpleNamespace:
    """What the indexer embeds (same parser, chunker, sentence splitter and lexicon words): unique chunk texts
    (`texts`), unique sentence texts of every article (`stexts`), and with `with_words` the cross-lingual lexicon
    words (`words`: `corpus_words(title + "\n" + text)` over all articles, as `index_stream` collects them); the
    seconds spent on chunks + sentences (`parse_s`) and on words (`words_s`, jieba), and the number of chunks."""
    from rag.ingest import Chunker, iter_articles, split_sentences
    from rag.lang import corpus_words

    t0 = now()
    chunker = Chunker()  # the indexer's defaults
    texts, stexts, n_chunks = {}, {}, 0
    words: set[str] = set()
    words_s = 0.0
    ids = set()
    for _, arts, _ in iter_articles(paths):
        if isinstance(arts, Exception):
            continue
        for a in arts:
            if a.id in ids:
                continue
            ids.add(a.id)
            for c in chunker.run(a):
                n_chunks += 1
                texts.setdefault(c.text, None)
            for s, e in split_sentences(a.text):
                stexts.setdefault(a.text[s:e], None)
            if with_words:
                t = now()
                words |= corpus_words(a.title + "\n" + a.text)
                words_s += now() - t
    return SimpleNamespace(texts=list(texts), stexts=list(stexts), words=sorted(words), n_chunks=n_chunks,
                           parse_s=now() - t0 - words_s, words_s=words_s)


def bench_build(cfg: dict, out: Path, threads: int) -> dict:
    from rag.index import index_paths
    from rag.models.use import USEEmbedder

    paths = corpus_paths(out, cfg["build_articles"])
    emb = USEEmbedder(threads=threads)
    emb.embed_documents(["预热", "warm up"])  # model load is not part of either timing
    ct = corpus_texts(paths, with_words=True)
    texts, stexts, words, n_chunks = ct.texts, ct.stexts, ct.words, ct.n_chunks
    embed_s, pipe, summaries = [], [], []
    dev = out / "dev-index"
    for r in range(cfg["build_reps"]):
        t0 = now()
        # the pipeline embeds chunks and sentences in the same calls, then each flush's new lexicon words
        emb.embed_documents(texts + stexts)
        emb.embed_documents(words)
        embed_s.append(now() - t0)
        target = out / f"build-{r}"
        shutil.rmtree(target, ignore_errors=True)
        s = index_paths(paths, target, emb, rebuild=True, progress=False)
        pipe.append(s.seconds)
        summaries.append(s)
        log(f"  build rep {r}: embed-only {n_chunks / embed_s[-1]:.1f} passages/s ({len(texts)} chunk + {len(stexts)} "
            f"sentence texts + {len(words)} words, {embed_s[-1]:.1f} s), pipeline {s.passages_per_second:.1f} "
            f"passages/s ({s.chunks} chunks, {s.embedded} + {s.sentences_embedded} + {s.words_embedded} embedded, "
            f"{s.seconds:.1f} s)")
    shutil.rmtree(dev, ignore_errors=True)
    os.rename(out / f"build-{cfg['build_reps'] - 1}", dev)
    for r in range(cfg["build_reps"] - 1):
        shutil.rmtree(out / f"build-{r}", ignore_errors=True)
    re_s = []
    for _ in range(cfg["reindex_reps"]):
        s2 = index_paths(paths, dev, emb, progress=False)
        re_s.append(s2.seconds)
    s = summaries[-1]
    ratios = [e / p for e, p in zip(embed_s, pipe)]  # same texts embedded: = pipeline pps / embedder-only pps
    return {
        "paths": [os.path.relpath(p, ROOT) for p in paths], "articles": s.total_articles, "chunks": s.chunks,
        "unique_texts": len(texts), "unique_sentence_texts": len(stexts), "lexicon_words": len(words),
        "embedded": s.embedded, "sentences_embedded": s.sentences_embedded, "words_embedded": s.words_embedded,
        "lexicon_words_stored": lexicon_size(dev), "threads": threads,
        "embed_only_s": [round(x, 2) for x in embed_s], "pipeline_s": [round(x, 2) for x in pipe],
        "embed_only_pps": round(s.chunks / med(embed_s), 1),
        "embed_only_texts_per_s": round((len(texts) + len(stexts) + len(words)) / med(embed_s), 1),
        "pipeline_pps": round(s.chunks / med(pipe), 1),
        "pipeline_over_embedder": round(med(ratios), 3), "ratio_per_rep": [round(x, 3) for x in ratios],
        "parse_chunk_split_s": round(ct.parse_s, 2), "words_jieba_s": round(ct.words_s, 2),
        "non_embedding_s": round(med(pipe) - med(embed_s), 2),
        "reindex_s": [round(x, 3) for x in re_s], "reindex_unchanged_skipped": s2.skipped,
        "reindex_speedup": round(med(pipe) / med(re_s), 1),
    }


def usable_index(root: Path) -> bool:
    """Whether `root` holds an index this version opens (an old schema or a damaged bench index is rebuilt)."""
    from rag.errors import RagError
    from rag.index import Index

    if not (root / "CURRENT").exists():
        return False
    try:
        Index.open(root).close()
        return True
    except RagError as e:
        log(f"  {os.path.relpath(root, ROOT)} cannot be used ({e}); rebuilding it")
        return False
