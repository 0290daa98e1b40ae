"""Cross-lingual bridge (rag.lang.bridge): an English question's content words mapped to the corpus's own Chinese words
by embedding similarity. Word extraction on both sides, the 8-bit FAISS lexicon (flat and IVF) and its files, the
lexicon kept in step with the corpus by the indexer, and the bridge at work in retrieval."""
from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEmbedder

from rag.errors import CorruptIndexError
from rag.index import Index, compact_index, index_articles, index_paths, merge
from rag.index.lexicon import MARGIN, MIN_SIMILARITY, PER_WORD, Lexicon
from rag.lang import CJK_RE, corpus_words, question_words
from rag.pipeline import ask, gather, retrieve
from rag.retrieve import Fusion, Searcher, searcher
from rag.types import Article

# ---------------------------------------------------------------- question_words


@pytest.mark.parametrize("question,expected", [
    ("Who did Blinken meet in Guatemala?", ["Blinken", "meet", "Guatemala"]),
    ("What is the name of the president of France?", ["president", "France"]),
    ("When did they give it to him and where was it?", []),  # only stop and question words
    ("WHO DID THE Minister MEET?", ["Minister", "MEET"]),  # stopwords match in any case
], ids=["basic", "stopwords", "all-stop", "case"])
def test_question_words_drop_stop_and_question_words(question, expected):
    assert question_words(question) == expected


def test_question_words_drop_one_letter_digit_and_cjk_tokens():
    assert question_words("Is x or y a vitamin?") == ["vitamin"]
    assert question_words("How many people died in 2019, 1,200 or 3.5?") == ["people", "died"]
    assert question_words("Where is 危地马拉 located?") == ["located"]
    assert question_words("布林肯在危地马拉会见了谁？") == []
    assert question_words("") == [] and question_words("?! 123 -- '") == []
    # a token that starts with a letter keeps its digits
    assert question_words("What did the G20 decide about COVID-19?") == ["G20", "decide", "COVID-19"]


def test_question_words_keep_order_and_drop_repeats():
    assert question_words("Trump met Xi; later Trump and Xi signed a deal with Xi") == \
        ["Trump", "met", "Xi", "later", "signed", "deal"]
    assert question_words("visa visa visa") == ["visa"]


def test_question_words_non_ascii_latin_stays_one_word():
    assert question_words("What are ergänzungsschulen?") == ["ergänzungsschulen"]
    assert question_words("Why did São Paulo and Zürich sign?") == ["São", "Paulo", "Zürich", "sign"]
    assert question_words("Was Łódź or Kraków chosen?") == ["Łódź", "Kraków", "chosen"]


def test_question_words_apostrophes_and_hyphens():
    assert question_words("Who founded the Xi'an-based start-up?") == ["founded", "Xi'an-based", "start-up"]
    assert question_words("What are the students' 'quoted' -dashed- words?") == ["students", "quoted", "dashed", "words"]
    assert question_words("Why don't officials agree?") == ["don't", "officials", "agree"]
    # a typographic apostrophe splits the word; the one-letter remainder is dropped
    assert question_words("Where is Xi’s office?") == ["Xi", "office"]


# ---------------------------------------------------------------- corpus_words


def test_corpus_words_fold_traditional_to_simplified():
    words = corpus_words("台灣總統今天出席國慶典禮並發表演說。")
    assert {"总统", "台湾", "国庆", "典礼"} <= words
    assert not {"總統", "台灣", "國慶", "典禮"} & words
    assert corpus_words("美國總統") == corpus_words("美国总统") == {"美国", "总统"}


def test_corpus_words_are_cjk_words_of_two_or_more_characters():
    text = "美国国务卿布林肯周四抵达危地马拉。The COVID-19 talks in 2024 went well, ＯＫ？的了是"
    words = corpus_words(text)
    assert {"国务卿", "危地马拉", "抵达", "周四"} <= words
    assert words and all(len(w) >= 2 and CJK_RE.search(w) and not w.isascii() for w in words)
    assert not any(c.isascii() and c.isalnum() for w in words for c in w)  # no English, no digits
    assert not {"的", "了", "是", "covid", "2024", "ok", "talks"} & words
    assert corpus_words("") == set() and corpus_words("Only English words here.") == set()


# ---------------------------------------------------------------- Lexicon files and translate

DIM = 16


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def e(i: int, dim: int = DIM) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


def at_cosine(c: float, axis: int = 0, other: int = 8) -> np.ndarray:
    """A unit vector at cosine `c` with e(axis), its remainder along e(other)."""
    return unit(c * e(axis) + np.sqrt(1 - c * c) * e(other))


def saved(tmp_path: Path, words: list[str], vectors, dim: int = DIM) -> Lexicon:
    d = tmp_path / "gen"
    d.mkdir(exist_ok=True)
    Lexicon.save(d, words, np.asarray(vectors, dtype=np.float32).reshape(len(words), dim), dim)
    return Lexicon.load(d, dim)


def test_lexicon_round_trip_small(tmp_path):
    import faiss

    words = ["总统", "签证", "危地马拉", "移民", "经济"]
    lex = saved(tmp_path, words, [e(i) for i in range(5)])
    assert lex.words == words
    assert {"lexicon.json", "lexicon.faiss", "lexicon.npy"} <= {p.name for p in (tmp_path / "gen").iterdir()}
    assert json.loads((tmp_path / "gen" / "lexicon.json").read_text(encoding="utf-8")) == words
    assert np.load(tmp_path / "gen" / "lexicon.npy").shape == (5, DIM)
    assert lex.index.ntotal == 5 and lex.index.d == DIM
    assert not isinstance(faiss.downcast_index(lex.index), faiss.IndexIVF)  # flat below 5,000 words
    for i, w in enumerate(words):
        assert lex.translate(e(i)[None]) == [w]
    # several query words at once: their matches in query order, each once
    assert lex.translate(np.stack([e(2), e(0), e(2)])) == ["危地马拉", "总统"]


def test_lexicon_single_word(tmp_path):
    lex = saved(tmp_path, ["总统"], [unit(np.arange(1, DIM + 1))])
    assert lex.translate(unit(np.arange(1, DIM + 1))[None]) == ["总统"]


def test_translate_respects_min_similarity(tmp_path):
    lex = saved(tmp_path, ["总统", "签证", "移民"], [e(0), e(1), e(2)])
    assert lex.translate(e(5)[None]) == []  # orthogonal to every word
    assert lex.translate(-e(0)[None]) == []
    assert lex.translate(at_cosine(MIN_SIMILARITY - 0.05)[None]) == []
    assert lex.translate(at_cosine(MIN_SIMILARITY + 0.05)[None]) == ["总统"]


def test_translate_keeps_per_word_matches_within_margin(tmp_path):
    # five words all at cosine 0.99 with the query: only PER_WORD of them
    close = [unit(0.99 * e(0) + np.sqrt(1 - 0.99**2) * e(i + 1)) for i in range(5)]
    lex = saved(tmp_path, [f"词{i}" for i in range(5)], close)
    got = lex.translate(e(0)[None])
    assert len(got) == PER_WORD == 3 and set(got) <= {f"词{i}" for i in range(5)}

    # best 0.95; 0.92 is within MARGIN (0.05) of it, 0.85 and 0.80 are not (though above MIN_SIMILARITY)
    assert MARGIN == pytest.approx(0.05)
    cos = [0.95, 0.92, 0.85, 0.80]
    lex = saved(tmp_path, ["甲乙", "丙丁", "戊己", "庚辛"], [at_cosine(c, other=i + 1) for i, c in enumerate(cos)])
    assert lex.translate(e(0)[None]) == ["甲乙", "丙丁"]
    # each query word has its own best: a second query word brings its own match
    assert lex.translate(np.stack([e(0), at_cosine(0.85, other=3)])) == ["甲乙", "丙丁", "戊己"]


def test_empty_lexicon_translates_to_nothing(tmp_path):
    lex = saved(tmp_path, [], np.zeros((0, DIM)))
    assert lex.words == [] and lex.index.ntotal == 0
    assert lex.translate(e(0)[None]) == []
    lex = saved(tmp_path, ["总统"], [e(0)])
    assert lex.translate(np.zeros((0, DIM), dtype=np.float32)) == []


def random_units(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_lexicon_ivf_path_finds_each_word_by_its_own_vector(tmp_path):
    import faiss

    n, dim = 6000, 32
    vecs = np.zeros((n, dim), dtype=np.float32)
    vecs[:, :-1] = random_units(n, dim - 1)  # the last axis left free for a query orthogonal to every word
    words = [f"词{i:05d}" for i in range(n)]
    lex = saved(tmp_path, words, vecs, dim)
    ivf = faiss.downcast_index(lex.index)
    assert isinstance(ivf, faiss.IndexIVFScalarQuantizer), type(ivf)
    assert ivf.ntotal == n and 1 <= ivf.nprobe < ivf.nlist  # probes a fraction of the lists, kept on disk
    assert lex.words == words
    sample = np.random.default_rng(1).choice(n, size=300, replace=False)
    _, ids = lex.index.search(vecs[sample], 1)
    assert (ids[:, 0] == sample).all()
    for i in sample[:50]:
        assert lex.translate(vecs[i][None])[0] == words[i]
    assert lex.translate(e(dim - 1, dim)[None]) == []  # orthogonal to every word: below MIN_SIMILARITY


def test_lexicon_flat_ivf_boundary(tmp_path):
    import faiss

    lex = saved(tmp_path, [f"词{i}" for i in range(4999)], random_units(4999, 8, seed=3), 8)
    assert not isinstance(faiss.downcast_index(lex.index), faiss.IndexIVF)
    lex = saved(tmp_path, [f"词{i}" for i in range(5000)], random_units(5000, 8, seed=3), 8)
    assert isinstance(faiss.downcast_index(lex.index), faiss.IndexIVF)


@pytest.fixture
def lexicon_dir(tmp_path) -> Path:
    d = tmp_path / "gen"
    d.mkdir()
    Lexicon.save(d, ["总统", "签证", "危地马拉"], np.stack([e(0), e(1), e(2)]), DIM)
    assert Lexicon.load(d, DIM).words == ["总统", "签证", "危地马拉"]
    return d


def assert_names(err: CorruptIndexError, path: Path) -> None:
    assert err.path == str(path) and str(path) in str(err), str(err)
    assert "rag index --rebuild" in str(err) and "\n" not in str(err)


def test_load_truncated_faiss(lexicon_dir):
    p = lexicon_dir / "lexicon.faiss"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(CorruptIndexError) as err:
        Lexicon.load(lexicon_dir, DIM)
    assert_names(err.value, p)


@pytest.mark.parametrize("content", ['{"总统": 1}', "[1, 2, 3]", '["总统", null, "签证"]', '"总统"', "[\"总统\"",
                                     "", "\xff\xfe"], ids=["dict", "ints", "null", "string", "truncated", "empty",
                                                           "not-utf8"])
def test_load_json_not_a_list_of_strings(lexicon_dir, content):
    p = lexicon_dir / "lexicon.json"
    p.write_bytes(content.encode("latin-1") if content == "\xff\xfe" else content.encode("utf-8"))
    with pytest.raises(CorruptIndexError) as err:
        Lexicon.load(lexicon_dir, DIM)
    assert_names(err.value, p)


def test_load_count_or_dimension_mismatch(lexicon_dir):
    (lexicon_dir / "lexicon.json").write_text(json.dumps(["总统", "签证"], ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CorruptIndexError) as err:
        Lexicon.load(lexicon_dir, DIM)
    assert str(lexicon_dir / "lexicon.faiss") in str(err.value) and "3" in str(err.value) and "2" in str(err.value)
    (lexicon_dir / "lexicon.json").write_text(json.dumps(["总统", "签证", "危地马拉", "多余"], ensure_ascii=False),
                                              encoding="utf-8")
    with pytest.raises(CorruptIndexError):
        Lexicon.load(lexicon_dir, DIM)
    (lexicon_dir / "lexicon.json").write_text(json.dumps(["总统", "签证", "危地马拉"], ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CorruptIndexError) as err:
        Lexicon.load(lexicon_dir, DIM * 2)  # an index of another embedder's dimension
    assert_names(err.value, lexicon_dir / "lexicon.faiss")


@pytest.mark.parametrize("name", ["lexicon.json", "lexicon.faiss"])
def test_load_missing_file(lexicon_dir, name):
    (lexicon_dir / name).unlink()
    with pytest.raises(CorruptIndexError) as err:
        Lexicon.load(lexicon_dir, DIM)
    assert_names(err.value, lexicon_dir / name)


# ---------------------------------------------------------------- the indexer keeps the lexicon

GUATEMALA = Article(title="布林肯访问危地马拉",
                    text="美国国务卿布林肯周四抵达危地马拉，会见危地马拉总统阿雷瓦洛，双方讨论移民与边境问题。",
                    url="https://news.example/guatemala")
WEATHER = Article(title="北京天气", text="北京今天下雨，气温骤降到十度，市民出行需要注意交通安全。",
                  url="https://news.example/weather")
STOCKS = Article(title="上海股市", text="上海股市今天上涨，投资者信心明显恢复，银行板块表现强劲。",
                 url="https://news.example/stocks")
TAIWAN = Article(title="國慶典禮", text="台灣總統今天出席國慶典禮並發表演說，Reuters reported in 2024.",
                 url="https://news.example/taiwan")
ENGLISH = Article(title="Football", text="The home team won the final match on Sunday evening.",
                  url="https://news.example/football")


def words_of(*articles: Article) -> set[str]:
    return set().union(*(corpus_words(a.title + "\n" + a.text) for a in articles))


def lexicon_of(root: Path) -> Lexicon:
    return Index.open(root).lexicon()


def assert_vectors_aligned(root: Path, emb) -> None:
    """Each stored word keeps its own vector (lexicon.npy row and FAISS entry), however the lexicon was edited."""
    idx = Index.open(root)
    lex = idx.lexicon()
    rows = {w: v for view in idx.views for w, v in zip(view.seg.words, np.load(view.seg.path / "lexicon.npy",
                                                                                allow_pickle=False))}
    stored = np.array([rows[w] for w in lex.words], dtype=np.float32).reshape(len(lex.words), emb.dim)
    fresh = FakeEmbedder(emb.dim, emb.name).embed_documents(lex.words)
    assert np.allclose(stored, fresh, atol=2e-3)
    for w, v in zip(lex.words, fresh):
        assert w in lex.translate(v[None]), w


def test_lexicon_holds_the_corpus_chinese_words(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    arts = [GUATEMALA, WEATHER, TAIWAN, ENGLISH]
    s = index_articles(arts, root, fake_embedder, progress=False)
    words = lexicon_of(root).words
    assert set(words) == words_of(*arts) and len(words) == len(set(words))
    assert s.words_embedded == len(words) > 10
    assert {"危地马拉", "国务卿", "总统", "台湾", "国庆"} <= set(words)
    assert not {"總統", "台灣", "國慶"} & set(words)  # stored Simplified
    assert all(len(w) >= 2 and not w.isascii() for w in words)
    assert not any(c.isascii() and c.isalnum() for w in words for c in w)  # no English word, no digits
    assert f"{s.words_embedded} lexicon words embedded" in s.render()
    assert_vectors_aligned(root, fake_embedder)


def test_english_only_corpus_has_an_empty_lexicon(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    s = index_articles([ENGLISH], root, fake_embedder, progress=False)
    assert s.words_embedded == 0 and s.total_chunks > 0
    lex = lexicon_of(root)
    assert lex.words == [] and lex.translate(fake_embedder.embed_queries(["football"])) == []
    # a Chinese article added later starts the lexicon
    s = index_articles([ENGLISH, WEATHER], root, fake_embedder, progress=False)
    assert s.words_embedded == len(words_of(WEATHER)) and set(lexicon_of(root).words) == words_of(WEATHER)


def test_unchanged_run_embeds_no_words(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    arts = [GUATEMALA, WEATHER]
    index_articles(arts, root, fake_embedder, progress=False)
    before, calls = lexicon_of(root).words, fake_embedder.calls
    again = index_articles(arts, root, fake_embedder, progress=False)
    assert again.words_embedded == 0 and again.generation is None
    assert fake_embedder.calls == calls
    assert lexicon_of(root).words == before


def test_added_article_embeds_only_its_new_words(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    index_articles([GUATEMALA, WEATHER], root, fake_embedder, progress=False)
    old = set(lexicon_of(root).words)
    new = words_of(STOCKS) - old
    assert new and words_of(STOCKS) & old  # "今天" is already known
    calls = fake_embedder.calls
    s = index_articles([GUATEMALA, WEATHER, STOCKS], root, fake_embedder, progress=False)
    assert (s.added, s.skipped) == (1, 2)
    assert s.words_embedded == len(new)
    assert fake_embedder.calls - calls == s.embedded + s.sentences_embedded + s.words_embedded
    assert set(lexicon_of(root).words) == old | new
    assert_vectors_aligned(root, fake_embedder)


def test_article_of_known_words_embeds_no_words(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    index_articles([GUATEMALA, WEATHER], root, fake_embedder, progress=False)
    old = set(lexicon_of(root).words)
    same_words = Article(title="北京天气", text="市民注意：北京今天下雨，气温十度。", url="https://news.example/again")
    assert words_of(same_words) <= old
    s = index_articles([GUATEMALA, WEATHER, same_words], root, fake_embedder, progress=False)
    assert s.added == 1 and s.words_embedded == 0
    assert set(lexicon_of(root).words) == old


def write_article(path: Path, title: str, text: str, url: str = "") -> Path:
    """As tests/test_indexer.py writes them: front matter when there is a URL, else the title line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = f"---\ntitle: {title}\nurl: {url}\n---\n" if url else f"{title}\n\n"
    path.write_text(head + text, encoding="utf-8")
    return path


def test_removed_article_takes_its_words_along(tmp_path, fake_embedder):
    src = tmp_path / "src"
    write_article(src / "weather.txt", WEATHER.title, WEATHER.text)
    write_article(src / "stocks.txt", STOCKS.title, STOCKS.text)
    gone = write_article(src / "guatemala.txt", GUATEMALA.title, GUATEMALA.text)
    root = tmp_path / "idx"
    index_paths([src], root, fake_embedder, progress=False)
    assert set(lexicon_of(root).words) == words_of(WEATHER, STOCKS, GUATEMALA)
    gone.unlink()
    s = index_paths([src], root, fake_embedder, progress=False, prune=True)
    assert (s.removed, s.total_articles, s.words_embedded) == (1, 2, 0)
    words = set(lexicon_of(root).words)
    only_there = words_of(GUATEMALA) - words_of(WEATHER, STOCKS)
    assert {"危地马拉", "国务卿", "阿雷瓦洛"} <= only_there
    assert not words & only_there
    assert words == words_of(WEATHER, STOCKS)
    assert "今天" in words  # shared with the remaining articles
    assert_vectors_aligned(root, fake_embedder)
    # the article back: its words live again, from the vectors still stored (a merge would have dropped them)
    write_article(src / "guatemala.txt", GUATEMALA.title, GUATEMALA.text)
    s = index_paths([src], root, fake_embedder, progress=False, prune=True)
    assert s.added == 1 and s.words_embedded == 0
    assert set(lexicon_of(root).words) == words_of(WEATHER, STOCKS, GUATEMALA)
    assert_vectors_aligned(root, fake_embedder)


def test_edited_article_loses_words_it_no_longer_holds(tmp_path, fake_embedder):
    src = tmp_path / "src"
    write_article(src / "weather.txt", WEATHER.title, WEATHER.text)
    path = write_article(src / "g.md", GUATEMALA.title, GUATEMALA.text, url=GUATEMALA.url)
    root = tmp_path / "idx"
    index_paths([src], root, fake_embedder, progress=False)
    assert "阿雷瓦洛" in lexicon_of(root).words
    write_article(path, GUATEMALA.title, "美国国务卿布林肯周四抵达危地马拉，双方讨论能源合作。", url=GUATEMALA.url)
    s = index_paths([src], root, fake_embedder, progress=False)
    assert s.updated == 1
    words = set(lexicon_of(root).words)
    assert "阿雷瓦洛" not in words and "边境" not in words
    assert {"能源", "合作", "危地马拉"} <= words
    assert s.words_embedded == len({"能源", "合作"} - words_of(WEATHER, GUATEMALA))


def test_lexicon_complete_with_jieba_tokenizer(tmp_path, fake_embedder):
    root = tmp_path / "idx"
    index_articles([GUATEMALA, WEATHER], root, fake_embedder, progress=False, tokenizer="jieba")
    assert set(lexicon_of(root).words) == words_of(GUATEMALA, WEATHER)


def test_lexicon_cap_keeps_the_most_frequent_words(tmp_path, fake_embedder, monkeypatch):
    monkeypatch.setattr(merge, "MAX_WORDS", 3)  # the cap applies where segments merge
    arts = [WEATHER, STOCKS, Article(title="今天新闻", text="今天北京下雨，今天上海上涨。", url="https://news.example/t")]
    root = tmp_path / "idx"
    index_articles(arts[:2], root, fake_embedder, progress=False)
    index_articles(arts[2:], root, fake_embedder, progress=False, source_name="memory:more")
    compact_index(root)
    words = lexicon_of(root).words
    assert len(words) == 3 and "今天" in words  # in every article
    assert set(words) <= words_of(*arts)
    assert_vectors_aligned(root, fake_embedder)


# ---------------------------------------------------------------- the bridge in retrieval


class BridgeEmbedder:
    """Known strings -> fixed unit vectors ("Guatemala" at cosine 0.9 with 危地马拉); any text with a space or over
    12 characters (a question, a chunk) -> one shared vector, so dense scores rank nothing and only BM25 over the
    question and its bridged words can find an article; any other word -> a hashed random unit vector."""

    def __init__(self, dim: int = 128, name: str = "bridge-test-128"):
        self.name, self.dim = name, dim
        g = self._hashed("axis:guatemala")
        other = self._hashed("axis:other")
        other = unit(other - (other @ g) * g)
        self.known = {"危地马拉": g, "Guatemala": unit(0.9 * g + np.sqrt(1 - 0.81) * other)}
        self.shared = self._hashed("axis:long text")

    def _hashed(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
        return unit(np.random.default_rng(seed).standard_normal(self.dim))

    def _one(self, text: str) -> np.ndarray:
        if text in self.known:
            return self.known[text]
        if " " in text or len(text) > 12:
            return self.shared
        return self._hashed(text)

    def embed_documents(self, texts):
        return np.stack([self._one(t) for t in texts]).astype(np.float32) if len(texts) else np.zeros((0, self.dim), np.float32)

    def embed_queries(self, texts):
        return self.embed_documents(texts)


QUESTION = "Who did Blinken meet in Guatemala?"
CORPUS = [WEATHER, STOCKS, TAIWAN, GUATEMALA]  # the Guatemala article last: first chunk id wins a tie


@pytest.fixture
def bridged_index(tmp_path):
    emb = BridgeEmbedder()
    root = tmp_path / "bridged"
    index_articles(CORPUS, root, emb, progress=False)
    assert not any(c.isascii() and c.isalpha() for c in GUATEMALA.title + GUATEMALA.text)  # no English in it
    return root, emb, searcher(root, emb)


def test_bridged_words_none_for_a_chinese_question(bridged_index):
    root, emb, s = bridged_index
    idx = s.refresh()
    assert s.bridged_words("布林肯在危地马拉会见了谁？", idx) == {}
    assert s.bridged_words("危地马拉总统是谁", idx) == {}


def test_bridged_words_map_an_english_word_to_the_corpus_word(bridged_index):
    root, emb, s = bridged_index
    idx = s.refresh()
    assert float(emb.known["Guatemala"] @ emb.known["危地马拉"]) == pytest.approx(0.9, abs=1e-5)
    assert s.bridged_words(QUESTION, idx) == {"危地马拉": pytest.approx(0.9, abs=0.02)}  # with its cosine (8-bit)
    assert s.bridged_words("Who won the football match?", idx) == {}  # nothing close enough
    assert s.bridged_words("What is it?", idx) == {}  # no content word


def test_loose_bridged_words_count_less_than_close_ones():
    from rag.index.lexicon import MIN_SIMILARITY
    from rag.lang import term_weight

    assert term_weight(0.95) == term_weight(0.8) == 1.0
    assert 0.2 <= term_weight(MIN_SIMILARITY) < term_weight(0.6) < term_weight(0.7) < 1.0


def test_english_question_finds_chinese_article_through_the_bridge(bridged_index):
    root, emb, _ = bridged_index
    (top,) = retrieve(QUESTION, index=root, k=1)
    assert top.title == GUATEMALA.title and top.url == GUATEMALA.url
    (top,) = retrieve(QUESTION, index=root, k=1, fusion=Fusion(mode="lexical"))
    assert top.title == GUATEMALA.title
    (top,) = retrieve(QUESTION, index=root, k=1, fusion=Fusion(mode="rrf"))
    assert top.title == GUATEMALA.title


def test_without_the_bridge_the_english_question_finds_nothing(bridged_index, monkeypatch):
    """Control: the same question with bridging turned off matches no Chinese term (so the tests above do test it)."""
    root, emb, _ = bridged_index
    monkeypatch.setattr(Searcher, "bridged_words", lambda self, question, idx: {})
    assert retrieve(QUESTION, index=root, k=1, fusion=Fusion(mode="lexical")) == []
    (top,) = retrieve(QUESTION, index=root, k=1, fusion=Fusion(name_boost=0.0, gloss_boost=0.0))
    assert top.title != GUATEMALA.title
    # the names Blinken (布林肯, transliterated) and Guatemala (危地马拉, the dictionary), and the words the
    # dictionary glosses, find it without the bridge
    (top,) = retrieve(QUESTION, index=root, k=1)
    assert top.title == GUATEMALA.title


def test_bridged_words_reach_the_answer_features(bridged_index):
    from rag.answer import features
    from rag.models.ranker import FEATURES

    root, emb, _ = bridged_index
    ev = gather(QUESTION, index=root, k=1)
    assert ev.passages[0].title == GUATEMALA.title
    assert ev.candidates and ev.features.shape == (len(ev.candidates), len(FEATURES))
    lex, cross_lex = FEATURES.index("lex"), FEATURES.index("cross_lex")
    with_word = [i for i, c in enumerate(ev.candidates) if "危地马拉" in c.text]
    assert with_word
    assert (ev.features[with_word, lex] > 0).all() and (ev.features[with_word, cross_lex] > 0).all()
    # without the bridged word no term of the English question is in these Chinese sentences
    plain = features(QUESTION, ev.candidates, {}, None)
    assert (plain[:, lex] == 0).all()
    bridged = features(QUESTION, ev.candidates, {}, None, bridge={"危地马拉": 0.9})
    assert (bridged[with_word, lex] > 0).all()
    # end to end: an answer (or an abstention), quoted from the Guatemala article only
    answer = ask(QUESTION, index=root)
    assert answer.text
    assert all(c.title == GUATEMALA.title for c in answer.citations), answer.citations


def test_english_question_over_english_only_corpus(tmp_path):
    emb = BridgeEmbedder()
    root = tmp_path / "en"
    index_articles([ENGLISH], root, emb, progress=False)
    s = searcher(root, emb)
    assert s.refresh().lexicon().words == []
    assert s.bridged_words("Which team won the final match?", s.refresh()) == {}
    (top,) = retrieve("Which team won the final match?", index=root, k=1, fusion=Fusion(mode="lexical"))
    assert top.title == ENGLISH.title


@pytest.mark.parametrize("text, folded", [
    ("Bernardo Arévalo", "bernardo arevalo"), ("Łódź, Ogród Saski", "lodz, ogrod saski"),
    ("Île-de-France", "ile-de-france"), ("Nguyễn Phú Trọng", "nguyen phu trong"), ("Straße", "strasse"),
    ("華沙的 Café", "华沙的 cafe"), ("Москва й", "москва й"), ("한국어 が", "한국어 が"),  # other scripts kept
])
def test_fold_drops_latin_accents_only(text, folded):
    from rag.lang import fold

    assert fold(text) == folded
    assert fold(text, version=1) == unicodedata.normalize("NFKC", text).lower().replace("華", "华")  # as before


def test_tokens_keep_an_accented_name_whole():
    from rag.lang import tokens

    assert tokens("Arévalo") == ["arevalo"] == tokens("Arevalo")
    assert tokens("Arévalo", version=1) == ["ar", "valo"]  # what indexes of token version 1 hold
