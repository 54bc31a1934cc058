"""The Gradio chat UI: questions with streamed, cited answers, filters, uploads and exports.

A thin layer over `ui.service.Service`: it turns clicks into service calls and results into
HTML (`ui.render`, which escapes everything from documents). No retrieval logic lives here.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from rag.answer.types import Answer, AnswerDelta, Turn
from rag.errors import PROJECT_ERRORS
from rag.export import FORMATS
from rag.ingest import SUPPORTED_SUFFIXES
from rag.types import Filters
from rag.vocabulary import DATE_RE
from ui import render
from ui.auth import Role, Security, allows

if TYPE_CHECKING:
    from rag.answer.timeline import Timeline
    from ui.service import Service

log = logging.getLogger(__name__)

UPLOAD_TYPES = sorted(SUPPORTED_SUFFIXES)
MODE_LABELS = {
    "reader": "Reader (the model finds the phrase, the source is quoted)",
    "quote": "Quote (source sentences, instant, no model)",
    "generate": "Written (the model writes, every sentence checked)",
}
EXPORT_FORMATS = [(spec.label, name) for name, spec in FORMATS.items()]
_STAGES = {"read": "Reading files", "embed": "Embedding passages"}
_DOC_COLUMNS = ["Title", "Date", "Source", "Lang", "Passages", "Id"]
# An export file only has to live until Gradio has copied it into its cache, which it does
# in the same request; older ones are removed at the next export. Gradio's copies are
# removed by `delete_cache` (every 15 minutes, those older than an hour; all at shutdown).
EXPORT_KEEP_SECONDS = 120
GRADIO_DELETE_CACHE = (900, 3600)


@dataclass(frozen=True)
class ChatTurn:
    """One question in the chat and what came of it: an answer or an error message."""

    question: str
    answer: Answer | None = None
    error: str | None = None


def build_ui(service: Service, security: Security | None = None) -> gr.Blocks:
    """The chat UI over `service`, to mount with `gr.mount_gradio_app` (its CSS is inline);
    with `security`, writes need an editor's token."""
    modes = _answer_modes(service)
    with gr.Blocks(title="newsrag", fill_width=True, delete_cache=GRADIO_DELETE_CACHE) as demo:
        turns = gr.State([])
        selected = gr.State(None)
        header = gr.HTML(_header({}), js_on_load=None, elem_id="nr-header")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"), gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=420):
                    chat = gr.Chatbot(
                        label="Conversation",
                        elem_id="nr-chat",
                        height="62vh",
                        latex_delimiters=[],
                        feedback_options=None,
                        buttons=[],
                        placeholder="Ask a question about the archive, in German or English. "
                        "Follow-up questions build on the earlier ones; the bin icon starts a "
                        "new conversation.",
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            show_label=False,
                            placeholder="e.g. Welche Waffen lieferten die USA an die Ukraine?",
                            elem_id="nr-question",
                            scale=5,
                            lines=1,
                            max_lines=4,
                            autofocus=True,
                        )
                        ask_btn = gr.Button(
                            "Ask", variant="primary", scale=1, min_width=80, elem_id="nr-ask"
                        )
                    with gr.Accordion("Filters", open=False, elem_id="nr-filters"):
                        with gr.Row():
                            date_from = gr.Textbox(
                                label="From date",
                                placeholder="2022 or 2022-06 or 2022-06-01",
                                elem_id="nr-date-from",
                            )
                            date_to = gr.Textbox(
                                label="To date",
                                placeholder="2023-06",
                                elem_id="nr-date-to",
                            )
                        source_filter = gr.Dropdown(
                            label="Sources (none selected: all)",
                            choices=[],
                            multiselect=True,
                            elem_id="nr-source-filter",
                        )
                        mode = gr.Dropdown(
                            label="Answer mode",
                            choices=[(MODE_LABELS.get(m, m), m) for m in modes],
                            value=modes[0] if modes else None,
                            visible=len(modes) > 1,
                            elem_id="nr-mode",
                        )
                    with gr.Row(equal_height=False, elem_id="nr-export-row"):
                        export_fmt = gr.Dropdown(
                            label="Export format",
                            choices=EXPORT_FORMATS,
                            value="markdown",
                            elem_id="nr-export-format",
                            scale=2,
                            min_width=140,
                        )
                        export_scope = gr.Radio(
                            label="Export what",
                            choices=[
                                ("Shown answer", "answer"),
                                ("Whole conversation", "conversation"),
                            ],
                            value="answer",
                            elem_id="nr-export-scope",
                            scale=3,
                        )
                        export_btn = gr.Button(
                            "Export", elem_id="nr-export", scale=1, min_width=90, size="md"
                        )
                    export_file = gr.File(
                        label="Download",
                        interactive=False,
                        visible=False,
                        elem_id="nr-download",
                    )
                with gr.Column(scale=2, min_width=360):
                    sources = gr.HTML(
                        render.sources(None), js_on_load=None, elem_id="nr-source-panel"
                    )
            with gr.Tab("Timeline", id="timeline"):
                with gr.Row(equal_height=True):
                    tl_query = gr.Textbox(
                        show_label=False,
                        placeholder="What the timeline is about, e.g. Stoltenberg Verhandlungen",
                        elem_id="nr-tl-query",
                        scale=5,
                        lines=1,
                        max_lines=2,
                    )
                    tl_by = gr.Radio(
                        label="Group by",
                        choices=[("Month", "month"), ("Day", "day"), ("Year", "year")],
                        value="month",
                        elem_id="nr-tl-by",
                        scale=2,
                    )
                    tl_btn = gr.Button(
                        "Show timeline", variant="primary", scale=1, min_width=120,
                        elem_id="nr-tl-run",
                    )  # fmt: skip
                with gr.Accordion("Filters", open=False, elem_id="nr-tl-filters"):
                    with gr.Row():
                        tl_from = gr.Textbox(
                            label="From date",
                            placeholder="2022 or 2022-06 or 2022-06-01",
                            elem_id="nr-tl-date-from",
                        )
                        tl_to = gr.Textbox(
                            label="To date", placeholder="2023-06", elem_id="nr-tl-date-to"
                        )
                    tl_sources = gr.Dropdown(
                        label="Sources (none selected: all)",
                        choices=[],
                        multiselect=True,
                        elem_id="nr-tl-source-filter",
                    )
                tl_plot = gr.BarPlot(
                    _coverage(None),
                    x="period",
                    y="articles",
                    sort="x",
                    label="Articles per period (copies of one story count each; undated ones "
                    "are not on the axis)",
                    x_title="Period",
                    y_title="Articles",
                    height=260,
                    elem_id="nr-tl-plot",
                )
                tl_view = gr.HTML(render.timeline(None), js_on_load=None, elem_id="nr-timeline")
            with gr.Tab("Documents", id="documents"), gr.Row():
                with gr.Column(scale=2, min_width=320):
                    files = gr.File(
                        label="Add documents (txt, md, html, pdf, jsonl)",
                        file_count="multiple",
                        file_types=UPLOAD_TYPES,
                        elem_id="nr-upload",
                    )
                    add_btn = gr.Button("Add to index", variant="primary", elem_id="nr-add")
                    upload_status = gr.HTML(
                        "", js_on_load=None, min_height=90, elem_id="nr-upload-status"
                    )
                with gr.Column(scale=3, min_width=420):
                    docs = gr.Dataframe(
                        headers=_DOC_COLUMNS,
                        datatype="str",
                        interactive=False,
                        wrap=True,
                        max_height=480,
                        column_widths=["31%", "11%", "27%", "7%", "11%", "13%"],
                        show_search="search",
                        label="Indexed documents (click a row to select it for removal)",
                        elem_id="nr-documents",
                    )
                    with gr.Row(equal_height=False):
                        to_remove = gr.Dropdown(
                            label="Documents to remove",
                            choices=[],
                            multiselect=True,
                            scale=4,
                            elem_id="nr-remove-pick",
                        )
                        remove_btn = gr.Button(
                            "Remove", variant="stop", scale=1, elem_id="nr-remove"
                        )

        ui = _Handlers(service, security)
        library = [header, docs, source_filter, to_remove, tl_sources]
        demo.load(ui.refresh, outputs=library)
        gr.on(
            [question.submit, ask_btn.click],
            ui.ask,
            inputs=[question, turns, date_from, date_to, source_filter, mode],
            outputs=[chat, sources, turns, selected, question],
            show_progress="hidden",  # the chat shows the answer streaming in instead
        )
        chat.select(ui.show, inputs=[turns], outputs=[sources, selected])
        chat.clear(ui.clear, outputs=[sources, turns, selected, export_file], queue=False)
        export_btn.click(
            ui.export, inputs=[export_fmt, export_scope, turns, selected], outputs=[export_file]
        )
        add_btn.click(
            ui.add,
            inputs=[files],
            outputs=[upload_status, files, *library],
            show_progress_on=[upload_status],
        )
        docs.select(ui.pick, inputs=[to_remove], outputs=[to_remove])
        timeline_inputs = [tl_query, tl_by, tl_from, tl_to, tl_sources]
        gr.on(
            [tl_query.submit, tl_btn.click],
            ui.timeline,
            inputs=timeline_inputs,
            outputs=[tl_plot, tl_view],
            show_progress_on=[tl_view],
        )
        tl_by.change(ui.regroup, inputs=timeline_inputs, outputs=[tl_plot, tl_view])
        remove_btn.click(
            ui.remove,
            inputs=[to_remove],
            outputs=[upload_status, *library],
            show_progress_on=[upload_status],
        )
    return demo


class _Handlers:
    """The event handlers, each a thin call into the service."""

    def __init__(self, service: Service, security: Security | None = None) -> None:
        self.service = service
        self.security = security or Security()
        self._exports: Path | None = None  # made at the first export, removed with the UI

    # ------------------------------------------------------------------------- chat
    def ask(
        self,
        text: str,
        turns: list[ChatTurn],
        date_from: str,
        date_to: str,
        sources: list[str] | None,
        mode: str | None,
    ) -> Iterator[tuple[Any, ...]]:
        """Stream an answer into the chat; the sources panel fills in when it is complete."""
        text = (text or "").strip()
        if not text:
            raise gr.Error("Type a question first.")
        filters = _filters(date_from, date_to, sources)
        history = [Turn(t.question, t.answer.text) for t in turns if t.answer is not None]
        shown = _messages(turns)
        searching = render.panel("Sources", '<p class="nr-empty">Searching…</p>')
        yield shown + _pair(text, render.streaming("")), searching, turns, None, ""
        streamed = ""
        final: Answer | None = None
        draft: Answer | None = None
        try:
            if mode == "reader":
                # The quote answer is instant: show it while the model reads (seconds), then
                # replace it with the reader's answer (or its refusal).
                draft = self.service.ask(text, filters=filters, history=history, mode="quote")
                searching = render.sources(draft)
                yield shown + _pair(text, render.draft(draft)), searching, turns, None, ""
            for item in self.service.ask_stream(text, filters=filters, history=history, mode=mode):
                if isinstance(item, AnswerDelta):
                    streamed += item.text
                    if draft is not None:
                        continue  # the reader's answer comes whole: the draft stays till then
                    yield (
                        shown + _pair(text, render.streaming(streamed)),
                        searching,
                        turns,
                        None,
                        "",
                    )
                elif isinstance(item, Answer):
                    final = item
        except PROJECT_ERRORS as exc:
            turns = [*turns, ChatTurn(text, error=str(exc))]
            yield _messages(turns), render.sources(None), turns, None, ""
            return
        if final is None:
            turns = [*turns, ChatTurn(text, error="The answer stream ended without an answer.")]
            yield _messages(turns), render.sources(None), turns, None, ""
            return
        turns = [*turns, ChatTurn(text, final)]
        yield _messages(turns), render.sources(final), turns, len(turns) - 1, ""

    def show(self, turns: list[ChatTurn], evt: gr.SelectData) -> tuple[str, int | None]:
        """Clicking a message shows the sources of its turn."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        turn = int(index) // 2 if index is not None else -1
        if not 0 <= turn < len(turns) or turns[turn].answer is None:
            return gr.skip(), gr.skip()
        return render.sources(turns[turn].answer), turn

    def clear(self) -> tuple[Any, ...]:
        """The chat's own clear button was pressed: start a new conversation."""
        return render.sources(None), [], None, gr.File(value=None, visible=False)

    def export(self, fmt: str, scope: str, turns: list[ChatTurn], selected: int | None) -> gr.File:
        answers = [t.answer for t in turns if t.answer is not None]
        if not answers:
            raise gr.Error("There is no answer to export yet: ask a question first.")
        if scope == "answer":
            pick = (
                turns[selected].answer if selected is not None and selected < len(turns) else None
            )
            answers = [pick or answers[-1]]
        try:
            result = self.service.export(answers, fmt)
        except PROJECT_ERRORS as exc:
            raise gr.Error(str(exc)) from exc
        folder = Path(tempfile.mkdtemp(dir=self._export_folder()))
        path = folder / Path(result.filename).name
        path.write_bytes(result.data)
        return gr.File(value=str(path), visible=True)

    def _export_folder(self) -> Path:
        """This UI's folder of export files, without the ones Gradio has long since copied:
        exported answers do not pile up in the temporary directory of a shared server."""
        if self._exports is None or not self._exports.is_dir():
            self._exports = Path(tempfile.mkdtemp(prefix="newsrag-exports-"))
            weakref.finalize(self, shutil.rmtree, str(self._exports), ignore_errors=True)
            return self._exports
        cutoff = time.time() - EXPORT_KEEP_SECONDS
        for old in self._exports.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass  # removed meanwhile by another export
        return self._exports

    # --------------------------------------------------------------------- timeline
    def timeline(
        self,
        text: str,
        by: str,
        date_from: str,
        date_to: str,
        sources: list[str] | None,
    ) -> tuple[Any, str]:
        """The coverage plot and the grouped entries for `text`."""
        text = (text or "").strip()
        if not text:
            raise gr.Error("Type what the timeline is about first (a name, an event, a topic).")
        filters = _filters(date_from, date_to, sources)
        try:
            found = self.service.timeline(text, filters, by=by)  # type: ignore[arg-type]
        except PROJECT_ERRORS as exc:
            return _coverage(None), render.error(str(exc))
        return _coverage(found), render.timeline(found)

    def regroup(
        self,
        text: str,
        by: str,
        date_from: str,
        date_to: str,
        sources: list[str] | None,
    ) -> tuple[Any, Any]:
        """Another grouping chosen: draw the timeline again, if there is a query."""
        if not (text or "").strip():
            return gr.skip(), gr.skip()
        return self.timeline(text, by, date_from, date_to, sources)

    # -------------------------------------------------------------------- documents
    def refresh(self) -> tuple[Any, ...]:
        """Header counts, the document table and every list of documents, read anew."""
        try:
            info, documents = self.service.info(), self.service.documents()
        except PROJECT_ERRORS as exc:
            log.info("no index to show yet: %s", exc)
            info, documents = {}, []
        rows = [
            [
                d.get("title") or "",
                d.get("date") or "",
                d.get("source") or "",
                d.get("language") or "",
                str(d.get("n_chunks", "")),
                d.get("doc_id") or "",
            ]
            for d in documents
        ]
        sources = sorted({d["source"] for d in documents if d.get("source")})
        choices = [(_doc_label(d), d["doc_id"]) for d in documents]
        return (
            _header(info),
            gr.Dataframe(value=rows or [[""] * len(_DOC_COLUMNS)], headers=_DOC_COLUMNS),
            gr.Dropdown(choices=sources),
            gr.Dropdown(choices=choices, value=[]),
            gr.Dropdown(choices=sources),
        )

    def allowed(self, request: gr.Request | None, role: Role, action: str | None = None) -> str:
        """The caller's name when its token has `role` (and `action` is within its rate);
        else a `gr.Error` that says why."""
        name = getattr(request, "username", None) if request is not None else None
        principal = self.security.principal_named(name)
        if principal is None:
            raise gr.Error("Your session ended or its token was revoked: log in again.")
        if not allows(principal.role, role):
            raise gr.Error(
                f"Your token ({principal.name}) has the role {principal.role}; this needs "
                f"{role}. An admin can give you an {role} token."
            )
        if action is not None and self.security.limiter is not None and self.security.auth_on:
            wait = self.security.limiter.wait(principal.name, action)
            if wait > 0:
                raise gr.Error(f"Too many requests: try again in {wait:.0f} s.")
        return principal.name

    def add(
        self,
        paths: list[str] | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - how Gradio asks for a tracker
    ) -> tuple:
        who = self.allowed(request, "editor", "upload")
        if not paths:
            raise gr.Error("Choose one or more files first (txt, md, html, pdf, jsonl).")
        uploads = [(f.name, f.read_bytes()) for f in uploaded_files(paths)]

        def on_progress(stage: str, done: int, total: int) -> None:
            progress((done, total), desc=_STAGES.get(stage, stage))

        progress(0, desc=_STAGES["read"])
        try:
            report = self.service.upload(uploads, on_progress=on_progress, who=who).to_json()
        except PROJECT_ERRORS as exc:
            return (render.status([str(exc)], "error"), gr.skip(), *self.refresh())
        lines = [
            (
                f"Added {report['added']}, updated {report['updated']}, unchanged "
                f"{report['unchanged']} documents ({report['chunks']} new passages)."
            )
        ]
        lines += [_problem_line(p) for p in report.get("problems", [])]
        kind = "error" if report.get("problems") else "ok"
        return (render.status(lines, kind), None, *self.refresh())

    def pick(self, chosen: list[str] | None, evt: gr.SelectData) -> Any:
        """Clicking a table row adds its document to the removal list."""
        row = evt.row_value or []
        doc_id = row[-1] if row else None
        if not doc_id:
            return gr.skip()
        return gr.Dropdown(value=sorted({*(chosen or []), doc_id}))

    def remove(self, doc_ids: list[str] | None, request: gr.Request) -> tuple:
        who = self.allowed(request, "editor")
        if not doc_ids:
            raise gr.Error("Pick the documents to remove first (or click their rows).")
        try:
            self.service.remove(doc_ids=list(doc_ids), who=who)
        except PROJECT_ERRORS as exc:
            return (render.status([str(exc)], "error"), *self.refresh())
        return (render.status([f"Removed {len(doc_ids)} document(s)."]), *self.refresh())


def _filters(date_from: str, date_to: str, sources: list[str] | None) -> Filters | None:
    """Filters from the form; a malformed date is a message naming the accepted forms."""
    dates = []
    for label, value in (("From date", date_from), ("To date", date_to)):
        value = (value or "").strip()
        if value and not DATE_RE.match(value):
            raise gr.Error(f"{label} {value!r} is not a date; use 2022, 2022-06 or 2022-06-01.")
        dates.append(value or None)
    filters = Filters(date_from=dates[0], date_to=dates[1], sources=tuple(sources or ()))
    return filters if filters.active() else None


def _coverage(found: Timeline | None) -> Any:
    """Articles per period as the bar plot's table (columns period, articles)."""
    import pandas as pd  # Gradio's own dependency; its plots take DataFrames

    rows = found.coverage() if found is not None else []
    # Typed even when empty: the plot takes a column's scale from its type (an untyped empty
    # "articles" column would make the y axis a list of categories).
    return pd.DataFrame(rows, columns=["period", "articles"]).astype({"articles": "int64"})


def _pair(question: str, answer_html: str) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": render.question(question)},
        {"role": "assistant", "content": answer_html},
    ]


def _messages(turns: list[ChatTurn]) -> list[dict[str, str]]:
    """Two messages per turn, always: `show` maps a message index back to its turn."""
    messages: list[dict[str, str]] = []
    for t in turns:
        body = render.answer(t.answer) if t.answer is not None else render.error(t.error or "")
        messages += _pair(t.question, body)
    return messages


def upload_folder() -> Path:
    """Where Gradio stores the files a browser uploads (`GRADIO_TEMP_DIR` or its default)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def uploaded_files(paths: list[str]) -> list[Path]:
    """The files a client uploaded through the UI, or `gr.Error` for any other path.

    A client names the files of an event by path (`gradio.FileData`). Gradio itself refuses a
    path outside its upload folder before the handler runs (`ui.server.create_app` turns that
    check on); this is the second wall: only regular files inside the upload folder (symlinks
    resolved) reach the index, and a refusal is logged.
    """
    root = upload_folder()
    files = []
    for raw in paths:
        path = Path(raw).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            log.warning(
                "UI add refused %r: not a file uploaded through the UI (under %s)", raw, root
            )
            raise gr.Error(
                "Only files uploaded through this page can be added; choose them with the "
                "upload box."
            )
        files.append(path)
    return files


def _answer_modes(service: Service) -> list[str]:
    try:
        return list(service.answer_modes())
    except PROJECT_ERRORS as exc:
        log.warning("could not list the answer modes: %s", exc)
        return []


def _header(info: dict[str, Any]) -> str:
    counts = (info.get("index") or {}).get("counts") or {}
    if counts.get("documents"):
        summary = f"{counts.get('documents', 0)} documents · {counts.get('chunks', 0)} passages"
    else:
        summary = "No documents yet: add some under Documents."
    return (
        f"<style>{render.CSS}</style>"
        '<div class="nr-header"><h1>newsrag</h1>'
        f'<span class="nr-info">{render.esc(summary)}</span></div>'
    )


def _doc_label(d: dict[str, Any]) -> str:
    title = d.get("title") or d.get("source") or d["doc_id"]
    date = f" ({d['date']})" if d.get("date") else ""
    return f"{title}{date}"


def _problem_line(p: dict[str, Any]) -> str:
    where = p.get("source") or "?"
    if p.get("line"):
        where += f":{p['line']}"
    return f"Problem: {where}: {p.get('message', '')}"
