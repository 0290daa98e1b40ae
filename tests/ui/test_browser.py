"""The chat UI in a real browser: Debian's Chromium driven by Playwright (sync API).

Starts `rag serve` on a free loopback port with an index built from seeds/ at start, asks the seed questions in
Chinese and English, checks the answer, the citation markers and the sources panel, switches the UI language,
then uploads an article carrying an XSS payload and checks that nothing runs and the payload shows as text.

Screenshots go to test-artifacts/. With RAG_UPDATE_SCREENSHOT=1 the Chinese answer is also saved to
docs/screenshot.png (the README's picture).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from test_gradio_api import ROOT, SEED_TITLE, running_app

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
UNIQUE = "zorblaxium"
SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'

XSS_HTML = f"""<!doctype html>
<html><head><meta charset="utf-8">
<title>XSS 测试 &lt;img src=x onerror="window.__xss=1"&gt;</title>
<link rel="canonical" href="javascript:alert(1)">
<meta property="article:published_time" content="2024-05-09T00:00:00Z">
<script>window.__xss=1</script>
</head><body><article>
<h1>XSS 测试 &lt;img src=x onerror="window.__xss=1"&gt;</h1>
<p>关于{UNIQUE}的报道。</p>
<p>{UNIQUE}项目的负责人说&lt;script&gt;window.__xss=1&lt;/script&gt;这是测试&lt;img src=x onerror="window.__xss=1"&gt;内容，<a href="javascript:alert(1)">点击这里</a>。</p>
<p>第二段与此无关，<img src=x onerror="window.__xss=1">只是填充文字。</p>
</article></body></html>
"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`rag serve` on loopback (uploads on by default there), with its own Gradio upload cache."""
    tmp = tmp_path_factory.mktemp("browser")
    argv = ["-m", "rag.cli", "serve", "--index", str(tmp / "index")]
    temp = tmp / "gradio-temp"
    with running_app(tmp / "index", tmp / "app.log", argv=argv, env={"GRADIO_TEMP_DIR": str(temp)}) as url:
        yield url, temp


@pytest.fixture(scope="module")
def app_url(served):
    return served[0]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    pg = ctx.new_page()
    dialogs: list[str] = []

    def on_dialog(d):  # alert()/confirm() from injected code: record, dismiss, fail below
        dialogs.append(d.message)
        d.dismiss()

    pg.on("dialog", on_dialog)
    pg.goto(app_url)
    pg.wait_for_selector("#rag-question textarea")
    pg.wait_for_function("() => document.querySelector('#rag-status')?.innerText.includes('篇文章')", timeout=60_000)
    yield pg
    ctx.close()
    assert dialogs == [], f"a dialog opened: {dialogs}"


def _ask(page, question: str) -> str:
    """Type and send `question`; return the text of the new answer bubble."""
    from playwright.sync_api import expect

    bots = page.locator('#rag-chat [data-testid="bot"]')
    n = bots.count()
    page.fill("#rag-question textarea", question)
    page.click("#rag-send")
    expect(bots).to_have_count(n + 1, timeout=60_000)
    return bots.nth(n).inner_text()


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_seed_questions_in_chinese_and_english(page):
    from playwright.sync_api import expect

    status = page.inner_text("#rag-status")
    assert re.search(r"1 篇文章，\d+ 个片段", status) and "use-m3" in status

    text = _ask(page, "布林肯星期二前往哪个国家？")
    assert "危地马拉" in text and "[1]" in text
    sources = page.locator("#rag-sources")
    expect(sources).to_contain_text(SEED_TITLE)
    expect(sources).to_contain_text("2024-05-08")
    first = page.locator("#rag-sources details").first
    first.locator("summary").click()  # expands the whole passage with the cited sentence marked
    expect(first.locator("mark")).to_contain_text("星期二前往危地马拉")
    link = first.locator("a")
    assert link.get_attribute("href").startswith("https://www.voachinese.com/")
    assert link.get_attribute("rel") == "noopener noreferrer" and link.get_attribute("target") == "_blank"
    shot = _shot(page, "answer-zh.png")
    if os.environ.get("RAG_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")

    # a second question in the same chat (the history is passed along)
    text = _ask(page, "国务院星期一对谁实施了签证限制？")
    assert "哥伦比亚交通公司" in text and "[1]" in text
    expect(sources).to_contain_text(SEED_TITLE)

    # the English question in a fresh chat (a short question right after another one is read as a follow-up)
    page.click("#rag-clear")
    expect(page.locator('#rag-chat [data-testid="bot"]')).to_have_count(0)
    expect(sources).not_to_contain_text(SEED_TITLE)
    text = _ask(page, "Where did Blinken travel on Tuesday?")
    _shot(page, "answer-en.png")
    assert "[1]" in text, f"the English seed question got no cited answer: {text!r}"
    assert "危地马拉" in text, f"the English seed question got a wrong answer: {text!r}"
    expect(sources).to_contain_text(SEED_TITLE)


def test_language_switch_relabels(page):
    from playwright.sync_api import expect

    expect(page.locator("#rag-send")).to_have_text("提问")
    page.get_by_label("English").check()
    expect(page.locator("#rag-send")).to_have_text("Ask")
    expect(page.locator("#rag-question")).to_contain_text("Question")
    expect(page.locator("#rag-status")).to_contain_text("articles")
    expect(page.locator("#rag-sources")).to_contain_text("Sources")
    page.get_by_label("中文").check()
    expect(page.locator("#rag-send")).to_have_text("提问")


def test_date_validation_message(page):
    page.fill("#rag-date-from textarea, #rag-date-from input", "2024-13-45")
    text = _ask(page, "布林肯星期二前往哪个国家？")
    assert "YYYY-MM-DD" in text and "2024-13-45" in text


def test_upload_with_xss_payload_is_shown_as_text(page, served, tmp_path):
    from playwright.sync_api import expect

    expect(page.locator("#rag-upload")).to_contain_text("每个文件不超过 5 MB")
    expect(page.locator("#rag-upload")).to_contain_text("所有用户共用的索引")
    art = tmp_path / "xss-article.html"
    art.write_text(XSS_HTML, encoding="utf-8")
    wrong = tmp_path / "notes.pdf"
    wrong.write_bytes(b"%PDF-1.4 not an article")
    page.set_input_files("#rag-upload input[type=file]", [str(art), str(wrong)])
    msg = page.locator("#rag-upload-msg")
    expect(msg).to_contain_text("xss-article.html", timeout=30_000)
    expect(msg.locator(".rag-rejected")).to_contain_text("notes.pdf")
    expect(msg.locator(".rag-rejected")).to_contain_text("不支持的文件类型 .pdf")
    # background indexing: the file's row and the status line go from "indexing..." to the new totals
    expect(msg.locator(".rag-ok")).to_contain_text("已索引：1 篇文章", timeout=90_000)
    expect(page.locator("#rag-status")).to_contain_text("2 篇文章", timeout=60_000)
    expect(page.locator("#rag-status")).not_to_contain_text("正在索引")
    # Gradio's upload cache keeps neither file (the accepted one was copied under the index, the other rejected)
    temp = served[1]
    left = [p for p in temp.rglob("*") if p.is_file()] if temp.exists() else []
    assert not left, left

    text = _ask(page, f"{UNIQUE}项目的负责人说了什么？")
    _shot(page, "xss-upload.png")
    assert UNIQUE in text and "[1]" in text
    assert SCRIPT in text and IMG in text  # the payload is literal text in the chat bubble
    sources = page.locator("#rag-sources")
    expect(sources).to_contain_text("XSS 测试")
    panel = sources.inner_text()
    assert SCRIPT in panel and IMG in panel
    page.locator("#rag-sources details").first.locator("summary").click()
    expect(sources).to_contain_text("javascript:alert(1)")  # shown, not linked
    _shot(page, "xss-sources.png")

    assert page.evaluate("() => typeof window.__xss") == "undefined"
    for where in ("#rag-sources", "#rag-chat", "#rag-upload-msg"):
        assert page.locator(f"{where} script").count() == 0
        assert page.locator(f"{where} img[onerror], {where} img[src='x']").count() == 0
    assert page.locator("a[href^='javascript' i]").count() == 0


def test_remove_the_upload_again(page):
    """After the upload test: the uploaded article is listed, removed with the button, and no longer answers."""
    from playwright.sync_api import expect

    expect(page.locator("#rag-status")).to_contain_text("2 篇文章", timeout=60_000)
    page.locator("#rag-uploaded input").click()
    page.get_by_role("option", name="xss-article.html").click()
    page.click("#rag-remove")
    expect(page.locator("#rag-upload-msg")).to_contain_text("已从索引中删除", timeout=60_000)
    expect(page.locator("#rag-status")).to_contain_text("1 篇文章", timeout=60_000)
    text = _ask(page, f"{UNIQUE}项目的负责人说了什么？")
    assert UNIQUE not in text.replace(f"{UNIQUE}项目的负责人说了什么？", "") and "[1]" not in text


def test_reading_view_marks_the_cited_sentence(page):
    """A citation's "read" button opens the stored article below the chat, the cited sentence marked and in view."""
    from playwright.sync_api import expect

    text = _ask(page, "布林肯星期二前往哪个国家？")
    assert "[1]" in text
    page.locator("#rag-sources .rag-read").first.click()
    reading = page.locator("#rag-reading")
    expect(reading.locator("h3")).to_have_text(SEED_TITLE, timeout=30_000)
    mark = reading.locator("mark#rag-cited")
    expect(mark).to_contain_text("星期二前往危地马拉")
    expect(reading).to_contain_text("2024-05-08")
    assert reading.locator("a").first.get_attribute("href").startswith("https://www.voachinese.com/")
    assert reading.locator("p").count() > 1 and reading.locator("script").count() == 0
    expect(mark).to_be_in_viewport(timeout=10_000)
    shot = ARTIFACTS / "reading-view.png"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(shot))
    if os.environ.get("RAG_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "reading-view.png")

    page.click("#rag-export")  # the conversation as Markdown in the download box
    link = page.locator("#rag-export-file a[href$='conversation.md']")
    expect(link).to_have_count(1, timeout=30_000)
    md = page.request.get(link.get_attribute("href")).text()
    assert "## 1. 布林肯星期二前往哪个国家？" in md and f"- [1] {SEED_TITLE} (2024-05-08)" in md


def test_library_tab_lists_the_seed_article(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="文章库").click()
    listing = page.locator("#rag-lib-list")
    expect(listing).to_contain_text(SEED_TITLE, timeout=30_000)
    expect(listing).to_contain_text("共 1 篇 · 第 1/1 页")
    expect(page.locator("#rag-lib-stats")).to_contain_text("文章 1 篇")
    page.fill("#rag-lib-title input, #rag-lib-title textarea", "不存在的标题")
    page.click("#rag-lib-search")
    expect(listing).to_contain_text("没有符合条件的文章", timeout=30_000)


# ---------------------------------------------------------------- near-duplicate stories and the library's remove button

DUP_WORD = "夸克利昂"
DUP_TEXT = (f"{DUP_WORD}公司星期一在上海宣布，将投资五亿元建设一座新的电池回收工厂，预计明年底投产。"
            f"公司发言人说，新工厂每年可以回收十万吨废旧电池，并创造八百个就业岗位。"
            f"{DUP_WORD}公司去年的营业收入增长了三成，主要来自海外市场。"
            "分析人士认为，电池回收行业将在未来五年保持快速增长，地方政府也出台了补贴政策。")
DUP_ORIGINAL = {"title": f"{DUP_WORD}公司宣布建设电池回收工厂", "url": "https://news.example/dup-original",
                "published": "2024-05-01T08:00:00Z", "source": "wire", "text": DUP_TEXT}
DUP_REPRINT = {"title": f"（转载）{DUP_WORD}投资五亿元建电池回收厂", "url": "https://news.example/dup-reprint",
               "published": "2024-05-02T09:30:00Z", "source": "paper",
               "text": "本报讯 " + DUP_TEXT + "（编辑：李四）"}
DUP_QUESTION = f"{DUP_WORD}公司新工厂每年可以回收多少废旧电池？"


def test_reading_view_lists_a_near_duplicate(page, tmp_path):
    """An article and its republished copy: the answer cites the earliest with "1 other article carries it", and
    the reading view lists the copy (title, date, link)."""
    import json

    from playwright.sync_api import expect

    f = tmp_path / "dup-story.jsonl"
    f.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in (DUP_ORIGINAL, DUP_REPRINT)),
                 encoding="utf-8")
    page.set_input_files("#rag-upload input[type=file]", [str(f)])
    expect(page.locator("#rag-upload-msg .rag-ok")).to_contain_text("已索引：2 篇文章", timeout=90_000)
    expect(page.locator("#rag-status")).to_contain_text("3 篇文章", timeout=60_000)

    text = _ask(page, DUP_QUESTION)
    assert "十万吨" in text and "[1]" in text, text
    sources = page.locator("#rag-sources")
    expect(sources).to_contain_text(DUP_ORIGINAL["title"])  # the earliest copy is the one cited
    first = page.locator("#rag-sources details").first
    first.locator("summary").click()
    expect(first.locator(".rag-also")).to_contain_text("另有 1 篇文章刊载了这句话")
    expect(first.locator(".rag-also")).to_contain_text(DUP_REPRINT["title"])

    first.locator(".rag-read").click()
    reading = page.locator("#rag-reading")
    expect(reading.locator("h3")).to_have_text(DUP_ORIGINAL["title"], timeout=30_000)
    copies = reading.locator(".rag-copies")
    expect(copies).to_contain_text("同一报道的其他版本")
    expect(copies).to_contain_text(DUP_REPRINT["title"])
    expect(copies).to_contain_text("2024-05-02")
    assert copies.locator("a").first.get_attribute("href") == DUP_REPRINT["url"]
    _shot(page, "reading-duplicates.png")


def test_library_removes_an_article_after_confirmation(page):
    """The library's remove button asks first, then the article is gone from the list and from answers."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="文章库").click()
    listing = page.locator("#rag-lib-list")
    expect(listing).to_contain_text(DUP_REPRINT["title"], timeout=30_000)
    expect(page.locator("#rag-lib-stats")).to_contain_text("文章 3 篇")

    def remove(title: str, confirm: bool = True) -> None:
        listing.locator("tr", has_text=title).locator(".rag-lib-remove").click()
        expect(page.locator("#rag-lib-msg")).to_contain_text(f"确定要从索引中删除《{title}》吗", timeout=30_000)
        page.click("#rag-lib-confirm" if confirm else "#rag-lib-cancel")

    remove(DUP_REPRINT["title"], confirm=False)  # cancelled: nothing changes
    expect(page.locator("#rag-lib-confirm")).to_be_hidden()
    expect(listing).to_contain_text(DUP_REPRINT["title"])

    remove(DUP_REPRINT["title"])
    expect(page.locator("#rag-lib-msg")).to_contain_text(f"已从索引中删除《{DUP_REPRINT['title']}》", timeout=90_000)
    expect(listing).not_to_contain_text(DUP_REPRINT["title"])
    expect(listing).to_contain_text(DUP_ORIGINAL["title"])
    expect(page.locator("#rag-lib-stats")).to_contain_text("文章 2 篇")
    _shot(page, "library-remove.png")

    remove(DUP_ORIGINAL["title"])
    expect(page.locator("#rag-lib-msg")).to_contain_text("已从索引中删除", timeout=90_000)
    expect(listing).not_to_contain_text(DUP_ORIGINAL["title"])
    expect(page.locator("#rag-lib-stats")).to_contain_text("文章 1 篇")

    page.get_by_role("tab", name="问答").click()
    text = _ask(page, DUP_QUESTION)
    assert "十万吨" not in text and "[1]" not in text.replace(DUP_QUESTION, ""), text
