"""The chat UI without a browser: the HTML it renders (escaped, quotes highlighted, unsupported
sentences marked) and its handlers over a stand-in service (streaming, history, filters)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pytest

from rag.answer.types import Answer, AnswerDelta, AnswerSentence, Citation, Turn
from rag.engine import Filters
from rag.types import Hit
from ui import render
from ui.app import ChatTurn, _Handlers, build_ui

EVIL = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"


def _citation(n: int = 1, **changes) -> Citation:
    passage = "Erster Satz. Die USA liefern Mehrfachraketenwerfer. Letzter Satz."
    quote = "Die USA liefern Mehrfachraketenwerfer."
    fields = {
        "n": n,
        "chunk_id": "c1",
        "doc_id": "d1",
        "source": "002.txt",
        "title": "Endet der Krieg?",
        "date": "2022-06",
        "quote": quote,
        "start": 100 + passage.index(quote),
        "end": 100 + passage.index(quote) + len(quote),
        "passage": passage,
        "passage_start": 100,
    }
    return Citation(**{**fields, **changes})


def _hit(text: str = "Ein Absatz.", **changes) -> Hit:
    fields = {
        "rank": 1,
        "score": 0.5,
        "chunk_id": "c1",
        "doc_id": "d1",
        "source": "a.txt",
        "title": "Titel",
        "date": "2022",
        "text": text,
        "start": 0,
        "end": len(text),
    }
    return Hit(**{**fields, **changes})


def _answer(**changes) -> Answer:
    fields = {
        "question": "Welche Waffen?",
        "text": "Die USA liefern Mehrfachraketenwerfer [1]. Es sind 500 Stück [1].",
        "answerable": True,
        "mode": "generate",
        "sentences": (
            AnswerSentence("Die USA liefern Mehrfachraketenwerfer [1].", (1,), True),
            AnswerSentence(
                "Es sind 500 Stück [1].", (1,), False, ("the number 500 is not in source [1]",)
            ),
        ),
        "citations": (_citation(),),
    }
    return Answer(**{**fields, **changes})


# ---------------------------------------------------------------------------------- render
def test_answer_marks_unsupported_sentences_with_their_problems():
    html = render.answer(_answer())
    assert html.count('class="nr-sentence"') == 1
    assert 'class="nr-sentence nr-unsupported" title="Not supported: the number 500' in html
    assert "Not supported by the sources:" in html
    assert html.count('<sup class="nr-cite"') == 2
    assert "Mehrfachraketenwerfer<sup" in html and "Stück<sup" in html


def test_a_rewritten_follow_up_and_the_writing_model_are_shown():
    html = render.answer(_answer(standalone_question="Welche Waffen lieferten die USA?", model="m"))
    assert "Searched for: Welche Waffen lieferten die USA?" in html
    assert "Written by m" in html


def test_citation_markers_list_and_unknown_numbers():
    ans = _answer(text="Satz [1, 7].", sentences=())
    html = render.answer(ans)
    assert html.count("<sup") == 2
    assert 'nr-cite-unknown" title="no such source">[7]' in html


def test_everything_from_documents_and_answers_is_escaped():
    cite = _citation(
        title=EVIL,
        source=EVIL,
        date=EVIL,
        passage=f"Vorher {EVIL} nachher.",
        quote=EVIL,
        start=107,
        end=107 + len(EVIL),
        url="javascript:alert(1)",
    )
    ans = _answer(
        question=EVIL,
        standalone_question=EVIL,
        model=EVIL,
        text=f"{EVIL} [1]",
        sentences=(AnswerSentence(f"{EVIL} [1]", (1,), False, (EVIL,)),),
        citations=(cite,),
    )
    out = render.answer(ans) + render.sources(ans) + render.question(EVIL)
    out += render.streaming(EVIL) + render.error(EVIL) + render.status([EVIL])
    unanswerable = _answer(answerable=False, text=EVIL, passages=(_hit(EVIL, title=EVIL),))
    out += render.answer(unanswerable) + render.sources(unanswerable)
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;" in out
    assert "javascript:" not in out  # a non-http url is not made a link
    assert "\n" not in out  # one line: Markdown never sees a blank line in article text


def test_http_urls_become_links():
    html = render.sources(_answer(citations=(_citation(url="https://example.org/a?b=1&c=2"),)))
    assert 'href="https://example.org/a?b=1&amp;c=2"' in html
    assert 'rel="noopener noreferrer"' in html


def test_quote_is_highlighted_inside_its_passage():
    html = render.sources(_answer())
    assert (
        'Erster Satz. <mark class="nr-quote">Die USA liefern Mehrfachraketenwerfer.</mark> '
        "Letzter Satz." in html
    )
    assert 'id="nr-source-1"' in html and "2022-06" in html and "002.txt" in html


def test_highlight_falls_back_to_finding_the_quote():
    # Offsets that miss (a quote running past its passage): found by its text instead.
    assert render.highlight("a b c", 0, 50, 51, "b") == 'a <mark class="nr-quote">b</mark> c'
    # Not in the passage at all: shown above it.
    assert render.highlight("a b c", 0, 50, 51, "x").startswith('<mark class="nr-quote">x</mark>')


def test_unanswerable_says_so_and_lists_the_nearest_passages():
    ans = _answer(
        answerable=False,
        text="Die Quellen beantworten diese Frage nicht.",
        sentences=(),
        citations=(),
        passages=(_hit("Nah dran."), _hit("Auch nah.", rank=2)),
        language="de",
    )
    assert "beantworten diese Frage nicht" in render.answer(ans)
    assert "nächstliegenden Passagen" in render.answer(ans)
    panel = render.sources(ans)
    assert "Nearest passages" in panel and panel.count("nr-hit") == 2


# -------------------------------------------------------------------------------- handlers
@dataclass(frozen=True)
class _Export:
    data: bytes
    media_type: str
    filename: str


class FakeService:
    """Records what the UI asks; streams a fixed answer."""

    def __init__(self, modes=("quote",)) -> None:
        self.modes = list(modes)
        self.calls: list[dict] = []

    def answer_modes(self):
        return self.modes

    def ask(self, question, filters=None, history=None, mode=None):
        self.calls.append(
            {"question": question, "filters": filters, "history": history, "mode": mode}
        )
        return _answer(question=question, mode=mode, text="Die USA liefern Raketen [1].")

    def ask_stream(self, question, filters=None, history=None, mode=None):
        self.calls.append(
            {"question": question, "filters": filters, "history": history, "mode": mode}
        )
        yield AnswerDelta("Die USA ")
        yield AnswerDelta("liefern.")
        yield _answer(question=question)

    def export(self, answers, fmt):
        body = "\n".join(a.question for a in answers)
        return _Export(f"{fmt}:{body}".encode(), "text/plain", "../answers.txt")

    def info(self):
        return {"index": {"counts": {"documents": 2, "chunks": 5}}}

    def documents(self):
        return [
            {
                "doc_id": "d1",
                "source": "a.txt",
                "title": EVIL,
                "date": "2022",
                "language": "de",
                "n_chunks": 3,
            }
        ]


def _run(gen):
    return list(gen)


def test_ask_streams_then_renders_the_answer_and_its_sources():
    service = FakeService()
    ui = _Handlers(service)
    steps = _run(ui.ask("Welche Waffen?", [], "", "", [], "quote"))
    first_chat = steps[0][0]
    assert first_chat[-1]["role"] == "assistant" and "nr-streaming" in first_chat[-1]["content"]
    assert any("Die USA liefern." in s[0][-1]["content"] for s in steps[1:-1])
    chat, sources, _, selected, box = steps[-1]
    assert "nr-final" in chat[-1]["content"] and "nr-card" in sources
    assert len(chat) == 2 and selected == 0 and box == ""
    assert service.calls[0]["filters"] is None and service.calls[0]["history"] == []


def test_reader_mode_shows_the_quote_answer_while_the_model_reads():
    service = FakeService(modes=("reader", "quote", "generate"))
    ui = _Handlers(service)
    steps = _run(ui.ask("Welche Waffen?", [], "2022", "", [], "reader"))
    assert [c["mode"] for c in service.calls] == ["quote", "reader"]
    assert service.calls[0]["filters"] == service.calls[1]["filters"] == Filters(date_from="2022")
    drafts = [s for s in steps if "nr-draft" in s[0][-1]["content"]]
    assert drafts, "the quote answer is shown first"
    draft_html = drafts[0][0][-1]["content"]
    assert "Die USA liefern Raketen" in draft_html and 'role="status"' in draft_html
    assert "nr-final" not in draft_html  # only the reader's answer is final
    assert "nr-card" in drafts[0][1]  # its sources beside it
    # the reader's streamed pieces do not overwrite the draft; its answer replaces it
    assert not any("nr-streaming" in s[0][-1]["content"] for s in steps[steps.index(drafts[0]) :])
    final = steps[-1][0][-1]["content"]
    assert "nr-draft" not in final and "nr-final" in final and "Mehrfachraketenwerfer" in final


def test_follow_up_sends_history_and_filters():
    service = FakeService()
    ui = _Handlers(service)
    turns = [
        ChatTurn("Erste Frage?", _answer(question="Erste Frage?")),
        ChatTurn("Kaputt?", None, "x"),
    ]
    _run(ui.ask("Und dann?", turns, " 2022-06 ", "2023", ["a.txt"], "quote"))
    call = service.calls[0]
    assert call["history"] == [Turn("Erste Frage?", _answer().text)]
    assert call["filters"] == Filters(date_from="2022-06", date_to="2023", sources=("a.txt",))


def test_a_malformed_date_is_refused_with_the_accepted_forms():
    ui = _Handlers(FakeService())
    with pytest.raises(gr.Error, match="2022-06"):
        _run(ui.ask("Frage?", [], "June 2022", "", [], None))


def test_export_writes_the_file_under_its_own_name_only(tmp_path):
    ui = _Handlers(FakeService())
    turns = [
        ChatTurn("Eins?", _answer(question="Eins?")),
        ChatTurn("Zwei?", _answer(question="Zwei?")),
    ]
    shown = ui.export("json", "answer", turns, 0)
    path = shown.value["path"] if isinstance(shown.value, dict) else shown.value
    assert path.endswith("/answers.txt")
    with open(path, encoding="utf-8") as f:
        assert f.read() == "json:Eins?"
    whole = ui.export("markdown", "conversation", turns, 0)
    path = whole.value["path"] if isinstance(whole.value, dict) else whole.value
    with open(path, encoding="utf-8") as f:
        assert f.read() == "markdown:Eins?\nZwei?"


def test_exports_do_not_pile_up_in_the_temporary_directory():
    """Each export's file lives in this UI's own folder; files Gradio has long since copied
    are removed at the next export, and the folder goes with the UI."""
    import gc
    import os

    from ui import app as ui_app

    ui = _Handlers(FakeService())
    turns = [ChatTurn("Eins?", _answer(question="Eins?"))]

    def exported(ui: _Handlers) -> Path:
        ui.export("json", "answer", turns, 0)  # Gradio copies the file into its cache
        return max(ui._exports.glob("*/*"), key=lambda p: p.stat().st_mtime_ns)

    first = exported(ui)
    folder = ui._exports
    assert folder.name.startswith("newsrag-exports-")
    old = time.time() - ui_app.EXPORT_KEEP_SECONDS - 1
    os.utime(first.parent, (old, old))
    second = exported(ui)
    assert second.parent.parent == folder and second.exists()
    assert not first.parent.exists(), "an export older than the keep time is removed"
    third = exported(ui)
    assert second.exists() and third.exists(), "recent exports stay until Gradio copied them"
    del ui
    gc.collect()
    assert not folder.exists()


def test_gradio_removes_its_cached_copies():
    demo = build_ui(FakeService())
    assert demo.delete_cache is not None
    frequency, age = demo.delete_cache
    assert 0 < frequency <= age <= 24 * 3600


def test_the_mode_dropdown_shows_only_with_a_choice():
    def mode_visible(service):
        blocks = build_ui(service)
        (mode,) = [b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "nr-mode"]
        return mode.visible

    assert mode_visible(FakeService(["quote"])) is False
    assert mode_visible(FakeService(["quote", "generate"])) is True
