"""Questions in time (`rag.retrieval.when`) and answers in time (`rag.answer.timing`): what a
question's time expressions are read as, and how a quote answer over reports of several dates
leads with the asked time or the newest report, shows the others as earlier and says so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag.answer.timing import holder_of, holder_spans, resolve_relative, states_amount
from rag.engine import Engine
from rag.retrieval.when import read_time
from rag.types import Document, Filters


# --- reading the question -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "spans"),
    [
        ("Wer war im Juli 2005 Bundeskanzler?", [("2005-07-01", "2005-07-31", "month")]),
        ("Who was chancellor in 2010?", [("2010-01-01", "2010-12-31", "year")]),
        ("Was geschah am 3. März 2012?", [("2012-03-03", "2012-03-03", "day")]),
        ("What happened on March 3, 2012?", [("2012-03-03", "2012-03-03", "day")]),
        ("Was war am 03.04.2012?", [("2012-04-03", "2012-04-03", "day")]),
        ("Wie stand es Ende März 2012?", [("2012-03-21", "2012-03-31", "month")]),
        ("Was geschah Anfang 2010?", [("2010-01-01", "2010-03-31", "year")]),
        ("Wer regierte zwischen 2005 und 2008?", [("2005-01-01", "2008-12-31", "range")]),
        ("Who ruled from May 2005 to June 2006?", [("2005-05-01", "2006-06-30", "range")]),
        ("Was geschah 2005-2008?", [("2005-01-01", "2008-12-31", "range")]),
        ("Was geschah vor 2009?", [("1900-01-01", "2008-12-31", "before")]),
        ("What happened before the 2009 election?", [("1900-01-01", "2009-12-31", "before")]),
        ("Wer regiert seit 2015?", [("2015-01-01", "2099-12-31", "after")]),
        ("Was geschah nach 2015?", [("2016-01-01", "2099-12-31", "after")]),
        (
            "Wie hoch war sie im Juli 2005, im November 2010 und Ende März 2012?",
            [
                ("2005-07-01", "2005-07-31", "month"),
                ("2010-11-01", "2010-11-30", "month"),
                ("2012-03-21", "2012-03-31", "month"),
            ],
        ),
    ],
)
def test_time_expressions_become_spans_of_days(question, spans):
    reading = read_time(question)

    assert [(a.start, a.end, a.kind) for a in reading.anchors] == spans
    assert reading.active()


@pytest.mark.parametrize(
    "question",
    [
        "Wie viele der 2010 Menschen wurden gerettet?",  # a quantity, not a year
        "Was kostete es: 1990 Euro?",
        "Was sagte von der Leyen im Juli?",  # which July?
        "Wer ist Jens Stoltenberg?",
    ],
)
def test_numbers_and_bare_months_are_not_times(question):
    assert read_time(question).anchors == ()


@pytest.mark.parametrize(
    ("question", "latest", "then", "when"),
    [
        ("Wer ist derzeit NATO-Generalsekretär?", True, False, False),
        ("Who currently leads NATO?", True, False, False),
        ("What is the latest figure?", True, False, False),
        ("Wie hoch ist die Arbeitslosigkeit aktuell?", True, False, False),
        ("Wer war damals Minister?", False, True, False),
        ("Who was minister at the time?", False, True, False),
        ("Wann trat Stoltenberg zurück?", False, False, True),
        ("Seit wann ist er im Amt?", False, False, True),
        ("When did the war start?", False, False, True),
        ("On which date did the pope step down?", False, False, True),
        ("Auf welchen Tag wurde der Prozess vertagt?", False, False, True),
        ("Wer ist Jens Stoltenberg?", False, False, False),
    ],
)
def test_present_past_and_when_cues(question, latest, then, when):
    reading = read_time(question)

    assert (reading.latest, reading.then, reading.asks_when) == (latest, then, when)


def test_what_the_question_was_read_as_is_said_in_its_language():
    assert read_time("Wer war 2010 Minister?").understood("de") == "verstanden als: Stand 2010"
    assert read_time("Who was minister in 2010?").understood("en") == "understood as: as of 2010"
    assert read_time("Was war zwischen 2005 und 2008?").understood("de").endswith("2005 – 2008")
    assert "latest" in read_time("Who is the current chair?").understood("en")
    assert read_time("Wer ist Minister?").understood("de") == ""


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("Wer war im Juli 2005 Bundesinnenminister?", "Wer war Bundesinnenminister?"),
        ("Who was US president in March 2008?", "Who was US president?"),
        ("Wer ist derzeit Bundespräsident?", "Wer ist Bundespräsident?"),
        ("Wie hoch ist der Ölpreis laut der neuesten Meldung?", "Wie hoch ist der Ölpreis?"),
        ("Welches Amt hat Wulff nach dem neuesten Stand?", "Welches Amt hat Wulff?"),
        # asked per time: what it was then, not how it moved
        (
            "Wie hat sich das Amt von Schäuble zwischen 2008 und 2010 verändert?",
            "Wie hat sich das Amt von Schäuble?",
        ),
        ("Wer gewann im Jahr 2006 die Australian Open?", "Wer gewann die Australian Open?"),
        # the event before the time stays: it is what the question is about
        ("Was geschah vor der Wahl 2009 in Hessen?", "Was geschah vor der Wahl in Hessen?"),
        ("Wer regierte vor 2009 Hessen?", "Wer regierte Hessen?"),
        ("Was passierte 2006?", ""),  # too little left to search by
        ("Wann wurde der Dom gebaut?", ""),  # no time words: nothing taken out
    ],
)
def test_the_topic_is_the_question_without_its_time_words(question, topic):
    assert read_time(question).topic == topic


def test_a_span_narrows_the_callers_filters_or_excludes_them():
    (span,) = read_time("Wer war 2010 Minister?").anchors

    narrowed = span.within(Filters(date_from="2010-06", sources=("a.txt",)))
    assert narrowed == Filters(date_from="2010-06-01", date_to="2010-12-31", sources=("a.txt",))
    assert span.within(Filters(date_to="2009")) is None
    assert span.contains("2010-07") and span.contains("2010") and not span.contains("2011-01-01")
    assert not span.contains(None)


def test_relative_days_resolve_against_a_full_article_date():
    # 2022-06-03 was a Friday: "am Mittwoch" is June 1, "gestern" June 2.
    found = resolve_relative("Sie sagten am Mittwoch und gestern, dass ...", "2022-06-03")
    assert [(r.text, r.date) for r in found] == [
        ("am Mittwoch", "2022-06-01"),
        ("gestern", "2022-06-02"),
    ]
    assert resolve_relative("On Friday he left.", "2022-06-03")[0].date == "2022-06-03"
    assert resolve_relative("am Mittwoch", "2022-06") == []  # which Wednesday of June?
    found = resolve_relative("am Freitag, den 3. Juni", "2022-06-10")  # the weekday is dated
    assert [(r.text, r.date) for r in found] == [("3. Juni", "2022-06-03")]


# --- answers over reports of several dates ------------------------------------------------------
_CLUB = [
    ("club-2018", "2018-05-14", "Der Vorsitzende des Schachvereins Rotenburg ist Anton Weber. "
     "Weber leitet den Verein seit vielen Jahren und organisiert das Sommerturnier."),
    ("club-2020", "2020-03-02", "Neuer Vorsitzender des Schachvereins Rotenburg ist Bernd Krause. "
     "Krause wurde auf der Jahresversammlung gewählt und folgt auf Anton Weber."),
    ("club-2023", "2023-11-20", "Vorsitzende des Schachvereins Rotenburg ist nun Carla Martens. "
     "Martens wurde auf der Jahresversammlung gewählt und folgt auf Bernd Krause."),
    ("weather", "2023-11-21", "In Rotenburg regnete es am Dienstag den ganzen Tag. "
     "Die Temperaturen lagen bei acht Grad."),
]  # fmt: skip


@pytest.fixture(scope="module")
def club(tmp_path_factory, settings, embedder) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("time") / "index"
    docs = [
        Document(doc_id=i, text=t, source=f"{i}.txt", title=None, date=d, language="de")
        for i, d, t in _CLUB
    ]
    with Engine.open(path, settings, embedder=embedder) as engine:
        assert engine.add_documents(docs).ok
        yield engine


def _cited_docs(answer) -> list[str]:
    return [c.doc_id for c in answer.citations]


def test_latest_question_leads_with_the_newest_report_and_shows_earlier_ones(club):
    answer = club.ask("Wer ist derzeit Vorsitzender des Schachvereins Rotenburg?", mode="quote")

    assert answer.answerable
    docs = _cited_docs(answer)
    assert docs[0] == "club-2023", answer.text
    assert len(docs) >= 2 and set(docs[1:]) <= {"club-2018", "club-2020"}, answer.text
    lines = answer.text.splitlines()
    assert "neueste zuerst" in lines[0]
    assert lines[1].startswith("Stand 2023-11-20: „") and "Carla Martens" in lines[1]
    assert lines[-1].startswith("Früher, 20")
    assert answer.retrieval["time"]["latest"] is True
    for sentence in answer.sentences:
        assert sentence.supported


def test_question_about_a_year_quotes_that_years_report(club):
    answer = club.ask("Wer war 2018 Vorsitzender des Schachvereins Rotenburg?", mode="quote")

    assert _cited_docs(answer)[0] == "club-2018", answer.text
    assert "Anton Weber" in answer.text.splitlines()[1]
    assert "verstanden als: Stand 2018" in answer.text.splitlines()[0]
    assert answer.retrieval["time"]["anchors"][0]["start"] == "2018-01-01"
    searched = answer.retrieval["time"]["searched_as"]
    assert searched == "Wer war Vorsitzender des Schachvereins Rotenburg?"


def test_question_about_several_times_is_answered_per_time(club):
    answer = club.ask(
        "Wer war im Mai 2018, im März 2020 und im Jahr 2021 Vorsitzender des Schachvereins?",
        mode="quote",
    )

    lines = answer.text.splitlines()
    assert lines[1].startswith("Stand 2018-05: „") and "Anton Weber" in lines[1]
    assert lines[2].startswith("Stand 2020-03: „") and "Bernd Krause" in lines[2]
    assert lines[3] == "Stand 2021: Die Quellen sagen dazu nichts."
    assert _cited_docs(answer) == ["club-2018", "club-2020"]
    assert [a["text"] for a in answer.retrieval["time"]["no_sources_in"]] == ["2021"]


def test_a_time_with_no_report_falls_back_to_all_dates(club):
    answer = club.ask("Wer war 2019 Vorsitzender des Schachvereins Rotenburg?", mode="quote")

    assert answer.answerable  # nothing from 2019: the best of all dates, labelled with theirs
    assert answer.retrieval["time"]["no_sources_in"][0]["start"] == "2019-01-01"
    # the year filtered nothing, so the question was searched with it, as asked
    assert answer.retrieval["time"]["searched_as"] is None
    assert all(
        line.startswith(("Stand", "Früher", "Später")) for line in answer.text.splitlines()[1:]
    )


def test_untimed_question_of_one_date_keeps_the_plain_quote_lines(club):
    answer = club.ask("Wie warm war es in Rotenburg?", mode="quote")

    assert _cited_docs(answer)[0] == "weather"
    assert "time" not in answer.retrieval
    assert answer.text.splitlines()[1].endswith("(2023-11-21)")


def test_a_weekday_follows_the_tense_or_the_articles_week():
    # 2005-04-25 was a Monday.
    assert resolve_relative("Der A380 startet am Mittwoch.", "2005-04-25")[0].date == "2005-04-27"
    assert resolve_relative("Er hatte am Mittwoch gewarnt.", "2005-04-25")[0].date == "2005-04-20"
    assert resolve_relative("Sie wird am Montag reisen.", "2005-04-25")[0].date == "2005-05-02"
    found = resolve_relative("Am Mittwochnachmittag kam es zum Unglück.", "2006-01-06")
    assert [(r.text, r.date) for r in found] == [("Am Mittwochnachmittag", "2006-01-04")]


@pytest.mark.parametrize(
    ("question", "day"),
    [
        ("Wann wurde der Prozess vertagt?", True),
        ("Auf welchen Tag wurde der Prozess vertagt?", True),
        ("In welchem Jahr begann der Bau?", False),  # a year, not a day
        ("In which month did it open?", False),
        ("Wer ist Papst?", False),
    ],
)
def test_a_when_question_asks_for_a_day_unless_it_names_a_year_or_month(question, day):
    assert read_time(question).asks_day is day


def test_a_weekday_said_as_last_or_next_is_that_one_whatever_the_tense():
    # 2022-02-03 was a Thursday.
    said = "Bei den Australian Open gewann letzten Sonntag der Spanier Rafael Nadal."
    assert resolve_relative(said, "2022-02-03")[0].date == "2022-01-30"
    assert resolve_relative("Das Finale ist kommenden Sonntag.", "2022-02-03")[0].date == (
        "2022-02-06"
    )
    # a strong verb's past ("kam") and an ordinal ("ersten") are read as what they are
    assert resolve_relative("Er kam am Sonntag.", "2022-02-03")[0].date == "2022-01-30"
    said = "Der A380 startet am Mittwoch zu seinem ersten Testflug."
    assert resolve_relative(said, "2005-04-25")[0].date == "2005-04-27"


@pytest.mark.parametrize(
    ("question", "spans"),
    [
        (
            "Wie hat sich die Einschätzung zwischen April und Juli 2009 verändert?",
            [("2009-04-01", "2009-04-30"), ("2009-07-01", "2009-07-31")],
        ),
        (
            "Wie hat sich die Dauer zwischen Ende Juni und Ende Juli 2005 verändert?",
            [("2005-06-21", "2005-06-30"), ("2005-07-21", "2005-07-31")],
        ),
        ("Was geschah zwischen Dezember und März 2010?", [("2009-12-01", "2010-03-31")]),
    ],
)
def test_a_range_whose_first_month_has_no_year_takes_the_ends(question, spans):
    assert [(a.start, a.end) for a in read_time(question).anchors] == spans


def test_what_an_answering_sentence_holds_an_amount_or_an_office_holder():
    assert states_amount("Der Goldpreis hat mit 799,30 US-Dollar pro Unze den Höchststand.")
    assert states_amount("Die Polizei beziffert die Zahl der Toten auf 626.")
    assert not states_amount("Am 13. Oktober 2006 wurde er gewählt.")  # a day and a year
    pope = holder_of("Wer ist Papst?")
    assert pope is not None and holder_of("Wie hoch ist der Ölpreis?") is None
    assert pope("Nach der Wahl verzichtete Papst Franziskus auf den Mercedes.")
    assert not pope("Bergoglio wählte seinen Papstnamen in Anlehnung an Franz von Assisi.")
    president = holder_of("Wer ist Bundespräsident?")
    assert president is not None
    assert president("Seinen ersten Besuch als Bundespräsident machte Joachim Gauck in Polen.")
    pm = holder_of("Wer war Ministerpräsident von Thailand?")
    assert pm is not None
    assert pm("Ministerpräsident Samak Sundaravej griff zu einer drastischen Maßnahme.")
    assert not pm("nach dem Sturz des ehemaligen Ministerpräsidenten Thaksin Shinawatra")
    uk = holder_of("Wer ist britischer Premierminister?")
    assert uk is not None
    assert uk("Boris Johnson wurde von der Queen zum neuen Premierminister ernannt.")


def test_where_a_sentence_names_the_office_holder():
    """The reader's phrase has the asked form when it lies inside such a span."""
    spans = holder_spans("Wer war im Dezember 2008 Bundesfinanzminister?")
    assert spans is not None and holder_spans("Wie hoch ist der Ölpreis?") is None
    text = "Die Ausfälle würden laut Finanzminister Peer Steinbrück nicht ausgeglichen."
    ((start, end),) = spans(text)
    assert text[start:end] == "Finanzminister Peer Steinbrück"
    assert spans("Das musste der Finanzminister einräumen.") == []


def test_a_day_without_its_year_takes_the_articles_year():
    found = resolve_relative("Die Wahl findet am 28. Februar statt.", "2010-01-10")
    assert [(r.text, r.date) for r in found] == [("am 28. Februar", "2010-02-28")]
    assert resolve_relative("Am 28. Februar 2009 war es so.", "2010-01-10") == []


def test_a_change_question_asks_for_both_ends_of_its_range():
    reading = read_time("Wie hat sich der Goldpreis zwischen 2005 und 2008 verändert?")
    assert [a.label() for a in reading.anchors] == ["2005", "2008"]
    reading = read_time("How did the price change from May 2005 to June 2006?")
    assert [a.label() for a in reading.anchors] == ["2005-05", "2006-06"]
    assert [a.kind for a in read_time("Was geschah zwischen 2005 und 2008?").anchors] == ["range"]
