"""Write the API reference (docs/api.md) from the OpenAPI schema: `python -m rag.api.reference > docs/api.md`."""
from __future__ import annotations

import json
import sys
import tempfile

from .routes import build_api

INTRO = """# HTTP API

Generated from the OpenAPI schema by `python -m rag.api.reference > docs/api.md`; a running `rag serve` shows the
same at `/docs` (and the schema at `/openapi.json`). Every `/v1` route wants `Authorization: Bearer $RAG_API_KEY`
when that variable is set. Errors are OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`, with
400 (a bad question, dates or history), 401 (token), 404, 413 (body over 256 KB), 422 (a field of the wrong shape,
named in `param`), 503 (no index or a damaged one: the details are in the server log, never in the answer).
"""


def render(schema: dict) -> str:
    out = [INTRO]
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            out.append(f"## `{method.upper()} {path}`\n")
            text = (op.get("description") or op.get("summary") or "").strip()
            if text:
                out.append(text + "\n")
            params = op.get("parameters") or []
            if params:
                out.append("| parameter | in | type | default |\n|---|---|---|---|")
                for p in params:
                    s = p.get("schema", {})
                    kind = s.get("type") or "/".join(x.get("type", "") for x in s.get("anyOf", []))
                    out.append(f"| `{p['name']}` | {p['in']} | {kind} | {s.get('default', '')} |")
                out.append("")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                ref = body.get("$ref", "").rsplit("/", 1)[-1]
                out.append(f"Body: `{ref}` (below).\n")
    out.append("## Request bodies\n")
    for name, s in schema.get("components", {}).get("schemas", {}).items():
        if name.endswith("Error") or name in ("ValidationError", "HTTPValidationError"):
            continue
        out.append(f"### `{name}`\n")
        if s.get("description"):
            out.append(s["description"].strip() + "\n")
        out.append("```json\n" + json.dumps(s.get("properties", {}), ensure_ascii=False, indent=1) + "\n```\n")
    return "\n".join(out)


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        sys.stdout.write(render(build_api(d).openapi()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
