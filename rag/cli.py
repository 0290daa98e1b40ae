"""The `rag` command: index, ask, eval, serve."""
from __future__ import annotations

import argparse
import json
import os
import sys

from .answer import AnswerConfig
from .errors import RagError
from .evaluation import add_arguments as add_eval_arguments, main as eval_main
from .index import Index, default_index_dir, index_paths
from .ingest import CHUNK_OVERLAP, CHUNK_SIZE
from .models import DEFAULT_READER, READER_SPECS, registry
from .pipeline import ask
from .ui import serve


def _add_index_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", default=None, metavar="DIR",
                   help="index directory (default: $RAG_INDEX, else ./.rag-index)")


def _index_dir(args) -> str:
    return args.index or default_index_dir()


def cmd_index(args) -> int:
    missing = [p for p in args.paths if not os.path.exists(p)]
    for p in missing:
        print(f"error: {p}: no such file or directory", file=sys.stderr)
    paths = [p for p in args.paths if os.path.exists(p)]
    if not paths and not args.prune:
        return 2
    kw = {}
    if args.allow_download:
        kw["allow_download"] = True
    embedder = args.embedder
    if embedder.startswith("st:") and (args.query_prompt is not None or args.passage_prompt is not None or kw):
        embedder = registry.get_embedder(embedder, query_prompt=args.query_prompt, passage_prompt=args.passage_prompt, **kw)
    summary = index_paths(paths, _index_dir(args), embedder, prune=args.prune, rebuild=args.rebuild,
                          progress=not args.quiet, max_bytes=int(args.max_mb * 1_000_000),
                          chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap, wait=args.wait,
                          second={None: "default", "none": None}.get(args.second, args.second))
    print(summary.render())
    return 1 if missing else 0


def cmd_ask(args) -> int:
    history = None
    if args.history:
        with open(args.history, encoding="utf-8") as f:
            history = [tuple(t) for t in json.load(f)]
    answer = ask(args.question, _index_dir(args), k=args.k, history=history, date_from=args.date_from,
                 date_to=args.date_to, source=args.source, config=AnswerConfig(reader=args.reader))
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(answer.text)
    if answer.citations:
        print()
        for c in answer.citations:
            date = c.published[:10] if c.published else "n.d."
            print(f"[{c.number}] {c.title} ({date}) {c.url}".rstrip())
            print(f"    {c.sentence}")
    return 0


def cmd_eval(args) -> int:
    return eval_main(args)


def cmd_serve(args) -> int:
    return serve(index=_index_dir(args), host=args.host, port=args.port)


def cmd_status(args) -> int:
    idx = Index.open(_index_dir(args))
    print(json.dumps(idx.stats(), indent=2, ensure_ascii=False))
    idx.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions about news articles; get cited answers.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="add article files or folders to the index")
    p.add_argument("paths", nargs="*", help="files or folders (.txt .md .html .jsonl), walked recursively")
    _add_index_arg(p)
    p.add_argument("--embedder", default="use",
                   help="'use' (default, bundled), 'e5' (bundled multilingual-e5-small, ~10x slower) or 'st:<local path or hub id>'")
    p.add_argument("--query-prompt", default=None, help="sentence-transformers query prompt (e.g. 'query: ')")
    p.add_argument("--passage-prompt", default=None, help="sentence-transformers passage prompt (e.g. 'passage: ')")
    p.add_argument("--allow-download", action="store_true", help="let sentence-transformers fetch a model from its hub")
    p.add_argument("--second", default=None, choices=("e5", "none"),
                   help="a new index's second dense retriever: multilingual-e5-small passage vectors (default e5: "
                        "better answers, ~10x slower indexing) or none")
    p.add_argument("--prune", action="store_true", help="drop articles whose files are gone")
    p.add_argument("--rebuild", action="store_true", help="start a new index from these paths (replaces the old one)")
    p.add_argument("--max-mb", type=float, default=5.0, help="skip files larger than this (default 5 MB)")
    p.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help=f"characters (default {CHUNK_SIZE})")
    p.add_argument("--chunk-overlap", type=int, default=CHUNK_OVERLAP)
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for another writer (default: fail at once)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="ask a question")
    p.add_argument("question")
    _add_index_arg(p)
    p.add_argument("-k", "--k", type=int, default=5, help="passages to read (default 5)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--history", default=None, help="JSON file with earlier [question, answer] turns")
    p.add_argument("--from", dest="date_from", default=None, help="only articles published on/after (YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", default=None, help="only articles published on/before (YYYY-MM-DD)")
    p.add_argument("--source", default=None, help="only articles from this source")
    p.add_argument("--reader", default=DEFAULT_READER, choices=READER_SPECS,
                   help="re-read the best sentences with multilingual-e5-small (default e5; 'none' is faster)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="evaluate on question sets (JSONL)")
    add_eval_arguments(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", help="start the chat UI")
    _add_index_arg(p)
    p.add_argument("--host", default=None, help="default: $GRADIO_SERVER_NAME or 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT or 7860")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("status", help="show what the index holds")
    _add_index_arg(p)
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
