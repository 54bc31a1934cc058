"""The project's error hierarchy: `RagError` and its subclasses for the pipeline, plus the
index's own errors (re-exported from `index.errors`, which cannot import this module).

Code that turns any project error into a message (the CLI's one line, the HTTP API's JSON
error, the UI's status) catches `PROJECT_ERRORS`.
"""

from __future__ import annotations

from index.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexStoreError,
    IndexUsageError,
)


class RagError(Exception):
    """Base of every error the pipeline raises on purpose. The message says what to do."""


class ConfigError(RagError):
    """A setting or argument is invalid."""


class IngestError(RagError):
    """A document could not be read or parsed."""


class ModelError(RagError):
    """A model could not be built or loaded."""


class GeneratorError(RagError):
    """The configured language model could not be reached or gave an unusable response."""


PROJECT_ERRORS: tuple[type[Exception], ...] = (RagError, IndexStoreError)
"""Every error the project raises on purpose, pipeline and index."""

__all__ = [
    "PROJECT_ERRORS",
    "ConfigError",
    "GeneratorError",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexStoreError",
    "IndexUsageError",
    "IngestError",
    "ModelError",
    "RagError",
]
