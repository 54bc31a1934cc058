"""The on-disk index: a chunk store (SQLite), exact vector search (FAISS) and a manifest.

`Index.open(path, spec)` is the entry point; see `index.directory` for the crash-safety design.
"""

from __future__ import annotations

from .backend import IndexBackend
from .directory import Index
from .manifest import FORMAT_VERSION, IndexSpec, check_compatible
from .records import ChunkRecord, DocumentRecord, PassageEvidence, StoredChunk, WriteResult
from .vectors import FaissFlatIndex, VectorIndex

__all__ = [
    "FORMAT_VERSION",
    "ChunkRecord",
    "DocumentRecord",
    "FaissFlatIndex",
    "Index",
    "IndexBackend",
    "IndexSpec",
    "PassageEvidence",
    "StoredChunk",
    "VectorIndex",
    "WriteResult",
    "check_compatible",
]
