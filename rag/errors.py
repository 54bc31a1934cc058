"""Re-export of the error hierarchy (defined in `index.errors` so `index` stays standalone)."""

from index.errors import (
    ConfigError,
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
    "IndexCorruptError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IngestError",
    "ModelError",
    "RagError",
]
