"""The Gradio chat UI (`rag serve`): cited answers, a sources panel and uploads indexed in the background."""
from .app import DEFAULT_HOST, DEFAULT_PORT, build_app, resolve_address, serve
from .inputs import InputError, history_pairs, parse_dates, parse_k
from .render import from_display, highlight, render_sources, safe_url, to_display
from .uploads import UploadRejected, check_upload, safe_filename, store_upload

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "InputError", "UploadRejected", "build_app", "check_upload",
           "from_display", "highlight", "history_pairs", "parse_dates", "parse_k", "render_sources",
           "resolve_address", "safe_filename", "safe_url", "serve", "store_upload", "to_display"]
