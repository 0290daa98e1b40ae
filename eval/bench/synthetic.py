"""Synthetic stores of 10k / 100k chunks: the real dev index plus articles of recombined real sentences, written
through the store's Writer API (see the package docstring for what is synthetic)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from eval.bench.common import DIM, EMBEDDER_NAME, NOISE, disk_bytes, lexicon_size, now, peak_rss_mb


def sentence_pool(index: Path) -> SimpleNamespace:
    """The stored sentences of an index's live articles (>= 4 characters) to recombine into synthetic articles, read
    through its segments (a v2 generation opens as one).

    sents: texts; hashes: their text hashes; srow: row of each in svecs; crow: row in vecs (and seconds) of the chunk
    holding its start; vecs / svecs: every segment's chunk and sentence vectors, in id order; seconds: the chunks'
    second-embedder vectors (None for an index without one); lens / titles: real article lengths and titles.
    """
    from rag.index import Index, text_hash

    idx = Index.open(index, eager=False)
    try:
        text, titles, chunks, rows = {}, [], {}, []
        parts: dict[str, list] = {k: [] for k in ("ids", "vecs", "seconds", "sids", "svecs")}
        for v in idx.views:
            seg, dead = v.seg, v.dead_articles
            for aid, title, t in seg.sql("SELECT id, title, text FROM articles"):
                if aid not in dead:
                    text[aid] = t
                    titles.append(title)
            for cid, aid, start, end in seg.sql("SELECT id, article_id, start, end_ FROM chunks ORDER BY article_id, "
                                                "start"):
                if aid not in dead:
                    chunks.setdefault(aid, []).append((start, end, cid))
            rows += [r for r in seg.sql("SELECT id, article_id, start, end_ FROM sentences") if r[1] not in dead]
            parts["ids"].append(seg.ids)
            parts["vecs"].append(seg.vectors[np.arange(len(seg.ids))])
            if seg.second_vectors is not None:
                parts["seconds"].append(seg.second_vectors[np.arange(len(seg.ids))])
            parts["sids"].append(seg.sent_ids)
            parts["svecs"].append(seg.sent_vectors[np.arange(len(seg.sent_ids))])
    finally:
        idx.close()
    rows.sort()
    order = np.argsort(np.concatenate(parts["ids"]), kind="stable")  # ids are unique across segments
    sorder = np.argsort(np.concatenate(parts["sids"]), kind="stable")
    vec_ids, sent_ids = np.concatenate(parts["ids"])[order], np.concatenate(parts["sids"])[sorder]
    sents, sids, cids = [], [], []
    for sid, aid, start, end in rows:
        cid = next((c for a, b, c in chunks.get(aid, ()) if a <= start < b), None)
        if end - start >= 4 and cid is not None:
            sents.append(text[aid][start:end])
            sids.append(sid)
            cids.append(cid)
    return SimpleNamespace(sents=sents, hashes=[text_hash(x) for x in sents],
                           srow=np.searchsorted(sent_ids, sids).astype(np.int64),
                           crow=np.searchsorted(vec_ids, cids).astype(np.int64),
                           vecs=np.concatenate(parts["vecs"])[order],
                           seconds=np.concatenate(parts["seconds"])[order] if parts["seconds"] else None,
                           svecs=np.concatenate(parts["svecs"])[sorder], lens=[len(t) for t in text.values()],
                           titles=titles)


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def noisy(x: np.ndarray, rng) -> np.ndarray:
    """float32 copy of `x` + N(0, NOISE²) per dimension, re-normalised (how every synthetic vector is made)."""
    x = np.array(x, dtype=np.float32)
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    noise *= NOISE
    x += noise
    return unit(x)


def _synthetic_article(pool, rng, i: int):
    """An article of real sentences drawn at random up to a real article's length: (Article, spans with pool index)."""
    from rag.types import Article

    target_len = int(pool.lens[rng.integers(len(pool.lens))])
    parts, spans, pos, k = [], [], 0, 0
    while pos < target_len:
        j = int(rng.integers(len(pool.sents)))
        if k and k % int(rng.integers(2, 6)) == 0:
            parts.append("\n\n")
            pos += 2
        parts.append(pool.sents[j])
        spans.append((pos, pos + len(pool.sents[j]), j))
        pos += len(pool.sents[j])
        k += 1
    title = pool.titles[rng.integers(len(pool.titles))][:30] + f"（合成 {i}）"
    return Article(title=title, text="".join(parts), url=f"synthetic://bench/{i}", source="synthetic"), spans


def worker_build_synth(spec: dict) -> dict:
    """Real dev index + synthetic articles up to spec['n'] chunks, through Writer.put_article / commit.

    The Writer opens the copied dev index as its base generation (upgrading one of the format before segments), so
    the dev lexicon stays in its segment(s). Synthetic text is made of real sentences, so no new words need
    embedding, except pieces of the cut synthetic titles, which are left out (they have no real vector). An index
    with a second embedder gets second vectors made as the first are (mean of the source chunks' + noise)."""
    from rag.index import Writer
    from rag.ingest import Chunker, split_sentences

    base, root, n_target = Path(spec["base"]), Path(spec["root"]), spec["n"]
    rng = np.random.default_rng(spec.get("seed", 1))
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(base, root)
    t0 = now()
    pool = sentence_pool(base)
    w = Writer(root, EMBEDDER_NAME, DIM)
    n_have = n_real = w.base.manifest.chunks if w.base is not None else 0
    chunker = Chunker(w.chunk_size, w.chunk_overlap)
    i = n_sent = same_split = 0
    t_gen = now()
    while n_have < n_target:
        art, spans = _synthetic_article(pool, rng, i)
        cs = chunker.run(art)[: n_target - n_have]
        mix = np.zeros((len(cs), DIM), dtype=np.float32)
        mix2 = np.zeros((len(cs), w.second_dim), dtype=np.float32)
        for ci, c in enumerate(cs):
            rows_ = [pool.crow[j] for a, b, j in spans if a < c.end and b > c.start] or [pool.crow[spans[0][2]]]
            mix[ci] = pool.vecs[rows_].mean(axis=0)
            if w.second_dim:
                mix2[ci] = pool.seconds[rows_].astype(np.float32).mean(axis=0)
        svecs = noisy(pool.svecs[pool.srow[[j for _, _, j in spans]]], rng)
        w.put_article(art, cs, noisy(mix, rng), "memory:bench-synthetic", [(a, b) for a, b, _ in spans], svecs,
                      noisy(mix2, rng) if w.second_dim else None)
        same_split += i < 500 and split_sentences(art.text) == [(a, b) for a, b, _ in spans]
        n_have += len(cs)
        n_sent += len(spans)
        i += 1
    gen_s = now() - t_gen
    t_c = now()
    gen = w.commit()
    commit_s = now() - t_c
    man = json.loads((root / gen / "manifest.json").read_text())
    return {"chunks": man["chunks"], "articles": man["articles"], "real_chunks": n_real, "synthetic_articles": i,
            "lexicon_words": lexicon_size(root), "base_lexicon_words": lexicon_size(base),
            "synthetic_sentences": n_sent, "same_spans_as_splitter": round(same_split / max(1, min(i, 500)), 3),
            "faiss_kind": man["faiss_kind"], "generate_and_put_s": round(gen_s, 1), "commit_s": round(commit_s, 1),
            "total_s": round(now() - t0, 1), "disk_mb": round(disk_bytes(root) / 2**20),
            "peak_rss_mb": round(peak_rss_mb())}
