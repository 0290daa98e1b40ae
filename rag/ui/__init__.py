"""The Gradio chat UI (`rag serve`): cited answers, a sources panel and uploads indexed by a background worker."""
from .app import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    LAUNCH_OPTIONS,
    UPLOAD_MODES,
    build_app,
    is_loopback,
    resolve_address,
    resolve_uploads,
    serve,
)
from .inputs import InputError, history_pairs, parse_dates, parse_k, parse_question, trim_chat
from .jobs import IndexJobs
from .render import MAX_UPLOAD_BYTES, from_display, highlight, render_sources, safe_url, to_display
from .uploads import UploadRejected, check_upload, safe_filename, store_upload

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "IndexJobs", "InputError", "LAUNCH_OPTIONS", "MAX_UPLOAD_BYTES",
           "UPLOAD_MODES", "UploadRejected", "build_app", "check_upload", "from_display", "highlight",
           "history_pairs", "is_loopback", "parse_dates", "parse_k", "parse_question", "render_sources",
           "resolve_address", "resolve_uploads", "safe_filename", "safe_url", "serve", "store_upload", "to_display",
           "trim_chat"]
