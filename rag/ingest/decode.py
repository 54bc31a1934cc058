"""Bytes to text: UTF-8 only (a BOM is fine), with messages that say how to convert a file."""

from __future__ import annotations

import re

from rag.errors import IngestError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A surrogate code point: in a Python string always a lone one, which UTF-8 cannot encode."""


def decode_utf8(raw: bytes, source: str) -> str:
    """The text of a UTF-8 file, newlines normalised to "\\n".

    Raises `IngestError` for an empty file, a binary one (NUL bytes) or one not in UTF-8.
    """
    check_not_empty(raw, source)
    if b"\x00" in raw:
        raise IngestError(
            f"{source}: looks binary (contains NUL bytes), not text; if it is UTF-16 text, "
            f"convert it first: iconv -f utf-16 -t utf-8 '{source}' > converted.txt"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise IngestError(
            f"{source}: is not valid UTF-8 (byte 0x{raw[error.start]:02x} at offset "
            f"{error.start}); convert it, e.g. iconv -f latin1 -t utf-8 '{source}' > "
            "converted.txt, and add the converted file"
        ) from None
    return normalise_newlines(text)


def check_not_empty(raw: bytes, source: str) -> None:
    """Raise `IngestError` when the file holds nothing but whitespace (or a BOM)."""
    if not raw.removeprefix(b"\xef\xbb\xbf").strip():
        raise IngestError(f"{source}: the file is empty; nothing to index, remove it or fill it")


def normalise_newlines(text: str) -> str:
    """Newlines as "\\n" (from "\\r\\n" or "\\r"); control characters but tab and newline go."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def valid_unicode(text: str) -> str:
    """`text` with lone surrogates (from escapes such as `\\ud800`, or a codec that lets them
    through) replaced by U+FFFD, so that it can be stored and sent as UTF-8."""
    return LONE_SURROGATE.sub("\ufffd", text)
