"""Cold start: `rag ask` as a fresh process on the seed index, and its parts (Python, imports, model load)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from eval.bench.common import ROOT, med, now


def bench_cold(out: Path, reps: int, threads: int) -> dict:
    from rag.evaluation import load_questions
    from rag.index import index_paths
    from rag.models.use import USEEmbedder

    seed_index = out / "seed-index"
    shutil.rmtree(seed_index, ignore_errors=True)
    index_paths([str(ROOT / "seeds")], seed_index, USEEmbedder(threads=threads), rebuild=True, progress=False)
    q = next(x for x in load_questions(ROOT / "eval" / "sets" / "seed.jsonl").questions if x.lang == "zh").question
    rag = Path(sys.executable).parent / "rag"
    cmd = [str(rag)] if rag.exists() else [sys.executable, "-m", "rag.cli"]
    times, ok = [], True
    for _ in range(reps):
        t = now()
        p = subprocess.run(cmd + ["ask", q, "--index", str(seed_index)], capture_output=True, text=True, cwd=str(ROOT))
        times.append(now() - t)
        ok &= p.returncode == 0
    t = now()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    py_s = now() - t
    t = now()
    subprocess.run([sys.executable, "-c", "import rag.pipeline, rag.retrieve, faiss"], check=True, cwd=str(ROOT))
    imp_s = now() - t
    t = now()
    subprocess.run([sys.executable, "-c", "from rag.models.use import USEEmbedder; USEEmbedder().embed_queries(['x'])"],
                   check=True, cwd=str(ROOT))
    model_s = now() - t
    return {"question": q, "command": " ".join(["rag", "ask", "QUESTION", "--index", os.path.relpath(seed_index, ROOT)]),
            "runs_s": [round(x, 2) for x in times], "median_s": round(med(times), 2), "first_s": round(times[0], 2),
            "ok": ok, "python_startup_s": round(py_s, 2), "imports_s": round(imp_s, 2),
            "model_load_and_first_embed_s": round(model_s, 2)}
