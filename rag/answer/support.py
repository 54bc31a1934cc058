"""The support check: is an answer sentence backed by the passages it cites?

Two tests, both must pass:
1. Facts: every number, month and name in the sentence occurs in a cited passage, after
   normalization (umlaut/ß folding, case, thousands separators, decimal commas, number words
   one to twelve, German/English month names, inflected endings like "Stoltenbergs").
2. Meaning: the sentence is close to a sentence of a cited passage: the cosine of their
   embeddings is at least `support_threshold` (calibrated on XQuAD's parallel English/German
   sentences, see `rag eval-answers`). A verbatim quote is close by definition.

Names are a heuristic: in English, capitalized words that do not start the sentence; in German,
where every noun is capitalized, those that are rare in German or common in English too
(Putin, Nato, Berlin: names shared by both languages), using `wordfreq`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_NUMBER = re.compile(r"(?<![\w])\d+(?:[.,\u202f\u00a0']\d+)*(?![\w])")
_WORD = re.compile(r"[^\W\d_][\w\-]*", re.UNICODE)
_THOUSANDS = re.compile(r"^\d{1,3}(?:[.,\u202f\u00a0']\d{3})+$")

_NUMBER_WORDS = {
    "de": "null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf".split(),
    "en": "zero one two three four five six seven eight nine ten eleven twelve".split(),
}
_NUMBER_WORD_VALUE = {
    w: str(i) for words in _NUMBER_WORDS.values() for i, w in enumerate(words) if i > 1
}
_NUMBER_WORD_VALUE.update({"ein": "1", "eine": "1", "einen": "1"})

_MONTHS = {
    "de": "januar februar märz april mai juni juli august september oktober november dezember",
    "en": "january february march april may june july august september october november december",
}
_MONTH_VALUE = {name: i + 1 for names in _MONTHS.values() for i, name in enumerate(names.split())}
_MONTH_VALUE.update({"jänner": 1, "maerz": 3, "marz": 3, "sept": 9})

_NOT_NAMES = {"I", "Mr", "Mrs", "Ms", "Dr", "Prof", "Herr", "Frau"}
_NAME_RARE_DE = 3.3
"""Below this Zipf frequency in German, a capitalized word counts as a name."""
_NAME_COMMON_EN = 2.5
"""At or above this Zipf frequency in English, a capitalized German word counts as a name."""


def fold(text: str) -> str:
    """Lowercase, ß -> ss, umlauts -> base letters (ä -> a; 'ae' spellings match too via
    `_variants`), other accents stripped."""
    text = text.lower().replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def _variants(word: str) -> set[str]:
    folded = fold(word)
    out = {folded}
    for a, b in (("ae", "a"), ("oe", "o"), ("ue", "u")):
        if a in folded:
            out.add(folded.replace(a, b))
    return out


def normalize_number(token: str) -> str:
    """'1.000' and '1,000' -> '1000'; '3,5' -> '3.5'; '2022' stays."""
    if _THOUSANDS.match(token):
        return re.sub(r"\D", "", token)
    return token.replace(",", ".")


@dataclass(frozen=True)
class Facts:
    """The checkable facts of a text."""

    numbers: frozenset[str]
    months: frozenset[int]
    names: frozenset[str]


def _is_name(word: str, language: str) -> bool:
    if word in _NOT_NAMES or len(word) < 2 or not word[0].isupper():
        return False
    if sum(ch.isupper() for ch in word) >= 2:  # NATO, HIMARS, McCain
        return True
    if language != "de":
        return True
    from wordfreq import zipf_frequency

    low = word.lower()
    return zipf_frequency(low, "de") < _NAME_RARE_DE or zipf_frequency(low, "en") >= _NAME_COMMON_EN


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    import stopwordsiso

    return frozenset(fold(w) for w in stopwordsiso.stopwords(["de", "en"]))


def _rare_first_word(word: str, language: str) -> bool:
    """A sentence's first word is taken for a name only when it is rare as an ordinary word
    (in English; in German the name rule below decides)."""
    if language == "de":
        return True
    from wordfreq import zipf_frequency

    return zipf_frequency(word.lower(), "en") < 4.0


def facts(text: str, language: str) -> Facts:
    """Numbers, months and names of one sentence."""
    numbers = {normalize_number(m.group()) for m in _NUMBER.finditer(text)}
    months: set[int] = set()
    names: set[str] = set()
    for i, m in enumerate(_WORD.finditer(text)):
        word = m.group()
        low = fold(word)
        if low in _NUMBER_WORD_VALUE:
            numbers.add(_NUMBER_WORD_VALUE[low])
            continue
        month = _MONTH_VALUE.get(word.lower()) or _MONTH_VALUE.get(low)
        if month and (word[0].isupper() or language == "de"):
            if word.lower() != "may" or word[0].isupper():
                months.add(month)
            continue
        first = i == 0 or text[: m.start()].rstrip().endswith((".", "!", "?", ":", "„", '"'))
        if first and (low in _stopwords() or not _rare_first_word(word, language)):
            continue  # capitalized only because it starts the sentence
        if _is_name(word, language):
            names.add(word)
    return Facts(frozenset(numbers), frozenset(months), frozenset(names))


class SourceFacts:
    """What a set of cited passages contains, for looking facts up."""

    def __init__(self, texts: Sequence[str]) -> None:
        joined = "\n".join(texts)
        self.numbers = {normalize_number(m.group()) for m in _NUMBER.finditer(joined)}
        self.months: set[int] = set()
        self.words: set[str] = set()
        for m in _WORD.finditer(joined):
            word = m.group()
            low = fold(word)
            if low in _NUMBER_WORD_VALUE:
                self.numbers.add(_NUMBER_WORD_VALUE[low])
            month = _MONTH_VALUE.get(word.lower()) or _MONTH_VALUE.get(low)
            if month:
                self.months.add(month)
            self.words.update(_variants(word))
            for part in re.split(r"-", word):
                if part:
                    self.words.update(_variants(part))
        self.folded_text = fold(joined)

    def has_name(self, name: str) -> bool:
        for v in _variants(name):
            if v in self.words:
                return True
            # Inflected forms: "Stoltenbergs" / "Stoltenberg", "Kremls" / "Kreml".
            for w in self.words:
                if len(w) >= 4 and len(v) >= 4 and (v.startswith(w) or w.startswith(v)):
                    if abs(len(w) - len(v)) <= 2:
                        return True
        return False


def fact_problems(sentence: str, language: str, sources: SourceFacts, cited: str) -> list[str]:
    """Why the facts of `sentence` are not all in its sources (empty when they are)."""
    f = facts(sentence, language)
    problems = []
    for n in sorted(f.numbers - sources.numbers):
        problems.append(f"the number {n} is not in {cited}")
    for month in sorted(f.months - sources.months):
        problems.append(f"the month {month:02d} is not in {cited}")
    for name in sorted(f.names):
        if not sources.has_name(name):
            problems.append(f"the name {name!r} is not in {cited}")
    return problems


def collapse_ws(text: str) -> str:
    return " ".join(text.split())
