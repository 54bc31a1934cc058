"""The Qdrant index backend (`pip install "newsrag[qdrant]"`): `QdrantIndex` implements
`index.backend.IndexBackend` on one Qdrant collection, on a server or cluster, in
qdrant-client's local mode, or in qdrant-edge. Imported only when `index.backend = "qdrant"`."""

from __future__ import annotations

from .backend import FORMAT_VERSION, QdrantIndex
from .store import DEFAULT_COLLECTION, Location, parse_location

__all__ = ["DEFAULT_COLLECTION", "FORMAT_VERSION", "Location", "QdrantIndex", "parse_location"]
