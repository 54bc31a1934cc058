"""The words the interfaces share: retrieval modes, answer modes, export formats, dates.

Each vocabulary is one `Literal` alias; the CLI's choices, the HTTP schema, the UI's menus, the
settings and the Engine's checks all derive from these, so a new mode is added in one place.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

RetrievalMode = Literal["dense", "keyword", "hybrid"]
"""dense = vectors only; keyword = BM25 over analysed terms; hybrid = both, fused."""

AnswerMode = Literal["reader", "quote", "generate"]
"""reader = a language model finds the answering phrase, the answer quotes the sentence that
holds it; quote = verbatim source sentences (no model); generate = a language model writes."""

ExportFormat = Literal["markdown", "json", "pdf", "bibtex", "csl"]
"""Export file formats (bibtex and csl hold the cited documents)."""

RETRIEVAL_MODES: tuple[RetrievalMode, ...] = get_args(RetrievalMode)
ANSWER_MODES: tuple[AnswerMode, ...] = get_args(AnswerMode)
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)

DATE_PATTERN = r"^\d{4}(-\d{2}(-\d{2})?)?$"
"""A filter date: YYYY, YYYY-MM or YYYY-MM-DD."""
DATE_RE = re.compile(DATE_PATTERN)
