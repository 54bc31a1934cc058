"""Frozen value types that flow through the pipeline: documents, chunks, hits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index import PassageEvidence


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
class Filters:
    """Restrict a search to documents by date (ISO, partial allowed), source or language."""

    date_from: str | None = None
    date_to: str | None = None
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()

    def active(self) -> bool:
        return bool(self.date_from or self.date_to or self.sources or self.languages)

    def to_json(self) -> dict[str, Any]:
        return {
            "date_from": self.date_from,
            "date_to": self.date_to,
            "sources": list(self.sources),
            "languages": list(self.languages),
        }


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
    url: str | None = None
    """The document's URL, when it has one (JSONL `url`, an HTML page's canonical URL)."""
    evidence: PassageEvidence | None = field(default=None, compare=False, repr=False)
    """The passage's stored vector and sentences, when the search read them (internal)."""
    date_source: str | None = None
    """"inferred" when `date` was read from the article's text, not its metadata."""

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
            "date_source": self.date_source,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "duplicates": [d.to_json() for d in self.duplicates],
        }
