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
    """The stored sentences of an index (>= 4 characters) to recombine into synthetic articles.

    sents: texts; hashes: their text hashes; srow: row of each in sentvecs.npy; crow: row in vectors.npy of the chunk
    holding its start; vecs / svecs: the chunk and sentence vectors; lens / titles: real article lengths and titles.
    """
    from rag.index import Index, text_hash

    idx = Index.open(index)
    text = dict(idx.sql("SELECT id, text FROM articles"))
    titles = [r[0] for r in idx.sql("SELECT title FROM articles")]
    chunks: dict[str, list[tuple[int, int, int]]] = {}
    for cid, aid, start, end in idx.sql("SELECT id, article_id, start, end_ FROM chunks ORDER BY article_id, start"):
        chunks.setdefault(aid, []).append((start, end, cid))
    rows = idx.sql("SELECT id, article_id, start, end_ FROM sentences ORDER BY id")
    vec_ids, vecs, sent_ids, svecs = (np.load(idx.gen_dir / f, allow_pickle=False)
                                      for f in ("ids.npy", "vectors.npy", "sent_ids.npy", "sentvecs.npy"))
    idx.close()
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
                           vecs=vecs, svecs=svecs, lens=[len(t) for t in text.values()], titles=titles)


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

    The Writer opens the copied dev index as its base generation, so it carries the dev lexicon over (Writer loads
    the base's lexicon.json / lexicon.npy and `commit` re-filters it against the new BM25 vocabulary). Synthetic text
    is made of real sentences, so no new words need embedding, except pieces of the cut synthetic titles, which are
    left out (they have no real vector)."""
    from rag.index import Writer
    from rag.ingest import Chunker, split_sentences

    base, root, n_target = Path(spec["base"]), Path(spec["root"]), spec["n"]
    rng = np.random.default_rng(spec.get("seed", 1))
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(base, root)
    t0 = now()
    pool = sentence_pool(base)
    w = Writer(root, EMBEDDER_NAME, DIM)
    n_have = n_real = int(len(w.vec_ids))
    chunker = Chunker(w.chunk_size, w.chunk_overlap)
    i = n_sent = same_split = 0
    t_gen = now()
    while n_have < n_target:
        art, spans = _synthetic_article(pool, rng, i)
        cs = chunker.run(art)[: n_target - n_have]
        mix = np.zeros((len(cs), DIM), dtype=np.float32)
        for ci, c in enumerate(cs):
            rows_ = [pool.crow[j] for a, b, j in spans if a < c.end and b > c.start] or [pool.crow[spans[0][2]]]
            mix[ci] = pool.vecs[rows_].mean(axis=0)
        svecs = noisy(pool.svecs[[j for _, _, j in spans]], rng)
        w.put_article(art, cs, noisy(mix, rng), "memory:bench-synthetic", [(a, b) for a, b, _ in spans], svecs)
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
            "total_s": round(now() - t0, 1), "disk_mb": round(disk_bytes(root / gen) / 2**20), "peak_rss_mb": round(peak_rss_mb())}
