"""The `rag` command: index, ask, eval, serve, status, repair, remove."""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys

from .answer import AnswerConfig
from .errors import NoSpaceError, NothingToIndexError, RagError
from .evaluation import add_arguments as add_eval_arguments, main as eval_main
from .index import (
    CHECKPOINT,
    compact_index,
    index_paths,
    printable,
    remove_articles,
    repair_index,
)
from .ingest import CHUNK_OVERLAP, CHUNK_SIZE
from .lang.when import as_date
from .models import DEFAULT_READER, READER_SPECS, registry
from .pipeline import ask, check_dates, check_history
from .store import default_store, open_store, parse_spec
from .store.indexing import index_paths_into, remove_from_store
from .ui import UPLOAD_MODES, serve


def _add_index_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", "--store", dest="index", default=None, metavar="STORE",
                   help="index directory, or a Milvus store: milvus:PATH.db (milvus-lite) or http://HOST:PORT "
                        "(default: $RAG_STORE, else $RAG_INDEX, else ./.rag-index)")


def _index_dir(args) -> str:
    """The store the command works on: an index folder (checked to be one), or a Milvus store spec."""
    path = args.index or default_store()
    if parse_spec(path).milvus:
        return path
    if os.path.lexists(path) and not os.path.isdir(path):
        where = f"--index {path}" if args.index else f"{path} ($RAG_INDEX or the default index folder)"
        raise RagError(f"{printable(where)} is a file, not an index folder")
    return path


def _number(cast, ok, what: str):
    """An argparse type: `text` read by `cast` and accepted by `ok`, else an error saying what it must be."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
        return value
    return parse


_megabytes = _number(float, lambda v: math.isfinite(v) and v > 0, "a positive number of megabytes")
_seconds = _number(float, lambda v: v >= 0, "a number of seconds >= 0")  # NaN fails v >= 0
_count = _number(int, lambda v: v >= 0, "a whole number >= 0")
_positive = _number(int, lambda v: v >= 1, "a whole number >= 1")
_RAY_ADDRESS = re.compile(r"auto|ray://\S+|\S+:\d+")


def _fanout(args):
    """`--ray [ADDRESS]` and `--ray-workers N`: Ray workers embed (rag.index.fanout), or None. `rag index --ray DIR`
    reads DIR as a path to index, not as an address."""
    if args.ray is None:
        if args.ray_workers is not None:
            raise ValueError("--ray-workers needs --ray (a local Ray cluster) or --ray ADDRESS")
        return None
    from .index.fanout import RayFanout

    address = args.ray
    if address != "local" and not _RAY_ADDRESS.fullmatch(address):
        if not os.path.exists(address):
            raise ValueError(f"--ray {printable(address)}: neither a Ray cluster address (auto, HOST:PORT, "
                             "ray://HOST:PORT) nor a file or folder to index")
        args.paths.append(address)
        address = "local"
    return RayFanout(None if address == "local" else address, args.ray_workers)


def _quiet_failure(e: RagError) -> int:
    """A full disk, or nothing to index: one line, exit 1 (the index is as it was)."""
    print(f"error: {e}", file=sys.stderr)
    return 1


def cmd_index(args) -> int:
    index_dir = _index_dir(args)
    fanout = _fanout(args)
    missing = [p for p in args.paths if not os.path.exists(p)]
    for p in missing:
        print(f"error: {printable(p)}: no such file or directory", file=sys.stderr)
    paths = [p for p in args.paths if os.path.exists(p)]
    if not paths and not args.prune:
        return 2
    kw = {}
    if args.allow_download:
        kw["allow_download"] = True
    embedder = args.embedder
    if embedder.startswith("st:") and (args.query_prompt is not None or args.passage_prompt is not None or kw):
        embedder = registry.get_embedder(embedder, query_prompt=args.query_prompt, passage_prompt=args.passage_prompt, **kw)
    try:
        indexer = index_paths_into if parse_spec(index_dir).milvus else index_paths
        summary = indexer(paths, index_dir, embedder, prune=args.prune, rebuild=args.rebuild,
                              progress=not args.quiet, max_bytes=int(args.max_mb * 1_000_000),
                              chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap, wait=args.wait,
                              second={None: "default", "none": None}.get(args.second, args.second),
                              checkpoint=args.checkpoint, fanout=fanout)
    except (NoSpaceError, NothingToIndexError) as e:
        return _quiet_failure(e)
    # --json: one object on one line, ASCII (file names may hold anything), for a program to read
    print(json.dumps(summary.to_dict()) if args.json else summary.render())
    return 1 if missing else 0


def _report(action, args) -> int:
    """An index maintenance command: its one-line report, or a full disk as one line (exit 1)."""
    where = _index_dir(args)
    if parse_spec(where).milvus:
        raise RagError(f"{printable(where)}: `rag {args.command}` works on an index folder; a Milvus store merges its "
                       "own segments, and the next `rag index` into it undoes a write that was cut short")
    try:
        print(action(where, wait=args.wait))
    except NoSpaceError as e:
        return _quiet_failure(e)
    return 0


def cmd_compact(args) -> int:
    return _report(compact_index, args)


def cmd_repair(args) -> int:
    return _report(repair_index, args)


def cmd_remove(args) -> int:
    root = _index_dir(args)
    before = open_store(root, eager=False)  # the removed articles' titles, read from the version they are removed from
    try:
        remove = remove_from_store if parse_spec(root).milvus else remove_articles
        removed, unknown = remove(root, args.items, wait=args.wait)
        for aid in removed:
            a = before.article(aid)
            print(f"removed {aid} {printable(a.title) if a else ''}".rstrip())
    except NoSpaceError as e:
        return _quiet_failure(e)
    finally:
        before.close()
    for item in unknown:
        print(f"error: {printable(item)}: no article has this id and no indexed file has this path", file=sys.stderr)
    if removed:
        idx = open_store(root)
        print(f"index holds {idx.manifest.articles} articles ({idx.generation})")
        idx.close()
    return 1 if unknown else 0


def _load_history(path: str) -> list[tuple[str, str]]:
    """The turns in `--history FILE`; a ValueError names the option, the file and what is wrong with it."""
    where = f"--history {path}"
    shape = "it must hold a JSON list of [question, answer] pairs of strings ([] for none)"
    try:
        with open(path, encoding="utf-8") as f:
            turns = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{where}: no such file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{where}: not UTF-8 text; {shape}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not JSON (line {e.lineno} column {e.colno}: {e.msg}); {shape}") from None
    except OSError as e:
        raise ValueError(f"{where}: cannot be read ({e.strerror or e})") from None
    if not isinstance(turns, list):
        raise ValueError(f"{where}: {shape}, got {json.dumps(turns, ensure_ascii=False)[:60]}")
    try:
        return check_history(turns)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}; {shape}") from None


def cmd_ask(args) -> int:
    check_dates(args.date_from, args.date_to, names=("--from", "--to"))
    try:
        now = as_date(args.now)
    except ValueError:
        raise ValueError(f"--now must be YYYY-MM-DD, got {args.now!r}") from None
    history = _load_history(args.history) if args.history is not None else None
    answer = ask(args.question, _index_dir(args), k=args.k, history=history, date_from=args.date_from,
                 date_to=args.date_to, source=args.source, config=AnswerConfig(reader=args.reader), now=now)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(answer.text)
    if answer.citations:
        print()
        for c in answer.citations:
            date = c.published[:10] + (", date from text" if c.date_from_text else "") if c.published else "n.d."
            print(f"[{c.number}] {c.title} ({date}) {c.url}".rstrip())
            print(f"    {c.sentence}")
            for a in c.also:  # near-duplicate copies of the story that carry the sentence too
                print(f"    also: {a.title} ({a.published[:10] or 'n.d.'}) {a.url}".rstrip())
    return 0


def cmd_eval(args) -> int:
    return eval_main(args)


def cmd_serve(args) -> int:
    where = _index_dir(args)
    if parse_spec(where).milvus:
        return _serve_api(where, args)
    return serve(index=where, host=args.host, port=args.port, uploads=args.uploads,
                 api_only=args.api_only)


def _serve_api(spec: str, args) -> int:
    """`rag serve --store MILVUS`: the HTTP API over the store (the chat UI and its uploads read an index folder)."""
    import uvicorn

    from .api import build_api
    from .ui import resolve_address

    host, port = resolve_address(args.host, args.port)
    if not args.api_only:
        print("note: over a Milvus store `rag serve` serves the HTTP API alone (/v1, /docs); the chat UI and "
              "its uploads work on an index folder", file=sys.stderr)
    open_store(spec).close()  # a store that cannot be read is said now, not at the first question
    print(f"serving on http://{host}:{port} (API: /v1, OpenAPI: /docs)", file=sys.stderr)
    try:
        uvicorn.run(build_api(spec), host=host, port=port, log_level="warning")
    except KeyboardInterrupt:
        pass
    return 0


def cmd_status(args) -> int:
    idx = open_store(_index_dir(args), eager=False)  # records and counts only: no FAISS or postings loaded
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
                   help="'use' (default, bundled), 'e5' (bundled multilingual-e5-small, ~4x slower) or 'st:<local path or hub id>'")
    p.add_argument("--query-prompt", default=None, help="sentence-transformers query prompt (e.g. 'query: ')")
    p.add_argument("--passage-prompt", default=None, help="sentence-transformers passage prompt (e.g. 'passage: ')")
    p.add_argument("--allow-download", action="store_true", help="let sentence-transformers fetch a model from its hub")
    p.add_argument("--second", default=None, choices=("e5", "none"),
                   help="a new index's second dense retriever: multilingual-e5-small passage vectors (default e5: "
                        "better answers, ~1.6x the indexing time) or none")
    p.add_argument("--prune", action="store_true", help="drop articles whose files are gone")
    p.add_argument("--rebuild", action="store_true", help="start a new index from these paths (replaces the old one)")
    p.add_argument("--max-mb", type=_megabytes, default=5.0, help="skip articles larger than this: a file, or a line of a .jsonl file (default 5 MB)")
    p.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help=f"characters (default {CHUNK_SIZE})")
    p.add_argument("--chunk-overlap", type=int, default=CHUNK_OVERLAP)
    p.add_argument("--wait", type=_seconds, default=0.0, help="seconds to wait for another writer (default: fail at once)")
    p.add_argument("--checkpoint", type=_count, default=CHECKPOINT, metavar="CHUNKS",
                   help=f"publish what is done every CHUNKS chunks, so that a stopped run keeps it and the same "
                        f"command goes on from there (default {CHECKPOINT}; 0: only at the end)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="embed in Ray workers, each loading the models once (pip install 'rag-news[ray]'): alone, on a "
                        "local Ray cluster of this machine's CPUs; with ADDRESS (auto, HOST:PORT, ray://HOST:PORT), "
                        "on a running cluster (`ray start --head`). This process still parses and writes")
    p.add_argument("--ray-workers", type=_positive, default=None, metavar="N",
                   help="Ray workers, one CPU each (default: every CPU of the cluster)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="ask a question",
                       epilog='a question starting with "-" that could be an option goes last, after "--": '
                              'rag ask --json -- "-k是什么意思？"')
    # optional here only so that main() can take back a question argparse read as an option ("-5度的天气")
    p.add_argument("question", nargs="?", help="the question")
    _add_index_arg(p)
    p.add_argument("-k", "--k", type=int, default=5, help="passages to read (default 5)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--history", default=None, metavar="FILE", help="JSON file with earlier [question, answer] turns")
    p.add_argument("--from", dest="date_from", default=None, metavar="DATE",
                   help="only articles published on/after (YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", default=None, metavar="DATE",
                   help="only articles published on/before (YYYY-MM-DD)")
    p.add_argument("--source", default=None, help="only articles from this source")
    p.add_argument("--now", default=None, metavar="DATE",
                   help="the day the question's 昨天/last week/最新 are read against (YYYY-MM-DD; default today)")
    p.add_argument("--reader", default=DEFAULT_READER, choices=READER_SPECS,
                   help="re-read the best sentences with multilingual-e5-small (default e5; 'none' is faster)")
    p.set_defaults(func=cmd_ask, ask_parser=p)

    p = sub.add_parser("eval", help="evaluate on question sets (JSONL)")
    add_eval_arguments(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", help="start the chat UI and the HTTP API (OpenAI-compatible /v1, OpenAPI at /docs)")
    _add_index_arg(p)
    p.add_argument("--host", default=None, help="default: $GRADIO_SERVER_NAME or 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT or 7860")
    p.add_argument("--uploads", default=None, choices=UPLOAD_MODES,
                   help="'shared': an upload panel whose articles join the index every user searches (and can "
                        "remove); 'off': none. Default: $RAG_UPLOADS, else shared on 127.0.0.1/localhost, off on "
                        "any other address")
    p.add_argument("--api-only", action="store_true", help="the HTTP API without the UI")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("status", help="show what the index holds")
    _add_index_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("compact", help="merge the index's segments into one, dropping deleted articles' rows")
    _add_index_arg(p)
    p.add_argument("--wait", type=_seconds, default=0.0, help="seconds to wait for another writer (default: fail at once)")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("repair", help="point CURRENT at the newest complete generation (when it is lost or damaged)")
    _add_index_arg(p)
    p.add_argument("--wait", type=_seconds, default=0.0, help="seconds to wait for another writer (default: fail at once)")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("remove", help="remove articles by id, or every article indexed from a file")
    p.add_argument("items", nargs="+", metavar="ID_OR_PATH",
                   help="an article id (see `rag ask --json`), or a file path as given to `rag index`")
    _add_index_arg(p)
    p.add_argument("--wait", type=_seconds, default=0.0, help="seconds to wait for another writer (default: fail at once)")
    p.set_defaults(func=cmd_remove)
    return parser


# A question that starts with "-" and a digit or a non-ASCII character ("-5度的天气"): no option looks like that.
_DASH_QUESTION = re.compile(r"-(\d|[^\x00-\x7f])")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "ask" and args.question is None:
        dashed = [x for x in extra if _DASH_QUESTION.match(x)]
        if len(dashed) != 1:
            args.ask_parser.error('the following arguments are required: question (one starting with "-" goes '
                                  'last, after "--")')
        args.question = dashed[0]
        extra.remove(dashed[0])
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader that went away shows here, not as a warning at interpreter exit
        return code
    except BrokenPipeError:
        # `rag ... | head -1`: the reader has what it wanted. Exit quietly with 141 (128 + SIGPIPE), the status
        # git, cat or grep show when killed by the pipe, so `set -o pipefail` scripts still see the cut. Python's
        # own recipe: point stdout at devnull so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is no real file (in-process callers, tests)
            pass
        finally:
            os.close(devnull)
        return 141
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
