"""Readers and writers at once: 16 threads ask() while another process publishes new generations; one writer at a time;
the readers (e5 and the re-reader) under 4 threads answer as they do one at a time."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import FakeEmbedder

from rag.answer import AnswerConfig, Reach
from rag.errors import IndexLockedError
from rag.index import Index, WriteLock, index_paths
from rag.pipeline import ask
from rag.retrieve import Searcher

WORKER = Path(__file__).resolve().parents[1] / "helpers" / "index_worker.py"
THREADS = 16
# generation swaps are what is tested here: the ranker alone keeps 16 threads x 33 questions to seconds (the readers'
# own concurrency is tested below with 4 threads)
NO_READER = AnswerConfig(reader="none")
BATCHES = 6
PER_BATCH = 5
CITIES = ["北京", "上海", "广州", "深圳", "成都", "武汉", "西安", "南京"]
QUESTIONS = [f"{c}今天的气温是多少度？" for c in CITIES] + ["经济增长了多少个百分点？", "Which city had rain today?",
                                                         "地铁新线路什么时候开通？"]


def article(i: int) -> dict:
    city = CITIES[i % len(CITIES)]
    return {"title": f"{city}新闻第{i}号", "url": f"https://news.example/{i}", "published": f"2024-05-{i % 28 + 1:02d}",
            "text": f"{city}今天下雨了，气温是{i}度。\n\n{city}的经济增长了{i % 9 + 1}个百分点，专家表示乐观。"
                    f"\n\n{city}地铁{i}号线将于明年开通。"}


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in items), encoding="utf-8")
    return path


def test_16_readers_while_another_process_publishes(tmp_path):
    index_dir = tmp_path / "idx"
    index_paths([write_jsonl(tmp_path / "base" / "base.jsonl", [article(i) for i in range(10)])], index_dir,
                FakeEmbedder(), progress=False)
    batches = [write_jsonl(tmp_path / f"b{b}" / "news.jsonl",
                           [article(10 + b * PER_BATCH + j) for j in range(PER_BATCH)]) for b in range(BATCHES)]
    s = Searcher(index_dir, FakeEmbedder())  # one shared searcher, as the UI has
    for q in QUESTIONS:  # loads the dictionary and lexicon first: readers stuck loading them would miss the swaps
        ask(q, s, config=NO_READER)
    errors: list[BaseException] = []
    answers: list[tuple[str, object]] = []
    gens_seen: set[str] = set()
    stop = threading.Event()
    mu = threading.Lock()

    def reader(n: int):
        i = n
        try:
            while not stop.is_set() or i < n + 3 * len(QUESTIONS):
                q = QUESTIONS[i % len(QUESTIONS)]
                a = ask(q, s, k=3 + i % 3, config=NO_READER)
                with mu:
                    answers.append((q, a))
                    gens_seen.add(s.index.generation)
                i += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            with mu:
                errors.append(e)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    writer = subprocess.run([sys.executable, str(WORKER), str(index_dir), *map(str, batches), "--separately",
                             "--pause", "0.1"], capture_output=True, text=True, timeout=300)
    time.sleep(0.3)  # let the readers see the last generation too
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert writer.returncode == 0, writer.stderr
    assert writer.stdout.count("done gen-") == BATCHES
    assert not errors, f"{len(errors)} reader errors, first: {errors[0]!r}"

    final = Index.open(index_dir)
    texts = {aid: final.article(aid).text for aid in final.article_ids()}
    assert len(texts) == 10 + BATCHES * PER_BATCH
    cited = 0
    for q, a in answers:
        assert a.abstained or a.citations, q
        for c in a.citations:
            # the article exists and the quote is exactly its text at the cited span
            assert c.article_id in texts, (q, c)
            assert texts[c.article_id][c.start : c.end] == c.sentence, (q, c)
            assert c.sentence in c.passage
            cited += 1
        for p in a.passages:
            assert texts[p.article_id][p.start : p.end] == p.text
    final.close()
    print(f"{len(answers)} answers, {cited} citations checked, generations seen by readers: {sorted(gens_seen)}")
    assert len(answers) >= THREADS * 3 * len(QUESTIONS)
    assert len(gens_seen) >= 3, gens_seen  # the readers really did run across several published generations


def test_second_writer_fails_clearly_while_the_first_holds_the_lock(tmp_path):
    index_dir = tmp_path / "idx"
    corpus = write_jsonl(tmp_path / "c" / "news.jsonl", [article(i) for i in range(3)])
    with WriteLock(index_dir):
        p = subprocess.run([sys.executable, str(WORKER), str(index_dir), str(corpus)], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 2
        assert "IndexLockedError" in p.stderr and "another `rag index` is writing" in p.stderr
        assert "Traceback" not in p.stderr
        with pytest.raises(IndexLockedError, match="--wait"):
            index_paths([corpus], index_dir, FakeEmbedder(), progress=False)
    assert not (index_dir / "CURRENT").exists()  # nothing was written by the refused writers


def test_rag_index_cli_refuses_while_locked(tmp_path, seed_file):
    index_dir = tmp_path / "idx"
    with WriteLock(index_dir):
        p = subprocess.run([sys.executable, "-m", "rag.cli", "index", str(seed_file), "--index", str(index_dir), "-q"],
                           capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("error: ") and "--wait" in p.stderr


def test_second_writer_waits_with_wait(tmp_path):
    index_dir = tmp_path / "idx"
    corpus = write_jsonl(tmp_path / "c" / "news.jsonl", [article(i) for i in range(3)])
    lock = WriteLock(index_dir).__enter__()
    p = subprocess.Popen([sys.executable, str(WORKER), str(index_dir), str(corpus), "--wait", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    assert p.poll() is None  # still waiting for the lock
    lock.__exit__(None, None, None)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "done gen-000001 3" in out


def test_two_indexers_at_once_never_corrupt_the_index(tmp_path):
    """Two processes add different articles to one index at the same time (with --wait): both land, in turn."""
    index_dir = tmp_path / "idx"
    a = write_jsonl(tmp_path / "a" / "news.jsonl", [article(i) for i in range(0, 8)])
    b = write_jsonl(tmp_path / "b" / "news.jsonl", [article(i) for i in range(8, 16)])
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(index_dir), str(c), "--wait", "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in (a, b)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    idx = Index.open(index_dir)
    assert len(idx.article_ids()) == 16
    assert idx.generation == "gen-000002"
    idx.close()


def test_4_threads_with_the_readers_answer_as_one_does(tmp_path):
    """e5 (the reader) and the re-reader shared by 4 threads: every answer is what a lone caller gets."""
    index_dir = tmp_path / "idx"
    index_paths([write_jsonl(tmp_path / "base" / "base.jsonl", [article(i) for i in range(12)])], index_dir,
                FakeEmbedder(), progress=False)
    s = Searcher(index_dir, FakeEmbedder())
    wide = AnswerConfig(reach_zh=Reach(5, float("inf"), float("inf")))  # every question re-read
    serial = {q: ask(q, s, config=wide) for q in QUESTIONS}
    got: dict[int, list] = {}
    errors: list[BaseException] = []

    def caller(n: int):
        try:
            got[n] = [(q, ask(q, s, config=wide)) for q in QUESTIONS[n:] + QUESTIONS[:n]]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, repr(errors[0])
    assert sorted(got) == [0, 1, 2, 3]
    for answers in got.values():
        for q, a in answers:
            assert (a.text, a.citations) == (serial[q].text, serial[q].citations), q

