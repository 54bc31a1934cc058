"""`PointStore`: the few operations the Qdrant backend needs of a collection, so that one
backend runs on qdrant-client (a server or cluster, or the client's local mode) and on
qdrant-edge (the engine embedded in-process), each a thin adapter.

A location names the store: `qdrant://HOST:PORT[/COLLECTION]` (`qdrants://` for TLS),
`http(s)://HOST:PORT[/COLLECTION]`, `:memory:`, `edge:PATH`, or a directory for qdrant-client's
local mode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import numpy as np

from ..errors import IndexUsageError
from .points import Where

DEFAULT_COLLECTION = "newsrag"
_SCHEMES = {"qdrant": "http", "qdrants": "https", "http": "http", "https": "https"}


@dataclass(frozen=True)
class Location:
    """Where a collection lives. kind: server (url), memory, path (qdrant-client's local
    mode on disk) or edge (qdrant-edge shard directory)."""

    kind: Literal["server", "memory", "path", "edge"]
    target: str
    collection: str

    def __str__(self) -> str:
        if self.kind == "server":
            return f"{self.target}/{self.collection}"
        if self.kind == "memory":
            return f":memory:/{self.collection}"
        if self.kind == "edge":
            return f"edge:{self.target}"
        return self.target


def parse_location(text: str | Path, collection: str | None = None) -> Location:
    """A location string as a `Location`; the collection in a URL's path wins over
    `collection` (default "newsrag")."""
    raw = str(text).strip()
    name = collection or DEFAULT_COLLECTION
    if not raw:
        raise IndexUsageError(
            "the Qdrant location is empty; give qdrant://HOST:PORT[/COLLECTION], :memory:, "
            "edge:PATH or a directory"
        )
    if raw == ":memory:":
        return Location("memory", raw, name)
    if raw.startswith("edge:"):
        return Location("edge", str(Path(raw[5:]).expanduser()), name)
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme:
        if scheme not in _SCHEMES:
            raise IndexUsageError(
                f"unknown Qdrant URL scheme {scheme!r} in {raw!r}; use qdrant://HOST:PORT "
                f"(qdrants:// for TLS), http(s)://HOST:PORT, :memory:, edge:PATH or a directory"
            )
        parts = urlsplit(raw)
        if not parts.hostname:
            raise IndexUsageError(
                f"the Qdrant URL {raw!r} names no host; e.g. qdrant://localhost:6333"
            )
        path = parts.path.strip("/")
        if "/" in path:
            raise IndexUsageError(
                f"the Qdrant URL {raw!r} has a path {parts.path!r}; only a collection name may "
                f"follow the port (qdrant://HOST:PORT/COLLECTION)"
            )
        port = parts.port or 6333
        url = f"{_SCHEMES[scheme]}://{parts.hostname}:{port}"
        return Location("server", url, path or name)
    return Location("path", str(Path(raw).expanduser()), name)


@dataclass(frozen=True)
class CollectionOptions:
    """How a new collection is laid out (ignored when it exists)."""

    dim: int
    shards: int = 1
    replicas: int = 1
    quantization: Literal["none", "int8"] = "none"


@dataclass(frozen=True)
class PointData:
    """One point to upsert: payload and whichever vectors it has."""

    id: int
    payload: dict[str, Any]
    dense: np.ndarray | None = field(default=None, repr=False)
    sentences: np.ndarray | None = field(default=None, repr=False)
    sparse: tuple[list[int], list[float]] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Fetched:
    """A point read back: its payload (the fields asked for) and vectors (those asked for)."""

    id: int
    payload: dict[str, Any]
    vectors: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Search:
    """One nearest-neighbour search: dense (a vector), keywords (indices, values) or
    sentences (a multivector), best `limit` points matching `where`."""

    using: str
    vector: Any
    limit: int
    where: Where


class PointStore(Protocol):
    location: Location

    def exists(self) -> bool:
        """True when the collection exists."""
        ...

    def create(self, options: CollectionOptions) -> None:
        """Create the collection: named vectors, sparse IDF, payload indexes."""
        ...

    def dense_dim(self) -> int | None:
        """The dense vectors' size of the existing collection (None: it has none)."""
        ...

    def upsert(self, points: Sequence[PointData]) -> None: ...

    def set_payloads(self, updates: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Merge these fields into each point's payload."""
        ...

    def delete_ids(self, ids: Sequence[int]) -> None: ...

    def delete_where(self, where: Where) -> None: ...

    def set_sparse(self, items: Sequence[tuple[int, tuple[list[int], list[float]]]]) -> None:
        """Replace each point's keyword vector (an empty one removes it)."""
        ...

    def retrieve(
        self, ids: Sequence[int], payload: Sequence[str] | bool, vectors: Sequence[str] = ()
    ) -> list[Fetched]:
        """The points with these ids that exist (any order)."""
        ...

    def scroll(self, where: Where, payload: Sequence[str] | bool) -> Iterator[Fetched]: ...

    def count(self, where: Where) -> int: ...

    def query(self, searches: Sequence[Search]) -> list[list[tuple[int, float]]]:
        """Per search, (point id, score) best first."""
        ...

    def close(self) -> None: ...


def grouped(
    updates: Sequence[tuple[int, dict[str, Any]]],
) -> list[tuple[list[int], dict[str, Any]]]:
    """Payload updates with the same fields as one update of several points (marking a whole
    write's documents pending is one operation)."""
    groups: dict[str, tuple[list[int], dict[str, Any]]] = {}
    for point, payload in updates:
        key = json.dumps(payload, sort_keys=True, default=str)
        groups.setdefault(key, ([], payload))[0].append(int(point))
    return list(groups.values())
