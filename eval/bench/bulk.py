"""A bulk builder of large v3 indexes (the adds benchmark at 1M chunks): real news prepared once, written N times.

    python -m eval.bench.bulk --chunks 1000000 --index eval/out/bench/segments/adds-1000000 [--max-segment 120000]
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from eval.bench.segments import CRUD, HashEmbedder, embedders, news

HOLD = 1000  # the corpus's last articles, never bulk-written: the adds benchmark adds them
ROWS = 20_000  # rows per executemany


def corpus_size() -> int:
    """Articles (lines) in the CRUD-RAG corpus."""
    n = 0
    for p in sorted(CRUD.glob("*.jsonl")):
        with open(p, encoding="utf-8") as f:
            n += sum(1 for _ in f)
    return n


def held_out() -> int:
    """Where the articles the bulk builder leaves out start (news(skip=held_out()) yields them)."""
    return corpus_size() - HOLD


def layout(n: int, batch: int = 600, max_segment: int = 120_000) -> list[int]:
    """Segment sizes (oldest first) for `n` chunks: what rag.index.merge's tiered policy leaves after adds of `batch`
    chunks (a day's 300 articles), with the segments above tier 1 pooled and cut into equal segments of at most
    `max_segment` chunks: finish_segment builds BM25 postings from every token as a Python string (10.6 GB of RSS for
    120k chunks), so the 600k-chunk segment the policy makes on the way to 1M would need ~50 GB. No merge is due."""
    from rag.index.merge import FACTOR, FLOOR, plan_merge

    def views(sizes):
        return [SimpleNamespace(live_chunks=s, seg=SimpleNamespace(ids=()), ref=SimpleNamespace(dead=()))
                for s in sizes]

    sizes: list[int] = []
    for start in range(0, n, batch):
        sizes.append(min(batch, n - start))
        while todo := plan_merge(views(sizes)):
            merged = sum(sizes[i] for i in todo)
            sizes = [s for i, s in enumerate(sizes) if i not in todo]
            sizes.insert(min(todo), merged)
    big = sum(s for s in sizes if s >= FLOOR * FACTOR)
    k = math.ceil(big / max_segment)
    out = [big // k + (i < big % k) for i in range(k)] + [s for s in sizes if s < FLOOR * FACTOR]
    if plan_merge(views(out)):
        raise ValueError(f"{n} chunks in segments of at most {max_segment}: a merge would be due; raise --max-segment")
    return out


def prepare(articles, emb: HashEmbedder, log=print) -> SimpleNamespace:
    """Each unique article chunked, split, tokenised and its words found once, as Writer.put_article and the indexer's
    Batch would: chunk and sentence vectors (one per distinct text hash, as the write path's cache gives them), BM25
    tokens of every chunk but the first (its title's depend on the copy), lexicon words as ids into `word_list`."""
    from rag.index import text_hash
    from rag.ingest import CHUNK_OVERLAP, CHUNK_SIZE, Chunker, split_sentences
    from rag.lang import TOKEN_VERSION, corpus_words, tokens

    chunker = Chunker(CHUNK_SIZE, CHUNK_OVERLAP)
    p = SimpleNamespace(arts=[], chunks=[], sents=[], words=[], vocab={}, n_chunks=0, n_sentences=0)
    vec_row: dict[str, int] = {}
    svec_row: dict[str, int] = {}
    texts, stexts, seen = [], [], set()
    t0 = time.perf_counter()
    for a in articles:
        if a.id in seen:
            continue
        seen.add(a.id)
        cs = []
        for c in chunker.run(a):
            h = text_hash(c.text)
            if h not in vec_row:
                vec_row[h] = len(texts)
                texts.append(c.text)
            toks = None if c.ordinal == 0 else " ".join(tokens(c.text, "bigram", TOKEN_VERSION))
            cs.append((c.ordinal, c.start, c.end, c.heading, c.text, h, vec_row[h], toks))
        ss = []
        for s, e in split_sentences(a.text):
            h = text_hash(a.text[s:e])
            if h not in svec_row:
                svec_row[h] = len(stexts)
                stexts.append(a.text[s:e])
            ss.append((s, e, h, svec_row[h]))
        ws = corpus_words(a.title + "\n" + a.text)
        p.arts.append(a)
        p.chunks.append(cs)
        p.sents.append(ss)
        p.words.append(np.array(sorted(p.vocab.setdefault(w, len(p.vocab)) for w in ws), dtype=np.int32))
        p.n_chunks += len(cs)
        p.n_sentences += len(ss)
        if len(p.arts) % 5000 == 0:
            log(f"prepared {len(p.arts)} articles, {p.n_chunks} chunks ({time.perf_counter() - t0:.0f} s)")
    p.vectors = emb.embed_documents(texts)
    p.svectors = emb.embed_documents(stexts).astype(np.float16)  # stored as float16 (finish_segment)
    p.word_list = list(p.vocab)
    log(f"prepared {len(p.arts)} articles: {p.n_chunks} chunks ({len(texts)} distinct), {p.n_sentences} sentences "
        f"({len(stexts)} distinct), {len(p.word_list)} words in {time.perf_counter() - t0:.0f} s")
    return p


def _copy(a, k: int):
    """Copy k of an article: the article itself for k = 0, else its own url and title (so its own id)."""
    from rag.types import Article

    return a if k == 0 else Article(f"{a.title} #{k}", a.text, f"{a.url}#copy{k}", a.published, a.source)


def build(root: Path, n_chunks: int, emb: HashEmbedder, second: HashEmbedder | None, articles=None,
          max_segment: int = 120_000, batch: int = 600, check: bool = True, sizes: list[int] | None = None,
          log=print) -> dict:
    """An index of about `n_chunks` chunks at `root` (a new folder): prepared articles written copy after copy into
    segments of `layout(n_chunks)` sizes (or `sizes`; a segment takes whole articles until it reaches its size), each
    finished by rag.index.merge.finish_segment, then published by a Writer as its first generation, with the ids the
    Writer would have given. `articles`: the unique articles (default: the corpus less its last HOLD)."""
    import itertools

    from eval.bench.common import peak_rss_mb
    from rag.index import CURRENT, WriteLock, Writer
    from rag.index.files import now_iso
    from rag.index.generation import SegmentRef, check_generation
    from rag.index.lexicon import MAX_WORDS
    from rag.index.merge import finish_segment, new_segment_dir
    from rag.ingest import CHUNK_OVERLAP, CHUNK_SIZE
    from rag.lang import TOKEN_VERSION, tokens

    if (root / CURRENT).exists():
        raise SystemExit(f"{root}: an index is there already; the bulk builder writes a new one")
    t0 = time.perf_counter()
    sizes = sizes or layout(n_chunks, batch, max_segment)
    log(f"layout: {len(sizes)} segments {sizes}")
    if articles is None:
        articles = itertools.islice(news(), held_out())
    p = prepare(articles, emb, log=log)
    prep_s = time.perf_counter() - t0
    order = ((k, i) for k in itertools.count() for i in range(len(p.arts)))
    known = np.zeros(len(p.word_list), dtype=bool)
    next_chunk = next_sentence = 1
    names, segs, n_articles = [], [], 0
    root.mkdir(parents=True, exist_ok=True)
    with WriteLock(root):
        for size in sizes:
            t = time.perf_counter()
            tmp, con = new_segment_dir(root)
            try:
                stamp, items, n = now_iso(), [], 0
                while n < size:
                    k, i = next(order)
                    items.append((k, i))
                    n += len(p.chunks[i])
                ra, rs, rc, rsent, vrows, srows, seconds = [], [], [], [], [], [], []
                ids0, sids0 = next_chunk, next_sentence
                for k, i in items:
                    a = _copy(p.arts[i], k)
                    aid = a.id
                    ra.append((aid, a.title, a.url, a.published, a.source, a.text, "[]", "[]", a.content_hash, stamp,
                               int(a.date_from_text)))
                    rs.append((f"memory:bulk{k}", aid))
                    for o, start, end, head, text, h, row, toks in p.chunks[i]:
                        if toks is None:  # Writer._chunk_tokens: the first chunk carries its title too
                            toks = " ".join(tokens(a.title + "\n" + text, "bigram", TOKEN_VERSION))
                        rc.append((next_chunk, aid, o, start, end, head, text, h, toks))
                        vrows.append(row)
                        seconds.append(f"{a.title}\n{text}")
                        next_chunk += 1
                    for start, end, h, row in p.sents[i]:
                        rsent.append((next_sentence, aid, start, end, h))
                        srows.append(row)
                        next_sentence += 1
                for sql, rows in (("INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)", ra),
                                  ("INSERT INTO sources VALUES (?,?)", rs),
                                  ("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)", rc),
                                  ("INSERT INTO sentences VALUES (?,?,?,?,?)", rsent)):
                    for j in range(0, len(rows), ROWS):
                        con.executemany(sql, rows[j: j + ROWS])
                del ra, rs, rc, rsent
                # the lexicon words this segment's articles bring (those no older segment holds), the most frequent
                # MAX_WORDS kept as a merge keeps them
                counts = np.bincount(np.concatenate([p.words[i] for _, i in items]), minlength=len(known))
                counts[known] = 0
                new = np.flatnonzero(counts)
                if len(new) > MAX_WORDS:
                    new = np.sort(new[np.argsort(-counts[new], kind="stable")[:MAX_WORDS]])
                known[new] = True
                words = sorted(p.word_list[w] for w in new)
                write_s = time.perf_counter() - t
                t = time.perf_counter()
                sec = (second.embed_documents(seconds).astype(np.float16) if second is not None else None)
                del seconds
                name = finish_segment(
                    root, tmp, con, dim=emb.dim, second_dim=second.dim if second is not None else 0,
                    faiss_kind="auto", ids=np.arange(ids0, next_chunk, dtype=np.int64), vectors=p.vectors[vrows],
                    second=sec, sent_ids=np.arange(sids0, next_sentence, dtype=np.int64),
                    sent_vectors=p.svectors[srows], words=words, word_vectors=emb.embed_documents(words))
            except BaseException:
                con.close()
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            names.append(name)
            n_articles += len(items)
            info = json.loads((root / "segments" / name / "segment.json").read_text())
            segs.append({"name": name, "chunks": info["chunks"], "articles": info["articles"],
                         "sentences": info["sentences"], "words": info["words"], "faiss_kind": info["faiss_kind"],
                         "write_s": round(write_s, 1), "finish_s": round(time.perf_counter() - t, 1)})
            log(json.dumps(segs[-1]))
        w = Writer(root, emb.name, emb.dim, tokenizer="bigram", chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP,
                   second_embedder=second.name if second is not None else "",
                   second_dim=second.dim if second is not None else 0)
        try:
            w.next_chunk, w.next_sentence = next_chunk, next_sentence
            gen = w._publish([SegmentRef(n) for n in names], n_articles, next_chunk - 1)
        finally:
            w.abort()
    build_s = time.perf_counter() - t0
    peak = peak_rss_mb()
    out = {"root": str(root), "generation": gen, "chunks": next_chunk - 1, "articles": n_articles,
           "sentences": next_sentence - 1, "unique_articles": len(p.arts), "copies": items[-1][0] + 1,
           "segments": segs, "prepare_s": round(prep_s, 1), "build_s": round(build_s, 1), "peak_rss_mb": round(peak),
           "disk_gb": round(sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**30, 2)}
    if check:  # the project's load checks: every segment's FAISS, postings, ids against SQLite, and lexicon
        t = time.perf_counter()
        why = check_generation(root, gen)
        if why is not None:
            raise RuntimeError(f"the bulk index does not pass the load checks: {why}")
        out["check_s"] = round(time.perf_counter() - t, 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench.bulk", description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, required=True)
    ap.add_argument("--index", required=True)
    ap.add_argument("--max-segment", type=int, default=120_000)
    ap.add_argument("--batch", type=int, default=600, help="chunks per add of the growth the layout follows")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--fresh", action="store_true", help="remove --index first")
    args = ap.parse_args(argv)
    root = Path(args.index)
    if args.fresh:
        shutil.rmtree(root, ignore_errors=True)
    res = build(root, args.chunks, *embedders(),
                max_segment=args.max_segment, batch=args.batch, check=not args.no_check,
                log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
