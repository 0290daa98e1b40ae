"""Serve the Gradio app on loopback for the load and serve tests, answering with the tests' deterministic fake embedder.

usage: python serve_worker.py INDEX_DIR PORT [--uploads off|shared] [--api-only] [--api-key KEY]
Launches as `rag serve` does (rag.ui.app.server_app under uvicorn: the API and the UI, the rag log on stderr); uploads are indexed by
tests/helpers/ui_worker.py (the indexing worker with the fake embedder). Prints `ready <url>` once the server
accepts requests; runs until killed.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
HELPERS = Path(__file__).resolve().parent
sys.path.insert(0, str(HELPERS.parent))  # tests/, for conftest.FakeEmbedder

import uvicorn  # noqa: E402
from conftest import FakeEmbedder  # noqa: E402

from rag.models import registry  # noqa: E402
from rag.ui.app import server_app, setup_logging  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("index_dir")
    ap.add_argument("port", type=int)
    ap.add_argument("--uploads", default="shared")
    ap.add_argument("--api-only", action="store_true")
    ap.add_argument("--api-key", default=None)
    args = ap.parse_args()
    if args.api_key:
        os.environ["RAG_API_KEY"] = args.api_key
    setup_logging()
    registry.SHARED["fake-64"] = FakeEmbedder()  # what the index's manifest names
    app, _ = server_app(Path(args.index_dir), uploads=args.uploads, ui=not args.api_only, bootstrap=True,
                        worker_command=[sys.executable, str(HELPERS / "ui_worker.py")])
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    print(f"ready http://127.0.0.1:{args.port}/", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
