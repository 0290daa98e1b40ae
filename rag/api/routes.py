"""The HTTP API: OpenAI-compatible chat completions with citations, `ask`/`retrieve` as JSON, the article library."""
from __future__ import annotations

import hmac
import logging
import os
from dataclasses import asdict
from pathlib import Path

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from ..answer import AnswerConfig
from ..errors import RagError
from ..pipeline import answer_slot, ask, retrieve
from ..retrieve import searcher
from ..store import parse_spec
from . import openai_format
from .schemas import MAX_TURN, AskRequest, ChatRequest, Message, RetrieveRequest

log = logging.getLogger(__name__)
MAX_BODY = 256 * 1024  # bytes of a request body
UNAVAILABLE = ("the index is not available (not built yet, or damaged); the operator can run "
               "`rag index --rebuild PATH...`")


class ApiError(HTTPException):
    """An error answered as OpenAI's JSON error object."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
        super().__init__(status, message)
        self.kind, self.param = kind, param


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}}, status)


class BodyLimit:
    """ASGI middleware: a request body to /v1 over `limit` bytes is refused with 413 before the app reads it (the
    UI's uploads, mounted beside it, have their own cap)."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith("/v1"):
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await _error(413, f"request body over {self.limit} bytes", "invalid_request_error")(scope, receive,
                                                                                                      send)
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.limit:
                raise ApiError(413, f"request body over {self.limit} bytes")
            return msg

        return await self.app(scope, limited, send)


def build_api(index_dir: str | os.PathLike, *, api_key: str | None = None, app: FastAPI | None = None) -> FastAPI:
    """The API routes over the index at `index_dir`, on `app` (a new FastAPI app when None). With `api_key` (default
    $RAG_API_KEY) every /v1 route wants `Authorization: Bearer <key>`."""
    root = str(index_dir) if parse_spec(index_dir).milvus else str(Path(index_dir))  # Path would fold http://
    key = (api_key if api_key is not None else os.environ.get("RAG_API_KEY")) or None  # "": no key
    app = app or FastAPI(title="rag-news API", version="1", description=__doc__)
    app.add_middleware(BodyLimit)
    _handlers(app)

    def authorised(request: Request) -> None:
        if key is None:
            return
        got = request.headers.get("authorization", "")
        if not hmac.compare_digest(got.encode(), f"Bearer {key}".encode()):
            raise ApiError(401, "a valid API key is needed: Authorization: Bearer <key>", "authentication_error")

    v1 = [Depends(authorised)]

    @app.get("/healthz", tags=["status"])
    def healthz() -> dict:
        """Liveness, with the index's size."""
        stats = _stats(root)
        return {"status": "ok", "articles": stats["articles"], "chunks": stats["chunks"]}

    @app.get("/v1/models", tags=["openai"], dependencies=v1)
    def models() -> dict:
        return {"object": "list", "data": [{"id": openai_format.MODEL, "object": "model", "created": 0,
                                            "owned_by": "rag-news"}]}

    @app.post("/v1/chat/completions", tags=["openai"], dependencies=v1)
    def chat(body: ChatRequest):
        """The last user message is the question; earlier user/assistant pairs are its history."""
        question, history = _turns(body.messages)
        answer = _safely(ask, question, root, k=body.k, history=history or None, now=body.now)
        if body.stream:
            return StreamingResponse(openai_format.stream(answer, body.model), media_type="text/event-stream")
        return openai_format.completion(answer, body.model)

    @app.post("/v1/ask", tags=["rag"], dependencies=v1)
    def ask_route(body: AskRequest) -> dict:
        """`ask()`: the answer with its citations and the passages it read. A citation's (and passage's)
        `date_from_text` is true when its `published` was read from the article's text, the file giving no date."""
        answer = _safely(ask, body.question, root, k=body.k, history=[tuple(t) for t in body.history] or None,
                         date_from=body.date_from, date_to=body.date_to, source=body.source,
                         config=AnswerConfig(reader=body.reader), now=body.now)
        return answer.to_dict(with_passages=True)

    @app.post("/v1/retrieve", tags=["rag"], dependencies=v1)
    def retrieve_route(body: RetrieveRequest) -> dict:
        """`retrieve()`: the k best passages."""
        passages = _safely(retrieve, body.question, root, k=body.k, date_from=body.date_from, date_to=body.date_to,
                           source=body.source, now=body.now)
        return {"passages": [asdict(p) for p in passages]}

    @app.get("/v1/articles", tags=["library"], dependencies=v1)
    def articles(offset: int = Query(0, ge=0), limit: int = Query(20, ge=1, le=100),
                 date_from: str | None = Query(None, max_length=20), date_to: str | None = Query(None, max_length=20),
                 source: str | None = Query(None, max_length=200), q: str | None = Query(None, max_length=200)) -> dict:
        """The indexed articles, newest first, paged; `q` searches the titles."""
        idx = _index(root)
        total, rows = idx.list_articles(offset, limit, date_from=date_from, date_to=date_to, source=source, title=q)
        return {"total": total, "offset": offset, "articles": rows}

    @app.get("/v1/articles/{article_id}", tags=["library"], dependencies=v1)
    def article(article_id: str) -> dict:
        """One article's stored text and metadata (plain text, never the original HTML; `date_from_text`: `published`
        was read from the text); `story`: the other articles carrying the same story (near-duplicates: id, title,
        url, published, source, date_from_text; the representative first)."""
        idx = _index(root)
        found = idx.article(article_id) if len(article_id) <= 64 else None
        if found is None:
            raise ApiError(404, f"no article {article_id[:64]!r} in the index", param="article_id")
        copies = getattr(idx, "story_copies", lambda ids: {})([article_id]).get(article_id, ())
        return {"id": article_id, "title": found.title, "url": found.url, "published": found.published,
                "date_from_text": found.date_from_text, "source": found.source, "text": found.text,
                "headings": [list(h) for h in found.headings], "captions": list(found.captions),
                "story": [asdict(c) for c in copies if c.article_id != article_id]}

    return app


def _turns(messages: list[Message]) -> tuple[str, list[tuple[str, str]]]:
    """(question, history) from chat messages: system messages skipped, each user message paired with the assistant
    message after it; the last message must be the user's question."""
    texts = [(m.role, _text(m.content)) for m in messages if m.role in ("user", "assistant")]
    if not texts or texts[-1][0] != "user" or not texts[-1][1].strip():
        raise ApiError(400, "the last message must be a user message with the question", param="messages")
    history, pending = [], None
    for role, text in texts[:-1]:
        if role == "user":
            pending = text[:MAX_TURN]
        elif pending is not None:
            history.append((pending, text[:MAX_TURN]))
            pending = None
    return texts[-1][1], history


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _safely(fn, *args, **kw):
    try:
        with answer_slot():
            return fn(*args, **kw)
    except (ValueError, TypeError) as e:  # bad question, dates or history: the caller's to fix
        raise ApiError(400, str(e)) from None
    except RagError as e:
        log.error("index error: %s", e)  # the path and details go to the server log only
        raise ApiError(503, UNAVAILABLE, "server_error") from None


def _index(root: str):
    try:
        return searcher(root).refresh()
    except RagError as e:
        log.error("index error: %s", e)
        raise ApiError(503, UNAVAILABLE, "server_error") from None


def _stats(root: str) -> dict:
    return _index(root).stats()


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request, e: ApiError):
        return _error(e.status_code, e.detail, e.kind, e.param)

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        return _error(e.status_code, str(e.detail), "invalid_request_error")

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request",
                      "invalid_request_error", where or None)

    @app.exception_handler(Exception)
    async def crashed(request, e: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return _error(500, "internal error (the server log has the details)", "server_error")
