"""The index's own errors. `index` imports nothing else of the project, so these do not derive
from `rag.errors.RagError`; `rag.errors` re-exports them and `rag.errors.PROJECT_ERRORS` names
both bases for the places (CLI, HTTP API, UI) that turn any project error into a message."""

from __future__ import annotations


class IndexStoreError(Exception):
    """Base of every error the index raises on purpose. The message says what to do."""


class IndexUsageError(IndexStoreError):
    """A bad argument or record was handed to the index (a date filter, a vector, a path)."""


class IndexNotFoundError(IndexUsageError):
    """There is no index at the given path (and creating one was not asked for)."""


class IndexMismatchError(IndexStoreError):
    """The index on disk was built with other parameters (embedder, dimension, format)."""


class IndexCorruptError(IndexStoreError):
    """The index directory is damaged beyond what can be repaired automatically."""


class IndexLockedError(IndexStoreError):
    """Another process is writing to the index."""
