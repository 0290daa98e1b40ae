"""The UI's pure parts (no browser, no server): HTML builders, escaping, upload names, dates, chat history."""
from __future__ import annotations

import re

import pytest

from rag.types import Answer, Citation
from rag.ui.app import LAUNCH_OPTIONS, build_app, resolve_address, resolve_uploads
from rag.ui.inputs import (
    MAX_CHAT_MESSAGES,
    MAX_MESSAGE_CHARS,
    MAX_QUESTION_CHARS,
    InputError,
    history_pairs,
    parse_dates,
    parse_k,
    parse_question,
    trim_chat,
)
from rag.ui.render import TEXT, from_display, highlight, lang_code, render_sources, safe_url, t, to_display, upload_html
from rag.ui.uploads import (
    MAX_UPLOAD_BYTES,
    UploadRejected,
    check_upload,
    discard_temp,
    receive_upload,
    safe_filename,
    store_upload,
)

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="alert(1)">'


def _answer(title=IMG + " 标题", url="https://example.com/a?x=1&y=<2>", passage=None, sentence=None,
            published="2024-05-08T01:22:03Z") -> Answer:
    sentence = sentence or f"他说{SCRIPT}这是测试。"
    passage = passage if passage is not None else f"第一句。\n\n{sentence}\n\n最后一句{IMG}。"
    c = Citation(1, "abc", title, url, published, passage, sentence, 5, 5 + len(sentence))
    return Answer("问题？", f"{sentence} [1]", False, (c,), "zh")


def test_sources_escape_payloads():
    out = render_sources(_answer(), "zh")
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in out
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in out
    assert out.count("<details") == 1 and "<summary>" in out
    assert '<span class="rag-num">[1]</span>' in out
    assert "2024-05-08" in out
    # the link: escaped attribute value, safe rel/target
    assert 'href="https://example.com/a?x=1&amp;y=&lt;2&gt;"' in out
    assert 'rel="noopener noreferrer" target="_blank"' in out


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)", "//evil.example/x", "/relative/path", "http://", "https://ex ample.com/",
    "https://example.com/\x00", "java\tscript:alert(1)", "file:///etc/passwd", "", None,
])
def test_unsafe_urls_are_not_linked(url):
    assert safe_url(url) is None
    out = render_sources(_answer(url=url), "en")
    assert "<a " not in out and "href" not in out
    assert "no usable link" in out


@pytest.mark.parametrize("url", ["http://example.com", "https://www.voachinese.com/a/x/7602355.html"])
def test_plain_http_urls_are_linked(url):
    assert safe_url(url) == url
    out = render_sources(_answer(url=url), "en")
    assert f'<a href="{url}" rel="noopener noreferrer" target="_blank">' in out


def test_highlight_marks_the_cited_sentence():
    passage = "甲。<b>乙</b>说了话。丙。"
    out = highlight(passage, "<b>乙</b>说了话。")
    assert out == "甲。<mark>&lt;b&gt;乙&lt;/b&gt;说了话。</mark>丙。"
    assert out.count("<mark>") == 1
    # the first occurrence only; a sentence not in the passage: escaped passage, no mark
    assert highlight("A. B. A.", "A.") == "<mark>A.</mark> B. A."
    assert highlight("x<y", "zzz") == "x&lt;y"
    assert highlight("x<y", "") == "x&lt;y"


def test_sources_highlight_in_panel_and_empty_states():
    out = render_sources(_answer(), "zh")
    m = re.search(r"<mark>(.*?)</mark>", out)
    assert m and m.group(1) == "他说&lt;script&gt;window.__xss=1&lt;/script&gt;这是测试。"
    assert "暂无来源" in render_sources(None, "zh")
    assert "No sources yet" in render_sources(None, "en")
    abstained = Answer("q", "I could not find...", True, (), "en")
    assert "no sources" in render_sources(abstained, "en")
    # the dict form (as kept in gr.State) renders the same as the Answer
    a = _answer()
    assert render_sources(a.to_dict(), "zh") == render_sources(a, "zh")


def test_unknown_date_is_labelled():
    out = render_sources(_answer(published=""), "en")
    assert "date unknown" in out


def test_chat_text_is_escaped_for_html_and_markdown():
    for payload in (SCRIPT, IMG, "[click](javascript:alert(1))", "![x](http://e/x.png)", "**bold** $x$ `c`",
                    "<a href='javascript:alert(1)'>a</a>", "a\\b &amp; &lt;"):
        shown = to_display(payload)
        assert "<" not in shown and ">" not in shown
        assert "](" not in shown  # no Markdown link/image can form
        assert from_display(shown) == payload
    assert to_display("答案 [1]") == "答案 \\[1\\]"


@pytest.mark.parametrize("name, expected", [
    ("news.txt", "news.txt"),
    ("新闻 报道.MD", "新闻_报道.md"),
    ("C:\\Users\\me\\report.html", "report.html"),
    ("dir/sub/feed.jsonl", "feed.jsonl"),
    (".hidden.txt", "hidden.txt"),
    ("a<b>c.txt", "a_b_c.txt"),
    ("x" * 300 + ".txt", "x" * 100 + ".txt"),
])
def test_safe_filename_accepts_and_cleans(name, expected):
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name, key", [
    ("../../etc/passwd", "rej_name"),
    ("../../etc/evil.txt", "rej_name"),
    ("..\\..\\evil.txt", "rej_name"),
    ("..", "rej_name"),
    ("evil\x00.txt", "rej_name"),
    ("evil.txt\x00.png", "rej_name"),
    ("bad\nname.txt", "rej_name"),
    ("bad\x1b[31m.txt", "rej_name"),
    ("rtl\u202etxt.exe", "rej_name"),
    ("", "rej_name"),
    ("   ", "rej_name"),
    (".txt", "rej_type"),  # a hidden file named "txt", no suffix
    ("photo.png", "rej_type"),
    ("script.js", "rej_type"),
    ("page.htm.exe", "rej_type"),
    ("noext", "rej_type"),
    ("archive.tar.gz", "rej_type"),
])
def test_safe_filename_rejects(name, key):
    with pytest.raises(UploadRejected) as e:
        safe_filename(name)
    assert e.value.key == key
    assert e.value.message("zh") and e.value.message("en")


def test_check_upload_size_and_empty(tmp_path):
    ok = tmp_path / "ok.txt"
    ok.write_text("标题\n\n正文。", encoding="utf-8")
    with pytest.raises(UploadRejected):
        check_upload(ok, "../x/ok.TXT")
    assert check_upload(ok, "ok.TXT") == "ok.txt"
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (MAX_UPLOAD_BYTES + 1))
    with pytest.raises(UploadRejected) as e:
        check_upload(big)
    assert e.value.key == "rej_size" and "5 MB" in e.value.message("en")
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    with pytest.raises(UploadRejected) as e:
        check_upload(empty)
    assert e.value.key == "rej_empty"
    wrong = tmp_path / "x.pdf"
    wrong.write_bytes(b"%PDF")
    with pytest.raises(UploadRejected) as e:
        check_upload(wrong)
    assert e.value.key == "rej_type" and ".pdf" in e.value.message("zh")


def test_store_upload_stays_inside_and_keeps_both_versions(tmp_path):
    uploads = tmp_path / "idx" / "uploads"
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("A", encoding="utf-8")
    b.write_text("B", encoding="utf-8")
    d1 = store_upload(a, "news.txt", uploads)
    d2 = store_upload(a, "news.txt", uploads)  # same bytes: same file
    d3 = store_upload(b, "news.txt", uploads)  # different bytes: kept apart
    assert d1 == d2 == uploads / "news.txt"
    assert d3 != d1 and d3.parent == uploads and d3.suffix == ".txt"
    assert d1.read_text() == "A" and d3.read_text() == "B"
    assert sorted(p.name for p in uploads.iterdir() if not p.name.startswith(".")) == sorted([d1.name, d3.name])


def test_upload_messages_escape_client_names():
    out = upload_html([(False, "<img src=x onerror=alert(1)>.txt", "bad")], [])
    assert "<img" not in out and "&lt;img" in out


def test_parse_dates():
    assert parse_dates("", None) == (None, None)
    assert parse_dates(" 2024-05-01 ", "2024-05-31") == ("2024-05-01", "2024-05-31")
    for bad in ("2024-5-1", "2024-02-30", "yesterday", "2024/05/01", "2024-05-01T00:00", "<script>"):
        with pytest.raises(InputError) as e:
            parse_dates(bad, "", "en")
        assert "YYYY-MM-DD" in str(e.value)
    with pytest.raises(InputError) as e:
        parse_dates("2024-06-01", "2024-05-01", "zh")
    assert "晚于" in str(e.value)


def test_parse_k():
    assert parse_k(3) == 3 and parse_k(3.0) == 3 and parse_k("10") == 10
    for bad in (0, 11, 2.5, "x", None):
        with pytest.raises(InputError):
            parse_k(bad)


def test_history_pairs_from_chatbot_messages():
    q1, a1 = "布林肯星期二前往哪个国家？", "华盛顿 — 布林肯星期二前往危地马拉。 [1]"
    q2 = "他见了谁？<b>"
    messages = [
        {"role": "user", "content": to_display(q1)},
        {"role": "assistant", "content": to_display(a1)},
        # the normalised form Gradio 6 hands back to handlers: a list of content blocks
        {"role": "user", "content": [{"type": "text", "text": to_display(q2)}]},
        {"role": "assistant", "content": [{"type": "text", "text": to_display("答案 [2]")}],
         "metadata": None, "options": None},
        {"role": "user", "content": "没有回答的问题"},
    ]
    assert history_pairs(messages) == [(q1, a1), (q2, "答案 [2]")]
    assert history_pairs([]) == [] and history_pairs(None) == []
    # consecutive user messages: the first gets an empty answer; file blocks are ignored
    msgs = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
            {"role": "assistant", "content": [{"type": "file", "file": {"path": "/x"}}, {"type": "text", "text": "c"}]}]
    assert history_pairs(msgs) == [("a", ""), ("b", "c")]


def test_language_tables_match():
    assert set(TEXT["zh"]) == set(TEXT["en"])
    assert lang_code("English") == "en" and lang_code("中文") == "zh" and lang_code(None) == "zh"


def test_resolve_address(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    assert resolve_address() == ("127.0.0.1", 7860)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    assert resolve_address() == ("0.0.0.0", 8123)
    assert resolve_address("localhost", 9000) == ("localhost", 9000)
    with pytest.raises(ValueError):
        resolve_address(port="http")


def test_build_app_wires_the_api(tmp_path, fake_embedder):
    """build_app on an existing (fake-embedded) index: the named API endpoint exists and answers."""
    from conftest import SEEDS

    from rag.index import index_paths
    from rag.retrieve import searcher

    idx = tmp_path / "idx"
    index_paths([SEEDS], idx, fake_embedder, progress=False)
    searcher(str(idx), fake_embedder)  # the cached searcher for this path uses the fake embedder
    demo = build_app(idx, bootstrap=False)
    names = [d.api_name for d in demo.fns.values()]
    assert "ask" in names
    assert demo.rag_jobs.ready.is_set()
    status = demo.rag_jobs.status("en")
    assert "1 articles" in status and "fake-64" in status


def test_parse_question():
    assert parse_question("  布林肯去了哪里？ ") == "布林肯去了哪里？"
    assert parse_question("问" * MAX_QUESTION_CHARS) == "问" * MAX_QUESTION_CHARS
    for empty in ("", "   ", None, 42, "\u200b\u200b"):  # a zero-width-only question cleans to nothing
        with pytest.raises(InputError, match="empty"):
            parse_question(empty, "en")
    with pytest.raises(InputError) as e:
        parse_question("问" * (MAX_QUESTION_CHARS + 1), "en")
    assert f"{MAX_QUESTION_CHARS + 1} characters" in str(e.value) and f"limit is {MAX_QUESTION_CHARS}" in str(e.value)


def test_trim_chat_keeps_the_last_messages_and_cuts_long_ones():
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(MAX_CHAT_MESSAGES + 10)]
    kept = trim_chat(msgs)
    assert len(kept) == MAX_CHAT_MESSAGES and kept[0]["content"] == "m10" and kept[-1] is msgs[-1]
    long = [{"role": "user", "content": [{"type": "text", "text": "x" * (MAX_MESSAGE_CHARS * 3)}]}]
    (cut,) = trim_chat(long)
    assert cut == {"role": "user", "content": "x" * MAX_MESSAGE_CHARS}
    assert trim_chat(None) == [] and trim_chat(msgs, keep=0) == []
    # the history read from a trimmed chat is its last turns
    assert history_pairs(trim_chat(msgs))[-1] == (f"m{MAX_CHAT_MESSAGES + 8}", f"m{MAX_CHAT_MESSAGES + 9}")


def test_upload_panel_states_the_limits_in_both_languages():
    mb = MAX_UPLOAD_BYTES // (1024 * 1024)
    assert LAUNCH_OPTIONS["max_file_size"] == MAX_UPLOAD_BYTES  # Gradio refuses a bigger file before saving it
    zh, en = t("zh", "upload"), t("en", "upload")
    assert f"{mb} MB" in zh and "50 个文件" in zh and "共用" in zh and "删除" in zh
    assert f"up to {mb} MB each" in en and "50 files" in en and "every user" in en and "remove" in en


@pytest.mark.parametrize("host, env, flag, expected", [
    ("127.0.0.1", None, None, "shared"),
    ("localhost", None, None, "shared"),
    ("::1", None, None, "shared"),
    ("0.0.0.0", None, None, "off"),
    ("192.168.1.20", None, None, "off"),
    ("example.org", None, None, "off"),
    ("0.0.0.0", "shared", None, "shared"),
    ("127.0.0.1", "off", None, "off"),
    ("0.0.0.0", "off", "shared", "shared"),  # the flag wins over the environment
    ("127.0.0.1", "shared", "off", "off"),
    ("0.0.0.0", " SHARED ", None, "shared"),
])
def test_resolve_uploads(monkeypatch, host, env, flag, expected):
    if env is None:
        monkeypatch.delenv("RAG_UPLOADS", raising=False)
    else:
        monkeypatch.setenv("RAG_UPLOADS", env)
    assert resolve_uploads(flag, host) == expected


def test_resolve_uploads_rejects_unknown_modes(monkeypatch):
    monkeypatch.setenv("RAG_UPLOADS", "public")
    with pytest.raises(ValueError, match=r"\$RAG_UPLOADS 'public': expected one of off, shared"):
        resolve_uploads(None, "127.0.0.1")
    with pytest.raises(ValueError, match="--uploads 'all'"):
        resolve_uploads("all", "127.0.0.1")


def test_discard_temp_deletes_only_inside_the_temp_root(tmp_path):
    root = tmp_path / "gradio"
    inside = root / "3f9a" / "news.txt"
    inside.parent.mkdir(parents=True)
    inside.write_text("x")
    outside = tmp_path / "keep.txt"
    outside.write_text("y")
    discard_temp(outside, root)
    discard_temp(root / ".." / "keep.txt", root)
    assert outside.exists()
    discard_temp(inside, root)
    assert not inside.exists() and not inside.parent.exists() and root.is_dir()
    discard_temp(inside, root)  # already gone: no error


def test_receive_upload_stores_and_deletes_the_temp_copy(tmp_path):
    root = tmp_path / "gradio"
    uploads = tmp_path / "idx" / "uploads"
    ok = root / "a1" / "新闻.txt"
    bad = root / "b2" / "notes.pdf"
    for f in (ok, bad):
        f.parent.mkdir(parents=True)
    ok.write_text("标题\n\n正文。", encoding="utf-8")
    bad.write_bytes(b"%PDF")
    row, dest = receive_upload(str(ok), uploads, "en", root)
    assert row[0] is True and dest == uploads / "新闻.txt" and dest.read_text(encoding="utf-8") == "标题\n\n正文。"
    assert "waiting to be indexed" in row[2]
    row, dest = receive_upload(str(bad), uploads, "zh", root)
    assert row == (False, "notes.pdf", t("zh", "rej_type", suffix=".pdf")) and dest is None
    assert list(root.iterdir()) == []  # both temp copies gone, with their folders


def test_build_app_without_uploads_has_no_upload_panel(seed_index, fake_embedder):
    from rag.retrieve import searcher

    searcher(str(seed_index), fake_embedder)
    ids = lambda demo: {c.get("props", {}).get("elem_id") for c in demo.config["components"]}  # noqa: E731
    off = build_app(seed_index, bootstrap=False, uploads="off")
    assert not {"rag-upload", "rag-upload-msg", "rag-uploaded", "rag-remove"} & ids(off)
    assert not any(d.get("targets") and d["targets"][0][1] == "upload" for d in off.config["dependencies"])
    shared = build_app(seed_index, bootstrap=False, uploads="shared")
    assert {"rag-upload", "rag-upload-msg", "rag-uploaded", "rag-remove"} <= ids(shared)
    with pytest.raises(ValueError, match="uploads must be one of off, shared"):
        build_app(seed_index, bootstrap=False, uploads="public")


def test_rag_serve_passes_the_uploads_mode(monkeypatch, capsys):
    from rag import cli

    seen = {}
    monkeypatch.setattr(cli, "serve", lambda **kw: seen.update(kw) or 0)
    assert cli.main(["serve", "--index", "idx", "--uploads", "off", "--host", "127.0.0.1"]) == 0
    assert seen == {"index": "idx", "host": "127.0.0.1", "port": None, "uploads": "off", "api_only": False}
    assert cli.main(["serve", "--index", "idx"]) == 0 and seen["uploads"] is None  # serve() decides by the host
    assert cli.main(["serve", "--index", "idx", "--api-only"]) == 0 and seen["api_only"] is True
    with pytest.raises(SystemExit):
        cli.main(["serve", "--uploads", "public"])
    assert "invalid choice: 'public'" in capsys.readouterr().err
