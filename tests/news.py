"""A small news corpus shared by tests: five Chinese articles and an English one, and a flat embedder."""
from __future__ import annotations

import numpy as np
from conftest import FakeEmbedder

from rag.types import Article

BLINKEN = Article(
    title="布林肯访问危地马拉",
    text="美国国务卿布林肯星期二前往危地马拉，讨论地区移民问题。\n\n布林肯在危地马拉城会见了阿雷瓦洛总统和外交部长马丁内斯。\n\n"
         "双方签署了一项关于难民融入的合作协议。",
    url="https://news.example/blinken", published="2024-05-07T12:00:00Z", source="voachinese")
PANDA = Article(
    title="大熊猫抵达成都",
    text="旅美大熊猫乘坐专机抵达成都。\n\n熊猫将在卧龙基地隔离检疫三十天。\n\n饲养员说熊猫的状态良好。",
    url="https://news.example/panda", published="2023-11-09T01:00:00Z", source="voachinese")
STOCKS = Article(
    title="上海股市上涨",
    text="上海证券交易所的股票指数今天上涨了三个百分点。\n\n分析人士认为，上涨的原因是央行宣布降息。",
    url="https://news.example/stocks", published="2024-04-02T09:30:00Z", source="markets")
WEATHER = Article(
    title="北京天气", text="北京今天下雨，气温只有十二度。\n\n气象台预计周末将转晴。",
    url="https://news.example/weather", published="2024-03-01T08:00:00Z", source="weather")
ROCKET = Article(
    title="长征五号发射成功", text="中国周四在文昌成功发射长征五号运载火箭。\n\n火箭将一颗通信卫星送入预定轨道。",
    url="https://news.example/rocket", published="2022-08-15T03:00:00Z", source="science")
OHIO = Article(
    title="Ohio election",
    text="Voters in Ohio went to the polls on Tuesday to elect a new governor.\n\n"
         "The turnout was 55 percent, officials said.",
    url="https://news.example/ohio", published="2021-11-02T20:00:00Z", source="apnews")
ARTICLES = [BLINKEN, PANDA, STOCKS, WEATHER, ROCKET, OHIO]


class FlatEmbedder(FakeEmbedder):
    """Every text gets the same vector: dense scores tie, so only the lexical side orders chunks."""

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        v[0] = 1.0
        return v
