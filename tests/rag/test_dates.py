"""Publication dates inferred from text: each rule in German and English, the seeds, no guesses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rag.ingest.dates import (
    DEFAULT_MIN_CONFIDENCE,
    HEAD_CHARS,
    RULE_CONFIDENCE,
    InferredDate,
    find_date_mentions,
    has_date_evidence,
    infer_date,
)
from rag.ingest.metadata import split_date_header

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
# The month each seed appeared in: from the ` date` header of 000-002, from the source for the
# two without one.
SEED_MONTHS = {
    "000": "2023-06",
    "001": "2022-06",
    "002": "2022-06",
    "003": "2022-01",
    "004": "2024-12",
}


def inferred(text: str, language: str | None = None, **kwargs: object) -> InferredDate:
    found = infer_date(text, language, **kwargs)  # type: ignore[arg-type]
    assert found is not None, f"no date inferred from {text!r}"
    source = kwargs.get("title") if found.field == "title" else text
    assert source[found.start : found.end] == found.evidence  # type: ignore[index]
    return found


@pytest.mark.parametrize(
    ("text", "language", "date", "evidence"),
    [
        (
            "Regierung plant neue Regeln\n\nDie Regierung will die Regeln ändern.\n\n"
            "Stand: 12.03.2024 14:05 Uhr",
            "de",
            "2024-03-12",
            "12.03.2024",
        ),
        (
            "Aktualisiert am 7. Januar 2022\nDie Regierung will die Regeln ändern.",
            "de",
            "2022-01-07",
            "7. Januar 2022",
        ),
        (
            "Government plans new rules\n\nThe government wants to change the rules.\n"
            "Updated 10:32 AM ET, Fri March 11, 2024",
            "en",
            "2024-03-11",
            "March 11, 2024",
        ),
        (
            "Published: 2022-01-07T10:00:00Z\nThe government wants new rules.",
            "en",
            "2022-01-07",
            "2022-01-07",
        ),
    ],
)
def test_a_stamp_line_gives_the_day(text: str, language: str, date: str, evidence: str) -> None:
    found = inferred(text, language)
    assert (found.rule, found.date, found.evidence) == ("stamp", date, evidence)
    assert found.confidence == RULE_CONFIDENCE["stamp"]


def test_a_stamp_inside_a_sentence_dates_a_figure_not_the_article() -> None:
    text = "Die Stadt hat 10.000 Einwohner (Stand: 31. Dezember 2020). Sie wächst weiter."
    assert infer_date(text, "de") is None


@pytest.mark.parametrize(
    ("text", "date"),
    [
        (
            "Washington, 7. Januar 2022 – Der Präsident hat neue Sanktionen angekündigt.",
            "2022-01-07",
        ),
        ("BERLIN (dpa) Freitag, 7. Januar 2022: Die Regierung hat beschlossen.", "2022-01-07"),
        ("Freitag, 7. Januar 2022\n\nDie Regierung hat neue Regeln beschlossen.", "2022-01-07"),
        ("WASHINGTON, January 7, 2022 — The president announced new sanctions.", "2022-01-07"),
        ("Nato summit\nBRUSSELS (Reuters) 7 January 2022 - Allies met on Friday.", "2022-01-07"),
    ],
)
def test_a_dateline_gives_the_day(text: str, date: str) -> None:
    found = inferred(text)
    assert (found.rule, found.date) == ("dateline", date)


def test_a_date_after_a_preposition_is_no_dateline() -> None:
    found = inferred("Am 30. Januar 2005 - so hieß es - fanden die Wahlen statt.", "de")
    assert found.rule == "lead_date"
    assert found.date == "2005-01"


@pytest.mark.parametrize(
    ("text", "language", "evidence"),
    [
        (
            "Die Nato hat ihre Truppen verstärkt. Nach einer Videokonferenz sagte Stoltenberg "
            "am Freitag, dem 7. Januar 2022, die Allianz sei bereit.",
            "de",
            "7. Januar 2022",
        ),
        (
            "NATO strengthened its troops. After a video call, Stoltenberg said on Friday, "
            "January 7, 2022, that the alliance was ready.",
            "en",
            "January 7, 2022",
        ),
    ],
)
def test_a_date_with_its_true_weekday_gives_the_month(
    text: str, language: str, evidence: str
) -> None:
    found = inferred(text, language)
    assert (found.rule, found.date, found.evidence) == ("weekday_date", "2022-01", evidence)


def test_a_weekday_that_does_not_fit_the_date_is_no_evidence() -> None:
    text = (
        "Die Nato hat ihre Truppen verstärkt. Nach einer Videokonferenz sagte Stoltenberg "
        "am Freitag, dem 8. Januar 2022, die Allianz sei bereit."
    )
    assert infer_date(text, "de") is None  # 8 January 2022 was a Saturday


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (
            "Bei einem Unfall auf der A 9 sind am 19. November 2011 zwei Menschen verletzt "
            "worden. Die Polizei ermittelt.",
            "de",
        ),
        (
            "Two people were injured in a crash on the A9 on 19 November 2011. Police are "
            "investigating.",
            "en",
        ),
        (
            "Two people were injured in a crash on the A9 on November 19th, 2011. Police are "
            "investigating.",
            "en",
        ),
        # A title line (short, no final period) is not the lead; the sentence after it is.
        (
            "Unfall auf der A 9\nBei einem Unfall sind am 19.11.2011 zwei Menschen verletzt "
            "worden.",
            "de",
        ),
    ],
)
def test_the_date_of_the_first_sentence_gives_the_month(text: str, language: str) -> None:
    found = inferred(text, language)
    assert (found.rule, found.date) == ("lead_date", "2011-11")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Die Wahl wird am 7. Mai 2023 stattfinden. Die Parteien bereiten sich vor.", "de"),
        ("The vote will be held on May 7, 2023. Parties are preparing.", "en"),
        ("Seit dem 1. Januar 2020 gilt das neue Gesetz. Die Bilanz fällt gemischt aus.", "de"),
        ("Since January 1, 2020, the new law has applied. Results are mixed.", "en"),
    ],
)
def test_a_date_said_of_the_future_or_the_backstory_is_not_the_publication_date(
    text: str, language: str
) -> None:
    assert infer_date(text, language, min_confidence=0.0) is None


@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        (
            "Die Konferenz tagte am Mittwoch (01. Juni) in Washington. Im Mai 2022 hatte Biden "
            "ein Paket angekündigt.",
            "01. Juni",
        ),
        (
            "The conference met on Wednesday (June 1) in Washington. In May 2022, Biden had "
            "announced a package.",
            "June 1",
        ),
        # The weekday picks the year after the one the text names: Monday 9 January 2006.
        (
            "Die Prüfung ist für Montag, den 9. Januar, angesetzt. Am 24. August 2005 starben "
            "40 Menschen.",
            "9. Januar",
        ),
    ],
)
def test_a_weekday_and_a_day_take_their_year_from_the_text(text: str, evidence: str) -> None:
    found = inferred(text)
    assert found.rule == "weekday_day"
    assert found.evidence == evidence
    assert found.date == ("2006-01" if "Januar" in evidence else "2022-06")


def test_a_weekday_and_a_day_without_any_year_stay_undated() -> None:
    # Seed 001: "am Mittwoch (01. Juni)" and no year anywhere: 2005, 2011, 2016, 2022 all fit.
    text = "Stoltenberg und Blinken äußerten sich bei einer Pressekonferenz am Mittwoch (01. Juni)."
    assert infer_date(text, "de", min_confidence=0.0) is None


def test_the_latest_date_needs_a_second_date_of_its_month() -> None:
    alone = "Die Proteste gehen weiter. Die Polizei nahm am 28. Mai 2022 zwölf Menschen fest."
    assert infer_date(alone, "de") is None
    weak = inferred(alone, "de", min_confidence=0.0)
    assert weak.rule == "latest_date"
    assert weak.confidence < DEFAULT_MIN_CONFIDENCE
    supported = (
        "Die Proteste gehen weiter. Schon am 20. Mai 2022 gingen Tausende auf die Straße. Die "
        "Polizei nahm am 28. Mai 2022 zwölf Menschen fest."
    )
    found = inferred(supported, "de")
    assert (found.rule, found.date, found.evidence) == ("supported_date", "2022-05", "28. Mai 2022")


def test_a_date_in_the_title_counts_and_says_so() -> None:
    title = "Sturm am Freitag, 7. Januar 2022: Bäume entwurzelt"
    found = inferred("Ein Sturm hat in der Nacht viele Bäume entwurzelt.", "de", title=title)
    assert (found.field, found.rule, found.date) == ("title", "weekday_date", "2022-01")


@pytest.mark.parametrize(
    "text",
    [
        "Im Jahr 1945 endete der Zweite Weltkrieg in Europa.",
        "In 1945 the Second World War ended in Europe.",
        # A full historical date beside a later year is a reference, not the publication date.
        "Die Ausstellung erinnert an den 8. Mai 1945. Sie ist bis 2022 zu sehen, sagte sie.",
        "Der am 24.04.1922 geborene Schauspieler leidet an Alzheimer, berichtete die Zeitung 2005.",
    ],
)
def test_a_historical_date_alone_dates_nothing(text: str) -> None:
    assert infer_date(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "Der Bürgermeister hat gestern das neue Schwimmbad eröffnet. Viele kamen am Montag.",
        "The mayor opened the new pool yesterday. Many visitors came on Monday.",
        "",
    ],
)
def test_an_article_without_date_evidence_stays_undated(text: str) -> None:
    assert not has_date_evidence(text)
    assert infer_date(text, min_confidence=0.0) is None


@pytest.mark.parametrize("name", sorted(p.name for p in SEEDS.glob("*.txt")))
def test_a_seed_gets_its_month_or_stays_undated(name: str) -> None:
    _, body = split_date_header((SEEDS / name).read_text(encoding="utf-8"))
    found = infer_date(body, "de")
    assert found is None or found.date[:7] == SEED_MONTHS[name[:3]], found


@pytest.mark.parametrize("name", ["003", "004"])
def test_seeds_without_a_date_header_are_never_given_a_wrong_month(name: str) -> None:
    (path,) = SEEDS.glob(f"{name}_*.txt")
    text = path.read_text(encoding="utf-8")
    assert split_date_header(text)[0] is None
    found = infer_date(text, "de", min_confidence=0.0)
    assert found is None or found.date[:7] == SEED_MONTHS[name]


def test_seed_004_is_dated_by_the_war_it_counts_from() -> None:
    (path,) = SEEDS.glob("004_*.txt")
    found = infer_date(path.read_text(encoding="utf-8"), "de")
    assert found is not None
    assert (found.date, found.rule) == ("2024-12", "event_elapsed")
    assert found.evidence == "Nach fast drei Jahren Ukraine-Krieg"
    assert found.basis == "Ukraine-Krieg: 2022-02-24"


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("Nach fast drei Jahren Ukraine-Krieg zeichnet sich ein Ende ab.", "2024-12"),
        ("Nach 1000 Tagen Krieg in der Ukraine zieht Kiew Bilanz.", "2024-11"),
        ("Zwei Jahre nach Beginn des russischen Angriffskriegs gegen die Ukraine.", "2024-02"),
        ("Seit mehr als zwei Jahren führt Russland Krieg gegen die Ukraine.", "2024-04"),
        ("Three years into the war in Ukraine, Kyiv is short of soldiers.", "2025-02"),
        ("Zehn Jahre nach dem Mauerfall feiert Berlin.", "1999-11"),
        ("Nach eineinhalb Jahren Corona-Pandemie öffnen die Theater.", "2021-09"),
    ],
)
def test_time_counted_from_a_known_event_gives_the_month(text: str, date: str) -> None:
    found = infer_date(text)
    assert found is not None and found.rule == "event_elapsed"
    assert found.date == date
    assert text[found.start : found.end] == found.evidence


@pytest.mark.parametrize(
    "text",
    [
        # the text names a later year: the count is backstory
        "Im März 2026 erinnerte man daran, dass nach drei Jahren Ukraine-Krieg vieles anders war.",
        # a much earlier year: the same words for another event ("Pandemie" alone is not Corona)
        "Im Jahr 2010, nach einem Jahr Pandemie, zog die WHO Bilanz.",
        "Damals, nach zwei Jahren Irak-Krieg, hatte niemand das erwartet.",
        # a count from no known event, and an ordinal
        "Nach acht Jahren Schule beginnt die Lehre.",
        "Im dritten Jahr des Ukraine-Kriegs fehlen Soldaten.",
    ],
)
def test_a_count_that_is_backstory_or_from_no_known_event_dates_nothing(text: str) -> None:
    found = infer_date(text, "de")
    assert found is None or found.rule != "event_elapsed", found


def test_finds_dates_as_written_in_german_and_english() -> None:
    text = (
        "am Mittwoch (01. Juni), 7. Januar 2022, January 7th, 2022, 2022-03-04, 12.03.2024, "
        "im Juni 2022, 3rd of May, im Jahr 1945; you may 5 times; 31.02.2022; 1.6.2 beta"
    )
    found = [(m.kind, m.text, m.year, m.month, m.day, m.weekday) for m in find_date_mentions(text)]
    assert found == [
        ("day_month", "01. Juni", None, 6, 1, 2),
        ("day_month_year", "7. Januar 2022", 2022, 1, 7, None),
        ("day_month_year", "January 7th, 2022", 2022, 1, 7, None),
        ("iso", "2022-03-04", 2022, 3, 4, None),
        ("numeric", "12.03.2024", 2024, 3, 12, None),
        ("month_year", "Juni 2022", 2022, 6, None, None),
        ("day_month", "3rd of May", None, 5, 3, None),
        ("year", "1945", 1945, None, None, None),
    ]  # not "may 5" (a verb), 31.02.2022 (no such day), 1.6.2 (a version)


def test_a_huge_text_is_read_in_bounded_time() -> None:
    lead = "Die Regierung hat neue Regeln beschlossen. "
    filler = "Am 3. Mai 2001 und am 4.5. sowie im Juni 2003 gab es 1.234 Fälle. " * 80_000  # 5 MB
    text = lead + filler + "\nStand: 12.03.2024"
    started = time.perf_counter()
    found = infer_date(text, "de")
    assert time.perf_counter() - started < 2.0
    assert found is not None and (found.rule, found.date) == ("stamp", "2024-03-12")
    assert found.start > HEAD_CHARS and text[found.start : found.end] == "12.03.2024"


@pytest.mark.parametrize(
    "head",
    ["A" * 190 + " x ", "A, " * 60, "Mittwoch, " * 15, "vor " * 40, "Stand: " * 20],
)
def test_a_pathological_opening_is_read_in_bounded_time(head: str) -> None:
    started = time.perf_counter()
    infer_date(head + "7. Januar 2022 – Der Text.", title=head)
    assert time.perf_counter() - started < 0.5
