"""The local index (SQLite + FAISS in one directory) against the `IndexBackend` conformance
suite that every backend inherits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from index import Index, IndexSpec

from .conformance import IndexConformance, Open


class TestLocalIndex(IndexConformance):
    @pytest.fixture
    def backend(self, tmp_path: Path, spec: IndexSpec) -> Iterator[Open]:
        opened: list[Index] = []

        def _open() -> Index:
            ix = Index.open(tmp_path / "idx", spec, create=True, lock_timeout=2.0)
            opened.append(ix)
            return ix

        yield _open
        for ix in opened:
            ix.close()


class TestQdrantIndex(IndexConformance):
    """qdrant-client's local mode on disk (what haystack's Qdrant store is tested on): the
    same collection layout, filters and queries a Qdrant server runs."""

    @pytest.fixture
    def backend(self, tmp_path: Path, spec: IndexSpec) -> Iterator[Open]:
        from index.qdrant import QdrantIndex

        opened: list[QdrantIndex] = []

        def _open() -> QdrantIndex:
            for ix in opened:
                ix.close()  # local mode: one client per directory at a time
            ix = QdrantIndex.open(tmp_path / "qdrant", spec, create=True)
            opened.append(ix)
            return ix

        yield _open
        for ix in opened:
            ix.close()


class TestQdrantEdgeIndex(IndexConformance):
    """qdrant-edge: Qdrant's own engine (segments, payload indexes, IDF) in-process, behind
    the same backend through a thin store adapter."""

    @pytest.fixture
    def backend(self, tmp_path: Path, spec: IndexSpec) -> Iterator[Open]:
        from index.qdrant import QdrantIndex

        opened: list[QdrantIndex] = []

        def _open() -> QdrantIndex:
            for ix in opened:
                ix.close()  # one process, one open shard
            ix = QdrantIndex.open(f"edge:{tmp_path / 'edge'}", spec, create=True)
            opened.append(ix)
            return ix

        yield _open
        for ix in opened:
            ix.close()
