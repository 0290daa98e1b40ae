"""The HTTP API beside the UI (`rag serve`; `rag serve --api-only`): OpenAI-compatible chat completions with
citations, `ask`/`retrieve` as JSON, the article library, /healthz and the OpenAPI page at /docs."""
from .routes import MAX_BODY, build_api

__all__ = ["MAX_BODY", "build_api"]
