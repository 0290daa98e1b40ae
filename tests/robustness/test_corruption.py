"""Damaged index files: every truncated, emptied, overwritten, missing or inconsistent file gives a clear
CorruptIndexError (or another RagError) that names the file and says `rag index --rebuild`; `rag ask` exits 2 with
one line on stderr and no traceback; `rag index --rebuild` recovers."""
from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEmbedder

from rag import cli
from rag.errors import CorruptIndexError, IndexMismatchError, RagError
from rag.index import Index, index_paths
from rag.models import registry

QUESTION = "北京的气温是多少度？"
EN_QUESTION = "What was the temperature in Beijing?"
LEXICON_FILES = ["lexicon.json", "lexicon.faiss"]
GEN = "gen-000001"
# manifest.json is the generation's (gen-NNNNNN/); every other file is its segment's (segments/seg-NNNNNN/)
FILES = ["vectors.faiss", "meta.sqlite", "manifest.json", "segment.json", "vectors.npy", "ids.npy", "sentvecs.npy",
         "sent_ids.npy", "bm25/lengths.npy", "bm25/terms.json", "bm25/indptr.npy", "bm25/docs.npy", "bm25/tf.npy"]


def seg_of(root: Path, gen: str | None = None) -> Path:
    """The folder of the one segment of a freshly built index's generation `gen` (the current one by default)."""
    gen = gen or (root / "CURRENT").read_text(encoding="utf-8").strip()
    segs = json.loads((root / gen / "manifest.json").read_text(encoding="utf-8"))["segments"]
    assert len(segs) == 1, segs
    return root / "segments" / segs[0]["name"]


def own_seg(root: Path, gen: str, other: str) -> Path:
    """The folder of the segment generation `gen` adds to `other` (the one only `gen` uses)."""
    def names(g):
        return [s["name"] for s in json.loads((root / g / "manifest.json").read_text(encoding="utf-8"))["segments"]]
    [own] = [n for n in names(gen) if n not in names(other)]
    return root / "segments" / own


def where(root: Path, name: str) -> Path:
    """Where index file `name` of a freshly built (single-segment) index lives."""
    return root / GEN / name if name == "manifest.json" else seg_of(root) / name


def truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def empty(p: Path) -> None:
    p.write_bytes(b"")


def overwrite_header(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[:64] = random.Random(7).randbytes(64)
    p.write_bytes(bytes(data))


def delete(p: Path) -> None:
    p.unlink()


DAMAGES = [truncate, empty, overwrite_header, delete]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    with open(folder / "news.jsonl", "w", encoding="utf-8") as f:
        for i in range(12):
            f.write(json.dumps({"title": f"第{i}号新闻", "url": f"https://news.example/{i}",
                                "text": f"第{i}篇文章。北京今天下雨了，气温是{i}度。\n\n经济增长了{i}个百分点。"},
                               ensure_ascii=False) + "\n")
    return folder


@pytest.fixture(scope="module")
def template(tmp_path_factory, corpus) -> Path:
    root = tmp_path_factory.mktemp("template") / "idx"
    index_paths([corpus], root, FakeEmbedder(), progress=False)
    assert (root / "CURRENT").read_text().strip() == GEN
    return root


@pytest.fixture
def index_dir(template, tmp_path) -> Path:
    d = tmp_path / "idx"
    shutil.copytree(template, d)
    return d


@pytest.fixture
def fake_cli(monkeypatch):
    """`rag` in-process, with the index's 'fake-64' embedder resolvable by name."""
    import rag.models.registry

    real = rag.models.registry.get_embedder
    monkeypatch.setattr(rag.models.registry, "get_embedder",
                        lambda spec="use", **kw: FakeEmbedder() if spec == "fake-64" else real(spec, **kw))
    monkeypatch.setitem(registry.SHARED, "fake-64", FakeEmbedder())


def assert_clear(err: RagError, names: Path | str) -> None:
    msg = str(err)
    assert str(names) in msg, msg
    assert "rag index --rebuild" in msg, msg
    assert "\n" not in msg


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))  # an exception escaping here is the traceback a user would see
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- each file, each kind of damage


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", FILES)
def test_damaged_file_is_named_with_the_rebuild_hint(index_dir, name, damage):
    path = where(index_dir, name)
    damage(path)
    with pytest.raises(CorruptIndexError) as e:
        Index.open(index_dir)
    assert_clear(e.value, path)


# Each alteration takes the index folder and returns the file the error must name.


def _sqlite_row_deleted(root: Path):
    seg = seg_of(root)
    con = sqlite3.connect(seg / "meta.sqlite")
    con.execute("DELETE FROM chunks WHERE id = (SELECT MAX(id) FROM chunks)")
    con.commit()
    con.close()
    return seg / "meta.sqlite"


def _sqlite_replaced_by_empty_db(root: Path):
    seg = seg_of(root)
    (seg / "meta.sqlite").unlink()
    sqlite3.connect(seg / "meta.sqlite").close()
    return seg / "meta.sqlite"


def _manifest_edit(**changes):
    def edit(root: Path):
        seg, gen = seg_of(root), root / GEN
        m = json.loads((gen / "manifest.json").read_text())
        for k, v in changes.items():
            if v is None:
                m.pop(k)
            else:
                m[k] = v
        (gen / "manifest.json").write_text(json.dumps(m))
        # counts that disagree with the segments: the manifest is named (it is checked against the segments it
        # lists); a dimension that disagrees: the segment's vectors.npy (its rows are checked before FAISS)
        return seg / "vectors.npy" if "dim" in changes else gen / "manifest.json"
    return edit


def _faiss_fewer_vectors(root: Path):
    import faiss

    seg = seg_of(root)

    index = faiss.read_index(str(seg / "vectors.faiss"))
    index.remove_ids(np.array([index.id_map.at(0)], dtype=np.int64))
    faiss.write_index(index, str(seg / "vectors.faiss"))
    return seg / "vectors.faiss"


def _ids_shuffled(root: Path):
    seg = seg_of(root)
    ids = np.load(seg / "ids.npy")
    np.save(seg / "ids.npy", ids[::-1].copy())
    return seg / "ids.npy"


def _ids_shifted(root: Path):  # a flipped bit in the last id
    seg = seg_of(root)
    ids = np.load(seg / "ids.npy")
    ids[-1] += 1
    np.save(seg / "ids.npy", ids)
    return seg / "ids.npy"


def _vectors_wrong_shape(root: Path):
    seg = seg_of(root)
    v = np.load(seg / "vectors.npy")
    np.save(seg / "vectors.npy", v[:, :-1].copy())
    return seg / "vectors.npy"


def _bm25_doc_out_of_range(root: Path):
    seg = seg_of(root)
    p = seg / "bm25" / "docs.npy"
    docs = np.load(p)
    docs[-1] = 10**6
    np.save(p, docs)
    return p


def _sentvecs_wrong_shape(root: Path):
    seg = seg_of(root)
    v = np.load(seg / "sentvecs.npy")
    np.save(seg / "sentvecs.npy", v[:-1].copy())
    return seg / "sentvecs.npy"


def _sent_ids_reordered(root: Path):
    seg = seg_of(root)
    ids = np.load(seg / "sent_ids.npy")
    np.save(seg / "sent_ids.npy", ids[::-1].copy())
    return seg / "sent_ids.npy"


def _bm25_indptr_scrambled(root: Path):
    seg = seg_of(root)
    p = seg / "bm25" / "indptr.npy"
    ptr = np.load(p)
    ptr[len(ptr) // 2] = -5
    np.save(p, ptr)
    return p


ALTERED = {
    "sqlite: a chunk row deleted": _sqlite_row_deleted,
    "sqlite: replaced by an empty database": _sqlite_replaced_by_empty_db,
    "manifest: article count edited": _manifest_edit(articles=99),
    "manifest: chunk count edited": _manifest_edit(chunks=1),
    "manifest: dimension edited": _manifest_edit(dim=32),
    "manifest: a field removed": _manifest_edit(faiss_kind=None),
    "manifest: wrong type": _manifest_edit(articles="many"),
    "faiss: one vector fewer": _faiss_fewer_vectors,
    "ids.npy: reordered": _ids_shuffled,
    "ids.npy: one id altered": _ids_shifted,
    "vectors.npy: wrong shape": _vectors_wrong_shape,
    "bm25: pointer array scrambled": _bm25_indptr_scrambled,
    "bm25: an entry points past the last chunk": _bm25_doc_out_of_range,
    "sentvecs.npy: one vector fewer": _sentvecs_wrong_shape,
    "sent_ids.npy: reordered": _sent_ids_reordered,
}


@pytest.mark.parametrize("alter", ALTERED.values(), ids=ALTERED.keys())
def test_altered_but_well_formed_file_is_caught(index_dir, alter):
    path = alter(index_dir)
    with pytest.raises(CorruptIndexError) as e:
        Index.open(index_dir)
    assert_clear(e.value, path)


def test_newer_schema_asks_for_a_rebuild(index_dir):
    _manifest_edit(schema_version=99)(index_dir)
    with pytest.raises(IndexMismatchError, match="rag index --rebuild"):
        Index.open(index_dir)


CURRENTS = {
    "empty": b"",
    "whitespace": b" \n\t\n",
    "binary garbage": bytes(range(256)),
    "missing generation": b"gen-999999\n",
    "path traversal": b"../../etc\n",
    "absolute path": b"/etc\n",
    "another file": b"LOCK\n",
    "NUL byte": b"gen-000001\x00\n",
    "name too long": b"g" * 5000,
}


@pytest.mark.parametrize("content", CURRENTS.values(), ids=CURRENTS.keys())
def test_bad_current_pointer(index_dir, content):
    (index_dir / "CURRENT").write_bytes(content)
    with pytest.raises(CorruptIndexError) as e:
        Index.open(index_dir)
    assert "rag index --rebuild" in str(e.value) and "\n" not in str(e.value)
    assert str(index_dir) in str(e.value)


def test_current_is_a_directory(index_dir):
    (index_dir / "CURRENT").unlink()
    (index_dir / "CURRENT").mkdir()
    with pytest.raises(CorruptIndexError) as e:
        Index.open(index_dir)
    assert_clear(e.value, index_dir / "CURRENT")


def test_generation_folder_deleted(index_dir):
    shutil.rmtree(index_dir / GEN)
    with pytest.raises(CorruptIndexError) as e:
        Index.open(index_dir)
    assert_clear(e.value, index_dir / GEN)


def test_segment_folder_deleted(index_dir):
    seg = seg_of(index_dir)
    shutil.rmtree(seg)
    with pytest.raises(CorruptIndexError) as e:
        Index.open(index_dir)
    assert_clear(e.value, seg)


def test_a_folder_without_current_or_generations_says_how_to_build(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(RagError, match=r"not an index \(no CURRENT file\). Build one with `rag index PATH"):
        Index.open(tmp_path / "plain")
    with pytest.raises(RagError, match="no index here yet"):
        Index.open(tmp_path / "nowhere")


# ---------------------------------------------------------------- a lost or misdirected CURRENT (issue #25)

GEN2 = "gen-000002"
QUESTIONS = [QUESTION, "上海明天的温度是多少？", "经济增长了几个百分点？", EN_QUESTION]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (but the lock) with its content: what `nothing was changed` is checked against."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "LOCK"}


@pytest.fixture
def two_generations(index_dir, tmp_path, fake_cli, capsys) -> Path:
    """The corpus's 12 articles in gen-000001, one more added in gen-000002 (13 articles)."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "new.txt").write_text("上海新闻\n\n上海明天晴天，温度二十度。", encoding="utf-8")
    code, out, err = run_cli(capsys, "index", str(extra), "--index", str(index_dir), "--embedder", "fake-64", "-q")
    assert code == 0 and "index holds 13 articles" in out, err
    assert (index_dir / "CURRENT").read_text() == GEN2 + "\n"
    return index_dir


def answers(capsys, d: Path) -> list[dict]:
    out = []
    for q in QUESTIONS:
        code, text, err = run_cli(capsys, "ask", q, "--index", str(d), "--json")
        assert code == 0, err
        out.append(json.loads(text))
    return out


def test_lost_current_is_refused_never_written_over_and_repaired(two_generations, corpus, fake_cli, capsys):
    """Before the fix `rag ask` said "not an index ... Build one", `rag index` started a fresh index and the write
    after that garbage-collected the old generations: 13 articles gone."""
    d = two_generations
    before = answers(capsys, d)
    assert any(c["title"] == "上海新闻" for a in before for c in a["citations"])
    (d / "CURRENT").unlink()
    files = tree(d)
    hint = f"{d}: CURRENT is missing, but the folder holds generations; the newest complete one is {GEN2}. " \
           f"Nothing was changed: run `rag repair --index {d}` to make it current."
    for argv in (["ask", QUESTION], ["status"], ["index", str(corpus), "--embedder", "fake-64", "-q"],
                 ["index", "--rebuild", str(corpus), "--embedder", "fake-64", "-q"]):
        for _ in range(2):  # refused every time: the first refusal changes nothing either
            code, out, err = run_cli(capsys, *argv, "--index", str(d))
            assert (code, out, err) == (2, "", f"error: {hint}\n"), argv
    with pytest.raises(RagError) as e:
        index_paths([corpus], d, FakeEmbedder(), progress=False)
    assert str(e.value) == hint
    assert tree(d) == files  # nothing written, nothing deleted

    code, out, err = run_cli(capsys, "repair", "--index", str(d))
    assert code == 0 and not err, err
    lines = out.splitlines()
    assert lines[0] == f"{d}: CURRENT is missing"
    assert lines[1].startswith(f"{d}: CURRENT now names {GEN2} (13 articles, ") and len(lines) == 2, out
    assert (d / "CURRENT").read_text() == GEN2 + "\n"
    assert answers(capsys, d) == before
    code, out, err = run_cli(capsys, "repair", "--index", str(d))
    assert code == 0 and out == f"{d}: CURRENT names {GEN2}, which opens and passes the checks: nothing to repair\n"
    # and the index takes updates again, keeping what it held
    code, out, err = run_cli(capsys, "index", str(corpus), "--index", str(d), "--embedder", "fake-64", "-q")
    assert code == 0 and "index holds 13 articles" in out, err


def _rm_gen2(d: Path) -> None:
    shutil.rmtree(d / GEN2)


BROKEN_CURRENTS = {
    "its generation deleted": (_rm_gen2, GEN, 12),
    "a file of its segment truncated": (lambda d: truncate(own_seg(d, GEN2, GEN) / "vectors.faiss"), GEN, 12),
    "its manifest emptied": (lambda d: empty(d / GEN2 / "manifest.json"), GEN, 12),
    "its lexicon.npy one row short": (lambda d: _npy_one_row_fewer(own_seg(d, GEN2, GEN) / "lexicon.npy"), GEN, 12),
    "naming a missing generation": (lambda d: (d / "CURRENT").write_text("gen-000009\n"), GEN2, 13),
    "garbage": (lambda d: (d / "CURRENT").write_bytes(b"\x00\xff garbage"), GEN2, 13),
}


@pytest.mark.parametrize("break_it,newest,articles", BROKEN_CURRENTS.values(), ids=BROKEN_CURRENTS.keys())
def test_current_naming_a_broken_generation_points_to_repair(two_generations, corpus, break_it, newest, articles,
                                                            tmp_path, fake_cli, capsys):
    d = two_generations
    break_it(d)
    files = tree(d)
    with pytest.raises(CorruptIndexError) as e:
        Index.open(d)
    hint = f"the newest complete generation is {newest}: run `rag repair --index {d}` to make it current"
    assert hint in str(e.value) and "\n" not in str(e.value)
    for argv in (["ask", QUESTION], ["index", str(corpus), "--embedder", "fake-64", "-q"]):
        code, out, err = run_cli(capsys, *argv, "--index", str(d))
        assert code == 2 and hint in err and err.count("\n") == 1, err
    assert tree(d) == files
    code, out, err = run_cli(capsys, "repair", "--index", str(d))
    assert code == 0, err
    assert f"{d}: CURRENT now names {newest} ({articles} articles, " in out
    idx = Index.open(d)
    assert (idx.generation, len(idx.article_ids())) == (newest, articles)
    idx.close()
    assert run_cli(capsys, "ask", EN_QUESTION, "--index", str(d))[0] == 0
    # the next update builds on the repaired generation and keeps it, not a broken one that happens to be newer
    more = tmp_path / "more"
    more.mkdir()
    (more / "more.txt").write_text("广州新闻\n\n广州今天多云。", encoding="utf-8")
    code, out, err = run_cli(capsys, "index", str(more), "--index", str(d), "--embedder", "fake-64", "-q")
    assert code == 0 and f"index holds {articles + 1} articles" in out, err
    published = (d / "CURRENT").read_text().strip()
    assert sorted(p.name for p in d.glob("gen-*")) == sorted([newest, published])


def test_no_generation_opens_repair_refuses_and_rebuild_recovers(index_dir, corpus, fake_cli, capsys):
    d = index_dir
    seg = seg_of(d)
    (d / "CURRENT").unlink()
    truncate(seg / "vectors.faiss")
    code, _, err = run_cli(capsys, "ask", QUESTION, "--index", str(d))
    assert code == 2 and f"CURRENT is missing and none of its generations ({GEN}) opens" in err
    code, _, err = run_cli(capsys, "index", str(corpus), "--index", str(d), "--embedder", "fake-64", "-q")
    assert code == 2 and "rag index --rebuild" in err
    code, out, err = run_cli(capsys, "repair", "--index", str(d))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"{d}: no generation here opens (CURRENT is missing; {GEN} does not open: {seg / 'vectors.faiss'}: " \
           f"holds " in err and "segment.json says" in err and "rag index --rebuild" in err  # sizes checked first
    assert not (d / "CURRENT").exists()
    # nothing here can be read: a rebuild may replace it
    code, out, err = run_cli(capsys, "index", "--rebuild", str(corpus), "--index", str(d), "--embedder", "fake-64", "-q")
    assert code == 0 and "index holds 12 articles" in out, err


def test_repair_of_a_folder_that_is_no_index(tmp_path, capsys):
    code, _, err = run_cli(capsys, "repair", "--index", str(tmp_path / "nowhere"))
    assert code == 2 and "no such folder" in err and not (tmp_path / "nowhere").exists()
    (tmp_path / "plain").mkdir()
    code, _, err = run_cli(capsys, "repair", "--index", str(tmp_path / "plain"))
    assert code == 2 and "no generation here opens" in err and not (tmp_path / "plain" / "CURRENT").exists()


def test_repair_replaces_an_empty_current_folder(index_dir, fake_cli, capsys):
    (index_dir / "CURRENT").unlink()
    (index_dir / "CURRENT").mkdir()
    code, out, err = run_cli(capsys, "repair", "--index", str(index_dir))
    assert code == 0 and f"{index_dir}: CURRENT is a directory\n" in out, err
    assert Index.open(index_dir).generation == GEN


def test_planted_pickle_is_refused_not_run(index_dir, tmp_path):
    """An index file carrying a pickle that would run code when loaded is reported as corrupt; the code never runs."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    arr = np.empty(len(np.load(seg_of(index_dir) / "ids.npy")), dtype=object)
    arr[0] = Payload()
    for name in ("ids.npy", "vectors.npy", "bm25/lengths.npy"):
        d = tmp_path / name.replace("/", "_")
        shutil.copytree(index_dir, d)
        np.save(seg_of(d) / name, arr, allow_pickle=True)
        with pytest.raises(CorruptIndexError, match="rag index --rebuild"):
            Index.open(d)
        assert not marker.exists()


# ---------------------------------------------------------------- what a user sees


def flip_bytes(path: Path, seed) -> None:
    """16 bytes inverted at a seeded random place."""
    data = bytearray(path.read_bytes())
    at = random.Random(f"{path.name}-{seed}").randrange(len(data))
    for i in range(at, min(len(data), at + 16)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name,question", [(n, QUESTION) for n in FILES] + [(n, EN_QUESTION) for n in LEXICON_FILES])
def test_random_byte_flips_never_crash_the_cli(index_dir, name, question, seed, fake_cli, capsys):
    """Bytes flipped anywhere in a file: `rag ask` answers (a flip in vector or score data is not detectable
    without checksums) or exits 2 with one line; it never dies with a traceback. The lexicon is read by an
    English question only."""
    flip_bytes(where(index_dir, name), seed)
    code, out, err = run_cli(capsys, "ask", question, "--index", str(index_dir))
    assert code in (0, 2), err
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err


@pytest.mark.parametrize("name,damage", [("vectors.faiss", truncate), ("meta.sqlite", overwrite_header),
                                         ("manifest.json", empty), ("vectors.npy", truncate), ("CURRENT", overwrite_header)])
def test_rag_ask_subprocess_exits_2_with_one_line(index_dir, name, damage):
    path = index_dir / name if name == "CURRENT" else where(index_dir, name)
    damage(path)
    p = subprocess.run([sys.executable, "-m", "rag.cli", "ask", QUESTION, "--index", str(index_dir)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "rag index --rebuild" in lines[0] and str(index_dir) in lines[0]


@pytest.mark.parametrize("name,damage", [("vectors.faiss", truncate), ("meta.sqlite", delete),
                                         ("manifest.json", overwrite_header), ("ids.npy", empty),
                                         ("bm25/terms.json", truncate), ("CURRENT", overwrite_header),
                                         (GEN, lambda p: shutil.rmtree(p))])
def test_rebuild_recovers(index_dir, corpus, name, damage, fake_cli, capsys):
    path = index_dir / name if name in ("CURRENT", GEN) else where(index_dir, name)
    damage(path)
    code, _, err = run_cli(capsys, "ask", QUESTION, "--index", str(index_dir))
    assert code == 2 and "rag index --rebuild" in err
    # a plain update refuses to build on a damaged index (and leaves it as it was)
    code, _, err = run_cli(capsys, "index", str(corpus), "--index", str(index_dir), "--embedder", "fake-64", "-q")
    assert code == 2 and "rag index --rebuild" in err
    code, out, err = run_cli(capsys, "index", "--rebuild", str(corpus), "--index", str(index_dir),
                             "--embedder", "fake-64", "-q")
    assert code == 0, err
    assert "index holds 12 articles" in out
    code, out, err = run_cli(capsys, "ask", QUESTION, "--index", str(index_dir))
    assert code == 0 and out.strip() and not err, err  # an answer (or an abstention) again
    assert len(Index.open(index_dir).article_ids()) == 12


# ---------------------------------------------------------------- the cross-lingual lexicon (rag.lang.bridge)
# lexicon.json + lexicon.faiss are read lazily, on the first English question: `Index.open` only checks that they
# exist, so they are not in FILES (a truncated lexicon.faiss opens fine). Damage must surface as a CorruptIndexError
# when `Index.lexicon()` is first called, and `rag ask` with an English question must exit 2 with one line.
# lexicon.npy (float16 copies of the word vectors, read by the next `rag index` update) has its header checked on
# open: a 2-D array of the manifest's dimension with one row per word of lexicon.json (when that parses).



@pytest.mark.parametrize("name", LEXICON_FILES)
def test_missing_lexicon_file_is_caught_at_open(index_dir, name):
    path = seg_of(index_dir) / name
    path.unlink()
    with pytest.raises(CorruptIndexError) as e:
        Index.open(index_dir)
    assert_clear(e.value, path)


@pytest.mark.parametrize("damage", [truncate, empty, overwrite_header], ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", LEXICON_FILES)
def test_damaged_lexicon_is_caught_on_first_use(index_dir, name, damage):
    path = seg_of(index_dir) / name
    damage(path)
    idx = Index.open(index_dir)  # lazy: Chinese questions never read the lexicon
    assert idx.search_lexical(QUESTION, 5)
    with pytest.raises(CorruptIndexError) as e:
        idx.lexicon()
    assert_clear(e.value, path)


def _lexicon_json_edit(words_fn):
    def edit(seg: Path):
        words = json.loads((seg / "lexicon.json").read_text(encoding="utf-8"))
        (seg / "lexicon.json").write_text(json.dumps(words_fn(words), ensure_ascii=False), encoding="utf-8")
        return seg / "lexicon.json"
    return edit


def _lexicon_faiss_from(n_drop: int = 0, dim: int | None = None):
    """lexicon.faiss replaced by a well-formed lexicon index with fewer words or of another dimension."""
    def edit(seg: Path):
        from rag.index.lexicon import Lexicon

        words = json.loads((seg / "lexicon.json").read_text(encoding="utf-8"))
        vecs = np.load(seg / "lexicon.npy").astype(np.float32)
        d = dim or vecs.shape[1]
        other = seg.parents[1] / "other-lexicon"  # beside segments/, in the index folder
        other.mkdir()
        keep = len(words) - n_drop
        Lexicon.save(other, words[:keep], np.resize(vecs[:keep], (keep, d)), d)
        shutil.copy(other / "lexicon.faiss", seg / "lexicon.faiss")
        return seg / "lexicon.faiss"
    return edit


LEXICON_ALTERED = {
    "json: a dict": (_lexicon_json_edit(lambda w: {x: i for i, x in enumerate(w)}), "lexicon.json"),
    "json: numbers": (_lexicon_json_edit(lambda w: list(range(len(w)))), "lexicon.json"),
    "json: a null among the words": (_lexicon_json_edit(lambda w: w[:-1] + [None]), "lexicon.json"),
    "faiss: one vector fewer": (_lexicon_faiss_from(n_drop=1), None),
    "faiss: another dimension": (_lexicon_faiss_from(dim=32), "lexicon.faiss"),
}


@pytest.mark.parametrize("alter,named", LEXICON_ALTERED.values(), ids=LEXICON_ALTERED.keys())
def test_altered_but_well_formed_lexicon_is_caught(index_dir, alter, named):
    seg = seg_of(index_dir)
    alter(seg)
    idx = Index.open(index_dir)
    with pytest.raises(CorruptIndexError) as e:
        idx.lexicon()
    if named:
        assert_clear(e.value, seg / named)
    else:  # words and vectors disagree in number: either file may be the one at fault
        assert any(str(seg / n) in str(e.value) for n in LEXICON_FILES), str(e.value)
        assert_clear(e.value, seg)


@pytest.mark.parametrize("name,damage", [("lexicon.faiss", truncate), ("lexicon.json", empty),
                                         ("lexicon.json", overwrite_header), ("lexicon.faiss", overwrite_header)])
def test_english_ask_subprocess_exits_2_with_one_line(index_dir, name, damage):
    path = seg_of(index_dir) / name
    damage(path)
    # `python -m rag.cli` with the index's "fake-64" embedder resolvable (an English question embeds its words)
    boot = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from conftest import FakeEmbedder; "
            "import rag.models.registry as E; real = E.get_embedder; "
            "E.get_embedder = lambda spec='use', **kw: FakeEmbedder() if spec == 'fake-64' else real(spec, **kw); "
            "from rag.cli import main; sys.exit(main(sys.argv[1:]))")
    p = subprocess.run([sys.executable, "-c", boot, str(Path(__file__).resolve().parents[1]), "ask", EN_QUESTION,
                        "--index", str(index_dir)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "rag index --rebuild" in lines[0] and str(path) in lines[0]


def test_damaged_lexicon_leaves_chinese_questions_working(index_dir, fake_cli, capsys):
    truncate(seg_of(index_dir) / "lexicon.faiss")
    code, out, err = run_cli(capsys, "ask", QUESTION, "--index", str(index_dir))
    assert code == 0 and out.strip() and not err, err


@pytest.mark.parametrize("name,damage", [("lexicon.faiss", truncate), ("lexicon.json", overwrite_header),
                                         ("lexicon.json", delete)])
def test_rebuild_recovers_the_lexicon(index_dir, corpus, name, damage, fake_cli, capsys):
    damage(seg_of(index_dir) / name)
    code, _, err = run_cli(capsys, "ask", EN_QUESTION, "--index", str(index_dir))
    assert code == 2 and "rag index --rebuild" in err and name in err
    code, out, err = run_cli(capsys, "index", "--rebuild", str(corpus), "--index", str(index_dir),
                             "--embedder", "fake-64", "-q")
    assert code == 0, err
    assert "index holds 12 articles" in out
    code, out, err = run_cli(capsys, "ask", EN_QUESTION, "--index", str(index_dir))
    assert code == 0 and out.strip() and not err, err
    idx = Index.open(index_dir)
    assert "北京" in idx.lexicon().words


def _npy_one_row_fewer(p: Path) -> None:
    np.save(p, np.load(p)[:-1])


def _npy_other_dim(p: Path) -> None:
    np.save(p, np.load(p)[:, :-1].copy())


LEXICON_NPY_DAMAGES = {
    "truncated": ("lexicon.npy", truncate),
    "emptied": ("lexicon.npy", empty),
    "header overwritten": ("lexicon.npy", overwrite_header),
    "deleted": ("lexicon.npy", delete),
    "one row fewer": ("lexicon.npy", _npy_one_row_fewer),
    "another dimension": ("lexicon.npy", _npy_other_dim),
    "json: one word fewer": ("lexicon.json", _lexicon_json_edit(lambda w: w[:-1])),
    "json: one word more": ("lexicon.json", _lexicon_json_edit(lambda w: w + ["多余"])),
}


@pytest.mark.parametrize("name,damage", LEXICON_NPY_DAMAGES.values(), ids=LEXICON_NPY_DAMAGES.keys())
def test_lexicon_npy_disagreeing_with_lexicon_json_is_caught_at_open(index_dir, name, damage):
    """Reading only lexicon.npy's header (not its data); before the fix a damaged one went unnoticed until the next
    update. Words and rows disagreeing in number: the vectors file is the one named, the words file quoted."""
    seg = seg_of(index_dir)
    damage(seg / name) if name == "lexicon.npy" else damage(seg)
    with pytest.raises(CorruptIndexError) as e:
        Index.open(index_dir)
    assert_clear(e.value, seg / "lexicon.npy")


@pytest.mark.parametrize("name,damage", [
    pytest.param("lexicon.json", truncate),
    pytest.param("lexicon.npy", delete),
    pytest.param("lexicon.npy", truncate),
    pytest.param("lexicon.npy", _npy_one_row_fewer),
    pytest.param("lexicon.faiss", truncate),
    pytest.param("lexicon.faiss", overwrite_header),
    pytest.param("lexicon.faiss", empty),
], ids=["json-truncated", "npy-deleted", "npy-truncated", "npy-one-row-fewer", "faiss-truncated",
        "faiss-header-overwritten", "faiss-emptied"])
def test_update_on_damaged_lexicon_refuses_clearly(index_dir, corpus, tmp_path, name, damage, fake_cli, capsys):
    """A plain `rag index` that adds an article to an index with a damaged lexicon file: exit 2 with one line that
    names the file and says `rag index --rebuild` (as for the other files, test_rebuild_recovers)."""
    path = seg_of(index_dir) / name
    damage(path)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "new.txt").write_text("上海新闻\n\n上海明天晴天，温度二十度。", encoding="utf-8")
    files = tree(index_dir)
    code, _, err = run_cli(capsys, "index", str(extra), "--index", str(index_dir), "--embedder", "fake-64", "-q")
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "rag index --rebuild" in err and str(path) in err, err
    assert tree(index_dir) == files  # a damaged lexicon.faiss is refused by name, not silently made again
