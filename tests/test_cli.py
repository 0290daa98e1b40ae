"""The `rag` command in-process (`rag.cli.main`, capsys) and once as a real subprocess: index, ask, status."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATED_QUESTIONS, SEEDS, FakeEmbedder

from rag import cli
from rag.index import Index
from rag.models import registry

QUESTION = "布林肯星期二前往哪个国家？"
SEED_TITLE = "布林肯前往危地马拉出席地区移民会议"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])  # an exception escaping here is a traceback a user would see
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def use_index(tmp_path_factory) -> tuple[Path, str]:
    """`rag index seeds --index D` with the default (USE) embedder, run once for this module's read-only tests:
    (D, what the command printed)."""
    root = tmp_path_factory.mktemp("cli") / "use-index"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["index", str(SEEDS), "--index", str(root), "-q"])
    assert code == 0, out.getvalue()
    return root, out.getvalue()


@pytest.fixture
def fake_use(monkeypatch):
    """`rag index` in-process with a FakeEmbedder standing in for the default USE one (for tests not about USE)."""
    import rag.models.registry

    real = rag.models.registry.get_embedder
    monkeypatch.setattr(rag.models.registry, "get_embedder",
                        lambda spec="use", **kw: FakeEmbedder() if spec == "use" else real(spec, **kw))


def test_index_twice_prints_summaries(use_index, capsys):
    d, first = use_index
    assert "articles: 1 added, 0 updated, 0 unchanged, 0 failed, 0 removed" in first
    from rag.ingest import Chunker, load_file

    n = len(Chunker().run(load_file(next(Path(SEEDS).glob("*.txt")))[0]))
    assert n > 1
    assert f"{n} written, {n} embedded (0 from cache)" in first
    assert f"index holds 1 articles / {n} chunks" in first
    code, out, err = run(capsys, "index", SEEDS, "--index", d, "-q")
    assert code == 0, err
    assert "0 added" in out and "1 unchanged" in out
    assert "0 written, 0 embedded" in out
    idx = Index.open(d)
    assert idx.manifest.embedder == "use-m3" and idx.generation == "gen-000001"  # nothing new published
    idx.close()


def test_ask_prints_a_cited_answer(use_index, capsys):
    code, out, err = run(capsys, "ask", QUESTION, "--index", use_index[0])
    assert code == 0, err
    answer, _, sources = out.partition("\n\n")
    assert "危地马拉" in answer and "[1]" in answer
    assert sources.startswith(f"[1] {SEED_TITLE} (2024-05-08) https://www.voachinese.com/"), sources


def test_ask_json(use_index, capsys):
    code, out, err = run(capsys, "ask", QUESTION, "--index", use_index[0], "--json", "-k", "3")
    assert code == 0, err
    data = json.loads(out)
    assert data["question"] == QUESTION
    assert isinstance(data["text"], str) and data["text"]
    assert data["abstained"] is False
    assert data["citations"], data
    assert "passages" not in data
    idx = Index.open(use_index[0])
    for n, c in enumerate(data["citations"], 1):
        assert set(c) >= {"number", "article_id", "title", "url", "published", "passage", "sentence", "start", "end"}
        assert c["number"] == n and f"[{n}]" in data["text"]
        assert c["title"] == SEED_TITLE and c["published"] == "2024-05-08T01:22:03Z"
        assert c["url"].startswith("https://www.voachinese.com/")
        article = idx.article(c["article_id"])
        assert article is not None and article.title == c["title"]
        assert article.text[c["start"] : c["end"]] == c["sentence"]
        assert c["sentence"] in c["passage"] and c["passage"] in article.text
    assert any("危地马拉" in c["sentence"] for c in data["citations"])
    idx.close()


def test_status(seed_index, capsys):
    code, out, err = run(capsys, "status", "--index", seed_index)
    assert code == 0, err
    stats = json.loads(out)
    assert (stats["articles"], stats["embedder"], stats["dim"], stats["generation"]) == (1, "fake-64", 64, "gen-000001")
    assert stats["chunks"] > 0


def test_ask_with_a_fake_embedder_index(seed_index, capsys, monkeypatch):
    # the index names its embedder 'fake-64'; make that name resolvable in this process
    monkeypatch.setitem(registry.SHARED, "fake-64", FakeEmbedder())
    code, out, err = run(capsys, "ask", QUESTION, "--index", seed_index, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["citations"] and data["citations"][0]["title"] == SEED_TITLE


def test_ask_says_when_a_citation_s_date_was_read_from_the_text(dated_index, fake_embedder, capsys, monkeypatch):
    monkeypatch.setitem(registry.SHARED, "fake-64", fake_embedder)
    lines = {}
    for url, q in DATED_QUESTIONS.items():
        code, out, err = run(capsys, "ask", q, "--index", dated_index, "--reader", "none")
        assert code == 0, err
        lines[url] = out.partition("\n\n")[2].splitlines()[0]
        code, out, err = run(capsys, "ask", q, "--index", dated_index, "--reader", "none", "--json")
        assert json.loads(out)["citations"][0]["date_from_text"] is url.endswith("/rate")
    assert lines == {"https://news.example/rate": "[1] 人民币汇率中间价 (2023-07-28, date from text) https://news.example/rate",
                     "https://news.example/panda": "[1] 大熊猫回国 (2023-11-09) https://news.example/panda"}


def test_missing_path_is_reported(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    code, out, err = run(capsys, "index", missing, "--index", tmp_path / "idx", "-q")
    assert code != 0
    assert str(missing) in err and "no such file or directory" in err
    assert "Traceback" not in err
    assert not (tmp_path / "idx" / "CURRENT").exists()


def test_missing_path_next_to_good_ones(tmp_path, capsys, fake_use):
    missing = tmp_path / "gone.txt"
    code, out, err = run(capsys, "index", SEEDS, missing, "--index", tmp_path / "idx", "-q")
    assert code == 1  # the good path was indexed, but the run is not clean
    assert str(missing) in err
    assert "1 added" in out


def test_ask_without_an_index(tmp_path, capsys):
    nowhere = tmp_path / "nowhere"
    code, out, err = run(capsys, "ask", QUESTION, "--index", nowhere)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and str(nowhere) in err and "rag index" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_status_without_an_index(tmp_path, capsys):
    code, out, err = run(capsys, "status", "--index", tmp_path / "nowhere")
    assert code == 2 and "no index here yet" in err


@pytest.mark.parametrize("argv,words", [
    (["ask", "   "], "question is empty"),
    (["ask", QUESTION, "-k", "0"], "k must be a positive integer"),
])
def test_bad_ask_arguments(seed_index, capsys, argv, words, monkeypatch):
    monkeypatch.setitem(registry.SHARED, "fake-64", FakeEmbedder())
    code, out, err = run(capsys, *argv, "--index", seed_index)
    assert code == 2 and words in err and "Traceback" not in err


def test_index_with_another_embedder_is_refused(seed_index, capsys):
    before = (seed_index / "CURRENT").read_text()
    code, out, err = run(capsys, "index", SEEDS, "--index", seed_index, "-q")  # default embedder: USE
    assert code == 2
    assert "'fake-64'" in err and "--rebuild" in err and "Traceback" not in err
    assert (seed_index / "CURRENT").read_text() == before


def test_index_needs_paths(tmp_path, capsys):
    code, out, err = run(capsys, "index", "--index", tmp_path / "idx")
    assert code == 2


def test_rag_index_dir_from_environment(tmp_path, capsys, monkeypatch, seed_index):
    monkeypatch.setenv("RAG_INDEX", str(seed_index))
    code, out, err = run(capsys, "status")
    assert code == 0 and json.loads(out)["embedder"] == "fake-64"


# ---------------------------------------------------------------- the installed console script


def rag_exe() -> str:
    exe = Path(sys.executable).with_name("rag")
    return str(exe) if exe.exists() else (shutil.which("rag") or pytest.skip("no `rag` console script"))


@pytest.mark.slow
def test_console_script_index_ask_status(tmp_path):
    exe = rag_exe()
    d = tmp_path / "idx"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def rag(*argv):
        return subprocess.run([exe, *map(str, argv)], capture_output=True, text=True, timeout=120, env=env,
                              cwd=tmp_path)

    p = rag("index", SEEDS, "--index", d, "-q")
    assert p.returncode == 0, p.stderr
    assert "1 added" in p.stdout and "Traceback" not in p.stderr

    p = rag("ask", QUESTION, "--index", d, "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert not data["abstained"] and data["citations"][0]["title"] == SEED_TITLE

    p = rag("status", "--index", d)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["articles"] == 1

    p = rag("ask", QUESTION, "--index", tmp_path / "nowhere")
    assert p.returncode == 2
    assert "no index here yet" in p.stderr and "Traceback" not in p.stderr


# ---------------------------------------------------------------- ask: bad options, odd questions, closed pipes (#25)


@pytest.fixture
def fake_seed(seed_index, monkeypatch):
    """The seed index, its 'fake-64' embedder resolvable in this process."""
    monkeypatch.setitem(registry.SHARED, "fake-64", FakeEmbedder())
    return seed_index


SHAPE = "it must hold a JSON list of [question, answer] pairs of strings"
HISTORY_FILES = {
    "missing": (None, "no such file"),
    "not JSON": (b'[["a", "b"', "not JSON (line 1 column 11"),
    "not UTF-8": (b"\xff\xfe[]", "not UTF-8 text"),
    "a dict": (b'{"a": "b"}', SHAPE + ' ([] for none), got {"a": "b"}'),
    "a number": (b"5", SHAPE + " ([] for none), got 5"),
    "null": (b"null", "got null"),
    "numbers": (b"[1, 2]", "history[0] must be a [question, answer] pair of strings, got int 1"),
    "a turn of three": (b'[["q", "a"], ["q", "a", "x"]]', "history[1] must be a [question, answer] pair"),
    "a null answer": (b'[["q", null]]', "history[0] answer must be a string, got NoneType"),
}


@pytest.mark.parametrize("content,words", HISTORY_FILES.values(), ids=HISTORY_FILES.keys())
def test_ask_names_a_bad_history_file_and_what_is_wrong(fake_seed, tmp_path, capsys, content, words):
    path = tmp_path / "turns.json"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(capsys, "ask", "他在那里见了谁？", "--index", fake_seed, "--history", path)
    assert code == 2 and out == ""
    assert err.startswith(f"error: --history {path}: ") and words in err, err
    assert "Traceback" not in err and err.count("\n") == 1


def test_ask_with_an_empty_history_file(fake_seed, tmp_path, capsys):
    path = tmp_path / "turns.json"
    path.write_text("[]", encoding="utf-8")
    code, out, err = run(capsys, "ask", QUESTION, "--index", fake_seed, "--history", path, "--json")
    assert code == 0, err
    assert json.loads(out)["citations"][0]["title"] == SEED_TITLE


@pytest.mark.parametrize("argv,expected", [
    (["--from", "2024-06-01", "--to", "2024-05-01"], "error: --from 2024-06-01 is after --to 2024-05-01\n"),
    (["--from", "2024-13-45"], "error: --from must be an ISO date such as 2024-05-01, got '2024-13-45'\n"),
    (["--to", "not a date"], "error: --to must be an ISO date such as 2024-05-01, got 'not a date'\n"),
])
def test_ask_date_errors_name_the_options(fake_seed, capsys, argv, expected):
    code, out, err = run(capsys, "ask", QUESTION, "--index", fake_seed, *argv)
    assert (code, out, err) == (2, "", expected)


@pytest.mark.parametrize("argv,question", [
    (["-5度的天气", "--index", "IDX", "--json"], "-5度的天气"),  # the bare form, first
    (["--index", "IDX", "--json", "-北京今天多少度？"], "-北京今天多少度？"),  # ... and last
    (["-5", "--json", "--index", "IDX"], "-5"),
    (["--index", "IDX", "--json", "--", "-k是什么意思？"], "-k是什么意思？"),  # reads as -k: after "--"
])
def test_ask_takes_a_question_starting_with_a_dash(fake_seed, capsys, argv, question):
    code, out, err = run(capsys, "ask", *(fake_seed if a == "IDX" else a for a in argv))
    assert code == 0, err
    assert json.loads(out)["question"] == question


@pytest.mark.parametrize("argv,words", [
    (["ask", "--json"], "the following arguments are required: question"),
    (["ask", QUESTION, "-5度"], "unrecognized arguments: -5度"),
    (["ask", QUESTION, "--bogus"], "unrecognized arguments: --bogus"),
    (["ask", "-5度", "-3度"], "the following arguments are required: question"),
])
def test_ask_argument_errors_stay_usage_errors(capsys, argv, words):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("usage: rag") and words in err


class ClosedPipe(io.StringIO):
    """A stdout whose reader has gone: every write or flush fails as on a closed pipe."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    flush = write


def test_a_closed_stdout_ends_quietly_in_process(fake_seed, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["status", "--index", str(fake_seed)]) == 141
    assert capsys.readouterr().err == ""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["status", "ask"])
def test_a_reader_that_went_away_gets_no_error(use_index, command):
    """`rag ... | head`: the pipe's read end is closed before rag writes (rag takes a second to start), so the
    write fails with EPIPE; rag exits with 141 (128 + SIGPIPE) and writes nothing to stderr."""
    argv = [rag_exe(), command, "--index", str(use_index[0])]
    if command == "ask":
        argv[2:2] = [QUESTION, "--reader", "none"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141
    assert err == ""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["status", "ask"])
def test_piped_to_head(use_index, command):
    args = 'status --index "$1"' if command == "status" else f'ask "{QUESTION}" --index "$1" --reader none'
    script = f'set -o pipefail; "$0" {args} | head -1; echo "exit $?" >&2'
    p = subprocess.run(["bash", "-c", script, rag_exe(), str(use_index[0])], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    first = p.stdout.splitlines()
    assert len(first) == 1 and (first[0] == "{" if command == "status" else "危地马拉" in first[0]), p.stdout
    assert p.stderr in ("exit 0\n", "exit 141\n"), p.stderr  # 141 when head left before rag wrote
