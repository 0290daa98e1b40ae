"""The served app, as a client sees it (tests/helpers/serve_worker.py: the app with the fake embedder, launched as
`rag serve` launches it): a damaged index, uploads sent the way the browser sends them, removing one, Gradio's
upload cache, and the app without uploads."""
from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import HELPERS, SEEDS, FakeEmbedder

from eval.load_hostile import EventSession, free_port
from rag.index import Index, index_paths
from rag.ui.render import t

pytest.importorskip("gradio_client")

SURROGATE = ('{"title": "北京新闻", "text": "北京今天下雨了。"}\n'
             '{"title": "坏\\ud800", "text": "坏的\\ud800文本。"}\n')


@contextlib.contextmanager
def served(index_dir: Path, log_path: Path, *extra: str, env: dict | None = None):
    """serve_worker.py on a free loopback port; yields its URL; ends its process group afterwards."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
           "NO_PROXY": "127.0.0.1,localhost", **(env or {})}
    log = open(log_path, "w", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(HELPERS / "serve_worker.py"), str(index_dir), str(port), *extra],
                            stdout=subprocess.PIPE, stderr=log, text=True, env=env, start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"the server exited: {log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the server did not start: {log_path.read_text()[-3000:]}"
            with contextlib.suppress(queue.Empty):
                if lines.get(timeout=1).startswith("ready "):
                    break
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def component_value(session: EventSession, elem_id: str):
    return next(c["props"].get("value") for c in session.config["components"]
                if c.get("props", {}).get("elem_id") == elem_id)


def test_a_damaged_index_shows_no_path_or_library_text(tmp_path):
    root = tmp_path / "index"
    index_paths([SEEDS], root, FakeEmbedder(), progress=False)
    gen = (root / "CURRENT").read_text().strip()
    faiss = root / "segments" / json.loads((root / gen / "manifest.json").read_text())["segments"][0]["name"] \
        / "vectors.faiss"  # the one segment of a freshly built index
    faiss.write_bytes(b"\x00garbage" * 10)
    log_path = tmp_path / "server.log"
    with served(root, log_path) as url:
        from gradio_client import Client
        from gradio_client.exceptions import AppError

        client = Client(url, verbose=False, download_files=False)
        with pytest.raises(AppError) as e:
            client.predict("布林肯星期二前往哪个国家？", 5, "", "", api_name="/ask")
        session = EventSession(url)
        status = component_value(session, "rag-status")
        fn, trigger = session.event("rag-send", "click")
        ok, out = session.call(fn, trigger, ["布林肯星期二前往哪个国家？", [], 5, "", "", "English"])
        session.close()
    assert str(e.value) == t("en", "status_damaged")
    assert t("zh", "status_damaged") in status and t("zh", "status_missing") not in status
    assert ok
    reply = json.dumps(out["data"][0][-1], ensure_ascii=False)
    assert "rag index \\\\-\\\\-rebuild" in reply and "damaged" in reply
    for shown in (str(e.value), status, reply):
        assert str(tmp_path) not in shown and "FAISS" not in shown and "faiss" not in shown
    log = log_path.read_text()  # the operator's log has the details
    assert str(faiss) in log and "truncated" in log  # its size disagrees with segment.json


def test_uploads_through_the_server(tmp_path):
    """Upload a valid file, a JSONL with a bad line and a PDF as the browser does; the valid articles are indexed,
    each problem is reported, Gradio's cached copies are deleted; then remove the upload again."""
    root = tmp_path / "index"
    index_paths([SEEDS], root, FakeEmbedder(), progress=False)
    temp = tmp_path / "gradio-temp"
    client_files = tmp_path / "client"
    client_files.mkdir()
    (client_files / "shanghai.txt").write_text("上海天气\n\n上海今天晴，气温是二十五度。\n", encoding="utf-8")
    (client_files / "feed.jsonl").write_text(SURROGATE, encoding="utf-8")
    (client_files / "notes.pdf").write_bytes(b"%PDF-1.4")
    with served(root, tmp_path / "server.log", env={"GRADIO_TEMP_DIR": str(temp)}) as url:
        s = EventSession(url)
        paths = s.upload([client_files / n for n in ("shanghai.txt", "feed.jsonl", "notes.pdf")])
        assert all(Path(p).is_relative_to(temp) for p in paths)
        fn, trigger = s.event("rag-upload", "upload")
        files = [{"path": p, "orig_name": Path(p).name, "meta": {"_type": "gradio.FileData"}} for p in paths]
        ok, out = s.call(fn, trigger, [files, "English"])
        assert ok, out
        first = out["data"][0]
        assert "notes.pdf" in first and "unsupported file type .pdf" in first
        assert first.count("waiting to be indexed") + first.count("indexing in the background") == 2
        # the timer's tick re-renders the rows (kept in the page's session) until the indexer is done
        tick = next(d["id"] for d in s.config["dependencies"] if d.get("api_name") == "tick_uploads")
        timer = next(d["targets"][0][0] for d in s.config["dependencies"] if d.get("api_name") == "tick_uploads")
        deadline = time.monotonic() + 120
        while True:
            ok, out = s.call(tick, timer, ["English", None, None])
            rows = out["data"][2]
            if "indexed: 1 articles" in rows and rows.count("indexed:") == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert rows.count("indexed: 1 articles") == 2, rows  # shanghai.txt, and feed.jsonl without its bad line
        assert "1 unreadable lines (line 2: " in rows
        status = out["data"][0]
        assert "Index: 3 articles" in status
        choices = [c[0] if isinstance(c, list) else c for c in out["data"][3].get("choices", [])]
        assert sorted(choices) == ["feed.jsonl", "shanghai.txt"]
        # Gradio's upload cache holds none of the three files any more
        assert not [p for p in temp.rglob("*") if p.is_file()], list(temp.rglob("*"))
        # remove one upload again
        remove, remove_trigger = s.event("rag-remove", "click")
        ok, out = s.call(remove, remove_trigger, ["shanghai.txt", "English"])
        assert ok and "removing from the index" in out["data"][0]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ok, out = s.call(tick, timer, ["English", None, None])
            if "removed from the index" in out["data"][2]:
                break
            time.sleep(0.5)
        assert "removed from the index" in out["data"][2]
        # a name that is not an upload is refused (by the dropdown's choices; the handler checks again)
        ok, out = s.call(remove, remove_trigger, ["../CURRENT", "English"])
        assert not ok or t("en", "remove_pick") in out["data"][0]
        s.close()
    idx = Index.open(root)
    titles = {idx.article(a).title for a in idx.article_ids()}
    idx.close()
    assert "上海天气" not in titles and "北京新闻" in titles
    assert sorted(p.name for p in (root / "uploads").iterdir()) == [".indexed.json", "feed.jsonl"]
    assert (root / "CURRENT").exists()


def test_uploads_off_has_no_upload_panel_or_event(tmp_path):
    root = tmp_path / "index"
    index_paths([SEEDS], root, FakeEmbedder(), progress=False)
    with served(root, tmp_path / "server.log", "--uploads", "off") as url:
        s = EventSession(url)
        ids = {c.get("props", {}).get("elem_id") for c in s.config["components"]}
        names = {d.get("api_name") for d in s.config["dependencies"]}
        s.close()
    assert "rag-question" in ids and not {"rag-upload", "rag-uploaded", "rag-remove"} & ids
    assert not {"on_upload", "on_remove"} & names
