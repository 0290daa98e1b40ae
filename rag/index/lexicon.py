"""The corpus's Chinese words and an 8-bit FAISS index of their vectors: an English question's words find
their Chinese counterparts here (rag.lang.bridge holds the word-level rules)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import CorruptIndexError
from .files import read_strings

# A multilingual embedder places "president" next to 总统 and "visa" next to 签证 (USE m3: cosine 0.94 / 0.75), so
# the corpus's own words, embedded once at index time, act as a dictionary. On XQuAD (English questions over the
# Chinese paragraphs, 300 questions) BM25 over question + bridged words lifts fused hit@1 from 0.58 to 0.71.
MIN_SIMILARITY = 0.5
PER_WORD = 3  # Chinese words kept per English word ...
MARGIN = 0.05  # ... within this cosine of its best match
MAX_WORDS = 200_000  # lexicon cap: 200k x 512 dims as 8-bit codes is 100 MB


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
        faiss.write_index(build_index(vecs, dim), str(gen_dir / "lexicon.faiss"))

    @classmethod
    def of(cls, words: list[str], vectors: np.ndarray, dim: int) -> "Lexicon":
        """A lexicon built in memory, as `save` builds it (the Milvus store's, rag.store.milvus)."""
        return cls(list(words), build_index(np.asarray(vectors, dtype=np.float32).reshape(len(words), dim), dim))

    @classmethod
    def load(cls, gen_dir: Path, dim: int, words: list[str] | None = None, fd: int | None = None) -> "Lexicon":
        """`words`: lexicon.json's list when already read (Index checks it against lexicon.npy on open); `fd`:
        lexicon.faiss opened when the generation was, so that it still reads after a writer removed the folder."""
        import faiss

        if words is None:
            words = read_strings(gen_dir / "lexicon.json", "lexicon")
        try:
            if fd is None:
                index = faiss.read_index(str(gen_dir / "lexicon.faiss"))
            elif os.path.exists(f"/proc/self/fd/{fd}"):
                # Linux: FAISS reads the open file itself (a removed folder's too): a 200k-word lexicon (106 MB)
                # in 0.14 s, against 0.40 s through a bytes copy and deserialize_index (medians of 7, 2 busy cores)
                index = faiss.read_index(f"/proc/self/fd/{fd}")
            else:
                index = faiss.deserialize_index(np.frombuffer(_read_fd(fd), dtype=np.uint8))
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


def build_index(vecs: np.ndarray, dim: int):
    """The FAISS index of a lexicon's word vectors (float32, one row per word)."""
    import faiss

    n = len(vecs)
    if n < 5000:  # float16 codes need no training: a word scores the same in any segment
        index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    else:  # a flat scan of 54k words took 15-20 ms per question; IVF probing 1/8 of the lists, ~2 ms
        nlist = max(1, min(int(2 * np.sqrt(n)), n // 39))  # FAISS wants >= 39 training points a list
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
    return index


class Lexicons:
    """The lexicons of several segments searched as one: each segment's best words, the best of them kept. `dead`:
    words none of whose articles is live any more (their segment's rows were deleted; a merge drops them)."""

    def __init__(self, parts: list[Lexicon], dead: set[str] | frozenset = frozenset()):
        self.parts, self.dead = parts, frozenset(dead)
        self.words = [w for p in parts for w in p.words if w not in self.dead]
        self.vocabulary = frozenset(self.words)

    def translate(self, vectors: np.ndarray) -> list[str]:
        return list(self.translate_scored(vectors))

    def translate_scored(self, vectors: np.ndarray) -> dict[str, float]:
        if not self.words or not len(vectors):
            return {}
        q = np.ascontiguousarray(vectors, dtype=np.float32)
        extra = PER_WORD * 2 if self.dead else 0  # room for dead words, dropped below
        found = [p.index.search(q, min(len(p.words), PER_WORD + extra)) + (p.words,) for p in self.parts if p.words]
        out: dict[str, float] = {}
        for r in range(len(q)):
            cands = sorted(((float(s), words[i]) for sims, ids, words in found for s, i in zip(sims[r], ids[r])
                            if i >= 0 and words[i] not in self.dead), key=lambda x: (-x[0], x[1]))[:PER_WORD]
            for s, w in cands:
                if s >= MIN_SIMILARITY and s >= cands[0][0] - MARGIN:
                    out[w] = max(out.get(w, 0.0), s)
        return out


def _read_fd(fd: int) -> bytes:
    """A whole file read from an open descriptor with pread (no shared file position: threads may call it at once)."""
    size, parts, at = os.fstat(fd).st_size, [], 0
    while at < size:
        part = os.pread(fd, size - at, at)
        if not part:
            break
        parts.append(part)
        at += len(part)
    return b"".join(parts)
