"""Whether a text asks about anything an article could hold: content words, not code, chat or instructions."""
from __future__ import annotations

import re
import unicodedata

from .text import CJK_RE, EN_STOP, QUESTION_STOP, ZH_STOP, fold

# English words that carry no topic in a question put to a news archive: greetings and assent, programming literals,
# requests made to the tool itself (docs/decisions.md#askable).
CHAT_EN = frozenset("""
hello hi hey hiya greetings there thanks thank thx please pls ok okay yes yeah yep no nope sure fine good great cool
none nan null nil undefined true false void test testing help continue again answer tell say repeat
something anything everything stuff thing things
""".split())
# Chinese words and characters with no topic of their own: pronouns, demonstratives, particles and interjections,
# question words, chat and requests to the tool.
CHAT_ZH = sorted(set("""
你们 我们 他们 她们 它们 咱们 大家 自己 您 你 我 他 她 它 这个 那个 这些 那些 这里 那里 这儿 那儿 这样 那样 这 那 哪
什么 为什么 怎么样 怎么 如何 多少 哪里 哪儿 哪个 几 谁 吗 呢 吧 啊 呀 哦 噢 嗯 哈 呵 嘿 哎 唉 哇 啦 嘛 喂 嗨
你好 您好 谢谢 感谢 多谢 好的 好 行 对 是的 不是 没有 不 可以 能 会 请 帮帮 帮 帮忙 帮助 回答 告诉 说 说说 讲 讲讲
再说 一遍 继续 随便 一点 点 一下 做 干 问 问题 知道 吗 在 是 有 的 了 还 又 也 就 都 和 与 或
""".split()), key=len, reverse=True)
_CHAT_ZH = re.compile("|".join(map(re.escape, CHAT_ZH)))
# Characters of code and markup; "--" opening or closing a word (an SQL comment, a command-line flag) counts too, and
# brackets in a text without Chinese (Chinese questions keep a removed foreign term as "（）").
_CODE = re.compile(r"[<>{}\[\]$;=|\\^*%/#@~`]|(?:^|(?<=\s))--|--(?=\s|$)")
_BRACKETS = re.compile(r"[()]")
# A request addressed to the tool rather than a question about the articles (prompt injection and its kin).
_TO_THE_TOOL = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions?|prompts?|rules|above|previous|prior)\b"
    r"|\bsystem prompt\b|\byou are now\b|\bact as\b|\b(reveal|print|show|repeat)\b.{0,30}\b(prompt|instructions|rules)\b"
    r"|(忽略|无视|忘记).{0,12}(指令|指示|提示|规则|设定)|系统提示|提示词|你的(规则|指令|设定|提示)",
    re.I)
_LATIN_WORD = re.compile(r"[a-z][a-z0-9'\-]*(?:\+\+|#)?")  # C++ and C# are words too
CODE_SHARE = 0.1  # of a question's non-space characters, above which it reads as code or markup


def code_like(text: str) -> bool:
    """Whether `text` reads as code or markup: a tenth or more of its non-space characters are code symbols."""
    text = unicodedata.normalize("NFKC", text)
    visible = sum(not c.isspace() for c in text)
    if not visible:
        return False
    symbols = sum(len(m.group()) for m in _CODE.finditer(text))
    if not CJK_RE.search(text):
        symbols += len(_BRACKETS.findall(text))
    return symbols >= CODE_SHARE * visible


def to_the_tool(text: str) -> bool:
    """Whether `text` instructs the tool (ignore your instructions, print your prompt) instead of asking."""
    return bool(_TO_THE_TOOL.search(unicodedata.normalize("NFKC", text)))


def latin_terms(text: str) -> list[str]:
    """The English content words of `text` (folded, two or more letters, not a stop, chat or number word)."""
    out = []
    for w in (w.strip("'-") for w in _LATIN_WORD.findall(fold(text))):
        if len(w) > 1 and w not in EN_STOP and w not in QUESTION_STOP and w not in CHAT_EN:
            out.append(w)
    return list(dict.fromkeys(out))


def chinese_terms(text: str) -> str:
    """The Chinese characters of `text` left once its chat words, pronouns, particles and question words are gone."""
    run = "".join(CJK_RE.findall(fold(text)))
    return "".join(c for c in _CHAT_ZH.sub("", run) if c not in ZH_STOP)


def unaskable(text: str) -> str | None:
    """Why `text` asks about nothing an article could hold ("code", "to the tool", "no content word"), or None."""
    if code_like(text):
        return "code"
    if to_the_tool(text):
        return "to the tool"
    if not latin_terms(text) and not chinese_terms(text):
        return "no content word"
    return None
