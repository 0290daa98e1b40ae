"""A date read from an article's text (Article.date_from_text) in the local index: kept in its segment's articles
table, read as False from a segment written before that column, carried by merges and compaction."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from conftest import DATED_QUESTIONS, DATED_ROWS

from rag import AnswerConfig, ask
from rag.index import Index, compact_index, index_paths
from rag.index.segment import SCHEMA
from rag.retrieve import Searcher
from rag.types import Article

RATE, PANDA = DATED_QUESTIONS
DERIVED = {RATE: ("2023-07-28T16:40:00Z", True), PANDA: ("2023-11-09T01:00:00Z", False)}
UNMARKED = {RATE: ("2023-07-28T16:40:00Z", False), PANDA: ("2023-11-09T01:00:00Z", False)}
# the articles table as every version before the column created it
OLD_SCHEMA = SCHEMA.replace(", date_from_text INTEGER NOT NULL DEFAULT 0", "")


def _records(root: Path, emb) -> tuple[dict, dict, dict]:
    """{url: (published, date_from_text)} of the articles, of the passages a search returns, and of ask()'s first
    citation for each of DATED_QUESTIONS."""
    idx = Index.open(root)
    try:
        arts = {a.url: (a.published, a.date_from_text) for a in map(idx.article, idx.article_ids())}
        ps = {p.url: (p.published, p.date_from_text) for p in idx.passages(c for c, _ in idx.search_lexical("正文", 10))}
    finally:
        idx.close()
    s = Searcher(root, emb)
    cits = {}
    for url, q in DATED_QUESTIONS.items():
        c = ask(q, s, config=AnswerConfig(reader="none")).citations[0]
        cits[c.url] = (c.published, c.date_from_text)
    s.index.close()
    return arts, ps, cits


def _as_written_before_the_column(seg: Path) -> None:
    """Rewrite a segment's database as versions before the column wrote it (OLD_SCHEMA, the same rows), with
    segment.json's size of it to match."""
    assert OLD_SCHEMA != SCHEMA
    db, old = seg / "meta.sqlite", seg / "old.sqlite"
    con = sqlite3.connect(old)
    con.executescript(OLD_SCHEMA)
    con.execute("ATTACH DATABASE ? AS s", (str(db),))
    for (table,) in con.execute("SELECT name FROM main.sqlite_master WHERE type='table'").fetchall():
        cols = ", ".join(r[1] for r in con.execute(f"PRAGMA main.table_info({table})"))
        con.execute(f"INSERT INTO main.{table} SELECT {cols} FROM s.{table}")
    # and the content hash those versions gave it: the mark did not count
    rows = con.execute("SELECT id, title, text, url, published, source, headings FROM articles").fetchall()
    con.executemany("UPDATE articles SET content_hash=? WHERE id=?", [
        (Article(t, x, u, p, s, "", tuple((int(o), h) for o, h in json.loads(hs))).content_hash, aid)
        for aid, t, x, u, p, s, hs in rows])
    con.commit()
    con.execute("DETACH DATABASE s")
    assert "date_from_text" not in {r[1] for r in con.execute("PRAGMA table_info(articles)")}
    con.close()
    os.replace(old, db)
    info = json.loads((seg / "segment.json").read_text(encoding="utf-8"))
    info["files"]["meta.sqlite"] = db.stat().st_size
    (seg / "segment.json").write_text(json.dumps(info, indent=1), encoding="utf-8")


def _segments(root: Path) -> list[Path]:
    idx = Index.open(root, eager=False)
    try:
        return [v.seg.path for v in idx.views]
    finally:
        idx.close()


def test_the_segment_keeps_the_mark(dated_index, fake_embedder):
    (seg,) = _segments(dated_index)
    with sqlite3.connect(f"file:{seg / 'meta.sqlite'}?mode=ro", uri=True) as con:
        assert dict(con.execute("SELECT url, date_from_text FROM articles")) == {RATE: 1, PANDA: 0}
    assert _records(dated_index, fake_embedder) == (DERIVED, DERIVED, DERIVED)


def test_a_segment_written_before_the_column_reads_false_and_the_next_run_marks_it(dated_index, fake_embedder,
                                                                                   tmp_path):
    (seg,) = _segments(dated_index)
    _as_written_before_the_column(seg)
    assert _records(dated_index, fake_embedder) == (UNMARKED, UNMARKED, UNMARKED)
    # indexing the file again stores the marked article anew (its content hash counts the mark), the other is kept
    s = index_paths([tmp_path / "dated.jsonl"], dated_index, fake_embedder, progress=False)
    assert (s.added, s.updated, s.skipped, s.failed) == (0, 1, 1, 0), s
    assert _records(dated_index, fake_embedder) == (DERIVED, DERIVED, DERIVED)
    compact_index(dated_index)
    assert seg not in _segments(dated_index)  # rewritten with the column (half its articles were replaced)
    assert _records(dated_index, fake_embedder) == (DERIVED, DERIVED, DERIVED)


def test_merges_carry_the_mark(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    for n, row in enumerate(DATED_ROWS):  # one run, so one segment, per article
        path = tmp_path / f"dated-{n}.jsonl"
        path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
        assert index_paths([path], root, fake_embedder, progress=False).added == 1
    assert len(_segments(root)) == 2
    assert "merged into 1" in compact_index(root)
    assert len(_segments(root)) == 1
    assert _records(root, fake_embedder) == (DERIVED, DERIVED, DERIVED)


def test_old_and_new_segments_merge_into_one_with_the_column(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    rate, panda = (tmp_path / "rate.jsonl", tmp_path / "panda.jsonl")
    for path, row in ((panda, DATED_ROWS[1]), (rate, DATED_ROWS[0])):
        path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    index_paths([panda], root, fake_embedder, progress=False)
    _as_written_before_the_column(_segments(root)[0])
    index_paths([rate], root, fake_embedder, progress=False)
    assert len(_segments(root)) == 2
    assert "merged into 1" in compact_index(root)
    (merged,) = _segments(root)
    with sqlite3.connect(f"file:{merged / 'meta.sqlite'}?mode=ro", uri=True) as con:
        assert dict(con.execute("SELECT url, date_from_text FROM articles")) == {RATE: 1, PANDA: 0}
    assert _records(root, fake_embedder) == (DERIVED, DERIVED, DERIVED)
