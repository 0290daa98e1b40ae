"""Request bodies of the HTTP API, validated by pydantic before anything reaches `ask()`."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_QUESTION = 2000  # characters accepted in a question (ask() reads the first 500)
MAX_TURN = 4000  # characters of an earlier message
MAX_MESSAGES = 50
MAX_K = 20


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(5, ge=1, le=MAX_K)
    date_from: str | None = Field(None, max_length=20, description="only articles published on/after (YYYY-MM-DD)")
    date_to: str | None = Field(None, max_length=20, description="only articles published on/before (YYYY-MM-DD)")
    source: str | None = Field(None, max_length=200)
    now: str | None = Field(None, max_length=30, description="the day the question's 昨天/last week/最新 are read "
                            "against (YYYY-MM-DD; default the server's today)")


class RetrieveRequest(Filters):
    question: str = Field(..., min_length=1, max_length=MAX_QUESTION)


class AskRequest(RetrieveRequest):
    history: list[tuple[str, str]] = Field(default_factory=list, max_length=MAX_MESSAGES,
                                           description="earlier [question, answer] turns, oldest first")
    reader: Literal["e5", "none"] = "e5"


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_call_id...: accepted, not used

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list | None = Field(None)


class ChatRequest(BaseModel):
    """OpenAI's chat completion request; sampling options (temperature, top_p...) are accepted and have no effect:
    answers are quoted, not generated."""

    model_config = ConfigDict(extra="allow")

    model: str = Field("rag-news", max_length=200)
    messages: list[Message] = Field(..., min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    k: int = Field(5, ge=1, le=MAX_K)
    now: str | None = Field(None, max_length=30, description="the day the question's 昨天/last week/最新 are read "
                            "against (YYYY-MM-DD; default the server's today)")
