"""The reading view, the library query and the Markdown export: pure functions, no browser."""
from __future__ import annotations

from dataclasses import asdict

import pytest

from rag.types import Answer, Article, Citation, StoryCopy
from rag.ui.inputs import InputError
from rag.ui.library import PAGE_SIZE, query_library
from rag.ui.render import conversation_markdown, library_html, render_article, render_sources, stats_html

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="alert(1)">'


def _article(**kw) -> Article:
    text = "第一段第一句。第一段第二句。\n\n第二段：布林肯星期二前往危地马拉。之后的句子。\n\n第三段。"
    base = {"title": "标题", "text": text, "url": "https://example.com/a", "published": "2024-05-08T01:22:03Z",
            "source": "voachinese"}
    return Article(**{**base, **kw})


def test_render_article_marks_the_exact_span_in_its_paragraph():
    a = _article()
    sentence = "布林肯星期二前往危地马拉。"
    start = a.text.index(sentence)
    out = render_article(a, start, start + len(sentence), "zh")
    assert out.count("<mark") == 1
    assert f'<p>第二段：<mark id="rag-cited">{sentence}</mark>之后的句子。</p>' in out
    assert out.count("<p>") == 3
    assert "<h3>标题</h3>" in out and "2024-05-08" in out and "voachinese" in out
    assert '<a href="https://example.com/a" rel="noopener noreferrer" target="_blank">' in out


def test_render_article_marks_by_offsets_not_by_search():
    a = _article(text="重复。重复。")
    out = render_article(a, 3, 6, "en")
    assert "<p>重复。<mark id=\"rag-cited\">重复。</mark></p>" in out


@pytest.mark.parametrize("span", [(None, None), (-1, 3), (5, 5), (0, 10_000), ("0", "3")])
def test_render_article_without_a_valid_span_marks_nothing(span):
    out = render_article(_article(), *span, lang="en")
    assert "<mark" not in out and out.count("<p>") == 3


def test_render_article_span_across_paragraphs_marks_each_part_once_anchored():
    a = _article(text="甲乙。\n\n丙丁。")
    out = render_article(a, 1, 6, "zh")
    assert out.count("<mark") == 2 and out.count('id="rag-cited"') == 1
    assert "<p>甲<mark id=\"rag-cited\">乙。</mark></p>" in out and "<p><mark>丙</mark>丁。</p>" in out


def test_render_article_escapes_an_xss_article():
    text = f"开头{SCRIPT}。\n\n引用的句子{IMG}。"
    a = _article(title=f"{SCRIPT}标题{IMG}", text=text, url="javascript:alert(1)", source=SCRIPT)
    start = text.index("引用")
    out = render_article(a, start, len(text), "zh")
    assert "<script" not in out and "<img" not in out and "href" not in out
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;标题" in out
    assert '<mark id="rag-cited">引用的句子&lt;img src=x onerror=&quot;alert(1)&quot;&gt;。</mark>' in out
    assert "javascript:alert(1)" in out  # shown as text, never linked


def test_render_article_missing():
    assert "no longer in the index" in render_article(None, 0, 1, "en")


def test_sources_have_a_read_button_per_citation():
    c = Citation(2, "abc", "t", "", "", "p", "s", 0, 1)
    out = render_sources(Answer("q", "s [2]", False, (c,), "en"), "en")
    assert '<button type="button" class="rag-read" data-num="2">Read the article</button>' in out


def test_conversation_markdown():
    sentence = f"他说{SCRIPT}这是测试。"
    c = Citation(1, "abc", f"标题 {IMG}", "https://example.com/a?x=<1>", "2024-05-08T01:22:03Z", "p", sentence, 0, 3)
    turns = [{"question": "谁 *说* 了什么？", "text": f"{sentence} [1]", "citations": [c.__dict__]},
             {"question": "No answer?", "text": "Nothing quotable.", "citations": []}]
    md = conversation_markdown(turns)
    assert md.startswith("# ") and md.endswith("\n")
    assert "## 1. 谁 \\*说\\* 了什么？" in md and "## 2. No answer?" in md.replace("\\", "")
    assert "- [1] 标题 " in md and "(2024-05-08) <https://example.com/a?x=%3C1%3E>" in md
    assert "  > 他说" in md and "<script" not in md and "<img" not in md
    assert "&lt;script&gt;" in md  # literal when the Markdown is rendered
    assert conversation_markdown([]).startswith("# ")


def test_conversation_markdown_lists_the_copies_carrying_a_sentence():
    copy = StoryCopy("b", f"转载 {IMG}", "https://example.com/b", "2024-05-09T00:00:00Z")
    c = Citation(1, "abc", "原文", "https://example.com/a", "2024-05-08", "p", "这是测试。", 0, 5, 1, (copy,), 2)
    md = conversation_markdown([{"question": "q", "text": "这是测试。 [1]", "citations": [asdict(c)]}])
    assert "  - also: 转载 " in md and "(2024-05-09) <https://example.com/b>" in md and "<img" not in md


def test_a_date_read_from_the_text_is_marked_wherever_it_is_shown():
    derived = Citation(1, "a", "汇率", "https://example.com/a", "2023-07-28T16:40:00Z", "p", "汇率。", 0, 3,
                       date_from_text=True)
    given = Citation(2, "b", "熊猫", "https://example.com/b", "2023-11-09T01:00:00Z", "p", "熊猫。", 0, 3)
    answer = Answer("q", "汇率。 [1] 熊猫。 [2]", False, (derived, given))
    zh, en = render_sources(answer, "zh"), render_sources(answer, "en")
    assert '<span class="rag-date">2023-07-28（日期取自正文）</span>' in zh
    assert '<span class="rag-date">2023-07-28 (date from text)</span>' in en
    assert '<span class="rag-date">2023-11-09</span>' in zh and '<span class="rag-date">2023-11-09</span>' in en
    assert "2023-07-28（日期取自正文） · " in render_article(_article(published=derived.published, date_from_text=True))
    assert "2024-05-08 · " in render_article(_article(), lang="en")
    md = conversation_markdown([{"question": "q", "text": answer.text, "citations": [asdict(derived), asdict(given)]}])
    assert "(2023-07-28, date from text) <https://example.com/a>" in md and "(2023-11-09) <https://example.com/b>" in md


class FakeIndex:
    def __init__(self, n):
        self.rows = [{"id": f"a{i:03d}", "title": f"Title {i}", "url": "", "published": f"2024-05-{1 + i % 28:02d}",
                      "source": "s1" if i % 2 else "s2", "chars": 100} for i in range(n)]
        self.calls = []

    def list_articles(self, offset, limit, *, date_from=None, date_to=None, source=None, title=None):
        self.calls.append((offset, limit, date_from, date_to, source, title))
        rows = [r for r in self.rows if (not source or r["source"] == source)
                and (not title or title.lower() in r["title"].lower())
                and (not date_from or r["published"] >= date_from) and (not date_to or r["published"] <= date_to)]
        return len(rows), rows[offset:offset + limit]


def test_library_pages_of_twenty_clamped():
    idx = FakeIndex(45)
    r = query_library(idx, 1)
    assert (r["total"], r["page"], r["pages"], len(r["rows"])) == (45, 1, 3, PAGE_SIZE) and PAGE_SIZE == 20
    r = query_library(idx, 3)
    assert (r["page"], len(r["rows"]), r["rows"][0]["id"]) == (3, 5, "a040")
    r = query_library(idx, 9)  # past the end: the last page
    assert (r["page"], len(r["rows"])) == (3, 5)
    assert query_library(idx, 0)["page"] == 1 and query_library(idx, "x")["page"] == 1
    assert query_library(FakeIndex(0), 2) == {"total": 0, "page": 1, "pages": 1, "rows": []}


def test_library_filters_are_passed_and_checked():
    idx = FakeIndex(45)
    r = query_library(idx, 1, "2024-05-02", "2024-05-03", " s1 ", " Title 1")
    assert idx.calls[-1] == (0, 20, "2024-05-02", "2024-05-03", "s1", "Title 1")
    assert all(x["source"] == "s1" for x in r["rows"])
    query_library(idx, 1, "", "", "", "")
    assert idx.calls[-1] == (0, 20, None, None, None, None)
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        query_library(idx, 1, "2024-13-01", "", lang="en")


def test_library_html_escapes_and_counts():
    r = {"total": 1, "page": 1, "pages": 1,
         "rows": [{"id": "x", "title": SCRIPT, "url": "javascript:alert(1)", "published": "2024-05-08", "source": IMG,
                   "chars": 12}]}
    out = library_html(r, "en")
    assert "<script" not in out and "<img" not in out and "href" not in out
    assert "1 articles · page 1 of 1" in out and "2024-05-08" in out and "12 characters" in out
    assert "No article matches" in library_html({"total": 0, "page": 1, "pages": 1, "rows": []}, "en")
    s = stats_html({"articles": 3, "chunks": 9, "embedder": "use-m3", "second_embedder": "e5",
                    "last_indexed": "2024-05-08T00:00:00Z"}, "en")
    assert "3 articles · 9 chunks" in s and "use-m3, e5" in s and "2024-05-08T00:00:00Z" in s


def test_sources_list_the_other_copies_of_a_story_escaped():
    from rag.types import StoryCopy

    other = StoryCopy("b", f"转载{SCRIPT}", "javascript:alert(1)", "2024-05-09T00:00:00Z", "x")
    linked = StoryCopy("c", "更正版", "https://example.com/c", "", "y")
    c = Citation(1, "a", "t", "https://example.com/a", "2024-05-08", "p s", "s", 2, 3, 2, (other, linked), 3)
    out = render_sources(Answer("q", "s [1]", False, (c,), "zh"), "zh")
    assert "另有 2 篇文章刊载了这句话" in out and "<script" not in out
    assert "转载&lt;script&gt;" in out and "2024-05-09" in out and "javascript:alert(1)" in out
    assert out.count('<a href="https://example.com/c"') == 1 and 'href="javascript' not in out
    alone = Citation(1, "a", "t", "", "", "p s", "s", 2, 3, 0, (), 3)
    assert "共有 3 个版本" in render_sources(Answer("q", "s [1]", False, (alone,), "zh"), "zh")
    plain = Citation(1, "a", "t", "", "", "p s", "s", 2, 3)
    assert "rag-also" not in render_sources(Answer("q", "s [1]", False, (plain,), "zh"), "zh")


def test_reading_view_lists_the_near_duplicates():
    from rag.types import StoryCopy

    copies = [StoryCopy("b", f"转载{IMG}", "https://example.com/b", "2024-05-09T00:00:00Z", "x"),
              {"article_id": "c", "title": "更正", "url": "", "published": "", "source": ""}]
    out = render_article(_article(), lang="en", copies=copies)
    assert "Other versions of this story (reprints or corrections, 3 in all)" in out
    assert "转载&lt;img" in out and "<img" not in out and "2024-05-09" in out and "date unknown" in out
    assert '<a href="https://example.com/b"' in out
    assert "rag-copies" not in render_article(_article(), lang="en")


def test_library_rows_get_a_remove_button_only_when_asked():
    rows = [{"id": 'x"><script>', "title": "标题", "url": "", "published": "", "source": "", "chars": 3}]
    result = {"total": 1, "page": 1, "pages": 1, "rows": rows}
    assert "rag-lib-remove" not in library_html(result, "zh")
    out = library_html(result, "zh", removable=True)
    assert 'data-id="x&quot;&gt;&lt;script&gt;"' in out and "<script" not in out and ">删除</button>" in out
