"""Language: folding and tokens, the one stop-word list, English-to-Chinese bridging, the CC-CEDICT dictionary,
name matching and the kinds of answer a question asks for."""
from . import answer_kinds, dictionary
from .askable import chinese_terms, code_like, latin_terms, to_the_tool, unaskable
from .bridge import corpus_words, question_words, term_weight
from .dictionary import gloss_overlap
from .names import SOUND_RUN, mentions, misses_names, question_names
from .text import (
    CJK_RE,
    EN_STOP,
    QUESTION_STOP,
    TOKEN_VERSION,
    ZH_STOP,
    bigram_tokens,
    clean,
    detect_lang,
    fold,
    load_jieba,
    stem,
    tokens,
)

__all__ = ["CJK_RE", "chinese_terms", "code_like", "latin_terms", "to_the_tool", "unaskable", "EN_STOP", "QUESTION_STOP", "SOUND_RUN", "TOKEN_VERSION", "ZH_STOP", "answer_kinds",
           "bigram_tokens", "clean", "corpus_words", "detect_lang", "dictionary", "fold", "gloss_overlap",
           "load_jieba", "mentions", "misses_names", "question_names", "question_words", "stem", "term_weight",
           "tokens"]
