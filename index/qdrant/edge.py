"""The `PointStore` on qdrant-edge (`qdrant-edge-py`): Qdrant's own engine embedded in the
process, one shard in a directory (`edge:PATH`). Same segments, HNSW, payload indexes and IDF
as a server; no network, one process at a time."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import IndexStoreError, IndexUsageError
from .points import DENSE, SENTENCES, SPARSE, Where
from .store import CollectionOptions, Fetched, Location, PointData, Search, grouped

INSTALL_HINT = 'the edge: location needs qdrant-edge-py: pip install "newsrag[qdrant]"'
_CONFIG = "edge_config.json"
_PAGE = 1000


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError as exc:
        raise IndexUsageError(INSTALL_HINT) from exc
    return qdrant_edge


class EdgeStore:
    """One qdrant-edge shard: the collection is the directory."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self.e = _edge()
        self.path = Path(location.target)
        self.shard: Any = None
        if self.exists():
            self.shard = self._run(self.e.EdgeShard.load, str(self.path))

    # -- the collection ------------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.path / _CONFIG).exists()

    def create(self, options: CollectionOptions) -> None:
        e = self.e
        if options.shards != 1 or options.replicas != 1:
            raise IndexUsageError(
                "qdrant-edge holds one shard in one process; shards and replicas need a Qdrant "
                "server cluster (qdrant://HOST:PORT)"
            )
        quantization = None
        if options.quantization == "int8":
            quantization = e.ScalarQuantizationConfig(e.ScalarType.Int8, quantile=0.99)
        config = e.EdgeConfig(
            vectors={
                DENSE: e.EdgeVectorParams(
                    size=options.dim,
                    distance=e.Distance.Dot,
                    memory=e.Memory.Cold if quantization is not None else None,
                    quantization_config=quantization,  # the dense vectors only
                ),
                # Sentence vectors serve reranking, not search: fp16 on disk, no HNSW graph.
                SENTENCES: e.EdgeVectorParams(
                    size=options.dim,
                    distance=e.Distance.Dot,
                    memory=e.Memory.Cold,
                    datatype=e.VectorStorageDatatype.Float16,
                    multivector_config=e.MultiVectorConfig(e.MultiVectorComparator.MaxSim),
                    hnsw_config=e.HnswIndexConfig(
                        m=0, ef_construct=100, full_scan_threshold=10_000
                    ),
                ),
            },
            sparse_vectors={SPARSE: e.EdgeSparseVectorParams(modifier=e.Modifier.Idf)},
        )
        self.shard = self._run(e.EdgeShard.create, str(self.path), config)
        keyword, datetime = e.PayloadSchemaType.Keyword, e.PayloadSchemaType.Datetime
        for name, schema in (
            ("kind", keyword), ("doc_id", keyword), ("source", keyword), ("language", keyword),
            ("date_start", datetime), ("date_end", datetime),
        ):  # fmt: skip
            self._update(e.UpdateOperation.create_field_index(name, schema))

    def dense_dim(self) -> int | None:
        config = json.loads((self.path / _CONFIG).read_text(encoding="utf-8"))
        dense = config.get("vectors", {}).get(DENSE)
        return None if dense is None else int(dense["size"])

    # -- writing -------------------------------------------------------------------------------

    def upsert(self, points: Sequence[PointData]) -> None:
        if points:
            structs = [self.e.Point(p.id, self._vectors(p), p.payload) for p in points]
            self._update(self.e.UpdateOperation.upsert_points(structs))

    def _vectors(self, p: PointData) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if p.dense is not None:
            out[DENSE] = p.dense.tolist()
        if p.sentences is not None and len(p.sentences):
            out[SENTENCES] = p.sentences.tolist()
        if p.sparse is not None and p.sparse[0]:
            out[SPARSE] = self.e.SparseVector(p.sparse[0], p.sparse[1])
        return out

    def set_payloads(self, updates: Sequence[tuple[int, dict[str, Any]]]) -> None:
        for ids, payload in grouped(updates):
            self._update(self.e.UpdateOperation.set_payload(ids, payload))

    def delete_ids(self, ids: Sequence[int]) -> None:
        if ids:
            self._update(self.e.UpdateOperation.delete_points([int(i) for i in ids]))

    def delete_where(self, where: Where) -> None:
        self._update(self.e.UpdateOperation.delete_points_by_filter(self._filter(where)))

    def set_sparse(self, items: Sequence[tuple[int, tuple[list[int], list[float]]]]) -> None:
        e = self.e
        present = [
            e.PointVectors(i, {SPARSE: e.SparseVector(s[0], s[1])}) for i, s in items if s[0]
        ]
        empty = [i for i, s in items if not s[0]]
        if present:
            self._update(e.UpdateOperation.update_vectors(present))
        if empty:
            self._update(e.UpdateOperation.delete_vectors(empty, [SPARSE]))

    # -- reading -------------------------------------------------------------------------------

    def retrieve(
        self, ids: Sequence[int], payload: Sequence[str] | bool, vectors: Sequence[str] = ()
    ) -> list[Fetched]:
        if not ids:
            return []
        records = self._run(
            self._shard().retrieve,
            [int(i) for i in ids],
            with_payload=payload if isinstance(payload, bool) else list(payload),
            with_vector=list(vectors) or False,
        )
        return [Fetched(int(r.id), dict(r.payload or {}), dict(r.vector or {})) for r in records]

    def scroll(self, where: Where, payload: Sequence[str] | bool) -> Iterator[Fetched]:
        offset = None
        while True:
            request = self.e.ScrollRequest(
                offset=offset,
                limit=_PAGE,
                filter=self._filter(where),
                with_payload=payload if isinstance(payload, bool) else list(payload),
                with_vector=False,
            )
            records, offset = self._run(self._shard().scroll, request)
            for r in records:
                yield Fetched(int(r.id), dict(r.payload or {}))
            if offset is None:
                return

    def count(self, where: Where) -> int:
        request = self.e.CountRequest(exact=True, filter=self._filter(where))
        return int(self._run(self._shard().count, request))

    def query(self, searches: Sequence[Search]) -> list[list[tuple[int, float]]]:
        if not searches:
            return []
        e = self.e
        requests = [
            e.QueryRequest(
                limit=s.limit,
                query=e.Query.Nearest(self._query_vector(s), using=s.using),
                filter=self._filter(s.where),
                with_payload=False,
            )
            for s in searches
        ]
        found = self._run(self._shard().query_batch, e.QueryBatchRequest(requests))
        return [[(int(p.id), float(p.score)) for p in points] for points in found]

    def _query_vector(self, s: Search) -> Any:
        if s.using == SPARSE:
            return self.e.SparseVector(list(s.vector[0]), [float(v) for v in s.vector[1]])
        return s.vector.tolist() if hasattr(s.vector, "tolist") else s.vector

    def close(self) -> None:
        if self.shard is not None:
            self.shard.close()
            self.shard = None

    # -- translation ---------------------------------------------------------------------------

    def _filter(self, where: Where) -> Any:
        e = self.e
        must: list[Any] = [e.FieldCondition("kind", match=e.MatchValue(where.kind))]
        for key, values in (
            ("doc_id", where.doc_ids), ("source", where.sources), ("language", where.languages),
        ):  # fmt: skip
            if values is not None:
                must.append(e.FieldCondition(key, match=e.MatchAny(list(values))))
        if where.date_from is not None:
            bound = e.RangeDateTime(gte=f"{where.date_from}T00:00:00Z")
            must.append(e.FieldCondition("date_end", range=bound))
        if where.date_to is not None:
            bound = e.RangeDateTime(lte=f"{where.date_to}T00:00:00Z")
            must.append(e.FieldCondition("date_start", range=bound))
        if where.ids is not None:
            must.append(e.HasIdCondition(set(where.ids)))
        return e.Filter(must=must)

    def _shard(self) -> Any:
        if self.shard is None:
            raise IndexUsageError(f"the qdrant-edge shard at {self.path} is not open")
        return self.shard

    def _update(self, operation: Any) -> None:
        self._run(self._shard().update, operation)

    def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (IndexStoreError, TypeError, KeyError, AttributeError):
            raise  # ours, or a bug: not the engine's
        except Exception as exc:  # noqa: BLE001 - the engine raises plain exceptions
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise IndexStoreError(
                f"qdrant-edge at {self.path} failed ({type(exc).__name__}: {first}); if another "
                f"process has it open, close that one (one process per shard)"
            ) from exc
