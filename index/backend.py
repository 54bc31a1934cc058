"""The one interface through which the pipeline reaches an index: `IndexBackend`.

Today's implementation is `index.directory.Index` (SQLite chunk store + FAISS vectors in one
directory). Another backend (a vector database, say) implements the same methods and passes
the conformance tests in `tests/index/conformance.py`, which every backend's test class
inherits.

Row ids are the backend's own integer ids of passages; they are only meaningful within one
open backend and are never part of the public JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .manifest import IndexSpec
from .records import DocumentRecord, PassageEvidence, StoredChunk, WriteResult

Ranked = list[list[tuple[int, float]]]
"""Per query: (row id, score) pairs, best first."""


@runtime_checkable
class IndexBackend(Protocol):
    """Documents, passages, their vectors and keyword terms, filters and atomic commits."""

    spec: IndexSpec
    """What shaped the index (embedder, dimension, chunking); checked when it is opened."""

    # -- documents --------------------------------------------------------------------------
    def content_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """doc_id -> stored content hash, for the given ids that are in the index."""
        ...

    def doc_ids_for_sources(self, sources: Iterable[str]) -> dict[str, list[str]]:
        """source -> doc ids stored from it, for every source asked about (empty list if none)."""
        ...

    def documents(self) -> list[dict[str, Any]]:
        """Every document: doc_id, source, title, date, language, n_chunks (by doc_id)."""
        ...

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """One document with its text, metadata and url; None when unknown."""
        ...

    # -- passages and evidence --------------------------------------------------------------
    def chunks(self, row_ids: Sequence[int]) -> list[StoredChunk]:
        """The passages with these row ids, in order; ids no longer stored are skipped."""
        ...

    def passage_texts(self, row_ids: Sequence[int]) -> dict[int, tuple[str, bytes | None]]:
        """row id -> (text, near-duplicate signature) of each passage (unknown ids skipped):
        what reranking and dedupe read of many candidates, without the document's metadata
        that `chunks` joins in for the few hits shown."""
        ...

    def evidence(self, row_ids: Sequence[int]) -> dict[int, PassageEvidence]:
        """Passage vector and sentence spans/vectors of each passage (unknown ids skipped)."""
        ...

    # -- search -----------------------------------------------------------------------------
    def search(self, vectors: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> Ranked:
        """Per query vector, up to k (row id, inner product) pairs, best first; `allowed`
        restricts to those row ids inside the search (k hits whenever k allowed exist)."""
        ...

    def keyword_search(
        self, terms: Sequence[Sequence[str]], k: int, *, allowed: np.ndarray | None = None
    ) -> Ranked:
        """Per query (analysed terms, any may match), up to k (row id, BM25) pairs, best first."""
        ...

    def chunk_row_ids(
        self,
        *,
        date_from: str | None = None,
        date_to: str | None = None,
        sources: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Row ids (int64, ascending) of passages whose document matches every given filter;
        partial dates ("2022-06") cover their whole period; undated documents never match a
        date filter. A malformed date is an `IndexUsageError` that names it."""
        ...

    def keyword_analyzer(self) -> str | None:
        """Id of the analyzer that made the stored keyword terms."""
        ...

    def reanalyze_keywords(
        self,
        analyzer_id: str,
        analyze: Callable[[Sequence[tuple[str, str | None]]], list[Sequence[str]]],
    ) -> int:
        """Re-make every passage's keyword terms in one commit; returns how many."""
        ...

    # -- writing ----------------------------------------------------------------------------
    def write(
        self, upserts: Sequence[DocumentRecord] = (), removals: Iterable[str] = ()
    ) -> WriteResult:
        """Add, replace and remove documents in one atomic commit: after a crash at any
        point, readers see all of it or none of it. Unchanged content hashes cost nothing."""
        ...

    def info(self) -> dict[str, Any]:
        """A summary: path, format_version, spec, counts, generation, sizes, times."""
        ...

    def close(self) -> None: ...
