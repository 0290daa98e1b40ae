"""Build a tiny, random sentence-transformers model offline (no download), for tests.

The result is a real model directory (BERT config + weights + WordPiece tokenizer + sentence-transformers
module config) that `SentenceTransformer(path, local_files_only=True)` loads through the normal code path.
Embeddings are meaningless but deterministic; building takes well under a second.
"""
from __future__ import annotations

import os
import string
from pathlib import Path

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["query", "passage", "represent", "this", "sentence", "for", "searching", "relevant", "passages",
         "the", "of", "state", "secretary", "visits", "weather", "news", "us"]
CJK = "美国国务卿访问危地马拉今天的天气很好中文新闻总统移民会议北京上海为这个句子生成表示以用于检索相关文章：，。"
HIDDEN = 32


def tiny_vocab() -> list[str]:
    vocab = list(SPECIALS)
    seen = set(vocab)
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    for tok in chars + ["##" + c for c in string.ascii_lowercase + string.digits] + WORDS + list(CJK):
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)
    return vocab


def build_tiny_st_model(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny BERT + mean-pooling SentenceTransformer to `path` (created if needed) and return it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizer

    try:  # sentence-transformers >= 6
        from sentence_transformers.base.modules import Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:  # pragma: no cover - older releases
        from sentence_transformers.models import Pooling, Transformer

    path = Path(path)
    hf_dir = path.parent / (path.name + ".hf")  # the plain transformers checkpoint the ST model is built from
    hf_dir.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    vocab_file = hf_dir / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")

    tokenizer = BertTokenizer(vocab=str(vocab_file), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)

    transformer = Transformer(str(hf_dir), max_seq_length=128)
    pooling = Pooling(HIDDEN, pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    model.save(str(path), create_model_card=False)
    return path
