"""A minimal ONNX model writer (protobuf wire format by hand), so that building a graph needs neither onnx nor torch."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# onnx.proto field numbers and enums used here
_DTYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.int32): 6,
           np.dtype(np.int64): 7, np.dtype(np.float16): 10}
_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_INTS = 1, 2, 3, 7
IR_VERSION = 10  # opset 21


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 as two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, v: int) -> bytes:
    return _key(field, 0) + _varint(v)


def _bytes(field: int, v: bytes | str) -> bytes:
    if isinstance(v, str):
        v = v.encode()
    return _key(field, 2) + _varint(len(v)) + v


def tensor(name: str, array: np.ndarray) -> bytes:
    """A TensorProto with raw little-endian data."""
    a = np.ascontiguousarray(array)
    return (b"".join(_int(1, d) for d in a.shape) + _int(2, _DTYPES[a.dtype]) + _bytes(8, name)
            + _bytes(9, a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()))


def _attr(name: str, v) -> bytes:
    if isinstance(v, float):
        return _bytes(1, name) + _int(20, _ATTR_FLOAT) + _key(2, 5) + struct.pack("<f", v)
    if isinstance(v, int):
        return _bytes(1, name) + _int(20, _ATTR_INT) + _int(3, v)
    if isinstance(v, str):
        return _bytes(1, name) + _int(20, _ATTR_STRING) + _bytes(4, v)
    return _bytes(1, name) + _int(20, _ATTR_INTS) + b"".join(_int(8, i) for i in v)


def value_info(name: str, elem_type, shape) -> bytes:
    """A graph input or output: `shape` items are ints or symbolic names."""
    dims = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in shape)
    ttype = _int(1, _DTYPES[np.dtype(elem_type)]) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, ttype))


class Graph:
    """Nodes and initializers, serialised by `model()`."""

    def __init__(self):
        self.nodes: list[bytes] = []
        self.inits: list[bytes] = []
        self.inputs: list[bytes] = []
        self.outputs: list[bytes] = []
        self._consts: dict[str, str] = {}
        self._n = 0

    def input(self, name: str, elem_type, shape) -> str:
        self.inputs.append(value_info(name, elem_type, shape))
        return name

    def init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(tensor(name, array))
        return name

    def const(self, name: str, value) -> str:
        """A small constant shared by every node that asks for `name` (written once)."""
        if name not in self._consts:
            self._consts[name] = self.init(name, np.asarray(value))
        return self._consts[name]

    def node(self, op: str, inputs, n_out: int = 1, domain: str = "", **attrs) -> list[str]:
        self._n += 1
        outs = [f"{op}_{self._n}_{i}" for i in range(n_out)]
        body = (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outs)
                + _bytes(3, f"n{self._n}") + _bytes(4, op) + b"".join(_bytes(5, _attr(k, v)) for k, v in attrs.items()))
        if domain:
            body += _bytes(7, domain)
        self.nodes.append(body)
        return outs

    def op(self, op: str, *inputs, domain: str = "", **attrs) -> str:
        return self.node(op, inputs, 1, domain, **attrs)[0]

    def output(self, name_in: str, name: str, elem_type, shape) -> None:
        self.nodes.append(_bytes(1, name_in) + _bytes(2, name) + _bytes(3, f"out_{name}") + _bytes(4, "Identity"))
        self.outputs.append(value_info(name, elem_type, shape))

    def model(self, opsets: dict[str, int], producer: str = "rag-news") -> bytes:
        graph = (b"".join(_bytes(1, n) for n in self.nodes) + _bytes(2, "g") + b"".join(_bytes(5, t) for t in self.inits)
                 + b"".join(_bytes(11, i) for i in self.inputs) + b"".join(_bytes(12, o) for o in self.outputs))
        ops = b"".join(_bytes(8, _bytes(1, d) + _int(2, v)) for d, v in opsets.items())
        return _int(1, IR_VERSION) + _bytes(2, producer) + _bytes(7, graph) + ops


# ---------------------------------------------------------------- encoder pieces shared by the graphs built here


def linear(g: Graph, x: str, w: np.ndarray, b: np.ndarray, name: str, kind: str) -> str:
    """x @ w + b for w (nin, nout) float32. kind "fp32"; "int8" (DynamicQuantizeMatMul: activations quantised per
    tensor, weights per column); "rowu" (activations quantised per token to uint8, weights per column to int8,
    MatMulInteger): a row's result depends on that row only."""
    b = g.init(name + ".b", np.ascontiguousarray(b, dtype=np.float32))
    if kind == "fp32":
        return g.op("Add", g.op("MatMul", x, g.init(name + ".w", np.ascontiguousarray(w, dtype=np.float32))), b)
    scale = np.abs(w).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    wq = g.init(name + ".wq", np.clip(np.rint(w / scale), -127, 127).astype(np.int8))
    ws = g.init(name + ".ws", scale.astype(np.float32))
    if kind == "int8":
        return g.op("DynamicQuantizeMatMul", x, wq, ws, g.init(name + ".wz", np.zeros(w.shape[1], np.int8)), b,
                    domain="com.microsoft")
    if kind.startswith("q8-"):  # MatMulNBits, 8 bits: weights and (accuracy_level 4) activations in blocks along K
        block = int(kind[3:])
        nin, nout = w.shape
        wb = w.T.reshape(nout, nin // block, block)
        bs = np.abs(wb).max(axis=2) / 127.0
        bs[bs == 0] = 1.0
        packed = (np.clip(np.rint(wb / bs[..., None]), -127, 127) + 128).astype(np.uint8)
        scales = g.init(name + ".q8s", bs.astype(np.float32).reshape(-1))
        return g.op("MatMulNBits", x, g.init(name + ".q8", packed), scales, "", "", b, domain="com.microsoft", K=nin,
                    N=nout, bits=8, block_size=block, accuracy_level=4)
    if kind != "rowu":
        raise ValueError(f"unknown matmul kind {kind!r}: expected fp32, int8 or rowu")
    # per token: a = round(x / s_t), s_t = max|x_t| / 127; y = (a @ wq) * s_t * ws + b
    amax = g.op("ReduceMax", g.op("Abs", x), g.const("axes", np.array([-1], np.int64)), keepdims=1)
    st = g.op("Max", g.op("Div", amax, g.const("c127", np.array(127, np.float32))),
              g.const("tiny", np.array(1e-12, np.float32)))
    # uint8 with zero point 128: int8 x int8 MatMulInteger took 4x longer than the u8s8 kernels. One block per row
    # (opset 21's blocked QuantizeLinear) wants a zero point per row too.
    zp = g.op("Cast", g.op("Add", g.op("Mul", st, g.const("c0", np.array(0, np.float32))),
                           g.const("c128", np.array(128, np.float32))), to=2)
    a = g.op("QuantizeLinear", x, st, zp, axis=-1, block_size=w.shape[0])
    acc = g.op("MatMulInteger", a, wq, g.const("zp128", np.array(128, np.uint8)))
    return g.op("Add", g.op("Mul", g.op("Mul", g.op("Cast", acc, to=1), st), ws), b)


def layer_norm(g: Graph, x: str, w: np.ndarray, b: np.ndarray, eps: float, name: str) -> str:
    """Over the last axis, spelled out: onnxruntime's (Skip)LayerNormalization kernels took 4x longer here."""
    axes = g.const("axes", np.array([-1], np.int64))
    d = g.op("Sub", x, g.op("ReduceMean", x, axes, keepdims=1))
    var = g.op("ReduceMean", g.op("Mul", d, d), axes, keepdims=1)
    inv = g.op("Reciprocal", g.op("Sqrt", g.op("Add", var, g.const(f"eps{eps!r}", np.array(eps, np.float32)))))
    return g.op("Add", g.op("Mul", g.op("Mul", d, inv), g.init(name + ".w", np.asarray(w, np.float32))),
                g.init(name + ".b", np.asarray(b, np.float32)))


# ---------------------------------------------------------------- built graphs, cached on disk


def intact(folder: Path, name: str = "model.onnx") -> bool:
    """Whether `folder` holds `name` with the SHA-256 its source.json records."""
    try:
        want = json.loads((folder / "source.json").read_text(encoding="utf-8"))["sha256"]
        return hashlib.sha256((folder / name).read_bytes()).hexdigest() == want
    except (OSError, ValueError, KeyError, TypeError):
        return False


def cached_model(final: Path, build: Callable[[], bytes], source: dict) -> Path | bytes:
    """`final`/model.onnx, built by `build()` first if absent or damaged (into a temporary folder renamed into place,
    so that readers never see a partial one and concurrent builders do not collide), with `source` and the graph's
    SHA-256 in source.json beside it; the graph itself (bytes) when the cache cannot be written."""
    final = Path(final)
    if final.exists():
        if intact(final):
            return final / "model.onnx"
        log.warning("%s: damaged cached graph, building it again", final)
        with contextlib.suppress(OSError):  # moved aside first: a reader never sees a half-deleted folder
            aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.damaged.", dir=final.parent))
            os.replace(final, aside / "old")
            shutil.rmtree(aside, ignore_errors=True)
    blob = build()
    tmp = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        (tmp / "model.onnx").write_bytes(blob)
        (tmp / "source.json").write_text(json.dumps({**source, "sha256": hashlib.sha256(blob).hexdigest()}, indent=1),
                                         encoding="utf-8")
        try:
            os.replace(tmp, final)
            tmp = None
        except OSError:
            if not intact(final):  # not a concurrent builder's finished copy
                raise
    except OSError:
        return blob
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return final / "model.onnx"


def cpu_session(graph: Path | bytes):
    """An onnxruntime session on one thread (no pool, so no spinning threads on a busy machine); Run is thread-safe,
    so callers share it."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    source = str(graph) if isinstance(graph, Path) else graph
    return ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])
