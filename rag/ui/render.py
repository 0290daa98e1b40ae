"""Display text for the UI: the zh/en strings, escaping for the Chatbot, and the HTML of sources, status and uploads."""
from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from ..types import Answer

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # per file; also Gradio's max_file_size, so a bigger file is refused unsaved
MAX_UPLOAD_FILES = 50  # per upload
UPLOAD_MB = MAX_UPLOAD_BYTES // (1024 * 1024)

LANGS = {"中文": "zh", "English": "en"}
LANG_CHOICES = list(LANGS)

EXAMPLES = [
    "布林肯星期二前往哪个国家？",
    "国务院星期一对谁实施了签证限制？",
    "Where did Blinken travel on Tuesday?",
]

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "# 新闻问答\n用已索引文章里的原句回答问题，每句都标注来源。",
        "chat": "对话",
        "question": "问题",
        "placeholder": "输入问题，例如：布林肯星期二前往哪个国家？",
        "send": "提问",
        "clear": "清空对话",
        "settings": "设置与上传",
        "settings_only": "设置",
        "k": "来源数量（检索段落数）",
        "date_from": "起始日期",
        "date_to": "截止日期",
        "date_placeholder": "YYYY-MM-DD（可留空）",
        "upload": "上传文章（.txt .md .html .jsonl；每个文件不超过 {mb} MB，每次最多 {n} 个文件）。"
                  "上传的文章会加入本服务所有用户共用的索引，任何用户都可以在下方删除。",
        "uploaded": "已上传的文章",
        "remove": "从索引中删除",
        "remove_pick": "请先选择要删除的上传文件。",
        "remove_busy": "后台任务太多，请稍后再删除。",
        "examples": "示例问题",
        "sources": "来源",
        "no_sources": "暂无来源。提问后，这里会列出答案引用的文章。",
        "abstained": "没有找到可引用的句子，因此没有来源。",
        "no_date": "日期不详",
        "date_from_text": "（日期取自正文）",
        "open_link": "打开原文",
        "no_link": "无可用链接",
        "status_index": "索引：{articles} 篇文章，{chunks} 个片段 · 嵌入模型：{embedder} · 最后索引：{last}",
        "status_missing": "索引：尚未建立",
        "status_damaged": "索引已损坏；管理员可以运行 `rag index --rebuild` 重建索引。",
        "status_unavailable": "索引暂时无法打开；详情已记录在服务器日志中。",
        "status_removing": "正在从索引中删除上传的文章…",
        "status_waiting": "上传的文件暂时无法写入索引，将在下次上传或重启服务时重试。",
        "status_remove_failed": "未能删除 {name}；详情见服务器日志。",
        "status_never": "从未",
        "status_busy": "正在索引…（{done}/{total} 个文件）",
        "status_building_seeds": "正在用 seeds/ 建立索引…（{done}/{total} 个文件）",
        "status_last": "上次索引：新增 {added}，更新 {updated}，未变 {skipped}，失败 {failed}",
        "not_ready": "索引还在建立中，请稍后再试。",
        "answer_failed": "无法回答这个问题；详情已记录在服务器日志中。",
        "index_missing": "索引尚未建立。",
        "q_empty": "问题是空的。",
        "q_long": "问题太长（{n} 个字符）；上限是 {max} 个字符。",
        "bad_date": "{which}格式无效：“{value}”。请使用 YYYY-MM-DD，例如 2024-05-08，或留空。",
        "date_order": "起始日期 {start} 晚于截止日期 {end}。",
        "which_from": "起始日期",
        "which_to": "截止日期",
        "bad_k": "来源数量必须是 {lo} 到 {hi} 之间的整数。",
        "up_received": "已接收，等待后台索引",
        "up_indexing": "已接收，正在后台索引…",
        "up_indexed": "已索引：{n} 篇文章",
        "up_line_errors": "{n} 行无法读取",
        "up_line": "第 {line} 行：{reason}",
        "up_not_indexed": "未索引，文件已删除：{reason}",
        "up_no_articles": "没有可读取的文章",
        "up_failed": "无法索引（详情见服务器日志）",
        "up_waiting": "已接收，等待索引（索引暂时无法写入）",
        "up_removing": "正在从索引中删除…",
        "up_removed": "已从索引中删除",
        "up_busy": "已有 {n} 个文件在等待索引，请稍后再上传。",
        "up_none": "没有选择文件。",
        "up_too_many": "一次最多上传 {n} 个文件，其余文件已忽略。",
        "rej_name": "文件名无效（{detail}）",
        "rej_type": "不支持的文件类型 {suffix}；只接受 .txt、.md、.html、.jsonl",
        "rej_size": "文件过大：{size}，上限 {mb} MB",
        "rej_empty": "文件是空的",
        "rej_io": "无法保存：{detail}",
        "detail_control": "含控制字符",
        "detail_dotdot": "含 “..” 路径",
        "detail_empty": "为空",
        "tab_chat": "问答",
        "tab_library": "文章库",
        "reading": "阅读原文",
        "read": "阅读全文",
        "reading_empty": "点击来源中的“阅读全文”，在这里查看文章并定位引用的句子。",
        "article_gone": "这篇文章已不在索引中。",
        "source_name": "来源",
        "export": "导出对话（Markdown）",
        "export_empty": "还没有可以导出的对话。",
        "lib_title": "搜索标题",
        "lib_source": "来源（完全匹配，可留空）",
        "lib_search": "筛选",
        "lib_prev": "上一页",
        "lib_next": "下一页",
        "lib_page": "共 {total} 篇 · 第 {page}/{pages} 页",
        "lib_none": "没有符合条件的文章。",
        "lib_chars": "{n} 字",
        "lib_stats": "文章 {articles} 篇 · 片段 {chunks} 个 · 最后索引：{last} · 嵌入模型：{embedders}",
        "also_in": "另有 {n} 篇文章刊载了这句话：",
        "story_size": "这篇报道共有 {n} 个版本（转载或更正），这句话只见于此版本。",
        "copies": "同一报道的其他版本（转载或更正，共 {n} 篇）",
        "lib_remove": "删除",
        "lib_confirm_q": "确定要从索引中删除《{title}》吗？删除后它不再出现在文章库和答案中。",
        "lib_confirm": "确认删除",
        "lib_cancel": "取消",
        "lib_removing": "正在删除《{title}》…",
        "lib_removed": "已从索引中删除《{title}》。",
        "lib_remove_failed": "未能删除《{title}》；详情见服务器日志。",
        "lib_gone": "这篇文章已不在索引中。",
        "status_removing_article": "正在从索引中删除文章…",
    },
    "en": {
        "title": "# News Q&A\nAnswers quoted sentence by sentence from the indexed articles, each with its source.",
        "chat": "Chat",
        "question": "Question",
        "placeholder": "Ask a question, e.g. Where did Blinken travel on Tuesday?",
        "send": "Ask",
        "clear": "Clear chat",
        "settings": "Settings and upload",
        "settings_only": "Settings",
        "k": "Number of sources (passages to read)",
        "date_from": "From date",
        "date_to": "To date",
        "date_placeholder": "YYYY-MM-DD (optional)",
        "upload": "Upload articles (.txt .md .html .jsonl; up to {mb} MB each, {n} files at a time). Uploaded "
                  "articles join the index that every user of this server searches; anyone can remove them below.",
        "uploaded": "Uploaded articles",
        "remove": "Remove from the index",
        "remove_pick": "Choose an uploaded file to remove first.",
        "remove_busy": "Too many background tasks; try removing it again later.",
        "examples": "Example questions",
        "sources": "Sources",
        "no_sources": "No sources yet. Ask a question and the cited articles appear here.",
        "abstained": "No sentence could be quoted, so there are no sources.",
        "no_date": "date unknown",
        "date_from_text": " (date from text)",
        "open_link": "Open the article",
        "no_link": "no usable link",
        "status_index": "Index: {articles} articles, {chunks} chunks · embedder: {embedder} · last indexed: {last}",
        "status_missing": "Index: not built yet",
        "status_damaged": "The index is damaged; the operator can run `rag index --rebuild` to rebuild it.",
        "status_unavailable": "The index cannot be opened; the details are in the server log.",
        "status_removing": "removing an uploaded article from the index...",
        "status_waiting": "uploaded files cannot be written to the index now; they are retried on the next upload "
                          "or restart",
        "status_remove_failed": "could not remove {name}; the details are in the server log",
        "status_never": "never",
        "status_busy": "indexing... ({done}/{total} files)",
        "status_building_seeds": "building the index from seeds/... ({done}/{total} files)",
        "status_last": "last run: {added} added, {updated} updated, {skipped} unchanged, {failed} failed",
        "not_ready": "The index is still being built; please try again in a moment.",
        "answer_failed": "The question could not be answered; the details are in the server log.",
        "index_missing": "The index is not built yet.",
        "q_empty": "The question is empty.",
        "q_long": "The question is too long ({n} characters); the limit is {max}.",
        "bad_date": "Invalid {which}: \"{value}\". Use YYYY-MM-DD, e.g. 2024-05-08, or leave it empty.",
        "date_order": "The from date {start} is after the to date {end}.",
        "which_from": "from date",
        "which_to": "to date",
        "bad_k": "The number of sources must be a whole number from {lo} to {hi}.",
        "up_received": "received, waiting to be indexed in the background",
        "up_indexing": "received, indexing in the background...",
        "up_indexed": "indexed: {n} articles",
        "up_line_errors": "{n} unreadable lines",
        "up_line": "line {line}: {reason}",
        "up_not_indexed": "not indexed, the file was deleted: {reason}",
        "up_no_articles": "no readable article",
        "up_failed": "could not be indexed (the details are in the server log)",
        "up_waiting": "received, waiting: the index cannot be written now",
        "up_removing": "removing from the index...",
        "up_removed": "removed from the index",
        "up_busy": "{n} files are already waiting to be indexed; upload again later.",
        "up_none": "No files selected.",
        "up_too_many": "At most {n} files per upload; the rest were ignored.",
        "rej_name": "invalid file name ({detail})",
        "rej_type": "unsupported file type {suffix}; only .txt, .md, .html and .jsonl are accepted",
        "rej_size": "file too large: {size}, the limit is {mb} MB",
        "rej_empty": "the file is empty",
        "rej_io": "cannot save it: {detail}",
        "detail_control": "control characters",
        "detail_dotdot": "a '..' path",
        "detail_empty": "empty",
        "tab_chat": "Ask",
        "tab_library": "Library",
        "reading": "Reading view",
        "read": "Read the article",
        "reading_empty": "Click \"Read the article\" on a source to read it here, with the cited sentence marked.",
        "article_gone": "This article is no longer in the index.",
        "source_name": "source",
        "export": "Export the chat (Markdown)",
        "export_empty": "There is no conversation to export yet.",
        "lib_title": "Search titles",
        "lib_source": "Source (exact, optional)",
        "lib_search": "Filter",
        "lib_prev": "Previous",
        "lib_next": "Next",
        "lib_page": "{total} articles · page {page} of {pages}",
        "lib_none": "No article matches.",
        "lib_chars": "{n} characters",
        "lib_stats": "{articles} articles · {chunks} chunks · last indexed: {last} · embedders: {embedders}",
        "also_in": "{n} other articles carry this sentence too:",
        "story_size": "This story has {n} versions (reprints or corrections); this sentence is only in this one.",
        "copies": "Other versions of this story (reprints or corrections, {n} in all)",
        "lib_remove": "Remove",
        "lib_confirm_q": "Remove \"{title}\" from the index? It will no longer appear in the library or in answers.",
        "lib_confirm": "Remove it",
        "lib_cancel": "Cancel",
        "lib_removing": "Removing \"{title}\"...",
        "lib_removed": "\"{title}\" was removed from the index.",
        "lib_remove_failed": "\"{title}\" could not be removed; the details are in the server log.",
        "lib_gone": "This article is no longer in the index.",
        "status_removing_article": "removing an article from the index...",
    },
}


def t(lang: str, key: str, **kw) -> str:
    s = TEXT.get(lang, TEXT["zh"])[key]
    if key in ("upload", "rej_size"):
        kw = {"mb": UPLOAD_MB, "n": MAX_UPLOAD_FILES, **kw}
    return s.format(**kw) if kw else s


def lang_code(choice: str | None) -> str:
    if choice in TEXT:
        return choice  # type: ignore[return-value]
    return LANGS.get(choice or "", "zh")


# ---------------------------------------------------------------- escaping and HTML builders

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$<>])")
_MD_UNESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~$<>])")


def to_display(text: str) -> str:
    """Text for the Chatbot (which renders Markdown): escape HTML first, then every Markdown metacharacter.

    The result shows `text` literally: no tag, link, image, emphasis or formula can come out of it.
    """
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def from_display(text: str) -> str:
    """Inverse of `to_display` (for turning Chatbot messages back into plain history)."""
    return html.unescape(_MD_UNESCAPE.sub(r"\1", str(text)))


def safe_url(url: str | None) -> str | None:
    """`url` when it is a plain absolute http(s) URL, else None (javascript:, data:, relative, odd characters)."""
    if not isinstance(url, str):
        return None
    u = url.strip()
    if not u or len(u) > 2048 or any(ord(c) < 33 or ord(c) == 127 for c in u) or "\\" in u:
        return None
    try:
        parts = urlsplit(u)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or parts.netloc.startswith("@"):
        return None
    return u


def _day(published: str) -> str:
    p = (published or "").strip()
    return p[:10] if re.match(r"\d{4}-\d{2}-\d{2}", p) else ""


def _shown_day(published, from_text, lang: str) -> str:
    """The day to show, marked when it was read from the article's text (rag.types.Article.date_from_text)."""
    day = _day(str(published or ""))
    if not day:
        return t(lang, "no_date")
    return day + t(lang, "date_from_text") if from_text is True else day


def highlight(passage: str, sentence: str) -> str:
    """The passage as escaped HTML with the first occurrence of `sentence` wrapped in <mark>."""
    passage, sentence = str(passage or ""), str(sentence or "").strip()
    i = passage.find(sentence) if sentence else -1
    if i < 0:
        return html.escape(passage)
    j = i + len(sentence)
    return f"{html.escape(passage[:i])}<mark>{html.escape(sentence)}</mark>{html.escape(passage[j:])}"


SOURCES_CSS = """
.rag-sources h3 { margin: 0 0 .5em 0; }
.rag-sources .rag-empty { opacity: .75; }
.rag-source { border: 1px solid var(--border-color-primary, #ddd); border-radius: 6px; padding: .4em .7em;
              margin: 0 0 .6em 0; }
.rag-source summary { cursor: pointer; }
.rag-source .rag-num { font-weight: bold; }
.rag-source .rag-title { font-weight: 600; }
.rag-source .rag-date { opacity: .7; font-size: .9em; margin-left: .4em; }
.rag-source .rag-quote { margin: .3em 0 0 0; font-size: .92em; }
.rag-source .rag-link { margin: .4em 0; font-size: .9em; word-break: break-all; }
.rag-source .rag-passage { white-space: pre-wrap; margin: .3em 0 0 0; padding: .4em .6em; font-size: .92em;
                           border-left: 3px solid var(--border-color-accent, #999); }
.rag-source mark { background: #ffe27a; color: #000; padding: 0 .1em; }
.rag-source .rag-also { margin: .3em 0; font-size: .9em; }
.rag-source .rag-also ul, .rag-article .rag-copies ul { margin: .2em 0 0 1.2em; padding: 0; }
.rag-source .rag-read { margin: .3em 0; font-size: .9em; cursor: pointer; text-decoration: underline;
                        background: none; border: none; padding: 0; color: var(--link-text-color, #2563eb); }
"""


def render_sources(answer: Answer | dict | None, lang: str = "zh") -> str:
    """The sources panel: one <details> per citation (number, title, date, link, passage with <mark>)."""
    head = f"<h3>{html.escape(t(lang, 'sources'))}</h3>"
    if answer is None:
        return f'<div class="rag-sources">{head}<p class="rag-empty">{html.escape(t(lang, "no_sources"))}</p></div>'
    d = answer.to_dict() if isinstance(answer, Answer) else dict(answer)
    cits = d.get("citations") or []
    if not cits:
        return f'<div class="rag-sources">{head}<p class="rag-empty">{html.escape(t(lang, "abstained"))}</p></div>'
    items = []
    for c in cits:
        num = int(c.get("number", 0))
        title = html.escape(str(c.get("title") or ""))
        day = _shown_day(c.get("published"), c.get("date_from_text"), lang)
        url = safe_url(c.get("url"))
        if url:
            link = (f'<a href="{html.escape(url, quote=True)}" rel="noopener noreferrer" target="_blank">'
                    f"{html.escape(t(lang, 'open_link'))}</a> <span class=\"rag-url\">{html.escape(url)}</span>")
        else:
            shown = str(c.get("url") or "").strip()
            link = html.escape(t(lang, "no_link")) + (f' <span class="rag-url">{html.escape(shown)}</span>' if shown else "")
        items.append(
            f'<details class="rag-source" id="rag-source-{num}">'
            f'<summary><span class="rag-num">[{num}]</span> <span class="rag-title">{title}</span>'
            f'<span class="rag-date">{html.escape(day)}</span>'
            f'<div class="rag-quote">{html.escape(str(c.get("sentence") or ""))}</div>'
            f'<button type="button" class="rag-read" data-num="{num}">{html.escape(t(lang, "read"))}</button>'
            f'</summary>'
            f'<div class="rag-link">{link}</div>'
            f'{_also_html(c, lang)}'
            f'<div class="rag-passage">{highlight(str(c.get("passage") or ""), str(c.get("sentence") or ""))}</div>'
            f"</details>"
        )
    return f'<div class="rag-sources">{head}{"".join(items)}</div>'


def _copy_item(c: dict, lang: str) -> str:
    """One other copy of a story: title, date, link (all escaped)."""
    day = _shown_day(c.get("published"), c.get("date_from_text"), lang)
    return (f'<li><span class="rag-title">{html.escape(printable(str(c.get("title") or "")))}</span> '
            f'<span class="rag-date">{html.escape(day)}</span> {_link(c.get("url"), lang)}</li>')


def _also_html(c: dict, lang: str) -> str:
    """A citation's other copies carrying its sentence (rag.index.dedup), or the note that it has versions."""
    also = [a for a in (c.get("also") or []) if isinstance(a, dict)]
    if also:
        items = "".join(_copy_item(a, lang) for a in also)
        return (f'<div class="rag-also">{html.escape(t(lang, "also_in", n=len(also)))}'
                f'<ul>{items}</ul></div>')
    size = c.get("story_size") or 0
    if isinstance(size, int) and size > 1:
        return f'<div class="rag-also">{html.escape(t(lang, "story_size", n=size))}</div>'
    return ""


def printable(text: str) -> str:
    """`text` with lone surrogates replaced: Gradio's JSON encoder refuses them (a whole response would fail)."""
    return str(text).encode("utf-8", "replace").decode("utf-8")


def status_html(text: str) -> str:
    return f'<div class="rag-status">{html.escape(printable(text))}</div>'


def upload_html(rows: list[tuple[bool, str, str]], notes: list[str]) -> str:
    """The upload result: the notes, then one line per file (ok, client name, message), all escaped."""
    items = [f'<li class="rag-note">{html.escape(n)}</li>' for n in notes]
    for ok, name, msg in rows:
        mark = "✓" if ok else "✗"
        cls = "rag-ok" if ok else "rag-rejected"
        items.append(f'<li class="{cls}">{mark} <code>{html.escape(printable(name))}</code>: '
                     f'{html.escape(printable(msg))}</li>')
    return f'<ul class="rag-upload-result">{"".join(items)}</ul>' if items else ""


# ---------------------------------------------------------------- reading view, library, export

READING_CSS = """
.rag-article h3 { margin: 0 0 .3em 0; }
.rag-article .rag-meta { opacity: .75; font-size: .9em; margin-bottom: .6em; word-break: break-all; }
.rag-article p { margin: 0 0 .7em 0; white-space: pre-wrap; }
.rag-article mark { background: #ffe27a; color: #000; padding: 0 .1em; }
.rag-library table { width: 100%; border-collapse: collapse; }
.rag-article .rag-copies { margin-top: 1em; font-size: .92em; }
.rag-article .rag-copies h4 { margin: 0 0 .3em 0; }
.rag-library .rag-lib-remove { cursor: pointer; font-size: .9em; }
.rag-library td, .rag-library th { text-align: left; padding: .25em .5em; border-bottom: 1px solid #ddd; }
"""
# the library list: a click on a row's remove button fires the list's click event with the article's id
LIBRARY_JS = ("element.addEventListener('click', (e) => { const b = e.target.closest('.rag-lib-remove'); "
              "if (!b) return; e.preventDefault(); e.stopPropagation(); trigger('click', {id: b.dataset.id}); });")
SCROLL_JS = "() => { setTimeout(() => document.getElementById('rag-cited')?.scrollIntoView({block: 'center'}), 50); }"
# the sources panel: a click on a "read" button inside it fires the panel's click event with the citation number
SOURCES_JS = ("element.addEventListener('click', (e) => { const b = e.target.closest('.rag-read'); if (!b) return; "
              "e.preventDefault(); e.stopPropagation(); trigger('click', {num: Number(b.dataset.num)}); });")


def _link(url: str | None, lang: str) -> str:
    u = safe_url(url)
    if u:
        return (f'<a href="{html.escape(u, quote=True)}" rel="noopener noreferrer" target="_blank">'
                f'{html.escape(t(lang, "open_link"))}</a>')
    shown = str(url or "").strip()
    return html.escape(t(lang, "no_link")) + (f' <span class="rag-url">{html.escape(shown)}</span>' if shown else "")


def _paragraph(text: str, ps: int, pe: int, start: int, end: int, first: bool) -> tuple[str, bool]:
    """The escaped paragraph text[ps:pe] with its overlap with [start, end) in <mark> (the first mark gets the
    anchor id); also whether it marked anything."""
    a, b = max(ps, start), min(pe, end)
    if a >= b:
        return html.escape(text[ps:pe]), False
    anchor = ' id="rag-cited"' if first else ""
    return (f"{html.escape(text[ps:a])}<mark{anchor}>{html.escape(text[a:b])}</mark>"
            f"{html.escape(text[b:pe])}"), True


def render_article(article, start: int | None = None, end: int | None = None, lang: str = "zh",
                   copies=()) -> str:
    """The reading view of a stored article (title, date, source, link, text by paragraph), every field escaped,
    with text[start:end] exactly in <mark> (none when the span is not inside the text); `copies`: the other
    articles of its story (rag.types.StoryCopy or dicts: near-duplicates), listed under the text."""
    if article is None:
        return f'<div class="rag-article"><p class="rag-empty">{html.escape(t(lang, "article_gone"))}</p></div>'
    text = printable(str(article.text or ""))
    ok = isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)
    s, e = (start, end) if ok else (-1, -1)
    day = _shown_day(article.published, getattr(article, "date_from_text", False), lang)
    meta = [html.escape(day)]
    if article.source:
        meta.append(f'{html.escape(t(lang, "source_name"))}: {html.escape(printable(str(article.source)))}')
    meta.append(_link(article.url, lang))
    paras, first = [], True
    for m in re.finditer(r"[^\n]+", text):
        if not m.group().strip():
            continue
        body, marked = _paragraph(text, m.start(), m.end(), s, e, first)
        first = first and not marked
        paras.append(f"<p>{body}</p>")
    others = [c if isinstance(c, dict) else c.__dict__ for c in copies or ()]
    listed = ""
    if others:
        items = "".join(_copy_item(c, lang) for c in others)
        listed = (f'<div class="rag-copies"><h4>{html.escape(t(lang, "copies", n=len(others) + 1))}</h4>'
                  f"<ul>{items}</ul></div>")
    return (f'<div class="rag-article"><h3>{html.escape(printable(str(article.title or "")))}</h3>'
            f'<div class="rag-meta">{" · ".join(meta)}</div>{"".join(paras)}{listed}</div>')


def reading_placeholder(lang: str = "zh") -> str:
    return f'<div class="rag-article"><p class="rag-empty">{html.escape(t(lang, "reading_empty"))}</p></div>'


def library_html(result: dict | None, lang: str = "zh", note: str = "", removable: bool = False) -> str:
    """The library page: `result` from rag.ui.library.query_library (total, page, pages, rows), all escaped;
    `removable`: a remove button per article (the server allows changes), which LIBRARY_JS turns into an event."""
    if note or not result:
        return f'<div class="rag-library"><p class="rag-empty">{html.escape(note)}</p></div>'
    head = html.escape(t(lang, "lib_page", total=result["total"], page=result["page"], pages=result["pages"]))
    if not result["rows"]:
        none = html.escape(t(lang, "lib_none"))
        return f'<div class="rag-library"><p>{head}</p><p class="rag-empty">{none}</p></div>'
    rows = []
    for r in result["rows"]:
        day = _day(str(r.get("published") or "")) or t(lang, "no_date")
        rows.append(f'<tr><td class="rag-title">{html.escape(printable(str(r.get("title") or "")))}</td>'
                    f"<td>{html.escape(day)}</td><td>{html.escape(printable(str(r.get('source') or '')))}</td>"
                    f'<td>{html.escape(t(lang, "lib_chars", n=int(r.get("chars") or 0)))}</td>'
                    f"<td>{_link(r.get('url'), lang)}</td>{_remove_cell(r, lang) if removable else ''}</tr>")
    return f'<div class="rag-library"><p>{head}</p><table>{"".join(rows)}</table></div>'


def _remove_cell(row: dict, lang: str) -> str:
    aid = html.escape(str(row.get("id") or ""), quote=True)
    return (f'<td><button type="button" class="rag-lib-remove" data-id="{aid}">'
            f'{html.escape(t(lang, "lib_remove"))}</button></td>')


def confirm_html(text: str) -> str:
    return f'<div class="rag-lib-confirm">{html.escape(printable(text))}</div>'


def stats_html(stats: dict | None, lang: str = "zh") -> str:
    """The index status for the library tab: articles, chunks, last indexed, embedders."""
    if not stats:
        return status_html(t(lang, "status_missing"))
    embedders = ", ".join(str(x) for x in (stats.get("embedder"), stats.get("second_embedder")) if x)
    return status_html(t(lang, "lib_stats", articles=stats.get("articles", 0), chunks=stats.get("chunks", 0),
                         last=stats.get("last_indexed") or t(lang, "status_never"), embedders=embedders or "-"))


def _md_text(text: str) -> str:
    """Text for Markdown with HTML and Markdown metacharacters made literal."""
    return to_display(printable(str(text or ""))).replace("\n", " ")


def conversation_markdown(turns: list[dict] | None) -> str:
    """The conversation as Markdown: each question, its answer, and its citations (number, title, date, link,
    quoted sentence). `turns`: dicts with question, text and citations (as in Answer.to_dict())."""
    out = ["# 新闻问答 · News Q&A", ""]
    for i, turn in enumerate(turns or [], 1):
        out += [f"## {i}. {_md_text(turn.get('question'))}", "", _md_text(turn.get("text")), ""]
        for c in turn.get("citations") or []:
            day = _day(str(c.get("published") or "")) or "-"
            if day != "-" and c.get("date_from_text") is True:
                day += ", date from text"
            url = safe_url(c.get("url"))
            link = f" <{url.replace('<', '%3C').replace('>', '%3E')}>" if url else ""
            out.append(f"- [{int(c.get('number', 0))}] {_md_text(c.get('title'))} ({day}){link}")
            out.append(f"  > {_md_text(c.get('sentence'))}")
            for a in c.get("also") or []:  # the story's other copies carrying the sentence
                if isinstance(a, dict):
                    aurl = safe_url(a.get("url"))
                    alink = f" <{aurl.replace('<', '%3C').replace('>', '%3E')}>" if aurl else ""
                    out.append(f"  - also: {_md_text(a.get('title'))} ({_day(str(a.get('published') or '')) or '-'}){alink}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
