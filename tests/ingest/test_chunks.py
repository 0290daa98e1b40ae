"""Chunker: exact offsets (`article.text[c.start:c.end] == c.text`), consecutive ordinals, strictly increasing
starts, full coverage of the text, size limits, on real, Chinese, English, mixed and random (hypothesis) text."""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rag.ingest import CHUNK_SIZE, Chunker, load_file
from rag.ingest.chunks import split_article
from rag.types import Article

# CMRC 2018-style passage: long Chinese sentences, full-width punctuation, quotes, numbers, a few Latin words.
CMRC_LIKE = (
    "《战国无双3》（）是由光荣和ω-force开发的战国无双系列的正统第三续作。本作以三大故事为主轴，分别是以武田信玄等人为主的《关东三国志》，"
    "织田信长等人为主的《战国三杰》，石田三成等人为主的《关原的年轻武者》，丰富游戏内的剧情。此部份专门介绍角色，欲知武器情报、奥义字或擅长攻击类型等，"
    "请至战国无双系列1.由于乡里大辅先生因故去世，不得不寻找其他声优接手。从猛将传 and Z开始。2.战国无双 编年史的原创男女主角亦有专属声优。"
    "此模式是任天堂游戏谜之村雨城改编的新增模式。本作中共有20张战场地图（不含村雨城），后来发行的猛将传再新增3张战场地图。"
    "但游戏内战役数量繁多，部分地图会有兼用的状况，战役虚实则是以光荣发行的2本「战国无双3 人物真书」内容为主，以下是相关介绍。\n\n"
    "（注：前方加☆者为猛将传新增关卡及地图。）合并本篇和猛将传的内容，村雨城模式剔除，战国史模式可直接游玩。"
    "主打两大模式「战史演武」&「争霸演武」。系列作品外传作品。\n\n"
    "美国国务卿安东尼·布林肯（Antony Blinken）星期二前往危地马拉，同贝尔纳多·阿雷瓦洛（Bernardo Arévalo）总统讨论地区移民。"
    "国务院说，两位领导人讨论了“执法、移民管理和难民融入”；20国集团两年前达成移民议题的合作框架！这是真的吗？是的。"
)

ENGLISH = (
    "Secretary of State Antony Blinken traveled to Guatemala on Tuesday to discuss regional migration with "
    "President Bernardo Arevalo. The State Department said the two leaders discussed law enforcement, migration "
    "management and refugee integration; a framework agreed two years ago! Is that so? Yes, it is.\n\n"
    "Blinken said at the National Palace of Culture in Guatemala City that since then the partners had worked "
    "together to change the way the hemisphere handles a truly historic challenge. We have taken meaningful "
    "steps to expand lawful pathways, as an alternative to irregular migration, improve enforcement efforts, "
    "support receiving communities and strengthen protections for vulnerable people.\n"
    "A single line after a plain newline. " + "Averyveryverylongwordwithoutanyspaces" * 12
)

MIXED = (
    "2024年5月7日 — US Secretary of State Antony Blinken（布林肯）met President Arévalo in Guatemala City。"
    "他说：“We have taken meaningful steps.” 随后，双方讨论了 law enforcement、migration management 和 refugee "
    "integration！\n\nThe 洛杉矶宣言 (Los Angeles Declaration) reaffirmed the need for safe, orderly, humane and "
    "regular migration；它还强调需要解决导致移民的根本原因? 是的!\n" * 3
)


def assert_chunk_invariants(article: Article, chunks, size: int) -> None:
    text = article.text
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.article_id == article.id
        assert text[c.start : c.end] == c.text, (c.start, c.end, c.text)
        assert c.end - c.start == len(c.text)
        assert 0 < len(c.text) <= size, (len(c.text), size)
        assert c.text == c.text.strip(), "chunks are stripped of surrounding whitespace"
        assert c.heading == article.heading_at(c.start)
    starts = [c.start for c in chunks]
    assert all(a < b for a, b in zip(starts, starts[1:])), starts
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, f"uncovered chars at {missing[:10]}: {[text[i] for i in missing[:10]]}"
    if not text.strip():
        assert chunks == []


# ---------------------------------------------------------------- fixed texts


def test_seed_article(seed_file):
    (article,) = load_file(seed_file)
    chunks = Chunker().run(article)
    assert len(chunks) >= 3  # a ~2,000-char article at the default chunk size
    assert_chunk_invariants(article, chunks, CHUNK_SIZE)
    assert "布林肯" in chunks[0].text
    # consecutive chunks share text (overlap) or are separated only by whitespace
    for a, b in zip(chunks, chunks[1:]):
        assert b.start <= a.end or not article.text[a.end : b.start].strip()


@pytest.mark.parametrize("text", [CMRC_LIKE, ENGLISH, MIXED], ids=["cmrc-like", "english", "mixed"])
@pytest.mark.parametrize("size,overlap", [(300, 60), (100, 20), (50, 0), (20, 19), (512, 128)])
def test_languages_and_sizes(text, size, overlap):
    article = Article("标题 title", text)
    chunks = Chunker(size, overlap).run(article)
    assert_chunk_invariants(article, chunks, size)
    if len(text) > size:
        assert len(chunks) >= 2


def test_chinese_chunks_end_at_sentence_punctuation_when_they_can():
    article = Article("t", CMRC_LIKE)
    chunks = Chunker(100, 20).run(article)
    # the splitter prefers 。！？ boundaries; most chunks (not the last one) end right after one
    ends = [c.text[-1] for c in chunks[:-1]]
    assert sum(e in "。！？；" for e in ends) >= len(ends) // 2, ends


def test_overlap_is_bounded_and_present():
    article = Article("t", "啊" * 1000)
    chunks = Chunker(100, 30).run(article)
    assert_chunk_invariants(article, chunks, 100)
    for a, b in zip(chunks, chunks[1:]):
        assert 0 < a.end - b.start <= 30  # char-level split: the overlap is carried over, never more than asked


def test_short_and_empty_texts():
    assert Chunker().run(Article("t", "")) == []
    assert Chunker().run(Article("t", " \n\n\t ")) == []
    (only,) = Chunker().run(Article("t", "  短文本。  "))
    assert (only.text, only.start, only.end, only.ordinal) == ("短文本。", 2, 6, 0)


def test_headings_follow_offsets():
    text = "第一节\n\n" + "甲" * 250 + "。\n\n第二节\n\n" + "乙" * 250 + "。"
    h2 = text.index("第二节")
    article = Article("t", text, headings=((0, "第一节"), (h2, "第二节")))
    chunks = Chunker(100, 20).run(article)
    assert_chunk_invariants(article, chunks, 100)
    assert {c.heading for c in chunks} == {"第一节", "第二节"}
    assert all(c.heading == ("第二节" if c.start >= h2 else "第一节") for c in chunks)


def test_split_article_matches_chunker():
    article = Article("t", MIXED)
    assert split_article(article, 80, 10) == Chunker(80, 10).run(article)


@pytest.mark.parametrize("text,size,overlap", [
    ("aa" * 11, 20, 0),  # the second piece "aa" also occurs inside the first: must go after it
    (" aaaaaaa" * 5, 39, 32),  # a piece that extends the previous one from the same start
    (" a   " * 5, 20, 17),  # identical consecutive pieces
    ("aaaaaaaa aa" * 68, 20, 10),  # periodic text that defeats a greedy placement
    ("同上。" * 200, 40, 15),
])
def test_repeated_text_regressions(text, size, overlap):
    article = Article("t", text)
    assert_chunk_invariants(article, Chunker(size, overlap).run(article), size)


def test_long_periodic_text_is_fast_and_covered():
    text = "啊" * 60_000 + "\n\n" + "同上。" * 10_000
    article = Article("t", text)
    t0 = time.perf_counter()
    chunks = Chunker().run(article)
    assert time.perf_counter() - t0 < 10
    assert_chunk_invariants(article, chunks, CHUNK_SIZE)


# ---------------------------------------------------------------- property-based

CJK_PUNCT = list("。，！？；：、「」『』（）《》“”‘’…—·．")
ATOMS = st.one_of(
    st.text(min_size=1, max_size=12),  # any unicode, incl. surrogates-free odd whitespace
    st.text(alphabet="中文新闻布林肯危地马拉ab xyz" + "".join(CJK_PUNCT) + "\n\t\u3000.!?,;", min_size=1, max_size=15),
    st.sampled_from(["\n", "\n\n", " ", ". ", "。", "！", "？", "；", "，", "、", "\n \n", "\u3000"]),
)


@st.composite
def texts(draw):
    parts = draw(st.lists(ATOMS, max_size=60))
    if parts and draw(st.booleans()):  # repeated substrings: repeat a slice of the text several times
        i = draw(st.integers(0, len(parts) - 1))
        j = draw(st.integers(i + 1, len(parts)))
        parts = parts[:i] + parts[i:j] * draw(st.integers(2, 12)) + parts[j:]
    return "".join(parts)


@st.composite
def size_overlap(draw):
    size = draw(st.integers(20, 120))
    return size, draw(st.integers(0, size - 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts(), so=size_overlap())
def test_property_random_text(text, so):
    size, overlap = so
    article = Article("t", text)
    assert_chunk_invariants(article, Chunker(size, overlap).run(article), size)


@settings(max_examples=200, deadline=None)
@given(unit=st.text(alphabet="ab 。，\n中", min_size=1, max_size=12), reps=st.integers(1, 80), so=size_overlap())
def test_property_periodic_text(unit, reps, so):
    size, overlap = so
    article = Article("t", unit * reps)
    assert_chunk_invariants(article, Chunker(size, overlap).run(article), size)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs,words", [
    (dict(size=19), "chunk size must be an integer >= 20, got 19"),
    (dict(size=0), "chunk size must be an integer >= 20, got 0"),
    (dict(size=300.0), "chunk size must be an integer >= 20, got 300.0"),
    (dict(size="300"), "chunk size must be an integer >= 20, got '300'"),
    (dict(size=100, overlap=100), "chunk overlap must be an integer in [0, size), got 100"),
    (dict(size=100, overlap=150), "chunk overlap must be an integer in [0, size), got 150"),
    (dict(overlap=-1), "chunk overlap must be an integer in [0, size), got -1"),
    (dict(overlap=1.5), "chunk overlap must be an integer in [0, size), got 1.5"),
])
def test_validation_errors(kwargs, words):
    with pytest.raises(ValueError) as err:
        Chunker(**kwargs)
    assert str(err.value) == words


def test_split_article_validates_too():
    with pytest.raises(ValueError, match="chunk overlap"):
        split_article(Article("t", "text"), 50, 50)
