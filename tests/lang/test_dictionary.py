"""English -> Chinese dictionary (rag.lang.dictionary, CC-CEDICT read backwards): gloss parsing, word forms, phrase and
word lookups limited to the corpus's words, the shipped data, a missing data file, and the dictionary at work in
retrieval beside the embedding bridge."""
from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pytest

from rag.index import index_articles
from rag.lang import dictionary
from rag.lang.dictionary import parse, translate, word_forms
from rag.pipeline import retrieve
from rag.retrieve import Fusion, searcher
from rag.types import Article

LINES = [
    "# CC-CEDICT header line",
    "#! entries=12",
    "國家 国家 [guo2 jia1] /country; nation; state/CL:個|个[ge4]/",
    "華沙 华沙 [Hua2 sha1] /Warsaw, capital of Poland/",
    "超級碗 超级碗 [Chao1 ji2 wan3] /Super Bowl/",
    "旅行 旅行 [lu:3 xing2] /to travel/journey/trip/CL:次[ci4]/",
    "旅遊 旅游 [lu:3 you2] /trip/journey/tourism/travel/tour/to travel/",
    "總統 总统 [zong3 tong3] /president (of a country)/CL:個|个[ge4],位[wei4]/",
    "國 国 [guo2] /country/nation/state/",
    "邦國 邦国 [bang1 guo2] /old variant of 国家/country (literary)/",
    "廣東 广东 [Guang3 dong1] /Guangdong province (Kwangtung) in south China, capital Guangzhou/",
    "上海 上海 [Shang4 hai3] /Shanghai municipality, central east China, abbr. to 滬|沪[Hu4]/",
    "長篇 长篇 [chang2 pian1] /a very long description of something that is much too long to be a gloss/",
    "not a dictionary line",
]
D = parse(LINES)


def test_glosses_are_keys_and_headwords_simplified():
    assert D["country"] == ["国家", "国", "邦国"]  # the word glossing it first (sense 0) before a later sense
    assert D["nation"] == ["国家", "国"]
    assert D["super bowl"] == ["超级碗"]


def test_gloss_before_a_comma_and_without_to_or_parentheses():
    assert D["warsaw"] == ["华沙"]  # "Warsaw, capital of Poland"
    assert D["travel"] == ["旅行", "旅游"]  # "to travel", sense 0 of 旅行 before sense 3 of 旅游
    assert D["president"] == ["总统"]  # "(of a country)" dropped
    assert D["guangdong"] == ["广东"] and D["shanghai"] == ["上海"]  # "... province", "... municipality"
    assert "shanghai municipality" in D and "central east china" not in D


def test_classifiers_variants_and_long_glosses_are_not_keys():
    assert not any(k.startswith(("cl", "old variant")) for k in D)
    assert not any("description" in k for k in D)
    assert "国家" not in D.get("old variant of 国家", [])


@pytest.mark.parametrize("word,form", [("countries", "country"), ("Presidents", "president"),
                                       ("founded", "found"), ("travelling", "travell"), ("buses", "bus")])
def test_word_forms(word, form):
    forms = word_forms(word)
    assert forms[0] == word.lower() and form in forms


def test_short_words_keep_their_ending():
    assert word_forms("bus") == ["bus"] and word_forms("red") == ["red"]


def test_translate_phrases_and_words_within_the_vocabulary():
    vocab = {"国家", "华沙", "超级碗", "旅行", "旅游", "总统"}
    assert translate("Which country won the Super Bowl?", vocab, D) == ["超级碗", "国家"]
    assert translate("Which countries?", vocab, D) == ["国家"]  # plural
    assert translate("Which country?", {"华沙"}, D) == []  # 国家 not in the corpus: nothing
    assert translate("What is it?", vocab, D) == []  # stop words only
    assert translate("Who was the president?", vocab, D, per_key=1) == ["总统"]


def test_translate_keeps_per_key_words():
    vocab = {"国家", "国", "邦国"}
    assert translate("country", vocab, D, per_key=2) == ["国家", "国"]
    assert translate("country", vocab, D, per_key=1) == ["国家"]


def test_shipped_dictionary_knows_news_words():
    d = dictionary.load()
    assert len(d) > 50_000
    for key, word in [("tuesday", "星期二"), ("president", "总统"), ("visa", "签证"), ("warsaw", "华沙"),
                      ("stock exchange", "证券交易所"), ("scotland", "苏格兰")]:
        assert word in d[key], key


def test_sentence_meanings_gloss_its_chinese_words_and_keep_its_latin_ones():
    found = dictionary.sentence_meanings("布林肯在國家文化宮發表講話（speeches）。")  # folded: Traditional too
    assert {"speech", "country", "palace", "publish"} <= found  # 讲话, 国家, 文化宫, 发表; "speeches" stemmed
    assert dictionary.sentence_meanings("。") == set()


def test_gloss_overlap_weighs_the_question_words_a_sentence_means():
    q = "Where did the president give his speech?"
    speech, president, both, none = dictionary.gloss_overlap(
        q, ["他发表了讲话。", "总统来了。", "总统发表了讲话。", "天气很好。"])
    assert both == pytest.approx(1.0) and none == 0.0
    assert 0 < president < 1 and 0 < speech < 1 and speech + president == pytest.approx(1.0)
    _, weight = dictionary._meanings()  # rarer gloss words weigh more: 1 / log(2 + headwords glossed)
    assert speech / president == pytest.approx(weight["speech"] / weight["president"])
    assert weight["president"] > weight["speech"] > weight["person"]
    assert dictionary.gloss_overlap("Where?", ["总统来了。"]).tolist() == [0.0]  # no content word
    assert dictionary.gloss_overlap(q, []).shape == (0,)


def test_warm_builds_what_english_questions_look_up():
    dictionary._meanings.cache_clear()
    dictionary.warm()
    assert dictionary._meanings.cache_info().currsize == 1
    meanings, weight = dictionary._meanings()
    assert {"speech", "talk"} <= meanings["讲话"] and weight["speech"] > 0


def test_missing_data_warns_and_translates_nothing(monkeypatch, caplog):
    monkeypatch.setattr(dictionary, "DATA", ("rag", "no/such/file.txt.gz"))
    dictionary._load.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="rag.lang.dictionary"):
            assert dictionary.load() == {}
            assert translate("Which country?", {"国家"}) == []
        assert "rag: " in caplog.text and "dictionary unavailable" in caplog.text
    finally:
        dictionary._load.cache_clear()


STOCKS = Article(title="上海股市", text="上海股市今天上涨，投资者信心明显恢复，银行板块表现强劲。", url="https://news.example/stocks")
WEATHER = Article(title="北京天气", text="北京今天下雨，气温骤降到十度，市民出行需要注意交通安全。", url="https://news.example/weather")


class HashedEmbedder:
    """Any text -> a hashed random 128-dim unit vector: two different words sit at cosine ~0 +- 0.1, far below the
    embedding bridge's 0.5, so whatever an English question's words find lexically, the dictionary found."""

    name, dim = "hashed-128", 128

    def embed_documents(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out

    embed_queries = embed_documents


@pytest.fixture
def indexed(tmp_path):
    root, emb = tmp_path / "idx", HashedEmbedder()
    index_articles([WEATHER, STOCKS], root, emb, progress=False)
    return root, searcher(root, emb)


def test_dictionary_words_join_the_bridge(indexed, monkeypatch):
    root, s = indexed
    question = "Did the Shanghai stock market rise?"
    words = s.bridged_words(question, s.refresh())
    assert {"上海", "股市", "上涨"} <= set(words)
    assert all(v == dictionary.SIMILARITY for v in words.values())
    monkeypatch.setattr(dictionary, "load", lambda: {})
    assert s.bridged_words(question, s.refresh()) == {}


def test_english_question_finds_the_chinese_article_through_the_dictionary(indexed, monkeypatch):
    root, s = indexed
    question = "Did the Shanghai stock market rise?"
    (top,) = retrieve(question, index=root, k=1, fusion=Fusion(mode="lexical"))
    assert top.title == STOCKS.title
    monkeypatch.setattr(dictionary, "load", lambda: {})  # control: without it, nothing lexical matches
    assert retrieve(question, index=root, k=1, fusion=Fusion(mode="lexical")) == []


def test_concurrent_first_loads_parse_once(fresh_cache, monkeypatch):
    import threading

    calls = []
    real_parse = dictionary.parse
    monkeypatch.setattr(dictionary, "parse", lambda lines: calls.append(1) or real_parse(lines))
    try:
        threads = [threading.Thread(target=dictionary.load) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert calls == [1] and dictionary.load()["tuesday"]
    finally:
        dictionary._load.cache_clear()


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    dictionary._load.cache_clear()
    yield tmp_path / "cache"
    dictionary._load.cache_clear()


def test_the_parse_is_cached_and_the_cache_used(fresh_cache, monkeypatch):
    first = dictionary.load()
    (cached,) = fresh_cache.glob("cedict-v*.json")
    dictionary._load.cache_clear()
    monkeypatch.setattr(dictionary, "parse", lambda lines: pytest.fail("parsed although cached"))
    assert dictionary.load() == first and dictionary.readings()["林"] == "lin2"
    assert not list(fresh_cache.glob("*.tmp"))  # written whole, then renamed


@pytest.mark.parametrize("damage", ['{"glosses": {"a": "not a list"}, "readings": {}}', "{not json", '{"x": 1}', ""])
def test_a_damaged_cache_is_parsed_again_and_replaced(fresh_cache, caplog, damage):
    dictionary.load()
    (cached,) = fresh_cache.glob("cedict-v*.json")
    cached.write_text(damage, encoding="utf-8")
    dictionary._load.cache_clear()
    with caplog.at_level(logging.WARNING, logger="rag.lang.dictionary"):
        assert "星期二" in dictionary.load()["tuesday"]
    assert "damaged dictionary cache" in caplog.text and str(cached) in caplog.text
    assert json.loads(cached.read_text(encoding="utf-8"))["glosses"]["tuesday"]  # rewritten


def test_an_unwritable_cache_folder_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("RAG_CACHE_DIR", str(blocker / "cache"))
    dictionary._load.cache_clear()
    try:
        assert "星期二" in dictionary.load()["tuesday"]
    finally:
        dictionary._load.cache_clear()
