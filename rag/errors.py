"""Re-export of the error hierarchy (defined in `index.errors` so `index` stays standalone)."""

from index.errors import (
    ConfigError,
    GeneratorError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    IngestError,
    ModelError,
    RagError,
)

__all__ = [
    "ConfigError",
    "GeneratorError",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IngestError",
    "ModelError",
    "RagError",
]
