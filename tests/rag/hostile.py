"""Hostile input files for the fuzz tests of `rag index` and the upload endpoint.

`hostile_files(seed, count)` makes `count` files of every supported type (.txt .md .markdown
.html .htm .pdf .jsonl), deterministic for a seed: random bytes, NUL bytes, invalid UTF-8,
BOMs, CR and CRLF newlines, control, zero-width and bidi characters, 100k-character lines
without spaces, JSONL lines with wrong-typed fields, escaped lone surrogates, thousands of
nesting levels, huge numbers and odd dates, HTML with unclosed or deeply nested tags, scripts
and odd numeric entities, Markdown with broken front matter, truncated and mutated PDFs, empty
files, and valid files mixed in. `unaccounted` checks an add report against the files.
"""

from __future__ import annotations

import functools
import io
import json
import random
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Every kind of file is made by a generator `(rng) -> Made`; `hostile_files` cycles through
# them so that a few hundred files cover every kind, with the rng choosing the variant.


@dataclass(frozen=True)
class Made:
    """A generator's file body, before it gets a name."""

    data: bytes
    valid: bool = False
    """A well-formed file: it must be indexed (for JSONL: every line)."""
    good_lines: frozenset[int] = frozenset()
    """JSONL lines that must be indexed even though others are bad."""


@dataclass(frozen=True)
class Hostile:
    """One input file: its name (unique, with its extension), bytes, and what must happen."""

    name: str
    data: bytes
    kind: str
    valid: bool = False
    good_lines: frozenset[int] = field(default_factory=frozenset)


Generator = Callable[[random.Random], Made]

GERMAN = (
    "Die Verhandlungen in Genf dauerten bis in die Nacht. Der Minister sprach am 3. Juni in "
    "Berlin über die Ergebnisse. Alle Seiten stimmten dem Entwurf zu, sagte eine Sprecherin."
)
ENGLISH = (
    "The talks in Geneva went on late into the night. The minister spoke in Berlin on 3 June "
    "about the results. All sides agreed to the draft, a spokeswoman said."
)
BOM = b"\xef\xbb\xbf"
LONG = 100_000

ODD_CHARS = [chr(c) for c in range(0x00, 0x20)] + [
    "\x7f", "\x85", "\x9b", "\xa0", "\xad",
    "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2028", "\u2029",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
    "\ufeff", "\ufff9", "\ufffa", "\ufffb", "\ufffc", "\ufffd", "\ufffe", "\uffff",
    "\u0301", "\u0489", "\U0001f600", "\U0001f469\u200d\U0001f4bb", "\U000e0041", "\U0010ffff",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u4e2d\u6587",
]  # fmt: skip
BAD_UTF8 = [
    b"\xff", b"\xfe", b"\xc3", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82",
]  # fmt: skip
ODD_DATES: list[Any] = [
    "2022-13-01", "2022-02-30", "0000", "0000-00-00", "9999-12-31", "-2022", "2022-06-01T25:99",
    "Mon, 32 Foo 2022", "Mon, 01 Jan 99999999999 00:00:00 +0000", "Mon, 1 Jan 2022 00:00 +9999",
    "D:", "D:99999999", "D:2022\x00", "31.02.2022", "2022/06", "  ", "\u0662\u0660\u0662\u0662",
    "२०२२-०६-०१", "2022-06-01\u200b", "1e400", "yesterday", "2022" * 1000, 10**30, -1, 0,
    1e400, 3.5, True, [2022], {"y": 2022}, "2022-06-01",
]  # fmt: skip


def hostile_files(seed: int, count: int, prefix: str = "") -> list[Hostile]:
    """`count` hostile files, deterministic for `seed`; names start with `prefix`."""
    rng = random.Random(seed)
    files = []
    for i in range(count):
        suffix, kind, make = GENERATORS[i % len(GENERATORS)]
        made = make(rng)
        name = f"{prefix}{i:04d}_{kind}{suffix}"
        # Text made for .txt is only surely readable as .txt and .md (HTML may find no text).
        valid = made.valid and (suffix in (".txt", ".md") or make not in _PLAIN)
        files.append(Hostile(name, made.data, kind, valid, made.good_lines))
    return files


# --------------------------------------------------------------------------------- plain text
def _sentences(rng: random.Random, n: int | None = None) -> str:
    n = n or rng.randint(1, 6)
    pool = (GERMAN + " " + ENGLISH).split(". ")
    return " ".join(rng.choice(pool).rstrip(".") + "." for _ in range(n))


def _sprinkle(rng: random.Random, text: str, pool: Sequence[str], k: int) -> str:
    chars = list(text)
    for _ in range(k):
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(pool))
    return "".join(chars)


def random_bytes(rng: random.Random) -> Made:
    return Made(rng.randbytes(rng.choice([1, 3, 64, 512, 4096])))


def nul_bytes(rng: random.Random) -> Made:
    text = _sentences(rng)
    variants = [
        _sprinkle(rng, text, ["\x00"], rng.randint(1, 5)).encode(),
        text.encode("utf-16-le"),
        text.encode("utf-16"),  # with its BOM
        text.encode("utf-32"),
        b"\x00" * rng.choice([1, 100, 10_000]),
    ]
    return Made(rng.choice(variants))


def invalid_utf8(rng: random.Random) -> Made:
    data = bytearray(_sentences(rng).encode())
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(data) + 1)
        data[position:position] = rng.choice(BAD_UTF8)
    if rng.random() < 0.3:
        data = bytearray(_sentences(rng).encode("latin-1", "replace") + "äöüß".encode("latin-1"))
    return Made(bytes(data))


def boms(rng: random.Random) -> Made:
    text = _sentences(rng)
    variants = [
        (BOM + text.encode(), True),
        (BOM + BOM + text.encode(), False),
        (text[:20].encode() + BOM + text[20:].encode(), False),
        (b"\xff\xfe" + text.encode("utf-16-le"), False),
        (b"\xfe\xff" + text.encode("utf-16-be"), False),
        (BOM, False),
        (BOM + b"\n\n", False),
    ]
    data, valid = rng.choice(variants)
    return Made(data, valid=valid)


def newlines(rng: random.Random) -> Made:
    lines = [_sentences(rng, 1) for _ in range(rng.randint(1, 8))]
    separator = rng.choice(["\r\n", "\r", "\n\r", "\r\r\n", "\u2028", "\u2029", "\x85", "\x0b"])
    text = separator.join(lines)
    if rng.random() < 0.5:
        text = "".join(line + rng.choice(["\n", "\r", "\r\n"]) for line in lines)
    return Made(text.encode(), valid=True)


def odd_characters(rng: random.Random) -> Made:
    text = _sprinkle(rng, _sentences(rng), ODD_CHARS, rng.randint(1, 40))
    if rng.random() < 0.2:
        text = "".join(rng.choice(ODD_CHARS) for _ in range(rng.randint(1, 200)))
    if rng.random() < 0.1:
        text = "e" + "\u0301" * 5000 + " " + _sentences(rng)  # zalgo
    return Made(text.encode())


def long_line(rng: random.Random) -> Made:
    unit = rng.choice(
        ["a", "ab", ".", "!?", "…", "-", "#", "\u4e2d", "1", "/", "\u200b", ". ", "x.", "hausboot"]
    )
    text = (unit * (LONG // len(unit) + 1))[:LONG]
    if rng.random() < 0.3:
        text = "".join(rng.choice("abcdefghij.,;:!?") for _ in range(LONG))
    if rng.random() < 0.2:
        text = "http://example.org/" + text
    return Made((text + rng.choice(["", "b", " Ende.", "\n"])).encode())


def empty(rng: random.Random) -> Made:
    return Made(rng.choice([b"", b" ", b"\n", b"\t\r\n  ", BOM, b"\n" * 1000, b"\r" * 50]))


def tiny(rng: random.Random) -> Made:
    return Made(rng.choice(["a", "1", ".", "\U0001f600", "ß", " x ", "...", "— – -", "?"]).encode())


def valid_text(rng: random.Random) -> Made:
    header = rng.choice(["", " date 2022-06\n", "date: 2021\n"])
    paragraphs = "\n\n".join(_sentences(rng) for _ in range(rng.randint(1, 5)))
    return Made((header + paragraphs).encode(), valid=True)


# ----------------------------------------------------------------------------------- Markdown
def broken_front_matter(rng: random.Random) -> Made:
    body = _sentences(rng)
    variants = [
        f"---\ntitle: Offen\n{body}",  # never closed: all of it is body
        f"---\n---\n{body}",
        f"---\ntitle:\ndate:\n---\n{body}",
        f"---\ntitle: [a, b\ndate: not-a-date\n---\n{body}",
        f"---\r\ntitle: CRLF\r\ndate: 2022-06\r\n---\r\n{body}",
        "---\ntitle: Nur Kopf\n---\n",
        f"---\ntitle: {'x' * LONG}\n---\n{body}",
        f"---\na: x{' ' * 30_000}y\n---\n{body}",
        f"---\ndate: {rng.choice(ODD_DATES)}\nlang: {rng.choice(['de', 'xx', ''])}\n---\n{body}",
        f"---\ntitle: \x00\u200b\u202e\n...\n{body}",
        f"---\n{'k: v' * 0}{'---' * 1000}\n{body}",
        "---\n" * 5000,
        f"# {'#' * 30_000}a\n\n{body}",
        f"# \n\n{body}",
        "#" * LONG,
        f"{'#' * 7} zu tief\n{body}",
        f"# Titel\n\n{body}",
    ]
    index = rng.randrange(len(variants))
    return Made(variants[index].encode(), valid=index in (2, 3, 4, 16))


# --------------------------------------------------------------------------------------- HTML
ENTITIES = [
    "&#xD800;", "&#xDFFF;", "&#0;", "&#x0;", "&#x110000;", "&#99999999999999;", "&#x1F600;",
    "&#128512;", "&nbsp;", "&amp;", "&#x;", "&#;", "&#x202E;", "&#8203;", "&#65279;", "&#27;",
    "&bogus;", "&#-1;", "&#x7f;", "&#x85;",
]  # fmt: skip
CHARSETS = [
    "rot13", "base64", "hex", "unicode_escape", "raw_unicode_escape", "utf-7", "utf-16",
    "utf-32", "idna", "punycode", "zlib", "x" * 200, "latin-1", "cp1252", "utf-8\x00", "undefined",
]  # fmt: skip


def html_page(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


def hostile_html(rng: random.Random) -> Made:
    text = _sentences(rng, 3)
    depth = rng.choice([300, 3000, 30_000])
    variants: list[tuple[str | bytes, bool]] = [
        (f"<p>{text}<div><b><i>{text}<p>{text}", False),
        ("<div>" * depth + text + "</div>" * rng.choice([0, depth]), False),
        ("<b><i>" * depth + text, False),
        ("<table><tr><td>" * (depth // 10) + text, False),
        (html_page("", "<script>var x = '<p>" + text + "</p>';</script><style>p{}</style>"), False),
        (html_page(f"<script>{text}</script><p>{text}</p><style>{text}</style>"), False),
        (html_page(f"<p>{_sprinkle(rng, text, ENTITIES, rng.randint(1, 10))}</p>"), False),
        (html_page(f"<p>{''.join(rng.choices(ENTITIES, k=50))}</p>"), False),
        (html_page(f"<p>{text}</p><!-- {text}"), False),
        (f"<![CDATA[{text}]]><?xml version='1.0'?><p>{text}</p>", False),
        (html_page(f"<p title='{'x' * LONG}'>{text}</p>"), False),
        (html_page(f"<p>{'a' * LONG}</p>"), False),
        (html_page(f"<svg><text>{text}</text></svg><math><mi>x</mi></math>"), False),
        (
            html_page(
                f"<article><p>{text}</p></article>",
                f"<meta name='date' content='{rng.choice(ODD_DATES)}'>"
                "<meta property='og:title' content='\u202e\x00title'>"
                "<script type='application/ld+json'>{" + '"a":[' * 2000 + "</script>",
            ),
            False,
        ),
        (
            html_page(f"<p>{text}</p>", f"<meta charset='{rng.choice(CHARSETS)}'>").encode()
            + rng.choice(BAD_UTF8)
            + b"\\ud800 +2AA- \xff",
            False,
        ),
        (f"<?xml version='1.0' encoding='utf-16'?><html><body><p>{text}</p></body></html>", False),
        ("<html><body></body></html>", False),
        ("<" * rng.choice([10, 10_000]), False),
        (
            html_page(f"<article><h1>Titel</h1><p>{text}</p><p>{_sentences(rng, 4)}</p></article>"),
            True,
        ),
    ]
    data, valid = rng.choice(variants)
    return Made(data if isinstance(data, bytes) else data.encode(), valid=valid)


# ---------------------------------------------------------------------------------------- PDF
def make_pdf(pages: list[str], info: bytes | None = None) -> bytes:
    """A minimal valid PDF with one Helvetica text line per input line (WinAnsi encoded); `info`
    is the body of an /Info dictionary."""
    objects: list[bytes] = [
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    ]
    pages_id = 1 + 2 * len(pages) + 1
    kids: list[int] = []
    for text in pages:
        lines = [
            line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            for line in text.split("\n")
        ]
        ops = "BT /F1 11 Tf 14 TL 72 760 Td " + " ".join(f"({line}) Tj T*" for line in lines)
        stream = (ops + " ET").encode("cp1252", "replace")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 1 0 R >> >> /Contents %d 0 R >>" % (pages_id, len(objects))
        )
        kids.append(len(objects))
    refs = b" ".join(b"%d 0 R" % k for k in kids)
    objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids)))
    objects.append(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    if info is not None:
        objects.append(b"<< %s >>" % info)
    return _raw_pdf(objects, pages_id + 1, len(objects) if info is not None else None, b"1.4")


def _raw_pdf(
    objects: list[bytes], root: int = 1, info: int | None = None, version: bytes = b"1.7"
) -> bytes:
    """A PDF of the given object bodies (numbered from 1) with a correct xref table; `info` is
    the number of the /Info object, if any."""
    out = io.BytesIO()
    out.write(b"%%PDF-%s\n" % version)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    info_ref = b" /Info %d 0 R" % info if info is not None else b""
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R%s >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, root, info_ref, xref)
    )
    return out.getvalue()


def _stream(data: bytes, compress: bool = False) -> bytes:
    if compress:
        data = zlib.compress(data)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data)
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data)


def _pdf_of_content(content: bytes, compress: bool = False, extra: bytes = b"") -> bytes:
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    page = b"<< /Type /Page /Parent 4 0 R /MediaBox [0 0 612 792] " + (
        b"/Resources << /Font << /F1 1 0 R >> >> /Contents 2 0 R " + extra + b">>"
    )
    return _raw_pdf(
        [
            font,
            _stream(content, compress),
            page,
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Catalog /Pages 4 0 R >>",
        ],
        root=5,
    )


@functools.cache
def _odd_pdfs() -> tuple[bytes, ...]:
    """Damaged and odd PDFs, built once (a few are costly): the same for every seed."""
    rng = random.Random(0)
    text = _sentences(rng, 2).encode("cp1252", "replace")
    return (
        b"%PDF-1.4",
        b"%PDF-1.4\n" + rng.randbytes(rng.choice([10, 1000])),
        b"%PDF-" + b"\x00" * 100,
        # a page tree that contains itself
        _raw_pdf(
            [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]
        ),
        # an absurd page count and a missing page object
        _raw_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [9 0 R] /Count 99999999 >>",
            ]
        ),
        # deeply nested arrays and dictionaries
        _pdf_of_content(
            b"BT /F1 11 Tf 72 700 Td (x) Tj ET", extra=b"/X " + b"[" * 5000 + b"]" * 5000
        ),
        _pdf_of_content(
            b"BT /F1 11 Tf 72 700 Td (x) Tj ET", extra=b"/X " + b"<< /A " * 3000 + b">>" * 3000
        ),
        # text operators with odd operands, a huge TJ array, an unterminated string
        _pdf_of_content(
            b"BT /F1 11 Tf 72 700 Td [" + b"(a) -100 " * 20_000 + b"] TJ ET", compress=True
        ),
        _pdf_of_content(b"BT /F1 1e400 Tf 1e400 -1e400 Td (" + text + b") Tj ET"),
        _pdf_of_content(b"BT /F9 11 Tf (" + text + b" ET"),
        _pdf_of_content(b"BT /F1 11 Tf <FEFFD800DC00D800> Tj (\\000\\377) Tj ET"),
        _pdf_of_content(b"q " * 10_000 + b"BT /F1 11 Tf (" + text + b") Tj ET"),
        # a small decompression bomb: 5 MB of zeros, 5 kB compressed
        _pdf_of_content(
            b"BT /F1 11 Tf (" + text + b") Tj ET\n%" + b"\x00" * 5_000_000, compress=True
        ),
        # an encrypted PDF
        _encrypted(make_pdf([_sentences(rng)])),
        # odd /Info: a lone surrogate title, a bogus date, a non-string title
        *(
            make_pdf([_sentences(rng)], info=info)
            for info in [
                b"/Title <FEFFD800> /CreationDate (D:99999999999999)",
                b"/Title [1 2 3] /CreationDate 5",
                b"/Title (\\000\\001) /CreationDate (D:2022\\000)",
                b"/Title <FEFF> /CreationDate <FEFFDFFF>",
            ]
        ),
    )


def _encrypted(data: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt("geheim", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def hostile_pdf(rng: random.Random) -> Made:
    pages = [_sentences(rng) for _ in range(rng.randint(1, 3))]
    valid = make_pdf(pages)
    choice = rng.randrange(6)
    if choice == 0:
        return Made(valid, valid=True)
    if choice == 1:
        return Made(valid[: rng.randrange(len(valid))])
    if choice == 2:
        data = bytearray(valid)
        for _ in range(rng.choice([1, 3, 20])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return Made(bytes(data))
    if choice == 3:
        return Made(valid + rng.choice([valid, rng.randbytes(100), b"%%EOF\n" * 10]))
    return Made(rng.choice(_odd_pdfs()))


# -------------------------------------------------------------------------------------- JSONL
NOT_OBJECTS = [
    "null", "1", '"s"', "[]", "true", "{}", "{", '{"text": "offen', "}{", "{'text': 'x'}",
    '{"text": "x",}', "// comment", "\x00",
]  # fmt: skip
SURROGATES = ["\\ud800", "\\udfff", "\\udc00\\ud800", "\\ud83d", "x\\ud800y", "\\ud83d\\ude00"]


def _jsonl_line(rng: random.Random, number: int, token: int) -> tuple[str, bool]:
    """One JSONL line and whether it must be indexed. Ids hold the file's `token`: a line of
    one file never replaces another file's document."""
    text = _sentences(rng)
    wrong = [[1, 2], {"a": 1}, 3, 2.5, True, None, "", "   "]
    kind = rng.randrange(16)
    if kind == 0:
        line = {"id": f"id-{token}-{number}", "text": text, "date": "2022-06", "title": "Gut"}
        return json.dumps(line), True
    if kind == 1:
        return json.dumps({"text": text}), True
    if kind == 2:
        return json.dumps({"text": rng.choice(wrong)}), False
    if kind == 3:
        key = rng.choice(["title", "url", "source", "language", "id", "date"])
        return json.dumps({"text": text, key: rng.choice([[1], {"a": 1}, True, False])}), False
    if kind == 4:
        bad = rng.choice(SURROGATES)
        pair = bad == "\\ud83d\\ude00"  # a valid escaped pair: one emoji
        where = rng.choice(["text", "title", "extra", "key"] + ([] if pair else ["id"]))
        if where == "key":
            return '{"text": "%s", "%s": 1}' % (text, bad), pair
        if where == "text":
            return '{"text": "%s %s"}' % (text, bad), pair
        return '{"text": "%s", "%s": "%s"}' % (text, where, bad), pair
    if kind == 5:
        depth = rng.choice([100, 999, 1000, 5000, 100_000])
        bracket = rng.choice(["[", '{"a":'])
        closer = "]" if bracket == "[" else "}"
        nested = bracket * depth + "1" + closer * rng.choice([depth, 0])
        return rng.choice([nested, '{"text": "%s", "extra": %s}' % (text, nested)]), False
    if kind == 6:
        value = rng.choice(
            ["1e400", "-1e400", "9" * 5000, "9" * 4000, "NaN", "Infinity", "-Infinity", "1" * 310]
        )
        key = rng.choice(["id", "date", "extra", "text"])
        if key == "text":
            return '{"text": %s}' % value, False
        if key == "id":  # huge, but unique to the file (an id "inf" would be shared)
            value = str(token) + "9" * rng.choice([4000, 5000])
        return '{"text": "%s", "%s": %s}' % (text, key, value), False
    if kind == 7:
        return json.dumps({"text": text, "date": rng.choice(ODD_DATES)}), False
    if kind == 8:
        return rng.choice(NOT_OBJECTS), False
    if kind == 9:
        return json.dumps({"text": "x" * LONG}), False
    if kind == 10:
        chars = _sprinkle(rng, text, ODD_CHARS, 10)
        return json.dumps(
            {"text": chars, "title": chars[:50]}, ensure_ascii=rng.random() < 0.5
        ), False
    if kind == 11:
        return json.dumps({"text": "\u0000\u0001\u200b" * rng.randint(0, 3)}), False
    if kind == 12:
        language = rng.choice(
            ["xx", "DE", "de-DE", "", "\u0000", "../..", "zh", "ar", "ja", "x" * 500]
        )
        return json.dumps({"text": text, "language": language}), False
    if kind == 13:
        return json.dumps({"text": text, "id": f"dup-{token}"}), False
    if kind == 14:
        extra = rng.choice([{"a": [1, {"b": None}]}, "x" * 1000, [None] * 100, {"": ""}, 10**300])
        return json.dumps({"text": text, "split": extra}), False
    unique = rng.choice([token * 1000 + number, token + number / 1000])
    return json.dumps({"id": unique, "text": text}), False


def hostile_jsonl(rng: random.Random) -> Made:
    if rng.random() < 0.15:
        return Made(rng.choice([random_bytes, nul_bytes, invalid_utf8, empty, boms])(rng).data)
    count = rng.choice([1, 2, 5, 20])
    token = rng.randrange(10**9)
    lines, good = [], set()
    for number in range(1, count + 1):
        line, must = _jsonl_line(rng, number, token)
        lines.append(line)
        if must:
            good.add(number)
    separator = rng.choice(["\n", "\n", "\r\n", "\r", "\n\n"])
    data = separator.join(lines).encode("utf-8", "surrogatepass")
    if separator == "\n\n":  # blank lines between: line numbers double
        good = {2 * n - 1 for n in good}
    if rng.random() < 0.1:
        data = BOM + data
    all_good = len(good) == count
    if separator == "\r" or b"\x00" in data[:4096]:  # one (bad) line; "binary"
        good, all_good = set(), False
    return Made(data, valid=all_good, good_lines=frozenset(good))


def valid_jsonl(rng: random.Random) -> Made:
    count = rng.randint(1, 5)
    lines = [
        json.dumps(
            {"id": f"v-{rng.randrange(10**12)}-{n}", "text": _sentences(rng), "date": "2022-06-01"},
            ensure_ascii=False,
        )
        for n in range(count)
    ]
    return Made("\n".join(lines).encode(), valid=True, good_lines=frozenset(range(1, count + 1)))


# --------------------------------------------------------------------------- all generators
_TEXT_KINDS: list[tuple[str, Generator]] = [
    ("random", random_bytes),
    ("nul", nul_bytes),
    ("badutf8", invalid_utf8),
    ("bom", boms),
    ("newlines", newlines),
    ("oddchars", odd_characters),
    ("longline", long_line),
    ("empty", empty),
    ("tiny", tiny),
    ("valid", valid_text),
]

_PLAIN = frozenset(make for _, make in _TEXT_KINDS)

GENERATORS: list[tuple[str, str, Generator]] = [
    *((".txt", kind, make) for kind, make in _TEXT_KINDS),
    *((".md", kind, make) for kind, make in _TEXT_KINDS[::3]),
    (".md", "frontmatter", broken_front_matter),
    (".markdown", "frontmatter", broken_front_matter),
    (".md", "frontmatter", broken_front_matter),
    *((".html", kind, make) for kind, make in _TEXT_KINDS[1::3]),
    (".html", "hostile", hostile_html),
    (".htm", "hostile", hostile_html),
    (".html", "hostile", hostile_html),
    (".pdf", "random", random_bytes),
    (".pdf", "empty", empty),
    (".pdf", "hostile", hostile_pdf),
    (".pdf", "hostile", hostile_pdf),
    (".pdf", "hostile", hostile_pdf),
    (".jsonl", "hostile", hostile_jsonl),
    (".jsonl", "hostile", hostile_jsonl),
    (".jsonl", "hostile", hostile_jsonl),
    (".jsonl", "valid", valid_jsonl),
]


# ------------------------------------------------------------------------------- the checks
def unaccounted(
    files: Iterable[Hostile],
    sources: dict[str, str],
    indexed: Iterable[str],
    problems: Iterable[dict[str, Any]],
) -> list[str]:
    """What is wrong with an add report, as readable lines ([] when all is well).

    `sources` maps each file's name to the `source` it was given; `indexed` are the sources of
    the documents now in the index (a JSONL line's is `SOURCE#LINE`); `problems` are the
    report's `{"source", "line", "message"}`. Every file must be indexed or a problem (a JSONL
    file: each line, or the whole file), valid files and good lines indexed, each problem
    naming its file (and line) and saying what to do.
    """
    indexed = set(indexed)
    by_source: dict[str, list[dict[str, Any]]] = {}
    for p in problems:
        source, line = p["source"], p["line"]
        if "#" in source and line is None:  # a JSONL document dropped after reading
            source, _, number = source.rpartition("#")
            line = int(number) if number.isdigit() else None
        by_source.setdefault(source, []).append({**p, "line": line})
    wrong: list[str] = []
    for file in files:
        source = sources[file.name]
        found = by_source.get(source, [])
        for p in found:
            message = p["message"]
            if file.name not in message and not message.startswith(("document ", "duplicate ")):
                wrong.append(f"{file.name}: problem does not name the file: {message!r}")
            if "; " not in message and ": " not in message.split(file.name, 1)[-1]:
                wrong.append(f"{file.name}: problem says no fix: {message!r}")
        if file.name.endswith(".jsonl"):
            wrong += _jsonl_accounted(file, source, indexed, found)
            continue
        whole = [p for p in found if p["line"] is None]
        if source in indexed and whole:
            wrong.append(f"{file.name}: indexed and a problem: {whole[0]['message']!r}")
        if source not in indexed and not whole:
            wrong.append(f"{file.name}: neither indexed nor a problem")
        if file.valid and source not in indexed:
            wrong.append(f"{file.name}: valid but not indexed: {[p['message'] for p in found]}")
    return wrong


def _jsonl_accounted(
    file: Hostile, source: str, indexed: set[str], found: list[dict[str, Any]]
) -> list[str]:
    wrong = []
    lines = {int(s.rpartition("#")[2]) for s in indexed if s.rpartition("#")[0] == source}
    problem_lines = {p["line"] for p in found if p["line"] is not None}
    whole = [p for p in found if p["line"] is None]
    if whole and (lines or problem_lines):
        wrong.append(f"{file.name}: a whole-file problem but also lines read")
    if not whole and not lines and not problem_lines:
        wrong.append(f"{file.name}: neither indexed nor a problem")
    if lines & problem_lines:
        wrong.append(f"{file.name}: lines {sorted(lines & problem_lines)} indexed and a problem")
    for p in found:
        if p["line"] is not None and f"line {p['line']}" not in p["message"]:
            if not p["message"].startswith(("document ", "duplicate ")):
                wrong.append(f"{file.name}: problem does not name its line: {p['message']!r}")
    missing = sorted(file.good_lines - lines)
    if missing:
        messages = [p["message"] for p in found if p["line"] in missing]
        wrong.append(f"{file.name}: good lines {missing} not indexed: {messages}")
    return wrong


def tally(
    files: Sequence[Hostile],
    sources: dict[str, str],
    indexed: Iterable[str],
    problems: Iterable[dict[str, Any]],
) -> str:
    """One line for the test log: files with documents, files with problems, totals."""
    indexed, problems = list(indexed), list(problems)
    with_documents = {s.partition("#")[0] for s in indexed}
    with_problems = {p["source"].partition("#")[0] for p in problems}
    return (
        f"{len(files)} files ({sum(f.valid for f in files)} valid): "
        f"{sum(sources[f.name] in with_documents for f in files)} with documents indexed, "
        f"{sum(sources[f.name] in with_problems for f in files)} with problems; "
        f"{len(indexed)} documents, {len(problems)} problems"
    )
