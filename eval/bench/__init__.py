"""Benchmarks: index build speed, `ask()` latency and memory at 10k/100k chunks next to a LangChain pipeline,
FAISS index types up to 1M chunks, cold start, and where the embedder spends its time.

    python -m eval.bench                 # full run (< 30 min on a 2-core box): sizes dev/10k/100k, FAISS at 100k and 1M
    python -m eval.bench --quick         # a few minutes: 300-article build, 10k chunks, FAISS at 10k, no 1M
    python -m eval.bench --out DIR       # default eval/out/bench; writes DIR/bench.json and DIR/bench.md
    python -m eval.bench --doc docs/performance.md   # also write the performance page from this run

Every configuration whose memory is reported runs in its own subprocess (`--worker`), so peak RSS is per
configuration. Latencies are medians / p95 over the sampled dev questions after a warm-up; throughputs are
medians over repeats, and ratios are taken within the same run (the machine may be shared: the load average and
the busiest other processes are recorded with every section).

What is synthetic (said again in bench.md):
- 10k / 100k: the real dev corpus (eval/corpus + seeds, real USE vectors) plus synthetic articles whose sentences
  are real corpus sentences shuffled into new articles; a synthetic chunk's vector is the mean of the real vectors
  of the chunks its sentences came from, plus Gaussian noise, re-normalised (no USE call). Synthetic sentence vectors
  are copies: each synthetic sentence is stored with the vector of the real sentence it copies, plus the same noise.
  They go through the store's Writer API (`Writer.put_article` + `commit`), so BM25, FAISS and SQLite are built by the
  product code.
- 1M: the same dev corpus plus ~1M one-chunk synthetic articles (sentences recombined, <= the chunk size), written by
  a bench-side bulk builder into the store's generation layout (SQLite rows, vectors.npy, sentvecs.npy, `build_faiss`,
  BM25 scores computed with numpy/scipy, checked against `Lexical.build` on a sample and stored with
  `Lexical.from_csc`), then opened and queried with the product read path (`Index.open`, `Searcher.search`, `ask`).
  The Writer cannot build 1M chunks on this machine in the time budget (it holds every token of the corpus as Python
  strings while building BM25).
- Cross-lingual lexicon (rag.lang.bridge): every synthetic store reuses the dev index's lexicon (its Chinese words and
  their stored vectors; synthetic chunks are made of real sentences). 10k / 100k inherit it from the Writer's base
  generation; the 1M builder copies lexicon.json / lexicon.npy, filtered by `Writer._save_lexicon`, and rebuilds
  lexicon.faiss with `Lexicon.save`.
- Queries are always the real dev questions, embedded by the real model. ask() latency is reported overall and per
  question language (zh / en): English questions also embed their content words and search the lexicon.
- Index build: the pipeline embeds chunk texts + sentence texts + new lexicon words; the embedder-only baseline
  embeds the same unique texts (and words), so their ratio is the pipeline's overhead.

One module per section: common (configurations, goals, measuring helpers, the worker launcher), embedder (USE
threads, where the embedder spends its time), indexing (build speed, re-index), synthetic (10k / 100k stores through
the Writer), million (the 1M bulk builder), latency (`ask()` and the LangChain peer, per store), faiss_kinds (FAISS
index types), cold_start (`rag ask` from a fresh process), report (bench.json / bench.md, the performance page) and
cli (options, the worker dispatch, one runner per section).
"""
