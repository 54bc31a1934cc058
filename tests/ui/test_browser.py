"""The chat UI in a real headless Chromium: ask, read the cited source, upload, export.

Runs the real server (`ui.server.create_app`) under uvicorn on a loopback port, over an index
of `seeds/` plus a seed-like article full of script payloads, built with the real embedder.
Needs Debian's `chromium` and the `playwright` package (whose bundled driver works offline;
it is pointed at the system browser, never downloads one).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
FIXTURES = Path(__file__).parent / "fixtures" / "ui"
CHROMIUM = os.environ.get("NEWSRAG_CHROMIUM") or shutil.which("chromium") or ""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM,
        reason="no Chromium: install Debian's `chromium` (or set NEWSRAG_CHROMIUM to a binary)",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs `pip install playwright`"
)

TIMEOUT_MS = 120_000
STREAM_WATCH = """
window.__streamed = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('#nr-chat .nr-streaming')) {
    const text = el.textContent;
    if (window.__streamed.at(-1) !== text) window.__streamed.push(text);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture(scope="module")
def server_url(tmp_path_factory, settings, embedder):
    """The real app over seeds + the malicious article, served on a free loopback port."""
    from rag.engine import Engine
    from ui.server import create_app
    from ui.service import Service

    root = tmp_path_factory.mktemp("browser")
    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    shutil.copy(FIXTURES / "malicious.md", corpus / "malicious.md")
    engine = Engine.open(root / "index", settings, embedder=embedder)
    report = engine.add([corpus])
    assert report.ok and report.added == 6, report.to_json()
    with Service(engine) as service, serving(create_app(service)) as url:
        yield url


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port, in a thread; yields its URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    page.add_init_script(STREAM_WATCH)
    page.goto(server_url)
    page.wait_for_selector("#nr-question textarea")
    yield page
    context.close()


def ask(page, question: str) -> None:
    """Type a question, send it, and wait until its answer is complete."""
    done = page.locator("#nr-chat .nr-final, #nr-chat .nr-error").count()
    page.locator("#nr-question textarea").fill(question)
    page.locator("#nr-ask").click()
    page.wait_for_function(
        "n => document.querySelectorAll('#nr-chat .nr-final, #nr-chat .nr-error').length > n",
        arg=done,
    )


def choose_file(page, path: Path) -> None:
    """Pick a file in the upload box and wait until it is listed there.

    Rarely (seen 2 runs in ~10, under load) Gradio's file box drops a file chosen right after
    its tab mounts; the file is then simply chosen again, as a person would.
    """
    upload = page.locator("#nr-upload")
    upload.get_by_text("Click to Upload").wait_for()
    for attempt in range(3):
        upload.locator("input[type=file]").set_input_files(path)
        try:
            upload.get_by_text(path.name).first.wait_for(timeout=15_000)
            return
        except sync_api.TimeoutError:
            print(f"the upload box did not list {path.name} (attempt {attempt + 1})")
    pytest.fail(f"the upload box never listed {path.name}")


def last_answer(page) -> str:
    return page.locator("#nr-chat .nr-answer").last.inner_text()


def assert_no_script_ran(page) -> None:
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []


def test_ask_upload_export_in_a_real_browser(page, tmp_path):
    # A seed question: the answer quotes seed 002, the rocket launchers the USA deliver.
    ask(page, "Welche Waffen lieferten die USA an die Ukraine?")
    assert page.evaluate("window.__streamed.length") >= 1, "no streamed answer was shown"
    answer = page.locator("#nr-chat .nr-final").last
    assert "Mehrfachraketenwerfer" in answer.inner_text()
    assert answer.locator(".nr-cite").count() >= 1
    cards = page.locator("#nr-source-panel .nr-card")
    assert cards.count() == answer.locator(".nr-cite").count()
    quoting = cards.filter(has=page.locator("mark.nr-quote", has_text="Mehrfachraketenwerfer"))
    assert quoting.count() >= 1
    card = quoting.first
    meta = card.locator(".nr-meta").inner_text()
    assert "2022-06" in meta
    assert "002_7087fd7bd1610eb4.txt" in meta or "001_9706a68281888026.txt" in meta
    passage = card.locator(".nr-passage").inner_text()
    assert card.locator("mark.nr-quote").inner_text() in passage
    assert len(passage) > len(card.locator("mark.nr-quote").inner_text())

    # Nothing in the archive answers this: said so, with the nearest passages beside it.
    ask(page, "Wer gewann die Fußball-Weltmeisterschaft 2014?")
    assert "beantworten diese Frage nicht" in last_answer(page)
    assert "Nearest passages" in page.locator("#nr-source-panel h3").inner_text()
    assert page.locator("#nr-source-panel .nr-card.nr-hit").count() >= 1

    # The malicious article: its text is shown, escaped, and none of its scripts run.
    ask(page, "Wie viele Flugabwehrsysteme vom Typ Skynex lieferte Rheinmetall der Ukraine?")
    assert "17 Flugabwehrsysteme" in last_answer(page)
    panel = page.locator("#nr-source-panel").inner_text()
    assert "<script>window.__pwned='script'" in panel
    assert "<img src=x onerror=" in panel
    assert page.locator("#nr-source-panel script, #nr-chat .nr-answer script").count() == 0
    assert page.locator("#nr-source-panel img, #nr-chat .nr-answer img").count() == 0
    assert page.locator("#nr-source-panel a[href^='javascript']").count() == 0
    assert_no_script_ran(page)
    shot = tmp_path / "newsrag-ask.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")

    # Clicking an earlier answer shows its sources again.
    page.locator("#nr-chat .nr-final").first.click()
    page.locator(
        "#nr-source-panel mark.nr-quote", has_text="Mehrfachraketenwerfer"
    ).first.wait_for()

    # A date filter that excludes every seed: the same question finds nothing to quote.
    page.locator("#nr-filters").get_by_text("Filters").click()
    date_from = page.locator("#nr-date-from input, #nr-date-from textarea")
    date_from.fill("2024")
    ask(page, "Welche Waffen lieferten die USA an die Ukraine?")
    assert "Mehrfachraketenwerfer" not in last_answer(page)
    date_from.fill("")

    # Export the whole conversation as Markdown and check the downloaded file.
    page.get_by_label("Whole conversation").check()
    page.locator("#nr-export").click()
    link = page.locator("#nr-download a").first
    link.wait_for()
    with page.expect_download() as info:
        link.click()
    exported = tmp_path / info.value.suggested_filename
    info.value.save_as(exported)
    text = exported.read_text(encoding="utf-8")
    assert exported.suffix == ".md"
    assert "Welche Waffen lieferten die USA an die Ukraine?" in text
    assert "Mehrfachraketenwerfer" in text
    assert "Skynex" in text
    print(f"exported: {exported}")

    # Upload a new article; then a question about it is answered from it.
    page.get_by_role("tab", name="Documents").click()
    choose_file(page, FIXTURES / "upload_fact.txt")
    page.locator("#nr-add").click()
    page.locator("#nr-upload-status").get_by_text("Added 1").wait_for()
    table = page.locator("#nr-documents")
    table.get_by_text("upload_fact.txt").first.wait_for()
    assert_no_script_ran(page)  # the malicious title is in the document table too
    assert "Flugabwehr für Kiew <img" in table.inner_text()
    page.get_by_role("tab", name="Ask").click()
    ask(page, "Wie lang ist die Seilbahn in Oberwiesenfeld?")
    assert "2,7 Kilometer" in last_answer(page)
    assert "upload_fact.txt" in page.locator("#nr-source-panel .nr-card").first.inner_text()

    # Remove it again (click its row, then Remove): the index no longer answers from it.
    page.get_by_role("tab", name="Documents").click()
    table.get_by_text("upload_fact.txt").first.click()
    page.locator("#nr-remove-pick").get_by_text("Seilbahn").first.wait_for()
    shot = tmp_path / "newsrag-documents.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    page.locator("#nr-remove").click()
    page.locator("#nr-upload-status").get_by_text("Removed 1").wait_for()
    page.wait_for_function(
        "() => !document.querySelector('#nr-documents').innerText.includes('upload_fact.txt')"
    )
    page.get_by_role("tab", name="Ask").click()
    ask(page, "Wie lang ist die Seilbahn in Oberwiesenfeld?")
    assert "2,7 Kilometer" not in last_answer(page)

    # The chat's own clear button starts a new conversation.
    page.locator("#nr-chat").get_by_label("Clear").click()
    page.wait_for_function("() => !document.querySelector('#nr-chat .nr-answer')")
    page.locator("#nr-source-panel").get_by_text("Ask a question").wait_for()
    print("streamed states seen:", page.evaluate("window.__streamed"))
    assert_no_script_ran(page)


# --- reader mode with the packaged model: the quote first, then the reader's answer -------------
@pytest.fixture(scope="module")
def reader_server_url(tmp_path_factory, settings, embedder):
    """The seeds served with the packaged model as the reader (skipped when it is absent)."""
    from rag.answer import local_model
    from rag.engine import Engine
    from ui.server import create_app
    from ui.service import Service

    generation = settings.generation.model_copy(update={"backend": "packaged"})
    if not generation.configured():
        pytest.skip(
            f"no packaged model: {local_model.unavailable_reason(generation.model_cache_dir())}"
        )
    real = settings.model_copy(update={"generation": generation})
    root = tmp_path_factory.mktemp("reader-browser")
    engine = Engine.open(root / "index", real, embedder=embedder)
    assert engine.add([SEEDS]).added == 5
    with Service(engine) as service, serving(create_app(service)) as url:
        yield url


def test_reader_mode_shows_the_quote_then_the_readers_answer(browser, reader_server_url, tmp_path):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(reader_server_url)
    page.wait_for_selector("#nr-question textarea")
    page.locator("#nr-filters").get_by_text("Filters").click()
    mode = page.locator("#nr-mode input")
    assert mode.input_value().startswith("Reader")  # the default mode
    page.locator("#nr-question textarea").fill("Wen trifft Wendy Sherman in Genf?")
    page.locator("#nr-ask").click()
    # First the instant quote answer, visibly marked as a draft while the model reads ...
    status = page.locator("#nr-chat .nr-draft .nr-reading")
    status.wait_for()
    assert "liest" in status.inner_text()
    assert page.locator("#nr-source-panel .nr-card").count() >= 1  # its sources beside it
    page.screenshot(path=str(tmp_path / "reader-draft.png"), full_page=True)
    # ... then the reader's answer replaces it: the phrase marked inside the quoted sentence.
    final = page.locator("#nr-chat .nr-final").last
    final.wait_for()
    assert page.locator("#nr-chat .nr-draft").count() == 0
    assert "Rjabkow" in final.locator("mark.nr-phrase").inner_text()
    page.screenshot(path=str(tmp_path / "reader-final.png"), full_page=True)
    print(f"\nscreenshots: {tmp_path}/reader-draft.png, reader-final.png")
    context.close()
