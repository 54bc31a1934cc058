"""The time a question asks about: years, months, dates, ranges, "derzeit" / "at the time".

`read_time(question)` reads the time expressions of a German or English question into a
`TimeReading`: the spans of time it names (`anchors`, each a closed interval of days), whether it
asks for the newest state ("derzeit", "aktuell", "zuletzt", "currently", "latest": `latest`),
whether it looks back to an anchor's own time ("damals", "at the time": `then`) and whether it
asks when something happened (`asks_when`). Retrieval turns anchors into soft date constraints
and `latest` into a preference for the newest reports; the answer says what the question was
read as (`understood`).

Only what the question says is read: "im Juli" without a year is not a time (which July?), and
a four-digit number is a year only between 1900 and 2099 and not when a unit follows it
("2010 Menschen", "1990 Euro").
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from rag.ingest.dates import MONTHS
from rag.types import Filters

SpanKind = Literal["year", "month", "day", "range", "before", "after"]


@dataclass(frozen=True)
class TimeSpan:
    """A time a question names: the days from `start` to `end` (ISO dates, both included)."""

    start: str
    end: str
    text: str
    """The question's words for it ("im Juli 2005")."""
    kind: SpanKind
    parts: tuple[TimeSpan, ...] = field(default=(), compare=False)
    """A range's two ends ("zwischen 2005 und 2008": 2005 and 2008)."""

    def label(self) -> str:
        """A short name: "2010", "2005-07", "2012-03-21 – 2012-03-31"; a bound by its end."""
        first, last = _short(self.start, self.end)
        if self.kind == "before":
            return last
        if self.kind == "after":
            return first
        return first if first == last else f"{first} – {last}"

    def phrase(self, language: str) -> str:
        """How the answer names this time: "Stand 2010", "Zeitraum 2005 – 2008", "bis 2008"."""
        words = _PHRASES[language if language in _PHRASES else "en"][self.kind]
        return words.format(self.label())

    def contains(self, date: str | None) -> bool:
        """Whether a (possibly partial: "2010", "2010-07") ISO date lies in this span."""
        if not date:
            return False
        low, high = date_bounds(date)
        return low <= self.end and high >= self.start

    def within(self, filters: Filters | None) -> Filters | None:
        """`filters` narrowed to this span (None when they exclude it)."""
        base = filters or Filters()
        start, end = self.start, self.end
        if base.date_from:
            start = max(start, date_bounds(base.date_from)[0])
        if base.date_to:
            end = min(end, date_bounds(base.date_to)[1])
        if start > end:
            return None
        return replace(base, date_from=start, date_to=end)

    def to_json(self) -> dict[str, str]:
        return {"start": self.start, "end": self.end, "text": self.text, "kind": self.kind}


@dataclass(frozen=True)
class TimeReading:
    """What a question says about time (see the module docstring)."""

    anchors: tuple[TimeSpan, ...] = ()
    latest: bool = False
    then: bool = False
    asks_when: bool = False
    asks_day: bool = False
    """A "when" question that wants a day, not a year or a month ("In welchem Jahr" does not)."""
    cues: tuple[str, ...] = field(default=())
    """The words that set `latest`, `then` or `asks_when`."""
    topic: str = ""
    """The question without its time words ("Wer war im Juli 2005 Bundesinnenminister?" ->
    "Wer war Bundesinnenminister?"): what to search and score sentences by once the time is a
    filter, so that a sentence is not chosen for naming the month. Empty: nothing was taken
    out, or too little would be left."""

    def active(self) -> bool:
        """Whether retrieval or the answer should treat this question by time."""
        return bool(self.anchors) or self.latest

    def understood(self, language: str) -> str:
        """What the question was read as, for the user: "as of 2010", "latest reports first"."""
        de = language == "de"
        parts = []
        if self.anchors:
            parts.append(", ".join(a.phrase(language) for a in self.anchors))
        if self.latest and not self.anchors:
            parts.append("neueste Meldungen zuerst" if de else "latest reports first")
        if not parts:
            return ""
        return ("verstanden als: " if de else "understood as: ") + "; ".join(parts)

    def to_json(self, language: str = "en") -> dict[str, Any]:
        return {
            "anchors": [a.to_json() for a in self.anchors],
            "latest": self.latest,
            "then": self.then,
            "asks_when": self.asks_when,
            "understood": self.understood(language),
        }


_PHRASES: dict[str, dict[str, str]] = {
    "de": {"year": "Stand {}", "month": "Stand {}", "day": "Stand {}", "range": "Zeitraum {}",
           "before": "bis {}", "after": "ab {}"},
    "en": {"year": "as of {}", "month": "as of {}", "day": "as of {}", "range": "period {}",
           "before": "up to {}", "after": "from {} on"},
}  # fmt: skip

# ----------------------------------------------------------------------------- patterns
_MONTH = r"(?P<{0}>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\b\.?"
_YEAR = r"(?P<{0}>(?:19|20)\d\d)(?![\d.,]\d)"
# Units after a number that make it a quantity, not a year ("2010 Menschen", "1990 Euro").
_UNIT = re.compile(
    r"\s*(?:%|prozent|percent|euro|€|dollar|\$|menschen|personen|leute|people|mal|times|"
    r"stück|tonnen|tons|meter|km|kilometer|einwohner|soldaten|soldiers|opfer|tote|toten|"
    r"stimmen|votes|punkte|points|jahre\b|years\b)",
    re.IGNORECASE,
)
_PART = r"(?:(?P<{0}>anfang|beginn|mitte|ende|early|mid|late|end\s+of|beginning\s+of)\s+)?"


def _fmt(pattern: str, *names: str) -> str:
    return pattern.format(*names)


_DAY_DMY = re.compile(
    r"\b(?P<d>[0-3]?\d)\.?\s+" + _fmt(_MONTH, "m") + r"\s*,?\s*" + _fmt(_YEAR, "y"),
    re.IGNORECASE,
)
_DAY_MDY = re.compile(
    r"\b" + _fmt(_MONTH, "m") + r"\s+(?P<d>[0-3]?\d)(?:st|nd|rd|th)?,?\s+" + _fmt(_YEAR, "y"),
    re.IGNORECASE,
)
_DAY_NUMERIC = re.compile(r"\b(?P<d>[0-3]?\d)\.(?P<mo>[01]?\d)\." + _fmt(_YEAR, "y"))
_DAY_ISO = re.compile(r"\b" + _fmt(_YEAR, "y") + r"-(?P<mo>[01]\d)-(?P<d>[0-3]\d)\b")
_MONTH_YEAR = re.compile(
    r"\b" + _fmt(_PART, "p") + _fmt(_MONTH, "m") + r"\s*(?:of\s+)?" + _fmt(_YEAR, "y"),
    re.IGNORECASE,
)
_YEAR_ALONE = re.compile(r"(?<![\d.,/-])\b" + _fmt(_PART, "p") + _fmt(_YEAR, "y"), re.IGNORECASE)

_BARE_MONTH = re.compile(_fmt(_PART, "p") + _fmt(_MONTH, "m") + r"(?!\s*(?:of\s+)?\d)", re.I)
_RANGE_CUE = re.compile(r"\b(?:zwischen|between|von|vom|from)\s+", re.IGNORECASE)
_RANGE_JOIN = re.compile(r"\s*(?:und|and|bis(?:\s+zum)?|to|until|till|[-–—])\s*", re.IGNORECASE)
_YEAR_RANGE = re.compile(
    r"(?<![\d.])(?P<ya>(?:19|20)\d\d)\s*(?:[-–—]|bis|to)\s*(?P<yb>(?:19|20)\d\d)(?!\d)",
    re.IGNORECASE,
)
# "vor 2009", "before the 2009 election", "bis 2008", "seit 2005", "after 2010", "nach der
# Wahl 2009": up to three words between the cue and the time name an event in that time.
_BOUND = re.compile(
    r"\b(?P<cue>vor|before|bis|until|till|prior\s+to|nach|after|seit|since|ab)\s+", re.IGNORECASE
)
_BEFORE_CUES = frozenset(("vor", "before", "bis", "until", "till", "prior to"))
_INCLUSIVE_CUES = frozenset(("bis", "until", "till", "seit", "since", "ab"))
_GAP = re.compile(r"(?:[^\W\d]+\s+){0,3}")

_LATEST = re.compile(
    r"\b(?:derzeit\w*|aktuell\w*|zurzeit|zur\s+zeit|momentan\w*|gegenwärtig\w*|jetzt|heute|"
    r"heutige\w*|inzwischen|mittlerweile|zuletzt|neueste\w*|jüngste\w*|letzte\w*\s+stand|"
    r"nach\s+wie\s+vor|currently|current|now|nowadays|latest|most\s+recent\w*|newest|today|"
    r"presently|at\s+present|these\s+days|as\s+of\s+now|still)\b",
    re.IGNORECASE,
)
_THEN = re.compile(
    r"\b(?:damals|damalige\w*|seinerzeit|zu\s+jener\s+zeit|zu\s+diesem\s+zeitpunkt|zu\s+dieser\s+"
    r"zeit|at\s+the\s+time|back\s+then|at\s+that\s+time|then-\w+)\b",
    re.IGNORECASE,
)
_CHANGE = re.compile(
    r"\b(?:verändert\w*|veränderung\w*|entwickelt\w*|entwicklung|gestiegen|gesunken|"
    r"gefallen|zugenommen|abgenommen|gewachsen|geändert|änderte\w*|wechsel\w*|change\w*|"
    r"develop\w*|evolve\w*|rose|risen|fell|fallen|grew|grown|increase\w*|decrease\w*)\b",
    re.IGNORECASE,
)
_WHEN = re.compile(
    r"^\s*(?:wann|seit\s+wann|bis\s+wann|ab\s+wann|für\s+wann|an\s+welchem\s+(?:tag|datum)|"
    r"auf\s+welchen\s+(?:tag|termin)|zu\s+welchem\s+zeitpunkt|in\s+welchem\s+(?:jahr|monat)|"
    r"welche[sn]?\s+datum|an\s+welchem\s+wochentag|when|since\s+when|"
    r"(?:on|to|for)\s+(?:what|which)\s+(?:date|day)|in\s+(?:what|which)\s+(?:year|month)|"
    r"(?:what|which)\s+(?:date|day))\b",
    re.IGNORECASE,
)


_YEAR_OR_MONTH = re.compile(r"\b(?:jahr|monat|year|month)\b", re.IGNORECASE)


def read_time(question: str, today: dt.date | None = None) -> TimeReading:
    """The time expressions of `question` (see the module docstring). `today` is unused for
    now (relative expressions such as "last year" are not read: an archive's "now" is not the
    calendar's) and kept so callers can pass it when they are."""
    del today
    text = question or ""
    taken: list[tuple[int, int]] = []
    untimed: list[tuple[int, int]] = []  # parts of taken spans that stay in the topic
    anchors: list[tuple[int, TimeSpan]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    def take(start: int, end: int, span: TimeSpan | None) -> None:
        if span is not None and free(start, end):
            taken.append((start, end))
            anchors.append((start, span))

    for m in _RANGE_CUE.finditer(text):
        found = _range(text, m)
        if found is not None:
            take(m.start(), found[0], found[1])
    for m in _YEAR_RANGE.finditer(text):
        a, b = int(m["ya"]), int(m["yb"])
        if a <= b:
            ends = (
                TimeSpan(f"{a}-01-01", f"{a}-12-31", m["ya"], "year"),
                TimeSpan(f"{b}-01-01", f"{b}-12-31", m["yb"], "year"),
            )
            span = TimeSpan(f"{a}-01-01", f"{b}-12-31", m.group(0), "range", ends)
            take(m.start(), m.end(), span)
    for m in _BOUND.finditer(text):
        bound = _bounded(text, m)
        if bound is not None:
            take(m.start(), bound[0], bound[1])
            if anchors and anchors[-1][1] is bound[1]:
                gap = _GAP.match(text, m.end())
                if gap is not None and gap.group(0).strip():  # "vor der Wahl 2009": keep
                    untimed.append((m.start(), gap.end()))  # "vor der Wahl" in the topic
    for pattern in (_DAY_ISO, _DAY_NUMERIC, _DAY_DMY, _DAY_MDY, _MONTH_YEAR, _YEAR_ALONE):
        for m in pattern.finditer(text):
            take(m.start(), m.end(), _span(m))
    cues: list[str] = []
    latest = [m.group(0) for m in _LATEST.finditer(text)]
    then = [m.group(0) for m in _THEN.finditer(text)]
    when = _WHEN.match(text)
    cues += latest + then + ([when.group(0).strip()] if when else [])
    ordered = tuple(span for _, span in sorted(anchors, key=lambda a: a[0]))
    timed = [_minus(span, untimed) for span in taken]
    timed += [m.span() for m in (*_LATEST.finditer(text), *_THEN.finditer(text))]
    if _CHANGE.search(text) and len(taken) > 0:  # asked per time: what it was, not how it moved
        timed += [m.span() for m in _CHANGE.finditer(text)]
    topic = _without(text, timed)
    if _CHANGE.search(text):
        # "Wie hat sich X zwischen 2005 und 2008 verändert?" asks for the value at each end.
        ordered = tuple(part for span in ordered for part in (span.parts or (span,)))
    return TimeReading(
        anchors=_distinct(ordered),
        latest=bool(latest) and not then,
        then=bool(then),
        asks_when=when is not None,
        asks_day=when is not None and not _YEAR_OR_MONTH.search(when.group(0)),
        cues=tuple(cues),
        topic=topic,
    )


# ----------------------------------------------------------------------------- helpers
# Words that only lead into a time expression ("im Juli 2005", "in the year 2006", "nach dem
# neuesten Stand"): taken out with it.
_LEAD_IN = re.compile(
    r"(?:\b(?:im\s+jahre?|in\s+the\s+year|im|in|am|an|um|zum|seit|ab|bis|vom|von|of|on|"
    r"during|as\s+of|nach(?:\s+(?:dem|der))?|laut(?:\s+(?:dem|der))?|according\s+to\s+the|the|der|"
    r"die|das|dem|den|des)\s*)+$",
    re.IGNORECASE,
)
# ... and nouns a "latest" cue leads into ("nach dem neuesten Stand", "laut der jüngsten Meldung").
_LEAD_OUT = re.compile(
    r"\s*(?:stand(?:es)?|meldung(?:en)?|berichte?n?|nachrichten|angaben|reports?|news)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]{2,}")


def _minus(span: tuple[int, int], keep: list[tuple[int, int]]) -> tuple[int, int]:
    """`span` without a kept part at its start."""
    for start, end in keep:
        if start == span[0] and end <= span[1]:
            return end, span[1]
    return span


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with `spans` and the words leading into them taken out; "" when nothing was
    taken out or fewer than two words would be left."""
    if not spans:
        return ""
    kept, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            last = max(last, end)
            continue
        kept.append(_LEAD_IN.sub("", text[last:start]))
        lead_out = _LEAD_OUT.match(text, end)
        last = lead_out.end() if lead_out else end
    kept.append(text[last:])
    topic = " ".join(" ".join(kept).split())
    topic = re.sub(r"\s+([?.!,;:])", r"\1", topic).strip(" ,;:")
    if len(_WORD.findall(topic)) < 3:  # "Was geschah?" says too little to search by
        return ""
    return topic


def _bounded(text: str, cue: re.Match[str]) -> tuple[int, TimeSpan] | None:
    """The open span a cue opens ("vor 2009" -> up to 2008-12-31) and where it ends."""
    gap = _GAP.match(text, cue.end())
    assert gap is not None  # the pattern matches the empty string
    found = _first_span(text[gap.end() : gap.end() + 40])
    if found is None or found[0] != 0:
        return None
    _, span, length = found
    end = gap.end() + length
    word = " ".join(cue["cue"].lower().split())
    # With an event between ("before the 2009 election"), the event's time is included.
    inclusive = bool(gap.group(0).strip()) or word in _INCLUSIVE_CUES
    words = text[cue.start() : end].strip()
    if word in _BEFORE_CUES:
        last = span.end if inclusive else _day_before(span.start)
        return end, TimeSpan("1900-01-01", last, words, "before")
    first = span.start if inclusive else _day_after(span.end)
    return end, TimeSpan(first, "2099-12-31", words, "after")


def _first_span(text: str) -> tuple[int, TimeSpan, int] | None:
    """The first time expression in `text` (after a cue): its offset, span and end."""
    best: tuple[int, TimeSpan, int] | None = None
    for pattern in (_DAY_ISO, _DAY_NUMERIC, _DAY_DMY, _DAY_MDY, _MONTH_YEAR, _YEAR_ALONE):
        m = pattern.search(text)
        if m is None:
            continue
        span = _span(m)
        if span is not None and (best is None or m.start() < best[0]):
            best = (m.start(), span, m.end())
    return best


def _span(m: re.Match[str]) -> TimeSpan | None:
    groups = m.groupdict()
    year = int(groups["y"])
    if m.re is _YEAR_ALONE and _UNIT.match(m.string, m.end()):
        return None
    words = m.group(0).strip()
    if "d" in groups and groups.get("d"):
        month = int(groups["mo"]) if groups.get("mo") else MONTHS[groups["m"].lower()]
        try:
            day = dt.date(year, month, int(groups["d"]))
        except ValueError:
            return None
        return TimeSpan(day.isoformat(), day.isoformat(), words, "day")
    part = (groups.get("p") or "").lower()
    if groups.get("m"):
        month = MONTHS[groups["m"].lower()]
        last = calendar.monthrange(year, month)[1]
        first_day, last_day = _part_of(part, 1, last)
        return TimeSpan(
            dt.date(year, month, first_day).isoformat(),
            dt.date(year, month, last_day).isoformat(),
            words,
            "month",
        )
    first_month, last_month = _part_of(part, 1, 12, thirds=((1, 3), (5, 8), (10, 12)))
    return TimeSpan(
        dt.date(year, first_month, 1).isoformat(),
        dt.date(year, last_month, calendar.monthrange(year, last_month)[1]).isoformat(),
        words,
        "year",
    )


def _part_of(
    part: str, first: int, last: int, thirds: tuple[tuple[int, int], ...] | None = None
) -> tuple[int, int]:
    """The early, middle or late part of a month's days (or of a year's months)."""
    if not part:
        return first, last
    thirds = thirds or ((1, 10), (11, 20), (21, last))
    if part in ("anfang", "beginn", "early") or part.startswith("beginning"):
        return thirds[0]
    if part in ("mitte", "mid"):
        return thirds[1]
    return thirds[2]


def _range(text: str, cue: re.Match[str]) -> tuple[int, TimeSpan] | None:
    """ "zwischen 2005 und 2008", "from May 2005 to June 2006", "zwischen April und Juli
    2009" (the first month takes the second's year): the span and where it ends."""
    first = _first_span(text[cue.end() : cue.end() + 40])
    bare = _BARE_MONTH.match(text, cue.end())
    if (first is None or first[0] != 0) and bare is None:
        return None
    join = _RANGE_JOIN.match(text, bare.end() if bare else cue.end() + first[2])  # type: ignore[index]
    if join is None:
        return None
    second = _first_span(text[join.end() : join.end() + 40])
    if second is None or second[0] != 0:
        return None
    if bare is not None:  # "April" of "zwischen April und Juli 2009": the year of the end
        year = int(second[1].end[:4])
        first = _first_span(f"{bare.group(0).strip()} {year}")
        if first is not None and first[1].start > second[1].start:
            first = _first_span(f"{bare.group(0).strip()} {year - 1}")  # "Dezember und März"
        if first is None:
            return None
    if second[1].end < first[1].start:
        return None
    end = join.end() + second[2]
    words = text[cue.start() : end].strip()
    return end, TimeSpan(first[1].start, second[1].end, words, "range", (first[1], second[1]))


def _distinct(spans: tuple[TimeSpan, ...]) -> tuple[TimeSpan, ...]:
    seen: set[tuple[str, str]] = set()
    out = []
    for span in spans:
        if (span.start, span.end) not in seen:
            seen.add((span.start, span.end))
            out.append(span)
    return tuple(out)


def date_bounds(date: str) -> tuple[str, str]:
    """The first and last day a partial ISO date stands for."""
    parts = date.split("-")
    year = int(parts[0])
    if len(parts) == 1:
        return f"{year}-01-01", f"{year}-12-31"
    month = int(parts[1])
    if len(parts) == 2:
        last = calendar.monthrange(year, month)[1]
        return f"{year}-{month:02d}-01", f"{year}-{month:02d}-{last:02d}"
    return date[:10], date[:10]


def _short(start: str, end: str) -> tuple[str, str]:
    """Start and end as short as they can be said: whole years as "2010", months "2010-07"."""
    if start.endswith("-01-01") and end.endswith("-12-31"):
        return start[:4], end[:4]
    first_month_day = start.endswith("-01")
    y, m, d = (int(x) for x in end.split("-"))
    if first_month_day and d == calendar.monthrange(y, m)[1]:
        return start[:7], end[:7]
    return start, end


def _day_before(iso: str) -> str:
    return (dt.date.fromisoformat(iso) - dt.timedelta(days=1)).isoformat()


def _day_after(iso: str) -> str:
    return (dt.date.fromisoformat(iso) + dt.timedelta(days=1)).isoformat()
