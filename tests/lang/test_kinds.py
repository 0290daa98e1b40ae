"""rag.lang.answer_kinds: the kind of name a question asks for, the sentences that name one, and the answer features built on them."""
from __future__ import annotations

import numpy as np
import pytest

from rag.answer import Candidate, features
from rag.lang import answer_kinds as kinds, fold
from rag.models.ranker import FEATURES
from rag.types import Passage


@pytest.mark.parametrize("question,expected", [
    ("IPCC 现任主席是谁？", {"person"}),
    ("誰在第 50 屆超級碗上演唱了國歌？", {"person"}),  # Traditional, folded first
    ("Who chairs the IPCC?", {"person"}),
    ("布林肯星期二前往哪个国家？", {"place"}),
    ("Where did he speak?", {"place"}),
    ("哪家公司修复了录像带？", {"org"}),
    ("Which team won Super Bowl XXXIII?", {"org"}),
    ("花冠是什么颜色？", set()),
    ("What is the whole story?", set()),  # "who" only as a word of its own
])
def test_asked(question, expected):
    assert kinds.asked(fold(question)) == expected


@pytest.mark.parametrize("sentence,wanted,found", [
    ("韩国经济学家李会晟自2015年起担任IPCC主席。", {"person"}, {"person"}),
    ("IPCC历任主席的任期为五年。", {"person"}, set()),
    ("奥斯卡奖得主玛丽·麦特琳担任了手语翻译。", {"person"}, {"person"}),
    ("布林肯星期二前往危地马拉。", {"place"}, {"place"}),
    ("The chair is Hoesung Lee.", {"person", "place"}, {"person", "place"}),
    ("Kenya is known for running.", {"place"}, set()),  # a capital that only starts the sentence
    ("北京是中国的首都。", set(), set()),  # nothing asked, nothing looked up
])
def test_named(sentence, wanted, found):
    assert kinds.named(sentence, wanted, fold("谁担任主席")) == found


def test_a_name_the_question_already_holds_is_not_an_answer():
    q = fold("布林肯在危地马拉会见了谁？")
    assert kinds.named("布林肯在危地马拉发表讲话。", {"person"}, q) == set()
    assert kinds.named("布林肯会见了阿雷瓦洛总统。", {"person"}, q) == {"person"}


@pytest.mark.parametrize("question,sentence,share", [
    ("第 33 届超级碗冠军是哪支球队", "野马队赢得第 33 届超级碗。", 1.0),
    ("第 33 届超级碗冠军是哪支球队", "第 49 届超级碗卫冕冠军。", 0.0),
    ("2010 年第 3 季度的收入是多少", "2010 年的收入上升。", 0.5),
    ("冠军是哪支球队", "第 49 届超级碗。", None),
])
def test_number_match(question, sentence, share):
    assert kinds.number_match(question, sentence) == share


def _rows(question, texts):
    p = Passage(0, "a", "t", "", 0, 0, 1.0)
    cands = [Candidate(p, 0, i, i + 1, t) for i, t in enumerate(texts)]
    f = features(question, cands, {}, None)
    return {name: f[:, FEATURES.index(name)].tolist() for name in FEATURES}


def test_who_question_features_prefer_the_sentence_naming_someone_new():
    f = _rows("谁担任IPCC主席？", ["IPCC历任主席的任期为五年。", "经济学家李会晟担任IPCC主席。"])
    assert f["who_ok"] == [0.0, 1.0] and f["who_miss"] == [1.0, 0.0]
    assert f["where_ok"] == f["where_miss"] == f["org_ok"] == [0.0, 0.0]


def test_number_features_follow_the_questions_numbers():
    f = _rows("第 33 届超级碗冠军是哪支球队？", ["野马队赢得第 33 届超级碗。", "爱国者队是第 49 届超级碗冠军。"])
    assert f["num_match"] == [1.0, 0.0] and f["num_miss"] == [0.0, 1.0]
    f = _rows("冠军是哪支球队？", ["野马队赢得第 33 届超级碗。"])
    assert f["num_match"] == f["num_miss"] == [0.0]


def test_the_shipped_ranker_weighs_the_new_features():
    from rag.models.registry import get_ranker as load_ranker

    r = load_ranker()
    cols = [FEATURES.index(n) for n in ("who_ok", "who_miss", "num_match", "num_miss")]
    assert np.abs(r.order[cols]).sum() > 0 or np.abs(r.hidden_w[:, cols]).sum() > 0
