"""Approximate vector search for large indexes: a FAISS HNSW graph, built in the background.

Below `AnnOptions.threshold` passages the index searches its exact (flat) vectors only. From
there on an HNSW graph answers unfiltered and broadly filtered searches. The graph is built
from a snapshot, off the write path, so it lags behind: vectors added since are searched
exactly beside it (`ApproximateVectors`), vectors removed since are skipped by an ID selector,
and once those changes pass `rebuild_share` of the graph a new one is built in the background.
That is correct at any lag because row ids are never reused (SQLite AUTOINCREMENT) and a
stored vector never changes: a graph from any earlier generation holds right answers for the
ids it has.

Narrow filters (fewer allowed passages than `exact_share` of the index) are searched exactly,
which is as fast there and always returns k hits; a broad filter runs inside the graph with a
wider beam, and falls back to the exact search if that finds fewer than k.

On disk: `ann.<token>.faiss` (the graph, FAISS's own format) and `ann.json`, which names it with
its sha256 and is replaced last, atomically. The graph is written aside first (named with the
writer's pid), then renamed into place and recorded under `write.lock`, held only for that. A
crash at any point leaves the old pair or the new one (a dead writer's file is deleted later),
and a missing, damaged or foreign graph is ignored (searches stay exact) and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from . import atomic, crashpoints, upkeep
from .errors import IndexCorruptError, IndexUsageError
from .manifest import now_iso
from .store import Store
from .vectors import FaissFlatIndex, Hits, IdFilter, as_ids, check_k, threads_for

logger = logging.getLogger(__name__)

POINTER_NAME = "ann.json"
FILE_PREFIX = "ann."
FILE_SUFFIX = ".faiss"
WRITING = ".writing-"  # suffix of a graph file still being written, with the writer's pid
FORMAT = 1
KIND = "hnsw-flat-ip"
_BUILD_BATCH = 2_000  # vectors added between checks for cancellation
_MAX_EF = 4096
_VECTORS_PER_EF = 1_000
"""The beam is at least one per this many graph vectors: `ef_search` (256) kept recall@10 at
0.999 of exact search at 100k passages but 0.950 at a million (synthetic, benchmarks/search.py);
the floor's 1,000 there gave 0.991 for 2.8 ms a search."""


@dataclass(frozen=True)
class AnnOptions:
    """When and how the approximate graph is used. `threshold` None: never (always exact)."""

    threshold: int | None = 50_000
    """Passages from which searches use the graph."""
    ef_search: int = 256
    """HNSW beam width of a search (higher: better recall, slower)."""
    rebuild_share: float = 0.05
    """Rebuild once vectors added or removed since the graph was built pass this share of it."""
    m: int = 32
    """HNSW links per vector."""
    ef_construction: int = 80
    """HNSW beam width while building."""
    exact_share: float = 0.1
    """Filters allowing fewer than this share of the passages are searched exactly (a scan
    of allowed vectors costs less than the wide beam such a filter needs in the graph)."""
    build_threads: int | None = None
    """Threads of a graph build; None: all cores but one (searches and writes go on)."""

    def __post_init__(self) -> None:
        checks = {
            "threshold": self.threshold is None or _positive(self.threshold),
            "ef_search": _positive(self.ef_search),
            "m": _positive(self.m) and self.m >= 4,
            "ef_construction": _positive(self.ef_construction),
            "rebuild_share": 0 < self.rebuild_share <= 1,
            "exact_share": 0 <= self.exact_share <= 1,
            "build_threads": self.build_threads is None or _positive(self.build_threads),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise IndexUsageError(
                f"AnnOptions.{bad[0]} is out of range ({getattr(self, bad[0])!r}); see the "
                f"field's description"
            )

    def wanted(self, n_vectors: int) -> bool:
        """True if an index of `n_vectors` passages should search a graph."""
        return self.threshold is not None and n_vectors >= self.threshold


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class GraphRecord:
    """`ann.json`: which graph file is current, its checksum and how it was built."""

    file: str
    sha256: str
    vectors: int
    dim: int
    m: int
    ef_construction: int
    built_at: str
    format: int = FORMAT
    kind: str = KIND

    @classmethod
    def from_json(cls, data: Any) -> GraphRecord:
        if not isinstance(data, dict):
            raise IndexCorruptError(f"{POINTER_NAME} does not hold a JSON object")
        try:
            record = cls(**data)
        except TypeError as exc:
            raise IndexCorruptError(f"{POINTER_NAME} is malformed ({exc})") from exc
        name = record.file
        if not (name.startswith(FILE_PREFIX) and name.endswith(FILE_SUFFIX)) or "/" in name:
            raise IndexCorruptError(f"{POINTER_NAME} names an unexpected file {name!r}")
        return record


def read_record(directory: Path) -> GraphRecord | None:
    """The current graph's record, or None when there is none or it is unusable (logged)."""
    path = directory / POINTER_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring %s (%s); the graph will be rebuilt", path, exc)
        return None
    try:
        record = GraphRecord.from_json(data)
    except IndexCorruptError as exc:
        logger.warning("ignoring %s (%s); the graph will be rebuilt", path, exc)
        return None
    if record.format > FORMAT or record.kind != KIND:
        logger.info("%s is from another version (%s, format %d); ignored", path, record.kind,
                    record.format)  # fmt: skip
        return None
    return record


def write_record(directory: Path, record: GraphRecord) -> None:
    """Atomically make `record` the current graph (under write.lock)."""
    atomic.write_json(directory / POINTER_NAME, asdict(record))


def remove_unreferenced(directory: Path) -> None:
    """Delete graph files that `ann.json` does not name, and ones a dead process was writing
    (under write.lock)."""
    record = read_record(directory)
    keep = record.file if record is not None else None
    for path in directory.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}*"):
        if path.name == keep:
            continue
        if WRITING in path.name and upkeep.pid_alive(path.name.rsplit(WRITING, 1)[1]):
            continue
        try:
            path.unlink()
        except OSError as exc:
            logger.info("cannot remove the old graph %s (%s)", path, exc)


class HnswGraph:
    """`IndexIDMap2(IndexHNSWFlat)` over (row id, vector) pairs, inner product."""

    def __init__(self, index: faiss.IndexIDMap2, dim: int) -> None:
        self._index = index
        self.dim = dim
        self.ids = np.sort(faiss.vector_to_array(index.id_map).astype(np.int64, copy=False))
        """Row ids in the graph, ascending."""

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        options: AnnOptions,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> HnswGraph | None:
        """A graph of `vectors` (n, dim) under `ids`; None if `cancelled()` turned true."""
        dim = int(vectors.shape[1])
        inner = faiss.IndexHNSWFlat(dim, options.m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = options.ef_construction
        index = faiss.IndexIDMap2(inner)
        # OpenMP's thread count is per calling thread: this sets the build's alone.
        threads = options.build_threads or max(1, (os.cpu_count() or 1) - 1)
        faiss.omp_set_num_threads(threads)
        for start in range(0, len(ids), _BUILD_BATCH):
            if cancelled():
                return None
            stop = start + _BUILD_BATCH
            index.add_with_ids(
                np.ascontiguousarray(vectors[start:stop], dtype=np.float32), as_ids(ids[start:stop])
            )
        return cls(index, dim)

    @classmethod
    def load(cls, directory: Path, record: GraphRecord, dim: int) -> HnswGraph:
        """Read the graph `record` names, verifying its checksum before FAISS parses it.

        Raises IndexCorruptError with the reason; the caller then searches exactly and rebuilds.
        """
        path = directory / record.file
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IndexCorruptError(f"cannot read {path}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise IndexCorruptError(f"{path} does not match the checksum in {POINTER_NAME}")
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except (RuntimeError, MemoryError) as exc:
            raise IndexCorruptError(f"FAISS cannot read {path}: {exc}") from exc
        del data
        inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
        if (
            not isinstance(inner, faiss.IndexHNSWFlat)
            or index.d != dim
            or index.metric_type != faiss.METRIC_INNER_PRODUCT
            or index.ntotal != record.vectors
        ):
            raise IndexCorruptError(
                f"{path} is not an inner-product HNSW graph of {record.vectors} vectors of "
                f"dimension {dim}"
            )
        return cls(index, dim)

    def write_aside(self, directory: Path) -> tuple[str, str]:
        """Write the graph under a new name marked as being written by this process (no lock
        needed: nothing else touches it); return (that name, its sha256)."""
        name = f"{FILE_PREFIX}{secrets.token_hex(6)}{FILE_SUFFIX}{WRITING}{os.getpid()}"
        path = directory / name
        try:
            faiss.write_index(self._index, str(path))
            atomic.fsync_file(path)
            return name, atomic.sha256_file(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def search(
        self, queries: np.ndarray, k: int, ef: int, selector: faiss.IDSelector | None
    ) -> Hits:
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(int(ef), int(k))
        if selector is not None:
            params.sel = selector
        with threads_for(len(queries)):
            scores, ids = self._index.search(queries, int(k), params=params)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i != -1]
            for row_ids, row_scores in zip(ids, scores)
        ]


class ApproximateVectors:
    """A graph plus the changes since it was built: the search a large index runs.

    `exact` (the flat index of every stored vector) is passed to each call rather than kept,
    because the Index replaces it when another process has written.
    """

    def __init__(self, graph: HnswGraph, exact: FaissFlatIndex, options: AnnOptions) -> None:
        live = exact.ids()
        self.graph = graph
        self._options = options
        self._removed = np.setdiff1d(graph.ids, live, assume_unique=True)
        added = np.setdiff1d(live, graph.ids, assume_unique=True)
        self._added = FaissFlatIndex.build(exact.dim, added, exact.vectors_of(added))
        self._skip: tuple[faiss.IDSelector, faiss.IDSelector] | None = None

    def apply(self, removed: np.ndarray, added_ids: np.ndarray, added_vectors: np.ndarray) -> None:
        """Follow one committed write (ids removed from and vectors added to the index)."""
        removed = as_ids(removed)
        if len(removed):
            in_graph = np.isin(removed, self.graph.ids)
            if in_graph.any():
                self._removed = np.union1d(self._removed, removed[in_graph])
                self._skip = None
            self._added.remove(removed[~in_graph])
        self._added.add(added_ids, added_vectors)

    @property
    def pending(self) -> int:
        """Vectors added or removed since the graph was built."""
        return len(self._removed) + len(self._added)

    def stale_share(self) -> float:
        return self.pending / max(1, len(self.graph))

    def search(
        self,
        queries: np.ndarray,
        k: int,
        exact: FaissFlatIndex,
        allowed: np.ndarray | None = None,
    ) -> Hits:
        """Per query up to k (row id, inner product) pairs, best first (see the module doc)."""
        check_k(k)
        n = len(exact)
        if allowed is None:
            if min(k, n) * 4 > n:  # asks for a large share of everything: exact is as cheap
                return exact.search(queries, k)
            return self._both(queries, k, self._skip_removed(), self._beam(), None)
        only = IdFilter(allowed)
        m = len(only)
        if m < self._options.exact_share * n or k * 4 > m:
            return exact.search(queries, k, allowed=only)
        in_graph = only
        if len(self._removed):
            in_graph = IdFilter(np.setdiff1d(only.ids, self._removed, assume_unique=True))
        # A filter keeping a share s of the graph needs about k / s visited nodes for k hits.
        ef = min(_MAX_EF, max(self._beam(), int(2 * k * n / m)))
        hits = self._both(queries, k, in_graph.selector, ef, only)
        if any(len(row) < min(k, m) for row in hits):
            return exact.search(queries, k, allowed=only)
        return hits

    def _beam(self) -> int:
        """The unfiltered beam width: `ef_search`, and one per `_VECTORS_PER_EF` vectors of a
        graph larger than `ef_search` times that."""
        return min(_MAX_EF, max(self._options.ef_search, len(self.graph) // _VECTORS_PER_EF))

    def _skip_removed(self) -> faiss.IDSelector | None:
        if not len(self._removed):
            return None
        if self._skip is None:
            removed = faiss.IDSelectorBatch(self._removed)
            self._skip = (faiss.IDSelectorNot(removed), removed)  # keep the inner one alive
        return self._skip[0]

    def _both(
        self,
        queries: np.ndarray,
        k: int,
        selector: faiss.IDSelector | None,
        ef: int,
        allowed: IdFilter | None,
    ) -> Hits:
        hits = self.graph.search(queries, k, ef, selector)
        if not len(self._added):
            return hits
        extra = self._added.search(queries, k, allowed=allowed)
        return [sorted(a + b, key=lambda pair: -pair[1])[:k] for a, b in zip(hits, extra)]


# -- the background tasks ---------------------------------------------------------------------


def build_from_store(
    directory: Path, dim: int, options: AnnOptions, cancelled: Callable[[], bool]
) -> HnswGraph | None:
    """A graph of every vector committed in `directory` (read in one snapshot through a
    connection of its own, so no search or write waits); None if cancelled or too small."""
    store = Store.open(directory)
    try:
        with store.snapshot():
            ids, matrix = store.all_vectors(dim)
    finally:
        store.close()
    if cancelled() or not options.wanted(len(ids)):
        return None
    started = time.perf_counter()
    graph = HnswGraph.build(ids, matrix, options, cancelled)
    if graph is not None:
        logger.info(
            "built the HNSW graph of %s (%d vectors) in %.1f s",
            directory, len(graph), time.perf_counter() - started,
        )  # fmt: skip
    return graph


def save_graph(
    directory: Path,
    graph: HnswGraph,
    options: AnnOptions,
    lock_path: Path,
    cancelled: Callable[[], bool],
) -> GraphRecord | None:
    """Write `graph` aside, then, under write.lock (held for a rename and a small JSON file,
    so writers hardly wait), make it the current one; None if cancelled."""
    written, digest = graph.write_aside(directory)
    crashpoints.reached("ann_tmp_written")
    with upkeep.write_lock(lock_path, cancelled) as held:
        if not held:
            (directory / written).unlink(missing_ok=True)
            return None
        name = written.rsplit(WRITING, 1)[0]
        os.replace(directory / written, directory / name)
        atomic.fsync_dir(directory)
        crashpoints.reached("ann_replaced")
        record = GraphRecord(
            file=name,
            sha256=digest,
            vectors=len(graph),
            dim=graph.dim,
            m=options.m,
            ef_construction=options.ef_construction,
            built_at=now_iso(),
        )
        write_record(directory, record)
        crashpoints.reached("ann_recorded")
        remove_unreferenced(directory)
        return record
