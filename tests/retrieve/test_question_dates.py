"""Dates in questions (rag.lang.when) against a fixed `now`, and `ask(..., now=...)` over one story on several days."""
from __future__ import annotations

import dataclasses
import functools
import json
from datetime import date, datetime

import pytest
from conftest import FakeEmbedder

from rag import cli
from rag.answer import AnswerConfig, Candidate, by_date
from rag.answer.compose import date_note
from rag.evaluation.questions import load_questions
from rag.evaluation.runner import evaluate_question
from rag.index import index_articles
from rag.lang.when import as_date, date_evidence, in_range, resolve, stated_dates
from rag.models import registry
from rag.pipeline import ask, retrieve
from rag.retrieve import DEFAULT_FUSION
from rag.types import Article, Passage

NOW = "2024-05-08"  # a Wednesday

# question, start, end, granularity, relative
TABLE = [
    ("2020年4月2日广州发生了什么交通事故？", "2020-04-02", "2020-04-02", "day", False),
    ("2020年4月2日19时20分发生了什么？", "2020-04-02", "2020-04-02", "day", False),
    ("二〇二三年七月二十八日的新闻", "2023-07-28", "2023-07-28", "day", False),
    ("２０２３年７月２８日的新闻", "2023-07-28", "2023-07-28", "day", False),
    ("2023-07-28发生了什么？", "2023-07-28", "2023-07-28", "day", False),
    ("4月2日广州发生了什么？", "2024-04-02", "2024-04-02", "day", True),
    ("7月28日外交部发言人说了什么？", "2023-07-28", "2023-07-28", "day", True),  # not yet this year: last year's
    ("十月一日国庆", "2023-10-01", "2023-10-01", "day", True),
    ("5月8日发生了什么？", "2024-05-08", "2024-05-08", "day", True),  # today counts as past
    ("2023年3月的出口数据", "2023-03-01", "2023-03-31", "month", False),
    ("3月份的出口", "2024-03-01", "2024-03-31", "month", True),
    ("去年12月的出口", "2023-12-01", "2023-12-31", "month", True),
    ("7月上旬的暴雨", "2023-07-01", "2023-07-10", "day", True),
    ("2023年第二季度GDP增长多少？", "2023-04-01", "2023-06-30", "quarter", False),
    ("一季度的数据", "2024-01-01", "2024-03-31", "quarter", True),
    ("第四季度的数据", "2023-10-01", "2023-12-31", "quarter", True),
    ("上季度的利润", "2024-01-01", "2024-03-31", "quarter", True),
    ("今年上半年的经济数据", "2024-01-01", "2024-06-30", "half", True),
    ("2023年下半年", "2023-07-01", "2023-12-31", "half", False),
    ("2023年全国粮食产量", "2023-01-01", "2023-12-31", "year", False),
    ("今年的高考有多少人报名？", "2024-01-01", "2024-12-31", "year", True),
    ("去年的GDP增速是多少？", "2023-01-01", "2023-12-31", "year", True),
    ("前年发生了什么？", "2022-01-01", "2022-12-31", "year", True),
    ("昨天发生了什么？", "2024-05-07", "2024-05-07", "day", True),
    ("前天的天气怎么样？", "2024-05-06", "2024-05-06", "day", True),
    ("今天人民币汇率中间价是多少？", "2024-05-08", "2024-05-08", "day", True),
    ("三天前的地震", "2024-05-05", "2024-05-05", "day", True),
    ("上周美联储做了什么？", "2024-04-29", "2024-05-05", "week", True),  # the Monday-Sunday week before this one
    ("本周有哪些新闻？", "2024-05-06", "2024-05-12", "week", True),
    ("上周二股市怎么样？", "2024-04-30", "2024-04-30", "day", True),
    ("上周末的演出", "2024-05-04", "2024-05-05", "day", True),
    ("上个月的CPI是多少？", "2024-04-01", "2024-04-30", "month", True),
    ("上个月28日的会议", "2024-04-28", "2024-04-28", "day", True),
    ("两个月前的数据", "2024-03-01", "2024-03-31", "month", True),
    ("最近三天的新闻", "2024-05-06", "2024-05-08", "day", True),
    ("近一周的股市", "2024-05-02", "2024-05-08", "day", True),
    ("3月1日至3月5日的两会", "2024-03-01", "2024-03-05", "day", True),
    ("2023年7月28日至30日的暴雨", "2023-07-28", "2023-07-30", "day", False),
    ("7月28-30日的暴雨", "2023-07-28", "2023-07-30", "day", True),
    ("2023年1月到2023年3月的出口", "2023-01-01", "2023-03-31", "month", False),
    # English
    ("What did Blinken say last Tuesday?", "2024-04-30", "2024-04-30", "day", True),  # as 上周二
    ("What happened yesterday in Beijing?", "2024-05-07", "2024-05-07", "day", True),
    ("What happened the day before yesterday?", "2024-05-06", "2024-05-06", "day", True),
    ("What happened today?", "2024-05-08", "2024-05-08", "day", True),
    ("What did the Fed do last week?", "2024-04-29", "2024-05-05", "week", True),
    ("What happened over the past week?", "2024-05-02", "2024-05-08", "day", True),
    ("How many tourists came this year?", "2024-01-01", "2024-12-31", "year", True),
    ("What was the GDP growth last year?", "2023-01-01", "2023-12-31", "year", True),
    ("What did the ministry say last month?", "2024-04-01", "2024-04-30", "month", True),
    ("What happened in March 2024?", "2024-03-01", "2024-03-31", "month", False),
    ("What happened in March?", "2024-03-01", "2024-03-31", "month", True),
    ("What happened in May?", "2024-05-01", "2024-05-31", "month", True),
    ("What happened on May 7?", "2024-05-07", "2024-05-07", "day", True),
    ("What happened on December 25?", "2023-12-25", "2023-12-25", "day", True),
    ("What happened on May 7, 2023?", "2023-05-07", "2023-05-07", "day", False),
    ("What was said on 7 May 2023?", "2023-05-07", "2023-05-07", "day", False),
    ("What happened on the 7th of May?", "2024-05-07", "2024-05-07", "day", True),
    ("What happened on 2024-05-01?", "2024-05-01", "2024-05-01", "day", False),
    ("What happened in 2022?", "2022-01-01", "2022-12-31", "year", False),
    ("What was China's GDP in the second quarter of 2023?", "2023-04-01", "2023-06-30", "quarter", False),
    ("Revenue in Q2 2023", "2023-04-01", "2023-06-30", "quarter", False),
    ("Growth in the first half of 2023", "2023-01-01", "2023-06-30", "half", False),
    ("What happened two days ago?", "2024-05-06", "2024-05-06", "day", True),
    ("What happened three weeks ago?", "2024-04-15", "2024-04-21", "week", True),
    ("What happened in the last 3 days?", "2024-05-06", "2024-05-08", "day", True),
    ("What happened from March 1 to March 5?", "2024-03-01", "2024-03-05", "day", True),
    ("What happened between May 1 and 5?", "2024-05-01", "2024-05-05", "day", True),
    ("What happened May 1-5?", "2024-05-01", "2024-05-05", "day", True),
]


@pytest.mark.parametrize("question,start,end,granularity,relative", TABLE, ids=[t[0] for t in TABLE])
def test_question_dates_resolve_against_now(question, start, end, granularity, relative):
    r = resolve(question, NOW)
    assert r is not None
    assert (r.start.isoformat(), r.end.isoformat(), r.granularity, r.relative) == (start, end, granularity, relative)
    assert r.text and r.text in question and r.latest == ("最近" in question) and r.now == date(2024, 5, 8)


@pytest.mark.parametrize("question", [
    "外交部发言人说了什么？", "What did Blinken say about Ukraine?", "3号线什么时候开通？", "这周边有什么好吃的？",
    "周杰伦的新歌叫什么？", "今日头条的创始人是谁？", "每周一开会吗？", "3个月的定期存款利率是多少？",
    "2023年2月30日发生了什么？",  # no such day: nothing is guessed
    "May I ask who won?", "布林肯星期二前往哪个国家？",  # a weekday alone echoes the story's own week
    "离北京最近的港口是哪个？",  # nearest, not latest
])
def test_questions_without_dates(question):
    assert resolve(question, NOW) is None


@pytest.mark.parametrize("question,word", [
    ("最新的进展是什么？", "最新"), ("最近有什么新闻？", "最近"), ("目前的疫情怎么样？", "目前"), ("现在谁是总理？", "现在"),
    ("What is the latest on Gaza?", "latest"), ("Who is currently the prime minister?", "currently"),
])
def test_recency_words_ask_for_the_latest(question, word):
    r = resolve(question, NOW)
    assert r.latest and r.granularity == "recent" and r.text == word
    assert (r.start, r.end) == (date(2024, 4, 9), date(2024, 5, 8))  # the last 30 days


def test_a_recency_word_beside_a_date_keeps_the_date():
    r = resolve("今年最新的GDP数据是多少？", NOW)
    assert r.latest and r.granularity == "year" and r.start == date(2024, 1, 1)


@pytest.mark.parametrize("question,now,start,end", [
    ("4月2日发生了什么？", "2024-01-15", "2023-04-02", "2023-04-02"),  # asked in January: last year's
    ("2月29日发生了什么？", "2025-05-08", "2024-02-29", "2024-02-29"),  # the latest leap day
    ("2月29日发生了什么？", "2024-02-28", "2020-02-29", "2020-02-29"),
    ("2月29日发生了什么？", "2024-02-29", "2024-02-29", "2024-02-29"),
    ("12月30日至1月2日的天气", "2024-01-10", "2023-12-30", "2024-01-02"),  # a range across the new year
    ("昨天发生了什么？", "2024-03-01", "2024-02-29", "2024-02-29"),
    ("上个月的数据", "2024-01-15", "2023-12-01", "2023-12-31"),
    ("上周的新闻", "2024-01-03", "2023-12-25", "2023-12-31"),
    ("上周的新闻", "2024-05-06", "2024-04-29", "2024-05-05"),  # on a Monday
    ("上周的新闻", "2024-05-12", "2024-04-29", "2024-05-05"),  # on a Sunday
    ("last Tuesday", "2024-05-12", "2024-04-30", "2024-04-30"),
    ("上季度", "2024-02-01", "2023-10-01", "2023-12-31"),
])
def test_edge_cases(question, now, start, end):
    r = resolve(question, now)
    assert (r.start.isoformat(), r.end.isoformat()) == (start, end)


@pytest.mark.parametrize("now", ["2024-05-08", date(2024, 5, 8), datetime(2024, 5, 8, 23, 30), "2024-05-08T23:30:00Z",
                                 " 2024-05-08 "])
def test_now_forms(now):
    assert as_date(now) == date(2024, 5, 8)
    assert resolve("昨天", now).start == date(2024, 5, 7)


@pytest.mark.parametrize("bad", ["2024-5-8", "08/05/2024", "yesterday", "2024-02-30", "", 20240508])
def test_a_bad_now_says_the_form(bad):
    with pytest.raises(ValueError, match="now must be YYYY-MM-DD, got"):
        as_date(bad)


def test_now_defaults_to_today():
    assert as_date(None) == date.today()
    assert resolve("今天").start == date.today()


# ---------------------------------------------------------------- dates a passage states


def test_stated_dates_read_the_year_and_month_from_the_article():
    pub = date(2023, 8, 1)
    found = stated_dates("新华社北京7月31日电 当地时间28日晚，2020年4月2日19时20分，广州市发生事故。2023年7月的数据。", pub)
    assert (date(2023, 7, 31), date(2023, 7, 31)) in found
    assert (date(2023, 7, 28), date(2023, 7, 28)) in found  # "28日" of the article's month or the one before
    assert (date(2020, 4, 2), date(2020, 4, 2)) in found
    assert (date(2023, 7, 1), date(2023, 7, 31)) in found
    assert stated_dates("新华社北京7月31日电", None) == []  # no year to read it with
    assert stated_dates("12月31日的跨年活动", date(2024, 1, 2)) == [(date(2023, 12, 31), date(2023, 12, 31))]
    assert stated_dates("将于8月15日举行，30日内完成", date(2023, 8, 10)) == [(date(2023, 8, 15), date(2023, 8, 15))]
    assert stated_dates("WASHINGTON, May 7 (Reuters)", date(2024, 5, 8)) == [(date(2024, 5, 7), date(2024, 5, 7))]


def test_a_passage_matches_at_the_right_granularity():
    day = resolve("2023年7月28日的新闻", NOW)
    month = resolve("2023年7月的新闻", NOW)
    pub = date(2023, 8, 2)
    assert in_range(day, "7月28日，外交部发言人主持例行记者会。", pub)  # a lag: published later, the text says the day
    assert not in_range(day, "2023年7月的数据显示", pub)  # a month is not that day
    assert in_range(month, "28日，外交部发言人主持例行记者会。", date(2023, 7, 29))
    assert in_range(day, "没有日期", date(2023, 7, 28))  # the article's own date, for a day
    # a month's figures come out after it: for a month or longer only what the text says counts
    assert not in_range(month, "没有日期", date(2023, 7, 3))
    assert in_range(month, "7月份新能源汽车零售量", date(2023, 8, 10))
    quarter = resolve("2023年第二季度的营收", NOW)
    assert in_range(quarter, "二季度营收增长", date(2023, 8, 16)) and not in_range(quarter, "营收增长", date(2023, 5, 1))
    # a day stated in a later article counts for less than the article's own day
    assert date_evidence(day, "没有日期", date(2023, 7, 28), 0.5) == 1.0
    assert date_evidence(day, "7月28日，外交部", date(2023, 7, 29), 0.5) == 0.5
    assert date_evidence(day, "7月27日，外交部", date(2023, 7, 29), 0.5) == 0.0


def _cand(day: str, score: float, order: float, text: str = "人民币汇率中间价调升。") -> Candidate:
    p = Passage(hash(day) % 1000, f"a-{day}", "汇率", text, 0, len(text), 1.0, published=f"{day}T01:00:00Z")
    return Candidate(p, 0, 0, len(text), text, score=score, order=order)


def test_by_date_puts_the_asked_days_sentence_first_among_close_ones():
    other, asked = _cand("2024-05-06", 0.8, 2.0), _cand("2024-05-07", 0.5, 1.0)
    out = by_date([other, asked], resolve("昨天的汇率", NOW), 0.5)
    assert max(out, key=lambda c: c.order).passage.article_id == "a-2024-05-07"
    # too far below the best, or the best already of the day: unchanged
    assert by_date([other, _cand("2024-05-07", 0.3, 1.0)], resolve("昨天的汇率", NOW), 0.5)[0] is other
    first = _cand("2024-05-07", 0.5, 3.0)
    assert by_date([first, other], resolve("昨天的汇率", NOW), 0.5) == [first, other]
    # a later article that states the day comes after the day's own article, before one of another day
    stating = _cand("2024-05-08", 0.7, 1.5, "5月7日，人民币汇率中间价调升。")
    out = by_date([other, stating], resolve("昨天的汇率", NOW), 0.5)
    assert max(out, key=lambda c: c.order).passage.article_id == "a-2024-05-08"
    # the latest: the newest article dated by now
    out = by_date([other, asked, _cand("2024-05-09", 0.8, 0.5)], resolve("最新的汇率", NOW), 0.5)
    assert max(out, key=lambda c: c.order).passage.article_id == "a-2024-05-07"


# ---------------------------------------------------------------- ask(..., now=...) over one story on several days

DAYS = ["2024-05-03", "2024-05-06", "2024-05-07", "2024-05-08"]
BODY = ("中国外汇交易中心公布，今日人民币对美元汇率中间价报{rate}，较前一交易日调升{points}个基点。"
        "分析人士认为，人民币汇率将在合理均衡水平上保持基本稳定。")


EN_BODY = ("The yuan's central parity rate against the US dollar was set at {rate} today, up {points} basis points "
           "from the previous trading day, the China Foreign Exchange Trade System said.")


def _story() -> list[Article]:
    return [Article(title="人民币对美元汇率中间价调升", text=BODY.format(rate=f"7.1{i}0{i}", points=10 + i),
                    url=f"https://news.example/cny/{day}", published=f"{day}T01:30:00Z", source="example")
            for i, day in enumerate(DAYS)] + [
        Article(title="广州发生交通事故", text="4月2日19时20分，广州市天河区发生一起交通事故，造成两人受伤。",
                url="https://news.example/gz/1", published="2020-04-03T02:00:00Z", source="example"),
        Article(title="广州发生交通事故", text="4月9日8时，广州市天河区发生一起交通事故，造成三人受伤。",
                url="https://news.example/gz/2", published="2020-04-09T12:00:00Z", source="example"),
    ] + [Article(title="Yuan central parity rate raised", text=EN_BODY.format(rate=f"7.1{i}0{i}", points=10 + i),
                 url=f"https://news.example/en/{day}", published=f"{day}T01:30:00Z", source="example")
         for i, day in enumerate(DAYS[:3])]


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    emb = FakeEmbedder()
    root = tmp_path_factory.mktemp("dates") / "index"
    arts = _story()
    index_articles(arts, root, emb, progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.SHARED, "fake-64", emb)
        yield root, {a.url.split("/", 3)[3].removeprefix("cny/").removeprefix("gz/"): a for a in arts}


@pytest.mark.parametrize("question,now,day", [
    ("昨天人民币对美元汇率中间价报多少？", "2024-05-08", "2024-05-07"),
    ("前天人民币对美元汇率中间价报多少？", "2024-05-08", "2024-05-06"),
    ("今天人民币对美元汇率中间价报多少？", "2024-05-06", "2024-05-06"),
    ("上周人民币对美元汇率中间价报多少？", "2024-05-08", "2024-05-03"),
    ("5月6日人民币对美元汇率中间价报多少？", "2024-05-09", "2024-05-06"),
    ("最新的人民币对美元汇率中间价报多少？", "2024-05-07", "2024-05-07"),  # the 8th's is after now
    ("最新的人民币对美元汇率中间价报多少？", "2024-06-30", "2024-05-08"),
    ("What was the yuan's central parity rate yesterday?", "2024-05-07", "en/2024-05-06"),
    ("What was the yuan's central parity rate last Friday?", "2024-05-08", "en/2024-05-03"),
])
def test_ask_cites_the_asked_days_article(story, question, now, day):
    root, by_day = story
    ans = ask(question, root, now=now)
    assert not ans.abstained
    assert ans.citations[0].article_id == by_day[day].id
    assert ans.citations[0].published.startswith(day.removeprefix("en/"))
    # a question about time says each cited article's date
    lang = ans.lang
    assert ans.text.startswith(date_note(ans.citations[0].published, lang) + ans.citations[0].sentence)


def test_the_passage_date_counts_when_the_article_came_out_later(story):
    root, by_day = story
    ans = ask("2020年4月2日广州发生了什么交通事故？", root, now=NOW)
    assert ans.citations[0].article_id == by_day["1"].id  # published on the 3rd, about the 2nd
    assert ans.text.startswith("（2020-04-03）")
    ans = ask("2020年4月9日广州发生了什么交通事故？", root, now=NOW)
    assert ans.citations[0].article_id == by_day["2"].id


def test_the_boost_is_what_picks_the_day(story):
    root, by_day = story
    off = dataclasses.replace(DEFAULT_FUSION, date_boost=0.0, recency_boost=0.0)
    question = "前天人民币对美元汇率中间价报多少？"  # now 2024-05-09: the 7th
    before = {p.article_id: p.score for p in retrieve(question, root, k=10, now="2024-05-09", fusion=off)}
    after = retrieve(question, root, k=10, now="2024-05-09")
    assert after[0].article_id == by_day["2024-05-07"].id
    for p in after:  # only the day's articles moved (the Chinese and the English one): score x (1 + date_boost)
        gain = 1 + DEFAULT_FUSION.date_boost if p.published.startswith("2024-05-07") else 1.0
        assert p.score == pytest.approx(before[p.article_id] * gain)


def test_explicit_dates_win_over_the_question(story):
    root, by_day = story
    ans = ask("昨天人民币对美元汇率中间价报多少？", root, now="2024-05-08", date_from="2024-05-03", date_to="2024-05-03")
    assert ans.citations[0].article_id == by_day["2024-05-03"].id
    passages = retrieve("昨天人民币对美元汇率中间价报多少？", root, now="2024-05-08", date_from="2024-05-06",
                        date_to="2024-05-06")
    assert passages and {p.published[:10] for p in passages} == {"2024-05-06"}


def test_a_question_without_dates_has_no_date_notes(story):
    root, _ = story
    ans = ask("人民币对美元汇率中间价报多少？", root, now=NOW)
    assert not ans.abstained and not ans.text.startswith("（")


def test_a_bad_now_is_refused(story):
    root, _ = story
    with pytest.raises(ValueError, match="now must be YYYY-MM-DD, got '5/8/2024'"):
        ask("昨天人民币对美元汇率中间价报多少？", root, now="5/8/2024")


def test_cli_ask_now(story, capsys):
    root, by_day = story
    code = cli.main(["ask", "昨天人民币对美元汇率中间价报多少？", "--index", str(root), "--now", "2024-05-07", "--json",
                     "--reader", "none"])
    out, err = capsys.readouterr()
    assert code == 0, err
    got = json.loads(out)
    assert got["citations"][0]["article_id"] == by_day["2024-05-06"].id
    assert got["text"].startswith("（2024-05-06）")
    code = cli.main(["ask", "昨天人民币对美元汇率中间价报多少？", "--index", str(root), "--now", "May 7"])
    out, err = capsys.readouterr()
    assert code == 2 and "--now must be YYYY-MM-DD, got 'May 7'" in err


def test_eval_sets_carry_a_now(tmp_path, story):
    root, by_day = story
    path = tmp_path / "dates.jsonl"
    rows = [{"id": 1, "question": "昨天人民币对美元汇率中间价报多少？", "answers": ["中间价"], "now": "2024-05-08"},
            {"id": 2, "question": "昨天呢？", "answers": ["中间价"], "now": "May 8"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    qs = load_questions(path)
    assert [q.now for q in qs.questions] == ["2024-05-08"]
    assert len(qs.errors) == 1 and "'now' must be YYYY-MM-DD, got 'May 8'" in qs.errors[0]
    result = evaluate_question(qs.questions[0], root, 5, functools.partial(ask, config=AnswerConfig(reader="none")),
                               retrieve)
    assert not result.error and result.cited_articles[0] == by_day["2024-05-07"].id


def test_http_api_takes_now(story):
    from fastapi.testclient import TestClient

    from rag.api import build_api

    root, by_day = story
    c = TestClient(build_api(root, api_key=""))
    question = "昨天人民币对美元汇率中间价报多少？"
    r = c.post("/v1/ask", json={"question": question, "now": "2024-05-07", "reader": "none"})
    assert r.status_code == 200 and r.json()["citations"][0]["article_id"] == by_day["2024-05-06"].id
    r = c.post("/v1/retrieve", json={"question": question, "now": "2024-05-08", "k": 1})
    assert r.json()["passages"][0]["article_id"] == by_day["2024-05-07"].id
    r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}], "now": "2024-05-07"})
    assert r.json()["choices"][0]["message"]["citations"][0]["article_id"] == by_day["2024-05-06"].id
    r = c.post("/v1/ask", json={"question": question, "now": "yesterday"})
    assert r.status_code == 400 and "now must be YYYY-MM-DD, got 'yesterday'" in r.json()["error"]["message"]
