"""Text normalisation, script detection and lexical tokens (character bigrams, jieba words, English words)."""
from __future__ import annotations

import functools
import re
import unicodedata

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
CJK_RE = re.compile(f"[{_CJK}]")
_TOKEN_RE = re.compile(f"[{_CJK}]+|[a-z0-9]+(?:['.][a-z0-9]+)*", re.UNICODE)
_LATIN_RE = re.compile(r"[A-Za-z]")

# Function words that carry no topic; dropping them sharpens BM25 and sentence overlap.
EN_STOP = frozenset(
    "a an the of in on at to for from by with and or but is are was were be been being do does did what which who whom "
    "whose when where why how that this these those it its as into than then there their they them he she his her him "
    "i you we our your my me us not no yes can could would should will shall may might must have has had about after "
    "before during over under between up down out off also so such very just any some many much most more other".split()
)
# An English question's words that name no topic of their own (bridged, glossed and name-matched words skip them):
# EN_STOP's function words less a few intensifiers, plus generic verbs and nouns.
QUESTION_STOP = (EN_STOP - {"but", "just", "me", "my", "so", "us", "very"}) | frozenset(
    "according all another became become both called done each first gave get give got kind made make name named "
    "new one part take took type use used".split())
ZH_STOP = frozenset("的 了 是 在 和 与 及 或 也 都 就 而 被 把 对 于 之 其 这 那 哪 什么 怎么 如何 为什么 谁 吗 呢 吧 啊 个 有 为 以 中 上 下 将".split())


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


# Version of fold() + tokens() that an index's stored BM25 tokens were made with (Manifest.tokens; absent: 1).
# 2: Latin letters lose their accents ("Arévalo" -> arevalo), which version 1 split into "ar" + "valo".
TOKEN_VERSION = 2
_ACCENTED = re.compile(r"[\u00c0-\u024f\u1e00-\u1eff]")
_MARKS_ON_LATIN = re.compile(r"(?<=[a-z])[\u0300-\u036f]+")
_PLAIN = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ß": "ss", "æ": "ae", "œ": "oe", "þ": "th",
                        "ı": "i", "ħ": "h", "ŀ": "l"})


def plain_latin(text: str) -> str:
    """Lower-case Latin letters without accents ("arévalo" -> arevalo, "łódź" -> lodz); other scripts as they are."""
    if not _ACCENTED.search(text):
        return text
    return unicodedata.normalize("NFC", _MARKS_ON_LATIN.sub("", unicodedata.normalize("NFD", text))).translate(_PLAIN)


def fold(text: str, version: int = TOKEN_VERSION) -> str:
    """NFKC, lower case, Traditional -> Simplified and (version >= 2) Latin without accents: the form both queries
    and passages are matched in."""
    out = _t2s().convert(unicodedata.normalize("NFKC", text).lower())
    return plain_latin(out) if version >= 2 else out


def clean(text: str) -> str:
    """Drop control characters and lone surrogates that would break tokenizers, SQLite or JSON."""
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def cjk_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if CJK_RE.match(c)) / len(letters)


def detect_lang(text: str) -> str:
    """'zh' when Chinese characters dominate the letters, 'en' when Latin letters do (good enough for routing)."""
    if CJK_RE.search(text) and cjk_ratio(text) >= 0.3:
        return "zh"
    return "en" if _LATIN_RE.search(text) else "zh"


def stem(word: str) -> str:
    # A light English stemmer: plural and common verb endings, enough for question/passage overlap.
    for suf, rep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            return word[: len(word) - len(suf)] + rep
    return word


def bigram_tokens(text: str, unigrams: bool = True) -> list[str]:
    """CJK runs -> character bigrams (+ single characters); Latin/digits -> stemmed words. Input must be folded."""
    out: list[str] = []
    for m in _TOKEN_RE.finditer(text):
        tok = m.group()
        if CJK_RE.match(tok):
            if unigrams or len(tok) == 1:
                out.extend(c for c in tok if c not in ZH_STOP)
            out.extend(tok[i : i + 2] for i in range(len(tok) - 1))
        elif tok not in EN_STOP:
            out.append(stem(tok))
    return out


@functools.lru_cache(maxsize=1)
def load_jieba():
    import logging

    import jieba as jb

    jb.setLogLevel(logging.WARNING)
    jb.initialize()
    return jb


def jieba_tokens(text: str) -> list[str]:
    """jieba search-mode words for CJK runs, stemmed words for Latin. Input must be folded."""
    jb = load_jieba()
    out: list[str] = []
    for m in _TOKEN_RE.finditer(text):
        tok = m.group()
        if CJK_RE.match(tok):
            out.extend(w for w in jb.cut_for_search(tok) if w not in ZH_STOP)
        elif tok not in EN_STOP:
            out.append(stem(tok))
    return out


TOKENIZERS = {"bigram": bigram_tokens, "jieba": jieba_tokens}


def tokens(text: str, mode: str = "bigram", version: int = TOKEN_VERSION) -> list[str]:
    """BM25 tokens of `text` by `mode` (bigram, jieba or both), folded as fold() `version` folds."""
    if mode == "both":
        folded = fold(text, version)
        return bigram_tokens(folded) + ["w:" + t for t in jieba_tokens(folded) if len(t) > 2]
    try:
        return TOKENIZERS[mode](fold(text, version))
    except KeyError:
        raise ValueError(f"unknown tokenizer {mode!r}; choose one of bigram, jieba, both") from None
