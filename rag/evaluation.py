"""Evaluate retrieval and cited answers on question sets: metrics, runner, reports and run-to-run comparison."""
from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import math
import os
import random
import re
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .errors import RagError
from .reader import READER_SPECS
from .text import detect_lang, fold

MAX_RANK = 20  # retrieval depth for hit@k and MRR
DEFAULT_OUT = "eval/out/run"
_WS = re.compile(r"\s+")


class EvalError(RagError):
    """A question set, index or report file cannot be used."""


# ---------------------------------------------------------------- question sets


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    set: str
    lang: str
    unanswerable: bool = False
    article_id: str | None = None
    history: tuple[tuple[str, str], ...] = ()
    where: str = ""  # "file:line", for messages


@dataclass(frozen=True)
class QuestionSet:
    path: str
    questions: tuple[Question, ...]
    errors: tuple[str, ...] = ()  # "file:line: reason" for each skipped line


def _parse_question(obj, set_name: str) -> Question:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    q = obj.get("question")
    if not isinstance(q, str) or not q.strip():
        raise ValueError("'question' must be a non-empty string")
    qid = obj.get("id")
    if not isinstance(qid, (str, int)) or isinstance(qid, bool) or str(qid) == "":
        raise ValueError("'id' must be a non-empty string or integer")
    answers = obj.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ValueError("'answers' must be a list of strings")
    answers = tuple(dict.fromkeys(a.strip() for a in answers if a.strip()))
    unanswerable = obj.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise ValueError("'unanswerable' must be true or false")
    if unanswerable and answers:
        raise ValueError("an 'unanswerable' question must have no answers")
    if not unanswerable and not answers:
        raise ValueError("'answers' is empty; mark the question \"unanswerable\": true if the corpus cannot answer it")
    article_id = obj.get("article_id")
    if article_id is not None and (not isinstance(article_id, str) or not article_id):
        raise ValueError("'article_id' must be a non-empty string or null")
    history = obj.get("history") or []
    if not isinstance(history, list) or not all(
        isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in history
    ):
        raise ValueError("'history' must be a list of [question, answer] string pairs")
    lang = obj.get("lang") or detect_lang(q)
    if not isinstance(lang, str):
        raise ValueError("'lang' must be a string")
    name = obj.get("set") or set_name
    if not isinstance(name, str):
        raise ValueError("'set' must be a string")
    return Question(id=str(qid), question=q.strip(), answers=answers, set=name, lang=lang,
                    unanswerable=unanswerable, article_id=article_id,
                    history=tuple((a, b) for a, b in history))


def load_questions(path: str | os.PathLike) -> QuestionSet:
    """Read a JSONL question set. Bad lines are skipped and reported in `errors`; an unreadable file raises."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise EvalError(f"{path}: cannot read question set: {e}") from None
    set_name = Path(path).stem
    questions: list[Question] = []
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ValueError(f"invalid JSON ({e})") from None
            q = _parse_question(obj, set_name)
            if (q.set, q.id) in seen:
                raise ValueError(f"duplicate id {q.id!r} in set {q.set!r}")
        except ValueError as e:
            errors.append(f"{path}:{n}: {e}")
            continue
        seen.add((q.set, q.id))
        questions.append(replace(q, where=f"{path}:{n}"))
    return QuestionSet(path, tuple(questions), tuple(errors))


def sample_questions(questions: Sequence[Question], limit: int | None, seed: int = 0) -> list[Question]:
    """`limit` questions drawn with a seeded RNG, kept in file order (all of them when limit is None or larger)."""
    if limit is None or limit >= len(questions):
        return list(questions)
    keep = set(random.Random(seed).sample(range(len(questions)), max(limit, 0)))
    return [q for i, q in enumerate(questions) if i in keep]


# ---------------------------------------------------------------- metrics


@functools.lru_cache(maxsize=100_000)
def normalise(text: str) -> str:
    """Matching form: NFKC, lower case, Traditional folded to Simplified, all whitespace removed."""
    return _WS.sub("", fold(text))


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """True when some (non-empty) normalised answer is a substring of the normalised text."""
    t = normalise(text)
    return any(a and a in t for a in (normalise(x) for x in answers))


def passage_hits(passages: Sequence, answers: Sequence[str], article_id: str | None = None) -> list[bool]:
    """Per ranked passage: it contains a gold answer and, when the gold article is known, comes from it."""
    return [(article_id is None or p.article_id == article_id) and contains_answer(p.text, answers) for p in passages]


def first_hit_rank(passages: Sequence, answers: Sequence[str], article_id: str | None = None,
                   depth: int = MAX_RANK) -> int | None:
    """1-based rank of the first hit among the top `depth` passages, or None."""
    if not answers:
        return None
    for i, hit in enumerate(passage_hits(passages[:depth], answers, article_id), 1):
        if hit:
            return i
    return None


def hit_at(rank: int | None, k: int) -> bool:
    return rank is not None and rank <= k


def reciprocal_rank(rank: int | None, depth: int = MAX_RANK) -> float:
    return 1.0 / rank if rank is not None and rank <= depth else 0.0


def citation_correct(citation, answers: Sequence[str], article_id: str | None = None) -> bool:
    """A citation is correct when its sentence contains a gold answer, or when it cites the gold article
    and the passage it was taken from contains a gold answer (the sentence supports an answer-bearing passage)."""
    if contains_answer(citation.sentence, answers):
        return True
    return article_id is not None and citation.article_id == article_id and contains_answer(citation.passage, answers)


@dataclass(frozen=True)
class AnswerScores:
    sentence_hit: bool  # the first cited sentence contains a gold answer
    answer_hit: bool  # some cited sentence contains a gold answer
    citation_precision: float | None  # share of correct citations; None without citations
    length: int | None  # characters of the answer text; None when the system declined


def score_answer(answer, answers: Sequence[str], article_id: str | None = None) -> AnswerScores:
    cites = tuple(answer.citations or ())
    sentence_hits = [contains_answer(c.sentence, answers) for c in cites]
    precision = (sum(citation_correct(c, answers, article_id) for c in cites) / len(cites)) if cites else None
    return AnswerScores(
        sentence_hit=bool(sentence_hits and sentence_hits[0]),
        answer_hit=any(sentence_hits),
        citation_precision=precision,
        length=None if answer.abstained else len(answer.text),
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class QuestionResult:
    set: str
    id: str
    lang: str
    question: str
    answers: tuple[str, ...]
    unanswerable: bool
    article_id: str | None
    history_turns: int
    rank: int | None  # first retrieval hit in the top MAX_RANK
    retrieved: tuple[str, ...]  # article ids of the top 5 retrieved passages
    answer: str
    abstained: bool
    citations: int
    cited_articles: tuple[str, ...]
    sentence_hit: bool | None  # None for unanswerable questions
    answer_hit: bool | None
    citation_precision: float | None
    answer_len: int | None
    ask_ms: float | None
    retrieve_ms: float | None
    error: str = ""


@dataclass(frozen=True)
class Scores:
    """Aggregates for one group of questions; a rate is None when no question in the group can have it."""

    n: int
    answerable: int
    unanswerable: int
    hit1: float | None
    hit5: float | None
    hit20: float | None
    mrr: float | None
    ans_sent_hit: float | None
    ans_hit: float | None
    cit_precision: float | None  # mean over answerable questions with at least one citation
    avg_len: float | None  # mean answer length over questions the system answered
    abstain_correct: float | None  # unanswerable questions declined
    wrong_decline: float | None  # answerable questions declined
    p50_ms: float | None  # latency of ask()
    p95_ms: float | None
    errors: int = 0
    hit_curve: tuple[float, ...] = field(default=(), repr=False)  # hit@k for k = 1..MAX_RANK


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def aggregate(results: Sequence[QuestionResult]) -> Scores:
    ans = [r for r in results if not r.unanswerable]
    una = [r for r in results if r.unanswerable]
    lat = [r.ask_ms for r in results if r.ask_ms is not None and not r.error]
    curve = tuple(_mean([float(hit_at(r.rank, k)) for r in ans]) for k in range(1, MAX_RANK + 1)) if ans else ()
    return Scores(
        n=len(results),
        answerable=len(ans),
        unanswerable=len(una),
        hit1=_mean([float(hit_at(r.rank, 1)) for r in ans]),
        hit5=_mean([float(hit_at(r.rank, 5)) for r in ans]),
        hit20=_mean([float(hit_at(r.rank, 20)) for r in ans]),
        mrr=_mean([reciprocal_rank(r.rank) for r in ans]),
        ans_sent_hit=_mean([float(bool(r.sentence_hit)) for r in ans]),
        ans_hit=_mean([float(bool(r.answer_hit)) for r in ans]),
        cit_precision=_mean([r.citation_precision for r in ans if r.citation_precision is not None]),
        avg_len=_mean([float(r.answer_len) for r in results if r.answer_len is not None]),
        abstain_correct=_mean([float(r.abstained) for r in una]),
        wrong_decline=_mean([float(r.abstained) for r in ans]),
        p50_ms=percentile(lat, 50),
        p95_ms=percentile(lat, 95),
        errors=sum(1 for r in results if r.error),
        hit_curve=curve,
    )


def group_results(results: Sequence[QuestionResult]) -> dict[str, Scores]:
    """Rows: each set, set/lang when a set mixes languages, then `all` and all/lang when there are several sets."""
    groups: dict[str, list[QuestionResult]] = {}
    for r in results:
        groups.setdefault(r.set, []).append(r)
    out: dict[str, Scores] = {}
    for name, rs in groups.items():
        out[name] = aggregate(rs)
        langs = sorted({r.lang for r in rs})
        if len(langs) > 1:
            for lang in langs:
                out[f"{name}/{lang}"] = aggregate([r for r in rs if r.lang == lang])
    if len(groups) > 1:
        out["all"] = aggregate(results)
        for lang in sorted({r.lang for r in results}):
            out[f"all/{lang}"] = aggregate([r for r in results if r.lang == lang])
    return out


# ---------------------------------------------------------------- runner


def evaluate_question(q: Question, index, k: int, ask_fn: Callable, retrieve_fn: Callable,
                      query_fn: Callable | None = None) -> QuestionResult:
    """Run retrieve (top MAX_RANK) and ask for one question; an exception is recorded, not raised.

    `query_fn(question, history) -> (retrieval query, ...)` turns a follow-up into the query `ask` retrieves with,
    so retrieval is measured on what `ask` sees; without it the bare question is retrieved."""
    history = [tuple(t) for t in q.history] or None
    base = dict(set=q.set, id=q.id, lang=q.lang, question=q.question, answers=q.answers,
                unanswerable=q.unanswerable, article_id=q.article_id, history_turns=len(q.history))
    try:
        query = query_fn(q.question, history)[0] if query_fn and history else q.question
        t0 = time.perf_counter()
        passages = list(retrieve_fn(query, index, k=MAX_RANK))
        t1 = time.perf_counter()
        answer = ask_fn(q.question, index, k=k, history=history)
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


@dataclass(frozen=True)
class EvalRun:
    out_dir: str
    meta: dict
    groups: dict[str, Scores]
    results: tuple[QuestionResult, ...]
    errors: tuple[str, ...]  # bad question-set files/lines and failed questions

    @property
    def files(self) -> dict[str, str]:
        d = Path(self.out_dir)
        return {name: str(d / name) for name in ("report.md", "report.json", "hit_at_k.png", "latency.png")}


def index_info(index: str | os.PathLike) -> dict:
    """Embedder name and sizes from the index manifest (`<index>/manifest.json` or the live generation's)."""
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
    if not Path(index).is_dir():
        raise EvalError(f"{index}: no index directory here; build one with `rag index PATH... --index {index}`")
    if k < 1 or (limit is not None and limit < 1):
        raise EvalError("--k and --limit must be at least 1")
    if ask_fn is None or retrieve_fn is None:
        from . import ask, retrieve

        if ask_fn is None and reader is not None:
            from .answer import AnswerConfig

            ask_fn = functools.partial(ask, config=AnswerConfig(reader=reader))
        ask_fn, retrieve_fn = ask_fn or ask, retrieve_fn or retrieve
        if query_fn is None:
            try:
                from .pipeline import contextualise as query_fn
            except ImportError:
                pass
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


# ---------------------------------------------------------------- report

COLUMNS = (  # (Scores field, header, kind)
    ("n", "n", "int"),
    ("hit1", "hit@1", "pct"),
    ("hit5", "hit@5", "pct"),
    ("hit20", "hit@20", "pct"),
    ("mrr", "MRR", "frac"),
    ("ans_sent_hit", "ans-sent hit", "pct"),
    ("ans_hit", "ans hit", "pct"),
    ("cit_precision", "cit. precision", "pct"),
    ("avg_len", "avg len", "num"),
    ("abstain_correct", "abstain-correct", "pct"),
    ("wrong_decline", "wrong-decline", "pct"),
    ("p50_ms", "p50 ms", "num"),
    ("p95_ms", "p95 ms", "num"),
)


def _fmt(v, kind: str) -> str:
    if v is None:
        return "–"
    if kind == "int":
        return str(v)
    if kind == "pct":
        return f"{100 * v:.1f}"
    if kind == "frac":
        return f"{v:.3f}"
    return f"{v:.1f}" if abs(v) < 100 else f"{v:.0f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], text_cols: int = 1) -> list[str]:
    """Markdown table; the first `text_cols` columns are left-aligned, the rest (figures) right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i < text_cols else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return lines


def scores_table(groups: dict[str, Scores]) -> str:
    rows = [[name] + [_fmt(getattr(s, f), kind) for f, _, kind in COLUMNS] for name, s in groups.items()]
    return "\n".join(_table(["set"] + [h for _, h, _ in COLUMNS], rows))


def render_markdown(run: EvalRun, max_misses: int = 5) -> str:
    m = run.meta
    out = [
        f"# Evaluation report: {m['label']}",
        "",
        f"- index: `{m['index']}`" + (f" ({m['articles']} articles, {m['chunks']} chunks)" if m.get("articles") else ""),
        f"- embedder: `{m['embedder'] or 'unknown'}`",
        f"- date: {m['date']}",
        f"- command: `{m['command']}`",
        f"- k (passages given to ask): {m['k']}; reader: {m.get('reader', 'default')}; "
        f"limit per set: {m['limit'] or 'none'} (seed {m['seed']}); "
        f"follow-ups retrieved with the {m.get('followup_retrieval', 'bare question')} query",
        "- sets: " + ", ".join(f"`{s['path']}` ({s['used']}/{s['questions']})" for s in m["sets"]),
        "",
        scores_table(run.groups),
        "",
        "Rates are percentages. hit@k / MRR@20: a retrieved passage (top 20 of `retrieve`) contains a gold answer "
        "and comes from the gold article. ans-sent hit: the first cited sentence of `ask` contains a gold answer; "
        "ans hit: any cited sentence does. cit. precision: share of citations whose sentence contains a gold answer "
        "or whose passage (from the gold article) does, averaged over answered questions. avg len: characters of "
        "the answers given. abstain-correct: unanswerable questions declined; wrong-decline: answerable questions "
        "declined. p50/p95: latency of `ask`. Matching is after NFKC, lower-casing, Traditional-to-Simplified "
        "folding and whitespace removal.",
        "",
        "![hit@k](hit_at_k.png) ![latency](latency.png)",
    ]
    if run.errors:
        out += ["", f"## Errors ({len(run.errors)})", ""] + [f"- {e}" for e in run.errors[:50]]
        if len(run.errors) > 50:
            out.append(f"- … {len(run.errors) - 50} more in report.json")
    misses: dict[str, list[QuestionResult]] = {}
    for r in run.results:
        if not r.unanswerable and not r.answer_hit and not r.error and len(misses.setdefault(r.set, [])) < max_misses:
            misses[r.set].append(r)
    if any(misses.values()):
        out += ["", "## Sample misses (answerable, no cited sentence holds the answer)", ""]
        rows = [[r.set, r.id, r.question, " / ".join(r.answers), r.rank or "–",
                 "(declined)" if r.abstained else r.answer[:120]] for rs in misses.values() for r in rs]
        out += _table(["set", "id", "question", "gold", "rank", "answer"], rows, text_cols=6)
    return "\n".join(out) + "\n"


def _plots(run: EvalRun) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib)", file=sys.stderr)
        return
    d = Path(run.out_dir)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ks = list(range(1, MAX_RANK + 1))
    for name, s in run.groups.items():
        if "/" not in name and s.hit_curve:
            style = dict(color="black", linestyle="--") if name == "all" else {}
            ax.plot(ks, [100 * v for v in s.hit_curve], marker="o", markersize=3, label=f"{name} (n={s.answerable})",
                    **style)
    ax.set(xlabel="k (passages retrieved)", ylabel="hit@k (%)", title="Retrieval hit@k", xlim=(1, MAX_RANK), ylim=(0, 100))
    ax.set_xticks([1, 5, 10, 15, 20])
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(d / "hit_at_k.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    lat = [r.ask_ms for r in run.results if r.ask_ms is not None]
    if lat:
        ax.hist(lat, bins=min(50, max(5, len(lat) // 4)), color="#4477aa")
        for q, style in ((50, "--"), (95, ":")):
            v = percentile(lat, q)
            ax.axvline(v, color="#cc3311", linestyle=style, label=f"p{q} {v:.0f} ms")
        ax.legend(fontsize=8)
    ax.set(xlabel="ask() latency (ms)", ylabel="questions", title=f"Latency (n={len(lat)})")
    fig.tight_layout()
    fig.savefig(d / "latency.png", dpi=110)
    plt.close(fig)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(run: EvalRun) -> dict[str, str]:
    """Write report.md, report.json (figures and per-question records) and the PNG plots into run.out_dir."""
    d = Path(run.out_dir)
    d.mkdir(parents=True, exist_ok=True)
    doc = {
        "meta": run.meta,
        "groups": {name: asdict(s) for name, s in run.groups.items()},
        "records": [asdict(r) for r in run.results],
    }
    _atomic_write(d / "report.json", json.dumps(doc, ensure_ascii=False, indent=1))
    _atomic_write(d / "report.md", render_markdown(run))
    _plots(run)
    return run.files


# ---------------------------------------------------------------- compare


def _load_report(path: str | os.PathLike) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EvalError(f"{path}: cannot read report: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), dict) or not isinstance(doc.get("meta"), dict):
        raise EvalError(f"{path}: not an evaluation report.json (needs 'meta' and 'groups')")
    return doc


def _delta(a, b, kind: str) -> str:
    if a is None or b is None:
        return "" if a is None and b is None else "–"
    d = b - a
    if kind == "int":
        return f"{d:+d}"
    if kind == "pct":
        s = f"{100 * d:+.1f}"
    elif kind == "frac":
        s = f"{d:+.3f}"
    else:
        s = f"{d:+.1f}" if abs(d) < 100 else f"{d:+.0f}"
    return "+" + s[1:] if float(s) == 0 else s  # no "-0.0"


def compare(report_a: str | os.PathLike, report_b: str | os.PathLike) -> str:
    """Markdown: for every group, each metric of run A and run B side by side with B - A."""
    a, b = _load_report(report_a), _load_report(report_b)
    out = ["# Evaluation comparison", ""]
    for tag, path, doc in (("A", report_a, a), ("B", report_b, b)):
        m = doc["meta"]
        out.append(f"- **{tag}**: {m.get('label', '')} — `{path}`; index `{m.get('index', '')}`, "
                   f"embedder `{m.get('embedder') or 'unknown'}`, k={m.get('k')}, {m.get('date', '')}")
    out += ["", "Rates in percent; Δ = B − A (percentage points for rates; lower is better for wrong-decline and ms)."]
    names = list(a["groups"]) + [n for n in b["groups"] if n not in a["groups"]]
    head = ["metric", "A", "B", "Δ"]
    summary = []
    for name in names:
        ga, gb = a["groups"].get(name) or {}, b["groups"].get(name) or {}
        summary.append([name] + [f"{_fmt(ga.get(f), kind)} → {_fmt(gb.get(f), kind)} ({_delta(ga.get(f), gb.get(f), kind) or '='})"
                                 for f, _, kind in COLUMNS if f in ("n", "hit5", "mrr", "ans_hit", "cit_precision", "p50_ms")])
    out += ["", "## Summary (A → B (Δ))", ""]
    out += _table(["set", "n", "hit@5", "MRR", "ans hit", "cit. precision", "p50 ms"], summary)
    for name in names:
        ga, gb = a["groups"].get(name) or {}, b["groups"].get(name) or {}
        out += ["", f"## {name}", ""]
        out += _table(head, [[h, _fmt(ga.get(f), kind), _fmt(gb.get(f), kind), _delta(ga.get(f), gb.get(f), kind)]
                             for f, h, kind in COLUMNS])
    ra = {(r["set"], r["id"]): r for r in a.get("records", [])}
    rb = {(r["set"], r["id"]): r for r in b.get("records", [])}
    common = [key for key in ra if key in rb]
    if common:
        def flips(test):
            gained = sum(1 for key in common if not test(ra[key]) and test(rb[key]))
            lost = sum(1 for key in common if test(ra[key]) and not test(rb[key]))
            return gained, lost

        rows = []
        for label, test in (
            ("hit@5", lambda r: not r["unanswerable"] and r["rank"] is not None and r["rank"] <= 5),
            ("ans hit", lambda r: bool(r.get("answer_hit"))),
            ("correct decline", lambda r: r["unanswerable"] and r["abstained"]),
            ("wrong decline", lambda r: not r["unanswerable"] and r["abstained"]),
        ):
            g, lo = flips(test)
            rows.append([label, g, lo])
        out += ["", f"## Questions that changed ({len(common)} in both runs)", ""]
        out += _table(["outcome", "A no → B yes", "A yes → B no"], rows)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sets", nargs="*", metavar="SET.jsonl", help="question sets (JSONL)")
    parser.add_argument("--index", help="index directory to evaluate")
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
        _atomic_write(out / "compare.md", md)
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
