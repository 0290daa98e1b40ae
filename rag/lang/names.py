"""Names an English question asks about, and whether Chinese text mentions them: spelled, translated or transliterated."""
from __future__ import annotations

import re

from . import dictionary
from .text import QUESTION_STOP, fold

# Characters of the standard transliteration table (译音表) and their common variants: a run of them in Chinese
# text is where a foreign name can hide ("科尔尼" for Kearney, "劳登" for Loudoun).
SOUND_CHARS = frozenset(
    "阿埃艾爱安昂奥澳巴拜班邦保鲍贝本比彼毕宾波伯博布查达戴丹道德登迪蒂第丁东杜敦多厄恩尔法凡范菲费芬丰弗伏福富盖甘"
    "冈高戈哥格根贡古圭哈海亥汉豪赫黑亨洪侯胡华怀霍基吉加贾杰捷金津卡凯坎康考柯科可克肯库夸奎昆拉腊莱赖兰朗劳勒雷蕾"
    "里理利莉丽连廉林琳灵铃刘留龙隆卢鲁陆路伦罗洛玛马迈麦曼芒毛梅美门蒙孟米密明摩莫墨默姆穆纳娜奈南内妮尼宁纽努诺欧"
    "帕潘庞佩彭皮珀坡普奇齐契恰乔钦琴琼丘萨塞赛桑瑟森沙莎山尚绍舍什施史士舒斯松苏索塔泰坦汤唐陶特提帖廷通图托瓦万旺"
    "威韦维温文翁沃乌伍武西希锡夏谢辛休许雅亚延扬耶伊因英尤于约扎泽詹章哲珍祖卓兹朱茨治危地")
# Consonant classes shared by both sides: pinyin initials and English spellings map to the same letters.
_INITIALS = (("zh", "J"), ("ch", "J"), ("sh", "S"), ("b", "P"), ("p", "P"), ("m", "M"), ("f", "F"), ("d", "T"),
             ("t", "T"), ("n", "N"), ("l", "L"), ("g", "K"), ("k", "K"), ("h", "H"), ("j", "J"), ("q", "J"),
             ("x", "S"), ("r", "L"), ("z", "Z"), ("c", "Z"), ("s", "S"), ("y", ""), ("w", "W"))
_EN_GROUPS = (("sch", "S"), ("tch", "J"), ("ph", "F"), ("th", "T"), ("ch", "J"), ("sh", "S"), ("ck", "K"),
              ("qu", "K"), ("gh", ""), ("x", "KS"), ("wr", "L"), ("ng", "N"))
_EN_LETTERS = {"v": "W", "w": "W", "j": "J", "b": "P", "p": "P", "d": "T", "t": "T", "l": "L", "r": "L", "k": "K",
               "q": "K", "z": "Z", "m": "M", "n": "N", "f": "F", "s": "S"}
_NEAR = frozenset(map(frozenset, ("MN", "JK", "SZ", "PF", "HK", "JZ", "JS", "WF", "TZ")))
MAX_DISTANCE = 0.5  # Kearney KLN / 科尔尼 KLN: 0; Norman NLMN / 诺曼 NMN: 0.5 (the r left out)

SOUND_RUN = re.compile(f"[{''.join(sorted(SOUND_CHARS))}]{{2,}}")
_NAME = re.compile(r"\b[A-Z][\w'\-]*(?:\s+(?:of\s+|the\s+|de\s+|and\s+)?[A-Z][\w'\-]*)*")
_NOT_NAMES = QUESTION_STOP | frozenset("""
who whom whose what when where which why how along aside besides apart since despite unlike like
january february march april may june july august september october november december monday tuesday wednesday
thursday friday saturday sunday
""".split())


def question_names(question: str) -> list[str]:
    """Capitalised words and phrases of an English question that are not question, stop, month or day words
    ("Who won the Super Bowl in Denver?" -> ["Super Bowl", "Denver"]), possessive 's removed."""
    out = []
    for m in _NAME.finditer(question):
        words = [re.sub(r"'s$", "", w) for w in m.group().split()]
        while words and words[0].lower() in _NOT_NAMES:
            words = words[1:]
        while words and words[-1].lower() in _NOT_NAMES:
            words = words[:-1]
        if words:
            out.append(" ".join(words))
    return list(dict.fromkeys(out))


def pinyin_skeleton(word: str, readings: dict[str, str]) -> str | None:
    """Consonant skeleton of a word made of transliteration characters (布林肯 -> PLNKN), else None."""
    if len(word) < 2 or not all(c in SOUND_CHARS and c in readings for c in word):
        return None
    out = []
    for c in word:
        py = re.sub(r"\d", "", readings[c].lower())
        if py in ("er", "r"):
            out.append("L")
            continue
        for a, b in _INITIALS:
            if py.startswith(a):
                out.append(b)
                py = py[len(a):]
                break
        if py.endswith("n") or py.endswith("ng"):
            out.append("N")
    return "".join(out)


def english_skeleton(word: str) -> str:
    """Consonant skeleton of an English name as Chinese transliteration hears it (Blinken -> PLNKN)."""
    w = re.sub(r"[^a-z]", "", word.lower())
    w = re.sub(r"(.)\1", r"\1", w)
    out, i = [], 0
    while i < len(w):
        for a, b in _EN_GROUPS:
            if w.startswith(a, i):
                out.append(b)
                i += len(a)
                break
        else:
            c, nxt = w[i], w[i + 1: i + 2]
            if c == "c":
                out.append("S" if nxt and nxt in "eiy" else "K")
            elif c == "g":
                out.append("J" if nxt and nxt in "eiy" else "K")
            elif c == "h":
                out.append("H" if i == 0 else "")
            else:
                out.append(_EN_LETTERS.get(c, ""))
            i += 1
    return re.sub(r"(.)\1", r"\1", "".join(out))


def skeleton_distance(en: str, zh: str) -> float:
    """Edit distance from an English skeleton to a pinyin one: near classes (m/n, j/k...) cost 0.5, and so does an
    English l, h, s, t or n that the transliteration leaves out."""
    def drop(x):
        return 0.5 if x in "LHSTN" else 1.0

    prev = [float(j) for j in range(len(zh) + 1)]
    for i in range(1, len(en) + 1):
        cur = [prev[0] + drop(en[i - 1])] + [0.0] * len(zh)
        for j in range(1, len(zh) + 1):
            a, b = en[i - 1], zh[j - 1]
            sub = 0.0 if a == b else 0.5 if frozenset((a, b)) in _NEAR else 1.0
            cur[j] = min(prev[j] + drop(a), cur[j - 1] + 1.0, prev[j - 1] + sub)
        prev = cur
    return prev[-1]


def _same_start(en: str, zh: str) -> bool:
    # a transliteration keeps a name's first consonant: without this, Nobel (NPL) would match 贝尔 (PL)
    return en[0] == zh[0] or frozenset((en[0], zh[0])) in _NEAR


def transliterations(name: str, text: str, readings: dict[str, str], first: bool = False) -> list[str]:
    """The longest runs of transliteration characters in `text` (2-6 of them) that sound like a word of `name`;
    with `first`, stop at the first one found."""
    skeletons = [s for s in (english_skeleton(w) for w in name.split() if w.lower() not in QUESTION_STOP) if len(s) >= 2]
    if not skeletons or not readings:
        return []
    found: list[str] = []
    for run in dict.fromkeys(SOUND_RUN.findall(text)):
        for n in range(2, min(6, len(run)) + 1):
            for i in range(len(run) - n + 1):
                zh = pinyin_skeleton(run[i:i + n], readings)
                if zh and any(_same_start(s, zh) and 0 <= len(s) - len(zh) <= 2
                              and skeleton_distance(s, zh) <= MAX_DISTANCE for s in skeletons):
                    found.append(run[i:i + n])
                    if first:
                        return found
    found = list(dict.fromkeys(found))
    return [w for w in found if not any(w != o and w in o for o in found)]  # 阿雷瓦洛, not also 雷瓦 in it


def transliterated(name: str, text: str, readings: dict[str, str]) -> bool:
    """Whether a run of transliteration characters in `text` sounds like a word of `name`."""
    return bool(transliterations(name, text, readings, first=True))


def mentions(name: str, text: str) -> bool:
    """Whether `text` (Chinese, maybe with Latin) mentions `name`: spelled out (the name or one of its words of 4+
    letters), a dictionary translation of it, or a transliteration."""
    low = text.lower()
    words = [w for w in name.split() if w.lower() not in QUESTION_STOP]
    if name.lower() in low or any(len(w) > 3 and w.lower() in low for w in words):
        return True
    folded = fold(text)
    return bool(dictionary.translate(name, _InText(folded))) or transliterated(name, folded, dictionary.readings())


class _InText:
    """A "vocabulary" of the words found in a text, for dictionary.translate."""

    def __init__(self, text: str):
        self.text = text

    def __contains__(self, word: str) -> bool:
        return word in self.text


def misses_names(question: str, texts: list[str]) -> bool:
    """Whether an English question names something (question_names) and `texts` mention none of it."""
    names = question_names(question)
    if not names:
        return False
    where = "\n".join(texts)
    return not any(mentions(n, where) for n in names)
