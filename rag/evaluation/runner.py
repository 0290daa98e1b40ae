"""Run question sets against an index: each question retrieved and asked, timed and scored; the command line."""
from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from ..answer import AnswerConfig
from ..errors import RagError
from ..models import READER_SPECS
from ..pipeline import ask, contextualise, retrieve
from ..store import open_store, parse_spec
from .metrics import (
    MAX_RANK,
    EvalRun,
    QuestionResult,
    first_hit_rank,
    group_results,
    score_answer,
)
from .questions import EvalError, Question, load_questions, sample_questions
from .report import atomic_write, compare, scores_table, write_report

DEFAULT_OUT = "eval/out/run"

def evaluate_question(q: Question, index, k: int, ask_fn: Callable, retrieve_fn: Callable,
                      query_fn: Callable | None = None) -> QuestionResult:
    """Run retrieve (top MAX_RANK) and ask for one question; an exception is recorded, not raised.

    `query_fn(question, history) -> (retrieval query, ...)` turns a follow-up into the query `ask` retrieves with,
    so retrieval is measured on what `ask` sees; without it the bare question is retrieved."""
    history = [tuple(t) for t in q.history] or None
    base = dict(set=q.set, id=q.id, lang=q.lang, question=q.question, answers=q.answers,
                unanswerable=q.unanswerable, article_id=q.article_id, history_turns=len(q.history))
    when = {"now": q.now} if q.now else {}  # a question's own "now" ("昨天" in its set is that day's yesterday)
    try:
        query = query_fn(q.question, history)[0] if query_fn and history else q.question
        t0 = time.perf_counter()
        passages = list(retrieve_fn(query, index, k=MAX_RANK, **when))
        t1 = time.perf_counter()
        answer = ask_fn(q.question, index, k=k, history=history, **when)
        t2 = time.perf_counter()
    except Exception as e:  # noqa: BLE001 - one failing question must not end a long run
        return QuestionResult(**base, rank=None, retrieved=(), answer="", abstained=False, citations=0,
                              cited_articles=(), sentence_hit=None if q.unanswerable else False,
                              answer_hit=None if q.unanswerable else False, citation_precision=None,
                              answer_len=None, ask_ms=None, retrieve_ms=None, error=f"{type(e).__name__}: {e}")
    s = score_answer(answer, q.answers, q.article_id)
    return QuestionResult(
        **base,
        rank=first_hit_rank(passages, q.answers, q.article_id),
        retrieved=tuple(p.article_id for p in passages[:5]),
        answer=answer.text,
        abstained=bool(answer.abstained),
        citations=len(answer.citations),
        cited_articles=tuple(dict.fromkeys(c.article_id for c in answer.citations)),
        sentence_hit=None if q.unanswerable else s.sentence_hit,
        answer_hit=None if q.unanswerable else s.answer_hit,
        citation_precision=None if q.unanswerable else s.citation_precision,
        answer_len=s.length,
        ask_ms=(t2 - t1) * 1000,
        retrieve_ms=(t1 - t0) * 1000,
    )


def index_info(index: str | os.PathLike) -> dict:
    """Embedder name and sizes from the index manifest (`<index>/manifest.json` or the live generation's), or from
    a Milvus store's published version."""
    if parse_spec(index).milvus:
        st = open_store(index).stats()
        return {"embedder": st["embedder"], "articles": st["articles"], "chunks": st["chunks"]}
    root = Path(index)
    candidates = [root / "manifest.json"]
    try:
        candidates.append(root / (root / "CURRENT").read_text(encoding="utf-8").strip() / "manifest.json")
    except OSError:
        pass
    for path in candidates:
        try:
            m = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(m, dict):
            emb = m.get("embedder")
            if isinstance(emb, dict):
                emb = emb.get("name")
            return {"embedder": str(emb) if emb else "", "articles": m.get("articles"), "chunks": m.get("chunks")}
    return {"embedder": "", "articles": None, "chunks": None}


def _command_line() -> str:
    prog = sys.argv[0] if sys.argv[0].endswith(".py") else Path(sys.argv[0]).name
    return shlex.join([prog, *sys.argv[1:]])


def run_eval(
    set_paths: Sequence[str | os.PathLike],
    index: str | os.PathLike,
    k: int = 5,
    limit: int | None = None,
    out_dir: str | os.PathLike = DEFAULT_OUT,
    label: str | None = None,
    seed: int = 0,
    *,
    progress: bool = True,
    command: str | None = None,
    ask_fn: Callable | None = None,
    retrieve_fn: Callable | None = None,
    query_fn: Callable | None = None,
    reader: str | None = None,
) -> EvalRun:
    """Evaluate every question of the sets against the index and write report.md, report.json and plots to out_dir.

    Unreadable files and bad lines are reported in `EvalRun.errors` and skipped; an index that cannot be opened
    raises (EvalError or the RagError from the core). `ask_fn`/`retrieve_fn` replace rag.ask/rag.retrieve (tests);
    `query_fn` (default: rag.pipeline.contextualise with the real core) builds follow-ups' retrieval query;
    `reader` ("e5"/"none") sets the real core's AnswerConfig.reader (default: AnswerConfig's).
    """
    if not parse_spec(index).milvus and not Path(index).is_dir():
        raise EvalError(f"{index}: no index directory here; build one with `rag index PATH... --index {index}`")
    if k < 1 or (limit is not None and limit < 1):
        raise EvalError("--k and --limit must be at least 1")
    if ask_fn is None or retrieve_fn is None:
        if ask_fn is None and reader is not None:
            ask_fn = functools.partial(ask, config=AnswerConfig(reader=reader))
        ask_fn, retrieve_fn = ask_fn or ask, retrieve_fn or retrieve
        query_fn = query_fn or contextualise
    errors: list[str] = []
    questions: list[Question] = []
    loaded: list[dict] = []
    for p in set_paths:
        try:
            qs = load_questions(p)
        except EvalError as e:
            errors.append(str(e))
            continue
        errors.extend(qs.errors)
        chosen = sample_questions(qs.questions, limit, seed)
        questions.extend(chosen)
        loaded.append({"path": str(p), "questions": len(qs.questions), "used": len(chosen), "bad_lines": len(qs.errors)})
    if not questions:
        raise EvalError("no usable questions in " + ", ".join(map(str, set_paths)) + "".join("\n  " + e for e in errors))

    # Opening the index and loading the embedder happen on the first call: keep that out of the latencies.
    retrieve_fn(questions[0].question, index, k=1)

    from tqdm import tqdm

    results: list[QuestionResult] = []
    bar = tqdm(questions, desc="eval", unit="q", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for q in bar:
            bar.set_postfix_str(q.set, refresh=False)
            r = evaluate_question(q, index, k, ask_fn, retrieve_fn, query_fn)
            if r.error:
                errors.append(f"{q.where}: question {q.id!r} failed: {r.error}")
            results.append(r)
    except KeyboardInterrupt:  # keep what a long run has measured so far
        errors.append(f"interrupted after {len(results)} of {len(questions)} questions")
        if not results:
            raise
    finally:
        bar.close()

    meta = {
        "label": label or Path(out_dir).name,
        "index": str(index),
        **index_info(index),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command if command is not None else _command_line(),
        "k": k,
        "reader": reader or "default",
        "limit": limit,
        "seed": seed,
        "followup_retrieval": "contextualised" if query_fn else "bare question",
        "sets": loaded,
        "errors": errors,
    }
    run = EvalRun(str(out_dir), meta, group_results(results), tuple(results), tuple(errors))
    write_report(run)
    return run






# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sets", nargs="*", metavar="SET.jsonl", help="question sets (JSONL), or ChronoQA's CSV (each question asked on its question_date)")
    parser.add_argument("--index", "--store", dest="index",
                        help="index directory (or Milvus store: milvus:PATH.db, http://HOST:PORT) to evaluate")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"report directory (default {DEFAULT_OUT})")
    parser.add_argument("--k", type=int, default=5, help="passages given to ask (default 5)")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate N questions per set (seeded sample)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --limit sampling (default 0)")
    parser.add_argument("--label", help="name of this run in the report (default: the --out folder name)")
    parser.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                        help="compare two report.json files into OUT/compare.md instead of running")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--reader", choices=READER_SPECS, default=None,
                        help="second reading of the best sentences (default: e5, as `rag ask`)")


def main(args: argparse.Namespace) -> int:
    """Run the evaluation (or --compare); 0 on success, 1 if some file, line or question failed, 2 if nothing ran."""
    out = Path(args.out)
    if args.compare:
        try:
            md = compare(*args.compare)
        except EvalError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "compare.md", md)
        print(md)
        print(f"written: {out / 'compare.md'}", file=sys.stderr)
        return 0
    if not args.sets:
        print("error: give one or more question sets (SET.jsonl) or --compare A.json B.json", file=sys.stderr)
        return 2
    if not args.index:
        print("error: --index DIR is required", file=sys.stderr)
        return 2
    try:
        run = run_eval(args.sets, args.index, k=args.k, limit=args.limit, out_dir=out, label=args.label,
                       seed=args.seed, progress=not getattr(args, "no_progress", False),
                       reader=getattr(args, "reader", None))
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(scores_table(run.groups))
    for e in run.errors:
        print(f"error: {e}", file=sys.stderr)
    print("written: " + ", ".join(p for p in run.files.values() if Path(p).exists()), file=sys.stderr)
    return 1 if run.errors else 0
