"""Indexer: incremental, additive, change-aware (embedding cache by chunk text), prune, duplicates, bad input,
embedder mismatch, rebuild, the writer lock, failures mid-run, and the sentence-transformers backend end to end."""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import SEEDS, FakeEmbedder

import rag.errors
import rag.index
import rag.index.build
from rag.errors import IndexLockedError, IndexMismatchError
from rag.index import CURRENT, Index, IndexSummary, WriteLock, index_articles, index_paths
from rag.types import Article


def para(n: int, words: str = "这是一段很长的中文新闻内容，用来检查增量索引只重新计算改动过的部分。") -> str:
    """A paragraph of ~230 chars, so that at chunk size 300 each paragraph is (about) one chunk."""
    return f"第{n}段。" + words * 7


def write_article(path: Path, title: str, paragraphs: list[str], url: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = f"---\ntitle: {title}\nurl: {url}\n---\n" if url else f"{title}\n\n"
    path.write_text(head + "\n\n".join(paragraphs), encoding="utf-8")
    return path


def state(root: Path) -> tuple:
    """What a reader would see: CURRENT, the generation folders and their file sizes."""
    files = sorted((p.relative_to(root).as_posix(), p.stat().st_size) for p in root.rglob("*")
                   if p.is_file() and p.name != "LOCK")
    return (root / CURRENT).read_text(), files


def titles(root: Path) -> set[str]:
    idx = Index.open(root)
    try:
        return {idx.article(a).title for a in idx.article_ids()}
    finally:
        idx.close()


def test_second_run_embeds_nothing(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    first = index_paths([SEEDS], root, fake_embedder, progress=False)
    assert isinstance(first, IndexSummary)
    assert (first.added, first.updated, first.skipped, first.failed, first.removed) == (1, 0, 0, 0, 0)
    assert first.chunks == first.embedded == first.total_chunks > 0
    assert first.total_articles == 1 and first.generation == "gen-000001" and first.errors == ()
    calls = fake_embedder.calls
    assert first.sentences_embedded > first.chunks  # every sentence is stored with its own vector
    assert calls == first.embedded + first.sentences_embedded + first.words_embedded > first.sentences_embedded

    second = index_paths([SEEDS], root, fake_embedder, progress=False)
    assert (second.added, second.updated, second.skipped, second.failed, second.removed) == (0, 0, 1, 0, 0)
    assert (second.chunks, second.embedded, second.sentences_embedded) == (0, 0, 0)
    assert second.generation is None  # nothing changed: no new generation published
    assert (second.total_articles, second.total_chunks) == (1, first.total_chunks)
    assert fake_embedder.calls == calls
    assert "0 embedded" in second.render() and "1 unchanged" in second.render()
    assert (root / CURRENT).read_text().strip() == "gen-000001"


def test_incremental_and_additive(tmp_path, fake_embedder):
    a, b = tmp_path / "A", tmp_path / "B"
    write_article(a / "one.txt", "甲文章", [para(1), para(2)])
    write_article(a / "two.txt", "乙文章", [para(3, "另一篇关于体育比赛的报道，球队赢得了冠军。")])
    write_article(b / "three.txt", "丙文章", [para(4, "第三篇关于科技公司的新闻，发布了新产品。")])
    root = tmp_path / "idx"
    s1 = index_paths([a], root, fake_embedder, progress=False)
    assert (s1.added, s1.total_articles) == (2, 2)
    s2 = index_paths([b], root, fake_embedder, progress=False)
    assert (s2.added, s2.skipped, s2.removed, s2.total_articles) == (1, 0, 0, 3)
    assert titles(root) == {"甲文章", "乙文章", "丙文章"}
    assert s2.total_chunks == s1.total_chunks + s2.chunks


@pytest.mark.parametrize("url", ["https://news.example/multi", ""], ids=["with-url", "without-url"])
def test_changed_file_reembeds_only_changed_chunks(tmp_path, fake_embedder, url):
    src = tmp_path / "src" / "multi.md"
    paragraphs = [para(i) for i in range(8)]
    write_article(src, "多段文章", paragraphs, url)
    root = tmp_path / "idx"
    # chunk size 300: one paragraph per chunk (with the 500 default, chunks merge paragraphs and an edit that
    # changes a paragraph's length moves the boundaries of all later chunks)
    first = index_paths([src.parent], root, fake_embedder, progress=False, chunk_size=300, chunk_overlap=60)
    assert first.total_chunks >= 6
    paragraphs[3] = "第3段。这一段改写过，内容完全不同：市政府宣布地铁延长运营时间。"
    write_article(src, "多段文章", paragraphs, url)
    calls = fake_embedder.calls
    second = index_paths([src.parent], root, fake_embedder, progress=False)
    if url:  # same id: an update in place
        assert (second.added, second.updated, second.removed) == (0, 1, 0)
    else:  # the id comes from the content: the new version replaces the old one
        assert (second.added, second.updated, second.removed) == (1, 0, 1)
    assert second.total_articles == 1
    assert 0 < second.embedded < second.chunks, second
    assert second.embedded <= 3  # the changed paragraph and at most its neighbours' overlap
    assert 0 < second.sentences_embedded <= 2  # only the rewritten sentences of that paragraph
    assert fake_embedder.calls - calls == second.embedded + second.sentences_embedded + second.words_embedded
    idx = Index.open(root)
    (aid,) = idx.article_ids()
    assert "地铁" in idx.article(aid).text
    # cached vectors are the right ones: every stored vector equals a fresh embedding of its chunk text
    ids = idx.chunk_ids  # the live chunks, across the segments of both runs
    texts = {p.chunk_id: p.text for p in idx.passages(ids.tolist())}
    fresh = FakeEmbedder().embed_documents([texts[int(i)] for i in ids])
    vecs = np.stack([idx.dense_scores(axis, ids) for axis in np.eye(64, dtype=np.float32)], axis=1)
    assert np.allclose(vecs, fresh, atol=1e-6)
    idx.close()


def test_prune_drops_articles_whose_files_are_gone(tmp_path, fake_embedder):
    src = tmp_path / "src"
    keep = write_article(src / "keep.txt", "保留的文章", [para(1)])
    gone = write_article(src / "gone.txt", "删除的文章", [para(2, "这篇文章的文件之后会被删除，索引应当忘记它。")])
    root = tmp_path / "idx"
    assert index_paths([src], root, fake_embedder, progress=False).total_articles == 2
    gone.unlink()
    no_prune = index_paths([src], root, fake_embedder, progress=False)
    assert (no_prune.removed, no_prune.total_articles) == (0, 2)  # without --prune nothing is forgotten
    pruned = index_paths([src], root, fake_embedder, progress=False, prune=True)
    assert (pruned.removed, pruned.skipped, pruned.total_articles) == (1, 1, 1)
    assert titles(root) == {"保留的文章"}
    # prune with no paths at all only forgets missing files
    assert keep.exists()
    again = index_paths([], root, fake_embedder, progress=False, prune=True)
    assert (again.removed, again.total_articles) == (0, 1)


def test_identical_article_under_two_names_is_stored_once(tmp_path, fake_embedder):
    src = tmp_path / "src"
    first = write_article(src / "a.txt", "同一篇文章", [para(1), para(2)])
    second = src / "b.txt"
    shutil.copy(first, second)
    root = tmp_path / "idx"
    s = index_paths([src], root, fake_embedder, progress=False)
    assert (s.added, s.skipped, s.total_articles) == (1, 1, 1)
    assert s.embedded == s.chunks == s.total_chunks  # embedded once
    first.unlink()
    p = index_paths([src], root, fake_embedder, progress=False, prune=True)
    assert (p.removed, p.total_articles, p.total_chunks) == (0, 1, s.total_chunks)  # b.txt still holds it
    assert titles(root) == {"同一篇文章"}
    second.unlink()
    p2 = index_paths([src], root, fake_embedder, progress=False, prune=True)
    assert (p2.removed, p2.total_articles) == (1, 0)


def test_jsonl_with_bad_lines(tmp_path, fake_embedder):
    f = tmp_path / "src" / "feed.jsonl"
    f.parent.mkdir()
    lines = [
        json.dumps({"title": "好的一条", "url": "https://news.example/j1", "text": "北京今天下雨。"}, ensure_ascii=False),
        "{not json",
        json.dumps([1, 2]),
        "",
        json.dumps({"title": "没有正文", "text": ""}, ensure_ascii=False),
        json.dumps({"title": "好的第二条", "url": "https://news.example/j2", "text": "上海今天晴天。"}, ensure_ascii=False),
        json.dumps({"title": 5, "text": "标题不是字符串"}, ensure_ascii=False),
    ]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    s = index_paths([f.parent], tmp_path / "idx", fake_embedder, progress=False)
    assert (s.added, s.total_articles) == (2, 2)
    assert s.failed == 4 and len(s.errors) == 4
    for line in (2, 3, 5, 7):
        assert any(e.startswith(f"{f}:{line}: ") for e in s.errors), s.errors
    assert "not valid JSON" in s.errors[0]
    assert f"{f}:2: " in s.render()
    assert titles(tmp_path / "idx") == {"好的一条", "好的第二条"}


def test_batch_with_bad_files_indexes_the_good_ones(tmp_path, fake_embedder):
    src = tmp_path / "src"
    write_article(src / "good1.txt", "好文章一", [para(1)])
    write_article(src / "good2.md", "好文章二", [para(2, "第二篇正常的文章，讲述一场音乐会。")])
    (src / "empty.txt").write_bytes(b"")
    (src / "binary.txt").write_bytes(bytes(range(256)) * 8)
    write_article(src / "huge.txt", "太大的文章", [para(3)] * 40)
    (src / "ignored.pdf").write_bytes(b"%PDF-1.4")  # unsupported suffix inside a folder: skipped silently
    s = index_paths([src], tmp_path / "idx", fake_embedder, progress=False, max_bytes=5_000)
    assert (s.added, s.failed, s.total_articles) == (2, 3, 2)
    errs = "\n".join(s.errors)
    assert f"{src / 'empty.txt'}: no text" in errs
    assert f"{src / 'binary.txt'}: binary or undecodable" in errs
    assert f"{src / 'huge.txt'}: file too large" in errs
    assert "ignored.pdf" not in errs
    assert titles(tmp_path / "idx") == {"好文章一", "好文章二"}


def test_missing_path_is_an_error_not_a_crash(tmp_path, fake_embedder):
    s = index_paths([SEEDS, tmp_path / "nope.txt"], tmp_path / "idx", fake_embedder, progress=False)
    assert (s.added, s.failed) == (1, 1)
    assert any(str(tmp_path / "nope.txt") in e for e in s.errors)


def test_other_embedder_is_refused_and_index_untouched(seed_index, tmp_path):
    before = state(seed_index)
    other = FakeEmbedder(dim=32, name="fake-32")
    write_article(tmp_path / "more" / "x.txt", "新文章", [para(9)])
    with pytest.raises(IndexMismatchError) as err:
        index_paths([tmp_path / "more"], seed_index, other, progress=False)
    assert "'fake-64'" in str(err.value) and "'fake-32'" in str(err.value) and "--rebuild" in str(err.value)
    assert other.calls == 0
    assert state(seed_index) == before
    assert not list(seed_index.glob(".tmp-gen-*"))
    Index.open(seed_index, embedder_name="fake-64").close()


def test_rebuild_replaces(seed_index, tmp_path, fake_embedder):
    write_article(tmp_path / "new" / "x.txt", "重建后的文章", [para(5)])
    s = index_paths([tmp_path / "new"], seed_index, fake_embedder, progress=False, rebuild=True)
    assert (s.added, s.total_articles) == (1, 1)
    assert titles(seed_index) == {"重建后的文章"}
    # --rebuild may also switch embedders
    other = FakeEmbedder(dim=32, name="fake-32")
    s2 = index_paths([tmp_path / "new"], seed_index, other, progress=False, rebuild=True)
    assert s2.embedded == s2.chunks > 0  # a new embedder: nothing reused
    assert Index.open(seed_index).manifest.embedder == "fake-32"


def test_writer_lock(seed_index, fake_embedder):
    calls = fake_embedder.calls
    with WriteLock(seed_index):
        with pytest.raises(IndexLockedError, match="another `rag index` is writing"):
            index_paths([SEEDS], seed_index, fake_embedder, progress=False, wait=0)
    assert fake_embedder.calls == calls
    # released: the next writer goes through
    assert index_paths([SEEDS], seed_index, fake_embedder, progress=False, wait=0).skipped == 1


class FailingEmbedder(FakeEmbedder):
    """Raises on its n-th embed_documents call."""

    def __init__(self, fail_on: int):
        super().__init__()
        self.batches, self.fail_on = 0, fail_on

    def embed_documents(self, texts):
        self.batches += 1
        if self.batches == self.fail_on:
            raise RuntimeError("embedder blew up")
        return super().embed_documents(texts)


def test_failure_mid_run_keeps_the_previous_generation(seed_index, tmp_path, monkeypatch):
    monkeypatch.setattr(rag.index.build, "EMBED_BATCH", 2)  # small batches: several embed calls per run
    before = state(seed_index)
    old = Index.open(seed_index)
    src = tmp_path / "many"
    for i in range(6):
        write_article(src / f"{i}.txt", f"第{i}篇", [para(i, f"关于第{i}个城市的新闻报道，内容互不相同。")])
    bad = FailingEmbedder(fail_on=2)
    with pytest.raises(RuntimeError, match="blew up"):
        index_paths([src], seed_index, bad, progress=False)
    assert bad.batches == 2
    assert state(seed_index) == before  # nothing published, temp generation removed
    assert not list(seed_index.glob(".tmp-gen-*"))
    reopened = Index.open(seed_index)
    assert reopened.generation == old.generation and reopened.manifest.articles == 1
    assert reopened.passages([1])[0].text == old.passages([1])[0].text
    old.close()
    reopened.close()
    # a leftover temp generation (e.g. from a killed run) is ignored and cleaned by the next successful run
    (seed_index / ".tmp-gen-leftover").mkdir()
    (seed_index / ".tmp-gen-leftover" / "junk").write_text("x")
    good = index_paths([src], seed_index, FakeEmbedder(), progress=False)
    assert (good.added, good.total_articles) == (6, 7)
    assert not list(seed_index.glob(".tmp-gen-*"))


def test_index_articles_in_memory(tmp_path, fake_embedder):
    arts = [Article("内存文章", "从内存中索引的文章正文。", url="https://news.example/mem")]
    s = index_articles(arts, tmp_path / "idx", fake_embedder, progress=False, source_name="memory:test")
    assert (s.added, s.total_articles) == (1, 1)
    again = index_articles(arts, tmp_path / "idx", fake_embedder, progress=False, source_name="memory:test")
    assert (again.skipped, again.embedded, again.generation) == (1, 0, None)


# ---------------------------------------------------------------- sentence-transformers backend, end to end


@pytest.mark.slow
def test_sentence_transformers_backend_end_to_end(tiny_st_model, tmp_path):
    from rag.models import get_embedder
    from rag.pipeline import retrieve
    from rag.retrieve import searcher

    emb = get_embedder(f"st:{tiny_st_model}")
    assert emb.name == f"st:{tiny_st_model}" and emb.dim == 32
    root = tmp_path / "st-idx"
    s = index_paths([SEEDS], root, emb, progress=False)
    assert (s.added, s.failed) == (1, 0) and s.embedded == s.total_chunks > 0
    idx = Index.open(root, embedder_name=emb.name)
    assert (idx.manifest.embedder, idx.manifest.dim) == (emb.name, 32)
    idx.close()
    # the spec string works too (the indexer builds the embedder itself) and reuses every vector
    again = index_paths([SEEDS], root, f"st:{tiny_st_model}", progress=False)
    assert (again.skipped, again.embedded) == (1, 0)

    passages = retrieve("布林肯星期二前往哪个国家？", searcher(root, emb), k=3)
    assert 1 <= len(passages) <= 3
    assert all(p.title == "布林肯前往危地马拉出席地区移民会议" for p in passages)
    assert any("危地马拉" in p.text for p in passages)

    with pytest.raises(IndexMismatchError, match="st:"):
        Index.open(root, embedder_name="use")
    with pytest.raises(IndexMismatchError):
        index_paths([SEEDS], root, "use", progress=False)


def test_a_sentence_repeated_across_batches_is_embedded_once(tmp_path, fake_embedder, monkeypatch):
    from rag.index import build as indexer

    monkeypatch.setattr(indexer, "EMBED_BATCH", 1)  # one article per batch
    arts = [Article(title=f"新闻{i}", text=f"第{i}条新闻的正文说了一件不同的事情。美国之音报道。", url=f"https://n.example/{i}")
            for i in range(4)]
    s = index_articles(arts, tmp_path / "idx", fake_embedder, progress=False)
    assert s.sentences_embedded == 4 + 1  # four different sentences and the shared boilerplate once


# ---------------------------------------------------------------- sentence splitter versions


def stored_spans(root: Path) -> dict[str, list[tuple[int, int]]]:
    idx = Index.open(root)
    try:
        rows = idx.sql("SELECT article_id, start, end_ FROM sentences ORDER BY article_id, start")
        out: dict[str, list[tuple[int, int]]] = {}
        for aid, s, e in rows:
            out.setdefault(aid, []).append((s, e))
        return out
    finally:
        idx.close()


def manifest(root: Path) -> dict:
    gen = (root / CURRENT).read_text().strip()
    return json.loads((root / gen / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture
def old_split_index(tmp_path, fake_embedder, monkeypatch):
    """Two articles indexed as if by splitter v1 (here: one sentence per paragraph), the manifest saying so."""
    a = write_article(tmp_path / "docs" / "a.md", "甲", ["第一句。第二句（2024年5月7日）。第三句？", para(1)])
    b = write_article(tmp_path / "docs" / "b.md", "乙", ["另一篇。还有一句！", para(2)])
    root = tmp_path / "idx"
    with monkeypatch.context() as m:
        m.setattr(rag.index.build, "split_sentences", lambda text, *a, **k: [
            (i, i + len(p)) for i, p in ((text.index(p), p) for p in text.split("\n\n")) if p.strip()])
        m.setattr(rag.index.writer, "SPLITTER_VERSION", 1)  # the version of the software that built it
        m.setattr(rag.index.build, "SPLITTER_VERSION", 1)
        index_paths([a, b], root, fake_embedder, progress=False)
    assert manifest(root)["splitter"] == 1
    return root, a, b


def test_new_index_records_the_splitter_version(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    index_paths([SEEDS], root, fake_embedder, progress=False)
    assert manifest(root)["splitter"] == rag.index.build.SPLITTER_VERSION >= 2


@pytest.mark.parametrize("field", ["splitter", "tokens"])
def test_manifest_without_a_version_reads_as_the_first_and_a_bad_one_is_named(tmp_path, fake_embedder, field):
    root = tmp_path / "idx"
    index_paths([SEEDS], root, fake_embedder, progress=False)
    path = root / (root / CURRENT).read_text().strip() / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    del data[field]
    path.write_text(json.dumps(data), encoding="utf-8")
    idx = Index.open(root)
    assert getattr(idx.manifest, field) == 1
    idx.close()
    data[field] = 0
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(rag.errors.CorruptIndexError, match=f"{field} must be a positive integer"):
        Index.open(root)


def test_an_index_split_by_an_older_splitter_is_split_again(old_split_index, fake_embedder):
    from rag.ingest import split_sentences

    root, a, b = old_split_index
    idx = Index.open(root)
    texts = {aid: idx.article(aid).text for aid in idx.article_ids()}
    idx.close()
    assert stored_spans(root) != {aid: split_sentences(t) for aid, t in texts.items()}
    calls = fake_embedder.calls
    run = index_paths([a, b], root, fake_embedder, progress=False)
    assert (run.resplit, run.added, run.updated, run.skipped) == (2, 0, 0, 0) and run.notes == ()
    assert run.embedded == 0  # the chunks did not change: their vectors come from the cache
    assert fake_embedder.calls - calls == run.sentences_embedded > 0  # only the new sentences are embedded
    assert stored_spans(root) == {aid: split_sentences(t) for aid, t in texts.items()}
    assert manifest(root)["splitter"] == rag.index.build.SPLITTER_VERSION
    assert "2 re-split" in run.render()
    again = index_paths([a, b], root, fake_embedder, progress=False)
    assert (again.resplit, again.skipped, again.sentences_embedded) == (0, 2, 0)


def test_a_partial_run_keeps_the_old_version_and_says_so(old_split_index, fake_embedder):
    root, a, b = old_split_index
    run = index_paths([a], root, fake_embedder, progress=False)
    assert run.resplit == 1 and len(run.notes) == 1
    assert "1 articles keep sentences split by an older version (v1" in run.notes[0] and "--rebuild" in run.notes[0]
    assert "note: 1 articles keep" in run.render()
    assert manifest(root)["splitter"] == 1  # not every article follows the new splitter yet
    full = index_paths([a, b], root, fake_embedder, progress=False)
    assert full.resplit == 2 and full.notes == () and manifest(root)["splitter"] == rag.index.build.SPLITTER_VERSION


ACCENTED = Article(title="Guatemala", text="Bernardo Arévalo met the delegation in the Palacio Nacional de la Cultura. "
                   "The talks in Łódź were about trade.", url="https://news.example/arevalo")
OTHER = Article(title="Weather", text="Rain is expected across the region on Tuesday.", url="https://news.example/rain")


def test_accented_names_match_their_plain_spelling(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    index_articles([ACCENTED, OTHER], root, fake_embedder, progress=False)
    assert manifest(root)["tokens"] == rag.lang.TOKEN_VERSION >= 2
    idx = Index.open(root)
    try:
        for query in ("Arevalo", "Arévalo", "ARÉVALO", "Lodz"):
            hits = idx.search_lexical(query, 5)
            assert [idx.passages([c])[0].article_id for c, _ in hits] == [ACCENTED.id], query
        assert idx.search_lexical("valo", 5) == []  # no longer a fragment of the name
    finally:
        idx.close()


def test_an_index_of_an_older_token_version_is_tokenized_again(tmp_path, fake_embedder, monkeypatch):
    root = tmp_path / "idx"
    with monkeypatch.context() as m:
        m.setattr(rag.index.writer, "TOKEN_VERSION", 1)  # built by the software before accents were folded
        index_articles([ACCENTED, OTHER], root, fake_embedder, progress=False)
    assert manifest(root)["tokens"] == 1
    idx = Index.open(root)
    assert idx.search_lexical("Arevalo", 5) == []  # version 1 split "arévalo" into "ar" + "valo"
    assert len(idx.search_lexical("Arévalo", 5)) == 1  # its own queries still match as they were made
    idx.close()
    calls = fake_embedder.calls
    run = index_articles([ACCENTED, OTHER], root, fake_embedder, progress=False)  # the same articles again
    assert run.skipped == 2 and fake_embedder.calls == calls and run.embedded == 0  # nothing embedded again
    assert any("BM25 tokens of 2 stored chunks made again (token version 1 -> 2" in n for n in run.notes)
    assert manifest(root)["tokens"] == rag.lang.TOKEN_VERSION
    idx = Index.open(root)
    try:
        assert idx.manifest.articles == 2 and len(idx.search_lexical("Arevalo", 5)) == 1
    finally:
        idx.close()


# ---------------------------------------------------------------- issue #25: bad lines, no files, names, permissions


def _jsonl(path: Path, rows: list[dict | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                    encoding="utf-8")
    return path


def _news(i: int) -> dict:
    return {"title": f"第{i}号新闻", "url": f"https://news.example/{i}", "text": f"第{i}篇文章。北京今天下雨了，气温是{i}度。"}


def test_a_bad_jsonl_line_keeps_the_last_good_version(tmp_path, fake_embedder):
    """A line edited into invalid JSON cannot be read, so no one knows which article it held: every article of the
    file that no good line replaced is kept, and the summary says so (before the fix: '1 failed, 1 removed')."""
    feed = _jsonl(tmp_path / "src" / "feed.jsonl", [_news(i) for i in range(5)])
    root = tmp_path / "idx"
    assert index_paths([feed], root, fake_embedder, progress=False).total_articles == 5
    rows: list = [_news(i) for i in range(5)]
    rows[2], rows[4] = '{"title": "第2号新闻", "text": 北京', "[not, json"
    rows[0] = {**_news(0), "text": "第0篇文章。改写后：上海今天晴天。"}  # a good line updates its article
    _jsonl(feed, rows)
    s = index_paths([feed], root, fake_embedder, progress=False)
    assert (s.updated, s.failed, s.removed, s.total_articles) == (1, 2, 0, 5), s.render()
    assert s.notes == (f"{feed}: 2 articles kept from the last good version: lines 3, 5 could not be read",)
    assert f"note: {feed}: 2 articles kept" in s.render()
    assert titles(root) == {f"第{i}号新闻" for i in range(5)}
    idx = Index.open(root)
    assert {idx.article(a).text for a in idx.article_ids()} >= {"第2篇文章。北京今天下雨了，气温是2度。",
                                                               "第0篇文章。改写后：上海今天晴天。"}
    idx.close()
    # the lines fixed, one article taken out on purpose: now the file is read whole and the absent one goes
    _jsonl(feed, [_news(i) for i in range(4)])
    s = index_paths([feed], root, fake_embedder, progress=False)
    assert (s.removed, s.failed, s.notes, s.total_articles) == (1, 0, (), 4)
    assert titles(root) == {f"第{i}号新闻" for i in range(4)}


def test_a_whole_jsonl_file_unreadable_keeps_its_articles(tmp_path, fake_embedder):
    feed = _jsonl(tmp_path / "src" / "feed.jsonl", [_news(i) for i in range(3)])
    root = tmp_path / "idx"
    index_paths([feed], root, fake_embedder, progress=False)
    _jsonl(feed, ["{broken", "[1, 2]"])  # no good line at all
    s = index_paths([feed], root, fake_embedder, progress=False)
    assert (s.failed, s.removed, s.total_articles) == (2, 0, 3), s.render()
    assert s.notes == (f"{feed}: 3 articles kept from the last good version: lines 1, 2 could not be read",)


@pytest.mark.parametrize("layout", ["empty folder", "unsupported files only"])
def test_paths_holding_no_article_file_create_nothing(tmp_path, fake_embedder, layout):
    src = tmp_path / "src"
    src.mkdir()
    if layout != "empty folder":
        (src / "report.pdf").write_bytes(b"%PDF-1.4")
        (src / ".hidden.txt").write_text("隐藏文件", encoding="utf-8")
    root = tmp_path / "idx"
    with pytest.raises(rag.errors.NothingToIndexError) as e:
        index_paths([src], root, fake_embedder, progress=False)
    assert str(e.value) == f"no article files found under {src}: nothing indexed"
    assert not root.exists() and fake_embedder.calls == 0


def test_paths_holding_no_article_file_leave_an_index_as_it_was(seed_index, tmp_path, fake_embedder):
    before = state(seed_index)
    (tmp_path / "empty").mkdir()
    with pytest.raises(rag.errors.NothingToIndexError):
        index_paths([tmp_path / "empty"], seed_index, fake_embedder, progress=False)
    assert state(seed_index) == before


def test_an_index_path_that_is_a_file_is_refused(tmp_path, fake_embedder):
    f = tmp_path / "not-a-folder"
    f.write_text("x")
    with pytest.raises(rag.errors.RagError) as e:
        index_paths([SEEDS], f, fake_embedder, progress=False)
    assert str(e.value) == f"{f} is a file, not an index folder"
    with pytest.raises(rag.errors.RagError, match="is a file, not an index folder"):
        Index.open(f)
    assert f.read_text() == "x" and fake_embedder.calls == 0


FORGED = "evil\nnote: 0 articles removed\r\x1b[2Kerrors (0):\u2028\u202etxt.txt"


def test_control_characters_in_file_names_cannot_forge_summary_lines(tmp_path, fake_embedder):
    src = tmp_path / "src"
    src.mkdir()
    (src / FORGED).write_bytes(b"")  # an empty file: its error line carries its name
    write_article(src / "good.txt", "好文章", [para(1)])
    feed = _jsonl(src / f"feed{chr(10)}x.jsonl", [_news(1), _news(2)])
    root = tmp_path / "idx"
    index_paths([src], root, fake_embedder, progress=False)
    _jsonl(feed, [_news(1), "{bad"])
    s = index_paths([src], root, fake_embedder, progress=False)
    text = s.render()
    lines = text.split("\n")
    assert [ln for ln in lines if ln.startswith("note: ")] == [
        f"note: {src}/feed\\nx.jsonl: 1 articles kept from the last good version: line 2 could not be read"]
    assert [ln for ln in lines if ln.startswith("errors (")] == ["errors (2):"]
    assert "evil\\nnote: 0 articles removed\\r\\x1b[2Kerrors (0):\\u2028\\u202etxt.txt: no text" in text
    assert not any(ch in text for ch in "\r\x1b\u2028\u202e")
    assert s.errors[0].startswith(str(src / FORGED))  # the record keeps the real name; only the display escapes


@pytest.mark.parametrize("umask,dirs,files", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_index_files_follow_the_umask(tmp_path, fake_embedder, umask, dirs, files):
    root = tmp_path / "idx"
    old = os.umask(umask)
    try:
        index_paths([SEEDS], root, fake_embedder, progress=False)
        index_articles([Article("又一篇", "深圳今天举办了无人机展览。", url="https://news.example/u")], root,
                       fake_embedder, progress=False)  # an update: the temp folder copied from the live one
    finally:
        os.umask(old)
    paths = [root] + list(root.rglob("*"))
    assert len([p for p in paths if p.is_dir()]) >= 4  # the index, two generations, their bm25/
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == (dirs if p.is_dir() else files), p
