"""Read one file of any supported format into documents; bad content becomes problems."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rag.errors import IngestError
from rag.ingest.batch import FileBatch, IngestProblem
from rag.ingest.html import parse_html
from rag.ingest.jsonl import parse_jsonl
from rag.ingest.metadata import Extracted, file_doc_id, to_document
from rag.ingest.pdf_worker import DEFAULT_PDF_SECONDS, extract_pdf
from rag.ingest.text import parse_markdown, parse_text
from rag.types import Document

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50_000_000

_TEXT_PARSERS: dict[str, Callable[[bytes, str], Extracted]] = {
    ".txt": parse_text,
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".html": parse_html,
    ".htm": parse_html,
}

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({*_TEXT_PARSERS, ".pdf", ".jsonl"})
"""File name endings that `read_file` understands (compared lower-cased)."""


def supported_list() -> str:
    """The supported endings for messages: ".htm, .html, .jsonl, ..."."""
    return ", ".join(sorted(SUPPORTED_SUFFIXES))


def read_file(
    path: Path,
    source: str,
    *,
    password: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    limit_setting: str = "chunking.max_file_bytes (RAG_CHUNKING__MAX_FILE_BYTES)",
    pdf_seconds: float | None = DEFAULT_PDF_SECONDS,
) -> FileBatch:
    """The documents in the file at `path`, named `source`. Never raises for bad content.

    A file that cannot be read yields no documents and one problem; a JSONL file yields a
    document per good line and a problem per bad line. `password` opens encrypted PDFs.
    `limit_setting` names, in the message for a file over `max_bytes`, what raises it. A PDF
    is read in a worker process and is a problem when that takes over `pdf_seconds` (None:
    read in this process, without a limit).
    """
    path = Path(path)
    try:
        documents, problems = _read(path, source, password, max_bytes, limit_setting, pdf_seconds)
    except IngestError as error:
        logger.debug("skipped %s: %s", source, error)
        return FileBatch(source, path, (), (IngestProblem(source=source, message=str(error)),))
    return FileBatch(source, path, tuple(documents), tuple(problems))


def _read(
    path: Path,
    source: str,
    password: str | None,
    max_bytes: int,
    limit_setting: str,
    pdf_seconds: float | None,
) -> tuple[list[Document], list[IngestProblem]]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(
            f"{source}: unsupported file type '{suffix or '(no extension)'}'; supported: "
            f"{supported_list()}"
        )
    raw = _read_bytes(path, source, max_bytes, limit_setting)
    if suffix == ".jsonl":
        return parse_jsonl(raw, source)
    if suffix == ".pdf":
        extracted = extract_pdf(raw, source, password, pdf_seconds)
        # A PDF's first line is often a running header: its file name makes a better title.
        extracted = replace(extracted, title=extracted.title or path.stem)
    else:
        extracted = _TEXT_PARSERS[suffix](raw, source)
    document = to_document(
        extracted, doc_id=file_doc_id(source), source=source, fallback_title=path.stem
    )
    return [document], []


def _read_bytes(path: Path, source: str, max_bytes: int, limit_setting: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise IngestError(_too_large(source, size, max_bytes, limit_setting))
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IngestError(f"{source}: file not found; check the path") from None
    except IsADirectoryError:
        raise IngestError(f"{source}: is a folder, not a file; pass it to discover()") from None
    except OSError as error:
        raise IngestError(
            f"{source}: cannot be read ({error.strerror or error}); check its permissions"
        ) from None
    if len(raw) > max_bytes:  # grew since stat
        raise IngestError(_too_large(source, len(raw), max_bytes, limit_setting))
    return raw


def _too_large(source: str, size: int, max_bytes: int, limit_setting: str) -> str:
    return (
        f"{source}: is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit; split it "
        f"into smaller files or raise {limit_setting}"
    )
