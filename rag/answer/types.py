"""Typed answers: sentences with their citation numbers and support verdicts, citations as data.

`Answer.to_json()` is the public JSON shape of `rag ask --json` and `POST /api/ask`:

    {"question", "answer", "answerable", "mode", "model", "language",
     "sentences": [{"text", "citations": [n], "supported", "problems": [str],
                    "repaired_from": [n]}],
     "citations": [{"n", "chunk_id", "doc_id", "source", "title", "date", "quote", "start",
                    "end", "passage", "passage_start", "page", "url"}],
     "passages": [hit...], "retrieval": {...}, "standalone_question"}

A citation's `quote` is the exact span `text[start:end]` of its document (offsets into the
document body); `passage` is the whole retrieved passage it came from, starting at
`passage_start`, so a UI can highlight the quote inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag.types import Hit

SCHEMA_VERSION = 1
"""Version of the answer JSON shape (bumped on any incompatible change)."""


@dataclass(frozen=True)
class Citation:
    """Citation number `n` of an answer: one exact span of one document."""

    n: int
    chunk_id: str
    doc_id: str
    source: str
    title: str | None
    date: str | None
    quote: str
    start: int
    end: int
    passage: str
    passage_start: int
    page: int | None = None
    url: str | None = None
    date_source: str | None = None
    """"inferred" when `date` was read from the article's text, not its metadata."""

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "date": self.date,
            "quote": self.quote,
            "start": self.start,
            "end": self.end,
            "passage": self.passage,
            "passage_start": self.passage_start,
            "page": self.page,
            "url": self.url,
            "date_source": self.date_source,
        }


@dataclass(frozen=True)
class Phrase:
    """The short answer a reader found: `text` exactly as it stands in citation `n`'s
    document, at `start`..`end` (offsets into the document body, inside the quoted sentence)."""

    text: str
    n: int
    start: int
    end: int

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "n": self.n, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer. `supported` is the support check's verdict; `problems` say
    why a sentence is not supported (a number missing from its sources, no citation, ...)."""

    text: str
    citations: tuple[int, ...]
    supported: bool
    problems: tuple[str, ...] = ()
    similarity: float | None = None
    repaired_from: tuple[int, ...] = ()
    """The numbers the model cited, when they did not support the sentence and `citations`
    (another retrieved passage, which does) replaced them; empty when nothing was repaired."""

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": list(self.citations),
            "supported": self.supported,
            "problems": list(self.problems),
            "repaired_from": list(self.repaired_from),
        }


@dataclass(frozen=True)
class Answer:
    """An answer to one question, with everything needed to check it."""

    question: str
    text: str
    answerable: bool
    mode: str
    sentences: tuple[AnswerSentence, ...]
    citations: tuple[Citation, ...]
    passages: tuple[Hit, ...] = ()
    model: str | None = None
    language: str = "de"
    standalone_question: str | None = None
    retrieval: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    evidence: float | None = None
    phrase: Phrase | None = None
    """Reader answers: the answering phrase the model found, where it stands in the sources."""

    @property
    def supported(self) -> bool:
        """True when every sentence passed the support check."""
        return all(s.supported for s in self.sentences)

    def citation(self, n: int) -> Citation | None:
        return next((c for c in self.citations if c.n == n), None)

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape (see the module docstring)."""
        return {
            "question": self.question,
            "answer": self.text,
            "answerable": self.answerable,
            "mode": self.mode,
            "model": self.model,
            "language": self.language,
            "sentences": [s.to_json() for s in self.sentences],
            "citations": [c.to_json() for c in self.citations],
            "passages": [h.to_json() for h in self.passages],
            "retrieval": dict(self.retrieval),
            "standalone_question": self.standalone_question,
            "phrase": self.phrase.to_json() if self.phrase is not None else None,
        }


@dataclass(frozen=True)
class AnswerDelta:
    """A piece of answer text while it streams; the last event of a stream is the `Answer`."""

    text: str


@dataclass(frozen=True)
class Turn:
    """One earlier turn of a conversation (for rewriting follow-up questions)."""

    question: str
    answer: str = ""
