"""Tests for rag.ingest.articles: the seed format, each input format, encodings, bad input, dates and walks."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rag.errors import ArticleError, ArticleWarning
from rag.ingest import SUPPORTED_SUFFIXES, decode_bytes, iter_articles, load_file, parse_date
from rag.types import Article


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def paragraphs(article: Article) -> list[str]:
    return article.text.split("\n\n")


def assert_clean(article: Article) -> None:
    assert article.title and article.title == article.title.strip()
    for para in paragraphs(article):
        assert para and para == para.strip()
    for offset, heading in article.headings:
        assert article.text[offset : offset + len(heading)] == heading
        assert heading in paragraphs(article)


# ---------------------------------------------------------------- the seed (VOA Chinese export)


def test_seed_fields(seed_file):
    (article,) = load_file(seed_file)
    assert article.title == "布林肯前往危地马拉出席地区移民会议"
    assert article.url == "https://www.voachinese.com/a/blinken-in-guatemala-20240507/7602355.html"
    assert article.published == "2024-05-08T01:22:03Z"
    assert article.source == "voachinese"
    assert article.path == str(seed_file)
    caption = "危地马拉总统贝尔纳多·阿雷瓦洛同到访的美国国务卿布林肯握手。（2024年5月7日）"
    assert article.captions == (caption,)
    paras = paragraphs(article)
    assert paras[0] == caption
    assert paras[1].startswith("华盛顿 — 美国国务卿安东尼·布林肯（Antony Blinken）星期二前往危地马拉")
    assert paras[1].endswith("总统讨论地区移民。")
    assert article.text.endswith("拜登3月份在白宫同阿雷瓦洛举行了会谈。")
    assert [h for _, h in article.headings] == ["星期一通话", "执法", "目前工作"]
    assert_clean(article)
    for bad in ("<", ">", "&nbsp;", "&amp;", "&lt;", "\xa0", "Wed, 08 May"):
        assert bad not in article.text
    assert "\n\n\n" not in article.text
    assert len(paras) == 28  # caption + 24 body paragraphs (dateline joined to the first) + 3 headings


def test_seed_headings_split_paragraphs(seed_file):
    (article,) = load_file(seed_file)
    paras = paragraphs(article)
    i = paras.index("目前工作")
    assert paras[i - 1].endswith("真正融入他们的社区。”")
    assert paras[i + 1].startswith("前总统奥巴马和特朗普时期")
    assert article.heading_at(len(article.text) - 1) == "目前工作"
    assert article.heading_at(0) == ""


def test_voa_format_in_markdown_with_entities(tmp_path):
    path = write(
        tmp_path / "voa.md",
        "<!--1715132343000-->\n[A &amp; B \\[live\\]](https://www.voanews.com/a/x/1.html)\n------\n\n"
        "<div><i>not a date</i></div><p>First&nbsp;&nbsp; para &lt;ok&gt;<br/><br/>Second&amp;nbsp;para</p>",
    )
    (article,) = load_file(path)
    assert article.title == "A & B [live]"
    assert article.source == "voanews"
    assert article.published == "2024-05-08T01:39:03Z"  # no date line: the leading timestamp is used
    assert paragraphs(article) == ["not a date", "First para <ok>", "Second para"]


# ---------------------------------------------------------------- plain text and markdown


def test_txt_title_paragraphs_and_headings(tmp_path):
    path = write(
        tmp_path / "a.txt",
        "\n  Big   News Today  \n\nFirst\tparagraph   line one\nline two\n\n\n## Section  A ##\nBody of A.\n\nLast.\n",
    )
    (article,) = load_file(path)
    assert article.title == "Big News Today"
    assert paragraphs(article) == ["First paragraph line one\nline two", "Section A", "Body of A.", "Last."]
    assert article.headings == ((article.text.index("Section A"), "Section A"),)
    assert article.url == article.published == article.source == ""
    assert_clean(article)


def test_markdown_heading_title_front_matter_and_links(tmp_path):
    path = write(
        tmp_path / "b.md",
        "---\ntitle: 'Front Title'\ndate: 2024/5/8\nurl: https://news.sina.com.cn/c/1.html\n"
        "source: Sina\nauthor: x\n---\n\n"
        "# Front Title\n\nSee [the report](https://example.com/r) now. ![chart](c.png)\n\n"
        "Setext Heading\n--------------\n\n* item one\n* item two\n",
    )
    (article,) = load_file(path)
    assert article.title == "Front Title"
    assert article.published == "2024-05-08T00:00:00Z"
    assert article.url == "https://news.sina.com.cn/c/1.html"
    assert article.source == "Sina"
    assert paragraphs(article) == ["See the report now.", "Setext Heading", "* item one\n* item two"]
    assert [h for _, h in article.headings] == ["Setext Heading"]
    assert_clean(article)


def test_markdown_without_front_matter_source_from_url(tmp_path):
    path = write(tmp_path / "c.markdown", "---\nurl: https://www.bbc.co.uk/news/1\n---\nTitle line\n\nText.")
    (article,) = load_file(path)
    assert (article.title, article.text, article.source) == ("Title line", "Text.", "bbc")


def test_plain_text_with_stray_html(tmp_path):
    path = write(tmp_path / "d.txt", "Headline\n\nOne <b>bold</b> word &amp; more<br>next line\n\na < b and c > d")
    (article,) = load_file(path)
    assert paragraphs(article) == ["One bold word & more", "next line", "a < b and c > d"]


def test_one_line_file_is_title_and_text(tmp_path):
    (article,) = load_file(write(tmp_path / "e.txt", "Only one line here."))
    assert article.title == article.text == "Only one line here."


# ---------------------------------------------------------------- HTML

HTML_PAGE = """<!DOCTYPE html>
<html><head>
<meta charset="utf-8"><title>Storm hits coast</title>
<meta property="article:published_time" content="2024-05-08T09:22:03+08:00">
<link rel="canonical" href="https://www.example.com/news/storm">
<style>p { color: red } .x::before { content: "<p>styled</p>" }</style>
<script>var s = "<p>scripted &amp; bad</p>"; if (a < b) {}</script>
</head><body>
<nav><a href="/">Home</a> | <a href="/world">World</a></nav>
<header><div class="logo">Example News</div></header>
<article>
  <h1>Storm hits coast</h1>
  <p>The storm&nbsp;arrived   at dawn, <a href="#">officials</a> said.</p>
  <figure><img src="s.jpg" alt="storm"><figcaption>Waves at the pier.</figcaption></figure>
  <h2>Damage</h2>
  <div>Roofs were lost.<br>Power failed.</div>
  <ul><li>Item one</li><li>Item two</li></ul>
  <aside>Related: other story</aside>
  <noscript>Enable JS</noscript>
  <form><input value="Search"></form>
</article>
<footer>Copyright 2024</footer>
<script>document.write("late")</script>
</body></html>"""


def test_html_page(tmp_path):
    (article,) = load_file(write(tmp_path / "storm.html", HTML_PAGE))
    assert article.title == "Storm hits coast"
    assert article.published == "2024-05-08T01:22:03Z"
    assert article.url == "https://www.example.com/news/storm"
    assert article.source == "example"
    assert article.captions == ("Waves at the pier.",)
    assert paragraphs(article) == [
        "The storm arrived at dawn, officials said.",
        "Waves at the pier.",
        "Damage",
        "Roofs were lost.",
        "Power failed.",
        "Item one",
        "Item two",
    ]
    assert [h for _, h in article.headings] == ["Damage"]
    for dropped in ("<", "styled", "scripted", "Home", "Example News", "Related", "Enable JS", "Copyright", "late"):
        assert dropped not in article.text
    assert_clean(article)


def test_html_without_article_uses_body_and_fallbacks(tmp_path):
    page = (
        '<html><head><meta property="og:url" content="https://cn.nytimes.com/a/1"></head><body>'
        '<h1>Main Heading</h1><time datetime="2024-05-08">May 8</time><p>Body &lt;text&gt;.</p>'
        "<script>x()</script></body></html>"
    )
    (article,) = load_file(write(tmp_path / "p.htm", page))
    assert article.title == "Main Heading"
    assert article.url == "https://cn.nytimes.com/a/1"
    assert article.source == "nytimes"
    assert article.published == "2024-05-08T00:00:00Z"
    assert paragraphs(article) == ["May 8", "Body <text>."]


def test_html_jsonld_date_and_main(tmp_path):
    page = (
        '<html><head><script type="application/ld+json">{"@graph": [{"datePublished": "2024-05-08T01:22:03Z"}]}'
        "</script></head><body><div>menu</div><main><p>Main text.</p></main></body></html>"
    )
    (article,) = load_file(write(tmp_path / "q.html", page))
    assert article.published == "2024-05-08T01:22:03Z"
    assert article.text == "Main text."


def test_html_with_no_text_is_an_error(tmp_path):
    with pytest.raises(ArticleError, match="no text"):
        load_file(write(tmp_path / "empty.html", "<html><body><script>x()</script><nav>Home</nav></body></html>"))


# ---------------------------------------------------------------- JSON lines


def test_jsonl_good_and_bad_lines(tmp_path):
    lines = [
        json.dumps({"title": "One", "url": "https://www.reuters.com/a", "published": "2024-05-08", "text": "First."}),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"title": "No text"}),
        json.dumps({"title": "Blank text", "text": "   \n "}),
        json.dumps({"title": 5, "text": "x"}),
        json.dumps({"text": "Second article first line that is quite long " * 4 + "\nmore", "published": 1715131323000,
                    "source": "wire"}),  # fmt: skip
        "   ",
        json.dumps({"title": "Three", "text": "Para 1\n\n\nPara  2", "url": None}, ensure_ascii=False),
    ]
    path = write(tmp_path / "batch.jsonl", "\n".join(lines) + "\n")
    ((file_path, articles, errors),) = list(iter_articles([path]))
    assert file_path == str(path)
    long_title = ("Second article first line that is quite long " * 2)[:80].rstrip()
    assert [a.title for a in articles] == ["One", long_title, "Three"]
    assert all(a.path == str(path) for a in articles)
    one, two, three = articles
    assert (one.url, one.published, one.source) == ("https://www.reuters.com/a", "2024-05-08T00:00:00Z", "reuters")
    assert (two.published, two.source, two.url) == ("2024-05-08T01:22:03Z", "wire", "")
    assert three.text == "Para 1\n\nPara 2"
    assert [e.line for e in errors] == [3, 4, 5, 6, 7]
    assert all(e.path == str(path) for e in errors)
    assert "not valid JSON" in errors[0].reason
    assert "not a JSON object" in errors[1].reason
    assert "'text'" in errors[2].reason and "'text'" in errors[3].reason
    assert "'title'" in errors[4].reason and "string" in errors[4].reason
    assert str(errors[0]).startswith(f"{path}:3: ")

    with pytest.raises(ArticleError) as info:
        load_file(path)
    assert info.value.line == 3


def test_jsonl_only_blank_lines_is_no_text(tmp_path):
    with pytest.raises(ArticleError, match="no text"):
        load_file(write(tmp_path / "blank.jsonl", "\n\n  \n"))


# ---------------------------------------------------------------- encodings

SIMPLIFIED_LONG = (
    "布林肯前往危地马拉出席地区移民会议",
    "美国国务卿安东尼·布林肯星期二前往危地马拉，同贝尔纳多·阿雷瓦洛总统讨论地区移民。\n\n"
    "国务院说，两位领导人讨论了“执法、移民管理和难民融入”，20国集团两年前达成移民议题的合作框架。\n\n"
    "拜登3月份在白宫同阿雷瓦洛举行了会谈。",
)
TRADITIONAL_LONG = (
    "布林肯前往瓜地馬拉出席地區移民會議",
    "美國國務卿安東尼·布林肯星期二前往瓜地馬拉，同貝爾納多·阿雷瓦洛總統討論地區移民。\n\n"
    "國務院說，兩位領導人討論了「執法、移民管理和難民融入」，20國集團兩年前達成移民議題的合作框架。\n\n"
    "拜登3月份在白宮同阿雷瓦洛舉行了會談。",
)
SIMPLIFIED_SHORT = ("新闻", "今天天气很好。")
TRADITIONAL_SHORT = ("新聞", "今天天氣很好。")

ENCODING_CASES = [
    (encoding, sample)
    for encoding in ("utf-8", "utf-8-sig", "gb18030", "gbk")
    for sample in (SIMPLIFIED_LONG, SIMPLIFIED_SHORT, TRADITIONAL_LONG, TRADITIONAL_SHORT)
] + [("big5", TRADITIONAL_LONG), ("big5", TRADITIONAL_SHORT)]


@pytest.mark.parametrize(("encoding", "sample"), ENCODING_CASES, ids=lambda v: v if isinstance(v, str) else v[0])
def test_encodings_round_trip(tmp_path, encoding, sample):
    title, text = sample
    path = write(tmp_path / "zh.txt", f"{title}\n\n{text}\n", encoding=encoding)
    (article,) = load_file(path)
    assert article.title == title
    assert article.text == text
    assert "\ufeff" not in article.title


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("中文测试", "gbk"),
        ("国务院说，两位领导人讨论了执法。", "gb18030"),
        ("國務院說，兩位領導人討論了執法。", "big5"),
        ("臺灣新聞報導", "big5"),
        ("美国之音", "gb18030"),
    ],
)
def test_decode_bytes_short_chinese(text, encoding):
    assert decode_bytes(text.encode(encoding), "x.txt") == text


def test_decode_bytes_utf16_with_bom():
    assert decode_bytes("标题\n正文".encode("utf-16"), "x.txt") == "标题\n正文"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "no text"),
        ("blank.md", b"  \n\t\r\n   \n", "no text"),
        ("blank-bom.txt", b"\xef\xbb\xbf \n\n", "no text"),
        ("heading-only.md", b"# Just a title\n\n", "no text"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00" + bytes(range(256)) * 4, "binary or undecodable"),
        ("controls.txt", bytes(range(1, 9)) * 50, "binary or undecodable"),
        ("damaged.txt", "标题\n\n这是一个正常的中文段落。".encode() + b"\xff\xfe" + "还有更多的中文字。".encode(), "invalid UTF-8"),
        ("bad-bom.txt", b"\xef\xbb\xbfTitle\n\nText \xff", "binary or undecodable"),
    ],
)
def test_bad_files(tmp_path, name, content, reason):
    path = write(tmp_path / name, content)
    with pytest.raises(ArticleError, match=reason) as info:
        load_file(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_undecodable_bytes(tmp_path):
    # no NUL, not UTF-8, and neither charset-normalizer nor the Chinese codecs find text in it
    data = bytes((i * 37 + 11) % 255 + 1 for i in range(3000))
    with pytest.raises(ArticleError, match="binary or undecodable"):
        decode_bytes(data, tmp_path / "noise.txt")


def test_oversize_file_checked_before_reading(tmp_path, monkeypatch):
    path = write(tmp_path / "big.txt", "Title\n\n" + "x" * 500)

    def no_open(*args, **kwargs):
        raise AssertionError("read an over-size file")

    monkeypatch.setattr("builtins.open", no_open)
    with pytest.raises(ArticleError, match="507 bytes.*100 bytes") as info:
        load_file(path, max_bytes=100)
    assert info.value.path == str(path)


def test_unsupported_suffix_given_explicitly(tmp_path):
    path = write(tmp_path / "doc.pdf", "Title\n\nText")
    with pytest.raises(ArticleError, match="unsupported file type .pdf"):
        load_file(path)
    ((file_path, result, errors),) = list(iter_articles([path]))
    assert file_path == str(path) and isinstance(result, ArticleError) and errors == []


def test_missing_path_is_reported(tmp_path):
    ((file_path, result, _),) = list(iter_articles([tmp_path / "nope.txt"]))
    assert isinstance(result, ArticleError) and "no such file" in result.reason


def test_supported_suffixes():
    assert SUPPORTED_SUFFIXES == {".txt", ".md", ".markdown", ".html", ".htm", ".jsonl"}


# ---------------------------------------------------------------- directory walks


def build_tree(root: Path) -> None:
    write(root / "b.txt", "B title\n\nB text.")
    write(root / "a.md", "# A title\n\nA text.")
    write(root / "empty.txt", "")
    write(root / "skip.pdf", "not read")
    write(root / "notes.TXT", "Upper suffix\n\nStill read.")
    write(root / ".hidden.txt", "Hidden\n\nNot read.")
    write(root / ".git" / "x.txt", "Hidden dir\n\nNot read.")
    write(root / "sub" / "c.jsonl", json.dumps({"title": "C", "text": "C text."}) + "\n[]\n")
    write(root / "sub" / "deeper" / "d.html", "<title>D</title><p>D text.</p>")
    write(root / "z.htm", b"\x00\x01binary")


def test_walk_order_and_batch_goes_on(tmp_path):
    root = tmp_path / "corpus"
    build_tree(root)
    results = list(iter_articles([root]))
    names = [os.path.relpath(p, root) for p, _, _ in results]
    assert names == ["a.md", "b.txt", "empty.txt", "notes.TXT", "z.htm", "sub/c.jsonl", "sub/deeper/d.html"]
    by_name = dict(zip(names, results))
    assert isinstance(by_name["empty.txt"][1], ArticleError)
    assert isinstance(by_name["z.htm"][1], ArticleError) and "binary" in by_name["z.htm"][1].reason
    assert [a.title for a in by_name["sub/deeper/d.html"][1]] == ["D"]
    _, c_articles, c_errors = by_name["sub/c.jsonl"]
    assert [a.title for a in c_articles] == ["C"] and [e.line for e in c_errors] == [2]

    def summary(items):  # exceptions compare by identity, so compare their messages
        return [(p, str(r) if isinstance(r, ArticleError) else r, [str(e) for e in errs]) for p, r, errs in items]

    assert summary(results) == summary(iter_articles(str(root)))  # deterministic; a single path is accepted too


def test_walk_symlinks(tmp_path):
    root = tmp_path / "root"
    outside = write(tmp_path / "outside" / "secret.txt", "Secret\n\nOutside text.")
    write(root / "real" / "in.txt", "Inside\n\nInside text.")
    (root / "link_out.txt").symlink_to(outside)
    (root / "link_in.txt").symlink_to(root / "real" / "in.txt")
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "dir_out").symlink_to(outside.parent, target_is_directory=True)
    (root / "broken.txt").symlink_to(tmp_path / "missing.txt")

    results = {os.path.relpath(p, root): r for p, r, _ in iter_articles([root])}
    assert set(results) == {"broken.txt", "link_in.txt", "link_out.txt"}  # real/in.txt: same file, read once
    assert isinstance(results["link_out.txt"], ArticleError)
    assert "symlink points outside" in results["link_out.txt"].reason
    assert isinstance(results["broken.txt"], ArticleError)
    assert [a.title for a in results["link_in.txt"]] == ["Inside"]
    # given explicitly, a symlinked file is simply read
    assert [a.title for a in load_file(root / "link_out.txt")] == ["Secret"]


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wed, 08 May 2024 01:22:03 GMT", "2024-05-08T01:22:03Z"),
        ("Wed, 08 May 2024 09:22:03 +0800", "2024-05-08T01:22:03Z"),
        ("2024-05-08T01:22:03Z", "2024-05-08T01:22:03Z"),
        ("2024-05-08T01:22:03.250Z", "2024-05-08T01:22:03Z"),
        ("2024-05-08T09:22:03+08:00", "2024-05-08T01:22:03Z"),
        ("2024-05-07T21:22:03-0400", "2024-05-08T01:22:03Z"),
        ("2024-05-08T01:22:03", "2024-05-08T01:22:03Z"),
        ("2024-05-08 01:22", "2024-05-08T01:22:00Z"),
        ("2024-05-08", "2024-05-08T00:00:00Z"),
        ("2024/5/8", "2024-05-08T00:00:00Z"),
        ("2024/05/08 01:22:03", "2024-05-08T01:22:03Z"),
        ("2024.5.8", "2024-05-08T00:00:00Z"),
        ("2024年5月8日", "2024-05-08T00:00:00Z"),
        ("2024年5月8日 9时30分", "2024-05-08T09:30:00Z"),
        ("2024年05月08日 01:22", "2024-05-08T01:22:00Z"),
        ("May 8, 2024", "2024-05-08T00:00:00Z"),
        ("8 May 2024", "2024-05-08T00:00:00Z"),
        (1715131323000, "2024-05-08T01:22:03Z"),
        (1715131323, "2024-05-08T01:22:03Z"),
        (1715131323.5, "2024-05-08T01:22:03Z"),
        ("1715131323000", "2024-05-08T01:22:03Z"),
        ("  2024-05-08  ", "2024-05-08T00:00:00Z"),
        ("", ""),
        (None, ""),
        (True, ""),
        ("yesterday", ""),
        ("2024-13-45", ""),
        ("2024/2/30", ""),
        (float("nan"), ""),
        (10**30, ""),
    ],
)
def test_parse_date(value, expected):
    assert parse_date(value) == expected


# ---------------------------------------------------------------- property: any text file


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.text(max_size=300))
def test_any_text_file_gives_article_or_clean_error(tmp_path, content):
    path = tmp_path / "fuzz.txt"
    path.write_bytes(content.encode("utf-8"))
    try:
        articles = load_file(path)
    except ArticleError as e:
        assert e.path == str(path) and e.reason
        return
    (article,) = articles
    assert article.text
    assert_clean(article)
    assert "\n\n\n" not in article.text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.text(alphabet=st.sampled_from(list("<>/&;#!-[]()\n pdivbrhstrong中文 a=\"'")), max_size=200))
def test_markup_like_text_never_crashes(tmp_path, content):
    for suffix in (".md", ".html"):
        path = tmp_path / f"fuzz{suffix}"
        path.write_text(content, encoding="utf-8")
        try:
            (article,) = load_file(path)
        except ArticleError:
            continue
        assert_clean(article)


# ---------------------------------------------------------------- hostile dates and escapes (#25)


def _no_surrogates(article: Article) -> None:
    for value in (article.title, article.text, article.url, article.source, article.published, *article.captions):
        value.encode("utf-8")  # raises on a lone surrogate: the index could not store it


def test_unreadable_dates_are_dropped_with_a_warning_and_the_file_goes_on(tmp_path):
    lines = [
        json.dumps({"title": "Huge", "text": "One.", "published": 10**400}),
        '{"title": "Longer than int() reads", "text": "Two.", "published": 1' + "0" * 5000 + "}",
        json.dumps({"title": "Five-digit year", "text": "Three.", "published": "99999-01-01"}),
        json.dumps({"title": "Fine", "text": "Four.", "published": "2024-05-08"}),
        json.dumps({"title": "Negative", "text": "Five.", "published": -1}),
    ]
    path = write(tmp_path / "dates.jsonl", "\n".join(lines) + "\n")
    ((_, articles, problems),) = list(iter_articles([path]))
    assert [(a.title, a.published) for a in articles] == [
        ("Huge", ""), ("Longer than int() reads", ""), ("Five-digit year", ""), ("Fine", "2024-05-08T00:00:00Z"),
        ("Negative", ""),
    ]
    assert all(isinstance(p, ArticleWarning) for p in problems)
    assert [p.line for p in problems] == [1, 2, 3, 5]
    assert str(problems[2]).startswith(f"{path}:3: field 'published' ('99999-01-01') is not a date")
    assert [a.title for a in load_file(path)] == [a.title for a in articles]  # warnings do not make load_file fail


def test_front_matter_offset_beyond_a_day_is_dropped_naming_the_line(tmp_path):
    path = write(tmp_path / "a.md", "---\ntitle: Offset\nsource: wire\ndate: 2024-05-01 10:00 +2500\n---\n\nBody.\n")
    ((_, (article,), (warning,)),) = list(iter_articles([path]))
    assert (article.title, article.text, article.published, article.source) == ("Offset", "Body.", "", "wire")
    assert isinstance(warning, ArticleWarning) and warning.line == 4
    assert "front matter date ('2024-05-01 10:00 +2500')" in str(warning)
    ok = write(tmp_path / "b.md", "---\ntitle: Fine\ndate: 2024-05-01 10:00 +0800\n---\n\nBody.\n")
    ((_, (article,), warnings),) = list(iter_articles([ok]))
    assert article.published == "2024-05-01T02:00:00Z" and warnings == []


def test_html_date_past_utc_range_is_dropped_naming_the_tag(tmp_path):
    head = '<meta property="article:published_time" content="9999-12-31T23:59:59-23:59">'
    path = write(tmp_path / "a.html", f"<html><head>{head}</head><body><p>Body text.</p></body></html>")
    ((_, (article,), (warning,)),) = list(iter_articles([path]))
    assert article.published == "" and article.text == "Body text."
    assert str(warning).startswith(f'{path}: meta[property="article:published_time"] content')
    # a later date tag that can be read wins, without a warning
    head += '<meta name="pubdate" content="2024-05-08T01:22:03Z">'
    path = write(tmp_path / "b.html", f"<html><head>{head}</head><body><p>Body text.</p></body></html>")
    ((_, (article,), warnings),) = list(iter_articles([path]))
    assert article.published == "2024-05-08T01:22:03Z" and warnings == []


@pytest.mark.parametrize("field", ["title", "text", "url", "source", "published"])
def test_jsonl_line_with_a_lone_surrogate_is_rejected_by_number(tmp_path, field):
    good = [json.dumps({"title": f"Good {i}", "text": f"Text {i}."}) for i in range(6)]
    bad = {"title": "Bad", "text": "Bad text.", "url": "https://x.example/a", "source": "wire", "published": "2024-05-08"}
    bad[field] = bad[field][:3] + "\ud800" + bad[field][3:]
    lines = good + [json.dumps(bad), json.dumps({"title": "Last", "text": "After the bad line."})]
    path = write(tmp_path / "s.jsonl", "\n".join(lines) + "\n")
    ((_, articles, (error,)),) = list(iter_articles([path]))
    assert [a.title for a in articles] == [f"Good {i}" for i in range(6)] + ["Last"]
    assert not isinstance(error, ArticleWarning) and error.line == 7
    assert str(error).startswith(f"{path}:7: field '{field}' holds a lone surrogate escape (\\ud800 at character 3)")
    for article in articles:
        _no_surrogates(article)


def test_jsonl_surrogate_pairs_are_characters(tmp_path):
    path = write(tmp_path / "e.jsonl", '{"title": "Emoji \\ud83d\\ude00", "text": "Smile \\ud83d\\ude00."}\n')
    ((_, (article,), errors),) = list(iter_articles([path]))
    assert article.title == "Emoji 😀" and article.text == "Smile 😀." and errors == []


def test_jsonld_date_with_a_lone_surrogate_is_ignored(tmp_path):
    ld = '<script type="application/ld+json">{"datePublished": "2024-05-08\\ud800", "headline": "\\udfff"}</script>'
    page = f"<html><head><title>T</title>{ld}</head><body><p>Body &#xD800; text.</p></body></html>"
    ((_, (article,), warnings),) = list(iter_articles([write(tmp_path / "a.html", page)]))
    assert article.published == "" and warnings == []
    _no_surrogates(article)  # the character reference became U+FFFD
    both = ld.replace("{", "[{", 1).replace("}</script>", '}, {"datePublished": "2024-05-09"}]</script>')
    page = f"<html><head><title>T</title>{both}</head><body><p>Body.</p></body></html>"
    (article,) = load_file(write(tmp_path / "b.html", page))
    assert article.published == "2024-05-09T00:00:00Z"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.text(alphabet=st.sampled_from(["a", "中", " ", "\ud800", "\udc00", "\ud83d", "\ude00", "."]),
                               max_size=12), min_size=5, max_size=5))
def test_no_article_field_ever_carries_a_surrogate(tmp_path, values):
    obj = dict(zip(["title", "text", "url", "source", "published"], values))
    path = tmp_path / "fuzz.jsonl"
    path.write_text(json.dumps(obj) + "\n" + json.dumps({"title": "ok", "text": "ok."}) + "\n", encoding="utf-8")
    ((_, articles, problems),) = list(iter_articles([path]))
    assert articles[-1].title == "ok"  # the other line always gets in
    for article in articles:
        _no_surrogates(article)
    for p in problems:
        assert p.path == str(path) and p.line == 1
