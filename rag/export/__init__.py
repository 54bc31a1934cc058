"""Citation-backed exports of answers: Markdown, JSON, PDF, BibTeX and CSL-JSON.

    export_answers([answer], "markdown", ExportContext(embedder="...")).data

One answer or a whole conversation (several answers, in order) becomes one file. Saved
answer JSON (`rag ask --json`) converts too: `answers_from_json(json.load(f))`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag.answer.types import Answer
from rag.errors import ConfigError
from rag.export import bibliography, markdown, pdf
from rag.export.answer_json import (
    EXPORT_VERSION,
    SCHEMA_NAME,
    answer_from_json,
    answers_from_json,
    export_document,
    hit_from_json,
    schema_path,
)
from rag.export.render import ascii_slug
from rag.export.types import Export, ExportContext, parse_timestamp
from rag.vocabulary import ExportFormat

__all__ = [
    "EXPORT_VERSION",
    "FORMATS",
    "SCHEMA_NAME",
    "Export",
    "ExportContext",
    "answer_from_json",
    "answers_from_json",
    "export_answers",
    "hit_from_json",
    "schema_path",
]


@dataclass(frozen=True)
class _Format:
    label: str
    """The format's name as shown to people (the UI's menu)."""
    render: Callable[[Sequence[Answer], ExportContext], bytes]
    media_type: str
    extension: str
    suffix: str = ""
    """Added to the file name before the extension (bibliographies: "-sources")."""


def _utf8(render: Callable[[Sequence[Answer], ExportContext], str]) -> Any:
    return lambda answers, context: render(answers, context).encode("utf-8")


def _json(answers: Sequence[Answer], context: ExportContext) -> str:
    return json.dumps(export_document(answers, context), ensure_ascii=False, indent=2) + "\n"


FORMATS: Mapping[ExportFormat, _Format] = {
    "markdown": _Format("Markdown", _utf8(markdown.render), "text/markdown; charset=utf-8", "md"),
    "json": _Format("JSON", _utf8(_json), "application/json", "json"),
    "pdf": _Format("PDF", pdf.render, "application/pdf", "pdf"),
    "bibtex": _Format(
        "BibTeX",
        _utf8(lambda answers, _: bibliography.bibtex(answers)),
        "application/x-bibtex; charset=utf-8",
        "bib",
        "-sources",
    ),
    "csl": _Format(
        "CSL JSON",
        _utf8(lambda answers, _: bibliography.csl_json(answers)),
        "application/vnd.citationstyles.csl+json",
        "csl.json",
        "-sources",
    ),
}
"""Export format (`rag.vocabulary.ExportFormat`) -> label, writer, media type, extension."""

_ALIASES = {"md": "markdown", "bib": "bibtex", "csl-json": "csl", "csljson": "csl"}


def export_answers(
    answers: Sequence[Answer | Mapping[str, Any]], fmt: str, context: ExportContext | None = None
) -> Export:
    """Export one answer or a conversation (answers in order) as `fmt`: markdown, json, pdf,
    bibtex (the cited documents) or csl (CSL-JSON of the cited documents).

    Items may be `Answer`s or their JSON (`Answer.to_json()`); a malformed one, an unknown
    format or an empty list is a `ConfigError`.
    """
    name = _ALIASES.get(fmt.strip().lower(), fmt.strip().lower())
    spec = FORMATS.get(name)
    if spec is None:
        raise ConfigError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    if isinstance(answers, (Answer, Mapping)):
        answers = [answers]  # type: ignore[list-item]
    items = [
        a if isinstance(a, Answer) else answer_from_json(a, where=f"answers[{i}]")
        for i, a in enumerate(answers)
    ]
    if not items:
        raise ConfigError("nothing to export: give at least one answer")
    context = context or ExportContext()
    parse_timestamp(context.created_at)
    return Export(spec.render(items, context), spec.media_type, _filename(items, spec, context))


def _filename(answers: Sequence[Answer], spec: _Format, context: ExportContext) -> str:
    """newsrag-<question slug>[-sources].<ext>, or newsrag-conversation-<date>… for several."""
    if len(answers) == 1:
        stem = ascii_slug(answers[0].question, 50) or "answer"
    else:
        stem = f"conversation-{parse_timestamp(context.created_at):%Y%m%d-%H%M%S}"
    return f"newsrag-{stem}{spec.suffix}.{spec.extension}"
