"""What reading one file yields: its documents and the problems that kept parts of it out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag.types import Document


@dataclass(frozen=True)
class IngestProblem:
    """A file (or one JSONL line) that could not be read; `message` says why and what to do."""

    source: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class FileBatch:
    """The documents read from one file, and its problems (empty when all went well)."""

    source: str
    path: Path
    documents: tuple[Document, ...]
    problems: tuple[IngestProblem, ...]
