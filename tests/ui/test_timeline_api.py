"""Timelines over HTTP and in the UI without a browser: `GET /api/timeline` (shape, filters,
errors, tokens), the HTML of the Timeline tab (escaped, inferred dates and collapsed copies
marked) and its handlers over a stand-in service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
from fastapi.testclient import TestClient

from rag.answer.timeline import Timeline, TimelineEntry, TimelineGroup
from rag.answer.types import Citation
from rag.engine import Engine
from rag.errors import ConfigError
from rag.types import DuplicateSource, Filters
from ui import render
from ui.app import _Handlers, build_ui
from ui.auth import Security, TokenStore
from ui.server import create_app
from ui.service import Service

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
EVIL = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"
ENTRY_KEYS = {
    "date", "date_source", "sentence", "score", "n_sources", "n_articles", "citation",
    "duplicates",
}  # fmt: skip
MODEL_FIXTURES = frozenset({"client"})


# --- the API over the seeds ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded(tmp_path_factory, settings, embedder) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("timeline-api") / "idx"
    with Engine.open(path, settings, embedder=embedder) as engine:
        assert engine.add([SEEDS]).added == 5
        yield engine


@pytest.fixture(scope="module")
def client(seeded) -> Iterator[TestClient]:
    app = create_app(Service(seeded), with_ui=False)
    with TestClient(app, base_url="http://localhost") as c:
        yield c


def test_timeline_is_the_engines_json(client, seeded):
    response = client.get("/api/timeline", params={"q": "Stoltenberg"})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data == seeded.timeline("Stoltenberg").to_json()
    assert [g["period"] for g in data["groups"]] == ["2022-06", "2023-06"]
    assert [g["n_articles"] for g in data["groups"]] == [2, 1]
    assert len(data["undated"]["entries"]) == 1
    entry = data["groups"][0]["entries"][0]
    assert set(entry) == ENTRY_KEYS
    assert entry["sentence"] == entry["citation"]["quote"] and "Stoltenberg" in entry["sentence"]


def test_timeline_takes_the_search_filters_and_grouping(client):
    params = {"q": "Stoltenberg Verhandlungen mit Russland", "by": "year", "date_to": "2022"}
    data = client.get("/api/timeline", params=params).json()
    assert [(g["period"], g["n_articles"]) for g in data["groups"]] == [("2022", 2)]
    assert data["by"] == "year" and data["undated"]["entries"] == []
    assert data["retrieval"]["filters"]["date_to"] == "2022"
    sources = [str(SEEDS / "000_849880feec34fc6b.txt"), str(SEEDS / "002_7087fd7bd1610eb4.txt")]
    data = client.get(
        "/api/timeline", params=[("q", "Stoltenberg"), *(("source", s) for s in sources)]
    ).json()
    found = {e["citation"]["source"] for g in data["groups"] for e in g["entries"]}
    assert found == set(sources)


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"q": "Stoltenberg", "by": "week"}, 422, "by"),
        ({}, 422, "q"),
        ({"q": "x", "date_from": "June"}, 422, "date_from"),
        ({"q": "x", "k": 0}, 422, "k"),
        ({"q": "x", "sort": "date"}, 422, "sort"),
        ({"q": "   "}, 400, "empty"),
    ],
)
def test_bad_timeline_requests_get_the_documented_error_shape(client, params, status, says):
    response = client.get("/api/timeline", params=params)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) >= {"type", "message"} and says in error["message"]


def test_timeline_on_an_empty_index_is_409(tmp_path, settings, fake_embedder):
    service = Service(Engine.open(tmp_path / "none", settings, embedder=fake_embedder))
    with TestClient(create_app(service, with_ui=False), base_url="http://localhost") as c:
        response = c.get("/api/timeline", params={"q": "Stoltenberg"})
    assert response.status_code == 409
    assert "rag index" in response.json()["error"]["message"]


def test_timeline_needs_a_token_like_search(tmp_path, settings, fake_embedder):
    engine = Engine.open(tmp_path / "idx", settings, embedder=fake_embedder)
    engine.add([SEEDS / "000_849880feec34fc6b.txt"])
    store = TokenStore(tmp_path / "tokens.json")
    reader = store.create("desk", "reader")
    app = create_app(Service(engine), with_ui=False, security=Security(store=store))
    with TestClient(app, base_url="http://localhost") as c:
        params = {"q": "Stoltenberg", "min_score": -3}
        assert c.get("/api/timeline", params=params).status_code == 401
        ok = c.get("/api/timeline", params=params, headers={"Authorization": f"Bearer {reader}"})
        assert ok.status_code == 200 and ok.json()["n_articles"] == 1
        assert "/api/timeline" in c.get("/openapi.json", headers={
            "Authorization": f"Bearer {reader}"
        }).json()["paths"]  # fmt: skip


# --- the Timeline tab's HTML ---------------------------------------------------------------------
def _entry(n: int, **changes) -> TimelineEntry:
    passage = f"Vorher. {EVIL} sagte der Sprecher. Nachher."
    quote = f"{EVIL} sagte der Sprecher."
    fields = {
        "n": n,
        "chunk_id": f"c{n}",
        "doc_id": f"d{n}",
        "source": f"{EVIL}.txt",
        "title": f"Titel {EVIL}",
        "date": "2024-03-05",
        "quote": quote,
        "start": 10 + passage.index(quote),
        "end": 10 + passage.index(quote) + len(quote),
        "passage": passage,
        "passage_start": 10,
        "url": "javascript:alert(1)",
    }
    duplicates = changes.pop("duplicates", ())
    return TimelineEntry(Citation(**{**fields, **changes}), 1.8, duplicates)


def _timeline() -> Timeline:
    copy = DuplicateSource("d9", f"afp {EVIL}", f"Kopie {EVIL}", "2024-03-05", "c9")
    march = TimelineGroup("2024-03", (_entry(1, duplicates=(copy,)),))
    april = TimelineGroup("2024-04", (_entry(2, date="2024-04-02", date_source="inferred"),))
    undated = TimelineGroup(None, (_entry(3, date=None),))
    return Timeline(f"Streik {EVIL}", "month", (march, april), undated)


def test_timeline_html_escapes_article_text_and_marks_dates_and_copies():
    html = render.timeline(_timeline())
    assert "<script" not in html and "<img" not in html and "javascript:" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert html.count('class="nr-tl-group"') == 3
    assert [p in html for p in ('data-period="2024-03"', 'data-period="undated"')] == [True, True]
    assert html.index("2024-03") < html.index("2024-04") < html.index("Undated")
    assert "2024-04-02 (inferred)" in html and html.count("(inferred)") == 1
    assert ">+1 source<" in html and "Kopie &lt;script&gt;" in html
    assert '<mark class="nr-quote">' in html  # the key sentence inside its passage
    assert "\n" not in html
    assert "4 articles in 3 entries" in html


def test_timeline_html_before_and_without_results():
    assert "nr-empty" in render.timeline(None)
    empty = render.timeline(Timeline(EVIL, "month", ()))
    assert "No article matches" in empty and "<script" not in empty


# --- the Timeline tab's handlers -----------------------------------------------------------------
class FakeService:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict] = []
        self.error = error

    def timeline(self, query, filters=None, by="month", k=None, min_score=None):
        self.calls.append({"query": query, "filters": filters, "by": by})
        if self.error is not None:
            raise self.error
        return _timeline()

    def answer_modes(self):
        return ["quote"]


def test_the_handler_draws_the_plot_and_the_entries():
    service = FakeService()
    plot, html = _Handlers(service).timeline(" Streik ", "day", "2024", "", ["afp"])
    assert service.calls == [
        {"query": "Streik", "filters": Filters(date_from="2024", sources=("afp",)), "by": "day"}
    ]
    assert list(plot.columns) == ["period", "articles"]
    assert list(zip(plot["period"], plot["articles"])) == [("2024-03", 2), ("2024-04", 1)]
    assert 'class="nr-tl-group"' in html


def test_the_handler_refuses_an_empty_query_and_shows_errors():
    ui = _Handlers(FakeService())
    with pytest.raises(gr.Error, match="first"):
        ui.timeline("  ", "month", "", "", [])
    with pytest.raises(gr.Error, match="2022-06"):
        ui.timeline("Streik", "month", "März", "", [])
    assert ui.regroup("", "day", "", "", []) == (gr.skip(), gr.skip())
    failing = _Handlers(FakeService(ConfigError("no index at /x")))
    plot, html = failing.timeline("Streik", "month", "", "", [])
    assert plot.empty and "no index at /x" in html and 'role="alert"' in html


def test_the_ui_has_a_timeline_tab_with_its_controls():
    blocks = build_ui(FakeService())  # type: ignore[arg-type]
    ids = {getattr(b, "elem_id", None) for b in blocks.blocks.values()}
    assert {"nr-tl-query", "nr-tl-by", "nr-tl-run", "nr-tl-plot", "nr-timeline"} <= ids
    assert {"nr-tl-date-from", "nr-tl-date-to", "nr-tl-source-filter"} <= ids
