"""Crash safety: an indexer killed with SIGKILL at any point of a save leaves the old index or the new one, never a mix.

A helper process (tests/helpers/index_worker.py, the `rag index` code path with a deterministic fake embedder)
updates an index: it changes one article, drops one and adds six. With `--phase-delay` it announces every step of the
save (each file written, fsync, rename, the CURRENT swap, cleanup) and sleeps there; the test kills it at a random
step, or at a random moment, then checks that the index opens and holds exactly the old or exactly the new articles,
and that indexing again finishes the job.
"""
from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FakeEmbedder

from rag.errors import RagError
from rag.index import Index, index_paths
from rag.retrieve import Searcher

WORKER = Path(__file__).resolve().parents[1] / "helpers" / "index_worker.py"
PHASE_DELAY = 0.01
REPEATS = 20  # kills at a random announced step of the save
TIMED_REPEATS = 6  # kills at a random moment, no announced steps
SEED = int(os.environ.get("RAG_CRASH_SEED", "20240508"))


def article(i: int, version: int = 1) -> dict:
    extra = "" if version == 1 else "更新后的版本：市政府宣布了新的交通计划。"
    return {"title": f"第{i}号新闻", "url": f"https://news.example/{i}", "published": f"2024-05-{i % 28 + 1:02d}",
            "text": f"第{i}篇文章。{extra}北京今天下雨了，气温是{i}度。\n\n经济增长了{i}个百分点，专家表示乐观。"}


def write_corpus(folder: Path, articles: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "news.jsonl", "w", encoding="utf-8") as f:
        for a in articles:
            f.write(json.dumps(a, ensure_ascii=False) + "\n")


OLD = [article(i) for i in range(6)]
NEW = [article(0, version=2)] + [article(i) for i in range(1, 5)] + [article(i) for i in range(6, 12)]


def snapshot(index_dir: Path) -> dict[str, str] | None:
    """{article id: text} of the live generation, after checking that every part of it agrees; None if no index."""
    try:
        idx = Index.open(index_dir)
    except RagError as e:
        if (index_dir / "CURRENT").exists():
            raise  # an index that is there must open
        assert "no index here yet" in str(e) or "not an index" in str(e)
        return None
    try:
        texts = {aid: idx.article(aid).text for aid in idx.article_ids()}
        # every chunk the lexical and dense sides can return is a real span of a stored article
        s = Searcher(index_dir, FakeEmbedder())
        for q in ("北京 气温", "经济增长", "交通计划"):
            for p in s.search(q, 20):
                assert texts[p.article_id][p.start : p.end] == p.text
        return texts
    finally:
        idx.close()


def run_worker(index_dir: Path, corpus: Path, *extra: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(index_dir), str(corpus), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    """A template index holding OLD (published in two generations) and the snapshots of OLD and NEW."""
    root = tmp_path_factory.mktemp("crash")
    corpus = root / "corpus"
    template = root / "template"
    write_corpus(corpus, OLD[:3])
    index_paths([corpus], template, FakeEmbedder(), progress=False)
    write_corpus(corpus, OLD)
    index_paths([corpus], template, FakeEmbedder(), progress=False)
    old = snapshot(template)
    # an uninterrupted run gives NEW and the list of steps to kill at
    write_corpus(corpus, NEW)
    probe = root / "probe"
    shutil.copytree(template, probe)
    p = run_worker(probe, corpus, "--phase-delay", "0")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    steps = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("phase ")]
    new = snapshot(probe)
    assert old is not None and new is not None and set(old) != set(new)
    return root, corpus, template, old, new, steps


def kill_at_step(proc: subprocess.Popen, step: int, extra: float) -> str:
    """SIGKILL `proc` while it sleeps before its `step`-th announced step (plus `extra` seconds); returns that step."""
    seen = 0
    for line in proc.stdout:
        if line.startswith("phase "):
            if seen == step:
                time.sleep(extra)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return line.split(" ", 1)[1].strip()
            seen += 1
    proc.wait(timeout=30)
    return "finished"


def check_after_crash(index_dir: Path, corpus: Path, old, new, label: str) -> str:
    state = snapshot(index_dir)
    assert state in (old, new), f"{label}: the index holds a mix of old and new content"
    # `rag index` again: takes the lock the dead process held, drops its leftovers, completes the update
    index_paths([corpus], index_dir, FakeEmbedder(), progress=False)
    assert snapshot(index_dir) == new, label
    assert not list(index_dir.glob(".tmp-gen-*")), f"{label}: temp generation left behind"
    assert not list(index_dir.glob(".tmp-seg-*")), f"{label}: temp segment left behind"
    used = {s["name"] for g in index_dir.glob("gen-*")
            for s in json.loads((g / "manifest.json").read_text())["segments"]}
    assert {p.name for p in (index_dir / "segments").iterdir()} == used, f"{label}: unused segment left behind"
    assert not list(index_dir.glob("CURRENT.*")), f"{label}: temp CURRENT left behind"
    return "old" if state == old else "new"


def test_sigkill_during_save_leaves_old_or_new_index(states, tmp_path):
    root, corpus, template, old, new, steps = states
    rng = random.Random(SEED)
    # every step at least once (the renames and the CURRENT swap are the ones that matter), then random ones
    targets = list(range(len(steps)))
    rng.shuffle(targets)
    targets = (targets + [rng.randrange(len(steps)) for _ in range(REPEATS)])[: max(REPEATS, len(steps))]
    outcomes: dict[str, int] = {}
    for n, target in enumerate(targets):
        index_dir = tmp_path / f"r{n}"
        shutil.copytree(template, index_dir)
        proc = run_worker(index_dir, corpus, "--phase-delay", str(PHASE_DELAY))
        where = kill_at_step(proc, target, rng.uniform(0, PHASE_DELAY))
        label = f"seed {SEED}, repeat {n}, killed before step {target} ({where})"
        got = check_after_crash(index_dir, corpus, old, new, label)
        outcomes[got] = outcomes.get(got, 0) + 1
        shutil.rmtree(index_dir)
    assert len(targets) >= 20
    print(f"crash outcomes over {len(targets)} kills: {outcomes}")
    assert set(outcomes) == {"old", "new"}, outcomes  # kills landed both before and after the CURRENT swap


def test_sigkill_at_random_moments(states, tmp_path):
    root, corpus, template, old, new, steps = states
    rng = random.Random(SEED + 1)
    for n in range(TIMED_REPEATS):
        index_dir = tmp_path / f"t{n}"
        shutil.copytree(template, index_dir)
        proc = run_worker(index_dir, corpus)
        assert proc.stdout.readline().strip() == "start"  # imports done: the rest is reading, embedding, saving
        delay = rng.uniform(0, 0.25)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        check_after_crash(index_dir, corpus, old, new, f"seed {SEED + 1}, repeat {n}, killed after {delay:.3f} s")
        shutil.rmtree(index_dir)


def test_sigkill_during_first_index_leaves_no_index_or_a_complete_one(states, tmp_path):
    root, corpus, template, old, new, steps = states
    rng = random.Random(SEED + 2)
    for n in range(3):
        index_dir = tmp_path / f"f{n}"
        proc = run_worker(index_dir, corpus, "--phase-delay", str(PHASE_DELAY))
        kill_at_step(proc, rng.randrange(len(steps) - 4), 0)
        assert snapshot(index_dir) in (None, new)
        p = run_worker(index_dir, corpus)  # the real resume: a fresh indexer process
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert snapshot(index_dir) == new
        assert not list(index_dir.glob(".tmp-gen-*")) and not list(index_dir.glob(".tmp-seg-*"))


def test_leftover_temp_generation_is_ignored_and_cleaned_up(states, tmp_path):
    root, corpus, template, old, new, steps = states
    index_dir = tmp_path / "idx"
    shutil.copytree(template, index_dir)
    # what a writer killed while staging leaves: a half-written segment and generation under temp names
    gen = index_dir / (index_dir / "CURRENT").read_text().strip()
    junk_seg = index_dir / ".tmp-seg-dead1234"
    shutil.copytree(index_dir / "segments" / json.loads((gen / "manifest.json").read_text())["segments"][-1]["name"],
                    junk_seg)
    (junk_seg / "vectors.faiss").write_bytes(b"\0" * 10)
    (junk_seg / "segment.json").unlink()
    junk = index_dir / ".tmp-gen-dead1234"
    shutil.copytree(gen, junk)
    (junk / "manifest.json").write_bytes(b"\0" * 10)
    (index_dir / "CURRENT.abcd.tmp").write_text("gen-999999\n")  # a CURRENT swap that never happened
    assert snapshot(index_dir) == old  # readers never look at temp names
    index_paths([corpus], index_dir, FakeEmbedder(), progress=False)
    assert not junk.exists() and not list(index_dir.glob(".tmp-gen-*"))
    assert not junk_seg.exists() and not list(index_dir.glob(".tmp-seg-*"))
    assert not (index_dir / "CURRENT.abcd.tmp").exists()
    assert snapshot(index_dir) == new


# ---------------------------------------------------------------- a first index stopped before CURRENT (issue #25)


def test_first_index_killed_between_publishing_and_current_is_finished_by_the_next_run(states, tmp_path):
    """A first index renames its generation into place, then writes CURRENT. Killed in between, the folder holds a
    complete generation and no CURRENT, which must not read as an index whose CURRENT was lost (refused until
    `rag repair`): the FIRST marker says whose it is, and the next `rag index` finishes the publish."""
    root, corpus, template, old, new, steps = states
    probe = tmp_path / "probe"
    p = run_worker(probe, corpus, "--phase-delay", "0")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    first_steps = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("phase ")]
    # the last rename is the generation's (the first, its segment's into segments/)
    after_rename = len(first_steps) - first_steps[::-1].index("rename")
    assert first_steps[after_rename:after_rename + 2] == ["fsync_dir", "replace"], first_steps
    for n, step in enumerate((after_rename, after_rename + 1)):  # before the fsync, before CURRENT's os.replace
        index_dir = tmp_path / f"first{n}"
        proc = run_worker(index_dir, corpus, "--phase-delay", str(PHASE_DELAY))
        assert kill_at_step(proc, step, 0) == first_steps[step]
        assert [g.name for g in index_dir.glob("gen-*")] == ["gen-000001"] and not (index_dir / "CURRENT").exists()
        with pytest.raises(RagError, match="not an index yet: the first `rag index` into it stopped before publishing"):
            Index.open(index_dir)
        assert snapshot(index_dir) is None
        p = run_worker(index_dir, corpus)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert snapshot(index_dir) == new
        assert sorted(x.name for x in index_dir.iterdir()) == ["CURRENT", "LOCK", "gen-000001", "segments"]
        assert sorted(x.name for x in (index_dir / "segments").iterdir()) == ["seg-000001"]


# ---------------------------------------------------------------- a full disk (issue #25)


@pytest.fixture
def live(states, tmp_path):
    """A copy of the template index (OLD, two generations) and the corpus that would update it to NEW."""
    root, corpus, template, old, new, steps = states
    index_dir = tmp_path / "idx"
    shutil.copytree(template, index_dir)
    return index_dir, corpus, old


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "LOCK"}


def fail_on_call(n: int, fn):
    """`fn`, raising OSError(ENOSPC) on its n-th call (counting from 1)."""
    calls = {"n": 0}

    def wrapped(*a, **kw):
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fn(*a, **kw)
    return wrapped


def _full_at_np_save(monkeypatch, n):
    import numpy as np

    monkeypatch.setattr(np, "save", fail_on_call(n, np.save))


def _full_at_faiss_write(monkeypatch, n):
    import faiss

    monkeypatch.setattr(faiss, "write_index", fail_on_call(n, faiss.write_index))


def _full_in_sqlite(monkeypatch, n):
    """SQLite's own "database or disk is full": the temp segment's database may grow by `n` pages at most. The
    staged segment starts empty (only the new rows go to it), so its pages are made small (512 bytes): a few
    articles then outgrow the pages its empty tables already hold, as they did the old full-size copy."""
    from rag.index import writer

    begin = writer.Writer._begin

    def small_disk(self):
        begin(self)
        self.con.execute("PRAGMA page_size = 512")
        self.con.execute("VACUUM")
        assert self.con.execute("PRAGMA page_size").fetchone()[0] == 512
        pages = self.con.execute("PRAGMA page_count").fetchone()[0]
        self.con.execute(f"PRAGMA max_page_count = {pages + n}")
    monkeypatch.setattr(writer.Writer, "_begin", small_disk)


def _full_at_current(monkeypatch, n):
    """The generation is written and renamed into place; writing CURRENT's temp file fails."""
    from rag.index import writer

    real = writer.atomic_write_text

    def write(path, text):
        if Path(path).name == "CURRENT":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, text)
    monkeypatch.setattr(writer, "atomic_write_text", write)


FULL_DISKS = {
    "np.save of ids.npy": (_full_at_np_save, 1),
    "np.save of sentvecs.npy": (_full_at_np_save, 4),
    "np.save of the BM25 arrays": (_full_at_np_save, 7),
    "faiss.write_index of vectors.faiss": (_full_at_faiss_write, 1),
    "faiss.write_index of lexicon.faiss": (_full_at_faiss_write, 2),
    "sqlite while adding articles": (_full_in_sqlite, 1),
    "writing CURRENT": (_full_at_current, 1),
}


@pytest.mark.parametrize("fill,n", FULL_DISKS.values(), ids=FULL_DISKS.keys())
def test_a_full_disk_is_one_line_and_changes_nothing(live, fill, n, monkeypatch, capsys):
    """Before the fix: tracebacks (sqlite3.OperationalError, FAISS's C++ RuntimeError, numpy's "403456 requested and
    16320 written") with no word about the disk, and the temp generation left behind."""
    from rag import cli
    from rag.errors import NoSpaceError

    index_dir, corpus, old = live
    files = files_of(index_dir)
    fill(monkeypatch, n)
    with pytest.raises(NoSpaceError) as e:
        index_paths([corpus], index_dir, FakeEmbedder(), progress=False)
    assert str(e.value) == f"no space left on {index_dir}: nothing was changed"
    assert files_of(index_dir) == files  # no temp generation, no half-published one; CURRENT as it was
    assert sorted(p.name for p in index_dir.iterdir()) == ["CURRENT", "LOCK", "gen-000001", "gen-000002", "segments"]
    assert snapshot(index_dir) == old
    # the CLI: exit 1, one line, no traceback (the fake embedder stands in for the index's own)
    monkeypatch.setattr("rag.models.registry.get_embedder", lambda spec="use", **kw: FakeEmbedder())
    fill(monkeypatch, n)
    code = cli.main(["index", str(corpus), "--index", str(index_dir), "--embedder", "fake-64", "-q"])
    out, err = capsys.readouterr()
    assert (code, out, err) == (1, "", f"error: no space left on {index_dir}: nothing was changed\n")
    assert files_of(index_dir) == files


@pytest.mark.parametrize("exc", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    OSError("403456 requested and 16320 written"),  # numpy's tofile: no errno
    RuntimeError("Error in void faiss::write_index(...) at faiss/impl/io.cpp:106: Error: 'ret == (n)' failed: write "
                 "error in /idx/.tmp-gen-1/vectors.faiss: 16320 != 403456 (No space left on device)"),
    sqlite3.OperationalError("database or disk is full"),
], ids=["ENOSPC", "EDQUOT", "numpy", "faiss", "sqlite"])
def test_every_form_of_a_full_disk_is_recognised(exc):
    from rag.index.files import is_disk_full

    assert is_disk_full(exc)
    wrapped = RuntimeError("while saving")
    wrapped.__cause__ = exc
    assert is_disk_full(wrapped)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(RuntimeError("Error in faiss::read_index: read error"))


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB tmpfs (root only); skipped where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({(p.stderr or p.stdout).strip() or p.returncode}): the "
                    "monkeypatched full-disk tests stand in")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_real_full_disk(tiny_disk, tmp_path):
    from rag.errors import NoSpaceError

    small, big = tmp_path / "small", tmp_path / "big"
    write_corpus(small, OLD)
    write_corpus(big, [{**article(i), "text": article(i)["text"] * 6} for i in range(100, 1600)])
    index_dir = tiny_disk / "idx"
    index_paths([small], index_dir, FakeEmbedder(), progress=False)
    old = snapshot(index_dir)
    files = files_of(index_dir)
    with pytest.raises(NoSpaceError) as e:
        index_paths([big], index_dir, FakeEmbedder(), progress=False)
    assert str(e.value) == f"no space left on {index_dir}: nothing was changed"
    assert files_of(index_dir) == files and snapshot(index_dir) == old
    assert sorted(p.name for p in index_dir.iterdir()) == ["CURRENT", "LOCK", "gen-000001", "segments"]
    # a smaller update fits: indexing goes on from the same generation
    more = tmp_path / "more"
    write_corpus(more, [article(50)])
    s = index_paths([more], index_dir, FakeEmbedder(), progress=False)
    assert (s.added, s.total_articles, s.generation) == (1, len(OLD) + 1, "gen-000002")
