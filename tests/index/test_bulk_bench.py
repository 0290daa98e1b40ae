"""eval.bench.bulk writes what the write path writes: the same rows, ids, vectors, postings and lexicon, copy by
copy."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
from conftest import ROOT

from eval.bench.bulk import _copy, build, layout
from eval.bench.segments import embedders
from rag.index import Index, index_articles
from rag.index.generation import check_generation
from rag.index.merge import plan_merge
from rag.types import Article


def _articles(n: int) -> list[Article]:
    with open(ROOT / "eval" / "corpus" / "cmrc2018.jsonl", encoding="utf-8") as f:
        return [Article(d["title"], d["text"], url=d["url"], published="2024-01-02") for d in map(json.loads, f)][:n]


def _files(seg) -> list:
    """A segment's files but its SQLite database, segment.json (a date, a uid) and lexicon."""
    return sorted(p.relative_to(seg) for p in seg.rglob("*") if p.is_file() and p.name not in (
        "segment.json", "meta.sqlite") and not p.name.startswith("lexicon."))


def test_bulk_index_is_the_write_paths(tmp_path):
    arts, (emb, second) = _articles(12), embedders()
    w, b = tmp_path / "write", tmp_path / "bulk"
    for k in (0, 1):  # two copies, one add each: two segments
        index_articles([_copy(a, k) for a in arts], w, emb, progress=False, second=second,
                       source_name=f"memory:bulk{k}", checkpoint=0)
    iw = Index.open(w)
    sizes = [len(v.seg.ids) for v in iw.views]
    assert len(sizes) == 2
    build(b, sum(sizes), emb, second, articles=arts, sizes=sizes, log=lambda m: None)
    ib = Index.open(b)
    try:
        diff = [f.name for f in dataclasses.fields(iw.manifest) if f.name not in ("created", "generation")
                and getattr(iw.manifest, f.name) != getattr(ib.manifest, f.name)]
        assert diff == []
        for q in ("SELECT id, title, url, published, source, text, headings, captions, content_hash FROM articles "
                  "ORDER BY id", "SELECT * FROM chunks ORDER BY id", "SELECT * FROM sentences ORDER BY id",
                  "SELECT * FROM sources ORDER BY path, article_id"):
            assert iw.sql(q) == ib.sql(q), q
        for vw, vb in zip(iw.views, ib.views):
            # the lexicon's word order is the indexer's batches' (sorted within each): compared word by word
            files = _files(vw.seg.path)
            assert files == _files(vb.seg.path)
            for f in files:
                assert (vw.seg.path / f).read_bytes() == (vb.seg.path / f).read_bytes(), f
            lw, lb = (dict(zip(v.seg.words, np.load(v.seg.path / "lexicon.npy").tolist())) for v in (vw, vb))
            assert lw == lb
    finally:
        iw.close()
        ib.close()
    s = index_articles([_copy(a, 2) for a in arts[:3]], b, emb, progress=False, second=second,
                       source_name="memory:add", checkpoint=0)
    assert s.added == 3 and s.segments == 3
    assert check_generation(b, s.generation) is None


def test_layout_leaves_no_merge_due():
    from types import SimpleNamespace

    for n in (300_000, 1_000_000):
        sizes = layout(n)
        assert sum(sizes) == n and max(sizes) <= 120_000
        assert plan_merge([SimpleNamespace(live_chunks=s, seg=SimpleNamespace(ids=()), ref=SimpleNamespace(dead=()))
                           for s in sizes]) == []
