"""`Answer` records as OpenAI chat completions: the text with its [n] markers, url_citation annotations, citations."""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict
from typing import Iterator

from ..types import Answer

MODEL = "rag-news"


def annotations(answer: Answer) -> list[dict]:
    """One OpenAI `url_citation` per citation: the span of the answer text that quotes it (sentence and marker)."""
    out, pos = [], 0
    for c in answer.citations:
        marker = f"[{c.number}]"
        end = answer.text.find(marker, pos)
        if end < 0:
            continue
        start = answer.text.rfind(c.sentence, 0, end)
        start = start if start >= 0 else pos
        end += len(marker)
        out.append({"type": "url_citation",
                    "url_citation": {"start_index": start, "end_index": end, "title": c.title, "url": c.url}})
        pos = end
    return out


def message(answer: Answer) -> dict:
    return {"role": "assistant", "content": answer.text, "refusal": None, "annotations": annotations(answer),
            "citations": [asdict(c) for c in answer.citations], "declined": answer.abstained}


def completion(answer: Answer, model: str) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model or MODEL, "system_fingerprint": None,
            "choices": [{"index": 0, "message": message(answer), "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


def stream(answer: Answer, model: str) -> Iterator[str]:
    """Server-sent events: the role, the text a sentence at a time, then the annotations and citations with
    finish_reason "stop", then [DONE]."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model or MODEL, "system_fingerprint": None}

    def event(delta: dict, finish: str | None = None) -> str:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in _pieces(answer):
        yield event({"content": piece})
    msg = message(answer)
    yield event({"annotations": msg["annotations"], "citations": msg["citations"], "declined": answer.abstained},
                "stop")
    yield "data: [DONE]\n\n"


def _pieces(answer: Answer) -> list[str]:
    """The answer text cut after each citation marker (it arrives a quoted sentence at a time)."""
    cuts = []
    for c in answer.citations:
        i = answer.text.find(f"[{c.number}]", cuts[-1] if cuts else 0)
        if i >= 0:
            cuts.append(i + len(f"[{c.number}]"))
    bounds = [0, *cuts, len(answer.text)]
    return [answer.text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
