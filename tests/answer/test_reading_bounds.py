"""The readers' work per question is bounded (#27): however many long candidates retrieval brings, the re-reader
scores at most its reach's `top` sentences and the reader embeds at most its few, each sentence cut by the splitter."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import FakeEmbedder

from rag.answer import AnswerConfig
from rag.answer.decide import READ_TOP
from rag.index import index_articles
from rag.ingest.sentences import split_sentences
from rag.models import get_ranker, registry
from rag.pipeline import ask, gather
from rag.retrieve import Searcher
from rag.types import Article

MAX_SENTENCE = split_sentences.__defaults__[0]  # the splitter's cap on a sentence's characters


class Reader(FakeEmbedder):
    def __init__(self):
        super().__init__()
        self.read: list[list[int]] = []

    def embed_documents(self, texts):
        self.read.append([len(t) for t in texts])
        return super().embed_documents(texts)


class Rereader:
    def __init__(self):
        self.calls: list[list[int]] = []

    def score(self, question, sentences):
        self.calls.append([len(s) for s in sentences])
        return np.linspace(0.0, 1.0, len(sentences))  # something to re-order by


def long_sentence(i: int) -> str:
    # nearly the same long sentence a hundred times: every candidate is a close call, so the readers are asked
    return (f"第{i}位发言人说，北京市政府今天宣布了新的交通管理措施，包括延长地铁运营时间、增加公交线路和调整出租车价格，"
            f"市民对此反应不一，有人认为措施及时，有人担心成本上升，专家建议逐步推进并听取各方意见，第{i}号方案将于下月实施")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("bounds") / "idx"
    articles = [Article(title=f"北京交通新规{j}", text="。\n\n".join(long_sentence(10 * j + i) for i in range(10)) + "。",
                        url=f"https://n.example/{j}", published="2024-05-07T12:00:00Z", source="t") for j in range(10)]
    index_articles(articles, path, FakeEmbedder(), progress=False)
    return path


@pytest.mark.parametrize("question,lang", [("北京市政府宣布了哪些交通管理措施？", "zh"),
                                           ("What traffic measures did the Beijing government announce?", "en")])
def test_a_hundred_long_candidates_are_read_up_to_the_caps(root, monkeypatch, question, lang):
    reader, rereader = Reader(), Rereader()
    monkeypatch.setitem(registry.SHARED, "e5", reader)
    monkeypatch.setitem(registry.SHARED, ("rereader",), rereader)
    s = Searcher(root, FakeEmbedder())
    ev = gather(question, s, k=50)
    assert len(ev.candidates) >= 50  # many long candidates reached the answer step
    cfg = AnswerConfig()
    ask(question, s, k=50, config=cfg)
    read_cap = get_ranker(cfg.ranker).reread_top or READ_TOP
    assert [len(c) for c in rereader.calls] == [cfg.reach(lang).top]  # a close call: the re-reader read its fill
    for call in rereader.calls:
        assert len(call) <= cfg.reach(lang).top and max(call) <= MAX_SENTENCE
    for call in reader.read:
        assert len(call) <= read_cap and max(call) <= MAX_SENTENCE
