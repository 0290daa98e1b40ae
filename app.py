"""Start the chat UI: `python app.py` (the same as `rag serve`).

Settings come from the environment: RAG_INDEX (index folder, default ./.rag-index; built from seeds/ when
missing), GRADIO_SERVER_NAME and GRADIO_SERVER_PORT (default 127.0.0.1:7860), RAG_UPLOADS (off or shared; default
shared on a loopback address, off on any other).
"""
import sys

from rag.ui import serve

if __name__ == "__main__":
    sys.exit(serve())
