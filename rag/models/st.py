"""sentence-transformers models (e5, bge, MiniLM, ...), loaded from a local path or the local HF cache.

Nothing is downloaded unless `allow_download=True`: the model is loaded with `local_files_only=True`
and HF_HUB_OFFLINE=1 is set before sentence_transformers / huggingface_hub are first imported.
"""
from __future__ import annotations

import os
import re
import threading
from typing import Sequence

import numpy as np

from ..errors import RagError

BGE_EN_QUERY = "Represent this sentence for searching relevant passages: "
BGE_ZH_QUERY = "为这个句子生成表示以用于检索相关文章："


class ModelNotAvailableError(RagError, ValueError):
    """The sentence-transformers model is neither a local directory nor in the local Hugging Face cache."""


def _has_token(name: str, token: str) -> bool:
    """`token` appears in `name` delimited by non-alphanumerics (so 'e5' matches 'multilingual-e5-small')."""
    return re.search(rf"(?<![a-z0-9]){re.escape(token)}(?![a-z0-9])", name) is not None


def family_prompts(model: str) -> tuple[str, str] | None:
    """(query prompt, passage prompt) for model families known by name, else None."""
    name = model.lower().replace("\\", "/")
    if _has_token(name, "e5"):
        if "instruct" in name:  # e5-*-instruct: task-specific "Instruct: ...\nQuery: " prompts; use the model's own
            return None
        return "query: ", "passage: "
    if re.search(r"(?<![a-z0-9])bge(?![a-z])", name):
        if _has_token(name, "m3") or "reranker" in name:  # bge-m3 needs no instruction
            return None
        if _has_token(name, "zh"):
            return BGE_ZH_QUERY, ""
        return BGE_EN_QUERY, ""
    return None


def _looks_like_path(model: str) -> bool:
    """True for things that can only be a filesystem path (a hub id is 'name' or 'org/name')."""
    return (
        os.path.isabs(model)
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or (os.sep != "/" and os.sep in model)
        or os.path.exists(model)
    )


def _not_available(model: str, detail: str = "") -> ModelNotAvailableError:
    msg = (
        f"sentence-transformers model {model!r} is not available offline"
        + (f" ({detail})" if detail else "")
        + ". Pass the path of a local model directory (one saved with SentenceTransformer.save() or "
        "downloaded from the Hub), e.g. 'st:/models/multilingual-e5-small', or pass --allow-download "
        "(allow_download=True) to fetch it from the Hugging Face Hub."
    )
    return ModelNotAvailableError(msg)


class STEmbedder:
    """A sentence-transformers model as an Embedder: L2-normalised float32 rows.

    Prompts: `query_prompt` / `passage_prompt` are prepended to queries / documents. None means
    "auto": known families by name (e5 -> "query: "/"passage: ", bge v1/v1.5 -> retrieval instruction on
    queries, bge-m3 -> none), else the model's own configured prompts ("query", "document"/"passage"),
    else none. Pass "" to force no prompt.
    """

    def __init__(
        self,
        model: str,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        allow_download: bool = False,
        device: str = "cpu",
        batch_size: int = 32,
    ):
        if not model or not model.strip():
            raise ValueError("STEmbedder needs a model path or Hugging Face Hub id")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_id = model
        self.name = "st:" + model
        self.allow_download = allow_download
        self.device = device
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._model = self._load(model)
        self.dim = int(self._dimension())
        self.query_prompt, self.passage_prompt = self._resolve_prompts(query_prompt, passage_prompt)

    def __repr__(self) -> str:
        return (
            f"STEmbedder({self.model_id!r}, dim={self.dim}, query_prompt={self.query_prompt!r}, "
            f"passage_prompt={self.passage_prompt!r})"
        )

    # ---------- loading ----------
    def _load(self, model: str):
        path = os.path.expanduser(model)
        if _looks_like_path(model) and not os.path.isdir(path):
            what = "no such directory" if not os.path.exists(path) else "not a directory"
            raise _not_available(model, f"{what}: {path}")
        if not self.allow_download:
            os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RagError(
                "sentence-transformers is not installed; install the 'st' extra "
                "(pip install 'rag-news[st]' -c constraints.txt) or use the default 'use' embedder."
            ) from exc
        try:
            return SentenceTransformer(path, device=self.device, local_files_only=not self.allow_download)
        except Exception as exc:
            if os.path.isdir(path):
                # a local directory that exists but does not load: say why, don't blame the network
                raise RagError(f"could not load sentence-transformers model from {path!r}: {exc}") from exc
            if self.allow_download:
                raise RagError(f"could not load or download sentence-transformers model {model!r}: {exc}") from exc
            raise _not_available(model, "not a local directory and not in the local Hugging Face cache") from exc

    def _dimension(self) -> int:
        m = self._model
        getter = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        dim = getter()
        if not dim:  # unknown from the modules: ask the model
            dim = int(np.asarray(m.encode(["dimension probe"], convert_to_numpy=True)).shape[-1])
        return int(dim)

    def _resolve_prompts(self, query_prompt: str | None, passage_prompt: str | None) -> tuple[str, str]:
        auto = family_prompts(self.model_id)
        if auto is None:
            configured = getattr(self._model, "prompts", None) or {}
            q = configured.get("query") or ""
            p = configured.get("document") or configured.get("passage") or ""
            auto = (q, p)
        return (
            auto[0] if query_prompt is None else query_prompt,
            auto[1] if passage_prompt is None else passage_prompt,
        )

    # ---------- Embedder ----------
    def _embed(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("expected a sequence of strings, got a single str")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.encode(
                texts,
                prompt=prompt,  # always explicit ("" included) so a model's default_prompt_name cannot sneak in
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        out = np.ascontiguousarray(out, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.maximum(norms, 1e-12, out=norms)
        out /= norms  # already unit-length; guards against float16 models and zero rows
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.passage_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.query_prompt)
