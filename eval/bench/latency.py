"""Query latency and memory, each in its own worker process: `ask()` / `retrieve()` on a store (ours), timed piece by
piece, and the LangChain peer (splitter + FAISS + BM25Retriever + EnsembleRetriever) on the same articles."""
from __future__ import annotations

import gc
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from eval.bench.common import load_avg, med, now, pct, peak_rss_mb, rss_by_file_mb, rss_mb, rss_split_mb


def hit5(passages, q) -> bool:
    from rag.evaluation import first_hit_rank

    r = first_hit_rank(passages, q["answers"], q["article_id"], depth=5)
    return r is not None and r <= 5


def worker_ours(spec: dict) -> dict:
    """Open the index as `rag ask` does, warm up, then time ask() and retrieve() on every question.

    The first English question loads the cross-lingual lexicon (`Index.lexicon()`, lazily); that load is timed on
    its own (`lexicon_load_ms`) and the warm-up includes an English question, so the timed questions are steady state.
    Latencies and hit@5 are reported overall and per question language (`by_lang`)."""
    from rag.answer import AnswerConfig
    from rag.pipeline import ask, retrieve
    from rag.retrieve import searcher

    rss0 = rss_mb()
    index = spec["index"]
    qs = json.loads(Path(spec["questions"]).read_text(encoding="utf-8"))
    t0 = now()
    s = searcher(index)
    s.embedder.embed_queries(["warm"])
    open_s = now() - t0
    rss_opened = rss_mb()
    t = now()
    s.refresh().lexicon()
    lexicon_load_ms = (now() - t) * 1000
    rss_lexicon = rss_mb()
    warm = qs[: spec.get("warmup", 3)]
    warm += [q for q in qs if q["lang"] == "en"][:1] if all(q["lang"] != "en" for q in warm) else []
    for q in warm:
        ask(q["question"], index)
    rss_open = rss_mb()
    ask_ms, ret_ms, hits = [], [], []
    parts: dict[str, list[float]] = {k: [] for k in COMPONENTS}
    lang_parts: dict[str, dict[str, list[float]]] = {}
    for q in qs:
        t = now()
        ask(q["question"], index)
        ask_ms.append((now() - t) * 1000)
        t = now()
        ps = retrieve(q["question"], index, k=5)
        ret_ms.append((now() - t) * 1000)
        hits.append(hit5(ps, q))
    plain = AnswerConfig(reader="none")  # the ranker alone: what the reader costs
    plain_ms = []
    for q in qs:
        t = now()
        ask(q["question"], index, config=plain)
        plain_ms.append((now() - t) * 1000)
    rss_after = rss_mb()
    if spec.get("components", True):
        for q in qs:
            one = {k: [] for k in COMPONENTS}
            _components(s, q["question"], one)
            for k, v in one.items():
                parts[k] += v
                lang_parts.setdefault(q["lang"], {c: [] for c in COMPONENTS})[k] += v
    by_lang = {}
    for lang in sorted({q["lang"] for q in qs}):
        sel = [i for i, q in enumerate(qs) if q["lang"] == lang]
        a, r = [ask_ms[i] for i in sel], [ret_ms[i] for i in sel]
        by_lang[lang] = {"questions": len(sel), "ask_p50_ms": round(pct(a, 50), 1), "ask_p95_ms": round(pct(a, 95), 1),
                         "retrieve_p50_ms": round(pct(r, 50), 1), "retrieve_p95_ms": round(pct(r, 95), 1),
                         "hit5": round(100 * sum(hits[i] for i in sel) / len(sel), 1),
                         "components_p50_ms": {k: round(med(v), 2) for k, v in lang_parts.get(lang, {}).items() if v}}
    return {
        "chunks": s.index.manifest.chunks, "faiss_kind": s.index.manifest.faiss_kind, "questions": len(qs),
        "embedder": repr(s.embedder), "open_s": round(open_s, 2),
        "lexicon_load_ms": round(lexicon_load_ms, 1), "lexicon_words": len(s.refresh().lexicon().words),
        "lexicon_rss_mb": round(rss_lexicon - rss_opened),
        "ask_p50_ms": round(pct(ask_ms, 50), 1), "ask_p95_ms": round(pct(ask_ms, 95), 1),
        "ask_no_reader_p50_ms": round(pct(plain_ms, 50), 1), "ask_no_reader_p95_ms": round(pct(plain_ms, 95), 1),
        "retrieve_p50_ms": round(pct(ret_ms, 50), 1), "retrieve_p95_ms": round(pct(ret_ms, 95), 1),
        "hit5": round(100 * sum(hits) / len(hits), 1), "by_lang": by_lang,
        "components_p50_ms": {k: round(med(v), 2) for k, v in parts.items() if v},
        "rss_start_mb": round(rss0), "rss_open_mb": round(rss_open), "rss_mb": round(rss_after),
        "rss_split_mb": rss_split_mb(), "rss_by_file_mb": rss_by_file_mb(s.index.gen_dir),
        "peak_rss_mb": round(peak_rss_mb()), "load": load_avg(),
    }


COMPONENTS = ("embed_query", "bridge", "lexical", "dense", "search_rest", "sentence_rows", "sentence_vectors",
              "n_sentences", "n_embedded", "n_bridged")


def _components(s, question: str, parts: dict) -> None:
    """One `ask`'s retrieval and sentence reads, timed piece by piece as `gather` does them (bridge: an English
    question's words embedded and looked up in the lexicon, `Searcher.bridged_words`; 0 for Chinese questions)."""
    from rag.answer import candidates

    idx = s.refresh()
    t = now()
    qv = s.embedder.embed_queries([question])[0]
    t1 = now()
    bridge = s.bridged_words(question, idx)
    tb = now()
    idx.search_lexical(" ".join([question] + list(bridge)), 100)
    t2 = now()
    idx.search_dense(qv, 100)
    t3 = now()
    ps = s.search(question, 5, qvec=qv, idx=idx, bridge=bridge)
    t4 = now()
    cands = candidates(ps, idx.sentences(ps))
    t5 = now()
    idx.sentence_vectors([c.sentence_id for c in cands if c.sentence_id >= 0])
    missing = [c.text for c in cands if c.sentence_id < 0]
    if missing:
        s.embedder.embed_documents(missing)
    t6 = now()
    parts["embed_query"].append((t1 - t) * 1000)
    parts["bridge"].append((tb - t1) * 1000)
    parts["lexical"].append((t2 - tb) * 1000)
    parts["dense"].append((t3 - t2) * 1000)
    parts["search_rest"].append(max(0.0, (t4 - t3) * 1000 - (t2 - tb) * 1000 - (t3 - t2) * 1000))
    parts["sentence_rows"].append((t5 - t4) * 1000)
    parts["sentence_vectors"].append((t6 - t5) * 1000)
    parts["n_sentences"].append(len(cands))
    parts["n_embedded"].append(len(missing))
    parts["n_bridged"].append(len(bridge))


def _peer_store(idx) -> SimpleNamespace:
    """What the peer builds from an opened store: its articles, chunking parameters and, in `held`, a chunk text ->
    vector row cache over its vectors (so the peer re-embeds no chunk text the store holds)."""
    chunk_size, chunk_overlap = idx.manifest.chunk_size, idx.manifest.chunk_overlap  # the same as the store's
    articles = idx.sql("SELECT id, title, text FROM articles ORDER BY id")
    chunk_rows = idx.sql("SELECT id, text FROM chunks")
    vec_ids = np.load(idx.gen_dir / "ids.npy", allow_pickle=False)
    vectors = np.load(idx.gen_dir / "vectors.npy", mmap_mode="r", allow_pickle=False)
    cache: dict[str, int] = {}
    for cid, text in chunk_rows:
        cache.setdefault(text, int(np.searchsorted(vec_ids, cid)))
    return SimpleNamespace(articles=articles, chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                           held={"cache": cache, "vectors": vectors})  # held: dropped once the peer's index is built


def _peer_embeddings(base, model, held: dict, misses: list[int]):
    """A LangChain `Embeddings` (class `base`) over the USE `model`: document vectors from `held`'s cache while it
    lasts, a text it lacks embedded live (counted in `misses`); queries always embedded live."""

    class USEEmbeddings(base):
        def embed_documents(self, texts):
            out = [None] * len(texts)
            todo = []
            cache, vectors = held.get("cache") or {}, held.get("vectors")
            for i, t in enumerate(texts):
                p = cache.get(t)
                if p is None:
                    todo.append(i)
                else:
                    out[i] = vectors[p].tolist()
            if todo:
                misses[0] += len(todo)
                for i, v in zip(todo, model.embed_documents([texts[i] for i in todo])):
                    out[i] = v.tolist()
            return out

        def embed_query(self, text):
            return model.embed_queries([text])[0].tolist()

    return USEEmbeddings()


def _peer_queries(ens, qs: list[dict]) -> tuple[list[float], list[bool], dict]:
    """Each question through the ensemble: latencies (ms), top-5 hits, and both per question language."""
    lat, hits = [], []
    for q in qs:
        t = now()
        got = ens.invoke(q["question"])
        lat.append((now() - t) * 1000)
        ps = [SimpleNamespace(text=d.page_content, article_id=d.metadata.get("article_id")) for d in got[:5]]
        hits.append(hit5(ps, q))
    by_lang = {}
    for lang in sorted({q["lang"] for q in qs}):
        sel = [i for i, q in enumerate(qs) if q["lang"] == lang]
        by_lang[lang] = {"questions": len(sel), "p50_ms": round(pct([lat[i] for i in sel], 50), 1),
                         "p95_ms": round(pct([lat[i] for i in sel], 95), 1),
                         "hit5": round(100 * sum(hits[i] for i in sel) / len(sel), 1)}
    return lat, hits, by_lang


def worker_peer(spec: dict) -> dict:
    """The LangChain way: RecursiveCharacterTextSplitter + FAISS + BM25Retriever + EnsembleRetriever.

    Same articles, same chunking parameters and separators, same USE model behind a LangChain `Embeddings`
    (document vectors are taken from our index for identical chunk texts so 100k chunks need no re-embedding;
    a chunk text our index does not hold is embedded live). Queries are embedded live.
    """
    import warnings

    warnings.filterwarnings("ignore")
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    try:
        from langchain_classic.retrievers import EnsembleRetriever
        ensemble_from = "langchain_classic.retrievers"
    except ImportError:  # pragma: no cover - older installs
        from langchain.retrievers import EnsembleRetriever
        ensemble_from = "langchain.retrievers"
    from rag.index import Index
    from rag.ingest.chunks import SEPARATORS
    from rag.lang import tokens
    from rag.models import get_embedder

    rss0 = rss_mb()
    qs = json.loads(Path(spec["questions"]).read_text(encoding="utf-8"))
    idx = Index.open(spec["index"])
    store = _peer_store(idx)
    idx.close()
    model = get_embedder("use")
    model.embed_queries(["warm"])
    misses = [0]

    t0 = now()
    splitter = RecursiveCharacterTextSplitter(separators=SEPARATORS, chunk_size=store.chunk_size,
                                              chunk_overlap=store.chunk_overlap, keep_separator="end",
                                              strip_whitespace=True)
    docs = splitter.split_documents([Document(page_content=text, metadata={"article_id": aid, "title": title})
                                     for aid, title, text in store.articles])
    del store.articles
    t_split = now()
    vs = FAISS.from_documents(docs, _peer_embeddings(Embeddings, model, store.held, misses))
    t_faiss = now()
    bm25 = BM25Retriever.from_documents(docs, preprocess_func=lambda t: tokens(t, "bigram"), k=spec["k"])
    t_bm25 = now()
    ens = EnsembleRetriever(retrievers=[bm25, vs.as_retriever(search_kwargs={"k": spec["k"]})], weights=[0.5, 0.5])
    build_s = now() - t0
    n_docs = len(docs)
    del docs
    store.held.clear()
    gc.collect()
    for q in qs[: spec.get("warmup", 3)]:
        ens.invoke(q["question"])
    rss_open = rss_mb()
    lat, hits, by_lang = _peer_queries(ens, qs)
    return {
        "chunks": n_docs, "questions": len(qs), "ensemble_from": ensemble_from, "embed_misses": misses[0],
        "build_s": round(build_s, 1), "split_s": round(t_split - t0, 1), "faiss_build_s": round(t_faiss - t_split, 1),
        "bm25_build_s": round(t_bm25 - t_faiss, 1),
        "p50_ms": round(pct(lat, 50), 1), "p95_ms": round(pct(lat, 95), 1),
        "hit5": round(100 * sum(hits) / len(hits), 1), "by_lang": by_lang,
        "rss_start_mb": round(rss0), "rss_mb": round(rss_open), "rss_after_mb": round(rss_mb()),
        "rss_split_mb": rss_split_mb(), "peak_rss_mb": round(peak_rss_mb()), "load": load_avg(),
    }
