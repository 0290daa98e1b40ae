"""A minimal ONNX model writer (protobuf wire format by hand), so that building a graph needs neither onnx nor torch."""
from __future__ import annotations

import struct

import numpy as np

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
        self._n = 0

    def input(self, name: str, elem_type, shape) -> str:
        self.inputs.append(value_info(name, elem_type, shape))
        return name

    def init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(tensor(name, array))
        return name

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
