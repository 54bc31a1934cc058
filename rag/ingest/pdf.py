"""PDF files: text per page (pypdf), page spans, /Title and /CreationDate, encrypted files."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from rag.errors import IngestError
from rag.ingest.decode import check_not_empty, normalise_newlines
from rag.ingest.metadata import Extracted, clean_field, normalise_date

logger = logging.getLogger(__name__)

PAGE_SEPARATOR = "\n\n"

_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
    }
)
_HYPHENATED = re.compile(r"(?<=[^\W\d_])-\n(?=[a-zäöüß])")  # "Verhand-\nlungen"
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_JUNK_TITLE = re.compile(r"(?i)^(untitled|unknown|title|.*\.(exe|docx?|pdf|tex|dvi|rtf|odt|indd))$")


def parse_pdf(raw: bytes, source: str, password: str | None = None) -> Extracted:
    """The pages' text joined by blank lines, with `(page, start, end)` spans."""
    check_not_empty(raw, source)
    if b"%PDF-" not in raw[:1024]:
        raise IngestError(
            f"{source}: is not a PDF (no %PDF- header); check the file, or give it the "
            "extension of its real type"
        )
    reader = _open(raw, source)
    _decrypt(reader, source, password)
    texts = _page_texts(reader, source)
    text, pages = _join_pages(texts)
    title, date = _info(reader)
    return Extracted(
        text=text,
        title=title,
        date=date,
        pages=pages,
        metadata={"format": "pdf", "page_count": len(texts)},
    )


def _open(raw: bytes, source: str) -> Any:
    from pypdf import PdfReader

    try:
        return PdfReader(io.BytesIO(raw))
    except Exception as error:  # pypdf raises several types on damaged files
        raise IngestError(
            f"{source}: cannot be read as a PDF ({error}); the file may be truncated or "
            "damaged: download or export it again"
        ) from None


def _decrypt(reader: Any, source: str, password: str | None) -> None:
    from pypdf.errors import DependencyError

    if not reader.is_encrypted:
        return
    try:
        # Files with only an owner password open with the empty user password.
        opened = reader.decrypt(password if password is not None else "")
    except DependencyError as error:
        raise IngestError(
            f"{source}: is encrypted with a cipher that needs an extra package ({error}); "
            "install it with: pip install 'pypdf[crypto]'"
        ) from None
    except Exception as error:
        raise IngestError(f"{source}: could not be decrypted ({error})") from None
    if opened:
        return
    if password is None:
        raise IngestError(
            f"{source}: is encrypted; index it with its open password (`rag index --password`), "
            "or upload a decrypted copy (an upload cannot carry a password)"
        )
    raise IngestError(
        f"{source}: the password does not open this encrypted PDF; check `rag index --password`"
    )


def _page_texts(reader: Any, source: str) -> list[str]:
    try:
        pages = list(reader.pages)
    except Exception as error:
        raise IngestError(
            f"{source}: its page tree is damaged ({error}); download or export it again"
        ) from None
    texts: list[str] = []
    for number, page in enumerate(pages, start=1):
        try:
            texts.append(_clean(page.extract_text() or ""))
        except Exception as error:  # one bad page should not lose the others
            logger.warning("%s: page %d has unreadable text, skipped (%s)", source, number, error)
            texts.append("")
    return texts


def _clean(text: str) -> str:
    text = normalise_newlines(text).translate(_LIGATURES)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _HYPHENATED.sub("", text)
    return _MANY_NEWLINES.sub("\n\n", text).strip()


def _join_pages(texts: list[str]) -> tuple[str, tuple[tuple[int, int, int], ...]]:
    """Non-empty pages joined by blank lines; spans are offsets into the joined text."""
    parts: list[str] = []
    spans: list[tuple[int, int, int]] = []
    offset = 0
    for number, text in enumerate(texts, start=1):
        if not text:
            continue
        if parts:
            parts.append(PAGE_SEPARATOR)
            offset += len(PAGE_SEPARATOR)
        parts.append(text)
        spans.append((number, offset, offset + len(text)))
        offset += len(text)
    return "".join(parts), tuple(spans)


def _info(reader: Any) -> tuple[str | None, str | None]:
    """Title (unless a placeholder such as "Untitled" or a file name) and creation date."""
    try:
        info = reader.metadata
        if info is None:
            return None, None
        title = clean_field(info.title)
        date = normalise_date(info.get("/CreationDate"))
    except Exception as error:  # a damaged info dictionary is no reason to lose the text
        logger.warning("PDF metadata unreadable, ignored (%s)", error)
        return None, None
    if title and _JUNK_TITLE.match(title):
        title = None
    return title, date
