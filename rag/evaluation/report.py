"""Reports of a run (Markdown, JSON, plots) and the comparison of two runs."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Sequence

from .metrics import MAX_RANK, EvalRun, QuestionResult, Scores, percentile
from .questions import EvalError

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


def atomic_write(path: Path, text: str) -> None:
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
    atomic_write(d / "report.json", json.dumps(doc, ensure_ascii=False, indent=1))
    atomic_write(d / "report.md", render_markdown(run))
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
