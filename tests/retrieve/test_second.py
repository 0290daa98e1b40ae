"""The second dense retriever: an index's chunks embedded by a second embedder (multilingual-e5-small by default),
stored beside the first, kept in step on updates, checked on load and fused into retrieval."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SEEDS, FakeEmbedder

from rag.errors import CorruptIndexError
from rag.index import CURRENT, Index, index_articles, index_paths
from rag.retrieve import Fusion, Searcher
from rag.types import Article

ARTICLES = [
    Article(title="北京天气", text="北京今天下雨，气温只有十二度。\n\n明天转晴，风力三级。", url="https://n.example/1",
            published="2024-03-01T08:00:00Z", source="a"),
    Article(title="上海股市", text="上海证券交易所的股票指数今天上涨了三个百分点。\n\n成交量创下新高。",
            url="https://n.example/2", published="2024-04-02T09:30:00Z", source="a"),
    Article(title="布林肯访问危地马拉", text="美国国务卿布林肯星期二前往危地马拉讨论移民问题。\n\n他会见了总统。",
            url="https://n.example/3", published="2024-05-07T12:00:00Z", source="b"),
]


class Second(FakeEmbedder):
    """A second embedder on other dimensions than the first, counting what it embeds."""

    def __init__(self):
        super().__init__(dim=24, name="fake-second")
        self.texts: list[str] = []

    def embed_documents(self, texts):
        self.texts.extend(texts)
        return super().embed_documents(texts)


def gen_dir(root: Path) -> Path:
    return root / (root / CURRENT).read_text(encoding="utf-8").strip()


def seg_dir(root: Path) -> Path:
    """The one segment of a freshly built index (second.npy and second.faiss are its files)."""
    segs = json.loads((gen_dir(root) / "manifest.json").read_text(encoding="utf-8"))["segments"]
    assert len(segs) == 1, segs
    return root / "segments" / segs[0]["name"]


@pytest.fixture
def built(tmp_path, fake_embedder):
    second = Second()
    root = tmp_path / "idx"
    s = index_articles(ARTICLES, root, fake_embedder, progress=False, chunk_size=30, chunk_overlap=5, second=second)
    assert s.second_embedded == s.chunks > len(ARTICLES)
    return root, second


def test_every_chunk_gets_a_second_vector_of_its_title_and_text(built):
    root, second = built
    idx = Index.open(root)
    try:
        assert (idx.manifest.second_embedder, idx.manifest.second_dim) == ("fake-second", 24)
        assert idx.stats()["second_embedder"] == "fake-second"
        ps = idx.passages([int(c) for c in idx.vec_ids])
        assert sorted(second.texts) == sorted(f"{p.title}\n{p.text}" for p in ps)
        for p in ps:  # stored in chunk-id order: each row is its own chunk's vector
            want = second.embed_documents([f"{p.title}\n{p.text}"])[0]
            got = idx.second_scores(want, np.array([p.chunk_id]))[0]
            assert got == pytest.approx(1.0, abs=2e-3)
        q = second.embed_queries(["布林肯前往危地马拉"])[0]
        hits = idx.search_second(q, 100)
        assert len(hits) == idx.manifest.chunks  # k > count
        assert idx.passages([hits[0][0]])[0].article_id == ps[[p.title for p in ps].index("布林肯访问危地马拉")].article_id
    finally:
        idx.close()


def test_updates_embed_only_what_changed_and_stay_aligned(built, fake_embedder):
    root, _ = built
    second = Second()
    again = index_articles(ARTICLES, root, fake_embedder, progress=False, second=second)
    assert again.skipped == len(ARTICLES) and again.second_embedded == 0 and second.texts == []
    # a new title re-embeds that article's chunks (their text is the same, their second text is not)
    renamed = [ARTICLES[0], ARTICLES[1], Article(**{**ARTICLES[2].__dict__, "title": "布林肯到访危地马拉"})]
    s = index_articles(renamed, root, fake_embedder, progress=False, second=second)
    assert s.updated == 1 and second.texts and all(t.startswith("布林肯到访危地马拉\n") for t in second.texts)
    # an article removed, one added: every row still answers for its own chunk
    extra = Article(title="熊猫回国", text="旅美大熊猫乘坐专机抵达成都。\n\n将在基地隔离检疫。", url="https://n.example/4",
                    published="2023-11-09T01:00:00Z", source="b")
    index_articles([renamed[0], renamed[2], extra], root, fake_embedder, progress=False, second=second,
                   source_name="memory:other")
    index_articles([], root, fake_embedder, progress=False, second=second, prune=True)
    idx = Index.open(root)
    try:
        ps = idx.passages([int(c) for c in idx.vec_ids])
        vecs = Second().embed_documents([f"{p.title}\n{p.text}" for p in ps])
        for p, v in zip(ps, vecs):
            assert idx.second_scores(v, np.array([p.chunk_id]))[0] == pytest.approx(1.0, abs=2e-3)
    finally:
        idx.close()


def test_an_index_keeps_the_second_embedder_it_was_built_with(tmp_path, fake_embedder):
    root = tmp_path / "plain"
    index_articles(ARTICLES[:2], root, fake_embedder, progress=False, second=None)
    s = index_articles(ARTICLES, root, fake_embedder, progress=False, second=Second())
    assert s.added == 1 and s.second_embedded == 0
    assert any("no second embedder" in n and "--rebuild" in n for n in s.notes)
    idx = Index.open(root)
    assert idx.manifest.second_embedder == "" and idx.search_second(np.ones(24, np.float32), 5) == []
    idx.close()
    assert not (gen_dir(root) / "second.npy").exists()
    s = index_articles(ARTICLES, root, fake_embedder, progress=False, second=Second(), rebuild=True)
    assert s.second_embedded == s.chunks and Index.open(root).manifest.second_embedder == "fake-second"


def _short_second(g: Path):
    arr = np.load(g / "second.npy", allow_pickle=False)
    np.save(g / "second.npy", arr[:-1], allow_pickle=False)


def _other_faiss(g: Path):
    import faiss

    from rag.index.vectors import build_faiss

    faiss.write_index(build_faiss(np.eye(2, 24, dtype=np.float32), np.arange(2, dtype=np.int64))[0],
                      str(g / "second.faiss"))


def _manifest_without_dim(g: Path):
    m = json.loads((g / "manifest.json").read_text(encoding="utf-8"))
    m["second_dim"] = 0
    (g / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


@pytest.mark.parametrize("alter,name", [
    (lambda g: (g / "second.npy").unlink(), "second.npy"),
    (_short_second, "second.npy"),
    (lambda g: (g / "second.faiss").unlink(), "second.faiss"),
    (_other_faiss, "second.faiss"),
    (_manifest_without_dim, "manifest.json"),
], ids=["no-npy", "npy-rows", "no-faiss", "faiss-count", "manifest"])
def test_inconsistent_second_files_are_corrupt_and_named(built, alter, name):
    root, _ = built
    folder = gen_dir(root) if name == "manifest.json" else seg_dir(root)  # the manifest is the generation's
    alter(folder)
    with pytest.raises(CorruptIndexError) as err:
        Index.open(root)
    assert str(folder / name) in str(err.value)


def _ranked(root, emb, second, question, fusion):
    return [p.chunk_id for p in Searcher(root, emb, second).search(question, 20, fusion)]


def test_fusion_weight_decides_how_much_the_second_retriever_counts(built, fake_embedder):
    root, _ = built
    second = Second()
    q = "危地马拉的移民问题"
    idx = Index.open(root)
    sv = second.embed_queries([q])[0]
    all_ids = idx.vec_ids
    by_second = [int(all_ids[i]) for i in np.argsort(-idx.second_scores(sv, all_ids), kind="stable")]
    idx.close()
    only = Fusion(second_weight=1.0, cross_second_weight=1.0)
    none = Fusion(second_weight=0.0, cross_second_weight=0.0)
    assert _ranked(root, fake_embedder, second, q, only)[:5] == by_second[:5]

    class Blind(Second):  # a second embedder that sees nothing: only the first retrievers' order remains
        def embed_queries(self, texts):
            return np.zeros((len(texts), self.dim), np.float32)

    unused = Second()
    first = _ranked(root, fake_embedder, unused, q, none)
    assert unused.texts == []  # a weight of 0 does not even embed the question
    assert _ranked(root, fake_embedder, Blind(), q, Fusion(second_weight=0.5)) == first


def test_second_embedder_is_loaded_by_the_name_the_index_gives(built, fake_embedder, monkeypatch):
    import rag.models.registry as retrieval

    root, _ = built
    loaded = Second()
    monkeypatch.setitem(retrieval.SHARED, "fake-second", loaded)
    s = Searcher(root, fake_embedder)
    assert s.second_embedder(s.refresh()) is loaded
    plain = index_articles(ARTICLES, root.parent / "plain", fake_embedder, progress=False, second=None)
    assert plain.second_embedded == 0
    p = Searcher(root.parent / "plain", fake_embedder)
    assert p.second_embedder(p.refresh()) is None


def test_cli_second_none_builds_without_it(tmp_path, monkeypatch, capsys):
    import rag.models.registry
    from rag import cli

    monkeypatch.setattr(rag.models.registry, "get_embedder", lambda spec="use", **kw: FakeEmbedder())
    assert cli.main(["index", str(SEEDS), "--index", str(tmp_path / "a"), "-q", "--second", "none"]) == 0
    assert Index.open(tmp_path / "a").manifest.second_embedder == ""
    with pytest.raises(SystemExit):
        cli.main(["index", str(SEEDS), "--index", str(tmp_path / "b"), "--second", "bert"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.fixture(scope="module")
def e5_seed_index(tmp_path_factory):
    """seeds/ indexed as `rag index seeds/` does: USE and, by default, e5 as the second retriever."""
    import rag.index.build

    root = tmp_path_factory.mktemp("e5") / "idx"
    s = index_paths([SEEDS], root, "use", progress=False, second=rag.index.build.DEFAULT_SECOND or "e5")
    assert s.second_embedded == s.chunks > 0
    return root


def test_real_e5_second_retriever_answers_the_seed_in_both_languages(e5_seed_index):
    from rag.pipeline import ask

    assert Index.open(e5_seed_index).manifest.second_embedder == "e5-small"
    a = ask("布林肯星期二前往哪个国家？", e5_seed_index)
    assert not a.abstained and "危地马拉" in a.citations[0].sentence
    a = ask("Who did Blinken meet in Guatemala?", e5_seed_index)
    assert not a.abstained and "阿雷瓦洛" in a.citations[0].sentence
    a = ask("熊猫什么时候回到中国？", e5_seed_index)
    assert a.abstained and not a.citations



class LanguageBiased(Second):
    """A second embedder that, like e5 across languages, puts every Chinese text nearer a Chinese question than any
    English text: one large shared dimension for CJK, plus the fake embedder's n-grams."""

    def _one(self, text: str) -> np.ndarray:
        v = super()._one(text)
        v[0] += 4.0 if any("\u4e00" <= ch <= "\u9fff" for ch in text) else 0.0
        return v / np.linalg.norm(v)


def test_mixed_index_scales_the_second_cosine_within_each_language(tmp_path):
    from news import ARTICLES as MIXED, OHIO, FlatEmbedder

    emb = FlatEmbedder(name="flat-64")
    index_articles(MIXED, tmp_path / "idx", emb, progress=False, second=LanguageBiased(), chunk_size=60,
                   chunk_overlap=10)  # several chunks per article: min-max scaling needs two of a language
    s = Searcher(tmp_path / "idx", emb, LanguageBiased())
    question = "俄亥俄州的选民星期二去投票了吗？"
    idx = s.refresh()
    cos = idx.second_scores(s.second_embedder(idx).embed_queries([question])[0], idx.vec_ids)
    langs = np.array(idx.chunk_langs(idx.vec_ids))
    assert cos[langs == "en"].max() < cos[langs == "zh"].min()  # e5-like: every Chinese chunk is nearer
    ranked = s.search(question, 50, Fusion(second_weight=1.0))
    best_english = max(p.score for p in ranked if p.article_id == OHIO.id)
    # the best English chunk counts as fully as the best Chinese one, as BM25 does per language
    assert best_english == pytest.approx(max(p.score for p in ranked if p.article_id != OHIO.id)) == pytest.approx(1.0)


def test_ask_reuses_the_second_retrievers_query_vector_for_the_reader(built, fake_embedder, monkeypatch):
    import rag.models.registry as reader
    from rag.answer import AnswerConfig
    from rag.pipeline import gather

    root, _ = built
    second = Second()
    monkeypatch.setitem(reader.SHARED, "e5", second)  # the reader is the index's second embedder, as with e5
    s = Searcher(root, fake_embedder, second)
    ev = gather("布林肯星期二前往哪个国家？", s, config=AnswerConfig(reader="e5"))
    assert list(ev.read_vectors) == ["布林肯星期二前往哪个国家？"]
    other = Searcher(root, fake_embedder, Second())  # another model than the reader's: nothing to reuse
    assert gather("布林肯星期二前往哪个国家？", other, config=AnswerConfig(reader="e5")).read_vectors == {}


def test_indexing_loads_one_second_embedder_per_spec(tmp_path, fake_embedder, monkeypatch):
    import rag.index.build
    import rag.models.registry

    made = []

    def fake(spec="use", **kw):
        made.append(spec)
        return Second()

    monkeypatch.setattr(rag.models.registry, "get_embedder", fake)
    monkeypatch.setattr(rag.models.registry, "SHARED", {})
    for n in range(3):  # as the app does for each upload
        index_articles(ARTICLES[n:n + 1], tmp_path / "idx", fake_embedder, progress=False, second="fake-second",
                       source_name=f"memory:{n}")
    assert made == ["fake-second"]
    assert Index.open(tmp_path / "idx").manifest.articles == 3


def test_the_second_embedder_runs_while_the_first_embeds(tmp_path):
    """The two embedders of a batch overlap (each can use a core): the first waits for the second to have started,
    which a one-after-the-other build would never let happen."""
    import threading

    started = threading.Event()

    class Waiting(FakeEmbedder):
        def embed_documents(self, texts):
            assert started.wait(10), "the second embedder had not started while the first embedded"
            return super().embed_documents(texts)

    class Signalling(Second):
        def embed_documents(self, texts):
            started.set()
            return super().embed_documents(texts)

    second = Signalling()
    s = index_articles(ARTICLES, tmp_path / "idx", Waiting(), progress=False, chunk_size=30, chunk_overlap=5,
                       second=second)
    assert s.second_embedded == s.chunks > 0


def test_a_failing_second_embedder_fails_the_run_and_publishes_nothing(tmp_path, fake_embedder):
    class Broken(Second):
        def embed_documents(self, texts):
            raise RuntimeError("second embedder broke")

    root = tmp_path / "idx"
    with pytest.raises(RuntimeError, match="second embedder broke"):
        index_articles(ARTICLES, root, fake_embedder, progress=False, second=Broken(), checkpoint=0)
    assert not (root / CURRENT).exists()
