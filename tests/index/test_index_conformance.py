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
