"""A process reading or writing a store, for tests of several processes on one store (fake embedder).

usage: python store_worker.py open SPEC                  print the store's stats as JSON (exit 2 and the error if not)
       python store_worker.py write SPEC N PAUSE          add N articles one version each, then remove the first
       python store_worker.py read SPEC FINAL SECONDS     ask questions until version FINAL is seen (or SECONDS pass),
                                                          checking every snapshot is one whole version
The reader prints one JSON line: versions seen, questions asked, snapshot checks made, errors.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for conftest.FakeEmbedder

from conftest import FakeEmbedder  # noqa: E402

from rag.answer import AnswerConfig  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.pipeline import ask  # noqa: E402
from rag.retrieve import Searcher  # noqa: E402
from rag.store import open_store  # noqa: E402
from rag.store.indexing import index_articles_into, remove_from_store  # noqa: E402
from rag.types import Article  # noqa: E402

MARKERS = ["甲子", "乙丑", "丙寅", "丁卯", "戊辰", "己巳", "庚午", "辛未"]


def extra(n: int) -> Article:
    m = MARKERS[n]
    return Article(title=f"{m}号新闻", text=f"{m}工程今天开工，预计明年完工。\n\n当地居民表示{m}工程将改善交通。",
                   url=f"https://news.example/extra/{n}", published=f"2024-07-{n + 1:02d}T00:00:00Z", source="extra")


def check(idx) -> None:
    """One snapshot, one version: the published counts, the article rows, the term statistics and the chunks
    found agree for every marker article (present everywhere or nowhere)."""
    ids = set(idx.article_ids())
    assert len(ids) == idx.manifest.articles, (len(ids), idx.manifest.articles)
    for n, m in enumerate(MARKERS):
        aid = extra(n).id
        df = idx.doc_freq([m]).get(m, 0)
        hits = {p.article_id for p in idx.passages([c for c, _ in idx.search_lexical(m, 5)])}
        if aid in ids:
            assert df >= 1 and aid in hits and idx.article(aid) is not None, (m, df, hits)
        else:
            assert df == 0 and aid not in hits and idx.article(aid) is None, (m, df, hits)


def main(argv: list[str]) -> int:
    mode, spec = argv[0], argv[1]
    if mode == "open":
        try:
            print(json.dumps(open_store(spec).stats()))
            return 0
        except RagError as e:
            print(f"error: {e}", flush=True)
            return 2
    emb = FakeEmbedder()
    if mode == "write":
        n, pause = int(argv[2]), float(argv[3])
        for i in range(n):
            index_articles_into([extra(i)], spec, emb, source_name=f"memory:extra{i}", progress=False, wait=30)
            print(f"published {i}", flush=True)
            time.sleep(pause)
        remove_from_store(spec, [extra(0).id], wait=30)
        print("removed 0", flush=True)
        return 0
    final, seconds = int(argv[2]), float(argv[3])
    s = Searcher(spec, emb)
    print("ready", flush=True)
    versions, asked, checks, errors = [], 0, 0, []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            idx = s.refresh()
            version = idx.manifest.version
            if not versions or versions[-1] != version:
                versions.append(version)
            check(idx)
            checks += 1
            ask(f"{MARKERS[asked % len(MARKERS)]}工程什么时候完工？", s, config=AnswerConfig(reader="none"))
            asked += 1
            if version >= final:
                break
        except Exception as e:  # noqa: BLE001 - reported to the test
            errors.append(f"{type(e).__name__}: {e}")
            if len(errors) > 5:
                break
    print(json.dumps({"versions": versions, "asked": asked, "checks": checks, "errors": errors}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
