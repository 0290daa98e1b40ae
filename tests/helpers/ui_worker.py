"""The UI's indexing worker (rag.ui.worker) with the tests' deterministic fake embedder, for IndexJobs in tests.

usage: python ui_worker.py index|remove INDEX_DIR MAX_BYTES PATH...
A new index is built with the fake embedder too. With RAG_TEST_POISON=TEXT in the environment, reading a file whose
name holds TEXT crashes the worker (an unexpected failure, as a bug in a parser or an embedder would be).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for conftest.FakeEmbedder

from conftest import FakeEmbedder  # noqa: E402

from rag.models import registry  # noqa: E402
from rag.ui import worker  # noqa: E402


def _poisoned(read):
    poison = os.environ.get("RAG_TEST_POISON", "")

    def iter_articles(paths, max_bytes):
        for item in read(paths, max_bytes=max_bytes):
            if poison and poison in os.path.basename(item[0]):
                raise RuntimeError(f"poisoned test file {item[0]}")
            yield item

    return iter_articles


if __name__ == "__main__":
    fake = FakeEmbedder()
    registry.SHARED[("indexing", "fake-64")] = fake
    registry.SHARED[("indexing", "use")] = fake  # a new index is built with it as well (named fake-64)
    worker.iter_articles = _poisoned(worker.iter_articles)
    sys.exit(worker.main(sys.argv[1:]))
