"""Segments: one or many score alike; tombstones; merges and `rag compact`; resumable runs; the format before them."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import HELPERS, ROOT, FakeEmbedder

from rag import AnswerConfig, ask
from rag.index import CURRENT, Index, compact_index, index_articles, index_stream, merge, remove_articles
from rag.index.build import Progress
from rag.ingest import iter_articles
from rag.models import registry
from rag.types import Article

CORPUS = ROOT / "eval" / "corpus" / "cmrc2018.jsonl"


def _articles(n: int) -> list[Article]:
    out = []
    with open(CORPUS, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out.append(Article(d["title"], d["text"], url=d["url"], published=f"2024-01-{len(out) % 28 + 1:02d}"))
            if len(out) == n:
                return out
    return out


ARTICLES = _articles(40)
QUESTIONS = ["战国无双3是由谁开发的？", "这一作品以哪三大故事为主轴？", "上海的人口是多少？", "足球比赛在哪里举行",
             "电影的导演是谁", "该公司成立于哪一年？"]


def _build(root: Path, batches: list[list[Article]], **kw) -> None:
    for n, batch in enumerate(batches):
        index_articles(batch, root, FakeEmbedder(), progress=False, second=None, source_name=f"memory:b{n}",
                       chunk_size=200, chunk_overlap=20, **kw)


def _results(idx: Index, emb: FakeEmbedder) -> list:
    out = []
    for q in QUESTIONS:
        out.append(("lexical", idx.search_lexical(q, 10)))
        out.append(("dense", idx.search_dense(emb.embed_queries([q])[0], 10)))
        out.append(("bound", idx.lexical_bound(q, absent=True)))
        out.append(("df", idx.doc_freq(idx.tokens(q))))
    out.append(("articles", idx.list_articles(0, 100)))
    out.append(("ids", idx.article_ids()))
    return out


@pytest.fixture(scope="module")
def one_and_many(tmp_path_factory):
    base = tmp_path_factory.mktemp("segments")
    one, many = base / "one", base / "many"
    _build(one, [ARTICLES])
    _build(many, [ARTICLES[i : i + 2] for i in range(0, len(ARTICLES), 2)])  # 20 runs of 2 articles
    return one, many


def test_one_segment_and_twenty_give_the_same_passages_and_scores(one_and_many):
    one, many = one_and_many
    a, b = Index.open(one), Index.open(many)
    try:
        assert len(a.views) == 1 and len(b.views) > 1  # the tiered policy merged some of the 20, not all
        assert (a.manifest.articles, a.manifest.chunks) == (b.manifest.articles, b.manifest.chunks)
        # chunk ids differ between the two builds only by numbering; compare through the chunks' text
        def named(idx, res):
            out = []
            for kind, r in res:
                if kind in ("lexical", "dense"):
                    ps = {p.chunk_id: (p.article_id, p.start) for p in idx.passages([c for c, _ in r])}
                    r = [(ps[c], s) for c, s in r]
                out.append((kind, r))
            return out

        ra, rb = named(a, _results(a, FakeEmbedder())), named(b, _results(b, FakeEmbedder()))
        assert ra == rb  # exact: same order, same float scores
        assert any(r for k, r in ra if k == "lexical")
    finally:
        a.close()
        b.close()


def test_answers_are_the_same_before_and_after_compact(tmp_path):
    root = tmp_path / "idx"
    _build(root, [ARTICLES[i : i + 8] for i in range(0, len(ARTICLES), 8)])
    gone = [ARTICLES[i].id for i in (1, 9, 10, 17, 30)]
    assert remove_articles(root, gone)[0] == gone  # tombstones in four segments
    emb = FakeEmbedder()
    before = Index.open(root)
    segs, dead = len(before.views), sum(len(v.ref.dead) for v in before.views)
    res_before = _results(before, emb)
    before.close()
    assert segs == 5 and dead == 5
    line = compact_index(root)
    assert "merged into 1" in line
    after = Index.open(root)
    try:
        assert len(after.views) == 1 and not after.views[0].ref.dead
        assert _results(after, emb) == res_before  # ids are kept by merges: the very same results
        assert after.manifest.articles == len(ARTICLES) - 5
    finally:
        after.close()
    assert compact_index(root).endswith("nothing to compact")


def test_ask_answers_alike_from_one_segment_and_many(one_and_many, monkeypatch):
    one, many = one_and_many
    emb = FakeEmbedder()
    monkeypatch.setitem(registry.SHARED, "fake-64", emb)
    for q in QUESTIONS[:3]:
        a = ask(q, index=one, config=AnswerConfig(reader="none"))
        b = ask(q, index=many, config=AnswerConfig(reader="none"))
        assert a.text == b.text and [c.url for c in a.citations] == [c.url for c in b.citations]


def test_updates_and_deletes_are_tombstones_until_a_merge(tmp_path):
    root = tmp_path / "idx"
    _build(root, [ARTICLES[:10]])
    seg = Index.open(root).views[0].seg.path
    changed = Article(ARTICLES[0].title, ARTICLES[0].text + "\n\n新增的一段：编辑部更正了日期。", url=ARTICLES[0].url)
    s = index_articles([changed] + ARTICLES[1:9], root, FakeEmbedder(), progress=False, second=None,
                       source_name="memory:b0")
    assert (s.updated, s.removed) == (1, 1)  # ARTICLES[9] left its only source
    idx = Index.open(root)
    try:
        assert len(idx.views) == 2 and idx.views[0].seg.path == seg  # the first segment is not rewritten
        assert set(idx.views[0].ref.dead) == {ARTICLES[0].id, ARTICLES[9].id}
        assert idx.manifest.articles == 9 and ARTICLES[9].id not in idx.article_ids()
        assert "编辑部更正" in idx.article(ARTICLES[0].id).text
        hits = idx.search_lexical("编辑部更正了日期", 20)
        arts = {p.article_id for p in idx.passages([c for c, _ in hits])}
        assert ARTICLES[9].id not in arts
        old_chunks = set(idx.views[0].dead_chunk_ids.tolist())
        assert old_chunks and not old_chunks & {c for c, _ in hits}
        assert not old_chunks & {c for c, _ in idx.search_dense(FakeEmbedder().embed_queries([ARTICLES[9].text])[0], 50)}
        assert idx.list_articles(0, 100)[0] == 9
    finally:
        idx.close()
    assert seg.exists()


def test_merge_policy_is_tiered():
    class V:
        def __init__(self, n, dead=0):
            self.live_chunks, self.ref = n - dead, type("R", (), {"dead": ("x",) if dead else ()})()
            self.seg = type("S", (), {"ids": np.arange(n)})()

    assert merge.plan_merge([V(10)] * 9) == []
    assert merge.plan_merge([V(10)] * 10) == list(range(10))
    big = [V(merge.FLOOR * 5)] * 9
    assert merge.plan_merge(big + [V(10)] * 3) == []  # each tier below its FACTOR
    assert merge.plan_merge([V(100, dead=60)]) == [0]  # mostly deleted: rewritten alone


def test_checkpoints_publish_during_a_run_and_a_rerun_resumes(tmp_path):
    root = tmp_path / "idx"
    stream = [("memory:feed", ARTICLES[:20], [])]
    s = index_stream(stream, root, FakeEmbedder(), progress=False, second=None, checkpoint=5, chunk_size=200,
                     chunk_overlap=20)
    assert s.checkpoints >= 3 and s.total_articles == 20
    m = json.loads((root / (root / CURRENT).read_text().strip() / "manifest.json").read_text())
    assert "partial_run" not in m  # the run finished: its last generation is not marked


def _kill_run(root: Path, src: Path, after_gens: int) -> None:
    """Start an indexing run that publishes a checkpoint every 3 chunks, SIGKILL it once `after_gens` generations
    are published (or while it saves one)."""
    p = subprocess.Popen([sys.executable, str(HELPERS / "index_worker.py"), str(root), str(src), "--checkpoint", "3",
                          "--embed-delay", "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            gens = [g for g in root.glob("gen-*")] if root.exists() else []
            n = max((int(g.name[4:]) for g in gens), default=0)
            if n >= after_gens:
                break
            time.sleep(0.01)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.communicate()


@pytest.mark.parametrize("after_gens", [1, 3, 6])
def test_a_run_killed_at_any_point_resumes_and_ends_with_every_article_once(tmp_path, after_gens):
    src = tmp_path / "feed"
    src.mkdir()
    for i, a in enumerate(ARTICLES[:16]):
        (src / f"{i:02d}.jsonl").write_text(json.dumps({"title": a.title, "text": a.text, "url": a.url},
                                                       ensure_ascii=False) + "\n", encoding="utf-8")
    root = tmp_path / "idx"
    _kill_run(root, src, after_gens)
    kept = Index.open(root).manifest.articles if (root / CURRENT).exists() else 0
    s = subprocess.run([sys.executable, str(HELPERS / "index_worker.py"), str(root), str(src), "--checkpoint", "3"],
                       capture_output=True, text=True, timeout=300)
    assert s.returncode == 0, s.stderr
    idx = Index.open(root)
    try:
        assert idx.manifest.articles == 16 and sorted(idx.article_ids()) == sorted(a.id for a in ARTICLES[:16])
        rows = idx.sql("SELECT article_id, ordinal FROM chunks")
        live = [(a, o) for a, o in rows if a not in {x for v in idx.views for x in v.ref.dead}]
        assert len(live) == len(set(live)) == idx.manifest.chunks  # no chunk twice
        assert kept <= 16
    finally:
        idx.close()


def test_the_summary_says_how_much_was_resumed(tmp_path):
    src = tmp_path / "feed"
    src.mkdir()
    for i, a in enumerate(ARTICLES[:12]):
        (src / f"{i:02d}.txt").write_text(f"{a.title}\n\n{a.text}\n", encoding="utf-8")
    root = tmp_path / "idx"
    stream = list(iter_articles([str(src)]))

    class Stop(Exception):
        pass

    def stopping():
        for n, item in enumerate(stream):
            if n == 8:
                raise Stop  # the run dies after 8 files (as a kill would, after its checkpoints)
            yield item

    with pytest.raises(Stop):
        index_stream(stopping(), root, FakeEmbedder(), progress=False, second=None, checkpoint=2)
    kept = Index.open(root)
    n_kept = kept.manifest.articles
    kept.close()
    assert 0 < n_kept < 12
    s = index_stream(iter(stream), root, FakeEmbedder(), progress=False, second=None, checkpoint=2)
    assert s.resumed == n_kept and s.added == 12 - n_kept and s.total_articles == 12
    assert f"resumed an interrupted run: {n_kept} articles" in s.render()
    again = index_stream(iter(stream), root, FakeEmbedder(), progress=False, second=None, checkpoint=2)
    assert again.resumed == 0 and again.skipped == 12


def test_readers_keep_their_generation_through_merges(tmp_path):
    root = tmp_path / "idx"
    _build(root, [ARTICLES[:20]])
    emb = FakeEmbedder()
    reader = Index.open(root)
    want = _results(reader, emb)
    errors, done = [], threading.Event()

    def read():
        while not done.is_set():
            try:
                assert _results(reader, emb) == want
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    t = threading.Thread(target=read)
    t.start()
    try:
        for i in range(20, 40, 2):
            _build(root, [ARTICLES[i : i + 2]])
        compact_index(root)
        _build(root, [ARTICLES[:1]])  # the reader's segment is gone from disk by now
    finally:
        done.set()
        t.join()
    assert not errors, errors[0]
    assert not reader.views[0].seg.path.exists()
    assert _results(reader, emb) == want
    reader.close()


def test_an_index_of_the_format_before_segments_opens_and_is_upgraded_by_the_next_write(tmp_path):
    root = tmp_path / "idx"
    shutil.copytree(ROOT / "tests" / "data" / "index-v2", root)
    idx = Index.open(root)
    try:
        assert idx.legacy and idx.manifest.articles == 3
        hits = idx.search_lexical("大熊猫 成都", 3)
        assert idx.passages([hits[0][0]])[0].title == "大熊猫在成都诞生"
        assert "熊猫" in idx.lexicon().words or idx.lexicon().words
    finally:
        idx.close()
    s = index_articles([Article("新文章", "今天发布了一篇新的文章。", url="https://news.example/new")], root,
                       FakeEmbedder(), progress=False, source_name="memory:new")
    assert any("upgraded from format v2" in n for n in s.notes), s.notes
    idx = Index.open(root)
    try:
        assert not idx.legacy and idx.manifest.articles == 4 and len(idx.views) == 2
        hits = idx.search_lexical("大熊猫 成都", 3)
        assert idx.passages([hits[0][0]])[0].title == "大熊猫在成都诞生"
    finally:
        idx.close()


def test_progress_lines_without_a_terminal(capsys):
    import io

    out = io.StringIO()
    counts = dict(added=3, updated=0, skipped=1, resplit=0, chunks=12)
    p = Progress(True, 10, counts, every=0.0, stream=out)
    p.update(2)
    p.close()
    line = out.getvalue().strip().splitlines()[-1]
    assert line.startswith("indexing: 2/10 files, 4 articles, 12 chunks, ") and "chunks/s" in line and "left" in line


def test_a_searcher_lets_go_of_the_segments_a_merge_replaced(tmp_path):
    """A server follows CURRENT: after a compaction it holds the merged segment only, not the ones it replaced."""
    import gc

    from rag.index import segment
    from rag.retrieve.searcher import Searcher

    root = tmp_path / "idx"
    _build(root, [ARTICLES[i : i + 5] for i in range(0, 15, 5)])
    s = Searcher(root, embedder=FakeEmbedder())
    before = {k[0] for k in segment._OPEN if k[0].startswith(str(root.resolve()))}
    assert len(before) == 3
    compact_index(root)
    s.refresh()
    gc.collect()
    after = {k[0] for k in segment._OPEN if k[0].startswith(str(root.resolve()))}
    assert len(after) == 1 and not after & before
