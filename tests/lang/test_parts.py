"""Questions in several parts: where they split and where they must not."""
from __future__ import annotations

import pytest

from rag.lang.parts import split_parts


@pytest.mark.parametrize("question, parts", [
    ("在上海科普大讲坛，哪位专家的讲座是关于创新栽培的？哪个省的林业局发出了环保倡议？",
     ["在上海科普大讲坛，哪位专家的讲座是关于创新栽培的？", "哪个省的林业局发出了环保倡议？"]),
    ("Who won the vote? And where did Blinken go?", ["Who won the vote?", "And where did Blinken go?"]),
    ("第一个问题是什么？第二个问题是什么？第三个问题是什么？第四个问题是什么？",
     ["第一个问题是什么？", "第二个问题是什么？", "第三个问题是什么？第四个问题是什么？"]),  # at most three
    ("布林肯去了哪里？为什么？", ["布林肯去了哪里？为什么？"]),  # too short to stand alone: joins the one before
    ("他说“你好吗？”是什么意思？", ["他说“你好吗？”是什么意思？"]),  # inside quotation marks
    ("「殿下先謁陵乎？先即位乎？」這句話是誰說的?", ["「殿下先謁陵乎？先即位乎？」這句話是誰說的?"]),
    ("東頭?和美東?曾因為人口分布等因素而被劃入哪一個區中?", ["東頭?和美東?曾因為人口分布等因素而被劃入哪一個區中?"]),
    ("蒸汽機車的速度極限是多快?   ------語句不順", ["蒸汽機車的速度極限是多快?   ------語句不順"]),  # a note, not a part
    ("真的吗？？", ["真的吗？？"]),
    ("什么是AI", ["什么是AI"]),
    ("？？？", ["？？？"]),
])
def test_split_parts(question, parts):
    assert split_parts(question) == parts
