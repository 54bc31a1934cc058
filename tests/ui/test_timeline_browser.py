"""The Timeline tab in a real headless Chromium: a query's articles grouped by date, the
coverage plot, collapsed agency copies, an inferred date, and article text that stays text.

Serves the real app over the seeds, two agency copies of one 2024 report, an article dated only
by its text, and the script-laden article of the chat test. Needs Debian's `chromium` and
`playwright`, as `test_browser.py` does (whose server helper and browser fixture it shares).
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from tests.ui.test_browser import CHROMIUM, FIXTURES, SEEDS, TIMEOUT_MS, browser, serving

__all__ = ["browser"]  # the shared fixture, used below

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM,
        reason="no Chromium: install Debian's `chromium` (or set NEWSRAG_CHROMIUM to a binary)",
    ),
]

WIRE = (
    " date 2024-03-05 Brüssel ({agency}) – NATO-Generalsekretär Jens Stoltenberg hat die "
    "Verbündeten aufgerufen, der Ukraine rasch mehr Munition zu liefern. Die Lage an der Front "
    "sei ernst, sagte Stoltenberg nach einem Treffen der Verteidigungsminister in Brüssel. "
    "Mehrere Staaten sagten zusätzliche Lieferungen zu, Einzelheiten nannten sie nicht.\n"
)
INFERRED = (
    "Stoltenberg zieht Bilanz\n\nKurz vor dem Ende seiner Amtszeit hat NATO-Generalsekretär "
    "Jens Stoltenberg eine Bilanz seiner zehn Jahre an der Spitze des Bündnisses gezogen. "
    "Stoltenberg sagte, die Allianz sei heute stärker als je zuvor.\n\nStand: 12.04.2024\n"
)
SHOT = Path("/tmp/timeline.png")
"""Where a copy of the screenshot goes, for a person to look at."""


@pytest.fixture(scope="module")
def server_url(tmp_path_factory, settings, embedder):
    from rag.engine import Engine
    from ui.server import create_app
    from ui.service import Service

    root = tmp_path_factory.mktemp("timeline-browser")
    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    shutil.copy(FIXTURES / "malicious.md", corpus / "malicious.md")
    (corpus / "wire_dpa.txt").write_text(WIRE.format(agency="dpa"), encoding="utf-8")
    (corpus / "wire_afp.txt").write_text(WIRE.format(agency="AFP"), encoding="utf-8")
    (corpus / "bilanz.txt").write_text(INFERRED, encoding="utf-8")
    engine = Engine.open(root / "index", settings, embedder=embedder)
    report = engine.add([corpus])
    assert report.ok and report.added == 9, report.to_json()
    with Service(engine) as service, serving(create_app(service)) as url:
        yield url


def show_timeline(page, query: str) -> None:
    """Type a query in the Timeline tab, run it, and wait until its result is drawn."""
    page.locator("#nr-tl-query textarea").fill(query)
    page.locator("#nr-tl-run").click()
    page.wait_for_function(
        "q => [...document.querySelectorAll('#nr-timeline q')].some(e => e.textContent === q)",
        arg=query,
    )


def test_timeline_tab_groups_a_story_by_date(browser, server_url, tmp_path):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server_url)
    page.wait_for_selector("#nr-question textarea")
    page.get_by_role("tab", name="Timeline").click()
    page.locator("#nr-timeline .nr-empty").wait_for()

    show_timeline(page, "Stoltenberg")
    groups = page.locator("#nr-timeline .nr-tl-group")
    periods = [groups.nth(i).get_attribute("data-period") for i in range(groups.count())]
    dated = [p for p in periods if p != "undated"]
    assert dated == sorted(dated) and {"2022-06", "2023-06", "2024-03", "2024-04"} <= set(dated)
    assert periods[-1] == "undated"  # seed 003: no date in its metadata or its text
    # The agency copies are one entry: "+1 source", the other copy listed under it.
    march = page.locator('#nr-timeline .nr-tl-group[data-period="2024-03"]')
    assert march.locator(".nr-tl-entry").count() == 1
    assert march.locator(".nr-tl-copies").inner_text() == "+1 source"
    assert "wire_" in march.locator(".nr-tl-dups").inner_text()
    assert "Stoltenberg" in march.locator(".nr-tl-sentence").inner_text()
    # The article dated by its "Stand:" line says so.
    april = page.locator('#nr-timeline .nr-tl-group[data-period="2024-04"]')
    assert "2024-04-12 (inferred)" in april.locator(".nr-meta").inner_text()
    # Every entry carries its citation number and a key sentence; one bar per month with
    # articles is drawn (the empty months in between are bars of height 0).
    entries = page.locator("#nr-timeline .nr-tl-entry")
    assert entries.count() == page.locator("#nr-timeline .nr-tl-sentence").count() >= 5
    page.locator("#nr-tl-plot .mark-rect path").first.wait_for()
    assert page.locator("#nr-tl-plot .mark-rect path").count() >= len(dated)
    shot = tmp_path / "timeline.png"
    page.screenshot(path=str(shot), full_page=True)
    with contextlib.suppress(OSError):
        shutil.copy(shot, SHOT)
    print(f"\nscreenshot: {shot} (copied to {SHOT})")

    # By year: the same articles in three years, oldest first.
    page.locator("#nr-tl-by").get_by_text("Year").click()
    page.locator('#nr-timeline .nr-tl-group[data-period="2024"]').wait_for()
    years = page.locator("#nr-timeline .nr-tl-group")
    assert [years.nth(i).get_attribute("data-period") for i in range(years.count())] == [
        "2022",
        "2023",
        "2024",
        "undated",
    ]

    # A filter as in search: from 2024 on, only the 2024 articles (the undated drop out).
    page.locator("#nr-tl-filters").get_by_text("Filters").click()
    page.locator("#nr-tl-date-from input, #nr-tl-date-from textarea").fill("2024")
    show_timeline(page, "Stoltenberg Munition")
    only = page.locator("#nr-timeline .nr-tl-group")
    assert [only.nth(i).get_attribute("data-period") for i in range(only.count())] == ["2024"]
    page.locator("#nr-tl-date-from input, #nr-tl-date-from textarea").fill("")

    # The script-laden article's text is shown as text; nothing in it runs.
    show_timeline(page, "Flugabwehrsysteme Skynex von Rheinmetall")
    view = page.locator("#nr-timeline")
    assert "<script>" in view.inner_text() or "<img src=x" in view.inner_text()
    assert view.locator("script, img, svg, a[href^='javascript']").count() == 0
    assert page.evaluate("window.__pwned") is None and dialogs == []
    context.close()
