"""Answers in time: which sentence leads when the question asks about a time, how quoted
sentences of different dates are ordered and labelled, and what "am Mittwoch" in a quote meant.

The question's time comes from `rag.retrieval.when.read_time`. Relevance decides first: only
sentences whose evidence is within `margin` of the best one compete on time, so a report of the
right date that does not answer never displaces one that does. Among those:

- a question about a time ("im Juli 2005") prefers sentences of articles dated in that time;
- a question about the present ("derzeit", "latest") prefers the newest dated article;
- the chosen sentences are shown newest first when their dates differ, the first as the state
  of its date ("Stand 2023-06:") and the others as earlier reports ("Früher, 2022-06:"); an
  undated article cannot be placed in time and says so ("Ohne Datum:").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.quote import ScoredSentence
from rag.ingest.dates import MONTHS
from rag.retrieval.when import TimeReading, TimeSpan
from rag.types import Hit

# What a line says about its date, by language.
_STATE = {"de": "Stand {date}", "en": "As of {date}"}
_EARLIER = {"de": "Früher, {date}", "en": "Earlier, {date}"}
_LATER = {"de": "Später, {date}", "en": "Later, {date}"}
_UNDATED = {"de": "Ohne Datum", "en": "Undated"}
_INFERRED = {"de": "Datum erschlossen", "en": "date inferred"}
_NEWEST_FIRST = {"de": "neueste zuerst", "en": "newest first"}
_NOTHING_FOR = {
    "de": "{time}: Die Quellen sagen dazu nichts.",
    "en": "{time}: The sources say nothing about it.",
}


def strength(s: ScoredSentence, keyword: float) -> float:
    """How well a sentence itself answers (its cosine to the question and the share of the
    question's terms it holds), leaving out its passage's context: two reports of different
    dates that answer alike are equals here even when one's passage is closer to the question."""
    return s.cosine + keyword * s.coverage


def prefer(
    scored: Sequence[ScoredSentence],
    hits: Sequence[Hit],
    reading: TimeReading,
    margin: float,
    keyword: float,
) -> list[ScoredSentence]:
    """`scored` with the sentences the question's time prefers moved to the front, among those
    whose `strength` is within `margin` of the best's (the rest keep their order behind)."""
    if not scored or not reading.active():
        return list(scored)
    best = max(strength(s, keyword) for s in scored)
    near = [s for s in scored if best - strength(s, keyword) <= margin]
    rest = [s for s in scored if best - strength(s, keyword) > margin]

    def key(s: ScoredSentence) -> tuple[int, str, float]:
        date = hits[s.hit].date
        if reading.anchors:
            outside = 0 if any(a.contains(date) for a in reading.anchors) else 1
            # In or out of the asked time first; within it, relevance (or, asked for the
            # latest state within it, the newest report).
            return (outside, _invert(date or "") if reading.latest else "", -s.score)
        return (0 if date else 1, _invert(date or ""), -s.score)  # latest: newest, undated last

    return sorted(near, key=key) + rest


def in_span(
    scored: Sequence[ScoredSentence], hits: Sequence[Hit], span: TimeSpan
) -> list[ScoredSentence]:
    """The sentences of articles dated within `span`, best first."""
    return [s for s in scored if span.contains(hits[s.hit].date)]


def arrange(
    chosen: Sequence[ScoredSentence], hits: Sequence[Hit], reading: TimeReading
) -> list[ScoredSentence]:
    """Chosen sentences in the order a timed answer shows them: those of the asked time first
    (if the question names one), then newest first, undated last."""

    def key(s: ScoredSentence) -> tuple[int, bool, str]:
        date = hits[s.hit].date
        outside = bool(reading.anchors) and not any(a.contains(date) for a in reading.anchors)
        return (int(outside), date is None, _invert(date or ""))

    return sorted(chosen, key=key)  # stable: one date's sentences keep their order


def with_earlier(
    chosen: Sequence[ScoredSentence],
    scored: Sequence[ScoredSentence],
    hits: Sequence[Hit],
    threshold: float,
    margin: float,
    keyword: float,
    most: int,
) -> list[ScoredSentence]:
    """Asked for the latest state: `chosen`, plus the best sentence of an older report when
    none is chosen yet (its `strength` within `margin` of the best's, its score above
    `threshold`), so the answer shows what was said before; it takes the last place when
    `most` are chosen."""
    out = list(chosen)
    lead = hits[out[0].hit].date if out else None
    if not lead or any((hits[s.hit].date or lead) < lead for s in out):
        return out
    best = max(strength(s, keyword) for s in scored)
    older = [
        s
        for s in scored
        if hits[s.hit].date
        and str(hits[s.hit].date) < lead
        and s.score >= threshold
        and best - strength(s, keyword) <= margin
    ]
    if not older:
        return out
    pick = max(older, key=lambda s: (str(hits[s.hit].date), strength(s, keyword)))
    return (out if len(out) < most else out[: most - 1]) + [pick]


def dated_differently(chosen: Sequence[ScoredSentence], hits: Sequence[Hit]) -> bool:
    """Whether the chosen sentences come from articles of more than one date (or undated)."""
    return len({hits[s.hit].date for s in chosen}) > 1


def label(hit: Hit, lead: str | None, language: str) -> str:
    """A line's time label beside the answer's first date `lead`: "Stand 2023-06" (that date),
    "Früher, 2022-06" (older), "Später, 2024-01" (newer), "Ohne Datum"."""
    lang = language if language in _STATE else "en"
    if not hit.date:
        return _UNDATED[lang]
    date = hit.date
    if hit.date_source == "inferred":
        date = f"{date} ({_INFERRED[lang]})"
    if not lead or hit.date == lead:
        return _STATE[lang].format(date=date)
    return (_EARLIER if hit.date < lead else _LATER)[lang].format(date=date)


def newest_first_note(language: str) -> str:
    return _NEWEST_FIRST[language if language in _NEWEST_FIRST else "en"]


def nothing_for(span: TimeSpan, language: str) -> str:
    lang = language if language in _NOTHING_FOR else "en"
    return _NOTHING_FOR[lang].format(time=span.phrase(lang))


def _invert(date: str) -> str:
    """A key that sorts ISO dates newest first (the empty date last)."""
    return "".join(chr(0x10FFFF - ord(c)) for c in date) if date else "\U0010ffff"


# ----------------------------------------------------------------------------- relative dates
@dataclass(frozen=True)
class Resolved:
    """A relative date in a quote ("am Mittwoch") and the day it meant, from the article's date."""

    text: str
    date: str

    def to_json(self) -> dict[str, str]:
        return {"text": self.text, "date": self.date}


_WEEKDAYS = {
    "montag": 0, "dienstag": 1, "mittwoch": 2, "donnerstag": 3, "freitag": 4, "samstag": 5,
    "sonnabend": 5, "sonntag": 6, "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3,
    "friday": 4, "saturday": 5, "sunday": 6,
}  # fmt: skip
_OFFSETS = {
    "vorgestern": -2, "gestern": -1, "heute": 0, "übermorgen": 2,
    "yesterday": -1, "today": 0, "tomorrow": 1,
}  # fmt: skip
_DAYTIME = r"(?:morgen|vormittag|mittag|nachmittag|abend|nacht|morning|afternoon|evening|night)?"
_RELATIVE = re.compile(
    r"\b(?:(?:am|on|last|next|this)\s+)?(?P<wd>"
    + "|".join(_WEEKDAYS)
    + r")"
    + _DAYTIME
    + r"\b(?!\s*,?\s*(?:den|dem|the)?\s*\d)"
    r"|\b(?P<off>" + "|".join(_OFFSETS) + r")\b(?!\s*(?:früh|abend))?",
    re.IGNORECASE,
)
_DAY_MONTH = re.compile(
    r"\b(?:am\s+|on\s+)?(?P<d>[0-3]?\d)\.\s*(?P<m>"
    + "|".join(sorted(MONTHS, key=len, reverse=True))
    + r")\b(?!\.?\s*,?\s*(?:19|20)\d\d)",
    re.IGNORECASE,
)
# Tense around a weekday: "hatte am Mittwoch" is the past one, "wird am Mittwoch" the next.
_PAST = re.compile(
    r"\b(?:hat|hatte|hatten|haben|war|waren|wurde|wurden|sagte|sagten|erklärte|teilte|"
    r"was|were|had|said|did)\b|\b\w+(?:te|ten)\b|\b\w+ed\b",
    re.IGNORECASE,
)
_FUTURE = re.compile(
    r"\b(?:wird|werden|soll|sollen|will|wollen|plant|planen|geplant|künftig|will|shall|"
    r"going\s+to|next|nächste\w*|kommende\w*)\b",
    re.IGNORECASE,
)


def resolve_relative(sentence: str, article_date: str | None) -> list[Resolved]:
    """The relative days a sentence names ("am Mittwoch", "gestern", "am 28. Februar"),
    resolved against the day its article is dated (only a full date: a month does not say
    which Wednesday). A weekday said in the past tense is the last one before the article's
    day, in the future tense the next one after it; otherwise the one of the article's week
    (Monday to Sunday: "Der A380 startet am Mittwoch" on a Monday is two days later). A day
    and month without a year take the article's year."""
    if not article_date or len(article_date) < 10:
        return []
    try:
        day = dt.date.fromisoformat(article_date[:10])
    except ValueError:
        return []
    past, future = bool(_PAST.search(sentence)), bool(_FUTURE.search(sentence))
    out = []
    for m in _RELATIVE.finditer(sentence):
        if m["wd"]:
            weekday = _WEEKDAYS[m["wd"].lower()]
            if future and not past:
                when = day + dt.timedelta(days=(weekday - day.weekday()) % 7 or 7)
            elif past and not future:
                when = day - dt.timedelta(days=(day.weekday() - weekday) % 7)
            else:
                when = day + dt.timedelta(days=weekday - day.weekday())
        else:
            when = day + dt.timedelta(days=_OFFSETS[m["off"].lower()])
        out.append(Resolved(m.group(0), when.isoformat()))
    for m in _DAY_MONTH.finditer(sentence):
        try:
            when = dt.date(day.year, MONTHS[m["m"].lower()], int(m["d"]))
        except ValueError:
            continue
        out.append(Resolved(m.group(0), when.isoformat()))
    return out


def resolution_note(resolved: Sequence[Resolved], language: str) -> str:
    """ "(am Mittwoch = 2022-06-01, aus dem Artikeldatum erschlossen)"."""
    if not resolved:
        return ""
    parts = ", ".join(f"{r.text} = {r.date}" for r in resolved)
    tail = "aus dem Artikeldatum erschlossen" if language == "de" else "from the article's date"
    return f"({parts}, {tail})"
