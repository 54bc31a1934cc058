"""The vector layer: exact inner-product search over int64-keyed vectors (FAISS `IndexIDMap2`).

`VectorIndex` is the protocol a backend implements; `FaissFlatIndex` is the one we ship. The
FAISS file is a derived artifact, rebuilt from SQLite whenever it does not match.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from . import atomic
from .errors import IndexCorruptError, IndexMismatchError, IndexUsageError

Hits = list[list[tuple[int, float]]]


class VectorIndex(Protocol):
    """Exact nearest-neighbour search by inner product over vectors keyed by int64 ids."""

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (n, dim) under ids (n,); ids must not be present already."""

    def remove(self, ids: np.ndarray) -> int:
        """Remove the given ids (unknown ones are ignored); return how many were removed."""

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> Hits:
        """Per query, up to k (id, score) pairs best first, restricted to `allowed` ids if given."""


def as_matrix(vectors: np.ndarray, dim: int, what: str = "query vector") -> np.ndarray:
    """`vectors` as a C-contiguous float32 (n, dim) matrix; accepts one vector of shape (dim,).

    Raises IndexMismatchError naming both dimensions, IndexUsageError on other bad shapes or
    NaN/inf.
    """
    arr = np.asarray(vectors)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise IndexUsageError(
            f"{what}s must have shape (n, {dim}) or ({dim},), got shape {np.shape(vectors)}"
        )
    if arr.shape[1] != dim:
        raise IndexMismatchError(
            f"{what} has dimension {arr.shape[1]} but the index holds dimension {dim}; use the "
            f"embedding model the index was built with, or re-index into a new directory"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise IndexUsageError(f"{what}s must be real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise IndexUsageError(
            f"{what} contains NaN or infinity; check the embedding model's output"
        )
    return arr


def as_ids(ids: np.ndarray | list[int] | tuple[int, ...]) -> np.ndarray:
    """`ids` as a C-contiguous int64 vector."""
    arr = np.asarray(ids)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise IndexUsageError(
            f"ids must be a 1-d array of integers, got shape {arr.shape} {arr.dtype}"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


@contextlib.contextmanager
def threads_for(n_queries: int) -> Iterator[None]:
    """Run one query's FAISS search on this thread alone. FAISS opens an OpenMP team even for
    one query (e.g. to map ids); starting it costs more than it saves, and on a busy machine
    waiting for the team's second thread costs milliseconds. Batches keep every thread.
    (OpenMP's thread count is per calling thread: other threads are not affected.)"""
    if n_queries > 1:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def sorted_ids(ids: np.ndarray | list[int] | tuple[int, ...]) -> np.ndarray:
    """`ids` as ascending unique int64 (a filter's row ids usually come so: checked, not
    sorted again)."""
    arr = as_ids(ids)
    if len(arr) < 2 or bool(np.all(arr[1:] > arr[:-1])):
        return arr
    return np.unique(arr)


class IdFilter:
    """A FAISS ID selector for a set of ids: a bitmap indexed by id (one bit per id up to the
    largest), so building it is one numpy pass and a membership test is one bit lookup,
    however many ids are allowed."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = sorted_ids(ids)
        if len(self.ids) and self.ids[0] < 0:
            raise IndexUsageError(f"row ids are not negative, got {int(self.ids[0])}")
        size = int(self.ids[-1]) + 1 if len(self.ids) else 0
        bits = np.zeros(max(size, 1), dtype=bool)
        bits[self.ids] = True
        self._bytes = np.packbits(bits, bitorder="little")  # kept alive: FAISS reads it
        # (IDSelectorBitmap takes the bitmap's length in bytes.)
        self.selector = faiss.IDSelectorBitmap(len(self._bytes), faiss.swig_ptr(self._bytes))

    def __len__(self) -> int:
        return len(self.ids)


def check_k(k: object) -> None:
    """IndexUsageError unless `k` is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise IndexUsageError(f"k must be a positive integer, got {k!r}")


class FaissFlatIndex:
    """`IndexIDMap2(IndexFlatIP(dim))`: exact search, ids are the chunks' SQLite row ids."""

    def __init__(self, index: faiss.IndexIDMap2, dim: int) -> None:
        self._index = index
        self._dim = dim

    @classmethod
    def empty(cls, dim: int) -> FaissFlatIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), dim)

    @classmethod
    def build(cls, dim: int, ids: np.ndarray, vectors: np.ndarray) -> FaissFlatIndex:
        index = cls.empty(dim)
        index.add(ids, vectors)
        return index

    @classmethod
    def load(cls, path: Path, dim: int, expected_sha256: str) -> FaissFlatIndex:
        """Read a FAISS file, verifying its checksum before FAISS parses it.

        Raises IndexCorruptError (with the reason) if it is missing, does not match or is not an
        inner-product IndexIDMap2 of dimension `dim`; the caller then rebuilds from SQLite.
        """
        try:
            data = path.read_bytes()  # one read: the checksum and the parse see the same bytes
        except OSError as exc:
            raise IndexCorruptError(f"cannot read {path}: {exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha256:
            raise IndexCorruptError(f"{path} does not match the manifest's checksum")
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except (RuntimeError, MemoryError) as exc:
            raise IndexCorruptError(f"FAISS cannot read {path}: {exc}") from exc
        if (
            not isinstance(index, faiss.IndexIDMap2)
            or index.d != dim
            or index.metric_type != faiss.METRIC_INNER_PRODUCT
        ):
            raise IndexCorruptError(
                f"{path} is not an inner-product IndexIDMap2 of dimension {dim}"
            )
        return cls(index, dim)

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        id_arr = as_ids(ids)
        matrix = as_matrix(vectors, self._dim, what="vector") if len(id_arr) else None
        if matrix is None:
            return
        if len(matrix) != len(id_arr):
            raise IndexUsageError(
                f"got {len(matrix)} vectors but {len(id_arr)} ids; pass one id each"
            )
        if len(np.unique(id_arr)) != len(id_arr):
            raise IndexUsageError("ids passed to add() must be unique")
        self._index.add_with_ids(matrix, id_arr)

    def remove(self, ids: np.ndarray) -> int:
        id_arr = as_ids(ids)
        if len(id_arr) == 0:
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(id_arr)))

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | IdFilter | None = None
    ) -> Hits:
        matrix = as_matrix(queries, self._dim)
        check_k(k)
        limit = len(self)
        params = None
        if allowed is not None:
            only = allowed if isinstance(allowed, IdFilter) else IdFilter(allowed)
            limit = min(limit, len(only))
            # Filter inside the search so k hits come back whenever k allowed ids exist.
            params = faiss.SearchParameters()
            params.sel = only.selector
        k_eff = min(int(k), limit)
        if k_eff == 0:
            return [[] for _ in range(len(matrix))]
        with threads_for(len(matrix)):
            scores, ids = self._index.search(matrix, k_eff, params=params)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i != -1]
            for row_ids, row_scores in zip(ids, scores)
        ]

    def ids(self) -> np.ndarray:
        """Every stored id, ascending (int64)."""
        return np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False))

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of `ids` (all must be present), float32 (len(ids), dim)."""
        id_arr = as_ids(ids)
        if len(id_arr) == 0:
            return np.empty((0, self._dim), dtype=np.float32)
        return np.asarray(self._index.reconstruct_batch(id_arr), dtype=np.float32)

    def save(self, path: Path, before_replace: Callable[[], None] | None = None) -> str:
        """Atomically write the FAISS file; return its sha256 (for the manifest)."""

        def writer(tmp: Path) -> None:
            faiss.write_index(self._index, str(tmp))
            if before_replace is not None:
                before_replace()

        return atomic.write_with(path, writer)
