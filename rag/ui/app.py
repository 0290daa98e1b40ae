"""The Gradio chat UI: cited answers, a sources panel, uploads indexed in the background, and an `/ask` API.

`build_app(index_dir)` returns the Blocks; `serve()` launches it (`rag serve`, `python app.py`).

Everything shown from an article (title, passage, sentence, URL) is untrusted: the HTML builders escape every
piece with `html.escape`, only plain http(s) URLs become links, and chat text is escaped for both HTML and
Markdown before it reaches the Chatbot (which keeps Gradio's own sanitiser on as a second layer). Errors of the
server (a damaged index, a failed answer) are shown as a fixed sentence; their details go to the log only.
"""
from __future__ import annotations

import datetime
import functools
import ipaddress
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

from ..api import build_api
from ..errors import CorruptIndexError, IndexMismatchError
from ..index import default_index_dir
from ..lang import dictionary
from ..pipeline import answer_slot, ask
from ..retrieve import searcher
from ..types import Answer
from .inputs import (
    K_DEFAULT,
    K_MAX,
    K_MIN,
    MAX_QUESTION_CHARS,
    InputError,
    history_pairs,
    parse_dates,
    parse_k,
    parse_question,
    trim_chat,
)
from .jobs import IndexJobs
from .library import query_library
from .render import (
    EXAMPLES,
    LANG_CHOICES,
    LIBRARY_JS,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_FILES,
    READING_CSS,
    SCROLL_JS,
    SOURCES_CSS,
    SOURCES_JS,
    confirm_html,
    conversation_markdown,
    lang_code,
    library_html,
    reading_placeholder,
    render_article,
    render_sources,
    stats_html,
    status_html,
    t,
    to_display,
    upload_html,
)
from .uploads import UPLOADS_DIR, default_seed_dir, discard_temp, receive_upload

log = logging.getLogger("rag.ui")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
READY_TIMEOUT = 600.0  # how long a question waits for the first index build
REMOVE_WAIT = 120.0  # how long the library's remove button waits for the worker before showing the list again
CONCURRENCY_LIMIT = 4
QUEUE_SIZE = 64
MAX_TURNS = 100  # answers kept for the Markdown export
EXPORT_TTL = 3600.0  # seconds an exported file stays in the app's export folder
UPLOAD_MODES = ("off", "shared")
# show_error=False: an exception that is not a gr.Error reaches the browser as a bare "Error", never its text
LAUNCH_OPTIONS = dict(ssr_mode=False, show_error=False, max_file_size=MAX_UPLOAD_BYTES)


class Handlers:
    """The app's event callbacks for one index folder and its background indexer (`gr` is the gradio module)."""

    def __init__(self, gr, root: Path, jobs: IndexJobs, changes: bool = False):
        """`changes`: the server lets users change the index (uploads "shared"): the library can remove articles."""
        self.gr, self.root, self.jobs, self.changes = gr, root, jobs, changes
        self.temp_root = gr.utils.get_upload_folder()  # where Gradio keeps uploaded files until we delete them
        self.export_root = Path(tempfile.gettempdir()) / "rag-exports"

    def run_ask(self, question, k, date_from, date_to, history: list[tuple[str, str]] | None, lang: str) -> Answer:
        """The answer, or InputError with a message fit to show (a server failure's details go to the log)."""
        q = parse_question(question, lang)
        kk = parse_k(k, lang)
        d_from, d_to = parse_dates(date_from, date_to, lang)
        if not self.jobs.ready.wait(READY_TIMEOUT):
            raise InputError(t(lang, "not_ready"))
        try:
            # "昨天", "上周", "最新" are read against the server's today
            with answer_slot():  # shared with the HTTP API: the server answers workers() questions at once
                return ask(q, str(self.root), k=kk, history=history or None, date_from=d_from, date_to=d_to,
                           now=datetime.date.today())
        except Exception as e:  # noqa: BLE001 - the inputs were checked above: this is the server's failure
            raise InputError(self.failure(e, lang)) from None

    def failure(self, e: Exception, lang: str) -> str:
        log.error("answering failed: %s: %s", e.__class__.__name__, e, exc_info=e)
        state = "damaged" if isinstance(e, (CorruptIndexError, IndexMismatchError)) else self.jobs.index_state()[0]
        keys = {"damaged": "status_damaged", "unavailable": "status_unavailable", "missing": "index_missing"}
        return t(lang, keys.get(state, "answer_failed"))

    def respond(self, question, messages, k, date_from, date_to, lang_choice):
        gr, jobs = self.gr, self.jobs
        lang = lang_code(lang_choice)
        messages = trim_chat(messages)
        if not isinstance(question, str) or not question.strip():
            return messages, gr.skip(), gr.skip(), "", status_html(jobs.status(lang)), None
        q = question.strip()
        answer = None
        try:
            answer = self.run_ask(question, k, date_from, date_to, history_pairs(messages), lang)
            reply = to_display(answer.text)
        except InputError as e:
            reply = "⚠ " + to_display(str(e))
        shown = q if len(q) <= MAX_QUESTION_CHARS else q[:MAX_QUESTION_CHARS] + "…"
        messages += [{"role": "user", "content": to_display(shown)}, {"role": "assistant", "content": reply}]
        sources = render_sources(answer, lang) if answer is not None else gr.skip()
        state = answer.to_dict() if answer is not None else gr.skip()
        turn = {"question": shown, "text": answer.text, "citations": state["citations"]} if answer else None
        return trim_chat(messages), sources, state, "", status_html(jobs.status(lang)), turn

    @staticmethod
    def add_turn(turn: dict | None, turns: list | None) -> list:
        """The conversation kept for the export, with the answer just given (if there was one)."""
        return (list(turns or []) + ([turn] if isinstance(turn, dict) else []))[-MAX_TURNS:]

    def clear(self, lang_choice):
        lang = lang_code(lang_choice)
        return ([], render_sources(None, lang), None, "", [], None, reading_placeholder(lang),
                self.gr.update(value=None, visible=False))

    # ---------------------------------------------------------------- reading view, library, export

    def open_citation(self, last_answer, lang_choice, num):
        """The reading view of citation `num` of the last answer (its stored article, the sentence marked)."""
        gr = self.gr
        lang = lang_code(lang_choice)
        cits = (last_answer.get("citations") or []) if isinstance(last_answer, dict) else []
        c = next((c for c in cits if isinstance(num, (int, float)) and c.get("number") == int(num)), None)
        if c is None:
            return gr.skip(), gr.skip()
        aid = str(c.get("article_id"))
        try:
            idx = searcher(self.root).refresh()
            article = idx.article(aid)
            copies = getattr(idx, "story_copies", lambda ids: {})([aid]).get(aid, ())  # near-duplicates
        except Exception as e:  # noqa: BLE001 - shown as a fixed sentence, details in the log
            return library_html(None, lang, self.failure(e, lang)), gr.update(open=True)
        others = [x for x in copies if x.article_id != aid]
        return render_article(article, c.get("start"), c.get("end"), lang, others), gr.update(open=True)

    def library(self, delta, page, date_from, date_to, source, title, lang_choice):
        """(the library page's HTML, the page number, the index status) for page `page + delta` (delta None: 1)."""
        gr = self.gr
        lang = lang_code(lang_choice)
        if not self.jobs.index_exists():
            return library_html(None, lang, t(lang, "index_missing")), 1, stats_html(None, lang)
        want = 1 if delta is None else (page if isinstance(page, int) else 1) + delta
        try:
            index = searcher(self.root).refresh()
            result = query_library(index, want, date_from, date_to, source, title, lang)
            stats = index.stats()
        except InputError as e:
            return library_html(None, lang, str(e)), gr.skip(), gr.skip()
        except Exception as e:  # noqa: BLE001 - shown as a fixed sentence, details in the log
            return library_html(None, lang, self.failure(e, lang)), gr.skip(), gr.skip()
        return library_html(result, lang, removable=self.changes), result["page"], stats_html(stats, lang)

    def ask_remove(self, lang_choice, article_id):
        """The confirmation for removing article `article_id` from the library: (its question, the confirmation row
        shown, the article id kept until confirmed)."""
        gr = self.gr
        lang = lang_code(lang_choice)
        if not self.changes or not isinstance(article_id, str) or not article_id or len(article_id) > 64:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            article = searcher(self.root).refresh().article(article_id)
        except Exception as e:  # noqa: BLE001 - shown as a fixed sentence, details in the log
            return confirm_html(self.failure(e, lang)), gr.update(visible=False), None
        if article is None:
            return confirm_html(t(lang, "lib_gone")), gr.update(visible=False), None
        return (confirm_html(t(lang, "lib_confirm_q", title=article.title)), gr.update(visible=True),
                {"id": article_id, "title": article.title})

    def confirm_remove(self, pending, page, date_from, date_to, source, title, lang_choice):
        """Remove the article the user confirmed (through the indexing worker), then show the library again:
        (the message, the confirmation row hidden, no pending article, the page, its number, the index status)."""
        gr = self.gr
        lang = lang_code(lang_choice)
        hide = gr.update(visible=False)
        if not self.changes or not isinstance(pending, dict) or not isinstance(pending.get("id"), str):
            return "", hide, None, gr.skip(), gr.skip(), gr.skip()
        name = str(pending.get("title") or pending["id"])
        if not self.jobs.request_remove_article(pending["id"]):
            return confirm_html(t(lang, "remove_busy")), hide, None, gr.skip(), gr.skip(), gr.skip()
        state = self.jobs.wait_article(pending["id"], REMOVE_WAIT)
        key = {"removed": "lib_removed", "removing": "lib_removing"}.get(state, "lib_remove_failed")
        listing, number, stats = self.library(0, page, date_from, date_to, source, title, lang_choice)
        return confirm_html(t(lang, key, title=name)), hide, None, listing, number, stats

    def cancel_remove(self):
        return "", self.gr.update(visible=False), None

    def export(self, turns, lang_choice):
        """A Markdown file of the conversation for the download box (None, with a notice, when there is none)."""
        if not turns:
            self.gr.Info(t(lang_code(lang_choice), "export_empty"))
            return self.gr.update(value=None, visible=False)
        self.export_root.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in self.export_root.iterdir():  # earlier exports: Gradio has copied them into its own cache
            try:
                if now - old.stat().st_mtime > EXPORT_TTL:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        folder = self.export_root / uuid.uuid4().hex
        folder.mkdir()
        path = folder / "conversation.md"
        path.write_text(conversation_markdown(turns), encoding="utf-8")
        return self.gr.update(value=str(path), visible=True)

    def api_ask(self, question: str, k: int = K_DEFAULT, date_from: str = "", date_to: str = "") -> dict:
        """Answer `question` from the index: {question, text, abstained, citations: [...], lang}."""
        try:
            return self.run_ask(question, k, date_from, date_to, None, "en").to_dict()
        except InputError as e:
            raise self.gr.Error(str(e)) from None

    # ---------------------------------------------------------------- uploads (when they are on)

    def on_upload(self, files, lang_choice):
        gr, jobs = self.gr, self.jobs
        lang = lang_code(lang_choice)
        if not files:
            return upload_html([], [t(lang, "up_none")]), status_html(jobs.status(lang)), gr.skip(), None, None
        if isinstance(files, (str, os.PathLike)) or hasattr(files, "name") and not isinstance(files, list):
            files = [files]
        notes = []
        if len(files) > MAX_UPLOAD_FILES:
            notes.append(t(lang, "up_too_many", n=MAX_UPLOAD_FILES))
            for f in files[MAX_UPLOAD_FILES:]:
                discard_temp(_upload_path(f), self.temp_root)
            files = files[:MAX_UPLOAD_FILES]
        waiting = jobs.too_busy(len(files))
        if waiting:
            for f in files:
                discard_temp(_upload_path(f), self.temp_root)
            notes.append(t(lang, "up_busy", n=waiting))
            return upload_html([], notes), status_html(jobs.status(lang)), gr.skip(), None, None
        rows, batch = [], []
        for f in files:
            row, dest = receive_upload(f, self.root / UPLOADS_DIR, lang, self.temp_root)
            rows.append(row)
            batch.append([row[1], dest is not None, row[2]])
        if any(stored for _, stored, _ in batch):
            jobs.kick()
        return (upload_html(rows, notes), status_html(jobs.status(lang)), gr.Timer(active=jobs.is_busy), None,
                {"rows": batch, "notes": notes})

    def batch_html(self, batch: dict | None, lang: str) -> str:
        """The last upload's rows, each stored file's message as it stands now (queued, indexed, rejected...)."""
        rows = []
        for name, stored, msg in (batch or {}).get("rows", []):
            if stored:
                ok, msg = self.jobs.file_message(name, lang)
                rows.append((ok, name, msg))
            else:
                rows.append((False, name, msg))
        return upload_html(rows, (batch or {}).get("notes", []))

    def on_remove(self, name, lang_choice):
        gr, jobs = self.gr, self.jobs
        lang = lang_code(lang_choice)
        if not isinstance(name, str) or name not in jobs.uploaded_names():
            note = t(lang, "remove_pick")
        elif not jobs.request_remove(name):
            note = t(lang, "remove_busy")
        else:
            batch = {"rows": [[name, True, ""]], "notes": []}
            return (self.batch_html(batch, lang), status_html(jobs.status(lang)), gr.Timer(active=jobs.is_busy),
                    gr.update(choices=jobs.uploaded_names(), value=None), batch)
        return upload_html([], [note]), status_html(jobs.status(lang)), gr.skip(), gr.skip(), None

    def tick(self, lang_choice):
        lang = lang_code(lang_choice)
        return status_html(self.jobs.status(lang)), self.gr.Timer(active=self.jobs.is_busy)

    def tick_uploads(self, lang_choice, batch, chosen):
        lang = lang_code(lang_choice)
        names = self.jobs.uploaded_names()
        return (status_html(self.jobs.status(lang)), self.gr.Timer(active=self.jobs.is_busy),
                self.batch_html(batch, lang) if batch else self.gr.skip(),
                self.gr.update(choices=names, value=chosen if chosen in names else None))

    def relabel(self, ui: SimpleNamespace, lang_choice, last_answer) -> dict:
        gr = self.gr
        lang = lang_code(lang_choice)
        out = {
            ui.title: t(lang, "title"),
            ui.chatbot: gr.update(label=t(lang, "chat")),
            ui.question: gr.update(label=t(lang, "question"), placeholder=t(lang, "placeholder")),
            ui.send: gr.update(value=t(lang, "send")),
            ui.clear_btn: gr.update(value=t(lang, "clear")),
            ui.settings: gr.update(label=t(lang, "settings" if ui.upload else "settings_only")),
            ui.k_slider: gr.update(label=t(lang, "k")),
            ui.date_from: gr.update(label=t(lang, "date_from"), placeholder=t(lang, "date_placeholder")),
            ui.date_to: gr.update(label=t(lang, "date_to"), placeholder=t(lang, "date_placeholder")),
            ui.sources: render_sources(last_answer, lang),
            ui.status: status_html(self.jobs.status(lang)),
        }
        if ui.upload is not None:
            out[ui.upload] = gr.update(label=t(lang, "upload"))
            out[ui.uploaded] = gr.update(label=t(lang, "uploaded"))
            out[ui.remove_btn] = gr.update(value=t(lang, "remove"))
        out.update(self.relabel_tabs(ui, lang))
        return out

    def relabel_tabs(self, ui: SimpleNamespace, lang: str) -> dict:
        """The labels of the tabs, the reading view, the export and the library's controls in `lang`."""
        gr = self.gr
        out = {
            ui.chat_tab: gr.update(label=t(lang, "tab_chat")),
            ui.lib_tab: gr.update(label=t(lang, "tab_library")),
            ui.reading_box: gr.update(label=t(lang, "reading")),
            ui.export_btn: gr.update(value=t(lang, "export")),
            ui.lib_from: gr.update(label=t(lang, "date_from"), placeholder=t(lang, "date_placeholder")),
            ui.lib_to: gr.update(label=t(lang, "date_to"), placeholder=t(lang, "date_placeholder")),
            ui.lib_source: gr.update(label=t(lang, "lib_source")),
            ui.lib_title: gr.update(label=t(lang, "lib_title")),
            ui.lib_search: gr.update(value=t(lang, "lib_search")),
            ui.lib_prev: gr.update(value=t(lang, "lib_prev")),
            ui.lib_next: gr.update(value=t(lang, "lib_next")),
        }
        if ui.lib_confirm_btn is not None:
            out[ui.lib_confirm_btn] = gr.update(value=t(lang, "lib_confirm"))
            out[ui.lib_cancel_btn] = gr.update(value=t(lang, "lib_cancel"))
        return out


def _upload_path(f) -> str:
    return os.fspath(getattr(f, "path", None) or getattr(f, "name", None) or f)


def upload_box(gr, **kw):
    """A gr.File whose upload event hands over the uploaded paths only: gradio 6's File.preprocess also leaves an
    empty temp file in the upload cache for every file, which nothing deletes. (Not a subclass: gradio writes a .pyi
    stub beside the module of every Component subclass.)"""
    from gradio.utils import NamedString

    box = gr.File(type="filepath", **kw)
    box._process_single_file = lambda f: NamedString(f.path)
    return box


def build_app(index_dir: str | os.PathLike | None = None, *, seed_dir: str | os.PathLike | None = None,
              bootstrap: bool = True, uploads: str = "shared", worker_command: list[str] | None = None):
    """The Blocks app for `index_dir` (default: $RAG_INDEX or ./.rag-index), with its queue configured.

    When the index does not exist it is built from `seed_dir` (default: the repo's seeds/ folder) by a worker
    process; questions wait for it and the status line shows the progress. `uploads`: "shared" (an upload panel
    whose files join the index everyone searches, and a list to remove them) or "off" (no upload panel at all).
    `worker_command`: the argv prefix of the indexing worker (tests use one with a fake embedder).
    """
    import gradio as gr

    if uploads not in UPLOAD_MODES:
        raise ValueError(f"uploads must be one of {', '.join(UPLOAD_MODES)}, got {uploads!r}")
    root = Path(index_dir or default_index_dir())
    # The first English question would otherwise wait for the English-Chinese dictionary (0.15 s from its cache,
    # 1.4 s the first time on a machine, when it is parsed) and the glosses it looks up (~0.5 s).
    threading.Thread(target=dictionary.warm, name="rag-dictionary", daemon=True).start()
    jobs = IndexJobs(root, seed_dir or default_seed_dir(), worker_command)
    if bootstrap:
        jobs.bootstrap(background=True)
    elif jobs.index_exists():
        jobs.ready.set()
    handlers = Handlers(gr, root, jobs, changes=uploads == "shared")
    with gr.Blocks(title="新闻问答 · News Q&A", analytics_enabled=False) as demo:
        ui = build_layout(gr, jobs, uploads == "shared")
        wire_events(gr, demo, ui, handlers)
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_SIZE)
    demo.rag_jobs = jobs  # for tests and serve(): the background indexer
    return demo


def build_layout(gr, jobs: IndexJobs, uploads: bool) -> SimpleNamespace:
    """The components, in Chinese first, inside the open Blocks; returns them by name (upload ones None when off)."""
    L = "zh"
    with gr.Row():
        title = gr.Markdown(t(L, "title"), elem_id="rag-title")
        lang_radio = gr.Radio(LANG_CHOICES, value=LANG_CHOICES[0], label="语言 / Language", elem_id="rag-lang",
                              scale=0, min_width=220)
    status = gr.HTML(status_html(jobs.status(L)), elem_id="rag-status")
    last_answer = gr.State(None)
    turns = gr.State([])  # the answers given, for the export
    turn = gr.State(None)  # the answer just given (None after a refusal), added to `turns` next
    with gr.Tabs(elem_id="rag-tabs"):
        with gr.Tab(t(L, "tab_chat"), elem_id="rag-chat-tab") as chat_tab:
            chat = build_chat(gr, jobs, uploads, L)
        with gr.Tab(t(L, "tab_library"), elem_id="rag-library-tab") as lib_tab:
            lib = build_library(gr, L, uploads)
    timer = gr.Timer(1.0, active=jobs.is_busy)
    return SimpleNamespace(title=title, lang_radio=lang_radio, status=status, last_answer=last_answer, turns=turns,
                           turn=turn, chat_tab=chat_tab, lib_tab=lib_tab, timer=timer, **chat, **lib)


def build_library(gr, L: str, changes: bool = False) -> dict:
    """The library tab: filters, the index status, a page of articles and prev/next; with `changes`, a remove
    button per article and the row that confirms it."""
    lib_stats = gr.HTML("", elem_id="rag-lib-stats", js_on_load=None)
    with gr.Row():
        lib_from = gr.Textbox(label=t(L, "date_from"), placeholder=t(L, "date_placeholder"), max_lines=1,
                              elem_id="rag-lib-from")
        lib_to = gr.Textbox(label=t(L, "date_to"), placeholder=t(L, "date_placeholder"), max_lines=1,
                            elem_id="rag-lib-to")
        lib_source = gr.Textbox(label=t(L, "lib_source"), max_lines=1, elem_id="rag-lib-source")
        lib_title = gr.Textbox(label=t(L, "lib_title"), max_lines=1, elem_id="rag-lib-title")
    with gr.Row():
        lib_search = gr.Button(t(L, "lib_search"), variant="primary", elem_id="rag-lib-search")
        lib_prev = gr.Button(t(L, "lib_prev"), elem_id="rag-lib-prev")
        lib_next = gr.Button(t(L, "lib_next"), elem_id="rag-lib-next")
    lib_msg = gr.HTML("", elem_id="rag-lib-msg", js_on_load=None)
    lib_confirm = lib_confirm_btn = lib_cancel_btn = lib_pending = None
    if changes:
        with gr.Row(visible=False, elem_id="rag-lib-confirm-row") as lib_confirm:
            lib_confirm_btn = gr.Button(t(L, "lib_confirm"), variant="stop", elem_id="rag-lib-confirm")
            lib_cancel_btn = gr.Button(t(L, "lib_cancel"), elem_id="rag-lib-cancel")
        lib_pending = gr.State(None)
    lib_list = gr.HTML(library_html(None, L, ""), elem_id="rag-lib-list", css_template=READING_CSS,
                       js_on_load=LIBRARY_JS if changes else None)
    lib_page = gr.State(1)
    return dict(lib_stats=lib_stats, lib_from=lib_from, lib_to=lib_to, lib_source=lib_source, lib_title=lib_title,
                lib_search=lib_search, lib_prev=lib_prev, lib_next=lib_next, lib_list=lib_list, lib_page=lib_page,
                lib_msg=lib_msg, lib_confirm=lib_confirm, lib_confirm_btn=lib_confirm_btn,
                lib_cancel_btn=lib_cancel_btn, lib_pending=lib_pending)


def build_chat(gr, jobs: IndexJobs, uploads: bool, L: str) -> dict:
    """The chat tab: chat, sources, the reading view, export, settings and uploads."""
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label=t(L, "chat"), elem_id="rag-chat", height=460, sanitize_html=True,
                                 render_markdown=True, latex_delimiters=[], allow_tags=False,
                                 feedback_options=None, buttons=["copy"])
            question = gr.Textbox(label=t(L, "question"), placeholder=t(L, "placeholder"), lines=1,
                                  max_lines=4, max_length=MAX_QUESTION_CHARS, elem_id="rag-question", autofocus=True)
            with gr.Row():
                send = gr.Button(t(L, "send"), variant="primary", elem_id="rag-send")
                clear_btn = gr.Button(t(L, "clear"), elem_id="rag-clear")
                export_btn = gr.Button(t(L, "export"), elem_id="rag-export")
            export_file = gr.File(label="Markdown", elem_id="rag-export-file", interactive=False, visible=False)
            gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[question], label="示例 / Examples")
        with gr.Column(scale=2):
            sources = gr.HTML(render_sources(None, L), elem_id="rag-sources", css_template=SOURCES_CSS,
                              js_on_load=SOURCES_JS)
    with gr.Accordion(t(L, "reading"), open=False, elem_id="rag-reading-box") as reading_box:
        reading = gr.HTML(reading_placeholder(L), elem_id="rag-reading", css_template=READING_CSS, js_on_load=None)
    upload = upload_msg = uploaded = remove_btn = batch = None
    with gr.Accordion(t(L, "settings" if uploads else "settings_only"), open=True, elem_id="rag-settings") as settings:
        with gr.Row():
            k_slider = gr.Slider(K_MIN, K_MAX, value=K_DEFAULT, step=1, label=t(L, "k"), elem_id="rag-k")
            date_from = gr.Textbox(label=t(L, "date_from"), placeholder=t(L, "date_placeholder"),
                                   elem_id="rag-date-from", max_lines=1)
            date_to = gr.Textbox(label=t(L, "date_to"), placeholder=t(L, "date_placeholder"),
                                 elem_id="rag-date-to", max_lines=1)
        if uploads:
            upload = upload_box(gr, label=t(L, "upload"), file_count="multiple", elem_id="rag-upload", height=140)
            upload_msg = gr.HTML("", elem_id="rag-upload-msg", js_on_load=None)
            with gr.Row():
                uploaded = gr.Dropdown(choices=jobs.uploaded_names(), value=None, label=t(L, "uploaded"),
                                       elem_id="rag-uploaded", interactive=True, scale=3)
                remove_btn = gr.Button(t(L, "remove"), elem_id="rag-remove", scale=1)
            batch = gr.State(None)
    return dict(chatbot=chatbot, question=question, send=send, clear_btn=clear_btn, sources=sources,
                settings=settings, k_slider=k_slider, date_from=date_from, date_to=date_to, upload=upload,
                upload_msg=upload_msg, uploaded=uploaded, remove_btn=remove_btn, batch=batch,
                export_btn=export_btn, export_file=export_file, reading_box=reading_box, reading=reading)


def wire_events(gr, demo, ui: SimpleNamespace, h: Handlers) -> None:
    """Connect the components of `build_layout` to the handlers, and add the `/ask` API endpoint."""
    ask_inputs = [ui.question, ui.chatbot, ui.k_slider, ui.date_from, ui.date_to, ui.lang_radio]
    ask_outputs = [ui.chatbot, ui.sources, ui.last_answer, ui.question, ui.status, ui.turn]
    for trigger in (ui.send.click, ui.question.submit):
        trigger(h.respond, ask_inputs, ask_outputs, api_visibility="private", concurrency_id="ask",
                show_progress="minimal").then(h.add_turn, [ui.turn, ui.turns], [ui.turns], api_visibility="private",
                                              queue=False, show_progress="hidden")
    cleared = [ui.chatbot, ui.sources, ui.last_answer, ui.question, ui.turns, ui.turn, ui.reading, ui.export_file]
    ui.clear_btn.click(h.clear, [ui.lang_radio], cleared, api_visibility="private", queue=False)
    ui.chatbot.clear(h.clear, [ui.lang_radio], cleared, api_visibility="private", queue=False)
    quiet = dict(api_visibility="private", queue=False, show_progress="hidden")
    wire_reading(gr, ui, h, quiet)
    if ui.upload is not None:
        ui.upload.upload(h.on_upload, [ui.upload, ui.lang_radio],
                         [ui.upload_msg, ui.status, ui.timer, ui.upload, ui.batch], api_visibility="private",
                         concurrency_id="uploads")
        ui.remove_btn.click(h.on_remove, [ui.uploaded, ui.lang_radio],
                            [ui.upload_msg, ui.status, ui.timer, ui.uploaded, ui.batch], api_visibility="private",
                            concurrency_id="uploads")
        tick_io = ([ui.lang_radio, ui.batch, ui.uploaded], [ui.status, ui.timer, ui.upload_msg, ui.uploaded])
        ui.timer.tick(h.tick_uploads, *tick_io, **quiet)
        demo.load(h.tick_uploads, *tick_io, **quiet)
    else:
        ui.timer.tick(h.tick, [ui.lang_radio], [ui.status, ui.timer], **quiet)
        demo.load(h.tick, [ui.lang_radio], [ui.status, ui.timer], **quiet)
    labelled = [ui.title, ui.chatbot, ui.question, ui.send, ui.clear_btn, ui.settings, ui.k_slider, ui.date_from,
                ui.date_to, ui.sources, ui.status]
    if ui.upload is not None:
        labelled += [ui.upload, ui.uploaded, ui.remove_btn]
    labelled += [ui.chat_tab, ui.lib_tab, ui.reading_box, ui.export_btn, ui.lib_from, ui.lib_to, ui.lib_source,
                 ui.lib_title, ui.lib_search, ui.lib_prev, ui.lib_next]
    if ui.lib_confirm_btn is not None:
        labelled += [ui.lib_confirm_btn, ui.lib_cancel_btn]
    ui.lang_radio.change(lambda lang, last: h.relabel(ui, lang, last), [ui.lang_radio, ui.last_answer], labelled,
                         api_visibility="private", queue=False)
    gr.api(h.api_ask, api_name="ask", concurrency_id="ask")


def wire_reading(gr, ui: SimpleNamespace, h: Handlers, quiet: dict) -> None:
    """The reading view (a citation's "read" button), the Markdown export and the library tab's events."""
    def open_citation(last_answer, lang_choice, evt):
        data = getattr(evt, "_data", None)
        return h.open_citation(last_answer, lang_choice, data.get("num") if isinstance(data, dict) else None)

    open_citation.__annotations__ = {"evt": gr.EventData}  # gradio passes the event's data by this annotation
    ui.sources.click(open_citation, [ui.last_answer, ui.lang_radio], [ui.reading, ui.reading_box],
                     **quiet).then(None, js=SCROLL_JS, **quiet)
    ui.export_btn.click(h.export, [ui.turns, ui.lang_radio], [ui.export_file], **quiet)
    filters = [ui.lib_page, ui.lib_from, ui.lib_to, ui.lib_source, ui.lib_title, ui.lang_radio]
    lib_out = [ui.lib_list, ui.lib_page, ui.lib_stats]
    for trigger, delta in ((ui.lib_tab.select, None), (ui.lib_search.click, None), (ui.lib_prev.click, -1),
                           (ui.lib_next.click, 1)):
        trigger(functools.partial(h.library, delta), filters, lib_out, **quiet)
    if ui.lib_confirm is not None:  # removing an article from the library (the server allows changes)
        def ask_remove(lang_choice, evt):
            data = getattr(evt, "_data", None)
            return h.ask_remove(lang_choice, data.get("id") if isinstance(data, dict) else None)

        ask_remove.__annotations__ = {"evt": gr.EventData}
        ui.lib_list.click(ask_remove, [ui.lang_radio], [ui.lib_msg, ui.lib_confirm, ui.lib_pending], **quiet)
        ui.lib_confirm_btn.click(h.confirm_remove, [ui.lib_pending, *filters],
                                 [ui.lib_msg, ui.lib_confirm, ui.lib_pending, *lib_out], api_visibility="private",
                                 concurrency_id="uploads", show_progress="minimal")
        ui.lib_cancel_btn.click(h.cancel_remove, None, [ui.lib_msg, ui.lib_confirm, ui.lib_pending], **quiet)


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


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_uploads(mode: str | None, host: str) -> str:
    """The upload mode: `mode` (--uploads), else $RAG_UPLOADS, else "shared" on a loopback address, "off" on others."""
    raw = (mode or os.environ.get("RAG_UPLOADS") or "").strip().lower()
    if not raw:
        return "shared" if is_loopback(host) else "off"
    if raw not in UPLOAD_MODES:
        src = "--uploads" if mode else "$RAG_UPLOADS"
        raise ValueError(f"{src} {raw!r}: expected one of {', '.join(UPLOAD_MODES)}")
    return raw


def setup_logging() -> None:
    """The server's log: rag's messages on stderr (answer failures with their tracebacks, the indexer's runs)."""
    logger = logging.getLogger("rag")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[rag] %(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def server_app(root: Path, *, uploads: str = "off", ui: bool = True, **build):
    """The server's ASGI app and its Blocks: the HTTP API (rag.api: OpenAI-compatible chat, /v1/ask, /docs) with
    the chat UI mounted at / (`ui=False`: the API alone, and Blocks None). `build` goes to build_app."""
    app = build_api(root)
    if not ui:
        return app, None
    import gradio as gr

    demo = build_app(root, uploads=uploads, **build)
    return gr.mount_gradio_app(app, demo, path="/", **LAUNCH_OPTIONS), demo


def serve(index: str | os.PathLike | None = None, host: str | None = None, port: int | None = None,
          uploads: str | None = None, api_only: bool = False) -> int:
    """Start the UI and the HTTP API (blocking) on host:port (default $GRADIO_SERVER_NAME/$GRADIO_SERVER_PORT, else
    127.0.0.1:7860); `uploads`: "off" or "shared" (default $RAG_UPLOADS, else shared on a loopback address and off
    on any other); `api_only`: no UI."""
    import uvicorn

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    setup_logging()
    host, port = resolve_address(host, port)
    mode = "off" if api_only else resolve_uploads(uploads, host)
    root = Path(index or default_index_dir())
    log.info("index: %s; uploads: %s; ui: %s", root.resolve(), mode, "off" if api_only else "on")
    if mode == "shared" and not is_loopback(host):
        log.warning("uploads are on at %s: anyone who can reach it can add articles to the index and remove them", host)
    app, demo = server_app(root, uploads=mode, ui=not api_only)
    log.info("serving on http://%s:%s (API: /v1, OpenAPI: /docs)", host, port)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except KeyboardInterrupt:
        pass
    finally:
        if demo is not None:
            demo.rag_jobs.close()
            demo.close()
    return 0
