"""Names in English questions (rag.lang.names): which words are names, consonant skeletons on both sides, and whether
Chinese text mentions a name by spelling, dictionary translation or transliteration."""
from __future__ import annotations

import pytest

from rag.lang import dictionary
from rag.lang.names import (
    english_skeleton,
    mentions,
    misses_names,
    pinyin_skeleton,
    question_names,
    skeleton_distance,
    transliterations,
)


@pytest.mark.parametrize("question,expected", [
    ("Who did Blinken meet in Guatemala on Tuesday?", ["Blinken", "Guatemala"]),
    ("What was Ghandi's work called?", ["Ghandi"]),
    ("The Mark of Anarchy was written to protest against what?", ["Mark of Anarchy"]),
    ("Which NFL team won Super Bowl 50?", ["NFL", "Super Bowl"]),
    ("As of January 2016, how many digits does the largest prime have?", []),  # months are not names
    ("What is the capital?", []),
    ("In which year did the European Central Bank cut rates?", ["European Central Bank"]),
])
def test_question_names(question, expected):
    assert question_names(question) == expected


@pytest.mark.parametrize("en,zh,skeleton", [
    ("Blinken", "布林肯", "PLNKN"), ("Kearney", "科尔尼", "KLN"), ("Harris", "哈里斯", "HLS"),
    ("Perotti", "佩罗蒂", "PLT"), ("Turing", "图灵", "TLN"), ("Arevalo", "阿雷瓦洛", "LWL"),
])
def test_both_sides_reach_the_same_skeleton(en, zh, skeleton):
    readings = dictionary.readings()
    assert english_skeleton(en) == skeleton
    assert pinyin_skeleton(zh, readings) == skeleton


def test_skeleton_of_a_word_with_other_characters_is_none():
    readings = dictionary.readings()
    assert pinyin_skeleton("总统", readings) is None  # not transliteration characters
    assert pinyin_skeleton("林", readings) is None  # one character is no name


def test_transliterations_are_the_matching_runs():
    text = "美国国务卿安东尼·布林肯（Antony Blinken）星期二同阿雷瓦洛总统会谈。"
    readings = dictionary.readings()
    assert transliterations("Blinken", text, readings) == ["布林肯"]
    assert transliterations("Arevalo", text, readings) == ["阿雷瓦洛"]
    assert transliterations("Macron", text, readings) == []


def test_distance_costs():
    assert skeleton_distance("KLN", "KLN") == 0
    assert skeleton_distance("NLMN", "NMN") == 0.5  # Norman / 诺曼: the r left out
    assert skeleton_distance("TLMP", "TLNP") == 0.5  # Trump / 特朗普: m heard as n
    assert skeleton_distance("PLNKN", "KLN") >= 1.5


@pytest.mark.parametrize("name,text", [
    ("Blinken", "美国国务卿布林肯星期二抵达。"),  # transliterated
    ("Norman", "诺曼拦截了两次。"),
    ("Guatemala", "他前往危地马拉。"),  # dictionary
    ("European Central Bank", "欧洲央行宣布降息。"),
    ("Super Bowl", "第50届超级碗在加州举行。"),
    ("NFL", "美国国家橄榄球联盟（NFL）的冠军赛。"),  # spelled out
    ("BSkyB", "一系列BSkyB的内容。"),
])
def test_mentions(name, text):
    assert mentions(name, text)


@pytest.mark.parametrize("name,text", [
    ("Nobel Prize", "总统贝尔纳多·阿雷瓦洛会见了他。"),  # 贝尔 is not Nobel: a name keeps its first consonant
    ("European Central Bank", "美联储宣布降息。"),
    ("Blinken", "美国国务卿星期二抵达危地马拉。"),
    ("Super Bowl", "世界杯在卡塔尔举行。"),
])
def test_does_not_mention(name, text):
    assert not mentions(name, text)


def test_misses_names():
    texts = ["布林肯访问危地马拉", "美国国务卿布林肯星期二抵达危地马拉。"]
    assert not misses_names("Who did Blinken meet in Guatemala?", texts)
    assert not misses_names("Who did Blinken meet in Paris?", texts)  # one name mentioned is enough
    assert misses_names("What did the European Central Bank decide?", texts)
    assert not misses_names("What happened on the trip?", texts)  # no name: nothing to miss
    assert misses_names("Who did Blinken meet?", [])  # nothing retrieved mentions him


# ---------------------------------------------------------------- names in retrieval


@pytest.fixture
def two_articles(tmp_path):
    from conftest import FakeEmbedder

    from rag.index import index_articles
    from rag.retrieve import searcher
    from rag.types import Article

    a = Article(title="代表团出访", text="星期二，代表团前往墨西哥讨论移民问题。", url="https://news.example/a")
    b = Article(title="国务卿出访", text="布林肯访问了危地马拉，讨论移民问题。", url="https://news.example/b")
    root, emb = tmp_path / "idx", FakeEmbedder()
    index_articles([a, b], root, emb, progress=False)
    s = searcher(root, emb)
    idx = s.refresh()
    ids = {idx.passages([c], {c: 0.0})[0].title: c for c in idx.vec_ids.tolist()}
    return s, idx, ids[a.title], ids[b.title]


def test_chunks_mentioning_the_names_move_up(two_articles):
    from rag.retrieve import Fusion

    s, idx, a, b = two_articles
    ranked = [(a, 0.9), (b, 0.8)]
    q = "Where did Blinken travel on Tuesday?"
    names = lambda boost, **kw: Fusion(name_boost=boost, gloss_boost=0.0, **kw)  # noqa: E731
    boosted = s._boost(idx, q, ranked, names(0.25))
    assert [c for c, _ in boosted] == [b, a] and boosted[0][1] == pytest.approx(1.05)
    assert s._boost(idx, q, ranked, names(0.05)) == [(a, 0.9), (b, pytest.approx(0.85))]
    assert s._boost(idx, "Where did they travel on Tuesday?", ranked, names(0.25)) == ranked  # no name
    assert s._boost(idx, q, ranked, names(0.25, name_pool=1)) == ranked  # b is outside the pool


def test_chunks_whose_words_mean_the_question_move_up(two_articles):
    from rag.lang.dictionary import gloss_overlap
    from rag.retrieve import Fusion

    s, idx, a, b = two_articles
    ranked = [(b, 0.9), (a, 0.8)]
    q = "Which delegation travelled to Mexico on Tuesday?"  # 代表团, 墨西哥, 星期二: a's words, not b's
    g = gloss_overlap(q, ["代表团出访\n星期二，代表团前往墨西哥讨论移民问题。", "国务卿出访\n布林肯访问了危地马拉，讨论移民问题。"])
    assert g[0] > 0.5 > g[1]
    boosted = s._boost(idx, q, ranked, Fusion(name_boost=0.0, gloss_boost=0.2))
    assert boosted == [(a, pytest.approx(0.8 + 0.2 * g[0])), (b, pytest.approx(0.9 + 0.2 * g[1]))]
    assert s._boost(idx, q, ranked, Fusion(name_boost=0.0, gloss_boost=0.0)) == ranked


@pytest.mark.parametrize("kw", [{"name_boost": -0.1}, {"name_boost": 1.5}, {"name_pool": 0}, {"gloss_boost": -0.2}, {"gloss_boost": 2.0}])
def test_fusion_name_settings_are_checked(kw):
    from rag.retrieve import Fusion

    with pytest.raises(ValueError, match=f"Fusion.{next(iter(kw))}"):
        Fusion(**kw)
