"""The Store contract (`rag.index.Index`): build with `index_articles`, open, search, read passages, close, reopen;
manifest; embedder mismatch; consistency checks on load; generations (atomic swap, garbage collection); no pickle."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEmbedder

from rag.errors import CorruptIndexError, IndexMismatchError, RagError
from rag.index import CURRENT, SCHEMA_VERSION, Index, compact_index, index_articles
from rag.index.files import KEEP_GENERATIONS
from rag.types import Article, Passage, Store


def make_articles() -> list[Article]:
    topics = [
        ("北京天气", "北京今天下雨，气温只有十二度。", "weather", "2024-03-01T08:00:00Z"),
        ("上海股市", "上海证券交易所的股票指数今天上涨了三个百分点。", "markets", "2024-04-02T09:30:00Z"),
        ("布林肯访问危地马拉", "美国国务卿布林肯星期二前往危地马拉讨论移民问题。", "voachinese", "2024-05-07T12:00:00Z"),
        ("熊猫回国", "旅美大熊猫乘坐专机抵达成都，将在基地隔离检疫。", "voachinese", "2023-11-09T01:00:00Z"),
        ("Election news", "Voters in Ohio went to the polls on Tuesday to elect a new governor.", "apnews", ""),
    ]
    out = []
    for n, (title, lead, source, published) in enumerate(topics):
        # several paragraphs so each article makes several chunks at chunk_size=60
        paras = [lead] + [f"第{n}篇第{p}段：{lead[:12]}的补充报道，更多细节见后文。" for p in range(1, 4)]
        out.append(Article(title=title, text="\n\n".join(paras), url=f"https://news.example/{n}",
                           published=published, source=source))
    return out


ARTICLES = make_articles()


@pytest.fixture
def built(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    summary = index_articles(ARTICLES, root, fake_embedder, progress=False, chunk_size=60, chunk_overlap=10)
    assert summary.added == len(ARTICLES) and summary.failed == 0
    return root


def gen_dir(root: Path) -> Path:
    return root / (root / CURRENT).read_text(encoding="utf-8").strip()


def seg_dir(root: Path) -> Path:
    """The newest segment of the current generation (the only one of a freshly built index)."""
    m = json.loads((gen_dir(root) / "manifest.json").read_text(encoding="utf-8"))
    return root / "segments" / m["segments"][-1]["name"]


def snapshot(idx: Index, emb: FakeEmbedder) -> dict:
    q = "布林肯前往危地马拉"
    dense = idx.search_dense(emb.embed_queries([q])[0], 5)
    lexical = idx.search_lexical(q, 5)
    return {"dense": dense, "lexical": lexical, "passages": idx.passages([c for c, _ in dense + lexical]),
            "stats": {k: v for k, v in idx.stats().items()}, "ids": idx.article_ids()}


# ---------------------------------------------------------------- the contract


def test_open_search_passages_close_reopen_same_results(built, fake_embedder):
    idx = Index.open(built)
    assert isinstance(idx, Store)
    first = snapshot(idx, fake_embedder)
    idx.close()
    idx.close()  # closing twice is harmless
    again = Index.open(built, embedder_name=fake_embedder.name)
    second = snapshot(again, fake_embedder)
    again.close()
    assert first == second
    # and the results make sense: the article about Blinken comes first both ways
    blinken = next(a for a in ARTICLES if "布林肯" in a.title)
    assert first["passages"][0].article_id == blinken.id
    assert first["lexical"][0][1] > 0
    assert all(a[1] >= b[1] for a, b in zip(first["dense"], first["dense"][1:]))
    assert all(a[1] >= b[1] for a, b in zip(first["lexical"], first["lexical"][1:]))


def test_dense_search_finds_exact_chunk(built, fake_embedder):
    idx = Index.open(built)
    con = sqlite3.connect(seg_dir(built) / "meta.sqlite")
    rows = con.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
    con.close()
    for cid, text in rows[::3]:
        (top, score), *_ = idx.search_dense(fake_embedder.embed_queries([text])[0], 3)
        assert score == pytest.approx(1.0, abs=1e-5)
        # another chunk may have identical text: then its vector is identical too
        assert top == cid or dict(rows)[top] == text
    idx.close()


def test_lexical_search_ranks_the_chunk_with_the_rare_terms(built):
    idx = Index.open(built)
    hits = idx.search_lexical("大熊猫 成都", 3)
    (p,) = idx.passages([hits[0][0]])
    assert "熊猫" in p.title and "成都" in p.text
    (en,) = idx.passages([idx.search_lexical("Ohio governor", 3)[0][0]])
    assert en.title == "Election news"
    assert idx.search_lexical("zzzz qqqq", 5) == []  # no known term: nothing, not everything with score 0
    assert idx.search_lexical("", 5) == []
    assert idx.search_lexical("北京", 0) == []
    idx.close()


def test_passages_carry_article_metadata_and_exact_spans(built):
    idx = Index.open(built)
    by_id = {a.id: a for a in ARTICLES}
    con = sqlite3.connect(seg_dir(built) / "meta.sqlite")
    ids = [r[0] for r in con.execute("SELECT id FROM chunks ORDER BY id DESC")]
    con.close()
    passages = idx.passages(ids, {ids[0]: 0.5})
    assert [p.chunk_id for p in passages] == ids  # the order asked for, not the table order
    assert passages[0].score == 0.5 and passages[1].score == 0.0
    for p in passages:
        assert isinstance(p, Passage)
        a = by_id[p.article_id]
        assert a.text[p.start : p.end] == p.text
        assert (p.title, p.url, p.published, p.source) == (a.title, a.url, a.published, a.source)
    assert idx.passages([]) == []
    assert idx.passages([10**9]) == []  # unknown ids are skipped
    assert len(idx.passages([ids[0], 10**9, ids[1]])) == 2
    # the stored article round-trips
    for a in ARTICLES:
        stored = idx.article(a.id)
        assert (stored.title, stored.text, stored.url, stored.published, stored.source) == (
            a.title, a.text, a.url, a.published, a.source)
    assert idx.article("0" * 16) is None
    assert sorted(idx.article_ids()) == sorted(by_id)
    idx.close()


def test_sentences_are_stored_with_their_vectors(built, fake_embedder):
    idx = Index.open(built)
    by_id = {a.id: a for a in ARTICLES}
    passages = idx.passages([int(i) for i in idx.vec_ids])
    per_passage = idx.sentences(passages)
    assert len(per_passage) == len(passages) and all(per_passage)
    for p, sents in zip(passages, per_passage):
        text = by_id[p.article_id].text
        assert [s for _, s, _ in sents] == sorted(s for _, s, _ in sents)
        for sid, s, e in sents:
            assert s < p.end and e > p.start and text[s:e].strip() == text[s:e]
        vecs = idx.sentence_vectors([sid for sid, _, _ in sents][::-1])[::-1]  # any order asked is kept
        want = fake_embedder.embed_documents([text[s:e] for _, s, e in sents])
        np.testing.assert_allclose(vecs, want, atol=2e-3)  # stored as float16
    with pytest.raises(CorruptIndexError, match="sent_ids"):
        idx.sentence_vectors([10**9])
    assert idx.sentence_vectors([]).shape == (0, fake_embedder.dim)
    idx.close()


def test_neighbours_and_filters(built, fake_embedder):
    idx = Index.open(built)
    a = ARTICLES[0]
    ns = idx.neighbours(a.id, 1)
    assert [n[0] for n in ns] == [0, 1, 2]
    for ordinal, text, start, end in ns:
        assert a.text[start:end] == text
    assert idx.allowed_ids() is None
    vo = idx.allowed_ids(source="voachinese")
    assert len(vo) > 0
    q = fake_embedder.embed_queries(["北京下雨"])[0]
    hits = idx.search_dense(q, 100, vo)
    assert hits and {c for c, _ in hits} <= set(vo.tolist())
    assert {p.source for p in idx.passages([c for c, _ in hits])} == {"voachinese"}
    lex = idx.search_lexical("熊猫", 100, vo)
    assert lex and {c for c, _ in lex} <= set(vo.tolist())
    assert idx.search_dense(q, 5, np.array([], dtype=np.int64)) == []
    may = idx.allowed_ids(date_from="2024-05-01", date_to="2024-05-31")
    assert {p.title for p in idx.passages(may.tolist())} == {"布林肯访问危地马拉"}
    idx.close()


def test_k_larger_than_the_chunk_count(built, fake_embedder):
    idx = Index.open(built)
    n = idx.manifest.chunks
    dense = idx.search_dense(fake_embedder.embed_queries(["新闻"])[0], n * 10)
    assert len(dense) == n and len({c for c, _ in dense}) == n
    assert all(c >= 0 for c, _ in dense)  # no FAISS -1 padding
    lex = idx.search_lexical("的补充报道", n * 10)
    assert 0 < len(lex) <= n and len({c for c, _ in lex}) == len(lex)
    assert len(idx.passages([c for c, _ in dense])) == n
    idx.close()


def test_empty_index(tmp_path, fake_embedder):
    root = tmp_path / "empty"
    summary = index_articles([], root, fake_embedder, progress=False)
    assert (summary.total_articles, summary.total_chunks) == (0, 0)
    idx = Index.open(root)
    assert idx.search_dense(fake_embedder.embed_queries(["x"])[0], 5) == []
    assert idx.search_lexical("北京", 5) == []
    assert idx.passages([1, 2]) == []
    assert idx.article_ids() == []
    assert idx.doc_freq(["北京"]) == {}
    s = idx.stats()
    assert (s["articles"], s["chunks"], s["last_indexed"]) == (0, 0, "")
    idx.close()


def test_manifest_fields(built, fake_embedder):
    g = gen_dir(built)
    m = json.loads((g / "manifest.json").read_text(encoding="utf-8"))
    con = sqlite3.connect(seg_dir(built) / "meta.sqlite")
    n_chunks = con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    con.close()
    assert m["schema_version"] == SCHEMA_VERSION
    assert (m["embedder"], m["dim"]) == (fake_embedder.name, fake_embedder.dim)
    assert (m["articles"], m["chunks"]) == (len(ARTICLES), n_chunks)
    assert n_chunks > len(ARTICLES)
    assert (m["chunk_size"], m["chunk_overlap"], m["tokenizer"], m["faiss_kind"]) == (60, 10, "bigram", "flat")
    assert m["generation"] == g.name and re.fullmatch(r"gen-\d{6}", g.name)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["created"])
    idx = Index.open(built)
    assert idx.manifest.generation == idx.generation == g.name
    s = idx.stats()
    assert (s["articles"], s["chunks"], s["embedder"], s["dim"], s["generation"]) == (
        len(ARTICLES), n_chunks, "fake-64", 64, g.name)
    idx.close()


def test_other_embedder_name_is_a_clear_mismatch(built):
    with pytest.raises(IndexMismatchError) as err:
        Index.open(built, embedder_name="use")
    msg = str(err.value)
    assert str(built) in msg and "'fake-64'" in msg and "'use'" in msg and "--rebuild" in msg
    assert isinstance(err.value, RagError)
    Index.open(built, embedder_name="fake-64").close()  # the right name opens


def test_open_missing_or_not_an_index(tmp_path):
    with pytest.raises(RagError, match="no index here yet"):
        Index.open(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RagError, match="not an index"):
        Index.open(tmp_path / "plain")


# ---------------------------------------------------------------- consistency checks on load


def _bump_manifest(field):
    def alter(g: Path):
        m = json.loads((g / "manifest.json").read_text(encoding="utf-8"))
        m[field] += 1
        (g / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    return alter


def _drop_chunk_row(g: Path):
    con = sqlite3.connect(g / "meta.sqlite")
    con.execute("DELETE FROM chunks WHERE id = (SELECT MAX(id) FROM chunks)")
    con.commit()
    con.close()


def _short_array(name):
    def alter(g: Path):
        arr = np.load(g / name, allow_pickle=False)
        np.save(g / name, arr[:-1], allow_pickle=False)
    return alter


def _shuffle_ids(g: Path):
    ids = np.load(g / "ids.npy", allow_pickle=False)
    np.save(g / "ids.npy", ids[::-1].copy(), allow_pickle=False)


def _rm(name):
    def alter(g: Path):
        p = g / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return alter


def _faiss_other_size(g: Path):
    import faiss

    from rag.index.vectors import build_faiss

    index, _ = build_faiss(np.eye(3, 64, dtype=np.float32), np.arange(3, dtype=np.int64))
    faiss.write_index(index, str(g / "vectors.faiss"))


@pytest.mark.parametrize("alter,names", [
    (_bump_manifest("chunks"), "manifest.json"),
    (_bump_manifest("articles"), "manifest.json"),
    (_drop_chunk_row, "meta.sqlite"),
    (_rm("meta.sqlite"), "meta.sqlite"),
    (_rm("manifest.json"), "manifest.json"),
    (_rm("vectors.faiss"), "vectors.faiss"),
    (_faiss_other_size, "vectors.faiss"),
    (_rm("bm25"), "bm25"),
    (_short_array("bm25/lengths.npy"), "bm25"),
    (_rm("vectors.npy"), "vectors.npy"),
    (_short_array("vectors.npy"), "vectors.npy"),
    (_rm("ids.npy"), "ids.npy"),
    (_shuffle_ids, "ids.npy"),
], ids=["manifest-chunks", "manifest-articles", "sqlite-row", "no-sqlite", "no-manifest", "no-faiss",
        "faiss-count", "no-bm25", "bm25-count", "no-vectors", "vectors-count", "no-ids", "ids-order"])
def test_inconsistent_generation_is_corrupt_and_names_the_file(built, alter, names):
    g = gen_dir(built) if names == "manifest.json" else seg_dir(built)
    alter(g)
    with pytest.raises(CorruptIndexError) as err:
        Index.open(built)
    assert names in Path(err.value.path).as_posix() or names in str(err.value)
    assert str(g) in str(err.value)
    assert "rag index --rebuild" in str(err.value)


def test_dimension_mismatch_between_manifest_and_faiss(built):
    g = gen_dir(built)
    m = json.loads((g / "manifest.json").read_text(encoding="utf-8"))
    m["dim"] = 32
    (g / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(CorruptIndexError, match=r"vectors\.(npy|faiss).*!= .*32"):  # the rows are checked first
        Index.open(built)


def test_current_naming_a_missing_generation(built):
    (built / CURRENT).write_text("gen-999999\n", encoding="utf-8")
    with pytest.raises(CorruptIndexError, match="gen-999999"):
        Index.open(built)


# ---------------------------------------------------------------- generations


def test_current_swap_leaves_an_open_index_readable(built, fake_embedder):
    old = Index.open(built)
    old_gen = old.generation
    before = snapshot(old, fake_embedder)
    extra = Article("新增文章", "深圳今天举办了无人机展览，吸引大量观众。\n\n展览持续三天。", url="https://news.example/new")
    summary = index_articles([extra], built, fake_embedder, progress=False, source_name="memory:extra")
    assert summary.generation and summary.generation != old_gen
    assert (built / CURRENT).read_text().strip() == summary.generation
    # the already-open Index still serves its own, complete generation
    assert snapshot(old, fake_embedder) == before
    assert old.article(extra.id) is None
    new = Index.open(built)
    assert new.generation == summary.generation
    assert new.article(extra.id) is not None
    assert new.manifest.articles == old.manifest.articles + 1
    old.close()
    new.close()


def test_only_keep_generations_are_kept(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    gens = []
    for i in range(KEEP_GENERATIONS + 3):
        a = Article(f"第{i}条", f"第{i}条新闻的正文，内容各不相同：{i * 7919}。", url=f"https://news.example/g{i}")
        gens.append(index_articles([a], root, fake_embedder, progress=False, source_name=f"memory:{i}").generation)
    assert gens == [f"gen-{i:06d}" for i in range(1, KEEP_GENERATIONS + 4)]
    on_disk = sorted(p.name for p in root.iterdir() if p.name.startswith("gen-"))
    assert on_disk == gens[-KEEP_GENERATIONS:]
    assert not list(root.glob(".tmp-gen-*"))
    idx = Index.open(root)
    assert idx.generation == gens[-1] and idx.manifest.articles == len(gens)
    idx.close()


def test_unchanged_run_publishes_no_generation(built, fake_embedder):
    gen = gen_dir(built).name
    summary = index_articles(ARTICLES, built, fake_embedder, progress=False)
    assert summary.generation is None and summary.skipped == len(ARTICLES)
    assert gen_dir(built).name == gen
    assert not list(built.glob(".tmp-gen-*"))


def test_no_pickle_anywhere(built):
    g = seg_dir(built)
    npys = sorted(built.rglob("*.npy"))
    assert {p.relative_to(g).as_posix() for p in npys} >= {"vectors.npy", "ids.npy", "bm25/lengths.npy"}
    for p in npys:
        arr = np.load(p, allow_pickle=False)
        assert arr.dtype != object, p
    assert not [p for p in built.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    for p in built.rglob("*.json"):
        json.loads(p.read_text(encoding="utf-8"))
    ids = np.load(g / "ids.npy", allow_pickle=False)
    vecs = np.load(g / "vectors.npy", allow_pickle=False)
    assert ids.dtype == np.int64 and vecs.dtype == np.float32
    assert np.all(np.diff(ids) > 0)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_an_open_generation_reads_its_lexicon_after_writers_removed_it(built, fake_embedder):
    """A reader keeps its generation for a whole question; the lexicon is read lazily (on the first English
    question), so its file is opened with the generation: once a compaction replaced its segment and two publishes
    followed, the folders are gone, and it still reads."""
    old = Index.open(built)
    first = old.passages([1])
    for i in range(KEEP_GENERATIONS + 1):
        a = Article(f"新增{i}", f"第{i}条新增的新闻正文。", url=f"https://news.example/gc{i}")
        index_articles([a], built, fake_embedder, progress=False, source_name=f"memory:gc{i}")
        if i == 0:
            compact_index(built)
    assert not old.gen_dir.exists() and not old.views[0].seg.path.exists()
    lexicon = old.lexicon()
    assert "北京" in lexicon.words and sum(p.index.ntotal for p in lexicon.parts) == len(lexicon.words)
    assert old.passages([1]) == first  # this thread's SQLite connection was opened with the generation too
    old.close()
