"""Serve the Gradio app on loopback for the load test, answering with the tests' deterministic fake embedder.

usage: python serve_worker.py INDEX_DIR PORT
Prints `ready <url>` once the server accepts requests; runs until killed.
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for conftest.FakeEmbedder

from conftest import FakeEmbedder  # noqa: E402

from rag.models import registry  # noqa: E402
from rag.ui import build_app  # noqa: E402


def main() -> int:
    index_dir, port = sys.argv[1], int(sys.argv[2])
    registry.SHARED["fake-64"] = FakeEmbedder()  # what the index's manifest names
    demo = build_app(index_dir, bootstrap=False)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, ssr_mode=False, quiet=True,
                show_error=True)
    print(f"ready http://127.0.0.1:{port}/", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
