"""The project's one error hierarchy. Lives in `index` because `index` imports nothing else
of the project; `rag.errors` re-exports it."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the project raises on purpose. The message says what to do."""


class ConfigError(RagError):
    """A setting or argument is invalid."""


class IndexNotFoundError(ConfigError):
    """There is no index at the given path (and creating one was not asked for)."""


class IndexMismatchError(RagError):
    """The index on disk was built with other parameters (embedder, dimension, format)."""


class IndexCorruptError(RagError):
    """The index directory is damaged beyond what can be repaired automatically."""


class IndexLockedError(RagError):
    """Another process is writing to the index."""


class IngestError(RagError):
    """A document could not be read or parsed."""


class ModelError(RagError):
    """A model could not be built or loaded."""


class GeneratorError(RagError):
    """The configured language model could not be reached or gave an unusable response."""
