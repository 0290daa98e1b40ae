"""Segments written and merged: a staged segment's files, a tiered merge policy, and merges that drop deleted rows."""
from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import RagError
from .dedup import META_KEY, current_fingerprint, signature, to_blob
from .files import SEGMENTS, fsync_dir, fsync_tree, make_dir, now_iso
from .lexical import Postings
from .lexicon import MAX_WORDS, Lexicon
from .segment import ARTICLE_COLUMNS, SCHEMA, SEGMENT_FORMAT
from .vectors import build_faiss

FACTOR = 10  # a tier is merged once it holds this many segments of similar size (Lucene's segmentsPerTier)
FLOOR = 2000  # segments under this many live chunks share the lowest tier
EXPUNGE = 0.5  # a segment whose deleted rows reach this share of its chunks is rewritten without them


def next_segment_name(root: Path) -> str:
    seg_dir = Path(root) / SEGMENTS
    nums = [int(p.name[4:]) for p in seg_dir.glob("seg-*") if p.name[4:].isdigit()] if seg_dir.is_dir() else []
    return f"seg-{(max(nums) + 1) if nums else 1:06d}"


def new_segment_dir(root: Path) -> tuple[Path, sqlite3.Connection]:
    """A temp folder under the index for a segment being written, with its empty SQLite database."""
    tmp = make_dir(Path(root), ".tmp-seg-")
    con = sqlite3.connect(tmp / "meta.sqlite")
    # before the schema: a temp segment is thrown away whole on failure (creating the tables with a journal and
    # fsyncs took 126-275 ms of a one-article add, 1 ms without)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.executescript(SCHEMA)
    con.execute("INSERT INTO meta VALUES (?,?)", (META_KEY, current_fingerprint()))  # its signatures'
    con.commit()
    return tmp, con


def finish_segment(root: Path, tmp: Path, con: sqlite3.Connection, *, dim: int, second_dim: int, faiss_kind: str,
                   ids: np.ndarray, vectors: np.ndarray, second: np.ndarray | None, sent_ids: np.ndarray,
                   sent_vectors: np.ndarray, words: list[str], word_vectors: np.ndarray) -> str:
    """Write a staged segment's files next to its database (vectors sorted by id already), check rows against
    vectors, fsync, and rename it into `root/segments/`. Returns its name."""
    con.commit()
    rows = con.execute("SELECT id, tokens FROM chunks ORDER BY id").fetchall()
    if not np.array_equal(np.array([r[0] for r in rows], dtype=np.int64), ids):
        raise RagError("internal error: vectors and chunk rows disagree; nothing was written")
    sids = np.array([r[0] for r in con.execute("SELECT id FROM sentences ORDER BY id")], dtype=np.int64)
    if not np.array_equal(sids, sent_ids):
        raise RagError("internal error: sentence vectors and sentence rows disagree; nothing was written")
    counts = {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("articles", "sources")}
    con.close()
    import faiss

    np.save(tmp / "ids.npy", ids, allow_pickle=False)
    np.save(tmp / "vectors.npy", np.asarray(vectors, dtype=np.float32).reshape(len(ids), dim), allow_pickle=False)
    np.save(tmp / "sent_ids.npy", sent_ids, allow_pickle=False)
    np.save(tmp / "sentvecs.npy", np.asarray(sent_vectors, dtype=np.float16).reshape(len(sent_ids), dim),
            allow_pickle=False)
    index, kind = build_faiss(np.asarray(vectors, dtype=np.float32).reshape(len(ids), dim), ids, faiss_kind)
    faiss.write_index(index, str(tmp / "vectors.faiss"))
    if second_dim:
        second = np.asarray(second, dtype=np.float16).reshape(len(ids), second_dim)
        np.save(tmp / "second.npy", second, allow_pickle=False)
        faiss.write_index(build_faiss(second.astype(np.float32), ids, faiss_kind)[0], str(tmp / "second.faiss"))
    Postings.build([r[1].split() for r in rows]).save(tmp / "bm25")
    Lexicon.save(tmp, list(words), np.asarray(word_vectors, dtype=np.float32).reshape(len(words), dim), dim)
    info = {"format": SEGMENT_FORMAT, "chunks": len(ids), "articles": counts["articles"], "sentences": len(sent_ids),
            "sources": counts["sources"], "words": len(words), "faiss_kind": kind, "created": now_iso(),
            "uid": secrets.token_hex(8),
            # sizes checked on every open (a stat each): a truncated or emptied file is named even by a writer,
            # which does not read the FAISS indexes and postings of the segments it leaves alone
            "files": {p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}}
    (tmp / "segment.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    fsync_tree(tmp)
    seg_dir = Path(root) / SEGMENTS
    seg_dir.mkdir(exist_ok=True)
    name = next_segment_name(root)
    os.rename(tmp, seg_dir / name)
    fsync_dir(seg_dir)
    return name


def merge_segments(root: Path, views: Sequence, *, dim: int, second_dim: int, faiss_kind: str,
                   word_tokens: Callable[[str], list[str]], doc_freq: Callable[[list[str]], dict[str, int]],
                   chunk_tokens: Callable[[str, int, str], str] | None = None) -> str:
    """One new segment holding the live rows of `views` (rag.index.generation.View), ids kept; lexicon words kept
    while each of their tokens still occurs in a live chunk of the index (`doc_freq`: the generation's, over every
    segment). `chunk_tokens(title, ordinal, text)`: make every chunk's BM25 tokens again (a newer token version).
    Returns the new segment's name."""
    tmp, con = new_segment_dir(root)
    try:
        parts = {k: [] for k in ("ids", "vecs", "second", "sids", "svecs")}
        words, wvecs, seen = [], [], set()
        for n, v in enumerate(views):
            seg, dead = v.seg, v.dead_json
            con.execute(f"ATTACH DATABASE ? AS s{n}", (f"file:{seg.path / 'meta.sqlite'}?mode=ro",))
            keep = "article_id NOT IN (SELECT value FROM json_each(?))"
            con.execute(f"INSERT INTO articles ({ARTICLE_COLUMNS}, date_from_text) SELECT {ARTICLE_COLUMNS}, "
                        f"{seg.date_from_text()} FROM s{n}.articles WHERE id NOT IN (SELECT value FROM json_each(?))",
                        (dead,))
            con.execute(f"INSERT INTO chunks SELECT * FROM s{n}.chunks WHERE {keep}", (dead,))
            con.execute(f"INSERT INTO sentences SELECT * FROM s{n}.sentences WHERE {keep}", (dead,))
            if seg.has_minhash():
                con.execute(f"INSERT INTO minhash SELECT * FROM s{n}.minhash WHERE {keep}", (dead,))
            else:  # a segment written before signatures (or with another library's): made now from the texts
                texts = con.execute(f"SELECT id, text FROM s{n}.articles WHERE id NOT IN "
                                    f"(SELECT value FROM json_each(?))", (dead,)).fetchall()
                con.executemany("INSERT INTO minhash VALUES (?,?)",
                                [(aid, to_blob(sig)) for aid, text in texts
                                 if (sig := signature(text)) is not None])
            srcs = [r for r in con.execute(f"SELECT path, article_id FROM s{n}.sources") if tuple(r) not in v.dead_sources]
            con.executemany("INSERT OR IGNORE INTO sources VALUES (?,?)", srcs)
            con.commit()
            con.execute(f"DETACH DATABASE s{n}")
            live = np.ones(len(seg.ids), dtype=bool) if v.dead_rows is None else ~v.dead_rows
            parts["ids"].append(seg.ids[live])
            parts["vecs"].append(np.load(seg.path / "vectors.npy", mmap_mode="r", allow_pickle=False)[live])
            if second_dim:
                parts["second"].append(np.load(seg.path / "second.npy", mmap_mode="r", allow_pickle=False)[live])
            slive = ~np.isin(seg.sent_ids, v.dead_sentences)
            parts["sids"].append(seg.sent_ids[slive])
            parts["svecs"].append(np.load(seg.path / "sentvecs.npy", mmap_mode="r", allow_pickle=False)[slive])
            if seg.words is None:
                raise RagError(f"{seg.path / 'lexicon.json'}: the lexicon is unreadable; rebuild the index with "
                               f"`rag index --rebuild PATH... --index {root}`")
            lv = np.load(seg.path / "lexicon.npy", allow_pickle=False)
            for w, vec in zip(seg.words, lv):
                if w not in seen:
                    seen.add(w)
                    words.append(w)
                    wvecs.append(vec)
        if chunk_tokens is not None:
            rows = con.execute("SELECT c.id, c.ordinal, c.text, a.title FROM chunks c JOIN articles a "
                               "ON a.id = c.article_id").fetchall()
            con.executemany("UPDATE chunks SET tokens=? WHERE id=?",
                            [(chunk_tokens(title, o, text), cid) for cid, o, text, title in rows])
        ids = np.concatenate(parts["ids"]) if parts["ids"] else np.zeros(0, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        sids = np.concatenate(parts["sids"]) if parts["sids"] else np.zeros(0, dtype=np.int64)
        sorder = np.argsort(sids, kind="stable")

        def cat(key, d, dtype, o):
            arrs = [np.asarray(a, dtype=dtype).reshape(-1, d) for a in parts[key]]
            return np.concatenate(arrs)[o] if arrs else np.zeros((0, d), dtype=dtype)

        words, wvecs = _live_words(words, wvecs, doc_freq, word_tokens, dim)
        return finish_segment(
            root, tmp, con, dim=dim, second_dim=second_dim, faiss_kind=faiss_kind, ids=ids[order],
            vectors=cat("vecs", dim, np.float32, order),
            second=cat("second", second_dim, np.float16, order) if second_dim else None,
            sent_ids=sids[sorder], sent_vectors=cat("svecs", dim, np.float16, sorder), words=words, word_vectors=wvecs)
    except BaseException:
        import shutil

        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _live_words(words: list[str], vecs: list[np.ndarray], doc_freq, word_tokens, dim: int):
    """Words whose every lexical token still occurs in a live chunk, the most frequent first when over MAX_WORDS."""
    grams = [set(word_tokens(w)) for w in words]
    df = doc_freq(sorted(set().union(*grams))) if grams else {}
    keep, freq = [], []
    for i, g in enumerate(grams):
        if g and g <= df.keys():
            keep.append(i)
            freq.append(min(df[t] for t in g))
    if len(keep) > MAX_WORDS:
        keep = [keep[j] for j in sorted(np.argsort(-np.array(freq), kind="stable")[:MAX_WORDS])]
    out = np.array([vecs[i] for i in keep], dtype=np.float32).reshape(len(keep), dim)
    return [words[i] for i in keep], out


def tier(live_chunks: int) -> int:
    return 0 if live_chunks < FLOOR else int(math.log(live_chunks / FLOOR, FACTOR)) + 1


def plan_merge(views: Sequence) -> list[int]:
    """Positions of the segments to merge next under the tiered policy, or [] when none is due: the lowest tier
    holding FACTOR segments, else a segment whose deleted rows reach EXPUNGE of it (rewritten alone)."""
    tiers: dict[int, list[int]] = {}
    for i, v in enumerate(views):
        tiers.setdefault(tier(v.live_chunks), []).append(i)
    for t in sorted(tiers):
        if len(tiers[t]) >= FACTOR:
            return tiers[t][:FACTOR]
    for i, v in enumerate(views):
        n = len(v.seg.ids)
        if v.ref.dead and (v.live_chunks == 0 or (n and (n - v.live_chunks) / n >= EXPUNGE)):
            return [i]
    return []
