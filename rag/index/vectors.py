"""Dense vectors: FAISS indexes built, read, checked and searched; memory-mapped vector rows."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CorruptIndexError

# ---------------------------------------------------------------- FAISS choice


def choose_faiss_kind(n: int) -> str:
    """Exact search up to 50k chunks, IVF with 8-bit scalar quantisation beyond (eval/bench, docs/performance.md).

    At 100k chunks (2-core box, real dev questions as queries): ivf-sq8 reaches recall@10 0.94 against exact search,
    builds in ~1-4 s (HNSW: 23 s and recall@10 0.84; every commit rebuilds the index) and takes 52 MB (flat 196 MB).
    At 1M: ~15-30 s to build, 0.5 GB (flat 2 GB), ~25 ms per search (flat ~180 ms); HNSW would take ~5 min to
    build. Below ~50k chunks exact search stays near 1-10 ms on one thread and IVF's recall is lower.
    """
    return "flat" if n <= 50_000 else "ivf-sq8"


def build_faiss(vectors: np.ndarray, ids: np.ndarray, kind: str = "auto"):
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # training and adding use every core; queries use one
    try:
        return _build_faiss(vectors, ids, kind)
    finally:
        faiss.omp_set_num_threads(before)


def _build_faiss(vectors: np.ndarray, ids: np.ndarray, kind: str):
    import faiss

    n, dim = vectors.shape if vectors.size else (0, vectors.shape[1] if vectors.ndim == 2 else 0)
    kind = choose_faiss_kind(n) if kind == "auto" else kind
    if kind == "flat":
        base = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        base = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = 80
        base.hnsw.efSearch = 96
    elif kind == "hnsw-sq8":
        base = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = 80
        base.hnsw.efSearch = 96
        if n:
            base.train(vectors)
    elif kind.startswith("ivf"):
        # ~2*sqrt(n) lists, k-means on 40 vectors per list (at 1M: 31 s to build on the 2-core box; the former
        # 4*sqrt(n) lists / 50 per list meant 5x the k-means work for the same recall at 100k). Probe a quarter of
        # the lists, at most 256: recall@10 on the dev questions 0.94 at 100k and 0.89 at 1M, where the former 1/8
        # (at most 128) gave ~0.89 and 0.84 and cost end-to-end hit@5 (eval/bench sweep; 1M search 30-40 ms).
        nlist = max(1, min(4096, n, int(2 * np.sqrt(max(n, 1)))))
        quant = faiss.IndexFlatIP(dim)
        if kind == "ivf-sq8":
            base = faiss.IndexIVFScalarQuantizer(quant, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        else:
            base = faiss.IndexIVFFlat(quant, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.sort(np.random.default_rng(0).choice(n, size=min(n, 40 * nlist), replace=False))] if n else vectors
        base.train(sample)
        base.nprobe = max(1, min(256, nlist // 4))
        base.own_fields = True
        quant.this.disown()
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r}")
    index = faiss.IndexIDMap2(base)
    if n:
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))
    return index, kind



class Rows:
    """The rows of a 2-D .npy file, read on demand with pread (never pickle, never memory-mapped).

    A query reads ~200 scattered chunk vectors and ~20 sentence vectors. Memory-mapped, even with MADV_RANDOM,
    each page fault also maps up to 16 neighbouring pages already in the page cache, which kept 1.8 GB of a
    1M-chunk vectors.npy resident after 120 questions (eval/bench); pread leaves them in the page cache only.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._f = open(self.path, "rb")
            version = np.lib.format.read_magic(self._f)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = header(self._f)
        except Exception as e:
            raise CorruptIndexError(str(self.path), f"array file is unreadable ({e.__class__.__name__}: {e})") from None
        if dtype.hasobject or fortran or len(shape) != 2:
            raise CorruptIndexError(str(self.path), f"not a 2-D numeric array (dtype {dtype}, shape {shape})")
        self.shape, self.dtype = tuple(shape), dtype
        self._offset, self._row = self._f.tell(), dtype.itemsize * shape[1]
        size = os.fstat(self._f.fileno()).st_size
        if size != self._offset + self._row * shape[0]:
            raise CorruptIndexError(str(self.path), f"holds {size} bytes, not the {self._offset + self._row * shape[0]} "
                                    f"its header announces")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, positions) -> np.ndarray:
        pos = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        if len(pos) and (pos.min() < 0 or pos.max() >= self.shape[0]):
            raise IndexError(f"{self.path}: row out of range")
        if self._f.closed:  # reopened after Index.close(), as its SQLite connections are
            self._f = open(self.path, "rb")
        fd = self._f.fileno()
        buf = b"".join(os.pread(fd, self._row, self._offset + int(p) * self._row) for p in pos)
        return np.frombuffer(buf, dtype=self.dtype).reshape(len(pos), self.shape[1])

    def close(self) -> None:
        self._f.close()


def read_faiss(path: Path, n_chunks: int, dim: int):
    """A FAISS file, checked against the chunk count and the manifest's dimension."""
    import faiss

    try:
        index = faiss.read_index(str(path))
    except Exception as e:  # faiss raises RuntimeError with C++ text
        raise CorruptIndexError(str(path), f"FAISS index is unreadable ({str(e).splitlines()[0][:200]})") from None
    if index.ntotal != n_chunks:
        raise CorruptIndexError(str(path), f"holds {index.ntotal} vectors but there are {n_chunks} chunks")
    if n_chunks and index.d != dim:
        raise CorruptIndexError(str(path), f"vector dimension {index.d} != manifest dimension {dim}")
    return index


def row_scores(rows, row_ids: np.ndarray, vector: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(row_ids, chunk_ids)
    return np.asarray(rows[pos], dtype=np.float32) @ np.asarray(vector, dtype=np.float32)


def search_index(index, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    import faiss

    if index.ntotal == 0 or k <= 0:
        return []
    q = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
    k = min(k, index.ntotal)
    params = None
    if allowed is not None:
        if len(allowed) == 0:
            return []
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64)))
    scores, ids = index.search(q, k, params=params) if params is not None else index.search(q, k)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
