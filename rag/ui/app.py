"""The Gradio chat UI: cited answers, a sources panel, uploads indexed in the background, and an `/ask` API.

`build_app(index_dir)` returns the Blocks; `serve()` launches it (`rag serve`, `python app.py`).

Everything shown from an article (title, passage, sentence, URL) is untrusted: the HTML builders escape every
piece with `html.escape`, only plain http(s) URLs become links, and chat text is escaped for both HTML and
Markdown before it reaches the Chatbot (which keeps Gradio's own sanitiser on as a second layer).
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

from ..errors import RagError
from ..index import default_index_dir
from ..lang import dictionary
from ..pipeline import ask
from ..types import Answer
from .inputs import K_DEFAULT, K_MAX, K_MIN, InputError, history_pairs, parse_dates, parse_k
from .render import (
    EXAMPLES,
    LANG_CHOICES,
    SOURCES_CSS,
    lang_code,
    render_sources,
    status_html,
    t,
    to_display,
    upload_html,
)
from .uploads import (
    MAX_UPLOAD_FILES,
    UPLOADS_DIR,
    IndexJobs,
    default_seed_dir,
    receive_upload,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
READY_TIMEOUT = 600.0  # how long a question waits for the first index build
CONCURRENCY_LIMIT = 4
QUEUE_SIZE = 64


class Handlers:
    """The app's event callbacks for one index folder and its background indexer (`gr` is the gradio module)."""

    def __init__(self, gr, root: Path, jobs: IndexJobs):
        self.gr, self.root, self.jobs = gr, root, jobs

    def run_ask(self, question: str, k: int, date_from: str | None, date_to: str | None,
                history: list[tuple[str, str]] | None, lang: str) -> Answer:
        if not self.jobs.ready.wait(READY_TIMEOUT):
            raise InputError(t(lang, "not_ready"))
        return ask(question, str(self.root), k=k, history=history or None, date_from=date_from, date_to=date_to)

    def respond(self, question, messages, k, date_from, date_to, lang_choice):
        gr, jobs = self.gr, self.jobs
        lang = lang_code(lang_choice)
        messages = list(messages or [])
        q = (question or "").strip()
        if not q:
            return messages, gr.skip(), gr.skip(), "", status_html(jobs.status(lang))
        answer = None
        try:
            kk = parse_k(k, lang)
            d_from, d_to = parse_dates(date_from, date_to, lang)
            answer = self.run_ask(q, kk, d_from, d_to, history_pairs(messages), lang)
            reply = to_display(answer.text)
        except InputError as e:
            reply = "⚠ " + to_display(str(e))
        except (RagError, ValueError, TypeError) as e:
            reply = "⚠ " + to_display(t(lang, "error", error=e))
        messages += [{"role": "user", "content": to_display(q)}, {"role": "assistant", "content": reply}]
        sources = render_sources(answer, lang) if answer is not None else gr.skip()
        state = answer.to_dict() if answer is not None else gr.skip()
        return messages, sources, state, "", status_html(jobs.status(lang))

    def clear(self, lang_choice):
        return [], render_sources(None, lang_code(lang_choice)), None, ""

    def api_ask(self, question: str, k: int = K_DEFAULT, date_from: str = "", date_to: str = "") -> dict:
        """Answer `question` from the index: {question, text, abstained, citations: [...], lang}."""
        lang = "en"
        try:
            kk = parse_k(k, lang)
            d_from, d_to = parse_dates(date_from, date_to, lang)
            return self.run_ask(question, kk, d_from, d_to, None, lang).to_dict()
        except (RagError, ValueError, TypeError) as e:
            raise self.gr.Error(str(e)) from None

    def on_upload(self, files, lang_choice):
        gr, jobs = self.gr, self.jobs
        lang = lang_code(lang_choice)
        if not files:
            return upload_html([], [t(lang, "up_none")]), status_html(jobs.status(lang)), gr.skip(), None
        if isinstance(files, (str, os.PathLike)) or hasattr(files, "name") and not isinstance(files, list):
            files = [files]
        notes = []
        if len(files) > MAX_UPLOAD_FILES:
            notes.append(t(lang, "up_too_many", n=MAX_UPLOAD_FILES))
            files = files[:MAX_UPLOAD_FILES]
        rows, accepted = [], []
        uploads = self.root / UPLOADS_DIR
        for f in files:
            row, dest = receive_upload(f, uploads, lang)
            rows.append(row)
            if dest is not None:
                accepted.append(dest)
        if accepted:
            jobs.submit(accepted)
        return (upload_html(rows, notes), status_html(jobs.status(lang)),
                gr.Timer(active=jobs.is_busy), None)

    def tick(self, lang_choice):
        lang = lang_code(lang_choice)
        return status_html(self.jobs.status(lang)), self.gr.Timer(active=self.jobs.is_busy)

    def relabel(self, lang_choice, last_answer):
        gr = self.gr
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
            status_html(self.jobs.status(lang)),
        )


def build_app(index_dir: str | os.PathLike | None = None, *, seed_dir: str | os.PathLike | None = None,
              bootstrap: bool = True):
    """The Blocks app for `index_dir` (default: $RAG_INDEX or ./.rag-index), with its queue configured.

    When the index does not exist it is built from `seed_dir` (default: the repo's seeds/ folder) in a
    background thread; questions wait for it and the status line shows the progress.
    """
    import gradio as gr

    root = Path(index_dir or default_index_dir())
    # The first English question would otherwise wait for the English-Chinese dictionary (0.15 s from its cache,
    # 1.4 s the first time on a machine, when it is parsed) and the glosses it looks up (~0.5 s).
    threading.Thread(target=dictionary.warm, name="rag-dictionary", daemon=True).start()
    jobs = IndexJobs(root, Path(seed_dir) if seed_dir else default_seed_dir())
    if bootstrap:
        jobs.bootstrap(background=True)
    elif jobs.index_exists():
        jobs.ready.set()
    handlers = Handlers(gr, root, jobs)
    with gr.Blocks(title="新闻问答 · News Q&A", analytics_enabled=False) as demo:
        ui = build_layout(gr, jobs)
        wire_events(gr, demo, ui, handlers)
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_SIZE)
    demo.rag_jobs = jobs  # for tests and serve(): the background indexer
    return demo


def build_layout(gr, jobs: IndexJobs) -> SimpleNamespace:
    """The components, in Chinese first, inside the open Blocks; returns them by name."""
    L = "zh"
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
    return SimpleNamespace(title=title, lang_radio=lang_radio, status=status, last_answer=last_answer,
                           chatbot=chatbot, question=question, send=send, clear_btn=clear_btn, sources=sources,
                           settings=settings, k_slider=k_slider, date_from=date_from, date_to=date_to,
                           upload=upload, upload_msg=upload_msg, timer=timer)


def wire_events(gr, demo, ui: SimpleNamespace, h: Handlers) -> None:
    """Connect the components of `build_layout` to the handlers, and add the `/ask` API endpoint."""
    ask_inputs = [ui.question, ui.chatbot, ui.k_slider, ui.date_from, ui.date_to, ui.lang_radio]
    ask_outputs = [ui.chatbot, ui.sources, ui.last_answer, ui.question, ui.status]
    for trigger in (ui.send.click, ui.question.submit):
        trigger(h.respond, ask_inputs, ask_outputs, api_visibility="private", concurrency_id="ask",
                show_progress="minimal")
    cleared = [ui.chatbot, ui.sources, ui.last_answer, ui.question]
    ui.clear_btn.click(h.clear, [ui.lang_radio], cleared, api_visibility="private", queue=False)
    ui.chatbot.clear(h.clear, [ui.lang_radio], cleared, api_visibility="private", queue=False)
    ui.upload.upload(h.on_upload, [ui.upload, ui.lang_radio], [ui.upload_msg, ui.status, ui.timer, ui.upload],
                     api_visibility="private")
    ui.timer.tick(h.tick, [ui.lang_radio], [ui.status, ui.timer], api_visibility="private", queue=False,
                  show_progress="hidden")
    demo.load(h.tick, [ui.lang_radio], [ui.status, ui.timer], api_visibility="private", queue=False,
              show_progress="hidden")
    ui.lang_radio.change(h.relabel, [ui.lang_radio, ui.last_answer],
                         [ui.title, ui.chatbot, ui.question, ui.send, ui.clear_btn, ui.settings, ui.k_slider,
                          ui.date_from, ui.date_to, ui.upload, ui.sources, ui.status],
                         api_visibility="private", queue=False)
    gr.api(h.api_ask, api_name="ask", concurrency_id="ask")


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
