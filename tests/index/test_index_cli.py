"""The index side of the `rag` command in-process: `index --json`, argument checks, an --index that is a file, paths
holding no article file, `repair` and `remove` (and `rag.index.remove_articles`, which the UI calls)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SEEDS, FakeEmbedder

from rag import cli
from rag.errors import RagError
from rag.index import Index, index_paths, remove_articles
from rag.models import registry

QUESTION = "布林肯星期二前往哪个国家？"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])  # an exception escaping here is a traceback a user would see
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fake_use(monkeypatch):
    """`rag index` with a FakeEmbedder standing in for the default USE one, and `rag ask` resolving 'fake-64'."""
    real = registry.get_embedder
    monkeypatch.setattr(registry, "get_embedder",
                        lambda spec="use", **kw: FakeEmbedder() if spec in ("use", "fake-64") else real(spec, **kw))
    monkeypatch.setitem(registry.SHARED, "fake-64", FakeEmbedder())


def news(i: int) -> dict:
    return {"title": f"第{i}号新闻", "url": f"https://news.example/{i}", "text": f"第{i}篇文章。北京今天下雨了，气温是{i}度。"}


@pytest.fixture
def two_files(tmp_path, fake_embedder) -> tuple[Path, Path, Path]:
    """An index of feed.jsonl (3 articles) and the seed article: (index, feed, seed file)."""
    src = tmp_path / "src"
    src.mkdir()
    feed = src / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(news(i), ensure_ascii=False) for i in range(3)) + "\n", encoding="utf-8")
    root = tmp_path / "idx"
    seed = next(SEEDS.glob("*.txt"))
    assert index_paths([feed, seed], root, fake_embedder, progress=False).total_articles == 4
    return root, feed, seed


def ids_and_titles(root: Path) -> dict[str, str]:
    idx = Index.open(root)
    try:
        return {a: idx.article(a).title for a in idx.article_ids()}
    finally:
        idx.close()


def test_index_json_prints_the_summary_as_one_object(tmp_path, capsys, fake_use):
    bad = tmp_path / "src" / "bad\nname.txt"
    bad.parent.mkdir()
    bad.write_bytes(b"")
    code, out, err = run(capsys, "index", SEEDS, bad.parent, "--index", tmp_path / "idx", "-q", "--json")
    assert code == 0, err
    assert out.count("\n") == 1 and out.isascii()  # one line, whatever the file names hold
    data = json.loads(out)
    assert (data["added"], data["failed"], data["total_articles"], data["generation"]) == (1, 1, 1, "gen-000001")
    assert data["errors"] == [f"{bad}: no text: the file is empty"] and data["notes"] == []
    assert data["chunks"] == data["total_chunks"] > 0 and data["passages_per_second"] >= 0
    assert set(data) >= {"added", "updated", "skipped", "failed", "removed", "embedded", "seconds", "errors", "notes"}


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "-1", "0", "abc"])
def test_max_mb_must_be_a_positive_finite_number(tmp_path, capsys, value):
    """Before the fix `--max-mb inf` gave a traceback (int(inf)) and `--max-mb -1` was accepted."""
    with pytest.raises(SystemExit) as e:
        cli.main(["index", str(SEEDS), "--index", str(tmp_path / "idx"), f"--max-mb={value}"])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert f"argument --max-mb: must be a positive number of megabytes, not '{value}'" in err
    assert "Traceback" not in err and not (tmp_path / "idx").exists()


@pytest.mark.parametrize("argv", [["index", SEEDS], ["ask", QUESTION], ["status"], ["repair"], ["remove", "x"]],
                         ids=["index", "ask", "status", "repair", "remove"])
def test_an_index_path_that_is_a_file(tmp_path, capsys, argv, fake_use):
    """Before the fix: `[Errno 17] File exists` (index) and "Rebuild it" (status)."""
    f = tmp_path / "notes.txt"
    f.write_text("不是索引", encoding="utf-8")
    code, out, err = run(capsys, *argv, "--index", f)
    assert (code, out, err) == (2, "", f"error: --index {f} is a file, not an index folder\n")
    assert f.read_text(encoding="utf-8") == "不是索引"


def test_an_index_path_from_the_environment_that_is_a_file(tmp_path, capsys, monkeypatch):
    f = tmp_path / "notes.txt"
    f.write_text("x")
    monkeypatch.setenv("RAG_INDEX", str(f))
    code, out, err = run(capsys, "status")
    assert code == 2 and f"{f} ($RAG_INDEX or the default index folder) is a file, not an index folder" in err


def test_paths_holding_no_article_file_exit_1_and_create_nothing(tmp_path, capsys, fake_use):
    """Before the fix an empty folder silently made an empty index."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "pdfs").mkdir()
    (tmp_path / "pdfs" / "a.pdf").write_bytes(b"%PDF-1.4")
    code, out, err = run(capsys, "index", tmp_path / "empty", tmp_path / "pdfs", "--index", tmp_path / "idx", "-q")
    assert (code, out) == (1, "")
    assert err == f"error: no article files found under {tmp_path / 'empty'}, {tmp_path / 'pdfs'}: nothing indexed\n"
    assert not (tmp_path / "idx").exists()


def test_remove_by_id_and_by_file_path(two_files, capsys, monkeypatch):
    root, feed, seed = two_files
    before = ids_and_titles(root)
    seed_id = next(a for a, t in before.items() if t.startswith("布林肯"))
    feed_ids = sorted(a for a in before if a != seed_id)
    monkeypatch.chdir(feed.parent)  # a path relative to here, as `rag index` was given one
    code, out, err = run(capsys, "remove", seed_id, "feed.jsonl", "--index", root)
    assert code == 0 and not err, err
    lines = out.splitlines()
    assert lines[0] == f"removed {seed_id} {before[seed_id]}"
    assert sorted(lines[1:4]) == sorted(f"removed {a} {before[a]}" for a in feed_ids)
    assert lines[4:] == ["index holds 0 articles (gen-000002)"]
    assert ids_and_titles(root) == {}
    assert sorted(p.name for p in root.glob("gen-*")) == ["gen-000001", "gen-000002"]  # one new generation


def test_remove_reports_unknown_items_and_exits_1(two_files, capsys, fake_use):
    root, feed, seed = two_files
    before = ids_and_titles(root)
    (aid,) = [a for a, t in before.items() if t == "第1号新闻"]
    code, out, err = run(capsys, "remove", "0123456789abcdef", aid, root.parent / "nowhere.txt", "--index", root)
    assert code == 1
    assert out == f"removed {aid} 第1号新闻\nindex holds 3 articles (gen-000002)\n"
    assert err == ("error: 0123456789abcdef: no article has this id and no indexed file has this path\n"
                   f"error: {root.parent / 'nowhere.txt'}: no article has this id and no indexed file has this path\n")
    assert set(ids_and_titles(root)) == set(before) - {aid}
    # the removed article no longer answers; the others still do
    code, out, err = run(capsys, "ask", "第1篇文章的气温是多少？", "--index", root, "--json")
    assert code == 0 and all(c["article_id"] != aid for c in json.loads(out)["citations"])
    # nothing known at all: no new generation
    code, out, err = run(capsys, "remove", "nope", "--index", root)
    assert (code, out) == (1, "") and Index.open(root).generation == "gen-000002"


def test_remove_articles_for_the_ui(two_files):
    root, feed, seed = two_files
    before = ids_and_titles(root)
    removed, unknown = remove_articles(root, [str(seed), "missing-id", str(seed)])
    assert [before[a] for a in removed] == ["布林肯前往危地马拉出席地区移民会议"] and unknown == ["missing-id"]
    assert set(ids_and_titles(root)) == set(before) - set(removed)
    # a file indexed again after its articles were removed comes back whole
    s = index_paths([feed, seed], root, FakeEmbedder(), progress=False)
    assert (s.added, s.skipped, s.total_articles) == (1, 3, 4)


def test_remove_without_an_index_creates_nothing(tmp_path, capsys):
    with pytest.raises(RagError, match="no index here yet"):
        remove_articles(tmp_path / "nowhere", ["x"])
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "plain").mkdir()
    code, out, err = run(capsys, "remove", "x", "--index", tmp_path / "plain")
    assert code == 2 and "not an index (no CURRENT file)" in err
    assert [p.name for p in (tmp_path / "plain").iterdir()] == []


def test_a_missing_path_with_control_characters_is_one_escaped_line(tmp_path, capsys, fake_use):
    ghost = tmp_path / "gone\nerror: forged"
    code, out, err = run(capsys, "index", ghost, "--index", tmp_path / "idx", "-q")
    assert code == 2 and err == f"error: {tmp_path}/gone\\nerror: forged: no such file or directory\n"


def test_removing_a_file_keeps_an_article_another_file_also_holds(tmp_path, fake_embedder):
    import json as _json

    from rag.index import Index, index_paths, remove_articles

    art = {"title": "共同新闻", "url": "https://n.example/shared", "text": "两份文件都收录了这篇新闻。"}
    a, b = tmp_path / "a" / "a.jsonl", tmp_path / "b" / "b.jsonl"
    for p in (a, b):
        p.parent.mkdir()
        p.write_text(_json.dumps(art, ensure_ascii=False) + "\n", encoding="utf-8")
    root = tmp_path / "idx"
    index_paths([a, b], root, fake_embedder, progress=False)
    removed, unknown = remove_articles(root, [str(a)])
    assert removed == [] and unknown == []  # b still holds it
    idx = Index.open(root)
    assert len(idx.article_ids()) == 1
    idx.close()
    removed, _ = remove_articles(root, [str(b)])
    assert len(removed) == 1
    idx = Index.open(root)
    assert idx.article_ids() == []
    idx.close()
