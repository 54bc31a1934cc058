"""Markdown export: the question as heading, the answer with footnotes that carry each cited
quote and its source; unsupported sentences visibly marked."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer.types import Answer, Citation
from rag.export.render import (
    WARNING_SIGN,
    Line,
    answer_lines,
    labels,
    one_line,
    provenance,
    quoted,
    source_parts,
    unsupported_note,
)
from rag.export.types import ExportContext

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~$])")
_LINE_START = re.compile(r"^(#|>|[-+=]|\d+[.)])")


def escape(text: str) -> str:
    """Article text made inert: Markdown punctuation backslash-escaped, so a `*` or `[1]` in a
    headline stays literal, and a line never starts a heading, list or quote."""
    text = _SPECIAL.sub(r"\\\1", one_line(text))
    return _LINE_START.sub(r"\\\1", text)


def code(text: str) -> str:
    """A code span around `text` whatever backticks it holds (used for file paths)."""
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def link(url: str) -> str:
    """An autolink when the URL allows one, else the escaped URL as text."""
    if re.fullmatch(r"[a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>]+", url):
        return f"<{url}>"
    return escape(url)


def render(answers: Sequence[Answer], context: ExportContext) -> str:
    """The whole document: one answer under an `#` heading, a conversation under `##` ones."""
    texts = labels(answers[0].language)
    out: list[str] = []
    level = "#"
    if len(answers) > 1:
        out += [f"# {escape(texts['conversation'])}", ""]
        level = "##"
    first_note = 1
    for answer in answers:
        out += _answer(answer, level, first_note)
        first_note += len(answer.citations)
    footer = provenance(context.created_at, context.index_manifest_sha256, context.embedder, texts)
    out += ["---", "", f"*{escape(footer)}*", ""]
    return "\n".join(out)


def _answer(answer: Answer, level: str, first_note: int) -> list[str]:
    """One answer's section: heading, text, footnote definitions (numbered from `first_note`)."""
    texts = labels(answer.language)
    notes = {c.n: first_note + i for i, c in enumerate(sorted(answer.citations, key=lambda c: c.n))}
    out = [f"{level} {escape(answer.question)}", ""]
    if not answer.answerable:
        out += _unanswerable(answer, texts)
        return out
    out += [" ".join(_sentence(line, notes, texts) for line in answer_lines(answer)), ""]
    meta = [texts["mode"].format(mode=answer.mode)]
    if answer.model:
        meta.append(texts["model"].format(model=answer.model))
    out += [f"*{escape(' · '.join(meta))}*", ""]
    for citation in sorted(answer.citations, key=lambda c: c.n):
        out.append(f"[^{notes[citation.n]}]: {_footnote(citation, answer.language, texts)}")
    if answer.citations:
        out.append("")
    return out


def _sentence(line: Line, notes: dict[int, int], texts: dict[str, str]) -> str:
    markers = "".join(f"[^{notes[n]}]" for n in line.citations)
    if line.supported:
        return f"{escape(line.text)}{markers}"
    note = escape(unsupported_note(line, texts))
    return f"{WARNING_SIGN} *{escape(line.text)}*{markers} **({note})**"


def _footnote(citation: Citation, language: str, texts: dict[str, str]) -> str:
    """„quote“ — *Title*, date, `source`, p. 3, <url>."""
    title, date, source, *rest = source_parts(citation, texts)
    parts = [f"*{escape(title)}*", escape(date), code(source)]
    for part in rest:
        parts.append(link(part) if part == citation.url else escape(part))
    return f"{escape(quoted(one_line(citation.quote), language))} — {', '.join(parts)}"


def _unanswerable(answer: Answer, texts: dict[str, str]) -> list[str]:
    """Says the sources do not answer, then lists the passages that came nearest."""
    said = one_line(answer.text)
    out = [f"{WARNING_SIGN} {escape(said or texts['no_answer'])}", ""]
    if not answer.passages:
        return out
    out += [escape(texts["nearest"]), ""]
    for i, hit in enumerate(answer.passages, 1):
        title = one_line(hit.title or "") or texts["untitled"]
        where = [f"*{escape(title)}*", escape(hit.date or texts["undated"]), code(hit.source)]
        if hit.page is not None:
            where.append(escape(f"{texts['page']} {hit.page}"))
        excerpt = one_line(hit.text)
        if len(excerpt) > 300:
            excerpt = excerpt[:300].rsplit(" ", 1)[0] + " …"
        out.append(f"{i}. {', '.join(where)}: {escape(quoted(excerpt, answer.language))}")
    out.append("")
    return out
