"""Document metadata: ISO dates, the ` date YYYY-MM` header, titles, ids; the finished Document."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from rag.chunking import split_sentences
from rag.errors import IngestError
from rag.ingest.decode import valid_unicode
from rag.ingest.language import detect_language
from rag.types import Document

logger = logging.getLogger(__name__)

MAX_TITLE_CHARS = 150

_ISO = re.compile(r"(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?(?=$|[T\s])")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})(?=$|[T\s\d])")  # 20220601 (PDF dates)
_GERMAN = re.compile(r"(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4})$")  # 01.06.2022
_DATE_HEADER = re.compile(r"\A\s*date:?[ \t]+(\S+)[ \t]*\n?[ \t]*", re.IGNORECASE)


@dataclass(frozen=True)
class Extracted:
    """What a format parser found in a file, before ids, language and title fallbacks."""

    text: str
    title: str | None = None
    date: str | None = None
    url: str | None = None
    language: str | None = None
    pages: tuple[tuple[int, int, int], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


def to_document(extracted: Extracted, *, doc_id: str, source: str, fallback_title: str) -> Document:
    """The finished Document: text checked non-empty, language detected, title guessed; every
    string valid Unicode (a lone surrogate that a parser let through becomes U+FFFD)."""
    if not extracted.text.strip():
        raise IngestError(
            f"{source}: no text left after extraction (a scanned PDF, an image-only or "
            "script-only page?); run OCR (e.g. ocrmypdf) or export the text, then add it again"
        )
    text = valid_unicode(extracted.text)
    language = _valid(extracted.language) or detect_language(text)
    title = _valid(extracted.title) or guess_title(text, fallback_title, language)
    return Document(
        doc_id=doc_id,
        text=text,
        source=source,
        title=title,
        date=_valid(extracted.date),
        language=language,
        url=_valid(extracted.url),
        pages=extracted.pages,
        metadata={k: _valid(v) if isinstance(v, str) else v for k, v in extracted.metadata.items()},
    )


def _valid(value: str | None) -> str | None:
    return valid_unicode(value) if value is not None else None


def file_doc_id(source: str) -> str:
    """Stable id of a file's document: the first 16 hex digits of sha256(source)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def line_doc_id(source: str, line: int) -> str:
    """Stable id of a JSONL line without an `id`: sha256(source + "#" + line)[:16]."""
    return file_doc_id(f"{source}#{line}")


def normalise_date(value: object) -> str | None:
    """An ISO date, possibly partial ("2022", "2022-06", "2022-06-01"), or None if unreadable.

    Reads ISO dates and timestamps, "2022/06/01", "01.06.2022", PDF dates ("D:20220601...") and
    RFC 2822 dates ("Wed, 01 Jun 2022 10:00:00 +0200").
    """
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip().removeprefix("D:")
    for pattern, order in ((_ISO, (1, 2, 3)), (_COMPACT, (1, 2, 3)), (_GERMAN, (3, 2, 1))):
        match = pattern.match(text)
        if match:
            return _iso(*(match.group(i) for i in order))
    try:
        return email.utils.parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):  # Overflow: year 99999999999
        return None


def _iso(year: str, month: str | None, day: str | None) -> str | None:
    try:
        dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return None
    parts = [f"{int(year):04d}"]  # ASCII digits, also from "२०२२" (\d is any digit)
    if month:
        parts.append(f"{int(month):02d}")
        if day:
            parts.append(f"{int(day):02d}")
    return "-".join(parts)


def split_date_header(text: str) -> tuple[str | None, str]:
    """(date, body) for text that starts with a ` date YYYY-MM` header; (None, text) otherwise."""
    match = _DATE_HEADER.match(text)
    if not match:
        return None, text
    date = normalise_date(match.group(1))
    if date is None:
        return None, text
    return date, text[match.end() :]


def guess_title(text: str, fallback: str, language: str | None = None) -> str:
    """First non-empty line if short, else its first sentence if short, else `fallback`."""
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if 0 < len(first_line) <= MAX_TITLE_CHARS:
        return first_line
    # Only a short first sentence is used: its end lies in the line's start (a 100,000-character
    # line need not be split whole).
    sentences = split_sentences(first_line[: 4 * MAX_TITLE_CHARS], language)
    if sentences:
        start, end = sentences[0]
        sentence = first_line[start:end]
        if len(sentence) <= MAX_TITLE_CHARS:
            return _without_final_period(sentence)
    return fallback


def _without_final_period(sentence: str) -> str:
    if sentence.endswith(".") and not sentence.endswith(".."):
        return sentence[:-1]
    return sentence


def clean_field(value: object) -> str | None:
    """A metadata value as a stripped string, or None when missing or blank."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None
