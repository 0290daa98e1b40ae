"""Cross-lingual bridge: an English question's words mapped to the corpus's Chinese words by embedding similarity."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .errors import CorruptIndexError
from .store import read_strings
from .text import CJK_RE, fold

# A multilingual embedder places "president" next to 总统 and "visa" next to 签证 (USE m3: cosine 0.94 / 0.75), so
# the corpus's own words, embedded once at index time, act as a dictionary. On XQuAD (English questions over the
# Chinese paragraphs, 300 questions) BM25 over question + bridged words lifts fused hit@1 from 0.58 to 0.71.
MIN_SIMILARITY = 0.5
PER_WORD = 3  # Chinese words kept per English word ...
MARGIN = 0.05  # ... within this cosine of its best match
MAX_WORDS = 200_000  # lexicon cap: 200k x 512 dims as 8-bit codes is 100 MB

_STOP = frozenset("""
a an the of in on at to for from by with and or is are was were be been being do does did done what which who whom
whose when where why how that this these those it its as into than then there their they them he she his her him i
you we our your not no yes can could would should will shall may might must has have had about after before during
over under between up down out off also such many much more most other some any each all both one first new name
named called kind type part take took make made get got use used become became give gave according another
""".split())
_WORD = re.compile(r"[^\W\d_][\w'\-]*", re.UNICODE)


def question_words(question: str) -> list[str]:
    """Content words of an English question, in order, once each."""
    seen: set[str] = set()
    out = []
    for w in (w.strip("'-") for w in _WORD.findall(question)):
        if len(w) > 1 and w.lower() not in _STOP and not CJK_RE.search(w) and w.lower() not in seen:
            seen.add(w.lower())
            out.append(w)
    return out


def corpus_words(text: str) -> set[str]:
    """Chinese words (jieba, two or more characters) of a text, folded to Simplified."""
    from .text import _jieba

    return {w for w in _jieba().lcut(fold(text)) if len(w) >= 2 and CJK_RE.search(w)}


class Lexicon:
    """The corpus's Chinese words and an 8-bit FAISS index of their vectors (files lexicon.json, lexicon.faiss)."""

    def __init__(self, words: list[str], index):
        self.words, self.index = words, index
        self.vocabulary = frozenset(words)

    @staticmethod
    def save(gen_dir: Path, words: list[str], vectors: np.ndarray, dim: int) -> None:
        import faiss

        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(words), dim)
        (gen_dir / "lexicon.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
        # float16 copy kept so that an update re-embeds only new words
        np.save(gen_dir / "lexicon.npy", vecs.astype(np.float16), allow_pickle=False)
        n = len(words)
        if n < 5000:
            index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        else:  # a flat scan of 54k words took 15-20 ms per question; IVF probing 1/8 of the lists, ~2 ms
            nlist = int(2 * np.sqrt(n))
            quant = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFScalarQuantizer(quant, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT)
            index.own_fields = True
            quant.this.disown()
            index.nprobe = max(1, nlist // 8)
        if n:
            sample = vecs[np.random.default_rng(0).choice(n, size=min(n, 100_000), replace=False)]
            index.train(sample)
            index.add(vecs)
        faiss.write_index(index, str(gen_dir / "lexicon.faiss"))

    @classmethod
    def load(cls, gen_dir: Path, dim: int) -> "Lexicon":
        import faiss

        words = read_strings(gen_dir / "lexicon.json", "lexicon")
        try:
            index = faiss.read_index(str(gen_dir / "lexicon.faiss"))
        except Exception as e:
            raise CorruptIndexError(str(gen_dir / "lexicon.faiss"), f"lexicon index is unreadable ({str(e).splitlines()[0][:200]})") from None
        if index.ntotal != len(words) or (len(words) and index.d != dim):
            raise CorruptIndexError(str(gen_dir / "lexicon.faiss"), f"holds {index.ntotal} vectors of dimension "
                                    f"{index.d} for {len(words)} words of dimension {dim}")
        return cls(words, index)

    def translate(self, vectors: np.ndarray) -> list[str]:
        """For each query-word vector, the closest corpus words (cosine >= MIN_SIMILARITY, within MARGIN of the best)."""
        return list(self.translate_scored(vectors))

    def translate_scored(self, vectors: np.ndarray) -> dict[str, float]:
        """`translate`, with each word's cosine (the best one when two query words reach it)."""
        if not len(self.words) or not len(vectors):
            return {}
        sims, ids = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), PER_WORD)
        out: dict[str, float] = {}
        for srow, irow in zip(sims, ids):
            for s, i in zip(srow, irow):
                if i >= 0 and s >= MIN_SIMILARITY and s >= srow[0] - MARGIN:
                    out[self.words[i]] = max(out.get(self.words[i], 0.0), float(s))
        return out


def term_weight(similarity: float) -> float:
    """How much a bridged word counts beside the question's own words: a loose match ("Nobel" -> 贝尔纳, 0.55) far
    less than a close one ("Tuesday" -> 星期二, 0.82)."""
    return float(np.clip((similarity - 0.45) / 0.3, 0.2, 1.0))
