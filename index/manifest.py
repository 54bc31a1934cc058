"""The index's manifest (`manifest.json`): what shaped the index, and which FAISS file matches it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import atomic
from .errors import IndexCorruptError, IndexMismatchError, IndexUsageError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
VECTORS_NAME = "vectors.faiss"


@dataclass(frozen=True)
class IndexSpec:
    """Everything that shapes an index; checked against the manifest on open."""

    embedder_id: str
    dim: int
    normalized: bool = True
    prompts: Mapping[str, str] = field(default_factory=dict)
    chunking: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.embedder_id, str) or not self.embedder_id.strip():
            raise IndexUsageError(
                f"IndexSpec.embedder_id must be a non-empty string, got {self.embedder_id!r}"
            )
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise IndexUsageError(f"IndexSpec.dim must be a positive integer, got {self.dim!r}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.prompts.items()):
            raise IndexUsageError(
                f"IndexSpec.prompts must map str to str, got {dict(self.prompts)!r}"
            )
        try:
            chunking = _canonical(self.chunking)
        except (TypeError, ValueError) as exc:
            raise IndexUsageError(
                f"IndexSpec.chunking must be JSON-serialisable (str, int, float, bool, lists, "
                f"dicts), got {dict(self.chunking)!r}: {exc}"
            ) from exc
        # Own copies, in their stored form, so equality matches what the manifest compares.
        object.__setattr__(self, "prompts", dict(sorted(self.prompts.items())))
        object.__setattr__(self, "chunking", chunking)

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON data (embedder part and chunking part, as in the manifest)."""
        return {
            "embedder": {
                "id": self.embedder_id,
                "dim": self.dim,
                "normalized": self.normalized,
                "prompts": dict(self.prompts),
            },
            "chunking": _canonical(self.chunking),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IndexSpec:
        """Inverse of `to_json`; raises IndexCorruptError on a malformed record."""
        try:
            embedder = data["embedder"]
            return cls(
                embedder_id=embedder["id"],
                dim=int(embedder["dim"]),
                normalized=bool(embedder["normalized"]),
                prompts=dict(embedder.get("prompts", {})),
                chunking=dict(data.get("chunking", {})),
            )
        except (KeyError, TypeError, ValueError, IndexUsageError) as exc:
            raise IndexCorruptError(f"the index's recorded spec is malformed ({exc})") from exc


def _canonical(value: Mapping[str, Any]) -> dict[str, Any]:
    """JSON round trip, so tuples and lists (and key order) compare equal."""
    canonical: dict[str, Any] = json.loads(json.dumps(dict(value), sort_keys=True, allow_nan=False))
    return canonical


def spec_differences(stored: IndexSpec, requested: IndexSpec) -> list[tuple[str, Any, Any]]:
    """(field, index's value, requested value) for every field that differs."""
    pairs: list[tuple[str, Any, Any]] = [
        ("embedding model", stored.embedder_id, requested.embedder_id),
        ("dimension", stored.dim, requested.dim),
        ("normalized", stored.normalized, requested.normalized),
        ("prompts", dict(stored.prompts), dict(requested.prompts)),
        ("chunking", _canonical(stored.chunking), _canonical(requested.chunking)),
    ]
    return [(name, a, b) for name, a, b in pairs if a != b]


def check_spec(path: Path, stored: IndexSpec, requested: IndexSpec) -> None:
    """Raise IndexMismatchError naming both values of every differing field and the fix."""
    diffs = spec_differences(stored, requested)
    if not diffs:
        return
    lines = "; ".join(
        f"{name}: index has {a!r}, settings ask for {b!r}{_keys_differing(a, b)}"
        for name, a, b in diffs
    )
    raise IndexMismatchError(
        f"The index at {path} was built with other settings ({lines}). Vectors from different "
        f"settings cannot be mixed: re-index into a new directory (--index NEW_DIR) or set the "
        f"embedding model back to {stored.embedder_id!r}"
        + ("" if all(n in _EMBEDDER_FIELDS for n, _, _ in diffs) else " and the other settings")
        + " to match the index."
    )


def check_compatible(
    path: Path,
    stored: IndexSpec,
    *,
    embedder_id: str,
    chunking: Mapping[str, Any],
    dim: int | None = None,
) -> None:
    """`check_spec` before the embedding model is loaded: the stored spec against the
    embedder id and chunking the settings name (and the dimension, once it is known)."""
    requested = IndexSpec(
        embedder_id=embedder_id,
        dim=stored.dim if dim is None else dim,
        normalized=stored.normalized,
        prompts=stored.prompts,
        chunking=chunking,
    )
    check_spec(path, stored, requested)


def _keys_differing(a: Any, b: Any) -> str:
    """For two dicts: " (key: index X vs settings Y, ...)" naming only the keys that differ."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return ""
    keys = sorted(k for k in {*a, *b} if a.get(k) != b.get(k))
    return " (" + ", ".join(f"{k}: index {a.get(k)!r} vs settings {b.get(k)!r}" for k in keys) + ")"


_EMBEDDER_FIELDS = frozenset({"embedding model", "dimension", "normalized", "prompts"})


def now_iso() -> str:
    """Current UTC time, ISO 8601, second precision."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Manifest:
    """The parsed `manifest.json`."""

    spec: IndexSpec
    documents: int
    chunks: int
    generation: int
    vectors_sha256: str | None
    created_at: str
    updated_at: str
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        spec = self.spec.to_json()
        return {
            "format_version": self.format_version,
            "embedder": spec["embedder"],
            "chunking": spec["chunking"],
            "counts": {"documents": self.documents, "chunks": self.chunks},
            "generation": self.generation,
            "checksums": {VECTORS_NAME: self.vectors_sha256},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def read_format_version(data: Mapping[str, Any], path: Path) -> int:
    """The manifest's format version; raises IndexMismatchError if newer than this code reads."""
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise IndexCorruptError(
            f"{path / MANIFEST_NAME} has no valid format_version (got {version!r}); the index "
            f"directory is damaged: re-index into a new directory"
        )
    if version > FORMAT_VERSION:
        raise IndexMismatchError(
            f"The index at {path} was written by a newer version (format {version}, this one "
            f"reads {FORMAT_VERSION}); upgrade newsrag"
        )
    return version


def load_json(path: Path) -> dict[str, Any] | None:
    """The manifest's raw JSON, or None if the file does not exist. Unparsable -> IndexCorruptError."""
    file = path / MANIFEST_NAME
    try:
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise IndexCorruptError(f"{file} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise IndexCorruptError(f"{file} does not hold a JSON object")
    return data


def parse(data: Mapping[str, Any], path: Path) -> Manifest:
    """A Manifest from raw JSON already checked by `read_format_version`."""
    try:
        counts = data["counts"]
        checksum = data.get("checksums", {}).get(VECTORS_NAME)
        return Manifest(
            spec=IndexSpec.from_json(data),
            documents=int(counts["documents"]),
            chunks=int(counts["chunks"]),
            generation=int(data["generation"]),
            vectors_sha256=checksum if isinstance(checksum, str) else None,
            created_at=str(data.get("created_at", "")),
            updated_at=str(data.get("updated_at", "")),
            format_version=int(data["format_version"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IndexCorruptError(f"{path / MANIFEST_NAME} is malformed (missing {exc})") from exc


def write(path: Path, manifest: Manifest) -> None:
    """Atomically write `manifest.json` (always the last file of a write)."""
    atomic.write_json(path / MANIFEST_NAME, manifest.to_json())
