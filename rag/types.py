"""Frozen value types that flow through the pipeline: documents, chunks, hits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One article as ingested: its body text and metadata.

    `text` is the body only (a ` date YYYY-MM` header or HTML markup is not part of it); every
    chunk's `start`/`end` are offsets into this string. `date` is ISO-like and may be partial:
    "2022", "2022-06" or "2022-06-01". `pages` holds, for PDFs, (page_number, start, end) spans
    of `text`.
    """

    doc_id: str
    text: str
    source: str
    title: str | None = None
    date: str | None = None
    language: str | None = None
    url: str | None = None
    pages: tuple[tuple[int, int, int], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Passage:
    """A span of a document's text, produced by the chunker."""

    text: str
    start: int
    end: int
    page: int | None = None


@dataclass(frozen=True)
class DuplicateSource:
    """Another document carrying (nearly) the same passage as a hit: the same wire story."""

    doc_id: str
    source: str
    title: str | None
    date: str | None
    chunk_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "date": self.date,
        }


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk with its document's metadata and the score."""

    rank: int
    score: float
    chunk_id: str
    doc_id: str
    source: str
    title: str | None
    date: str | None
    text: str
    start: int
    end: int
    page: int | None = None
    language: str | None = None
    duplicates: tuple[DuplicateSource, ...] = ()
    row_id: int = field(default=-1, compare=False)
    """The chunk's row in this index (internal; not part of the JSON shape)."""

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape of a hit (CLI `--json` and HTTP API)."""
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "date": self.date,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "duplicates": [d.to_json() for d in self.duplicates],
        }
