"""Reader answers: a language model finds the answering phrase; the answer quotes the source.

The model reads short excerpts of the top passages (their best sentences, in reading order)
and replies with the shortest exact phrase that answers the question, or NONE. The phrase is
shown only if it is found in an excerpt, after whitespace, quote and number normalisation
("49,65" = "49.65", "1.000" = "1000"); the answer then quotes the whole sentence that holds it,
verbatim, with its citation and date, and marks the phrase.

Whether to answer at all is decided from three kinds of evidence, each calibrated on XQuAD
with hard negatives (see README): the phrase is grounded in a passage, the model's
probability of NONE as its first token is low, and the sentence-evidence score of the
grounding sentence is not far below the quote mode's threshold.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.answer.quote import ScoredSentence
from rag.answer.timing import names_relative_day
from rag.ingest.dates import MONTHS, WEEKDAYS, find_date_mentions
from rag.types import Hit

if TYPE_CHECKING:
    from rag.answer.generators import Generator, Messages
    from rag.retrieval.analysis import Analyzer

_TOKEN = re.compile(r"\w+", re.UNICODE)

NONE_WORD = "NONE"
"""What the reader model answers when the excerpts do not say it (prompts.READER_*)."""


@dataclass(frozen=True)
class Excerpt:
    """Sentences of one hit given to the reader: `hit` indexes the hits, spans are document
    offsets in reading order."""

    hit: int
    spans: tuple[tuple[int, int], ...]
    text: str


@dataclass(frozen=True)
class Grounding:
    """Where the model's phrase stands in the sources."""

    hit: int
    sentence: tuple[int, int]
    """The sentence holding the phrase (document offsets)."""
    phrase: tuple[int, int]
    """The phrase itself, as it stands in the document (offsets)."""


def excerpts(
    scored: Sequence[ScoredSentence],
    hits: Sequence[Hit],
    *,
    max_passages: int = 3,
    sentences_per_passage: int = 4,
    max_chars: int = 0,
) -> list[Excerpt]:
    """The best `sentences_per_passage` sentences of each of the `max_passages` passages that
    hold the best-scored sentences, in reading order, "…" where sentences were left out; with
    `max_chars`, best first while they fit (the best sentence always)."""
    order: list[int] = []
    chosen: dict[int, list[ScoredSentence]] = {}
    used = 0
    for s in scored:
        if s.hit not in chosen and len(order) == max_passages:
            continue
        if s.hit in chosen and len(chosen[s.hit]) == sentences_per_passage:
            continue
        size = len(s.text.strip()) + 1
        if max_chars and order and used + size > max_chars:
            continue
        if s.hit not in chosen:
            order.append(s.hit)
            chosen[s.hit] = []
        chosen[s.hit].append(s)
        used += size
    out = []
    for i in order:
        picked = sorted(chosen[i], key=lambda s: s.start)
        parts, last_end = [], None
        for s in picked:
            if last_end is not None and s.start > last_end + 2:
                parts.append("…")
            parts.append(" ".join(s.text.split()))
            last_end = s.end
        out.append(Excerpt(i, tuple((s.start, s.end) for s in picked), " ".join(parts)))
    return out


class CopySpan:
    """Decoding constraint: the reply is NONE or a run of whole words copied from `sources`.

    A backend that decodes token by token (llama.cpp in this process) asks `extends` for each
    candidate piece and `may_stop` before it ends the reply, so the model cannot translate
    ("Summer 1521" for "Sommer 1521"), paraphrase or invent: its best-scoring continuation that
    stays inside an excerpt wins. A phrase that only repeats the question ("Harvard Stadium"
    for "Wo liegt das Harvard Stadium?") does not answer it: `repeats_question` tells, and the
    backend reads again. Bytes, not str: a token can end mid-character.
    Case must match but for the first letter.
    """

    def __init__(
        self,
        sources: Sequence[str],
        question: str = "",
        terms: Callable[[str], Iterable[str]] | None = None,
    ) -> None:
        self._hay = b"\n".join(" ".join(s.split()).encode("utf-8") for s in sources)
        self._terms = terms or (lambda text: (w.casefold() for w in _TOKEN.findall(text)))
        self._question = set(self._terms(question))

    def extends(self, prefix: bytes, piece: bytes) -> bool:
        """Whether `prefix + piece` still stands in a source, from a word start on."""
        reply = (prefix + piece).lstrip()
        return bool(reply) and self._find(reply, word_end=False)

    def may_stop(self, prefix: bytes) -> bool:
        """Whether the reply may end here: at the end of a word of a source."""
        phrase = prefix.strip()
        return bool(phrase) and self._find(phrase, word_end=True)

    def repeats_question(self, phrase: str) -> bool:
        """Whether every term of `phrase` is a term of the question: it does not answer.
        (`terms` = the analyzer's: "Byzantinische Reich" repeats "Byzantinischen Reich".)"""
        words = set(self._terms(phrase))
        return bool(words) and words <= self._question

    def _find(self, needle: bytes, *, word_end: bool) -> bool:
        """Whether `needle` starts a word in a source: exact, but for the case of its first
        letter (the model capitalises a reply's first word)."""
        head, rest = needle[:1].lower(), needle[1:]
        at = self._hay.find(rest, 1) if rest else self._hay.find(head)
        while at >= 0:
            start = at - 1 if rest else at
            end = at + len(rest) if rest else at + 1
            if (
                start >= 0
                and self._hay[start : start + 1].lower() == head
                and (start == 0 or not _word_byte(self._hay[start - 1]))
                and (not word_end or end == len(self._hay) or not _word_byte(self._hay[end]))
            ):
                return True
            at = self._hay.find(rest, at + 1) if rest else self._hay.find(head, at + 1)
        return False


def _word_byte(b: int) -> bool:
    """A byte inside a word: ASCII letters and digits, and every byte of a non-ASCII letter."""
    return b >= 0x80 or chr(b).isalnum()


@dataclass(frozen=True)
class Reading:
    """The model's reply, with what an in-process model can also tell (None from an HTTP
    endpoint): its probability of NONE as the first token, and the probability it gave the
    tokens of its (copy-constrained) reply, end of turn included."""

    text: str
    p_none: float | None = None
    p_phrase: float | None = None
    instead: str | None = None
    """When the reply was NONE: the phrase the model gives with NONE barred (in-process)."""
    p_instead: float | None = None


@dataclass(frozen=True)
class Signals:
    """What a reading tells about whether the passages answer: the model's own verdict and
    certainty, and how its phrase's sentence scored (`rag.answer.quote`). `evidence` is the
    score of the sentence holding the phrase (the best sentence's when there is no phrase);
    `rank` is that sentence's place among all scored (0 = the best), `passage` its hit's."""

    phrase: str | None
    grounded: bool
    said_none: bool
    """The model replied NONE; `phrase` is then what it gave with NONE barred."""
    p_none: float | None
    p_phrase: float | None
    evidence: float
    best: float
    cosine: float
    coverage: float
    rank: int
    passage: int
    phrase_words: int
    repeats_question: bool

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def signals(
    reading: Reading,
    phrase: str | None,
    found: Grounding | None,
    scored: Sequence[ScoredSentence],
    copy: CopySpan,
    *,
    said_none: bool = False,
) -> Signals:
    """The `Signals` of a reading over `scored` (best first, not empty)."""
    at = next(
        (
            i
            for i, s in enumerate(scored)
            if found is not None and (s.hit, s.start, s.end) == (found.hit, *found.sentence)
        ),
        None,
    )
    held = scored[at] if at is not None else scored[0]
    return Signals(
        phrase=phrase,
        grounded=found is not None,
        said_none=said_none,
        p_none=reading.p_none,
        p_phrase=reading.p_instead if said_none else reading.p_phrase,
        evidence=held.score,
        best=scored[0].score,
        cosine=held.cosine,
        coverage=held.coverage,
        rank=at if at is not None else -1,
        passage=found.hit if found is not None else -1,
        phrase_words=len(_TOKEN.findall(phrase)) if phrase else 0,
        repeats_question=bool(phrase) and copy.repeats_question(phrase or ""),
    )


def read(generator: Generator, messages: Messages, copy: CopySpan | None = None) -> Reading:
    """The model's reply to the reader prompt. A backend that decodes here holds the reply to
    `copy`; the reply of any other is grounded afterwards all the same."""
    read_phrase = getattr(generator, "read_phrase", None)
    if read_phrase is not None:
        reading = read_phrase(messages, NONE_WORD, copy=copy)
        assert isinstance(reading, Reading)
        return reading
    return Reading("".join(generator.stream(messages)))


def parse_phrase(reply: str) -> str | None:
    """The phrase from the model's reply; None when it said NONE or nothing usable."""
    line = next((ln.strip() for ln in reply.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(answer|antwort|phrase)\s*:\s*", "", line, flags=re.IGNORECASE)
    line = line.strip(" \t\"'„“”«»‚‘’`*.")
    if not line or line.upper().startswith(NONE_WORD) or len(line) > 300:
        return None
    return line


def ground(
    phrase: str,
    excerpts_: Sequence[Excerpt],
    hits: Sequence[Hit],
    analyzer: Analyzer | None = None,
) -> Grounding | None:
    """Where the model's phrase stands in the excerpts (best passage first), or None.

    First verbatim, after normalisation (whitespace, quotes, case, number formats). Else, with
    `analyzer`, as the shortest run of whole words of one sentence whose analysed terms hold
    every term of the phrase (an inflection or a translated name: "entmilitarisierte Zone" for
    "entmilitarisierten Zone", "Brussels" for "Brüssel"), at most two words longer than the
    phrase. Either way the answer shows the source's own words at the offsets returned.
    """
    target = _normal(phrase)[0]
    if not target:
        return None
    sentences = [
        (
            ex.hit,
            start,
            end,
            hits[ex.hit].text[start - hits[ex.hit].start : end - hits[ex.hit].start],
        )
        for ex in excerpts_
        for start, end in ex.spans
    ]
    for i, start, end, text in sentences:
        normal, offsets = _normal(text)
        at = _word_match(normal, target)
        if at >= 0:
            first, last = offsets[at], offsets[at + len(target) - 1] + 1
            return Grounding(i, (start, end), (start + first, start + last))
    if analyzer is None:
        return None
    for i, start, end, text in sentences:
        window = _term_window(phrase, text, hits[i].language, analyzer)
        if window is not None:
            return Grounding(i, (start, end), (start + window[0], start + window[1]))
    return None


# What only an amount is counted in (never a time): money, shares, measures, votes.
_MEASURES = (
    r"Prozent|percent|Euro|Cent|US-Dollar|Dollar|Pfund|Franken|Yen|Rubel|Kilometer|km|Meter|"
    r"Tonnen|tons|Grad|Stimmen|votes"
)
# What a number is counted in, right after it: "3 Millionen", "72 US-Dollar", "25 Prozent".
_UNIT = re.compile(
    r"[ \u00a0]?(?:Millionen|Million|Milliarden|Milliarde|Mio\.|Mrd\.|Tausend|million|billion|"
    r"thousand|" + _MEASURES + r"|%|€|\$)(?!\w)"
)
_ENDS_IN_NUMBER = re.compile(r"\d(?:[.,]\d+)*$")
_AMOUNT_UNIT = re.compile(r"(?:\d\s?|\b)(?:" + _MEASURES + r")(?!\w)|[€$%]", re.IGNORECASE)


def is_amount(phrase: str) -> bool:
    """Whether the phrase counts money, a share, a measure or votes ("1,24 Milliarden Euro",
    "25 Prozent"): never the answer to a "when" question."""
    return bool(re.search(r"\d", phrase)) and bool(_AMOUNT_UNIT.search(phrase))


def names_time(phrase: str) -> bool:
    """Whether the phrase can say when: a year or another number of three digits or more
    ("1849", "74.000 BP"), a month, weekday or season, a relative day ("gestern", "am
    Mittwoch"), a time of day, or a word of time ("Jahrhundert", "Krieg", "Amtszeit"). "15"
    (of "den 15. deutschen Bundestag") says no time."""
    if re.search(r"\d{3}", phrase) or names_relative_day(phrase):
        return True
    if {w.casefold() for w in re.findall(r"\w+", phrase)} & _CALENDAR_WORDS:
        return True
    return bool(_TIME_WORD.search(phrase))


_CALENDAR_WORDS = frozenset(w.casefold() for w in (*MONTHS, *WEEKDAYS))
# Words of time a "when" answer may hold without a date: stems that begin a word ("Jahres-",
# "Kriegsende", "Sommerpause"), and short words that count only whole ("Tag", not "Tageslicht").
_TIME_WORD = re.compile(
    r"(?i:\b(?:jahr|jahrhundert|jahrzehnt|jahrtausend|amtszeit|zeitpunkt|weltkrieg|krieg|"
    r"frühling|frühjahr|sommer|herbst|winter|ostern|weihnacht|morgen|vormittag|mittag|"
    r"nachmittag|abend|nacht|woche|monat|year|centur|decade|millenni|spring|summer|autumn|"
    r"easter|christmas|morning|noon|evening|night|week|month)"
    r"|\b(?:tag|tage|tagen|uhr|ende|mitte|anfang|beginn|nach|vor|während|seit|bis|zeit|wenn|"
    r"nachdem|bevor|sobald|when|while|once|day|"
    r"days|end|start|beginning|middle|after|before|during|since|until|time|o'clock|bp|bc|"
    r"v\.\s?chr|n\.\s?chr)\b)"
)


def may_name(phrase: str, language: str) -> bool:
    """Whether the phrase may name someone, the answer to "who": in German text a name or a
    noun is capitalised, so a phrase without a capital ("norwegische") names no one. English
    text writes nouns in lower case ("their disciples"), so there any phrase may."""
    return language != "de" or bool(re.search(r"[A-ZÄÖÜ]", phrase))


# A digit, a decimal or thousands separator, a digit: the separator is inside a number.
_IN_NUMBER = re.compile(r"\d[.,\u202f\u00a0']\d")


def complete(found: Grounding, hit: Hit, *, when: bool = False) -> Grounding:
    """The phrase with what it leaves out of its own answer: the rest of a number it cuts ("24"
    of "1,24" -> "1,24"), an amount's unit ("3" of "rund 3 Millionen Artikeln" -> "3
    Millionen"; "72" -> "72 US-Dollar"), and asked when, the whole
    date a year or month stands in ("2003" of "am 1. Februar 2003" -> "1. Februar 2003").
    Only words of the same sentence, right beside the phrase: it stays a quote."""
    base = hit.start
    start, end = found.phrase
    s_start, s_end = found.sentence
    text = hit.text
    # A phrase never cuts a number: "24 Milliarden Euro" of "1,24 Milliarden Euro" is a misquote.
    lo, hi = s_start - base, s_end - base
    at, to = start - base, end - base
    while at - 2 >= lo and text[at].isdigit() and _IN_NUMBER.match(text, at - 2):
        at -= 1
        while at - 1 >= lo and text[at - 1].isdigit():
            at -= 1
    while to + 2 <= hi and text[to - 1].isdigit() and _IN_NUMBER.match(text, to - 1):
        to += 1
        while to < hi and text[to].isdigit():
            to += 1
    start, end = base + at, base + to
    if _ENDS_IN_NUMBER.search(text[start - base : end - base]):
        for _ in range(2):  # "3 Millionen Euro"
            m = _UNIT.match(text, end - base, s_end - base)
            if m is None:
                break
            end = base + m.end()
    if when:
        sentence = text[s_start - base : s_end - base]
        a, b = start - s_start, end - s_start
        for mention in find_date_mentions(sentence):
            if mention.start <= a and b <= mention.end and (b - a) < (mention.end - mention.start):
                start, end = s_start + mention.start, s_start + mention.end
                break
    return Grounding(found.hit, found.sentence, (start, end))


def _term_window(
    phrase: str, text: str, language: str | None, analyzer: Analyzer
) -> tuple[int, int] | None:
    """(start, end) in `text` of the shortest run of words whose terms cover the phrase's."""
    wanted = set(analyzer.document_terms(phrase, language))
    if not wanted:
        return None
    words = [
        (m.start(), m.end(), set(analyzer.document_terms(m.group(), language)))
        for m in _TOKEN.finditer(text)
    ]
    longest = len(_TOKEN.findall(phrase)) + 2
    best: tuple[int, int] | None = None
    for a in range(len(words)):
        if not words[a][2] & wanted:
            continue  # a window starts on a word that counts
        covered: set[str] = set()
        for b in range(a, min(len(words), a + longest)):
            covered |= words[b][2] & wanted
            if covered == wanted:
                if best is None or words[b][1] - words[a][0] < best[1] - best[0]:
                    best = (words[a][0], words[b][1])
                break
    return best


def _word_match(text: str, phrase: str) -> int:
    """Where `phrase` stands in `text` as whole words ("700 million" is not in "700
    millionen"); -1 when it does not."""
    at = text.find(phrase)
    while at >= 0:
        before = text[at - 1] if at else " "
        end = at + len(phrase)
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() and phrase[0].isalnum()) and not (
            after.isalnum() and phrase[-1].isalnum()
        ):
            return at
        at = text.find(phrase, at + 1)
    return -1


_SPACE = re.compile(r"\s+")
_QUOTES = str.maketrans({c: '"' for c in "„“”«»‚‘’'`"})
# Thousands separators inside numbers go; a decimal comma becomes a point: "1.000,5" -> "1000.5",
# "49,65" -> "49.65", "1,000" -> "1000". Applied to both sides, so a number matches however the
# model or the article wrote it, and nothing else changes.
_THOUSANDS = re.compile(r"(?<=\d)[.,\u202f\u00a0'](?=\d{3}(?!\d))")
_DECIMAL = re.compile(r"(?<=\d),(?=\d)")


def _normal(text: str) -> tuple[str, list[int]]:
    """`text` casefolded, NFC, quotes unified, whitespace collapsed, numbers normalised; with
    the offset in `text` of every character kept."""
    out: list[str] = []
    offsets: list[int] = []
    text = unicodedata.normalize("NFC", text)
    for i, ch in enumerate(text):
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                offsets.append(i)
            continue
        out.append(ch.translate(_QUOTES).casefold()[:1] or ch)
        offsets.append(i)
    normal = "".join(out).strip()
    if out and out[0] == " ":
        offsets = offsets[1:]
    normal, offsets = _drop(normal, offsets, _THOUSANDS)
    normal = _DECIMAL.sub(".", normal)
    return normal, offsets


def _drop(text: str, offsets: list[int], pattern: re.Pattern[str]) -> tuple[str, list[int]]:
    keep = [True] * len(text)
    for m in pattern.finditer(text):
        for i in range(m.start(), m.end()):
            keep[i] = False
    return "".join(c for c, k in zip(text, keep) if k), [o for o, k in zip(offsets, keep) if k]
