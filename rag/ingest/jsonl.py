"""JSON Lines archives: one article a line (`text` required; `id`, `title`, `date`, `url`,
`source`, `language` optional). A bad line is one problem; the other lines are still read."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from rag.errors import IngestError
from rag.ingest.batch import IngestProblem
from rag.ingest.decode import LONE_SURROGATE, check_not_empty, normalise_newlines
from rag.ingest.metadata import Extracted, clean_field, line_doc_id, normalise_date, to_document
from rag.types import Document

logger = logging.getLogger(__name__)

KNOWN_FIELDS = frozenset({"id", "text", "title", "date", "url", "source", "language"})
BINARY_PROBE_BYTES = 4096
"""How much of a file's start is looked at for NUL bytes (a binary file)."""


def parse_jsonl(raw: bytes, source: str) -> tuple[list[Document], list[IngestProblem]]:
    """The documents of all good lines, and one problem for each bad line."""
    check_not_empty(raw, source)
    # NUL bytes at the start mean a compressed, UTF-16 or image file; one later is one bad line.
    if b"\x00" in raw[:BINARY_PROBE_BYTES]:
        raise IngestError(
            f"{source}: looks binary (contains NUL bytes), not JSON Lines; is it compressed? "
            "Decompress it, or convert UTF-16 with: iconv -f utf-16 -t utf-8"
        )
    documents: list[Document] = []
    problems: list[IngestProblem] = []
    first_line_of: dict[str, int] = {}
    for number, line in enumerate(raw.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            document = _document(line, source, number)
        except IngestError as error:
            problems.append(IngestProblem(source=source, message=str(error), line=number))
            continue
        if document.doc_id in first_line_of:
            problems.append(_duplicate(source, number, document.doc_id, first_line_of))
            continue
        first_line_of[document.doc_id] = number
        documents.append(document)
    return documents, problems


def _document(line: bytes, source: str, number: int) -> Document:
    where = f"{source} line {number}"
    record = _record(line, where)
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise IngestError(
            f'{where}: no "text" (each line needs a non-empty "text" string, found '
            f"{_found(text)}); add the article text or remove the line"
        )
    raw_id = record.get("id")
    doc_id = clean_field(raw_id) or line_doc_id(source, number)
    date = normalise_date(record.get("date"))
    if record.get("date") not in (None, "") and date is None:
        raise IngestError(
            f'{where}: unreadable "date" {str(record["date"])[:40]!r}; write it as YYYY, '
            "YYYY-MM or YYYY-MM-DD (01.06.2022 and RFC 2822 dates work too), or leave the "
            "field out"
        )
    extracted = Extracted(
        text=normalise_newlines(text).strip(),
        title=clean_field(record.get("title")),
        date=date,
        url=clean_field(record.get("url")),
        language=_language(record.get("language")),
        metadata=_metadata(record, source, number),
    )
    return to_document(
        extracted,
        doc_id=doc_id,
        source=clean_field(record.get("source")) or f"{source}#{number}",
        fallback_title=f"{Path(source).stem} #{number}",
    )


def _record(line: bytes, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise IngestError(
            f"{where}: is not valid UTF-8 (byte 0x{line[error.start]:02x}); convert the file, "
            "e.g. iconv -f latin1 -t utf-8"
        ) from None
    except json.JSONDecodeError as error:
        raise IngestError(
            f"{where}: not valid JSON ({error.msg} at column {error.colno}); fix or remove "
            "the line (one JSON object per line)"
        ) from None
    except RecursionError:
        raise IngestError(
            f"{where}: JSON nested too deeply to read (about {sys.getrecursionlimit()} levels "
            "or more); flatten the line or remove it"
        ) from None
    except ValueError as error:  # a number of more than 4,300 digits
        reason = str(error).split(";")[0]  # without Python's advice to raise its own limit
        raise IngestError(
            f"{where}: holds a number too long to read ({reason}); write it as a string, or "
            "remove the line"
        ) from None
    if not isinstance(record, dict):
        raise IngestError(
            f"{where}: a JSON {type(record).__name__}, not an object; each line must be an "
            'object like {"text": "..."}'
        )
    for field in sorted(KNOWN_FIELDS & set(record)):
        _check_field(record[field], field, where)
    for field in sorted(set(record) - KNOWN_FIELDS):
        _check_extra(record[field], field, where)
    return record


# JSON numbers are fine where a number is meant (an id, a year); lists and objects never are.
_NUMBER_OK = frozenset({"id", "date"})


def _check_field(value: object, field: str, where: str) -> None:
    """A known field of the wrong type, or text that is not valid Unicode, is an error naming
    the field: the line is one problem, the rest of the file is indexed."""
    if value is None:
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not isinstance(value, str) and not (number and field in _NUMBER_OK):
        raise IngestError(
            f'{where}: "{field}" must be a string, found {_found(value)}; fix the line'
        )
    if isinstance(value, str):
        bad = next((c for c in value if "\ud800" <= c <= "\udfff"), None)
        if bad is not None:
            raise IngestError(
                f'{where}: "{field}" holds an invalid character (a lone surrogate, '
                f"\\u{ord(bad):04x}, which is not Unicode text); fix the line's escapes"
            )


MAX_EXTRA_DEPTH = 32
"""Deepest nesting of lists and objects in a field beyond the known ones (kept as metadata)."""


def _check_extra(value: object, field: str, where: str) -> None:
    """A field beyond the known ones is kept as metadata, so it must be storable as JSON: no
    lone surrogates (in names or values), no NaN or Infinity, at most `MAX_EXTRA_DEPTH` levels."""
    name = json.dumps(field[:40])  # escaped: the name may itself hold a lone surrogate
    stack: list[tuple[object, int]] = [(field, 0), (value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_EXTRA_DEPTH:
            raise IngestError(
                f"{where}: {name} is nested more than {MAX_EXTRA_DEPTH} levels deep; flatten it "
                "or remove the field"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise IngestError(
                f"{where}: {name} holds {item} (not a finite number, cannot be stored); write a "
                "number or a string, or remove the field"
            )
        if isinstance(item, str) and LONE_SURROGATE.search(item):
            raise IngestError(
                f"{where}: {name} holds an invalid character (a lone surrogate, which is not "
                "Unicode text); fix the line's escapes"
            )
        if isinstance(item, dict):
            stack += [(k, depth) for k in item] + [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]


def _found(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return "an empty string"
    return f"a {type(value).__name__}"


def _language(value: object) -> str | None:
    language = clean_field(value)
    return language.lower() if language else None


def _metadata(record: dict[str, Any], source: str, number: int) -> dict[str, Any]:
    """The file and line, plus any fields beyond the known ones (e.g. "split")."""
    extra = {k: v for k, v in record.items() if k not in KNOWN_FIELDS}
    return {"format": "jsonl", **extra, "file": source, "line": number}


def _duplicate(
    source: str, number: int, doc_id: str, first_line_of: dict[str, int]
) -> IngestProblem:
    return IngestProblem(
        source=source,
        message=(
            f'{source} line {number}: duplicate id "{doc_id}" (first on line '
            f"{first_line_of[doc_id]}); give every line its own id, this line was skipped"
        ),
        line=number,
    )
