"""A real archive end to end: CRUD-RAG news indexed with the default pipeline as a user would, then daily batches.

    python -m eval.bench.archive --bulk 11000 --days 30 --per 300      # ~50 min on 2 cores; rerun to resume

Writes under --work: bulk.jsonl (CRUD-RAG's slice, so the crud sets' gold articles are in, then the corpus in
order), day-NN.jsonl, the index, log.jsonl (one line per `rag index` run: seconds, peak RSS, its summary) and
archive.json (articles, chunks, time, chunks/s, disk, peak RSS, per-day seconds, ask() p50/p95 from `eval.run`).
A run that was stopped is resumed: `rag index` skips what is in and each finished step is kept in log.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CRUD = ROOT / "eval" / "out" / "crud"


def write_inputs(work: Path, bulk: int, days: int, per: int) -> list[Path]:
    """bulk.jsonl and day-NN.jsonl (written once; the same files on a rerun)."""
    files = [work / "bulk.jsonl"] + [work / f"day-{d:02d}.jsonl" for d in range(days)]
    if all(f.exists() for f in files):
        return files
    slice_lines = (CRUD / "slice-2000.jsonl").read_text(encoding="utf-8").splitlines()
    seen = {json.loads(line)["url"] for line in slice_lines}
    lines = list(slice_lines[:bulk])

    def rest():
        for part in sorted((CRUD / "corpus").glob("*.jsonl")):
            with open(part, encoding="utf-8") as f:
                for line in f:
                    if json.loads(line)["url"] not in seen:
                        yield line.rstrip("\n")
    more = rest()
    lines += [next(more) for _ in range(bulk - len(lines))]
    groups = [lines] + [[next(more) for _ in range(per)] for _ in range(days)]
    for f, group in zip(files, groups):
        tmp = f.with_suffix(".tmp")
        tmp.write_text("\n".join(group) + "\n", encoding="utf-8")
        os.replace(tmp, f)
    return files


def timed(cmd: list[str]) -> dict:
    """Run a command; wall seconds, peak RSS (MB) and exit status from wait4."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": round(time.perf_counter() - t, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "status": proc.returncode, "stdout": out}


def disk_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench.archive", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(ROOT / "eval" / "out" / "archive"))
    ap.add_argument("--bulk", type=int, default=11_000, help="articles of the first run")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--per", type=int, default=300, help="articles a day")
    ap.add_argument("--questions", type=int, default=200, help="questions per crud set for ask() p50/p95")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    index, log = work / "index", work / "log.jsonl"
    done = {}
    if log.exists():
        done = {(r := json.loads(line))["step"]: r for line in log.read_text(encoding="utf-8").splitlines()}
    for f in write_inputs(work, args.bulk, args.days, args.per):
        if f.stem in done:
            continue
        print(f"{time.strftime('%H:%M:%S')} {f.name} ...", file=sys.stderr, flush=True)
        r = timed([sys.executable, "-m", "rag.cli", "index", str(f), "--index", str(index), "--json"])
        if r["status"] != 0:
            print(f"{f.name}: rag index exited {r['status']}; rerun to resume", file=sys.stderr)
            return 1
        summary = json.loads(r.pop("stdout"))
        row = {"step": f.stem, **r, "load": os.getloadavg()[0], **{k: summary[k] for k in (
            "added", "failed", "skipped", "resumed", "chunks", "embedded", "sentences_embedded", "words_embedded",
            "second_embedded", "total_articles", "total_chunks", "segments", "seconds")}}
        row["run_seconds"] = row.pop("seconds")
        row["seconds"] = r["seconds"]
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        done[f.stem] = row
        print(json.dumps(row), file=sys.stderr, flush=True)
    rows = list(done.values())
    run = work / "run"
    if not (run / "report.json").exists():
        subprocess.run([sys.executable, "-m", "eval.run", str(ROOT / "eval/sets/crud-2docs.jsonl"),
                        str(ROOT / "eval/sets/crud-3docs.jsonl"), "--index", str(index), "--out", str(run),
                        "--limit", str(args.questions)], check=False)
    report = json.loads((run / "report.json").read_text(encoding="utf-8")) if (run / "report.json").exists() else {}
    total_s = sum(r["seconds"] for r in rows)
    chunks = sum(r["chunks"] for r in rows)
    result = {"articles": rows[-1]["total_articles"], "chunks": rows[-1]["total_chunks"], "segments": rows[-1]["segments"],
              "seconds": round(total_s, 1), "chunks_per_s": round(chunks / total_s, 2), "disk_mb": disk_mb(index),
              "peak_rss_mb": max(r["peak_rss_mb"] for r in rows), "bulk": rows[0],
              "days": [{k: r[k] for k in ("step", "seconds", "chunks", "words_embedded", "total_chunks", "segments",
                                          "load")} for r in rows[1:]],
              "eval": {name: {k: v for k, v in g.items() if not isinstance(v, (list, dict))}
                       for name, g in report.get("groups", {}).items()}}
    (work / "archive.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("days", "bulk")}, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
