"""Plain text and Markdown files: body text, the ` date YYYY-MM` header, front matter, titles."""

from __future__ import annotations

import re

from rag.ingest.decode import decode_utf8
from rag.ingest.metadata import Extracted, clean_field, normalise_date, split_date_header

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
# Trailing blanks and closing #s are stripped in Python: a lazy group before `[ \t#]*$` made
# a 30,000-character heading or field line take seconds (quadratic backtracking).
_FIELD = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:(.*)$", re.MULTILINE)
_H1 = re.compile(r"^#[ \t]+(.+)$", re.MULTILINE)


def parse_text(raw: bytes, source: str) -> Extracted:
    """A .txt file; a leading ` date YYYY-MM` header becomes the date, not body text."""
    date, body = split_date_header(decode_utf8(raw, source))
    return Extracted(text=body.strip(), date=date, metadata={"format": "text"})


def parse_markdown(raw: bytes, source: str) -> Extracted:
    """A Markdown file: front matter (`---` ... `---`) or the first `# ` heading gives the title.

    The body keeps its Markdown as written.
    """
    text = decode_utf8(raw, source)
    front, body = _split_front_matter(text)
    header_date, body = split_date_header(body)
    heading = _H1.search(body)
    title = clean_field(front.get("title")) or (
        _strip_markup(heading.group(1).rstrip(" \t#")) if heading else None
    )
    return Extracted(
        text=body.strip(),
        title=title,
        date=normalise_date(front.get("date")) or header_date,
        url=clean_field(front.get("url")),
        language=(clean_field(front.get("language") or front.get("lang")) or "").lower() or None,
        metadata={"format": "markdown"},
    )


def _split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """YAML-ish `key: value` lines of a front matter block, and the text after it."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    fields = {
        key.lower(): _unquote(value.strip(" \t"))
        for key, value in _FIELD.findall(match.group(1))
        if value.strip(" \t")
    }
    return fields, text[match.end() :]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _strip_markup(heading: str) -> str | None:
    return clean_field(re.sub(r"[*_`]+", "", heading))
