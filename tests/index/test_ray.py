"""`rag index --ray` (rag.index.fanout) on a real local Ray cluster: the index Ray workers help build is the
single-process run's row for row and vector for vector; bad files are reported and skipped; a stopped run resumes."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, FakeEmbedder

import rag.index.build as build
from rag import cli
from rag.index import CURRENT, Index, index_paths, index_stream
from rag.index.fanout import RayFanout
from rag.ingest import iter_articles
from rag.models import registry

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

CORPUS = ROOT / "eval" / "corpus" / "cmrc2018.jsonl"
SECOND = dict(dim=32, name="fake-32")


class Failing(FakeEmbedder):
    """Fails on any text holding BOOM, as a model might on some input."""

    def embed_documents(self, texts):
        bad = [t for t in texts if "BOOM" in t]
        if bad:
            raise ValueError(f"cannot embed {bad[0][:20]!r}")
        return super().embed_documents(texts)


class DiesOnce(FakeEmbedder):
    """The worker process embedding a text that holds 本报记者 dies, the first time only (a marker file remembers)."""

    def __init__(self, marker: Path):
        super().__init__()
        self.marker = str(marker)

    def embed_documents(self, texts):
        if any("本报记者" in t for t in texts) and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().embed_documents(texts)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local Ray cluster of 2 CPUs for the module. The tests' embedders are defined in modules a worker cannot
    import (conftest, this one): Ray sends them by value."""
    import conftest

    ray.cloudpickle.register_pickle_by_value(conftest)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 16 chunks, so that a small corpus makes many, several in flight at once."""
    monkeypatch.setattr(build, "EMBED_BATCH", 16)


def _lines(n: int, start: int = 0) -> list[dict]:
    with open(CORPUS, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][start:start + n]
    for i, r in enumerate(rows):
        r["published"] = f"2024-01-{i % 28 + 1:02d}"
    return rows


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def corpus(tmp_path) -> Path:
    """8 files of 6 articles; one article again in a later file, one under another URL (same chunks, other id), a
    shared line in every text (the same sentence in every batch), an empty file and a .jsonl line that is no JSON."""
    src = tmp_path / "src"
    src.mkdir()
    rows = _lines(48)
    for r in rows:
        r["text"] += "\n\n本报记者报道。"
    for n in range(8):
        _write(src / f"part-{n}.jsonl", rows[n * 6:(n + 1) * 6])
    _write(src / "part-8.jsonl", [rows[3], {**rows[10], "url": rows[10]["url"] + "?copy"}])
    (src / "empty.txt").write_text("", encoding="utf-8")
    with open(src / "part-9.jsonl", "w", encoding="utf-8") as f:
        f.write(json.dumps(_lines(1, 60)[0], ensure_ascii=False) + "\n{not json\n")
    return src


def dump(root: Path, ids: bool = True) -> dict:
    """Every live row of the index with its vectors (first embedder, second, sentences, lexicon words): keyed by
    row id, or (`ids` False) by article and position, for runs whose ids may differ."""
    idx = Index.open(root, eager=False)
    out = {"articles": {}, "chunks": {}, "sentences": {}, "sources": set(), "words": {}}
    try:
        for v in idx.views:
            seg, dead = v.seg, v.dead_articles
            for row in seg.sql("SELECT id, title, url, published, source, text, headings, captions, content_hash "
                               "FROM articles"):
                if row[0] not in dead:
                    out["articles"][row[0]] = row
            vecs = np.load(seg.path / "vectors.npy")
            second = np.load(seg.path / "second.npy") if seg.second_dim else vecs[:, :0]
            for row in seg.sql("SELECT id, article_id, ordinal, start, end_, heading, text, text_hash, tokens "
                               "FROM chunks"):
                if row[1] not in dead:
                    p = int(np.searchsorted(seg.ids, row[0]))
                    out["chunks"][row if ids else row[1:3]] = (row[1:], vecs[p].tobytes(), second[p].tobytes())
            svecs = np.load(seg.path / "sentvecs.npy")
            for row in seg.sql("SELECT id, article_id, start, end_, text_hash FROM sentences"):
                if row[1] not in dead:
                    p = int(np.searchsorted(seg.sent_ids, row[0]))
                    out["sentences"][row if ids else row[1:3]] = (row[1:], svecs[p].tobytes())
            out["sources"] |= {tuple(r) for r in seg.sql("SELECT path, article_id FROM sources")
                               if tuple(r) not in v.dead_sources}
            words = json.loads((seg.path / "lexicon.json").read_text(encoding="utf-8"))
            for w, x in zip(words, np.load(seg.path / "lexicon.npy")):
                out["words"].setdefault(w, x.tobytes())
    finally:
        idx.close()
    return out


def _counts(s) -> dict:
    d = s.to_dict()
    return {k: d[k] for k in ("added", "updated", "skipped", "failed", "removed", "chunks", "embedded",
                              "sentences_embedded", "words_embedded", "second_embedded", "checkpoints", "resumed",
                              "total_articles", "total_chunks", "segments", "errors")}


def _index(paths, root, fanout=None, embedder=None, **kw):
    return index_paths(paths, root, embedder or FakeEmbedder(), second=FakeEmbedder(**SECOND), progress=False,
                       checkpoint=40, chunk_size=200, chunk_overlap=20, fanout=fanout, **kw)


def test_ray_builds_and_updates_the_single_process_index(tmp_path, corpus, small_batches):
    one, many = tmp_path / "one", tmp_path / "many"
    fanout = RayFanout(workers=2)
    s1, s2 = _index([corpus], one), _index([corpus], many, fanout)
    assert _counts(s1) == _counts(s2)
    assert s1.checkpoints >= 3 and s1.chunks > 8 * 16  # many batches and checkpoints
    assert dump(one) == dump(many)
    (stats,) = fanout.runs
    assert len(stats.workers) == 2 and all(w.jobs > 0 for w in stats.workers)  # both workers embedded
    assert stats.refetched == 0  # each batch's plan, made before the earlier ones were written, was right
    assert sum(w.texts for w in stats.workers) == s2.embedded + s2.sentences_embedded
    assert any(n.startswith("Ray: 2 workers") for n in s2.notes)

    # an update: an article edited, one file gone, new articles; unchanged text comes from the index's caches
    rows = _lines(6)
    rows[0]["text"] = rows[0]["text"].replace("。", "！", 1) + "\n\n本报记者报道。"
    for r in rows[1:]:
        r["text"] += "\n\n本报记者报道。"
    _write(corpus / "part-0.jsonl", rows + _lines(6, 100))
    (corpus / "part-7.jsonl").unlink()
    u1, u2 = _index([corpus], one, prune=True), _index([corpus], many, fanout, prune=True)
    assert _counts(u1) == _counts(u2)
    assert u1.updated == 1 and u1.added == 6 and u1.removed == 6 and u1.embedded < u1.chunks
    assert dump(one) == dump(many)


def test_what_a_batch_was_sent_without_is_embedded_at_its_turn(tmp_path, corpus, small_batches, monkeypatch):
    """Were a plan made when a batch is sent to miss a text (a merge dropping a cached vector meanwhile), the batch
    gets it from a worker when it is written: here every plan misses everything."""
    from rag.index import fanout as module

    class Everything:
        def __contains__(self, key):
            return True

    monkeypatch.setattr(module, "Pending", lambda *held: build.Pending(*[Everything()] * 4))
    one, many, f = tmp_path / "one", tmp_path / "many", RayFanout(workers=2)
    s1, s2 = _index([corpus], one), _index([corpus], many, f)
    assert _counts(s1) == _counts(s2) and dump(one) == dump(many)
    (stats,) = f.runs
    assert stats.refetched == s2.embedded + s2.sentences_embedded + s2.words_embedded + s2.second_embedded


def test_a_worker_that_dies_is_started_again_and_its_batch_sent_again(tmp_path, corpus, small_batches):
    one, many, marker = tmp_path / "one", tmp_path / "many", tmp_path / "died"
    s1 = _index([corpus], one)
    s2 = _index([corpus], many, RayFanout(workers=2), embedder=DiesOnce(marker))
    assert marker.exists()  # a worker did die
    assert _counts(s1) == _counts(s2) and dump(one) == dump(many)


def test_bad_files_are_reported_by_name_and_the_rest_indexed(tmp_path, corpus):
    s = _index([corpus], tmp_path / "idx", RayFanout(workers=2))
    assert s.failed == 2 and s.total_articles == 48 + 1 + 1  # 8 files of 6, the copy, part-9's good line
    assert any(e.startswith(str(corpus / "empty.txt")) and "empty" in e for e in s.errors)
    assert any(e.startswith(f"{corpus / 'part-9.jsonl'}:2") for e in s.errors)


def test_a_stopped_run_resumes_with_ray(tmp_path, corpus, small_batches):
    root = tmp_path / "idx"
    stream = list(iter_articles([str(corpus)]))

    class Stop(Exception):
        pass

    def stopping():
        for n, item in enumerate(stream):
            if n == 6:
                raise Stop  # killed after 6 files, batches still being embedded by the workers
            yield item

    with pytest.raises(Stop):
        index_stream(stopping(), root, FakeEmbedder(), second=FakeEmbedder(**SECOND), progress=False, checkpoint=40,
                     chunk_size=200, chunk_overlap=20, fanout=RayFanout(workers=2))
    kept = Index.open(root).manifest.articles
    assert 0 < kept < 48
    s = _index([corpus], root, RayFanout(workers=2))
    assert s.resumed == kept + 1 and s.total_articles == 50  # + 1: part-8 repeats an article, skipped too
    whole = tmp_path / "whole"
    _index([corpus], whole)
    assert dump(root, ids=False) == dump(whole, ids=False)  # the same rows and vectors, whatever their ids


def test_nothing_new_starts_no_worker(tmp_path, corpus):
    root = tmp_path / "idx"
    _index([corpus], root)
    fanout = RayFanout(workers=2)
    s = _index([corpus], root, fanout)
    assert s.added == 0 and s.skipped == 51 and fanout.runs == []


def test_a_worker_error_stops_the_run_with_it_and_keeps_the_index(tmp_path, corpus):
    root = tmp_path / "idx"
    _index([corpus], root)
    before = (root / CURRENT).read_text()
    _write(corpus / "part-10.jsonl", [{"title": "坏", "url": "https://x/boom", "text": "这篇文章里有 BOOM。"}])
    with pytest.raises(ValueError, match="cannot embed"):
        _index([corpus], root, RayFanout(workers=2), embedder=Failing())
    assert (root / CURRENT).read_text() == before
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ray.available_resources().get("CPU", 0) == 2  # the workers were let go: their CPUs are free again


def test_too_many_workers_is_refused_naming_the_option(tmp_path, corpus):
    with pytest.raises(Exception, match="--ray-workers 2"):
        _index([corpus], tmp_path / "idx", RayFanout(workers=3))


def test_cli_ray_option(tmp_path, corpus, capsys, monkeypatch):
    monkeypatch.setattr(registry, "get_embedder", lambda spec="use", **kw: FakeEmbedder())
    root = tmp_path / "idx"
    code = cli.main(["index", "--ray", str(corpus), "--index", str(root), "--ray-workers", "2", "--second", "none",
                     "-q", "--json"])  # `--ray DIR`: DIR is a path to index, not an address
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["total_articles"] == 50
    assert cli.main(["index", str(corpus), "--ray", "nowhere", "--index", str(root)]) == 2
    assert "neither a Ray cluster address" in capsys.readouterr().err
    assert cli.main(["index", str(corpus), "--ray-workers", "2", "--index", str(root)]) == 2
    assert "--ray-workers needs --ray" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_ray_with_the_real_use_model_matches_a_single_process_run(tmp_path):
    """The `rag` command starts its own local cluster (as a user's would) and stops it; the workers' USE vectors
    are the ones this process computes."""
    src = tmp_path / "feed.jsonl"
    _write(src, _lines(40, 200))
    env = {**os.environ, "RAG_CACHE_DIR": str(tmp_path / "cache")}
    for name, extra in (("one", []), ("many", ["--ray", "--ray-workers", "2"])):
        p = subprocess.run([sys.executable, "-m", "rag.cli", "index", str(src), "--index", str(tmp_path / name),
                            "--second", "none", "--chunk-size", "120", "--chunk-overlap", "20", "--checkpoint", "70",
                            "-q", *extra],
                           capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
        assert p.returncode == 0, p.stderr
    a, b = dump(tmp_path / "one"), dump(tmp_path / "many")
    assert len(a["chunks"]) > 200 and len(a["words"]) > 1000 and a == b  # 3 batches and checkpoints


def test_recipes_build_the_packages_embedders_again_with_one_thread():
    from rag.models.e5 import E5Embedder
    from rag.models.e5_fast import FastE5Embedder
    from rag.models.registry import Recipe, from_recipe, recipe_of
    from rag.models.use import USEEmbedder

    for made, options in ((USEEmbedder(threads=2, batch_size=32), {"batch_size": 32}),
                          (FastE5Embedder(threads=2, max_tokens=2048), {"max_tokens": 2048}),
                          (E5Embedder(threads=2), {})):
        r = recipe_of(made)
        again = from_recipe(r)
        assert type(again) is type(made) and again.threads == 1 and again.name == made.name
        assert all(getattr(again, k) == v for k, v in options.items())
    assert recipe_of(FakeEmbedder()) is None  # shipped to the workers as it is
    with pytest.raises(ValueError, match="unknown embedder recipe"):
        from_recipe(Recipe("word2vec"))
