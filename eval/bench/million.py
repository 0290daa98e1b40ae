"""The 1M-chunk store: one-chunk synthetic articles bulk-written straight into a generation's layout (SQLite rows,
vectors.npy, sentvecs.npy, BM25 computed with numpy/scipy and checked against `Lexical.build`, FAISS, lexicon)."""
from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from eval.bench.common import DIM, EMBEDDER_NAME, NOISE, disk_bytes, now, peak_rss_mb
from eval.bench.synthetic import noisy, sentence_pool, unit


def _bm25_csc(blocks, n_docs: int, n_vocab: int, k1=1.2, b=0.75):
    """bm25s 'lucene' scores as a (docs x vocab) CSC matrix (data, indices, indptr).

    `blocks` yields (flat token ids, tokens per document) for consecutive documents. Term frequencies are counted
    per block (doc-major, i.e. CSR) and scipy transposes to CSC with a counting sort, so memory stays ~3x the nnz.
    """
    import scipy.sparse as sp

    cols, tfs, counts, lens = [], [], [], []
    for flat, dl in blocks:
        nb = len(dl)
        key = np.repeat(np.arange(nb, dtype=np.int64), dl) * n_vocab + flat.astype(np.int64)
        key, tf = np.unique(key, return_counts=True)
        counts.append(np.bincount(key // n_vocab, minlength=nb))
        cols.append((key % n_vocab).astype(np.int32))
        tfs.append(tf.astype(np.float32))
        lens.append(np.asarray(dl, dtype=np.int64))
        del key
    indices = np.concatenate(cols)
    del cols
    tf = np.concatenate(tfs)
    del tfs
    counts = np.concatenate(counts)
    doc_len = np.concatenate(lens).astype(np.float32)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    df = np.bincount(indices, minlength=n_vocab)
    idf = np.array([math.log(1 + (n_docs - d + 0.5) / (d + 0.5)) for d in df.tolist()], dtype=np.float32)
    l_avg = float(doc_len.mean())
    norm = np.repeat((k1 * ((1 - b) + b * doc_len / l_avg)).astype(np.float32), counts)
    norm += tf
    np.divide(tf, norm, out=tf)
    del norm
    tf *= idf[indices]
    csr = sp.csr_matrix((tf, indices, indptr), shape=(n_docs, n_vocab))
    del tf, indices
    csc = csr.tocsc()
    del csr
    return csc.data.astype(np.float32, copy=False), csc.indices.astype(np.int32, copy=False), csc.indptr.astype(np.int64)


def _bm25_entries(lex, term_id: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(term id * docs + doc, impact, dequantised score) of every stored entry of a Lexical, sorted by key."""
    cols = np.repeat(np.arange(len(lex.terms)), np.diff(lex.indptr))
    keys = term_id[cols].astype(np.int64) * len(lex.ids) + lex.docs
    order = np.argsort(keys, kind="stable")
    return keys[order], lex.impact[order].astype(np.int64), (lex.impact * lex.scale[cols])[order]


def _check_bm25_builder(docs_tokens: list[list[int]], vocab_size: int) -> dict:
    """_bm25_csc + Lexical.from_csc against the product's Lexical.build (bm25s) on the same tokens: max |score
    difference|, max difference in 8-bit impact steps, entries that differ (same_entries False: layouts differ)."""
    from rag.index.lexical import Lexical

    ids = np.arange(len(docs_tokens), dtype=np.int64)
    ref = Lexical.build([[str(t) for t in d] for d in docs_tokens], ids)
    lens = np.array([len(d) for d in docs_tokens], dtype=np.int64)
    flat = np.concatenate([np.asarray(d, np.int64) for d in docs_tokens])
    data, ind, ptr = _bm25_csc([(flat, lens)], len(docs_tokens), vocab_size)
    ours = Lexical.from_csc(ids, [str(i) for i in range(vocab_size)], ptr, ind, data)
    k_ref, i_ref, s_ref = _bm25_entries(ref, np.array([int(t) for t in ref.terms], dtype=np.int64))
    k_ours, i_ours, s_ours = _bm25_entries(ours, np.arange(vocab_size, dtype=np.int64))
    if not np.array_equal(k_ref, k_ours) or not len(k_ref):
        return {"same_entries": bool(len(k_ref) and np.array_equal(k_ref, k_ours)), "entries": len(k_ref)}
    return {"same_entries": True, "entries": len(k_ref), "max_abs_diff": float(np.abs(s_ref - s_ours).max()),
            "max_steps": int(np.abs(i_ref - i_ours).max()), "differing": int((i_ref != i_ours).sum())}


def _big_documents(pool, rng, n_syn: int, chunk_lens: list[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool sentences drawn at random until the length of a real chunk is reached (<= chunk size), per document:
    (sentence sequence, start of each document in it)."""
    slen = [len(x) for x in pool.sents]
    draws = rng.integers(0, len(slen), size=n_syn * 8).tolist()
    targets = rng.choice(np.array(chunk_lens), size=n_syn).tolist()
    seq: list[int] = []
    starts = [0]
    k = 0
    for d in range(n_syn):
        length, target = 0, targets[d]
        while length < target:
            j = draws[k]
            k = (k + 1) % len(draws)
            if length and length + slen[j] > size:
                break
            seq.append(j)
            length += slen[j]
        starts.append(len(seq))
    return np.array(seq, dtype=np.int64), np.array(starts, dtype=np.int64)


def _big_sqlite(con, pool, seq: np.ndarray, starts: np.ndarray, first_id: int, first_sid: int) -> None:
    """One article, one chunk and its sentences per synthetic document."""
    from rag.index.files import now_iso

    stamp, titles = now_iso(), pool.titles
    rows_a, rows_c, rows_s = [], [], []
    sid = first_sid
    for d in range(len(starts) - 1):
        aid, pos, parts = f"syn{d:09d}", 0, []
        for j in seq[starts[d]:starts[d + 1]].tolist():
            n = len(pool.sents[j])
            rows_s.append((sid, aid, pos, pos + n, pool.hashes[j]))
            parts.append(pool.sents[j])
            sid += 1
            pos += n
        text = "".join(parts)
        rows_a.append((aid, titles[d % len(titles)][:30], f"synthetic://bench/big/{d}", "", "synthetic", text, "[]",
                       "[]", aid, stamp, 0))
        rows_c.append((first_id + d, aid, 0, 0, len(text), "", text, "", ""))
        if len(rows_a) >= 50_000 or d == len(starts) - 2:
            con.executemany("INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows_a)
            con.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)", rows_c)
            con.executemany("INSERT INTO sentences VALUES (?,?,?,?,?)", rows_s)
            rows_a, rows_c, rows_s = [], [], []


def _big_sentvecs(path: Path, pool, seq: np.ndarray, rng) -> None:
    """sentvecs.npy: the real sentences' vectors, then per synthetic sentence a noisy copy of the one it copies."""
    n_real = len(pool.svecs)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n_real + len(seq), DIM))
    out[:n_real] = pool.svecs
    for s in range(0, len(seq), 100_000):
        e = min(len(seq), s + 100_000)
        out[n_real + s: n_real + e] = noisy(pool.svecs[pool.srow[seq[s:e]]], rng)
    out.flush()
    del out


def _inherit_lexicon(src_gen: Path, gen: Path, lexical, tokenizer: str) -> dict:
    """The source generation's cross-lingual lexicon (words + stored vectors) written into `gen`, filtered against
    `lexical` by the product's own `Writer._save_lexicon` (words whose bigrams all occur in the corpus, the most
    frequent first over MAX_WORDS); synthetic chunks are real sentences, so every real word stays. Copied as is if
    that method's internals no longer fit this call."""
    from rag.index import Writer
    from rag.index.lexicon import Lexicon

    words = json.loads((src_gen / "lexicon.json").read_text(encoding="utf-8"))
    vecs = np.load(src_gen / "lexicon.npy", allow_pickle=False)
    how = "filtered by Writer._save_lexicon"
    try:
        Writer._save_lexicon(SimpleNamespace(lex_words=list(words), lex_vectors=vecs, _new_words=[], _new_wvecs=[],
                                             tmp=gen, dim=DIM, tokenizer=tokenizer), lexical)
    except (AttributeError, TypeError) as e:
        how = f"copied as is (Writer._save_lexicon not callable here: {e.__class__.__name__}: {e})"
        Lexicon.save(gen, words, vecs, DIM)
    kept = len(json.loads((gen / "lexicon.json").read_text(encoding="utf-8")))
    return {"source_words": len(words), "words": kept, "how": how}


def _big_base(base: Path, gen: Path) -> SimpleNamespace:
    """`gen`'s meta.sqlite started as a copy of the base generation's; the base's real chunks (id, tokens, text
    length), their ids, sentence ids, chunking parameters and generation directory. Returns the open connection too."""
    from rag.index import Index

    bidx = Index.open(base)
    src = sqlite3.connect(f"file:{bidx.gen_dir / 'meta.sqlite'}?mode=ro", uri=True)
    con = sqlite3.connect(gen / "meta.sqlite")
    src.backup(con)
    src.close()
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    real = con.execute("SELECT id, tokens, length(text) FROM chunks ORDER BY id").fetchall()
    n_real_articles = con.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
    m = bidx.manifest
    out = SimpleNamespace(con=con, real=real, n_real_articles=n_real_articles, size=m.chunk_size,
                          overlap=m.chunk_overlap, tokenizer=m.tokenizer,
                          real_ids=np.array([r[0] for r in real], dtype=np.int64),
                          vec_ids=np.load(bidx.gen_dir / "ids.npy", allow_pickle=False),
                          real_sids=np.load(bidx.gen_dir / "sent_ids.npy", allow_pickle=False), src_gen=bidx.gen_dir)
    bidx.close()
    return out


def _big_vectors(gen: Path, pool, real_ids: np.ndarray, real_vecs: np.ndarray, seq_a: np.ndarray,
                 starts_a: np.ndarray, first_id: int, n_syn: int, rng) -> np.ndarray:
    """vectors.npy and ids.npy: the real chunks' vectors, then per synthetic chunk the mean of its sentences' source
    chunks' real vectors + noise, re-normalised, in blocks. Returns the ids."""
    ids = np.concatenate([real_ids, np.arange(first_id, first_id + n_syn, dtype=np.int64)])
    vecs = np.lib.format.open_memmap(gen / "vectors.npy", mode="w+", dtype=np.float32, shape=(len(ids), DIM))
    vecs[: len(real_ids)] = real_vecs
    blk = 20_000
    for s in range(0, n_syn, blk):
        e = min(n_syn, s + blk)
        a, z = starts_a[s], starts_a[e]
        sums = np.add.reduceat(pool.vecs[pool.crow[seq_a[a:z]]], starts_a[s:e] - a, axis=0)
        sums /= np.diff(starts_a[s:e + 1])[:, None].astype(np.float32)
        sums += rng.standard_normal(sums.shape, dtype=np.float32) * NOISE
        vecs[len(real_ids) + s: len(real_ids) + e] = unit(sums)
    vecs.flush()
    del vecs
    np.save(gen / "ids.npy", ids)
    return ids


def _big_tokens(real: list, pool) -> tuple[dict[str, int], list[np.ndarray], list[np.ndarray]]:
    """The vocabulary (token -> id) and the token ids of each real chunk (its stored tokens) and pool sentence."""
    from rag.lang import tokens

    vocab: dict[str, int] = {}
    real_tok = [np.array([vocab.setdefault(t, len(vocab)) for t in r[1].split()], dtype=np.int32) for r in real]
    sent_tok = [np.array([vocab.setdefault(t, len(vocab)) for t in tokens(s)], dtype=np.int32) for s in pool.sents]
    return vocab, real_tok, sent_tok


def _big_bm25(gen: Path, vocab: dict[str, int], real_tok: list, sent_tok: list, seq_a: np.ndarray,
              starts_a: np.ndarray, n_syn: int, ids: np.ndarray):
    """BM25 of every chunk (a synthetic document's tokens are its sentences' tokens), scores computed with
    numpy/scipy and saved with `Lexical.from_csc`, checked first against `Lexical.build` on a sample.
    Returns (the Lexical, the check, nnz)."""
    from rag.index.lexical import Lexical

    sent_len = np.array([len(t) for t in sent_tok], dtype=np.int64)
    sent_off = np.zeros(len(sent_tok) + 1, dtype=np.int64)
    np.cumsum(sent_len, out=sent_off[1:])
    sent_flat = np.concatenate(sent_tok)

    def syn_block(s, e):
        occ = seq_a[starts_a[s]:starts_a[e]]
        occ_len = sent_len[occ]
        total = int(occ_len.sum())
        rel = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(occ_len) - occ_len, occ_len)
        flat = sent_flat[np.repeat(sent_off[occ], occ_len) + rel]
        per_doc = np.add.reduceat(occ_len, starts_a[s:e] - starts_a[s]) if e > s else occ_len[:0]
        return flat, per_doc

    def blocks():
        yield (np.concatenate(real_tok) if real_tok else np.zeros(0, np.int32),
               np.array([len(t) for t in real_tok], dtype=np.int64))
        for s in range(0, n_syn, 50_000):
            yield syn_block(s, min(n_syn, s + 50_000))

    m = min(n_syn, 1500)
    sample = [t.tolist() for t in real_tok[:1500]]
    flat, per_doc = syn_block(0, m)
    sample += [x.tolist() for x in np.split(flat, np.cumsum(per_doc)[:-1])]
    check = _check_bm25_builder(sample, len(vocab))
    data, indices, indptr = _bm25_csc(blocks(), len(ids), len(vocab))
    nnz = len(data)
    lex = Lexical.from_csc(ids, list(vocab), indptr, indices, data)
    del data, indices, indptr
    lex.save(gen / "bm25")
    return lex, check, nnz


def worker_build_big(spec: dict) -> dict:
    """Dev index + (n - real) one-chunk synthetic articles written straight into a generation (see the package doc)."""
    import faiss

    from rag.index import CURRENT, SCHEMA_VERSION, Index
    from rag.index.files import now_iso
    from rag.index.vectors import build_faiss

    base, root, n_target = Path(spec["base"]), Path(spec["root"]), spec["n"]
    rng = np.random.default_rng(spec.get("seed", 2))
    t0 = now()
    shutil.rmtree(root, ignore_errors=True)
    gen = root / "gen-000001"
    gen.mkdir(parents=True)
    pool = sentence_pool(base)
    b = _big_base(base, gen)
    real_vecs = pool.vecs[np.searchsorted(b.vec_ids, b.real_ids)]
    del b.vec_ids
    vocab, real_tok, sent_tok = _big_tokens(b.real, pool)
    n_syn = n_target - len(b.real)

    t_gen = now()
    seq_a, starts_a = _big_documents(pool, rng, n_syn, [r[2] for r in b.real], b.size)
    first_id = int(b.real_ids.max()) + 1 if len(b.real_ids) else 1
    first_sid = int(b.real_sids.max()) + 1 if len(b.real_sids) else 1
    _big_sqlite(b.con, pool, seq_a, starts_a, first_id, first_sid)
    b.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    b.con.commit()
    b.con.close()
    sqlite_s = now() - t_gen

    t_v = now()
    ids = _big_vectors(gen, pool, b.real_ids, real_vecs, seq_a, starts_a, first_id, n_syn, rng)
    vec_s = now() - t_v

    t_sv = now()
    _big_sentvecs(gen / "sentvecs.npy", pool, seq_a, rng)
    np.save(gen / "sent_ids.npy", np.concatenate([b.real_sids, np.arange(first_sid, first_sid + len(seq_a), dtype=np.int64)]))
    sentvec_s = now() - t_sv

    t_b = now()
    lex, check, nnz = _big_bm25(gen, vocab, real_tok, sent_tok, seq_a, starts_a, n_syn, ids)
    bm25_s = now() - t_b

    t_l = now()
    lexicon = _inherit_lexicon(b.src_gen, gen, lex, b.tokenizer)
    del lex
    lexicon_s = now() - t_l

    t_f = now()
    index, kind = build_faiss(np.load(gen / "vectors.npy", mmap_mode="r", allow_pickle=False), ids, "auto")
    faiss.write_index(index, str(gen / "vectors.faiss"))
    del index
    faiss_s = now() - t_f
    manifest = {"schema_version": SCHEMA_VERSION, "embedder": EMBEDDER_NAME, "dim": DIM,
                "articles": b.n_real_articles + n_syn, "chunks": len(ids), "faiss_kind": kind, "tokenizer": b.tokenizer,
                "chunk_size": b.size, "chunk_overlap": b.overlap, "created": now_iso(), "generation": gen.name}
    (gen / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    (root / CURRENT).write_text(gen.name + "\n", encoding="utf-8")
    peak = peak_rss_mb()  # before the check below opens the generation
    Index.open(root).close()
    return {"chunks": len(ids), "real_chunks": len(b.real_ids), "faiss_kind": kind, "bm25_nnz": nnz, "chunk_size": b.size,
            "sentences": len(b.real_sids) + len(seq_a), "synthetic_sentences": len(seq_a),
            "bm25_check": check, "sqlite_s": round(sqlite_s, 1), "vectors_s": round(vec_s, 1),
            "sentvecs_s": round(sentvec_s, 1), "bm25_s": round(bm25_s, 1), "faiss_s": round(faiss_s, 1),
            "lexicon": lexicon, "lexicon_s": round(lexicon_s, 1),
            "lexicon_mb": round(sum((gen / f).stat().st_size for f in ("lexicon.json", "lexicon.npy", "lexicon.faiss")) / 2**20),
            "total_s": round(now() - t0, 1), "disk_gb": round(disk_bytes(gen) / 2**30, 2),
            "sentvecs_gb": round((gen / "sentvecs.npy").stat().st_size / 2**30, 2),
            "bm25_gb": round(disk_bytes(gen / "bm25") / 2**30, 2),
            "sqlite_gb": round((gen / "meta.sqlite").stat().st_size / 2**30, 2), "peak_rss_mb": round(peak)}
