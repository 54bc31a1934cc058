"""Keyword analysis for German and English: the terms a passage is indexed under.

tokens (letters/digits) -> lowercase -> stopwords out -> Snowball stem (PyStemmer) of the text's
language -> umlaut/ß folding ("Außenminister" and "Aussenminister" both -> "aussenminist"), and
for German, compound parts as extra terms ("Waffenlieferungen" -> waffenliefer, waff, liefer),
so "Waffenlieferungen" matches "Lieferung von Waffen".

Compounds are split by word frequency (Koehn & Knight 2003) with the German frequency list that
the `wordfreq` package ships: a long word is split where the parts are common words whose mean
log-frequency beats the whole word's. (The one packaged German splitter, compound-split, is
GPL-3.0; this project is MIT.)

Queries are analysed in both languages at once (the union of terms), because a question's
language says nothing about the articles' language.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

ANALYZER_ID = "de-en-snowball-wordfreq-v1"
"""Recorded in the index; a different analyzer re-analyses the stored passages."""

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_FOLD = str.maketrans(
    {
        "ä": "a",
        "ö": "o",
        "ü": "u",
        "ß": "ss",
        "à": "a",
        "á": "a",
        "â": "a",
        "é": "e",
        "è": "e",
        "ê": "e",
        "ë": "e",
        "ï": "i",
        "î": "i",
        "ô": "o",
        "ç": "c",
        "ñ": "n",
    }
)
_STEMMERS = {"de": "german", "en": "english"}
_MIN_COMPOUND = 8  # shorter words are not split
_MAX_COMPOUND = 64  # nor longer ones (the longest German compounds in use are ~40 letters)
_MIN_PART = 3
_MIN_TAIL = 4
_MIN_PART_ZIPF = 3.0  # both parts must be at least this common (Zipf scale)
_LINKS = ("", "s", "es", "n", "en", "e", "er")  # German linking elements (Fugenelemente)


class _Resources:
    """Stemmers, stopwords and frequency lists, loaded once on first use (thread-safe)."""

    _lock = threading.Lock()
    _loaded: dict[str, Any] = {}

    @classmethod
    def get(cls, key: str) -> Any:
        if key not in cls._loaded:
            with cls._lock:
                if key not in cls._loaded:
                    cls._loaded[key] = cls._load(key)
        return cls._loaded[key]

    @staticmethod
    def _load(key: str) -> Any:
        kind, _, lang = key.partition(":")
        if kind == "stemmer":
            import Stemmer

            return Stemmer.Stemmer(_STEMMERS[lang])
        if kind == "stopwords":
            import stopwordsiso

            return frozenset(w.lower() for w in stopwordsiso.stopwords(lang))
        if kind == "zipf":
            import math

            from wordfreq import get_frequency_dict

            # Zipf = log10(frequency per billion words); a plain dict is ~100x faster to query
            # than wordfreq.zipf_frequency, which re-tokenizes every word.
            return {
                w: math.log10(f) + 9 for w, f in get_frequency_dict(lang, wordlist="best").items()
            }
        raise KeyError(key)


def _fold(term: str) -> str:
    return term.translate(_FOLD)


def tokenize(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


@lru_cache(maxsize=200_000)
def compound_parts(word: str) -> tuple[str, ...]:
    """Split a German word into its parts ("waffenlieferungen" -> waffen, lieferungen), or ()
    when no split into common words beats the word itself. Lookups are casefolded (ß -> ss)."""
    word = word.casefold()
    if not _MIN_COMPOUND <= len(word) <= _MAX_COMPOUND or not word.isalpha():
        return ()  # a "word" longer than any real compound: not split (and no deep recursion)
    found = _best_split(word)
    return found[1] if found and found[0] > _zipf(word) else ()


def _zipf(word: str) -> float:
    zipf: dict[str, float] = _Resources.get("zipf:de")
    return zipf.get(word, 0.0)


def _part_score(part: str, *, tail: bool) -> float:
    """Zipf frequency of a compound part; a tail may carry an inflection (Pakets -> Paket)."""
    if part in _Resources.get("stopwords:de"):
        return 0.0
    score = _zipf(part)
    if tail:
        for ending in ("s", "es", "n", "en", "e"):
            if part.endswith(ending) and len(part) - len(ending) >= _MIN_TAIL:
                score = max(score, _zipf(part[: -len(ending)]))
    return score


@lru_cache(maxsize=200_000)
def _best_split(word: str) -> tuple[float, tuple[str, ...]] | None:
    """(mean Zipf of the parts, parts) of the best split of `word` into >= 2 common words."""
    best: tuple[float, tuple[str, ...]] | None = None
    for cut in range(_MIN_PART, len(word) - _MIN_TAIL + 1):
        head, tail = word[:cut], word[cut:]
        tail_score = _part_score(tail, tail=True)
        if tail_score < _MIN_PART_ZIPF:
            continue
        for link in _LINKS:
            if link and not head.endswith(link):
                continue
            stem = head[: len(head) - len(link)] if link else head
            if len(stem) < _MIN_PART:
                continue
            candidates = [(_part_score(stem, tail=False), (stem,))]
            inner = _best_split(stem) if len(stem) >= _MIN_COMPOUND else None
            if inner:  # "mehrfachraketen" -> mehrfach, raketen
                candidates.append(inner)
            for head_score, head_parts in candidates:
                if head_score < _MIN_PART_ZIPF:
                    continue
                score = (head_score * len(head_parts) + tail_score) / (len(head_parts) + 1)
                if best is None or score > best[0]:
                    best = (score, (*head_parts, tail))
    return best


class Analyzer:
    """Turns text into index terms. Stateless apart from lazily loaded resources."""

    id = ANALYZER_ID

    def document_terms(self, text: str, language: str | None) -> list[str]:
        """Terms of a passage in `language` ("de", "en"; anything else is treated as German)."""
        lang = language if language in _STEMMERS else "de"
        return self._terms(tokenize(text), (lang,))

    def query_terms(self, text: str) -> list[str]:
        """Terms of a question, in German and English analysis both (deduplicated)."""
        terms = self._terms(tokenize(text), ("de", "en"))
        return list(dict.fromkeys(terms))

    def _terms(self, tokens: list[str], languages: tuple[str, ...]) -> list[str]:
        stop = frozenset().union(*(_Resources.get(f"stopwords:{lang}") for lang in languages))
        out: list[str] = []
        for lang in languages:
            stemmer = _Resources.get(f"stemmer:{lang}")
            for token in tokens:
                if token in stop or (len(token) < 2 and not token.isdigit()):
                    continue
                out.append(_fold(stemmer.stemWord(token)))
                if lang == "de":
                    out.extend(_fold(stemmer.stemWord(p)) for p in compound_parts(token))
        return out
