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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.answer.quote import ScoredSentence
from rag.ingest.dates import MONTHS
from rag.retrieval.when import TimeReading, TimeSpan, date_bounds
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
    anchor_margin: float | None = None,
) -> list[ScoredSentence]:
    """`scored` with the sentences the question's time prefers moved to the front, among those
    whose `strength` is within `margin` of the best's (the rest keep their order behind). A
    sentence of a time the question names competes within `anchor_margin` (when wider): asked
    "Wer war im Dezember 2008 Finanzminister?", a report of December 2008 naming the minister
    leads even when a report of 2006 is worded closer to the question."""
    if not scored or not reading.active():
        return list(scored)
    best = max(strength(s, keyword) for s in scored)
    wide = max(margin, anchor_margin or 0.0) if reading.anchors else margin

    def competes(s: ScoredSentence) -> bool:
        gap = best - strength(s, keyword)
        if gap <= margin:
            return True
        return gap <= wide and any(a.contains(hits[s.hit].date) for a in reading.anchors)

    near = [s for s in scored if competes(s)]
    rest = [s for s in scored if not competes(s)]

    def key(s: ScoredSentence) -> tuple[int, str, float]:
        date = hits[s.hit].date
        if reading.anchors:
            outside = 0 if any(a.contains(date) for a in reading.anchors) else 1
            # In or out of the asked time first; within it, relevance (or, asked for the
            # latest state within it, the newest report).
            return (outside, _invert(date or "") if reading.latest else "", -s.score)
        return (0 if date else 1, _invert(date or ""), -s.score)  # latest: newest, undated last

    return sorted(near, key=key) + rest


def newest_answering(
    scored: Sequence[ScoredSentence], hits: Sequence[Hit], margin: float, keyword: float
) -> str | None:
    """The newest date among the reports whose sentences answer about as well as the best
    (`strength` within `margin`): a "latest" question then looks for reports after it."""
    if not scored:
        return None
    best = max(strength(s, keyword) for s in scored)
    dates = [
        hits[s.hit].date
        for s in scored
        if hits[s.hit].date and best - strength(s, keyword) <= margin
    ]
    return max((date_bounds(d)[1] for d in dates if d), default=None)


# A question after an amount ("Wie hoch ist der Ölpreis", "Zahl der Artikel", "death toll")
_AMOUNT_QUESTION = re.compile(
    r"\b(?:wie\s+(?:hoch|viele?|groß|lang|teuer|stark|weit|schwer)|(?:an)?zahl|preis|höhe|kurs|"
    r"bilanz|umsatz|gewinn|verlust|rate|quote|how\s+(?:many|much|high|long|large|big)|number|"
    r"price|toll|count|amount|figure|rate)\w*",
    re.IGNORECASE,
)
# An amount in a sentence: a number that is neither a year nor a day ("am 13. Oktober").
_AMOUNT = re.compile(
    r"(?<![\d.,])(?!(?:19|20)\d\d(?!\d|[.,]\d))\d+(?:[.,]\d+)*(?!\d|\.\s*(?:"
    + "|".join(sorted(MONTHS, key=len, reverse=True))
    + r")\b)",
    re.IGNORECASE,
)


def asks_amount(question: str) -> bool:
    """Whether the question asks for an amount (a price, a number, a toll)."""
    return bool(_AMOUNT_QUESTION.search(question))


def answers_ahead(
    scored: Sequence[ScoredSentence],
    hits: Sequence[Hit],
    reading: TimeReading,
    margin: float,
    keyword: float,
    pool_margin: float,
    answers: Callable[[str], bool],
) -> list[ScoredSentence]:
    """The sentences that have the form of an answer (`answers`: an amount for "Wie hoch",
    an office holder's name for "Wer ist Papst") within `pool_margin` of the best `strength`
    first, ordered among themselves by `prefer` with `margin` (the asked time, or the newest
    report); then the rest as they were. "Der Preis für ein Barrel hat die Marke von 72
    US-Dollar unterschritten" (2014) answers "Wie hoch ist der Ölpreis derzeit?"; "...
    resultieren aus dem stark gesunkenen Ölpreis" (2018) does not."""
    if not scored:
        return list(scored)
    best = max(strength(s, keyword) for s in scored)
    pool = [s for s in scored if best - strength(s, keyword) <= pool_margin and answers(s.text)]
    if not pool:
        return list(scored)
    ahead = prefer(pool, hits, reading, margin, keyword, pool_margin)
    return ahead + [s for s in scored if not any(s is p for p in pool)]


def states_amount(text: str) -> bool:
    """Whether a sentence states an amount (a number that is not a year or a day)."""
    return bool(_AMOUNT.search(text))


# "Wer ist Papst?", "Who is the UN Secretary-General": the office asked about.
_WHO = re.compile(r"^\s*(?:wer|who)\b", re.IGNORECASE)
_OFFICE_WORDS = re.compile(r"(?<!^)\b[A-ZÄÖÜ][\w-]*[a-zäöüß]\b")
# "des ehemaligen Ministerpräsidenten Thaksin": not the office holder of the report's time
_FORMER = re.compile(r"(?i:ehemalig\w*|früher\w*|einstig\w*|vormalig\w*|damalig\w*|former|ex-)\s*$")
_ONE_NAME = r"[A-ZÄÖÜ][a-zäöüß]+(?:[- ][A-ZÄÖÜ][\w-]+)?"
_FULL_NAME = r"[A-ZÄÖÜ][a-zäöüß]+\s+(?:(?:von|van|de|da|di|del|der|zu|ter|le|la)\s+)?[A-ZÄÖÜ][\w-]+"


def asks_who(question: str) -> bool:
    """Whether the question asks "Wer ..." / "Who ...": a person or a body is the answer."""
    return bool(_WHO.match(question))


def holder_spans(question: str) -> Callable[[str], list[tuple[int, int]]] | None:
    """For "Wer ist/war <office>?": where a sentence names someone in that office, from the
    office word to the end of the name (see `holder_of`); None for other questions."""
    if not asks_who(question):
        return None
    words = [w for w in _OFFICE_WORDS.findall(question.split(None, 1)[-1]) if len(w) >= 4]
    if not words:
        return None
    office = (
        "(?i:"
        + "|".join(re.escape(w.split("-")[-1].lower()[-10:]) for w in words)
        + r")(?:s|es|en|in|innen)?\b"
    )
    pattern = re.compile(
        office + r"\s+(?:" + _ONE_NAME + r"|[a-zäöüß]+\s+" + _FULL_NAME + r")"
        r"|\b"
        + _FULL_NAME
        + r"\s+(?:\S+\s+){0,8}?(?:zum|zur|als|to|as)\s+(?:\w+\s+){0,2}?\w*"
        + office
    )

    def names(text: str) -> list[tuple[int, int]]:
        out = []
        for m in pattern.finditer(text):
            word = text.rfind(" ", 0, m.start()) + 1  # the office word's start, in a compound
            if not _FORMER.search(text, max(0, word - 30), word):
                out.append((word, m.end()))
        return out

    return names


def holder_of(question: str) -> Callable[[str], bool] | None:
    """For "Wer ist/war <office>?": whether a sentence names someone in that office: the
    office word (or its last compound part) before a name ("Papst Franziskus", "Generalsekretär
    Mark Rutte", "als Bundespräsident machte Joachim Gauck"), or a full name made it ("Boris
    Johnson wurde ... zum neuen Premierminister ernannt"). None for other questions."""
    spans = holder_spans(question)
    return None if spans is None else (lambda text: bool(spans(text)))


def amount_first(
    found: Sequence[ScoredSentence], margin: float, keyword: float
) -> list[ScoredSentence]:
    """`found` (best first) with the best sentence stating an amount moved to the front, if it
    answers within `margin` of the best: asked how a price changed, "Der Goldpreis hat mit
    799,30 US-Dollar ..." is the answer, "... beflügelte den Goldpreis" is not."""
    if not found:
        return list(found)
    best = strength(found[0], keyword)
    for s in found:
        if best - strength(s, keyword) > margin:
            break
        if _AMOUNT.search(s.text):
            return [s, *(x for x in found if x is not s)]
    return list(found)


def names_a_day(text: str, article_date: str | None) -> bool:
    """Whether a sentence says on which day: a full date, a day of a month, or a relative day
    its article's date resolves ("am Mittwoch", "gestern")."""
    from rag.ingest.dates import find_date_mentions

    if any(m.day for m in find_date_mentions(text)):
        return True
    return bool(resolve_relative(text, article_date))


def day_first(
    scored: Sequence[ScoredSentence], hits: Sequence[Hit], margin: float, keyword: float
) -> list[ScoredSentence]:
    """Asked "Wann ...?": `scored` (best first) with the best sentence of the leading article
    that names a day moved to the front, if it answers within `margin` of the best ("Der
    Prozess wurde auf den 28. November vertagt" rather than "Der Prozess gegen Saddam Hussein
    begann"). Other articles are not brought forward by it: the day a sentence names is no
    sign that its article is about the question."""
    if not scored:
        return list(scored)
    best, lead = strength(scored[0], keyword), hits[scored[0].hit].doc_id
    for s in scored:
        if best - strength(s, keyword) > margin or hits[s.hit].doc_id != lead:
            continue
        if names_a_day(s.text, hits[s.hit].date):
            return [s, *(x for x in scored if x is not s)]
    return list(scored)


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
    answers: Callable[[str], bool] | None = None,
) -> list[ScoredSentence]:
    """Asked for the latest state: `chosen`, plus the best sentence of an older report when
    none is chosen yet (its `strength` within `margin` of the best's, its score above
    `threshold`), so the answer shows what was said before; it takes the last place when
    `most` are chosen. With `answers` (the answer's form: an office holder's name, an
    amount), an older sentence of that form is taken before one without it."""
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
    formed = [s for s in older if answers(s.text)] if answers is not None else []
    pick = max(formed or older, key=lambda s: (str(hits[s.hit].date), strength(s, keyword)))
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
    r"\b(?:(?P<dir>letzte[nm]?|vergangene[nm]?|vorige[nm]?|last|nächste[nm]?|kommende[nm]?|"
    r"next)\s+|(?:am|on|this)\s+)?(?P<wd>"
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
    r"\b(?i:hat|hatte|hatten|haben|war|waren|wurde|wurden|sagte|sagten|erklärte|teilte|"
    r"was|were|had|said|did|"
    # common strong verbs' past ("gewann", "kam", "starb")
    r"kam|kamen|gab|gaben|ging|gingen|fand|fanden|stand|standen|fiel|fielen|nahm|nahmen|traf|"
    r"trafen|starb|starben|gewann|gewannen|verlor|verloren|sprach|sprachen|rief|riefen|hielt|"
    r"hielten|ließ|ließen|zog|zogen|flog|flogen|fuhr|fuhren|lag|lagen|blieb|blieben|schlug|"
    r"schlugen|brach|brachen|wies|wiesen|trat|traten|begann|begannen|entschied|entschieden|"
    r"beschloss|beschlossen|verließ|verließen|won|lost|came|went|died|began|met|left)\b"
    # a weak verb's past ("startete", "kündigten"): lower case, so not a noun ("Staaten"), and
    # not an ordinal, superlative or common adjective ("ersten", "neuesten", "letzte", "heute")
    r"|\b(?!(?:erst|zweit|dritt|viert|fünft|letzt|heut|gut|weit|recht|echt|leicht|breit|hart|"
    r"mittler|spät|halb|acht|sechst|siebt|neunt|zehnt)e[nmrs]?\b)(?![a-zäöüß]*[^s]sten?\b)"
    r"[a-zäöüß]\w*(?:te|ten)\b"
    r"|\b\w+ed\b"
)
_FUTURE = re.compile(
    r"\b(?:wird|werden|soll|sollen|will|wollen|plant|planen|geplant|künftig|will|shall|"
    r"going\s+to|next|nächste\w*|kommende\w*)\b",
    re.IGNORECASE,
)


def names_relative_day(text: str) -> bool:
    """Whether `text` names a day relative to its article's ("gestern", "am Mittwoch") or a
    day of a month ("am 28. Februar")."""
    return bool(_RELATIVE.search(text) or _DAY_MONTH.search(text))


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
            said = (m["dir"] or "").lower()
            if said:  # "letzten Sonntag", "next Friday" say which one, whatever the tense
                back = said.startswith(("letzt", "vergangen", "vorig", "last"))
                past, future = back, not back
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
