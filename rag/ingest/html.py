"""HTML pages: the article's main text and metadata, extracted with trafilatura.

trafilatura is built for news pages: it drops navigation, cookie banners, teasers and footers,
and reads title, date and site name from `og:*`/`article:*` meta tags, `<title>`, `<meta
name="date">` and JSON-LD. When it finds no main text (tiny pages), its whole-page text is used.
"""

from __future__ import annotations

import codecs
import re

from rag.errors import IngestError
from rag.ingest.decode import decode_utf8, normalise_newlines
from rag.ingest.metadata import Extracted, clean_field, normalise_date

_DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)

# Only dates the page states (meta tags, markup); no guessing from copyright lines or text.
_DATE_PARAMS = {"extensive_search": False, "original_date": True}


def parse_html(raw: bytes, source: str) -> Extracted:
    """Main text (paragraphs separated by blank lines), title, date, URL and site name."""
    from trafilatura import bare_extraction, html2txt

    html = _decode(raw, source)
    try:
        result = bare_extraction(
            html,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            date_extraction_params=_DATE_PARAMS,
        )
        text = getattr(result, "text", None) or html2txt(html) or ""
    except Exception as error:  # lxml and trafilatura raise many types on broken markup
        raise IngestError(
            f"{source}: the HTML could not be parsed ({type(error).__name__}: {error}); "
            "save the page again or convert it to text"
        ) from None
    return Extracted(
        text=_paragraphs(text),
        title=clean_field(getattr(result, "title", None)),
        date=normalise_date(getattr(result, "date", None)),
        url=clean_field(getattr(result, "url", None)),
        metadata=_site_metadata(result),
    )


def _decode(raw: bytes, source: str) -> str:
    """UTF-8, or the charset the page declares in a `<meta>` tag."""
    try:
        return decode_utf8(raw, source)
    except IngestError:
        charset = _declared_charset(raw)
        if charset is None or b"\x00" in raw:
            raise
    try:
        return normalise_newlines(raw.decode(charset))
    except (UnicodeError, LookupError):  # LookupError: not a text codec ("rot13", "zlib")
        raise IngestError(
            f"{source}: is neither UTF-8 nor the declared charset {charset}; convert it, e.g. "
            f"iconv -f latin1 -t utf-8 '{source}' > converted.html"
        ) from None


def _declared_charset(raw: bytes) -> str | None:
    match = _DECLARED_CHARSET.search(raw[:4096])
    if not match:
        return None
    name = match.group(1).decode("ascii")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _paragraphs(text: str) -> str:
    """trafilatura puts one paragraph a line; blank lines between them mark paragraphs."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n\n".join(line for line in lines if line)


def _site_metadata(result: object) -> dict[str, str]:
    metadata = {"format": "html"}
    for key, attribute in (("site_name", "sitename"), ("author", "author")):
        value = clean_field(getattr(result, attribute, None))
        if value:
            metadata[key] = value
    return metadata
