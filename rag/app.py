"""The Gradio chat UI: cited answers, a sources panel, uploads indexed in the background, and an `/ask` API.

`build_app(index_dir)` returns the Blocks; `serve()` launches it (`rag serve`, `python app.py`).

Everything shown from an article (title, passage, sentence, URL) is untrusted: the HTML builders escape every
piece with `html.escape`, only plain http(s) URLs become links, and chat text is escaped for both HTML and
Markdown before it reaches the Chatbot (which keeps Gradio's own sanitiser on as a second layer).
"""
from __future__ import annotations

import contextlib
import hashlib
import html
import os
import re
import sys
import tempfile
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

from .errors import RagError
from .types import Answer

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".jsonl")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_FILES = 50
UPLOADS_DIR = "uploads"
K_MIN, K_MAX, K_DEFAULT = 1, 10, 5
READY_TIMEOUT = 600.0  # how long a question waits for the first index build
CONCURRENCY_LIMIT = 4
QUEUE_SIZE = 64

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
        "k": "来源数量（检索段落数）",
        "date_from": "起始日期",
        "date_to": "截止日期",
        "date_placeholder": "YYYY-MM-DD（可留空）",
        "upload": "上传文章（.txt .md .html .jsonl，每个文件不超过 5 MB）",
        "examples": "示例问题",
        "sources": "来源",
        "no_sources": "暂无来源。提问后，这里会列出答案引用的文章。",
        "abstained": "没有找到可引用的句子，因此没有来源。",
        "no_date": "日期不详",
        "open_link": "打开原文",
        "no_link": "无可用链接",
        "status_index": "索引：{articles} 篇文章，{chunks} 个片段 · 嵌入模型：{embedder} · 最后索引：{last}",
        "status_missing": "索引：尚未建立",
        "status_never": "从未",
        "status_busy": "正在索引…（{done}/{total} 个文件）",
        "status_building_seeds": "正在用 seeds/ 建立索引…（{done}/{total} 个文件）",
        "status_last": "上次索引：新增 {added}，更新 {updated}，未变 {skipped}，失败 {failed}",
        "status_error": "索引出错：{error}",
        "not_ready": "索引还在建立中，请稍后再试。",
        "error": "出错了：{error}",
        "bad_date": "{which}格式无效：“{value}”。请使用 YYYY-MM-DD，例如 2024-05-08，或留空。",
        "date_order": "起始日期 {start} 晚于截止日期 {end}。",
        "which_from": "起始日期",
        "which_to": "截止日期",
        "bad_k": "来源数量必须是 {lo} 到 {hi} 之间的整数。",
        "up_accepted": "已接收，正在后台索引",
        "up_articles": "{n} 篇文章",
        "up_line_errors": "{n} 行无法读取",
        "up_none": "没有选择文件。",
        "up_too_many": "一次最多上传 {n} 个文件，其余文件已忽略。",
        "rej_name": "文件名无效（{detail}）",
        "rej_type": "不支持的文件类型 {suffix}；只接受 .txt、.md、.html、.jsonl",
        "rej_size": "文件过大：{size}，上限 5 MB",
        "rej_empty": "文件是空的",
        "rej_parse": "无法读取：{detail}",
        "rej_io": "无法保存：{detail}",
        "detail_control": "含控制字符",
        "detail_dotdot": "含 “..” 路径",
        "detail_empty": "为空",
    },
    "en": {
        "title": "# News Q&A\nAnswers quoted sentence by sentence from the indexed articles, each with its source.",
        "chat": "Chat",
        "question": "Question",
        "placeholder": "Ask a question, e.g. Where did Blinken travel on Tuesday?",
        "send": "Ask",
        "clear": "Clear chat",
        "settings": "Settings and upload",
        "k": "Number of sources (passages to read)",
        "date_from": "From date",
        "date_to": "To date",
        "date_placeholder": "YYYY-MM-DD (optional)",
        "upload": "Upload articles (.txt .md .html .jsonl, up to 5 MB each)",
        "examples": "Example questions",
        "sources": "Sources",
        "no_sources": "No sources yet. Ask a question and the cited articles appear here.",
        "abstained": "No sentence could be quoted, so there are no sources.",
        "no_date": "date unknown",
        "open_link": "Open the article",
        "no_link": "no usable link",
        "status_index": "Index: {articles} articles, {chunks} chunks · embedder: {embedder} · last indexed: {last}",
        "status_missing": "Index: not built yet",
        "status_never": "never",
        "status_busy": "indexing... ({done}/{total} files)",
        "status_building_seeds": "building the index from seeds/... ({done}/{total} files)",
        "status_last": "last run: {added} added, {updated} updated, {skipped} unchanged, {failed} failed",
        "status_error": "indexing failed: {error}",
        "not_ready": "The index is still being built; please try again in a moment.",
        "error": "Error: {error}",
        "bad_date": "Invalid {which}: \"{value}\". Use YYYY-MM-DD, e.g. 2024-05-08, or leave it empty.",
        "date_order": "The from date {start} is after the to date {end}.",
        "which_from": "from date",
        "which_to": "to date",
        "bad_k": "The number of sources must be a whole number from {lo} to {hi}.",
        "up_accepted": "accepted, indexing in the background",
        "up_articles": "{n} articles",
        "up_line_errors": "{n} unreadable lines",
        "up_none": "No files selected.",
        "up_too_many": "At most {n} files per upload; the rest were ignored.",
        "rej_name": "invalid file name ({detail})",
        "rej_type": "unsupported file type {suffix}; only .txt, .md, .html and .jsonl are accepted",
        "rej_size": "file too large: {size}, the limit is 5 MB",
        "rej_empty": "the file is empty",
        "rej_parse": "cannot read it: {detail}",
        "rej_io": "cannot save it: {detail}",
        "detail_control": "control characters",
        "detail_dotdot": "a '..' path",
        "detail_empty": "empty",
    },
}


def t(lang: str, key: str, **kw) -> str:
    s = TEXT.get(lang, TEXT["zh"])[key]
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
        day = _day(str(c.get("published") or "")) or t(lang, "no_date")
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
            f'<div class="rag-quote">{html.escape(str(c.get("sentence") or ""))}</div></summary>'
            f'<div class="rag-link">{link}</div>'
            f'<div class="rag-passage">{highlight(str(c.get("passage") or ""), str(c.get("sentence") or ""))}</div>'
            f"</details>"
        )
    return f'<div class="rag-sources">{head}{"".join(items)}</div>'


# ---------------------------------------------------------------- validation helpers

class InputError(ValueError):
    """A user input (date, k, upload) that cannot be used; the message is ready to show."""


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_dates(date_from: str | None, date_to: str | None, lang: str = "zh") -> tuple[str | None, str | None]:
    """Validate the optional YYYY-MM-DD range; returns (from, to) with None for empty boxes."""
    out = []
    for which, value in (("which_from", date_from), ("which_to", date_to)):
        v = (value or "").strip() if isinstance(value, str) else ("" if value is None else str(value).strip())
        if not v:
            out.append(None)
            continue
        try:
            if not _DAY.fullmatch(v):
                raise ValueError
            date.fromisoformat(v)
        except ValueError:
            raise InputError(t(lang, "bad_date", which=t(lang, which), value=v[:40])) from None
        out.append(v)
    if out[0] and out[1] and out[0] > out[1]:
        raise InputError(t(lang, "date_order", start=out[0], end=out[1]))
    return out[0], out[1]


def parse_k(k: Any, lang: str = "zh") -> int:
    try:
        f = float(k)
    except (TypeError, ValueError):
        raise InputError(t(lang, "bad_k", lo=K_MIN, hi=K_MAX)) from None
    if f != int(f) or not K_MIN <= int(f) <= K_MAX:
        raise InputError(t(lang, "bad_k", lo=K_MIN, hi=K_MAX))
    return int(f)


class UploadRejected(ValueError):
    def __init__(self, key: str, **detail):
        self.key, self.detail = key, detail
        super().__init__(t("en", key, **detail))

    def message(self, lang: str) -> str:
        detail = dict(self.detail)
        if "detail_key" in detail:
            detail["detail"] = t(lang, detail.pop("detail_key"))
        return t(lang, self.key, **detail)


_NAME_KEEP = re.compile(r"[^\w.\-()]+", re.UNICODE)


def safe_filename(name: Any) -> str:
    """A safe basename for an uploaded file, or UploadRejected.

    Never trusts the client's path: directories are stripped, '..' components and control characters are
    rejected, anything but letters, digits, '.', '-', '_' and '()' becomes '_', leading dots go, and the
    suffix must be one of UPLOAD_SUFFIXES.
    """
    if not isinstance(name, str) or not name.strip():
        raise UploadRejected("rej_name", detail_key="detail_empty", detail="empty")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in name):
        raise UploadRejected("rej_name", detail_key="detail_control", detail="control characters")
    parts = name.replace("\\", "/").split("/")
    if any(p.strip() == ".." for p in parts):
        raise UploadRejected("rej_name", detail_key="detail_dotdot", detail="a '..' path")
    base = parts[-1].strip()
    base = _NAME_KEEP.sub("_", base).lstrip(".")
    stem, suffix = os.path.splitext(base)
    suffix = suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise UploadRejected("rej_type", suffix=suffix or "(none)")
    stem = stem.strip("._")[:100]
    if not stem or stem in (".", ".."):
        raise UploadRejected("rej_name", detail_key="detail_empty", detail="empty")
    return stem + suffix


def _fmt_size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def check_upload(src: str | os.PathLike, client_name: str | None = None) -> str:
    """Validate one uploaded temp file; returns the sanitised name to store it under (or UploadRejected)."""
    name = safe_filename(client_name if client_name is not None else os.path.basename(os.fspath(src)))
    try:
        size = os.path.getsize(src)
    except OSError as e:
        raise UploadRejected("rej_io", detail=e.strerror or str(e)) from None
    if size > MAX_UPLOAD_BYTES:
        raise UploadRejected("rej_size", size=_fmt_size(size))
    if size == 0:
        raise UploadRejected("rej_empty")
    return name


def store_upload(src: str | os.PathLike, name: str, uploads: Path) -> Path:
    """Copy `src` into `uploads/name`; a different file already there keeps its name and this one gets a hash."""
    uploads.mkdir(parents=True, exist_ok=True)
    data = Path(src).read_bytes()[: MAX_UPLOAD_BYTES + 1]
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRejected("rej_size", size=_fmt_size(len(data)))
    dest = uploads / name
    if dest.exists() and dest.read_bytes() != data:
        stem, suffix = os.path.splitext(name)
        dest = uploads / f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}{suffix}"
    if dest.resolve().parent != uploads.resolve():  # belt and braces: never write outside uploads/
        raise UploadRejected("rej_name", detail_key="detail_dotdot", detail="a '..' path")
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=uploads)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return dest


# ---------------------------------------------------------------- chat history

def message_text(content: Any) -> str:
    """The text of one Chatbot message content (a string, a text block, or a list of blocks)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        if content.get("type", "text") != "text":
            return ""
        return str(content.get("text", content.get("value", "")) or "")
    if isinstance(content, (list, tuple)):
        return "\n".join(s for s in (message_text(c) for c in content) if s)
    text = getattr(content, "text", None)
    return text if isinstance(text, str) else ""


def history_pairs(messages: Iterable[Any] | None) -> list[tuple[str, str]]:
    """Chatbot messages (role/content dicts) -> [(question, answer), ...] of plain text for ask(history=...)."""
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for m in messages or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        text = from_display(message_text(content)).strip()
        if role == "user":
            if pending is not None:
                pairs.append((pending, ""))
            pending = text
        elif role == "assistant" and pending is not None:
            pairs.append((pending, text))
            pending = None
    return pairs


# ---------------------------------------------------------------- background indexing

@dataclass
class IndexJobs:
    """Index builds and uploads run here, one at a time, off the request threads."""

    index_dir: Path
    seed_dir: Path | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    busy: int = 0
    done: int = 0
    total: int = 0
    seeding: bool = False
    last: Any = None  # IndexSummary of the last run
    error: str = ""
    _write: threading.Lock = field(default_factory=threading.Lock)
    _mu: threading.Lock = field(default_factory=threading.Lock)

    def index_exists(self) -> bool:
        return (self.index_dir / "CURRENT").exists()

    def bootstrap(self, background: bool = True) -> threading.Thread | None:
        """Build the index from the seed folder when there is none yet."""
        if self.index_exists():
            self.ready.set()
            return None
        paths = [self.seed_dir] if self.seed_dir and self.seed_dir.is_dir() else []
        print(f"[rag] no index at {self.index_dir}: building it from "
              f"{self.seed_dir if paths else '(no seeds folder: empty index)'}", file=sys.stderr, flush=True)
        return self.submit(paths, seeding=True, background=background)

    def submit(self, paths: Sequence[Path], seeding: bool = False, background: bool = True) -> threading.Thread | None:
        with self._mu:
            self.busy += 1
            if seeding:
                self.seeding = True
        if not background:
            self._run(list(paths), seeding)
            return None
        th = threading.Thread(target=self._run, args=(list(paths), seeding), name="rag-indexer", daemon=True)
        th.start()
        return th

    def _embedder(self):
        if self.index_exists():
            try:
                from .retrieval import searcher

                return searcher(self.index_dir).embedder
            except RagError:
                pass
        return "use"

    def _run(self, paths: list[Path], seeding: bool) -> None:
        from .articles import iter_articles
        from .indexer import index_stream

        try:
            with self._write:
                total = sum(1 for _ in _files(paths))
                with self._mu:
                    self.done, self.total = 0, total

                def counted():
                    for item in iter_articles([str(p) for p in paths], max_bytes=MAX_UPLOAD_BYTES):
                        yield item
                        with self._mu:
                            self.done += 1
                        if seeding and (self.done == total or self.done % 50 == 0):
                            print(f"[rag] indexed {self.done}/{total} files", file=sys.stderr, flush=True)

                summary = index_stream(counted(), self.index_dir, self._embedder(), progress=False, wait=300.0)
            print("[rag] " + summary.render().replace("\n", "\n[rag] "), file=sys.stderr, flush=True)
            with self._mu:
                self.last, self.error = summary, ""
        except Exception as e:  # shown in the status line; the server keeps answering from the old index
            print(f"[rag] indexing failed: {e}", file=sys.stderr, flush=True)
            with self._mu:
                self.error = str(e) or e.__class__.__name__
        finally:
            with self._mu:
                self.busy -= 1
                if seeding:
                    self.seeding = False
            if seeding or self.index_exists():
                self.ready.set()

    @property
    def is_busy(self) -> bool:
        with self._mu:
            return self.busy > 0

    def status(self, lang: str = "zh") -> str:
        parts = []
        with self._mu:
            busy, seeding, done, total, last, error = (self.busy, self.seeding, self.done, self.total, self.last,
                                                       self.error)
        if busy:
            parts.append(t(lang, "status_building_seeds" if seeding else "status_busy", done=done, total=total))
        stats = None
        if self.index_exists():
            try:
                from .retrieval import searcher

                stats = searcher(self.index_dir).refresh().stats()
            except Exception:  # a half-built or damaged index: show what we know
                stats = None
        if stats:
            last_at = (stats.get("last_indexed") or "").replace("T", " ").rstrip("Z") or t(lang, "status_never")
            parts.append(t(lang, "status_index", articles=stats["articles"], chunks=stats["chunks"],
                           embedder=stats["embedder"], last=last_at))
        elif not busy:
            parts.append(t(lang, "status_missing"))
        if last is not None and not busy:
            parts.append(t(lang, "status_last", added=last.added, updated=last.updated, skipped=last.skipped,
                           failed=last.failed))
        if error:
            parts.append(t(lang, "status_error", error=error[:300]))
        return " · ".join(parts)


def _files(paths: Iterable[Path]) -> Iterable[str]:
    from .articles import SUPPORTED_SUFFIXES

    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for f in files:
                    if not f.startswith(".") and os.path.splitext(f)[1].lower() in SUPPORTED_SUFFIXES:
                        yield os.path.join(root, f)
        else:
            yield str(p)


def default_seed_dir() -> Path | None:
    import rag

    for cand in (Path(rag.__file__).resolve().parent.parent / "seeds", Path.cwd() / "seeds"):
        if cand.is_dir():
            return cand
    return None


def status_html(text: str) -> str:
    return f'<div class="rag-status">{html.escape(text)}</div>'


# ---------------------------------------------------------------- the app

def build_app(index_dir: str | os.PathLike | None = None, *, seed_dir: str | os.PathLike | None = None,
              bootstrap: bool = True):
    """The Blocks app for `index_dir` (default: $RAG_INDEX or ./.rag-index), with its queue configured.

    When the index does not exist it is built from `seed_dir` (default: the repo's seeds/ folder) in a
    background thread; questions wait for it and the status line shows the progress.
    """
    import gradio as gr

    from . import dictionary
    from .indexer import default_index_dir
    from .pipeline import ask

    root = Path(index_dir or default_index_dir())
    # The first English question would otherwise wait for the English-Chinese dictionary (0.15 s from its cache,
    # 1.4 s the first time on a machine, when it is parsed) and the glosses it looks up (~0.5 s).
    threading.Thread(target=dictionary.warm, name="rag-dictionary", daemon=True).start()
    jobs = IndexJobs(root, Path(seed_dir) if seed_dir else default_seed_dir())
    if bootstrap:
        jobs.bootstrap(background=True)
    elif jobs.index_exists():
        jobs.ready.set()

    def run_ask(question: str, k: int, date_from: str | None, date_to: str | None,
                history: list[tuple[str, str]] | None, lang: str) -> Answer:
        if not jobs.ready.wait(READY_TIMEOUT):
            raise InputError(t(lang, "not_ready"))
        return ask(question, str(root), k=k, history=history or None, date_from=date_from, date_to=date_to)

    # ---- handlers

    def respond(question, messages, k, date_from, date_to, lang_choice):
        lang = lang_code(lang_choice)
        messages = list(messages or [])
        q = (question or "").strip()
        if not q:
            return messages, gr.skip(), gr.skip(), "", status_html(jobs.status(lang))
        answer = None
        try:
            kk = parse_k(k, lang)
            d_from, d_to = parse_dates(date_from, date_to, lang)
            answer = run_ask(q, kk, d_from, d_to, history_pairs(messages), lang)
            reply = to_display(answer.text)
        except InputError as e:
            reply = "⚠ " + to_display(str(e))
        except (RagError, ValueError, TypeError) as e:
            reply = "⚠ " + to_display(t(lang, "error", error=e))
        messages += [{"role": "user", "content": to_display(q)}, {"role": "assistant", "content": reply}]
        sources = render_sources(answer, lang) if answer is not None else gr.skip()
        state = answer.to_dict() if answer is not None else gr.skip()
        return messages, sources, state, "", status_html(jobs.status(lang))

    def clear(lang_choice):
        return [], render_sources(None, lang_code(lang_choice)), None, ""

    def api_ask(question: str, k: int = K_DEFAULT, date_from: str = "", date_to: str = "") -> dict:
        """Answer `question` from the index: {question, text, abstained, citations: [...], lang}."""
        lang = "en"
        try:
            kk = parse_k(k, lang)
            d_from, d_to = parse_dates(date_from, date_to, lang)
            return run_ask(question, kk, d_from, d_to, None, lang).to_dict()
        except (RagError, ValueError, TypeError) as e:
            raise gr.Error(str(e)) from None

    def on_upload(files, lang_choice):
        lang = lang_code(lang_choice)
        if not files:
            return _upload_html([], [t(lang, "up_none")]), status_html(jobs.status(lang)), gr.skip(), None
        if isinstance(files, (str, os.PathLike)) or hasattr(files, "name") and not isinstance(files, list):
            files = [files]
        notes = []
        if len(files) > MAX_UPLOAD_FILES:
            notes.append(t(lang, "up_too_many", n=MAX_UPLOAD_FILES))
            files = files[:MAX_UPLOAD_FILES]
        rows, accepted = [], []
        uploads = root / UPLOADS_DIR
        from .articles import iter_articles

        for f in files:
            src = os.fspath(getattr(f, "path", None) or getattr(f, "name", None) or f)
            shown = os.path.basename(src.replace("\\", "/"))
            try:
                name = check_upload(src, shown)
                _, result, line_errors = next(iter(iter_articles([src], max_bytes=MAX_UPLOAD_BYTES)))
                if isinstance(result, Exception):
                    raise UploadRejected("rej_parse", detail=getattr(result, "reason", str(result)))
                dest = store_upload(src, name, uploads)
            except UploadRejected as e:
                rows.append((False, shown, e.message(lang)))
                continue
            except OSError as e:
                rows.append((False, shown, t(lang, "rej_io", detail=e.strerror or str(e))))
                continue
            accepted.append(dest)
            msg = t(lang, "up_accepted") + " · " + t(lang, "up_articles", n=len(result))
            if line_errors:
                msg += " · " + t(lang, "up_line_errors", n=len(line_errors))
            rows.append((True, dest.name, msg))
        if accepted:
            jobs.submit(accepted)
        return (_upload_html(rows, notes), status_html(jobs.status(lang)),
                gr.Timer(active=jobs.is_busy), None)

    def tick(lang_choice):
        lang = lang_code(lang_choice)
        return status_html(jobs.status(lang)), gr.Timer(active=jobs.is_busy)

    def relabel(lang_choice, last_answer):
        lang = lang_code(lang_choice)
        return (
            t(lang, "title"),
            gr.update(label=t(lang, "chat")),
            gr.update(label=t(lang, "question"), placeholder=t(lang, "placeholder")),
            gr.update(value=t(lang, "send")),
            gr.update(value=t(lang, "clear")),
            gr.update(label=t(lang, "settings")),
            gr.update(label=t(lang, "k")),
            gr.update(label=t(lang, "date_from"), placeholder=t(lang, "date_placeholder")),
            gr.update(label=t(lang, "date_to"), placeholder=t(lang, "date_placeholder")),
            gr.update(label=t(lang, "upload")),
            render_sources(last_answer, lang),
            status_html(jobs.status(lang)),
        )

    # ---- layout

    L = "zh"
    with gr.Blocks(title="新闻问答 · News Q&A", analytics_enabled=False) as demo:
        with gr.Row():
            title = gr.Markdown(t(L, "title"), elem_id="rag-title")
            lang_radio = gr.Radio(LANG_CHOICES, value=LANG_CHOICES[0], label="语言 / Language", elem_id="rag-lang",
                                  scale=0, min_width=220)
        status = gr.HTML(status_html(jobs.status(L)), elem_id="rag-status")
        last_answer = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label=t(L, "chat"), elem_id="rag-chat", height=460, sanitize_html=True,
                                     render_markdown=True, latex_delimiters=[], allow_tags=False,
                                     feedback_options=None, buttons=["copy"])
                question = gr.Textbox(label=t(L, "question"), placeholder=t(L, "placeholder"), lines=1,
                                      max_lines=4, elem_id="rag-question", autofocus=True)
                with gr.Row():
                    send = gr.Button(t(L, "send"), variant="primary", elem_id="rag-send")
                    clear_btn = gr.Button(t(L, "clear"), elem_id="rag-clear")
                gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[question], label="示例 / Examples")
            with gr.Column(scale=2):
                sources = gr.HTML(render_sources(None, L), elem_id="rag-sources", css_template=SOURCES_CSS,
                                  js_on_load=None)
        with gr.Accordion(t(L, "settings"), open=True, elem_id="rag-settings") as settings:
            with gr.Row():
                k_slider = gr.Slider(K_MIN, K_MAX, value=K_DEFAULT, step=1, label=t(L, "k"), elem_id="rag-k")
                date_from = gr.Textbox(label=t(L, "date_from"), placeholder=t(L, "date_placeholder"),
                                       elem_id="rag-date-from", max_lines=1)
                date_to = gr.Textbox(label=t(L, "date_to"), placeholder=t(L, "date_placeholder"),
                                     elem_id="rag-date-to", max_lines=1)
            upload = gr.File(label=t(L, "upload"), file_count="multiple", type="filepath", elem_id="rag-upload",
                             height=140)
            upload_msg = gr.HTML("", elem_id="rag-upload-msg", js_on_load=None)
        timer = gr.Timer(1.0, active=jobs.is_busy)

        ask_inputs = [question, chatbot, k_slider, date_from, date_to, lang_radio]
        ask_outputs = [chatbot, sources, last_answer, question, status]
        for trigger in (send.click, question.submit):
            trigger(respond, ask_inputs, ask_outputs, api_visibility="private", concurrency_id="ask",
                    show_progress="minimal")
        clear_btn.click(clear, [lang_radio], [chatbot, sources, last_answer, question], api_visibility="private",
                        queue=False)
        chatbot.clear(clear, [lang_radio], [chatbot, sources, last_answer, question], api_visibility="private",
                      queue=False)
        upload.upload(on_upload, [upload, lang_radio], [upload_msg, status, timer, upload],
                      api_visibility="private")
        timer.tick(tick, [lang_radio], [status, timer], api_visibility="private", queue=False,
                   show_progress="hidden")
        demo.load(tick, [lang_radio], [status, timer], api_visibility="private", queue=False,
                  show_progress="hidden")
        lang_radio.change(relabel, [lang_radio, last_answer],
                          [title, chatbot, question, send, clear_btn, settings, k_slider, date_from, date_to,
                           upload, sources, status], api_visibility="private", queue=False)
        gr.api(api_ask, api_name="ask", concurrency_id="ask")

    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_SIZE)
    demo.rag_jobs = jobs  # for tests and serve(): the background indexer
    return demo


def _upload_html(rows: list[tuple[bool, str, str]], notes: list[str]) -> str:
    items = [f'<li class="rag-note">{html.escape(n)}</li>' for n in notes]
    for ok, name, msg in rows:
        mark = "✓" if ok else "✗"
        cls = "rag-ok" if ok else "rag-rejected"
        items.append(f'<li class="{cls}">{mark} <code>{html.escape(name)}</code>: {html.escape(msg)}</li>')
    return f'<ul class="rag-upload-result">{"".join(items)}</ul>' if items else ""


def resolve_address(host: str | None = None, port: int | str | None = None) -> tuple[str, int]:
    host = host or os.environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST
    raw = port if port not in (None, "") else os.environ.get("GRADIO_SERVER_PORT") or DEFAULT_PORT
    try:
        p = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"invalid port {raw!r}: expected a number from 1 to 65535") from None
    if not 0 < p < 65536:
        raise ValueError(f"invalid port {p}: expected a number from 1 to 65535")
    return host, p


def serve(index: str | os.PathLike | None = None, host: str | None = None, port: int | None = None) -> int:
    """Start the UI (blocking) on host:port (default $GRADIO_SERVER_NAME/$GRADIO_SERVER_PORT, else 127.0.0.1:7860)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from .indexer import default_index_dir

    host, port = resolve_address(host, port)
    root = Path(index or default_index_dir())
    print(f"[rag] index: {root.resolve()}", file=sys.stderr, flush=True)
    demo = build_app(root)
    print(f"[rag] serving on http://{host}:{port}", file=sys.stderr, flush=True)
    try:
        demo.launch(server_name=host, server_port=port, ssr_mode=False, show_error=True, max_file_size="20mb",
                    quiet=False)
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0


__all__ = ["build_app", "serve", "render_sources", "highlight", "safe_url", "safe_filename", "to_display",
           "from_display", "history_pairs", "parse_dates", "check_upload"]
