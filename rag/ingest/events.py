"""Time counted from events every news reader knows the date of: "Nach fast drei Jahren
Ukraine-Krieg", "zwei Jahre nach dem Mauerfall", "three years into the war in Ukraine".

An article that names no date of its own often counts from such an event; the count dates it
(to the month: `rag.ingest.dates`, rule `event_elapsed`). `EVENTS` lists the events with their
first day and the names news give them, German and English. A qualifier moves the count: "fast",
"knapp", "beinahe", "almost", "nearly" mean a little short of it (two months for years, a week
for months, a day for weeks), "mehr als", "gut", "über", "more than", "over" a little beyond.
A count of days, weeks, months or years (up to 30 years) is read; an ordinal ("im dritten Jahr")
is not.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    name: str
    start: dt.date
    pattern: str  # the names news give it (a regular expression, case-sensitive as written)


_UKRAINE = (
    r"(?:(?:russischen?\s+)?Ukraine-?[Kk]rieg(?:e?s)?"
    r"|(?:russischen?\s+)?(?:Angriffs)?[Kk]rieg(?:e?s)?\s+(?:in\s+der|gegen\s+die)\s+Ukraine"
    r"|russischen?\s+(?:Angriffskrieg(?:e?s)?|Invasion|Überfall(?:s)?|Einmarsch(?:es)?)"
    r"(?:\s+(?:in\s+die|auf\s+die|in\s+der)\s+Ukraine)?"
    r"|(?:Russia's\s+(?:full-scale\s+)?invasion(?:\s+of\s+Ukraine)?|Russian\s+invasion"
    r"(?:\s+of\s+Ukraine)?|war\s+in\s+Ukraine|Ukraine\s+war|Russia's\s+war(?:\s+(?:in|on|against)"
    r"\s+Ukraine)?))"
)

EVENTS: tuple[Event, ...] = (
    Event("Ukraine-Krieg", dt.date(2022, 2, 24), _UKRAINE),
    Event(
        "Corona-Pandemie",
        dt.date(2020, 3, 11),
        r"(?:Corona-?[Pp]andemie|Covid-19-Pandemie|(?:COVID(?:-19)?|coronavirus)\s+pandemic)",
    ),
    Event(
        "Annexion der Krim",
        dt.date(2014, 3, 18),
        r"(?:(?:der\s+)?Annexion\s+der\s+(?:ukrainischen\s+Halbinsel\s+)?Krim|Krim-Annexion"
        r"|annexation\s+of\s+(?:the\s+)?Crimea)",
    ),
    Event(
        "Hamas-Überfall auf Israel",
        dt.date(2023, 10, 7),
        r"(?:Hamas-(?:Überfall|Angriff|Massaker)(?:s|es)?(?:\s+auf\s+Israel)?"
        r"|Gaza-Krieg(?:e?s)?|Krieg(?:e?s)?\s+im\s+Gazastreifen|Hamas\s+attack|war\s+in\s+Gaza"
        r"|Gaza\s+war)",
    ),
    Event(
        "Anschläge vom 11. September 2001",
        dt.date(2001, 9, 11),
        r"(?:(?:Terror)?[Aa]nschläge[n]?\s+vom\s+11\.\s+September|11\.\s+September"
        r"|September\s+11(?:th)?(?:\s+attacks)?|9/11)",
    ),
    Event(
        "Irak-Krieg",
        dt.date(2003, 3, 20),
        r"(?:Irak-?[Kk]rieg(?:e?s)?|Krieg(?:e?s)?\s+im\s+Irak|Iraq\s+war|war\s+in\s+Iraq"
        r"|invasion\s+of\s+Iraq)",
    ),
    Event(
        "Mauerfall",
        dt.date(1989, 11, 9),
        r"(?:Mauerfall(?:s)?|Fall(?:s)?\s+der\s+Mauer|fall\s+of\s+the\s+Berlin\s+Wall)",
    ),
    Event(
        "Wiedervereinigung",
        dt.date(1990, 10, 3),
        r"(?:(?:deutschen\s+)?Wiedervereinigung|Deutschen\s+Einheit|German\s+reunification)",
    ),
    Event(
        "Reaktorkatastrophe von Fukushima",
        dt.date(2011, 3, 11),
        r"(?:(?:Reaktor|Atom)?[Kk]atastrophe\s+von\s+Fukushima|Fukushima(?:-Katastrophe)?"
        r"|Fukushima\s+disaster)",
    ),
    Event(
        "Brexit-Referendum",
        dt.date(2016, 6, 23),
        r"(?:Brexit-Referendum(?:s)?|Brexit\s+referendum|Brexit-Votum(?:s)?)",
    ),
    Event(
        "Lehman-Pleite",
        dt.date(2008, 9, 15),
        r"(?:Lehman-(?:Pleite|Insolvenz)|Pleite\s+von\s+Lehman\s+Brothers|collapse\s+of\s+Lehman"
        r"(?:\s+Brothers)?)",
    ),
)

_NUMBERS: dict[str, float] = {
    "ein": 1, "einem": 1, "einer": 1, "eins": 1, "eines": 1, "zwei": 2, "drei": 3, "vier": 4,
    "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10, "elf": 11,
    "zwölf": 12, "zwanzig": 20, "hundert": 100, "tausend": 1000, "eineinhalb": 1.5,
    "anderthalb": 1.5, "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "twenty": 20, "hundred": 100, "thousand": 1000,
}  # fmt: skip
# By a unit's first three letters: days in it, and how far "fast drei Jahre" falls short.
_UNITS: dict[str, float] = {"jah": 365.25, "yea": 365.25, "mon": 30.44, "woc": 7, "wee": 7,
                            "tag": 1, "day": 1}  # fmt: skip
_SLACK: dict[str, float] = {"jah": 61, "yea": 61, "mon": 7, "woc": 1, "wee": 1, "tag": 0,
                            "day": 0}  # fmt: skip
_SHORT = {"fast", "knapp", "beinahe", "almost", "nearly"}
_LONG = {"mehr als", "gut", "über", "more than", "over"}
_MAX_DAYS = 30 * 365.25

_QUALIFIER = r"(?P<q>fast|knapp|beinahe|almost|nearly|mehr\s+als|more\s+than|gut|über|over)\s+"
_NUMBER = rf"(?P<n>\d{{1,4}}(?:[.,]\d)?|{'|'.join(sorted(_NUMBERS, key=len, reverse=True))})"
_UNIT = r"(?P<u>Jahr(?:en?|es)?|Monat(?:en?|s)?|Wochen?|Tag(?:en?)?|years?|months?|weeks?|days?)\b"


@dataclass(frozen=True)
class Count:
    """An elapsed time from an event, as written at `text[start:end]`, and where it points."""

    start: int
    end: int
    event: str
    event_date: str
    year: int
    month: int


def _compiled() -> tuple[re.Pattern[str], ...]:
    names = "|".join(rf"(?P<e{i}>{event.pattern})" for i, event in enumerate(EVENTS))
    counted = rf"(?:{_QUALIFIER})?{_NUMBER}\s+{_UNIT}"
    the = r"(?:(?:dem|der|des|den|the)\s+)?"
    start_of = (
        r"(?:(?:Beginn|Anfang|Ausbruch|start|beginning|outbreak)\s+(?:des|der|of\s+the|of)\s+)?"
    )
    flags = re.IGNORECASE
    return (
        # "Nach fast drei Jahren Ukraine-Krieg", "after nearly three years of war in Ukraine"
        re.compile(
            rf"\b(?:[Nn]ach|[Aa]fter)\s+{counted}\s+(?:of\s+)?{the}{start_of}(?:{names})", flags
        ),
        # "zwei Jahre nach (dem Beginn des) Ukraine-Krieg(s)", "two years after the invasion"
        re.compile(rf"\b{counted}\s+(?:nach|after|since)\s+{the}{start_of}{the}(?:{names})", flags),
        # "three years into the war in Ukraine"
        re.compile(rf"\b{counted}\s+into\s+{the}(?:{names})", flags),
        # "Seit fast drei Jahren führt Russland Krieg gegen die Ukraine"
        re.compile(rf"\b[Ss]eit\s+{counted}[^.!?;\n]{{0,60}}?(?:{names})", flags),
    )


_PATTERNS = _compiled()


def count_from_events(text: str) -> Iterator[Count]:
    """Every elapsed time from a known event that `text` states, in text order."""
    found = sorted(
        (match for pattern in _PATTERNS for match in pattern.finditer(text)),
        key=lambda match: match.start(),
    )
    for match in found:
        counted = _count(match)
        if counted is not None:
            yield counted


def _count(match: re.Match[str]) -> Count | None:
    groups = match.groupdict()
    event = next(EVENTS[i] for i in range(len(EVENTS)) if groups.get(f"e{i}"))
    number = _number(groups["n"])
    unit = groups["u"].lower()[:3]
    if number is None:
        return None
    days = number * _UNITS[unit]
    qualifier = re.sub(r"\s+", " ", (groups.get("q") or "").lower())
    if qualifier in _SHORT:
        days -= _SLACK[unit]
    elif qualifier in _LONG:
        days += _SLACK[unit]
    if not 0 < days <= _MAX_DAYS:
        return None
    when = event.start + dt.timedelta(days=round(days))
    return Count(
        start=match.start(),
        end=match.end(),
        event=event.name,
        event_date=event.start.isoformat(),
        year=when.year,
        month=when.month,
    )


def _number(text: str) -> float | None:
    if text[0].isdigit():
        return float(text.replace(",", "."))
    return _NUMBERS.get(text.lower())
