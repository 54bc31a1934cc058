"""Value types written to and read from an index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk of a document to store, with its embedding (shape (dim,), float32)."""

    chunk_id: str
    ordinal: int
    start: int
    end: int
    text: str
    vector: np.ndarray = field(repr=False, compare=False)
    page: int | None = None
    terms: Sequence[str] | None = field(default=None, repr=False, compare=False)
    """Analysed keyword terms (None: the chunk is not keyword-searchable)."""
    sentences: Sequence[tuple[int, int]] = field(default=(), repr=False, compare=False)
    """(start, end) of each sentence of the chunk, as offsets into the document text."""
    sentence_vectors: np.ndarray | None = field(default=None, repr=False, compare=False)
    """(len(sentences), dim) float32, L2-normalized; None: no sentence vectors."""


@dataclass(frozen=True)
class DocumentRecord:
    """One document to store, with all its chunks. `content_hash` decides whether it changed."""

    doc_id: str
    source: str
    text: str
    content_hash: str
    title: str | None = None
    date: str | None = None
    language: str | None = None
    url: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    chunks: tuple[ChunkRecord, ...] = ()


@dataclass(frozen=True)
class StoredChunk:
    """A chunk joined with its document's metadata, as search returns it.

    `row_id` is the chunk's int64 id in the vector index (what `Index.search` returns).
    """

    chunk_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    page: int | None
    text: str
    source: str
    title: str | None
    date: str | None
    language: str | None
    url: str | None
    row_id: int
    date_source: str | None = None
    """"inferred" when the date was read from the text (see `rag.ingest.dates`); None when it
    came from the document's metadata (or there is no date)."""
    signature: bytes | None = field(default=None, repr=False, compare=False)
    """Near-duplicate signature of the text (`index.signatures`); None when not stored."""


@dataclass(frozen=True)
class WriteResult:
    """What one `Index.write` did. `unchanged` documents had the same content hash: no work."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0


@dataclass(frozen=True)
class PassageEvidence:
    """What reranking and quoting need of a stored chunk: its vector and its sentences.

    `sentence_spans` are (start, end) offsets into the document text; `sentence_vectors` is
    (n, dim) float32, or None when the chunk was stored without sentence vectors.
    """

    row_id: int
    vector: np.ndarray = field(repr=False)
    sentence_spans: tuple[tuple[int, int], ...]
    sentence_vectors: np.ndarray | None = field(repr=False)
