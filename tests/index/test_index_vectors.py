"""Conformance tests for the vector layer. A new backend inherits `VectorIndexConformance`
and provides the `make_index` fixture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from index import FaissFlatIndex, VectorIndex
from index.errors import IndexCorruptError, IndexMismatchError, IndexUsageError

DIM = 16
N = 200


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


class VectorIndexConformance:
    """Behaviour every VectorIndex backend must show. Subclasses provide `make_index`."""

    @pytest.fixture
    def make_index(self) -> Callable[[int], VectorIndex]:
        raise NotImplementedError

    @pytest.fixture
    def filled(self, make_index: Callable[[int], VectorIndex]) -> tuple[VectorIndex, np.ndarray]:
        index = make_index(DIM)
        vectors = unit_vectors(N)
        index.add(np.arange(1000, 1000 + N), vectors)
        return index, vectors

    def test_add_counts(self, filled: tuple[VectorIndex, np.ndarray]) -> None:
        index, _ = filled
        assert len(index) == N
        assert index.dim == DIM

    def test_search_finds_its_own_vector_first(
        self, filled: tuple[VectorIndex, np.ndarray]
    ) -> None:
        index, vectors = filled
        hits = index.search(vectors[:5], 3)
        assert [row[0][0] for row in hits] == [1000, 1001, 1002, 1003, 1004]
        for row in hits:
            assert row[0][1] == pytest.approx(1.0, abs=1e-5)
            scores = [s for _, s in row]
            assert scores == sorted(scores, reverse=True)

    def test_single_vector_query(self, filled: tuple[VectorIndex, np.ndarray]) -> None:
        index, vectors = filled
        ((row_id, score),) = index.search(vectors[7], 1)[0]
        assert len(index.search(vectors[7], 1)) == 1
        assert row_id == 1007
        assert score == pytest.approx(1.0, abs=1e-5)

    def test_k_larger_than_size_returns_all(self, make_index: Callable[[int], VectorIndex]) -> None:
        index = make_index(DIM)
        index.add(np.array([1, 2, 3]), unit_vectors(3))
        assert len(index.search(unit_vectors(1, seed=9), 10)[0]) == 3

    def test_empty_index_returns_no_hits(self, make_index: Callable[[int], VectorIndex]) -> None:
        index = make_index(DIM)
        assert index.search(unit_vectors(2), 5) == [[], []]

    def test_remove(self, filled: tuple[VectorIndex, np.ndarray]) -> None:
        index, vectors = filled
        assert index.remove(np.array([1000, 1001, 999_999])) == 2
        assert len(index) == N - 2
        found = {i for i, _ in index.search(vectors[0], N)[0]}
        assert 1000 not in found and 1001 not in found
        assert index.search(vectors[2], 1)[0][0][0] == 1002

    def test_filtered_search_returns_k_hits_when_k_allowed_exist(
        self, filled: tuple[VectorIndex, np.ndarray]
    ) -> None:
        index, vectors = filled
        # The allowed ids are far from the query: a post-filter of the top k would find none.
        allowed = np.arange(1000 + N - 20, 1000 + N)
        hits = index.search(vectors[0], 10, allowed=allowed)[0]
        assert len(hits) == 10
        assert {i for i, _ in hits} <= set(allowed.tolist())
        exact = sorted(((float(vectors[0] @ vectors[i - 1000]), i) for i in allowed), reverse=True)
        assert [i for i, _ in hits] == [i for _, i in exact[:10]]

    def test_filtered_search_with_fewer_allowed_than_k(
        self, filled: tuple[VectorIndex, np.ndarray]
    ) -> None:
        index, vectors = filled
        hits = index.search(vectors[:2], 10, allowed=np.array([1005, 1006, 424242]))
        assert [sorted(i for i, _ in row) for row in hits] == [[1005, 1006], [1005, 1006]]
        assert index.search(vectors[:1], 10, allowed=np.array([], dtype=np.int64)) == [[]]

    def test_wrong_query_dimension_names_both(self, filled: tuple[VectorIndex, np.ndarray]) -> None:
        index, _ = filled
        with pytest.raises(IndexMismatchError, match=r"dimension 8 .*dimension 16"):
            index.search(np.ones((2, 8), dtype=np.float32), 3)

    def test_wrong_add_dimension_names_both(self, make_index: Callable[[int], VectorIndex]) -> None:
        index = make_index(DIM)
        with pytest.raises(IndexMismatchError, match=r"dimension 32 .*dimension 16"):
            index.add(np.array([1, 2]), unit_vectors(2, dim=32))
        assert len(index) == 0

    def test_float64_and_nan_inputs(self, make_index: Callable[[int], VectorIndex]) -> None:
        index = make_index(DIM)
        index.add(np.array([1]), unit_vectors(1).astype(np.float64))
        assert index.search(unit_vectors(1).astype(np.float64), 1)[0][0][0] == 1
        bad = unit_vectors(1)
        bad[0, 3] = np.nan
        with pytest.raises(IndexUsageError, match="NaN"):
            index.search(bad, 1)

    def test_bad_k(self, filled: tuple[VectorIndex, np.ndarray]) -> None:
        index, vectors = filled
        with pytest.raises(IndexUsageError, match="k must be a positive integer"):
            index.search(vectors[0], 0)


class TestFaissFlatIndex(VectorIndexConformance):
    @pytest.fixture
    def make_index(self) -> Callable[[int], VectorIndex]:
        return FaissFlatIndex.empty

    def test_save_and_load_round_trip(self, tmp_path: Path) -> None:
        index = FaissFlatIndex.empty(DIM)
        vectors = unit_vectors(20)
        index.add(np.arange(20), vectors)
        checksum = index.save(tmp_path / "v.faiss")
        loaded = FaissFlatIndex.load(tmp_path / "v.faiss", DIM, checksum)
        assert loaded.search(vectors[3], 1)[0][0][0] == 3
        assert [p.name for p in tmp_path.iterdir()] == ["v.faiss"]  # no temp file left

    def test_load_rejects_a_changed_file(self, tmp_path: Path) -> None:
        index = FaissFlatIndex.empty(DIM)
        index.add(np.arange(5), unit_vectors(5))
        checksum = index.save(tmp_path / "v.faiss")
        data = (tmp_path / "v.faiss").read_bytes()
        (tmp_path / "v.faiss").write_bytes(data[: len(data) // 2])
        with pytest.raises(IndexCorruptError, match="checksum"):
            FaissFlatIndex.load(tmp_path / "v.faiss", DIM, checksum)
        with pytest.raises(IndexCorruptError, match="cannot read"):
            FaissFlatIndex.load(tmp_path / "missing.faiss", DIM, checksum)
