"""The store contract (rag.types.Store / StoreWriter), one suite run against both backends: the local segmented index
and Milvus (real milvus-lite, one database file per module, one collection prefix per store). Same corpus, same
fake embedder: the same searches, records, filters, statistics, deletes and re-adds, version checks, and a reader
during a write seeing the last published state."""
from __future__ import annotations

import contextlib
import itertools
import json

import numpy as np
import pytest
from conftest import DATED_QUESTIONS, FakeEmbedder, write_dated

pytest.importorskip("pymilvus", reason="the milvus extra is not installed (pip install -e '.[milvus]')")

from rag import AnswerConfig, ask  # noqa: E402
from rag.errors import IndexLockedError, IndexMismatchError, RagError  # noqa: E402
from rag.index import WriteLock, Writer, index_articles, index_paths  # noqa: E402
from rag.index.files import CURRENT  # noqa: E402
from rag.ingest import Chunker, split_sentences  # noqa: E402
from rag.retrieve import Searcher  # noqa: E402
from rag.store import milvus_base, open_store, open_writer, parse_spec, store_stamp  # noqa: E402
from rag.store.indexing import copy_index, index_articles_into, index_paths_into, remove_from_store  # noqa: E402
from rag.store.milvus_base import FLAG, FORMAT_ROW, field_names, read_meta, write_meta  # noqa: E402
from rag.store.milvus_writer import MilvusWriter  # noqa: E402
from rag.types import Article, Store, StoreWriter  # noqa: E402

BACKENDS = ["local", "milvus"]
CHUNK = dict(chunk_size=60, chunk_overlap=10)


def make_articles() -> list[Article]:
    topics = [
        ("北京天气", "北京今天下雨，气温只有十二度。", "weather", "2024-03-01T08:00:00Z"),
        ("上海股市", "上海证券交易所的股票指数今天上涨了三个百分点。", "markets", "2024-04-02T09:30:00Z"),
        ("布林肯访问危地马拉", "美国国务卿布林肯星期二前往危地马拉讨论移民问题。", "voachinese",
         "2024-05-07T12:00:00Z"),
        ("熊猫回国", "旅美大熊猫乘坐专机抵达成都，将在基地隔离检疫。", "voachinese", "2023-11-09T01:00:00Z"),
        ("Election news", "Voters in Ohio went to the polls on Tuesday to elect a new governor.", "apnews", ""),
    ]
    out = []
    for n, (title, lead, source, published) in enumerate(topics):
        paras = [lead] + [f"第{n}篇第{p}段：{lead[:12]}的补充报道，更多细节见后文。" for p in range(1, 4)]
        out.append(Article(title=title, text="\n\n".join(paras), url=f"https://news.example/{n}", published=published,
                           source=source, headings=((0, "导语"),) if n == 2 else ()))
    return out


ARTICLES = make_articles()
EXTRA = Article(title="台风登陆", text="强台风今天凌晨在福建登陆，沿海地区停课停工。\n\n气象台发布红色预警。",
                url="https://news.example/typhoon", published="2024-06-01T03:00:00Z", source="weather")
_names = itertools.count()


class Backend:
    """One store of a backend, built and written the way the indexer does it."""

    def __init__(self, kind: str, spec: str, emb: FakeEmbedder):
        self.kind, self.spec, self.emb = kind, spec, emb

    def build(self, articles=ARTICLES, **kw):
        if self.kind == "local":
            return index_articles(articles, self.spec, self.emb, progress=False, **CHUNK, **kw)
        return index_articles_into(articles, self.spec, self.emb, progress=False, **CHUNK, **kw)

    def build_files(self, paths, **kw):
        """Index article files, read as `rag index` reads them (rag.ingest)."""
        if self.kind == "local":
            return index_paths(paths, self.spec, self.emb, progress=False, **CHUNK, **kw)
        return index_paths_into(paths, self.spec, self.emb, progress=False, **CHUNK, **kw)

    def open(self, embedder_name: str | None = None) -> Store:
        return open_store(self.spec, embedder_name)

    @contextlib.contextmanager
    def writer(self):
        if self.kind == "local":
            with WriteLock(self.spec):
                w = Writer(self.spec, self.emb.name, self.emb.dim, **CHUNK)
                try:
                    yield w
                finally:
                    w.abort()
        else:
            w = open_writer(self.spec, self.emb.name, self.emb.dim, **CHUNK)
            try:
                yield w
            finally:
                w.abort()

    def put(self, w: StoreWriter, article: Article, path: str = "memory:test") -> None:
        chunks = Chunker(60, 10).run(article)
        spans = split_sentences(article.text)
        svecs = self.emb.embed_documents([article.text[s:e] for s, e in spans]) if spans else None
        w.put_article(article, chunks, self.emb.embed_documents([c.text for c in chunks]), path, spans, svecs)

    def remove(self, ids: list[str]):
        if self.kind == "local":
            from rag.index import remove_articles

            return remove_articles(self.spec, ids)
        return remove_from_store(self.spec, ids)


@pytest.fixture(scope="module")
def milvus_db(tmp_path_factory):
    return tmp_path_factory.mktemp("milvus") / "stores.db"


def new_backend(kind: str, tmp_path, milvus_db) -> Backend:
    spec = str(tmp_path / f"idx-{next(_names)}") if kind == "local" else f"milvus:{milvus_db}#s{next(_names)}"
    return Backend(kind, spec, FakeEmbedder())


@pytest.fixture(scope="module", params=BACKENDS)
def built(request, tmp_path_factory, milvus_db):
    """A store of ARTICLES per backend, shared by the read-only tests of this module."""
    b = new_backend(request.param, tmp_path_factory.mktemp("local"), milvus_db)
    summary = b.build()
    assert summary.added == len(ARTICLES) and summary.failed == 0
    return b


@pytest.fixture(params=BACKENDS)
def fresh(request, tmp_path, milvus_db):
    """An empty store per backend, for the tests that write."""
    return new_backend(request.param, tmp_path, milvus_db)


def snapshot(idx: Store, emb: FakeEmbedder, q: str = "布林肯前往危地马拉") -> dict:
    v = emb.embed_queries([q])[0]
    dense, lexical = idx.search_dense(v, 5), idx.search_lexical(q, 5)
    return {"dense": [(c, round(s, 4)) for c, s in dense], "lexical": [(c, round(s, 3)) for c, s in lexical],
            "passages": idx.passages([c for c, _ in dense + lexical]), "ids": idx.article_ids(),
            "articles": idx.manifest.articles, "chunks": idx.manifest.chunks}


# ---------------------------------------------------------------- reading


def test_protocols(built):
    idx = built.open()
    assert isinstance(idx, Store)
    idx.close()
    with built.writer() as w:
        assert isinstance(w, StoreWriter)


def test_both_backends_answer_alike(tmp_path, milvus_db):
    """The same corpus in both stores: the same chunk ids, scores, passages and statistics."""
    local, milvus = new_backend("local", tmp_path, milvus_db), new_backend("milvus", tmp_path, milvus_db)
    local.build()
    milvus.build()
    a, b = local.open(), milvus.open()
    for q in ("布林肯前往危地马拉", "上海股票指数上涨", "Ohio governor election", "大熊猫"):
        assert snapshot(a, local.emb, q) == snapshot(b, milvus.emb, q), q
        assert a.lexical_bound(q, absent=True) == pytest.approx(b.lexical_bound(q, absent=True), rel=1e-5)
        ids = np.array([c for c, _ in a.search_dense(local.emb.embed_queries([q])[0], 8)], dtype=np.int64)
        v = local.emb.embed_queries([q])[0]
        assert np.allclose(a.dense_scores(v, ids), b.dense_scores(v, ids), atol=1e-5)
    terms = a.tokens("布林肯 危地马拉 election 股票 不存在的词")
    assert a.doc_freq(terms) == b.doc_freq(terms)
    ps = a.passages([c for c, _ in a.search_lexical("熊猫 成都", 3)])
    assert a.sentences(ps) == b.sentences(ps)
    sids = [s for spans in a.sentences(ps) for s, _, _ in spans]
    assert np.allclose(a.sentence_vectors(sids), b.sentence_vectors(sids), atol=1e-3)  # float16 in both
    assert a.list_articles(0, 10) == b.list_articles(0, 10)
    assert a.chunk_langs(list(range(1, 25))) == b.chunk_langs(list(range(1, 25)))
    assert a.english_share() == pytest.approx(b.english_share(), abs=0.05)  # the local store samples
    words = local.emb.embed_queries(["Guatemala", "panda"])
    assert a.lexicon().translate_scored(words) == pytest.approx(b.lexicon().translate_scored(words), abs=1e-3)
    assert a.lexicon().vocabulary == b.lexicon().vocabulary


def test_dense_and_lexical_search_rank_the_right_chunk(built):
    idx = built.open()
    q = "布林肯前往危地马拉"
    top = idx.passages([idx.search_dense(built.emb.embed_queries([q])[0], 3)[0][0]])[0]
    assert top.title == "布林肯访问危地马拉"
    hits = idx.search_lexical(q, 3)
    assert idx.passages([hits[0][0]])[0].title == "布林肯访问危地马拉"
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert all(s > 0 for _, s in idx.search_lexical("完全无关的词汇组合", 5))
    assert idx.search_lexical(q, 0) == [] and idx.search_dense(built.emb.embed_queries([q])[0], 0) == []
    assert len(idx.search_dense(built.emb.embed_queries([q])[0], 1000)) == idx.manifest.chunks
    assert idx.search_second(built.emb.embed_queries([q])[0], 5) == []  # built without a second embedder


def test_records_passages_article_neighbours(built):
    idx = built.open()
    src = {a.id: a for a in ARTICLES}
    assert idx.article_ids() == sorted(src)
    ps = idx.passages([c for c, _ in idx.search_lexical("危地马拉", 20)])
    assert ps
    for p in ps:
        a = src[p.article_id]
        assert a.text[p.start:p.end] == p.text
        assert (p.title, p.url, p.published, p.source) == (a.title, a.url, a.published, a.source)
    got = idx.article(ARTICLES[2].id)
    assert (got.title, got.text, got.headings, got.url) == (ARTICLES[2].title, ARTICLES[2].text, ((0, "导语"),),
                                                            ARTICLES[2].url)
    assert got.content_hash == ARTICLES[2].content_hash
    assert idx.article("no-such-id") is None
    around = idx.neighbours(ps[0].article_id, 1)
    assert [o for o, *_ in around] == [0, 1, 2]
    assert all(src[ps[0].article_id].text[s:e] == t for _, t, s, e in around)
    assert idx.neighbours("no-such-id", 1) == []
    assert idx.passages([]) == [] and idx.passages([10_000]) == []


def test_sentences_and_their_vectors(built):
    idx = built.open()
    ps = idx.passages([c for c, _ in idx.search_lexical("熊猫 成都", 3)])
    spans = idx.sentences(ps)
    assert len(spans) == len(ps) and all(spans)
    for p, ss in zip(ps, spans):
        for sid, s, e in ss:
            assert s < p.end and e > p.start
        assert [s for _, s, _ in ss] == sorted(s for _, s, _ in ss)
    sids = [sid for ss in spans for sid, _, _ in ss]
    vecs = idx.sentence_vectors(sids)
    assert vecs.shape == (len(sids), built.emb.dim) and vecs.dtype == np.float32
    sid, s, e = spans[0][0]
    want = built.emb.embed_documents([text_of(ps[0].article_id)[s:e]])[0]
    assert np.allclose(idx.sentence_vectors([sid])[0], want, atol=1e-3)


def text_of(aid: str) -> str:
    return next(a.text for a in ARTICLES if a.id == aid)


def test_filters_are_applied_inside_the_searches(built):
    idx = built.open()
    assert idx.allowed_ids() is None
    q = "补充报道"
    v = built.emb.embed_queries([q])[0]
    for kw, want in (({"source": "voachinese"}, {"voachinese"}), ({"date_from": "2024-04-01"}, None),
                     ({"date_to": "2024-03-01"}, None), ({"date_from": "2024-03-01", "date_to": "2024-04-30",
                                                         "source": "markets"}, {"markets"})):
        allowed = idx.allowed_ids(**kw)
        assert len(allowed) > 0, kw
        for hits in (idx.search_dense(v, 50, allowed), idx.search_lexical(q, 50, allowed)):
            ps = idx.passages([c for c, _ in hits])
            assert ps, kw
            for p in ps:
                if want:
                    assert p.source in want
                if "date_from" in kw:
                    assert p.published >= kw["date_from"]
                if "date_to" in kw:
                    assert p.published and p.published <= kw["date_to"] + "T23:59:59Z"
        assert len(idx.search_dense(v, 1000, allowed)) == len(allowed)
    none = idx.allowed_ids(source="nobody")
    assert len(none) == 0
    assert idx.search_dense(v, 5, none) == [] and idx.search_lexical(q, 5, none) == []


def test_list_articles_pages_newest_first_with_filters(built):
    idx = built.open()
    total, rows = idx.list_articles(0, 2)
    assert total == len(ARTICLES) and len(rows) == 2
    assert [r["published"] for r in rows] == ["2024-05-07T12:00:00Z", "2024-04-02T09:30:00Z"]
    assert set(rows[0]) == {"id", "title", "url", "published", "source", "chars"}
    assert rows[0]["chars"] == len(ARTICLES[2].text)
    total, rows = idx.list_articles(0, 10, source="voachinese")
    assert total == 2 and {r["source"] for r in rows} == {"voachinese"}
    total, rows = idx.list_articles(0, 10, title="ELECTION")
    assert total == 1 and rows[0]["title"] == "Election news"
    assert idx.list_articles(4, 10)[1][0]["published"] == ""  # the undated article last


def test_statistics_lexicon_and_stats(built):
    idx = built.open()
    assert idx.tokens("北京天氣") == ["北", "京", "天", "气", "北京", "京天", "天气"]  # Traditional folded
    df = idx.doc_freq(["北京", "布林", "不在"])
    assert df["北京"] >= 1 and df["布林"] >= 1 and "不在" not in df
    assert idx.lexical_bound("布林肯") >= idx.search_lexical("布林肯", 1)[0][1] - 1e-4
    assert idx.lexical_bound("") == 0.0
    assert 0.0 < idx.english_share() < 0.5
    lex = idx.lexicon()
    assert "熊猫" in lex.vocabulary
    found = lex.translate_scored(built.emb.embed_queries(["熊猫"]))
    assert found and max(found, key=found.get) == "熊猫"
    st = idx.stats()
    assert {"articles", "chunks", "embedder", "dim", "generation", "created", "last_indexed"} <= set(st)
    assert (st["articles"], st["embedder"], st["dim"]) == (len(ARTICLES), built.emb.name, built.emb.dim)
    assert idx.chunk_langs([c for c, _ in idx.search_lexical("Ohio", 1)]) == ["en"]


# ---------------------------------------------------------------- writing


def test_delete_and_readd(fresh):
    fresh.build()
    before = fresh.open()
    gone = ARTICLES[2]
    removed, unknown = fresh.remove([gone.id, "nope"])
    assert removed == [gone.id] and unknown == ["nope"]
    after = fresh.open()
    assert gone.id not in after.article_ids() and after.article(gone.id) is None
    assert after.manifest.articles == len(ARTICLES) - 1
    assert all(p.article_id != gone.id for p in after.passages([c for c, _ in after.search_lexical("布林肯", 20)]))
    assert "布林" not in after.doc_freq(["布林"])
    assert after.list_articles(0, 10)[0] == len(ARTICLES) - 1
    # the snapshot opened before still reads the version it opened
    assert gone.id in before.article_ids() and before.article(gone.id) is not None
    assert before.search_lexical("布林肯", 1) and before.doc_freq(["布林"])["布林"] >= 1
    old_chunks = {c for c, _ in before.search_lexical("布林肯", 20)}
    fresh.build([gone], source_name="memory:again")
    again = fresh.open()
    assert again.article(gone.id).text == gone.text and again.manifest.articles == len(ARTICLES)
    new_chunks = {c for c, _ in again.search_lexical("布林肯", 20)}
    assert new_chunks and not (new_chunks & old_chunks)  # re-added rows get new chunk ids
    assert again.doc_freq(["布林"]) == before.doc_freq(["布林"])


def test_update_replaces_and_unchanged_publishes_nothing(fresh):
    fresh.build()
    stamp = store_stamp(fresh.spec)
    summary = fresh.build()
    assert summary.skipped == len(ARTICLES) and summary.added == 0
    assert store_stamp(fresh.spec) == stamp
    edited = Article(ARTICLES[0].title, ARTICLES[0].text + "\n\n明天转晴，气温回升到二十度。", ARTICLES[0].url,
                     ARTICLES[0].published, ARTICLES[0].source)
    summary = fresh.build([edited, *ARTICLES[1:]])
    assert summary.updated == 1 and summary.skipped == len(ARTICLES) - 1
    assert store_stamp(fresh.spec) != stamp
    idx = fresh.open()
    assert idx.article(edited.id).text == edited.text and idx.manifest.articles == len(ARTICLES)
    top = idx.passages([idx.search_lexical("明天转晴", 1)[0][0]])[0]
    assert top.article_id == edited.id and "转晴" in top.text


def test_rebuild_replaces_everything(fresh):
    fresh.build()
    idx = fresh.open()  # a reader that has read rows, vectors and the lexicon (a process caches them)
    assert idx.passages([c for c, _ in idx.search_lexical("布林肯", 5)]) and "熊猫" in idx.lexicon().vocabulary
    idx.sentences(idx.passages([c for c, _ in idx.search_lexical("熊猫", 3)]))
    fresh.build([EXTRA], rebuild=True)
    again = fresh.open()
    assert again.article_ids() == [EXTRA.id] and again.manifest.articles == 1
    ps = again.passages([c for c, _ in again.search_lexical("台风登陆", 5)])
    assert ps and {p.article_id for p in ps} == {EXTRA.id} and all(EXTRA.text[p.start:p.end] == p.text for p in ps)
    assert all(EXTRA.text[s:e] for spans in again.sentences(ps) for _, s, e in spans)
    assert again.search_lexical("熊猫", 5) == [] and "熊猫" not in again.lexicon().vocabulary


def test_prune_a_source_removes_its_articles(fresh):
    fresh.build(ARTICLES[:2], source_name="memory:a")
    fresh.build([EXTRA], source_name="memory:b")
    with fresh.writer() as w:
        assert set(w.paths()) == {"memory:a", "memory:b"}
        assert w.path_articles("memory:b") == {EXTRA.id}
        assert w.drop_source("memory:b") == [EXTRA.id]
        w.commit()
    idx = fresh.open()
    assert idx.article_ids() == sorted(a.id for a in ARTICLES[:2])


def test_a_reader_during_a_write_sees_the_published_version(fresh):
    fresh.build()
    s0 = fresh.open()
    want = snapshot(s0, fresh.emb)
    with fresh.writer() as w:
        fresh.put(w, EXTRA)
        w.remove_article(ARTICLES[2].id)
        mid = fresh.open()  # staged, not published
        assert snapshot(mid, fresh.emb) == want and mid.article(EXTRA.id) is None
        assert mid.article(ARTICLES[2].id) is not None
        w.commit()
    s1 = fresh.open()
    assert EXTRA.id in s1.article_ids() and ARTICLES[2].id not in s1.article_ids()
    assert snapshot(s0, fresh.emb) == want  # the old snapshot still reads its version


def test_one_writer_at_a_time(fresh):
    fresh.build()
    with fresh.writer():
        with pytest.raises(IndexLockedError, match="another `rag index` is writing"):
            with fresh.writer():
                pass
    with fresh.writer():  # released
        pass


def test_other_embedder_is_a_clear_mismatch(built):
    with pytest.raises(IndexMismatchError, match="other-embedder.*--rebuild"):
        built.open(embedder_name="other-embedder")
    other = Backend(built.kind, built.spec, FakeEmbedder(32, "other-embedder"))
    with pytest.raises(IndexMismatchError, match="other-embedder"):
        other.build()


def test_format_version_mismatch_names_the_store_and_the_fix(fresh):
    fresh.build()
    if fresh.kind == "local":
        root = parse_spec(fresh.spec).target
        import pathlib

        man = pathlib.Path(root) / (pathlib.Path(root) / CURRENT).read_text().strip() / "manifest.json"
        data = json.loads(man.read_text())
        data["schema_version"] = 99
        man.write_text(json.dumps(data))
    else:
        s = parse_spec(fresh.spec)
        fmt = read_meta(s.target, s.prefix)[FORMAT_ROW]
        write_meta(s.target, s.prefix, FORMAT_ROW, json.dumps({**fmt, "store_format": 99}))
    with pytest.raises(IndexMismatchError) as e:
        fresh.open()
    assert "99" in str(e.value) and "--rebuild" in str(e.value)
    assert parse_spec(fresh.spec).target in str(e.value) or str(fresh.spec) in str(e.value)


def test_missing_store_is_a_clear_error(fresh):
    with pytest.raises(RagError, match="rag index"):
        fresh.open()


RATE, PANDA = DATED_QUESTIONS  # the urls of conftest.DATED_ROWS: a date read from the text, a date of its own


def dated_records(idx: Store) -> tuple[dict, dict]:
    """{url: (published, date_from_text)} of the store's articles, and of the passages a lexical search returns."""
    arts = {a.url: (a.published, a.date_from_text) for a in map(idx.article, idx.article_ids())}
    ps = idx.passages(c for c, _ in idx.search_lexical("正文 2023", 10))
    return arts, {p.url: (p.published, p.date_from_text) for p in ps}


def dated_citations(b: Backend) -> dict:
    """{url: (published, date_from_text)} of ask()'s first citation for each of DATED_QUESTIONS."""
    s = Searcher(b.spec, b.emb)
    out = {}
    for url, q in DATED_QUESTIONS.items():
        c = ask(q, s, config=AnswerConfig(reader="none")).citations[0]
        assert c.url == url, (q, c)
        out[url] = (c.published, c.date_from_text)
    return out


def test_a_date_read_from_the_text_is_kept_and_cited(fresh, tmp_path):
    """An article whose file gives no date takes the one its text opens with: the store keeps the mark with it and
    ask()'s citation carries it; an article dated by its file keeps that date, unmarked."""
    summary = fresh.build_files([write_dated(tmp_path / "dated.jsonl")])
    assert summary.added == 2 and summary.failed == 0 and not summary.notes, summary
    want = {RATE: ("2023-07-28T16:40:00Z", True), PANDA: ("2023-11-09T01:00:00Z", False)}
    assert dated_records(fresh.open()) == (want, want)
    assert dated_citations(fresh) == want
    again = fresh.build_files([tmp_path / "dated.jsonl"])
    assert (again.added, again.updated, again.skipped) == (0, 0, 2)  # the mark is part of what is compared


def test_a_local_index_copied_into_milvus_keeps_the_mark(tmp_path, milvus_db):
    local, milvus = new_backend("local", tmp_path, milvus_db), new_backend("milvus", tmp_path, milvus_db)
    local.build_files([write_dated(tmp_path / "dated.jsonl")])
    copy_index(local.spec, milvus.spec)
    want = {RATE: ("2023-07-28T16:40:00Z", True), PANDA: ("2023-11-09T01:00:00Z", False)}
    assert dated_records(milvus.open()) == dated_records(local.open()) == (want, want)


# ---------------------------------------------------------------- Milvus: the version protocol itself


@pytest.fixture
def milvus(tmp_path, milvus_db):
    return new_backend("milvus", tmp_path, milvus_db)


def test_milvus_rows_written_before_the_flip_stay_invisible(milvus, monkeypatch):
    """Between the new version's rows being written and the published row flipping, readers (old snapshots and
    new ones) see the last published version; after the flip new snapshots see the new one."""
    milvus.build()
    s0 = milvus.open()
    want = snapshot(s0, milvus.emb)
    seen = {}
    flip = MilvusWriter._flip

    def check_then_flip(self, info):
        mid = milvus.open()
        seen["mid"] = (snapshot(mid, milvus.emb), mid.article(EXTRA.id), mid.article(ARTICLES[2].id) is not None,
                       mid.doc_freq(["台风", "布林"]), snapshot(s0, milvus.emb))
        flip(self, info)

    monkeypatch.setattr(MilvusWriter, "_flip", check_then_flip)
    with milvus.writer() as w:
        milvus.put(w, EXTRA)
        w.remove_article(ARTICLES[2].id)
        w.commit()
    snap, extra, still_there, df, old = seen["mid"]
    assert snap == want and extra is None and still_there and df == s0.doc_freq(["台风", "布林"]) and old == want
    s1 = milvus.open()
    assert s1.article(EXTRA.id) is not None and s1.doc_freq(["台风"]) == {"台风": 1}
    assert snapshot(s0, milvus.emb) == want


def test_milvus_a_write_killed_before_the_flip_is_undone(milvus, monkeypatch):
    milvus.build()
    want = snapshot(milvus.open(), milvus.emb)

    def crash(self, info):
        raise KeyboardInterrupt

    monkeypatch.setattr(MilvusWriter, "_flip", crash)
    w = open_writer(milvus.spec, milvus.emb.name, milvus.emb.dim, **CHUNK)
    milvus.put(w, EXTRA)
    w.remove_article(ARTICLES[2].id)
    with pytest.raises(KeyboardInterrupt):
        w._publish()  # rows written, never published; the lock is left behind as by a killed process
    assert snapshot(milvus.open(), milvus.emb) == want
    monkeypatch.undo()
    w._locked = False  # a killed process: its lock lapses, here released by hand
    from rag.store.milvus_base import LOCK_ROW, client

    s = parse_spec(milvus.spec)
    client(s.target).delete(s.prefix + "meta", filter=f"id == {LOCK_ROW}")
    summary = milvus.build([EXTRA], source_name="memory:later")  # the next writer removes the leftovers first
    assert summary.added == 1
    idx = milvus.open()
    assert idx.article(ARTICLES[2].id) is not None and idx.manifest.articles == len(ARTICLES) + 1
    assert idx.doc_freq(["台风"]) == {"台风": 1}


def test_milvus_spec_parsing():
    s = parse_spec("milvus:./x/news.db#mine")
    assert s.milvus and s.target.endswith("/x/news.db") and s.prefix == "mine"
    assert parse_spec("http://localhost:19530").target == "http://localhost:19530"
    assert parse_spec("some/folder").kind == "local"
    with pytest.raises(RagError, match=r"\.db"):
        parse_spec("milvus:./news")
    with pytest.raises(RagError, match="prefix"):
        parse_spec("milvus:./n.db#bad-name")


def test_milvus_a_store_made_before_the_mark_reads_false_and_its_writer_says_so(milvus, tmp_path, monkeypatch):
    """A store whose collections have no date_from_text field (Milvus Lite cannot add one): it opens and is written
    to, every article reads unmarked (its date still the text's), and the run's notes name the store and --rebuild."""
    with monkeypatch.context() as m:
        m.setattr(milvus_base, "FLAGGED", ())  # the collections as a store made before the field has them
        milvus.build(ARTICLES[:1])
    s = parse_spec(milvus.spec)
    info = milvus.open().info
    assert FLAG not in field_names(s.target, s.prefix + "chunks", info.uid)
    summary = milvus.build_files([write_dated(tmp_path / "dated.jsonl")])
    assert summary.added == 2 and summary.failed == 0
    assert any("before it kept whether an article's date was read from its text" in n and "--rebuild" in n
               and str(milvus.spec) in n for n in summary.notes), summary.notes
    want = {RATE: ("2023-07-28T16:40:00Z", False), PANDA: ("2023-11-09T01:00:00Z", False)}
    arts, passages = dated_records(milvus.open())
    assert [{u: v for u, v in got.items() if u in want} for got in (arts, passages)] == [want, want]
    assert dated_citations(milvus) == want
