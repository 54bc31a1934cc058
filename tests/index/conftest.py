"""Fixtures for the index tests: a small spec and deterministic fake vectors (no model)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from index import ChunkRecord, DocumentRecord, Index, IndexSpec

DIM = 16


def fake_vector(text: str, dim: int = DIM) -> np.ndarray:
    """A unit vector seeded by the text's hash: same text, same vector."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def make_doc(
    doc_id: str,
    texts: list[str],
    *,
    source: str = "archive/a.txt",
    date: str | None = "2022-06-15",
    language: str | None = "de",
    version: str = "v1",
    dim: int = DIM,
) -> DocumentRecord:
    """A document whose chunks are `texts`; `version` changes the content hash."""
    body = " ".join(texts)
    chunks = []
    offset = 0
    for ordinal, text in enumerate(texts):
        chunks.append(
            ChunkRecord(
                chunk_id=f"{doc_id}#{ordinal}",
                ordinal=ordinal,
                start=offset,
                end=offset + len(text),
                text=text,
                vector=fake_vector(text, dim),
            )
        )
        offset += len(text) + 1
    content_hash = hashlib.sha256(f"{version}:{body}".encode()).hexdigest()
    return DocumentRecord(
        doc_id=doc_id,
        source=source,
        text=body,
        content_hash=content_hash,
        title=f"Title {doc_id}",
        date=date,
        language=language,
        url=f"https://example.org/{doc_id}",
        metadata={"section": "politik"},
        chunks=tuple(chunks),
    )


@pytest.fixture
def spec() -> IndexSpec:
    return IndexSpec(
        embedder_id="fake-hash-16",
        dim=DIM,
        prompts={"query": "query: ", "passage": "passage: "},
        chunking={"max_tokens": 200, "overlap_sentences": 1},
    )


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "idx"


@pytest.fixture
def new_index(index_dir: Path, spec: IndexSpec) -> Iterator[Callable[[], Index]]:
    """Open (creating) the index at `index_dir`; closes what it opened at teardown."""
    opened: list[Index] = []

    def _open() -> Index:
        ix = Index.open(index_dir, spec, create=True, lock_timeout=2.0)
        opened.append(ix)
        return ix

    yield _open
    for ix in opened:
        ix.close()


@pytest.fixture
def vec() -> Callable[[str], np.ndarray]:
    return fake_vector


@pytest.fixture
def doc() -> Callable[..., DocumentRecord]:
    return make_doc
