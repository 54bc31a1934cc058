"""Publication dates inferred from an article's text: stamps, datelines, weekdays, explicit dates.

For an article that came without a date. `infer_date` reads only the text (and title) it is
given, German or English, and returns an `InferredDate`, the date with the snippet that dated it
and how sure it is, or None when the evidence is weak: an undated article is better than a wrong
date. Rules, tried in order (the first that fires wins):

- `stamp`: "Stand: 12.03.2024", "Aktualisiert am 7. Januar 2022", "Updated: January 7, 2022";
- `dateline`: a full date opening the article ("Washington, 7. Januar 2022 –",
  "Freitag, 7. Januar 2022" on its own line, "January 7, 2022 -");
- `weekday_date`: a full date with the weekday it really has ("am Freitag, dem 3. Dezember
  2004"): news name weekdays for the last few days only;
- `lead_date`: the full date in the first sentence, unless said of the future or the
  backstory ("wird am ...", "hatte am ...", "seit dem ...");
- `weekday_day`: a weekday and a day without a year ("am Mittwoch (01. Juni)"), the year taken
  from the latest year the text names, or one either side, where the weekday fits;
- `supported_date`: the latest full date not said of the future or the backstory, with another
  date of the same or the previous month beside it;
- `event_elapsed`: time counted from an event every reader knows the date of ("Nach fast drei
  Jahren Ukraine-Krieg", "zwei Jahre nach dem Mauerfall", "three years into the war in
  Ukraine"; the events are in `rag.ingest.events`), when no date above fired and the text names
  no later year than the one counted to;
- `latest_date`: that latest date alone (below the default confidence threshold).

A date older than the latest year the text names is a historical reference and never the
publication date ("im Jahr 1945" beside "2022"). A stamp or dateline gives the publication day;
the other rules give only the month ("YYYY-MM"): the article reports an event of that day and
usually appears that day or a few days later.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from rag.ingest.events import count_from_events

# A huge text is read only in part: its head (datelines, leads, the events it reports) and its
# tail ("Stand:" and "Updated" lines at the foot of web pages).
HEAD_CHARS = 20_000
TAIL_CHARS = 2_000
# Share of the sentences around a date read for its tense cues, each side.
CLAUSE_CHARS = 200
LEAD_CHARS = 300  # the first sentence, at most
# A first line this short that does not end like a sentence is a title or a byline, not the lead.
HEADING_CHARS = 150
BODY_SEARCH_CHARS = 1_000
DATELINE_CHARS = 200

# How often each rule's month was right on the German Wikinews articles of the `train` split
# with their dates hidden ((right + 1) / (fired + 2); see benchmarks/dates.py). `stamp` and
# `dateline` are too rare there to measure: these two are judgement, a stamp or dateline being
# the publication date by definition.
RULE_CONFIDENCE: dict[str, float] = {
    "stamp": 0.9,
    "dateline": 0.9,
    "weekday_date": 0.89,  # 24 of 26 right
    "lead_date": 0.75,  # 11 of 14
    "weekday_day": 0.75,  # 5 of 6
    "supported_date": 0.7,  # 6 of 8
    "event_elapsed": 0.7,  # judgement: fires on none of the Wikinews articles (2004-2012)
    "latest_date": 0.23,  # 6 of 28: below the default threshold, for callers who want it
}
DEFAULT_MIN_CONFIDENCE = 0.7

_MONTH_NAMES = (
    "januar jänner january jan",
    "februar feber february feb",
    "märz maerz march mär mrz mar",
    "april apr",
    "mai may",
    "juni june jun",
    "juli july jul",
    "august aug",
    "september sept sep",
    "oktober october okt oct",
    "november nov",
    "dezember december dez dec",
)
MONTHS: dict[str, int] = {
    name: number for number, names in enumerate(_MONTH_NAMES, 1) for name in names.split()
}
_WEEKDAY_NAMES = (
    "montag monday",
    "dienstag tuesday",
    "mittwoch wednesday",
    "donnerstag thursday",
    "freitag friday",
    "samstag sonnabend saturday",
    "sonntag sunday",
)
WEEKDAYS: dict[str, int] = {
    name: number for number, names in enumerate(_WEEKDAY_NAMES) for name in names.split()
}


def _alternation(names: dict[str, int]) -> str:
    return "|".join(sorted(names, key=len, reverse=True))


def _month_names() -> str:
    # As running text writes them: capitalised, or in capitals in a dateline. A month in lower
    # case is an ordinary word ("may", "march").
    names = {name.capitalize() for name in MONTHS} | {name.upper() for name in MONTHS}
    return "|".join(sorted(names, key=len, reverse=True))


_MONTH = rf"(?P<mn>{_month_names()})\b\.?"
_YEAR = r"(?:19|20)\d\d(?!\d)"
# Each pattern starts with a digit or a month's first letter, so that the regex engine skips
# ahead to those quickly; what may stand before a match is checked in `_mention`.
_DIGIT_FIRST = re.compile(
    rf"(?P<d>\d\d?)(?:"
    rf"\.\s?(?P<m>\d\d?)\.\s?(?P<y>{_YEAR})"  # 07.01.2022
    rf"|(?:\.|st|nd|rd|th)?\s*(?:of\s+)?{_MONTH}(?:,?\s+(?P<y2>{_YEAR}))?"  # 7. Januar (2022)
    rf"|\.(?P<m2>\d\d?)\.(?!\d)"  # 07.01.
    rf")"
)
_MONTH_FIRST = re.compile(
    rf"{_MONTH}\s+(?:(?P<y>{_YEAR})"  # Juni 2022
    rf"|(?P<d>\d\d?)(?:st|nd|rd|th)?(?:,?\s+(?P<y2>{_YEAR}))?(?!\d|[.:,]\d))"  # June 7(, 2022)
)
_ISO = re.compile(r"(?P<y>(?:19|20)\d\d)-(?P<m>[01]\d)-(?P<d>[0-3]\d)(?!\d)")
_BARE_YEAR = re.compile(rf"(?P<y>{_YEAR})")
# Most specific first: a span one pattern took is not matched again by a later one.
_PATTERNS = (_ISO, _DIGIT_FIRST, _MONTH_FIRST, _BARE_YEAR)
_WEEKDAY_BEFORE = re.compile(
    rf"\b(?P<w>{_alternation(WEEKDAYS)})\w{{0,12}}[\s,(]*(?:de[nm]\s+|the\s+)?\Z", re.I
)

# A stamp opens its line: "Stand: 12.03.2024", "Updated 10:32 AM ET, Fri January 7, 2022". Not
# "(Stand: 31. Dezember 2020)" in a sentence: that dates a figure, not the article.
_STAMP_BEFORE = re.compile(
    r"^[ \t]*(?:stand|aktualisiert|zuletzt\s+aktualisiert|veröffentlicht|erstellt|updated|"
    r"last\s+updated|published|posted)\b\W{0,3}(?:am|on|vom)?[ \t,]*(?:[\w:.]+,?[ \t]+){0,4}\Z",
    re.I | re.M,
)
_SENTENCE_END = frozenset('.!?:;"“”»«')
_CLAUSE_BREAK = re.compile(r"(?<!\d)[.!?;:]\s|\n")
# Before a dateline's date: a place, an agency, a weekday ("Washington (dpa), Freitag, "). Each
# word ends at a space or comma, so that a long word is not tried as many short ones.
_DATELINE_BEFORE = re.compile(
    r"[^\w(]*(?:(?:(?!(?i:am|im|vom|seit|bis|ab|zum|nach|vor|on|in|since|from|until|by)\b)"
    r"[A-ZÄÖÜ][\w.'’/-]*|\([^)\n]{0,20}\))[\s,]+){0,5}"
)
# After it: a dash, a colon, the end of the line.
_DATELINE_AFTER = re.compile(r"[ \t]*(?:\([^)\n]{0,30}\))?[ \t,]*(?:[-–—:|]|\n|\Z)")

_CUES_DE = {
    "future": (
        r"wird|werden|soll|sollen|will|wollen|geplant\w*|plant|planen|voraussichtlich|"
        r"künftig\w*|kommend\w*|nächst\w*|bevorstehend\w*|anstehend\w*|bis|ab|zum|für\s+den|"
        r"stattfinden\w*|erwartet\w*|vorgesehen\w*|angesetzt|festgesetzt|terminiert|frühestens|"
        r"spätestens|anberaumt|erscheinen|erscheint"
    ),
    "backstory": (
        r"hatten?|bereits|schon|seit|damals|zuletzt|vor\s+(?:\w+\s+){0,2}(?:Jahren|Jahr|Monaten)|"
        r"geboren\w*|Jahrestag\w*"
    ),
}
_CUES_EN = {
    "future": (
        r"will|shall|scheduled|planned|plans?|expected|upcoming|next|until|due|deadline|"
        r"set\s+to|from"
    ),
    "backstory": r"had|since|ago|born|anniversary|previously|already|earlier",
}


def _cue_pattern(*tables: dict[str, str]) -> dict[str, re.Pattern[str]]:
    return {
        kind: re.compile(rf"\b(?:{'|'.join(table[kind] for table in tables)})\b", re.I)
        for kind in ("future", "backstory")
    }


_CUES = {"de": _cue_pattern(_CUES_DE), "en": _cue_pattern(_CUES_EN)}
_CUES_ANY = _cue_pattern(_CUES_DE, _CUES_EN)


@dataclass(frozen=True)
class DateMention:
    """One date expression in a text, as written: the year may be missing, the day too.

    `kind` is "iso", "numeric" (01.06.2022), "day_month_year", "day_month", "month_year" or
    "year" (a bare 1900-2099). `weekday` (0 = Monday) is set when a weekday name stands just
    before a day ("am Mittwoch (01. Juni)", "Friday, January 7").
    """

    start: int
    end: int
    text: str
    kind: str
    year: int | None
    month: int | None
    day: int | None
    weekday: int | None = None


@dataclass(frozen=True)
class InferredDate:
    """A publication date read from an article's text, with its evidence.

    `date` is ISO, partial when only the month is known: "2022-01" or "2022-01-07".
    `confidence` is the measured share of right months of the rule that fired (see
    `RULE_CONFIDENCE`). `evidence` is the exact snippet, `text[start:end]` of the field named
    by `field` ("text" or "title"); `rule` names the rule.
    """

    date: str
    confidence: float
    evidence: str
    start: int
    end: int
    rule: str
    field: str = "text"
    basis: str | None = None  # event_elapsed: the event and its date ("Ukraine-Krieg: 2022-02-24")


@dataclass(frozen=True)
class _Candidate:
    """A mention with a month, its year resolved, and what the words around it say."""

    mention: DateMention
    year: int
    field: str
    future: bool
    backstory: bool
    weekday_fits: bool

    @property
    def month_key(self) -> int:
        return self.year * 12 + (self.mention.month or 1) - 1

    @property
    def sort_key(self) -> tuple[int, int, int]:
        return (self.year, self.mention.month or 0, self.mention.day or 0)


def infer_date(
    text: str,
    language: str | None = None,
    *,
    title: str | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> InferredDate | None:
    """The publication date `text` gives evidence for, or None when the evidence is weak.

    `language` ("de" or "en") picks the tense cues; None uses both. `title`, when given, is
    read too. Returns None when the best rule's confidence is below `min_confidence`.
    """
    cues = _CUES.get((language or "").lower()[:2], _CUES_ANY)
    fields = [("text", text)] + ([("title", title)] if title else [])
    mentions = {name: find_date_mentions(value) for name, value in fields}
    anchor = _anchor_year([mention for found in mentions.values() for mention in found])
    candidates = [
        candidate
        for name, value in fields
        for candidate in _candidates(value, name, mentions[name], anchor, cues)
    ]
    latest_year = _latest_year(mentions, candidates)
    fired = next(_rules(text, candidates, latest_year), None)  # the first rule that fires wins
    if fired is None or fired[0] == "latest_date":
        # event_elapsed ranks after every explicit date but latest_date.
        elapsed = _event_elapsed(text, cues, latest_year)
        if elapsed is not None:
            return elapsed if elapsed.confidence >= min_confidence else None
    if fired is None:
        return None
    rule, found = fired
    confidence = RULE_CONFIDENCE[rule]
    if confidence < min_confidence:
        return None
    mention = found.mention
    return InferredDate(
        date=_iso(found, day=rule in ("stamp", "dateline")),
        confidence=confidence,
        evidence=mention.text,
        start=mention.start,
        end=mention.end,
        rule=rule,
        field=found.field,
    )


def _event_elapsed(
    text: str, cues: dict[str, re.Pattern[str]], latest_year: int
) -> InferredDate | None:
    """The month an elapsed time from a known event points at, if the text counts one."""
    for counted in count_from_events(text[:HEAD_CHARS]):
        if latest_year and not latest_year <= counted.year <= latest_year + 1:
            continue  # a later year named: backstory; a much earlier one: not this event
        if cues["backstory"].search(_clause(text, counted.start, counted.end)):
            continue
        return InferredDate(
            date=f"{counted.year:04d}-{counted.month:02d}",
            confidence=RULE_CONFIDENCE["event_elapsed"],
            evidence=text[counted.start : counted.end],
            start=counted.start,
            end=counted.end,
            rule="event_elapsed",
            basis=f"{counted.event}: {counted.event_date}",
        )
    return None


def find_date_mentions(text: str) -> list[DateMention]:
    """Every date expression in the read part of `text` (see HEAD_CHARS), in text order."""
    mentions: list[DateMention] = []
    for offset, segment in _read_parts(text):
        mentions.extend(_mentions_in(segment, offset))
    return sorted(mentions, key=lambda mention: mention.start)


def has_date_evidence(text: str) -> bool:
    """Whether `text` names a year (1900-2099) or a day of a month at all."""
    return bool(find_date_mentions(text))


# --- finding mentions -------------------------------------------------------------------------


def _read_parts(text: str) -> list[tuple[int, str]]:
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return [(0, text)]
    tail_start = len(text) - TAIL_CHARS
    return [(0, text[:HEAD_CHARS]), (tail_start, text[tail_start:])]


def _mentions_in(segment: str, offset: int) -> list[DateMention]:
    taken = bytearray(len(segment))
    found: list[DateMention] = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(segment):
            start, end = match.span()
            if any(taken[start:end]) or not _stands_apart(segment, start, pattern):
                continue
            mention = _mention(match, pattern, segment, offset)
            if mention is not None:
                taken[start:end] = b"\x01" * (end - start)
                found.append(mention)
    return found


def _stands_apart(segment: str, start: int, pattern: re.Pattern[str]) -> bool:
    """Not the tail of a longer number ("12019", "3.12.05") or of a word ("Dejuni")."""
    if start == 0:
        return True
    before = segment[start - 1]
    if pattern is _MONTH_FIRST:
        return not before.isalpha()
    if pattern is _DIGIT_FIRST:
        return not (before.isdigit() or before == ".")
    return not (before.isdigit() or before in ".,/-")


def _mention(
    match: re.Match[str], pattern: re.Pattern[str], segment: str, offset: int
) -> DateMention | None:
    groups = match.groupdict()
    year_text = groups.get("y") or groups.get("y2")
    year = int(year_text) if year_text else None
    day = int(groups["d"]) if groups.get("d") else None
    if groups.get("mn"):
        month: int | None = MONTHS[groups["mn"].lower()]
    elif groups.get("m") or groups.get("m2"):
        month = int(groups.get("m") or groups["m2"])
    else:
        month = None
    if month is not None and _weekday_of(year or 2000, month, day or 1) is None:
        return None  # 31.02., 13.13.2022: not a date
    weekday = None
    if day is not None:
        before = _WEEKDAY_BEFORE.search(segment, max(0, match.start() - 40), match.start())
        if before:
            weekday = WEEKDAYS[before.group("w").lower()]
    return DateMention(
        start=match.start() + offset,
        end=match.end() + offset,
        text=match.group(),
        kind=_kind(pattern, year, month, day, named=bool(groups.get("mn"))),
        year=year,
        month=month,
        day=day,
        weekday=weekday,
    )


def _kind(
    pattern: re.Pattern[str], year: int | None, month: int | None, day: int | None, *, named: bool
) -> str:
    if month is None:
        return "year"
    if day is None:
        return "month_year"
    if year is None:
        return "day_month"
    if pattern is _ISO:
        return "iso"
    return "day_month_year" if named else "numeric"


def _weekday_of(year: int, month: int, day: int) -> int | None:
    try:
        return dt.date(year, month, day).weekday()
    except ValueError:
        return None


# --- resolving years and reading the words around a date ---------------------------------------


def _candidates(
    text: str,
    field: str,
    mentions: list[DateMention],
    anchor: int | None,
    cues: dict[str, re.Pattern[str]],
) -> Iterator[_Candidate]:
    for mention in mentions:
        if mention.month is None:
            continue
        year = mention.year or _resolve_year(mention, anchor)
        if year is None:
            continue
        clause = _clause(text, mention.start, mention.end)
        weekday = None if mention.day is None else _weekday_of(year, mention.month, mention.day)
        yield _Candidate(
            mention=mention,
            year=year,
            field=field,
            future=bool(cues["future"].search(clause)),
            backstory=bool(cues["backstory"].search(clause)),
            weekday_fits=mention.weekday is not None and weekday == mention.weekday,
        )


def _anchor_year(mentions: list[DateMention]) -> int | None:
    """The year a date without one most likely has: the latest year named with a month.

    None when the text names no such year, or a bare year well after it (then the dated
    mentions are not the latest events).
    """
    dated = [m.year for m in mentions if m.year is not None and m.month is not None]
    if not dated:
        return None
    anchor = max(dated)
    if any(m.year is not None and m.year > anchor + 1 for m in mentions):
        return None
    return anchor


def _resolve_year(mention: DateMention, anchor: int | None) -> int | None:
    if anchor is None or mention.month is None:
        return None
    if mention.weekday is None:
        return anchor
    for year in (anchor, anchor + 1, anchor - 1):  # at most one of them has that weekday
        if _weekday_of(year, mention.month, mention.day or 1) == mention.weekday:
            return year
    return None


def _clause(text: str, start: int, end: int) -> str:
    """The words around a date, cut at the sentence or clause boundaries on either side."""
    before_start = max(0, start - CLAUSE_CHARS)
    breaks = [match.end() for match in _CLAUSE_BREAK.finditer(text, before_start, start)]
    after = _CLAUSE_BREAK.search(text, end, end + CLAUSE_CHARS)
    after_end = after.start() if after else min(len(text), end + CLAUSE_CHARS)
    return text[breaks[-1] if breaks else before_start : start] + " " + text[end:after_end]


def _latest_year(mentions: dict[str, list[DateMention]], candidates: list[_Candidate]) -> int:
    years = [m.year for found in mentions.values() for m in found if m.year is not None]
    years += [candidate.year for candidate in candidates]
    return max(years, default=0)


# --- the rules ----------------------------------------------------------------------------------


def _rules(
    text: str, candidates: list[_Candidate], latest_year: int
) -> Iterator[tuple[str, _Candidate]]:
    """(rule, candidate) for each rule that fires, most reliable first."""
    current = [c for c in candidates if c.year >= latest_year]
    explicit = [c for c in current if c.mention.year is not None and c.mention.day is not None]
    in_text = [c for c in candidates if c.field == "text"]
    for candidate in in_text:
        if candidate.mention.day is not None and _is_stamp(text, candidate.mention):
            yield "stamp", candidate
            return
    for candidate in in_text:
        if candidate.mention.start > DATELINE_CHARS:
            break
        if candidate in explicit and _is_dateline(text, candidate.mention):
            yield "dateline", candidate
            return
    weekday_dates = [c for c in explicit if c.weekday_fits]
    if weekday_dates:
        yield "weekday_date", max(weekday_dates, key=lambda c: c.sort_key)
    lead = _lead(text, in_text)
    if lead is not None and lead in explicit and not (lead.future or lead.backstory):
        yield "lead_date", lead
    weekday_days = [c for c in current if c.mention.year is None and c.weekday_fits]
    if weekday_days:
        yield "weekday_day", max(weekday_days, key=lambda c: c.sort_key)
    plain = [c for c in explicit if not (c.future or c.backstory)]
    if plain:
        latest = max(plain, key=lambda c: c.sort_key)
        if _supported(latest, candidates):
            yield "supported_date", latest
        yield "latest_date", latest


def _is_stamp(text: str, mention: DateMention) -> bool:
    return bool(_STAMP_BEFORE.search(text, max(0, mention.start - 40), mention.start))


def _is_dateline(text: str, mention: DateMention) -> bool:
    """A full date at the head of the article that stands on its own: a line, or before a dash."""
    line_start = text.rfind("\n", 0, mention.start) + 1
    opens_line = _DATELINE_BEFORE.fullmatch(text, line_start, mention.start) is not None
    return opens_line and _DATELINE_AFTER.match(text, mention.end) is not None


def _lead(text: str, in_text: list[_Candidate]) -> _Candidate | None:
    """The first dated mention in the first sentence of the article's body, if any."""
    start = _body_start(text)
    first_break = _CLAUSE_BREAK.search(text, start, start + LEAD_CHARS)
    end = first_break.start() if first_break else start + LEAD_CHARS
    lead = [c for c in in_text if start <= c.mention.start < end and c.mention.kind != "month_year"]
    return lead[0] if lead else None


def _body_start(text: str) -> int:
    """Where the body begins: after a title, byline or kicker line opening the text."""
    position = 0
    for line in text[:BODY_SEARCH_CHARS].splitlines(keepends=True):
        words = line.strip()
        if words and (len(words) > HEADING_CHARS or words[-1] in _SENTENCE_END):
            return position
        position += len(line)
    return 0


def _supported(latest: _Candidate, candidates: list[_Candidate]) -> bool:
    """Another date in the same month or the month before: the story's own recent events."""
    return any(
        other.mention is not latest.mention and 0 <= latest.month_key - other.month_key <= 1
        for other in candidates
    )


def _iso(candidate: _Candidate, *, day: bool) -> str:
    month = candidate.mention.month or 1
    if day and candidate.mention.day is not None:
        return f"{candidate.year:04d}-{month:02d}-{candidate.mention.day:02d}"
    return f"{candidate.year:04d}-{month:02d}"
