"""An article without a date takes the one its text's head states (a header stamp, a dateline with its year)."""
from __future__ import annotations

import json

import pytest

from rag.ingest import load_file
from rag.ingest.articles import dated_from_text
from rag.ingest.dates import date_from_text
from rag.types import Article


@pytest.mark.parametrize("head,url,expected", [
    ("2023-07-28 16:40，正文：今天上午，", "", "2023-07-28T16:40:00Z"),
    ("[ 2023-07-28 16：40 ] 正文：今天上午", "", "2023-07-28T16:40:00Z"),  # a full-width colon
    ("【2023-07-28 16:40】今天上午", "", "2023-07-28T16:40:00Z"),
    ("2023年07月19日 18:14:59 来自北京\n今天上午", "", "2023-07-19T18:14:59Z"),
    ("来源：新华网  |  2023年07月20日 09:12\n正文", "", "2023-07-20T09:12:00Z"),
    ("发布时间：2023-07-28\n正文", "", "2023-07-28T00:00:00Z"),
    ("２０２３－０７－２８\n今天上午", "", "2023-07-28T00:00:00Z"),
    ("新华社北京2023年7月28日电（记者张三）今天", "", "2023-07-28T00:00:00Z"),
    ("新华社北京7月28日电（记者张三）今天", "http://www.news.cn/2023-07/28/c_1129.htm", "2023-07-28T00:00:00Z"),
    ("IT之家 7 月 29 日消息，AYANEO", "https://www.ithome.com/2023/07/29/708.htm", "2023-07-29T00:00:00Z"),
    ("May 7, 2024 10:30 AM\nThe minister said", "", "2024-05-07T10:30:00Z"),
    ("Published: May 7, 2024\nThe minister", "", "2024-05-07T00:00:00Z"),
    ("WASHINGTON, May 7 (Reuters) - The", "https://reuters.com/world/2024/05/07/story/", "2024-05-07T00:00:00Z"),
])
def test_a_header_stamp_or_a_dated_dateline_gives_the_date(head, url, expected):
    assert date_from_text(head, url) == expected


@pytest.mark.parametrize("head,url", [
    ("新华社北京7月28日电（记者张三）今天", ""),  # no year anywhere: none is guessed
    ("新华社北京7月28日电（记者张三）今天", "http://www.news.cn/2023-08/01/c_1.htm"),  # the URL's month is another
    ("WASHINGTON, May 7 (Reuters) - The", ""),
    ("2020年4月2日19时20分，广州市天河区发生一起交通事故", ""),  # the event's date in the story, not the article's
    ("2023年7月31日，北京门头沟，双峪环岛道路上的车辆被淹", ""),
    ("The report of 2023-07-28 said", ""),
    ("记者从有关部门获悉，" * 20 + "新华社北京2023年7月28日电", ""),  # past the head
    ("2023-02-30 10:00，正文：", ""),  # no such day
    ("", ""),
])
def test_no_date_is_derived_without_one_stated(head, url):
    assert date_from_text(head, url) == ""


def test_the_derived_date_is_marked_and_metadata_wins(tmp_path):
    path = tmp_path / "news.jsonl"
    rows = [
        {"title": "汇率", "url": "crud://a/1", "published": "", "text": "2023-07-28 16:40，正文：人民币对美元汇率中间价报7.1。"},
        {"title": "汇率", "url": "crud://a/2", "published": "2023-08-01T09:00", "text": "2023-07-28 16:40，正文：汇率。"},
        {"title": "汇率", "url": "crud://a/3", "published": "", "text": "中新网北京7月28日电 人民币对美元汇率中间价报7.1。"},
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    derived, given, undated = load_file(path)
    assert (derived.published, derived.date_from_text) == ("2023-07-28T16:40:00Z", True)
    assert (given.published, given.date_from_text) == ("2023-08-01T09:00:00Z", False)
    assert (undated.published, undated.date_from_text) == ("", False)


def test_a_plain_text_file_whose_first_line_is_the_stamp(tmp_path):
    path = tmp_path / "news.txt"
    path.write_text("[ 2023-07-28 16：40 ]\n\n人民币对美元汇率中间价报7.1，较前一交易日调升10个基点。\n", encoding="utf-8")
    (article,) = load_file(path)
    assert article.published == "2023-07-28T16:40:00Z" and article.date_from_text


def test_front_matter_date_is_kept(tmp_path):
    path = tmp_path / "news.md"
    path.write_text("---\ntitle: 汇率\ndate: 2024-05-08\n---\n2023-07-28 16:40，正文：旧闻。\n", encoding="utf-8")
    (article,) = load_file(path)
    assert article.published == "2024-05-08T00:00:00Z" and not article.date_from_text


def test_dated_from_text_reads_the_title_too():
    a = Article(title="2023-07-28 16:40", text="人民币对美元汇率中间价报7.1。")
    assert dated_from_text(a).published == "2023-07-28T16:40:00Z"
    dated = Article(title="t", text="2023-07-28 16:40，正文：x", published="2024-01-01T00:00:00Z")
    assert dated_from_text(dated) is dated
