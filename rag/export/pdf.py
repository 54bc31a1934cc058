"""PDF export (fpdf2): the question, the answer with [n] markers and unsupported sentences
marked, then the numbered sources with their quotes.

Text is set in Noto Sans, embedded from the `pymupdf-fonts` package, so German (and any
Latin, Greek or Cyrillic) text keeps every letter and typographic quote. The warning sign comes
from Noto Sans Symbols 2, whose CFF outlines fpdf2 embeds in a way some readers flag, so its
one glyph is copied into a tiny TrueType font first. The text layer reads back with any
extractor.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.answer.types import Answer
from rag.errors import ConfigError
from rag.export.render import (
    WARNING_SIGN,
    answer_lines,
    labels,
    one_line,
    provenance,
    quoted,
    source_parts,
    unsupported_note,
)
from rag.export.types import ExportContext, parse_timestamp

FONT = "NotoSans"
SYMBOLS = "NewsragSymbols"
# style -> module of pymupdf_fonts holding the font file's bytes as `fontbuffer`
_FONT_MODULES = {"": "NotoSans_Regular", "B": "NotoSans_Bold", "I": "NotoSans_Italic"}
_SYMBOL_MODULE = "NotoSansSymbols2_Regular"
TEXT = (0, 0, 0)
MUTED = (90, 90, 90)
WARN = (170, 20, 20)


class _DropTTFANotice(logging.Filter):
    """fontTools logs a warning for every subset of Noto Sans: its TTFA table (ttfautohint
    parameters, not needed to render) is dropped. Expected, so not worth a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "TTFA NOT subset" not in record.getMessage()


def render(answers: Sequence[Answer], context: ExportContext) -> bytes:
    """The PDF file's bytes."""
    fpdf = _import("fpdf", "fpdf2")
    subset_log = logging.getLogger("fontTools.subset")
    if not any(isinstance(f, _DropTTFANotice) for f in subset_log.filters):
        subset_log.addFilter(_DropTTFANotice())
    with tempfile.TemporaryDirectory(prefix="newsrag-pdf-") as tmp:
        pdf = fpdf.FPDF(format="A4")
        _add_fonts(pdf, Path(tmp))
        texts = labels(answers[0].language)
        pdf.set_title(one_line(answers[0].question) if len(answers) == 1 else texts["conversation"])
        pdf.set_creator("newsrag")
        pdf.set_author("newsrag")
        pdf.set_lang(answers[0].language or "en")
        pdf.set_creation_date(parse_timestamp(context.created_at))
        pdf.set_margins(20, 18, 20)
        pdf.set_auto_page_break(True, margin=18)
        pdf.add_page()
        if len(answers) > 1:
            _block(pdf, texts["conversation"], size=18, style="B", after=4)
        for answer in answers:
            _answer(pdf, answer, heading=16 if len(answers) == 1 else 14)
        footer = provenance(
            context.created_at, context.index_manifest_sha256, context.embedder, texts
        )
        _block(pdf, footer, size=8, color=MUTED)
        # fonts are read lazily: output while the font files still exist
        return bytes(pdf.output())


def _import(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"PDF export needs {package}: pip install {package}") from exc


def _add_fonts(pdf: Any, folder: Path) -> None:
    """Write the packaged fonts where fpdf2 can read them (it takes file paths only)."""
    import importlib

    _import("pymupdf_fonts", "pymupdf-fonts")
    for style, name in _FONT_MODULES.items():
        path = folder / f"{name}.ttf"
        path.write_bytes(importlib.import_module(f"pymupdf_fonts.{name}").fontbuffer)
        pdf.add_font(FONT, style, str(path))
    symbols = folder / f"{SYMBOLS}.ttf"
    symbols.write_bytes(_symbol_font(WARNING_SIGN))
    pdf.add_font(SYMBOLS, "", str(symbols))
    pdf.set_fallback_fonts([SYMBOLS], exact_match=False)


def _symbol_font(chars: str) -> bytes:
    """A TrueType font holding just `chars`, their outlines taken from Noto Sans Symbols 2
    (cubic CFF curves converted to TrueType's quadratic ones)."""
    import io

    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.boundsPen import BoundsPen
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont
    from pymupdf_fonts import NotoSansSymbols2_Regular

    source = TTFont(io.BytesIO(NotoSansSymbols2_Regular.fontbuffer))
    cmap, glyph_set = source.getBestCmap(), source.getGlyphSet()
    names = {ord(c): f"u{ord(c):04X}" for c in chars if ord(c) in cmap}
    glyphs, metrics = {".notdef": TTGlyphPen(None).glyph()}, {".notdef": (500, 0)}
    for code, name in names.items():
        original = glyph_set[cmap[code]]
        pen, bounds = TTGlyphPen(None), BoundsPen(glyph_set)
        original.draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        original.draw(bounds)
        glyphs[name] = pen.glyph()
        metrics[name] = (original.width, int(bounds.bounds[0]) if bounds.bounds else 0)
    hhea = source["hhea"]
    font = FontBuilder(source["head"].unitsPerEm, isTTF=True)
    font.setupGlyphOrder(list(glyphs))
    font.setupCharacterMap({code: name for code, name in names.items()})
    font.setupGlyf(glyphs)
    font.setupHorizontalMetrics(metrics)
    font.setupHorizontalHeader(ascent=hhea.ascent, descent=hhea.descent)
    font.setupNameTable({"familyName": SYMBOLS, "styleName": "Regular"})
    font.setupOS2(
        sTypoAscender=hhea.ascent,
        sTypoDescender=hhea.descent,
        usWinAscent=hhea.ascent,
        usWinDescent=-hhea.descent,
    )
    font.setupPost()
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def _block(
    pdf: Any,
    text: str,
    *,
    size: float,
    style: str = "",
    color: tuple[int, int, int] = TEXT,
    after: float = 2,
) -> None:
    """A paragraph across the full text width."""
    pdf.set_font(FONT, style, size)
    pdf.set_text_color(*color)
    pdf.multi_cell(0, size * 0.5, text, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(after)


def _answer(pdf: Any, answer: Answer, heading: float) -> None:
    texts = labels(answer.language)
    _block(pdf, one_line(answer.question), size=heading, style="B", after=1)
    meta = [texts["mode"].format(mode=answer.mode)]
    if answer.model:
        meta.append(texts["model"].format(model=answer.model))
    _block(pdf, " · ".join(meta), size=8, color=MUTED, after=3)
    if not answer.answerable:
        _unanswerable(pdf, answer, texts)
        return
    _answer_text(pdf, answer, texts)
    if not answer.citations:
        return
    _block(pdf, texts["sources"], size=12, style="B", after=1)
    for c in sorted(answer.citations, key=lambda c: c.n):
        _block(pdf, f"[{c.n}] {quoted(one_line(c.quote), answer.language)}", size=10, after=0.5)
        _block(pdf, " · ".join(source_parts(c, texts)), size=8.5, color=MUTED, after=2.5)
    pdf.ln(4)


def _answer_text(pdf: Any, answer: Answer, texts: dict[str, str]) -> None:
    """Sentences flowing as one paragraph; an unsupported one in red italics with its note."""
    height = 6
    for i, line in enumerate(answer_lines(answer)):
        markers = "".join(f"[{n}]" for n in line.citations)
        lead = " " if i else ""
        if line.supported:
            pdf.set_font(FONT, "", 11)
            pdf.set_text_color(*TEXT)
            pdf.write(height, f"{lead}{line.text}{markers}")
            continue
        pdf.set_font(FONT, "I", 11)
        pdf.set_text_color(*WARN)
        pdf.write(height, f"{lead}{WARNING_SIGN} {line.text}{markers} ")
        pdf.set_font(FONT, "B", 9)
        pdf.write(height, f"({unsupported_note(line, texts)})")
    pdf.set_text_color(*TEXT)
    pdf.ln(height + 4)


def _unanswerable(pdf: Any, answer: Answer, texts: dict[str, str]) -> None:
    said = one_line(answer.text) or texts["no_answer"]
    _block(pdf, f"{WARNING_SIGN} {said}", size=11, style="B", color=WARN, after=3)
    if not answer.passages:
        return
    _block(pdf, texts["nearest"], size=11, after=1)
    for i, hit in enumerate(answer.passages, 1):
        where = [one_line(hit.title or "") or texts["untitled"], hit.date or texts["undated"]]
        where.append(hit.source)
        if hit.page is not None:
            where.append(f"{texts['page']} {hit.page}")
        _block(pdf, f"{i}. " + " · ".join(where), size=9, style="B", after=0.5)
        excerpt = one_line(hit.text)
        if len(excerpt) > 400:
            excerpt = excerpt[:400].rsplit(" ", 1)[0] + " …"
        _block(pdf, quoted(excerpt, answer.language), size=9, color=MUTED, after=2.5)
    pdf.ln(4)
