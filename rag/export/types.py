"""What an export is made of: the file it produces and the index/model context it records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rag.errors import ConfigError


def utc_now() -> str:
    """The current time as an ISO 8601 UTC timestamp with second precision, e.g.
    "2024-05-01T12:00:00Z"."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_timestamp(created_at: str) -> datetime:
    """`created_at` as an aware datetime (UTC when it names no zone)."""
    try:
        moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise ConfigError(
            f"created_at {created_at!r} is not an ISO 8601 timestamp; use e.g. "
            '"2024-05-01T12:00:00Z" (or leave it out for the current time)'
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class ExportContext:
    """Where answers came from: recorded in JSON exports so a reader can check them later.

    `index_manifest_sha256` is the SHA-256 of the index's manifest when the answers were made,
    `embedder` the embedding model id, `index_path` the index directory.
    """

    index_manifest_sha256: str | None = None
    embedder: str | None = None
    created_at: str = field(default_factory=utc_now)
    index_path: str | None = None

    @classmethod
    def of_index(cls, path: Path, embedder: str) -> ExportContext:
        """The context of answers made now from the index at `path` with `embedder`."""
        manifest = Path(path) / "manifest.json"
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.exists() else None
        return cls(index_manifest_sha256=digest, embedder=embedder, index_path=str(path))


@dataclass(frozen=True)
class Export:
    """One exported file: its bytes, media type and a safe ASCII default file name."""

    data: bytes
    media_type: str
    filename: str
