"""Timelines (`Engine.timeline`, `rag timeline`): articles grouped by date, oldest first, the
undated apart, each with its key sentence cited exactly, copies of one story collapsed.

Plumbing (grouping, ordering, collapsing, filters, errors) runs on small synthetic articles
with the deterministic fake embedder and no score floor; what a user sees (which articles match,
which sentence is key) runs through the real embedder, on the seeds and on the synthetic story.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.answer.timeline import TIMELINE_BY, Timeline, schema_path
from rag.cli import main
from rag.cli.timeline import BY_CHOICES
from rag.engine import Engine
from rag.errors import ConfigError
from rag.types import Document, Filters

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
SEED = {
    "000": "000_849880feec34fc6b.txt",
    "001": "001_9706a68281888026.txt",
    "002": "002_7087fd7bd1610eb4.txt",
    "003": "003_8f400f1f19299dd9.txt",
    "004": "004_7d20457fd89d74f6.txt",
}
KEEP_ALL = -100.0
"""A score floor nothing falls under (the fake embedder's scores mean nothing)."""

# --- a small synthetic story: a port strike in Kiel, reported by several outlets ---------------
WIRE = (
    "Kiel ({agency}) – Die Hafenarbeiter in Kiel haben am Dienstag einen unbefristeten Streik "
    "begonnen. Die Gewerkschaft fordert zwölf Prozent mehr Lohn für die rund 3000 Beschäftigten "
    "im Hafen. Der Hafenbetreiber nannte die Forderung überzogen und kündigte Gespräche für die "
    "kommende Woche an. Vor der Hafeneinfahrt warten bereits mehr als zwanzig Frachtschiffe."
)
STORY = [
    Document(
        "warn",
        "Die Gewerkschaft droht den Kieler Hafenbetreibern mit einem Streik, falls die "
        "Tarifverhandlungen über mehr Lohn scheitern. Eine Urabstimmung ist geplant.",
        source="kn",
        title="Gewerkschaft droht mit Hafenstreik",
        date="2023-11",
    ),
    Document(
        "dpa", WIRE.format(agency="dpa"), source="dpa", title="Streik im Hafen", date="2024-03-05"
    ),
    Document(
        "afp",
        WIRE.format(agency="AFP"),
        source="afp",
        title="Hafen Kiel bestreikt",
        date="2024-03-05",
    ),
    Document(
        "deal",
        "Im Kieler Hafenstreik zeichnet sich eine Einigung ab. Gewerkschaft und Hafenbetreiber "
        "verständigten sich in der Nacht auf acht Prozent mehr Lohn. Der Streik soll am Montag "
        "enden, die Schiffe werden ab Dienstag wieder abgefertigt.",
        source="zeit",
        title="Einigung im Hafenstreik",
        date="2024-03-20",
    ),
    Document(
        "weather",
        "Das Wetter in München bleibt auch am Wochenende sonnig. Die Temperaturen steigen auf "
        "bis zu 24 Grad, erst am Montag ziehen Gewitter auf.",
        source="wetter",
        title="Sonniges Wochenende",
        date="2024-03-05",
    ),
    Document(
        "review",
        "Rückblick auf ein bewegtes Jahr: Der Streik der Hafenarbeiter in Kiel legte den Hafen "
        "zwei Wochen lang lahm, bevor sich beide Seiten auf mehr Lohn einigten.",
        source="jahresrueckblick",
        title="Das Jahr im Norden",
        date="2024",
    ),
    Document(
        "after",
        "Nach dem Ende des Hafenstreiks in Kiel arbeiten die Hafenarbeiter die liegengebliebenen "
        "Ladungen ab. Die Reedereien rechnen mit zwei Wochen Verzögerung.\n\nStand: 02.04.2024",
        source="ndr",
        title="Hafen arbeitet Rückstau ab",
    ),
    Document(
        "reprint",
        WIRE.format(agency="dpa"),
        source="wochenblatt",
        title="Streik im Hafen (Nachdruck)",
        date="2024-05-10",
    ),
    Document(
        "undated",
        "Die Hafenarbeiter in Kiel streiken, sagte ein Sprecher der Gewerkschaft. Wie lange der "
        "Streik dauert, ist offen.",
        source="blog",
        title="Streik",
    ),
]
TEXTS = {d.doc_id: d.text for d in STORY}
QUERY = "Streik der Hafenarbeiter in Kiel"


def sources_of(timeline: Timeline) -> dict[str | None, list[str]]:
    """Period -> the sources (file names) of its entries, in order (None: the undated)."""
    groups = (*timeline.groups, timeline.undated)
    return {
        g.period: [Path(e.citation.source).name for e in g.entries] for g in groups if g.entries
    }


def assert_cited_exactly(timeline: Timeline, texts: dict[str, str] | None = None) -> None:
    """Every entry's quote is its document's text at its offsets, inside its passage, and
    the citations are numbered 1..n in timeline order."""
    entries = timeline.entries
    assert [e.citation.n for e in entries] == list(range(1, len(entries) + 1))
    for e in entries:
        c = e.citation
        assert e.sentence == c.quote and c.quote == c.quote.strip() and c.quote
        assert c.passage[c.start - c.passage_start : c.end - c.passage_start] == c.quote
        if texts is not None:
            assert texts[c.doc_id][c.start : c.end] == c.quote


@pytest.fixture
def story(tmp_path, settings, fake_embedder) -> Iterator[Engine]:
    with Engine.open(tmp_path / "idx", settings, embedder=fake_embedder) as engine:
        report = engine.add_documents(STORY)
        assert report.added == len(STORY), report.to_json()
        yield engine


# --- plumbing: grouping, order, copies, filters -------------------------------------------------
def test_groups_by_month_oldest_first_with_the_undated_last(story):
    timeline = story.timeline(QUERY, min_score=KEEP_ALL)
    periods = [g.period for g in timeline.groups]
    # "2024" (a year-only date) is coarser than the months and sorts before those it contains.
    assert periods == ["2023-11", "2024", "2024-03", "2024-04", "2024-05"]
    assert sources_of(timeline)[None] == ["blog"]
    assert timeline.undated.period is None
    march = timeline.groups[2]
    dates = [e.date for e in march.entries]
    assert dates == sorted(dates) and dates[-1] == "2024-03-20"
    # wire story + its agency copy (one entry), the weather, the deal
    assert march.n_articles == 4 and len(march.entries) == 3
    assert timeline.n_articles == len(STORY)
    assert_cited_exactly(timeline, TEXTS)


def test_agency_copies_are_one_entry_counting_their_sources(story):
    timeline = story.timeline(QUERY, min_score=KEEP_ALL)
    (wire,) = [e for e in timeline.entries if e.duplicates and e.date == "2024-03-05"]
    assert {wire.citation.source, *(d.source for d in wire.duplicates)} == {"dpa", "afp"}
    assert (wire.n_sources, wire.n_articles) == (2, 2)
    # The reprint two months later is coverage in May, not folded into March.
    (may,) = [g for g in timeline.groups if g.period == "2024-05"]
    assert [(e.citation.source, e.n_sources) for e in may.entries] == [("wochenblatt", 1)]
    # By year the three copies are one story carried by three sources.
    by_year = story.timeline(QUERY, by="year", min_score=KEEP_ALL)
    (copies,) = [e for e in by_year.entries if e.duplicates]
    assert copies.n_sources == 3
    assert {copies.citation.source, *(d.source for d in copies.duplicates)} == {
        "dpa",
        "afp",
        "wochenblatt",
    }


def test_inferred_dates_are_grouped_by_them_and_marked(story):
    timeline = story.timeline(QUERY, min_score=KEEP_ALL)
    (april,) = [g for g in timeline.groups if g.period == "2024-04"]
    (entry,) = april.entries
    assert entry.citation.source == "ndr"
    assert (entry.date, entry.date_source) == ("2024-04-02", "inferred")
    assert entry.to_json()["citation"]["date_source"] == "inferred"
    metadata_dated = [e for e in timeline.entries if e.citation.source == "zeit"]
    assert metadata_dated[0].date_source is None


def test_by_day_keeps_less_precise_dates_in_their_own_periods(story):
    timeline = story.timeline(QUERY, by="day", min_score=KEEP_ALL)
    assert [g.period for g in timeline.groups] == [
        "2023-11",
        "2024",
        "2024-03-05",
        "2024-03-20",
        "2024-04-02",
        "2024-05-10",
    ]


def test_filters_work_as_in_search(story):
    march = story.timeline(
        QUERY, Filters(date_from="2024-03", date_to="2024-03"), min_score=KEEP_ALL
    )
    # A date that could lie in the range (the year-only "2024") is in, as in search.
    assert [g.period for g in march.groups] == ["2024", "2024-03"]
    assert not march.undated.entries  # a date filter leaves the undated out, as search does
    one_source = story.timeline(QUERY, Filters(sources=("afp",)), min_score=KEEP_ALL)
    assert sources_of(one_source) == {"2024-03": ["afp"]}
    assert one_source.entries[0].duplicates == ()
    assert one_source.retrieval["filters"]["sources"] == ["afp"]


def test_coverage_fills_the_empty_periods_for_the_plot(story):
    timeline = story.timeline(QUERY, min_score=KEEP_ALL)
    coverage = dict(timeline.coverage())
    assert list(coverage)[:3] == ["2023-11", "2023-12", "2024"]
    assert coverage["2023-12"] == 0 and coverage["2024-03"] == 4 and coverage["2024-05"] == 1
    assert list(coverage) == sorted(coverage)
    assert sum(coverage.values()) == timeline.n_articles - len(timeline.undated.entries)
    assert timeline.coverage(fill=False) == [(g.period, g.n_articles) for g in timeline.groups]


def test_bad_requests_are_clear_errors(story):
    with pytest.raises(ConfigError, match="valid: day, month, year"):
        story.timeline(QUERY, by="week")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="empty"):
        story.timeline("   ")
    with pytest.raises(ConfigError, match="1 to 1000"):
        story.timeline(QUERY, k=0)
    with pytest.raises(ConfigError, match="not a date|date"):
        story.timeline(QUERY, Filters(date_from="June"))


def test_the_cli_offers_the_groupings_the_core_knows():
    assert BY_CHOICES == TIMELINE_BY


# --- through the real embedder -----------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded(tmp_path_factory, settings, embedder) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("timeline") / "idx"
    with Engine.open(path, settings, embedder=embedder) as engine:
        assert engine.add([SEEDS]).added == 5
        yield engine


def test_seed_story_over_three_years_in_order(seeded):
    timeline = seeded.timeline("Stoltenberg")
    assert sources_of(timeline) == {
        "2022-06": [SEED["001"], SEED["002"]],
        "2023-06": [SEED["000"]],
        None: [SEED["003"]],  # undated: no date in its metadata, none read from its text
    }
    # The Rutte article of late 2024 does not name Stoltenberg: it is not in his timeline.
    assert all("Stoltenberg" in e.sentence for e in timeline.entries)
    assert_cited_exactly(timeline)
    rutte = seeded.timeline("Rutte")
    # Dated from its text: "Nach fast drei Jahren Ukraine-Krieg" (the war began 2022-02-24).
    assert sources_of(rutte) == {"2024-12": [SEED["004"]]}
    assert "Mark Rutte" in rutte.entries[0].sentence


def test_seed_timeline_by_year_and_filtered(seeded):
    by_year = seeded.timeline("Stoltenberg Verhandlungen mit Russland", by="year")
    # 2024: the Rutte article (dated from its text) on negotiations for a ceasefire.
    assert [(g.period, g.n_articles) for g in by_year.groups] == [
        ("2022", 2),
        ("2023", 1),
        ("2024", 1),
    ]
    later = seeded.timeline("Stoltenberg Verhandlungen mit Russland", Filters(date_from="2023"))
    assert sources_of(later) == {"2023-06": [SEED["000"]], "2024-12": [SEED["004"]]}
    assert "Verhandlungen mit Russland" in later.entries[0].sentence
    # The Rutte article's two best sentences tie within 0.001 (Bloomberg's report of the
    # ceasefire talks, Rutte's line at the summit); int8 and bf16 order them differently.
    assert "Nato" in later.entries[1].sentence
    assert SEED["004"] in later.entries[1].citation.source


def test_nothing_matches_a_query_the_archive_does_not_cover(seeded):
    timeline = seeded.timeline("Fußball-Weltmeisterschaft")
    assert timeline.entries == () and timeline.n_articles == 0
    assert timeline.to_json()["groups"] == []


def test_synthetic_story_through_the_real_embedder(tmp_path, settings, embedder):
    with Engine.open(tmp_path / "idx", settings, embedder=embedder) as engine:
        engine.add_documents(STORY)
        timeline = engine.timeline(QUERY)
    found = sources_of(timeline)
    assert "wetter" not in {s for group in found.values() for s in group}  # off topic
    assert [g.period for g in timeline.groups][0] == "2023-11"
    (wire,) = [e for e in timeline.entries if e.duplicates]
    assert wire.n_sources == 2 and wire.date == "2024-03-05"
    assert "Streik" in wire.sentence
    assert found.get(None) == ["blog"]
    assert_cited_exactly(timeline, TEXTS)


def test_json_validates_against_the_shipped_schema(seeded, story):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for timeline in (
        seeded.timeline("Stoltenberg"),
        story.timeline(QUERY, min_score=KEEP_ALL),
        seeded.timeline("Fußball-Weltmeisterschaft"),
    ):
        data = timeline.to_json()
        validator.validate(data)
        assert data["n_entries"] == len(timeline.entries)
    broken = story.timeline(QUERY, min_score=KEEP_ALL).to_json()
    broken["groups"][0]["entries"][0].pop("citation")
    assert not validator.is_valid(broken)


def test_cli_json_and_text(seeded, monkeypatch):
    monkeypatch.setenv("RAG_INDEX_DIR", str(seeded.path))
    result = CliRunner().invoke(main, ["timeline", "Stoltenberg", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == seeded.timeline("Stoltenberg").to_json()
    assert [g["period"] for g in data["groups"]] == ["2022-06", "2023-06"]
    assert data["undated"]["entries"][0]["citation"]["source"].endswith(SEED["003"])
    text = CliRunner().invoke(main, ["timeline", "Stoltenberg", "--by", "year", "--to", "2022"])
    assert text.exit_code == 0, text.output
    assert "2022  (2 articles)" in text.stdout and "2023  (" not in text.stdout
    assert "[1] " in text.stdout and SEED["001"] in text.stdout
    bad = CliRunner().invoke(main, ["timeline", "Stoltenberg", "--from", "June"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ")
