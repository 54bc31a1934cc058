"""The `PointStore` on qdrant-client: a Qdrant server or cluster, or the client's local mode
(`:memory:` or a directory; brute-force search in Python, for tests and small indexes)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import IndexStoreError, IndexUsageError
from .points import DENSE, SENTENCES, SPARSE, Where
from .store import CollectionOptions, Fetched, Location, PointData, Search, grouped

log = logging.getLogger(__name__)

INSTALL_HINT = 'the qdrant index backend needs qdrant-client: pip install "newsrag[qdrant]"'
_PAGE = 1000
_KEYWORD_FIELDS = ("kind", "doc_id", "source", "language")
_DATETIME_FIELDS = ("date_start", "date_end")


def _models() -> Any:
    try:
        from qdrant_client import models
    except ImportError as exc:
        raise IndexUsageError(INSTALL_HINT) from exc
    return models


class ClientStore:
    """One collection through `qdrant_client.QdrantClient`."""

    def __init__(
        self, location: Location, *, api_key: str | None = None, timeout: float = 60
    ) -> None:
        self.location = location
        self.m = _models()
        from qdrant_client import QdrantClient

        self.local = location.kind != "server"
        try:
            if location.kind == "server":
                self.client = QdrantClient(
                    url=location.target, api_key=api_key, timeout=int(timeout)
                )
            elif location.kind == "memory":
                self.client = QdrantClient(location=":memory:")
            else:
                self.client = QdrantClient(path=location.target)
        except RuntimeError as exc:  # local mode: the directory is open in another process
            raise IndexStoreError(
                f"cannot open the Qdrant local-mode directory {location.target} ({exc}); only one "
                f"process may open it: close the other one, or run a Qdrant server"
            ) from exc
        self.name = location.collection

    @staticmethod
    def present(location: Location) -> bool:
        """Whether a local-mode directory was ever created (without creating it)."""
        return location.kind != "path" or (Path(location.target) / "meta.json").exists()

    # -- the collection ------------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self._call(self.client.collection_exists, self.name))

    def create(self, options: CollectionOptions) -> None:
        m = self.m
        quantization = None
        if options.quantization == "int8":
            quantization = m.ScalarQuantization(
                scalar=m.ScalarQuantizationConfig(
                    type=m.ScalarType.INT8, quantile=0.99, always_ram=True
                )
            )
        # Quantized: the int8 copy is searched in RAM, the originals (for rescoring) on disk.
        dense_on_disk = True if quantization is not None else None
        vectors = {
            DENSE: m.VectorParams(
                size=options.dim,
                distance=m.Distance.DOT,
                on_disk=dense_on_disk,
                quantization_config=quantization,  # the dense vectors only, not the sentences
            ),
            # Sentence vectors serve reranking, not search: fp16 on disk, no HNSW graph.
            SENTENCES: m.VectorParams(
                size=options.dim,
                distance=m.Distance.DOT,
                on_disk=True,
                datatype=m.Datatype.FLOAT16,
                multivector_config=m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM),
                hnsw_config=m.HnswConfigDiff(m=0),
            ),
        }
        self._call(
            self.client.create_collection,
            self.name,
            vectors_config=vectors,
            sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            shard_number=options.shards,
            replication_factor=options.replicas,
            on_disk_payload=True,
        )
        with warnings.catch_warnings():  # local mode: "payload indexes have no effect"
            warnings.simplefilter("ignore", UserWarning)
            for name in _KEYWORD_FIELDS:
                self._call(
                    self.client.create_payload_index, self.name, name, m.PayloadSchemaType.KEYWORD
                )
            for name in _DATETIME_FIELDS:
                self._call(
                    self.client.create_payload_index, self.name, name, m.PayloadSchemaType.DATETIME
                )

    def dense_dim(self) -> int | None:
        info = self._call(self.client.get_collection, self.name)
        vectors = info.config.params.vectors
        params = vectors.get(DENSE) if isinstance(vectors, dict) else None
        return None if params is None else int(params.size)

    # -- writing -------------------------------------------------------------------------------

    def upsert(self, points: Sequence[PointData]) -> None:
        if not points:
            return
        structs = [
            self.m.PointStruct(id=p.id, vector=self._vectors(p), payload=p.payload) for p in points
        ]
        self._call(self.client.upsert, self.name, points=structs, wait=True)

    def _vectors(self, p: PointData) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if p.dense is not None:
            out[DENSE] = p.dense.tolist()
        if p.sentences is not None and len(p.sentences):
            out[SENTENCES] = p.sentences.tolist()
        if p.sparse is not None and p.sparse[0]:
            out[SPARSE] = self.m.SparseVector(indices=p.sparse[0], values=p.sparse[1])
        return out

    def set_payloads(self, updates: Sequence[tuple[int, dict[str, Any]]]) -> None:
        if not updates:
            return
        m = self.m
        ops = [
            m.SetPayloadOperation(set_payload=m.SetPayload(payload=p, points=ids))
            for ids, p in grouped(updates)
        ]
        self._call(self.client.batch_update_points, self.name, update_operations=ops, wait=True)

    def delete_ids(self, ids: Sequence[int]) -> None:
        if ids:
            selector = self.m.PointIdsList(points=[int(i) for i in ids])
            self._call(self.client.delete, self.name, points_selector=selector, wait=True)

    def delete_where(self, where: Where) -> None:
        selector = self.m.FilterSelector(filter=self._filter(where))
        self._call(self.client.delete, self.name, points_selector=selector, wait=True)

    def set_sparse(self, items: Sequence[tuple[int, tuple[list[int], list[float]]]]) -> None:
        m = self.m
        present = [
            m.PointVectors(id=i, vector={SPARSE: m.SparseVector(indices=s[0], values=s[1])})
            for i, s in items
            if s[0]
        ]
        empty = [i for i, s in items if not s[0]]
        if present:
            self._call(self.client.update_vectors, self.name, points=present, wait=True)
        if empty:
            self._call(
                self.client.delete_vectors, self.name, vectors=[SPARSE], points=empty, wait=True
            )

    # -- reading -------------------------------------------------------------------------------

    def retrieve(
        self, ids: Sequence[int], payload: Sequence[str] | bool, vectors: Sequence[str] = ()
    ) -> list[Fetched]:
        if not ids:
            return []
        records = self._call(
            self.client.retrieve,
            self.name,
            ids=[int(i) for i in ids],
            with_payload=self._payload(payload),
            with_vectors=list(vectors) or False,
        )
        return [Fetched(int(r.id), r.payload or {}, dict(r.vector or {})) for r in records]

    def scroll(self, where: Where, payload: Sequence[str] | bool) -> Iterator[Fetched]:
        offset = None
        while True:
            records, offset = self._call(
                self.client.scroll,
                self.name,
                scroll_filter=self._filter(where),
                limit=_PAGE,
                offset=offset,
                with_payload=self._payload(payload),
                with_vectors=False,
            )
            for r in records:
                yield Fetched(int(r.id), r.payload or {})
            if offset is None:
                return

    def count(self, where: Where) -> int:
        result = self._call(
            self.client.count, self.name, count_filter=self._filter(where), exact=True
        )
        return int(result.count)

    def query(self, searches: Sequence[Search]) -> list[list[tuple[int, float]]]:
        if not searches:
            return []
        m = self.m
        requests = [
            m.QueryRequest(
                query=self._query_vector(s),
                using=s.using,
                limit=s.limit,
                filter=self._filter(s.where),
                with_payload=False,
            )
            for s in searches
        ]
        responses = self._call(self.client.query_batch_points, self.name, requests=requests)
        return [[(int(p.id), float(p.score)) for p in r.points] for r in responses]

    def _query_vector(self, s: Search) -> Any:
        if s.using == SPARSE:
            return self.m.SparseVector(indices=s.vector[0], values=s.vector[1])
        return s.vector.tolist() if hasattr(s.vector, "tolist") else s.vector

    def close(self) -> None:
        self.client.close()

    # -- translation ---------------------------------------------------------------------------

    def _payload(self, fields: Sequence[str] | bool) -> Any:
        return fields if isinstance(fields, bool) else list(fields)

    def _filter(self, where: Where) -> Any:
        m = self.m
        must: list[Any] = [m.FieldCondition(key="kind", match=m.MatchValue(value=where.kind))]
        for key, values in (
            ("doc_id", where.doc_ids),
            ("source", where.sources),
            ("language", where.languages),
        ):
            if values is not None:
                must.append(m.FieldCondition(key=key, match=m.MatchAny(any=list(values))))
        if where.date_from is not None:
            must.append(
                m.FieldCondition(
                    key="date_end", range=m.DatetimeRange(gte=f"{where.date_from}T00:00:00Z")
                )
            )
        if where.date_to is not None:
            must.append(
                m.FieldCondition(
                    key="date_start", range=m.DatetimeRange(lte=f"{where.date_to}T00:00:00Z")
                )
            )
        if where.ids is not None:
            must.append(m.HasIdCondition(has_id=list(where.ids)))
        return m.Filter(must=must)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call; a connection or server failure is an IndexStoreError that names
        the location and what to check."""
        try:
            return fn(*args, **kwargs)
        except (IndexStoreError, TypeError, KeyError, AttributeError):
            raise  # ours, or a bug: not the server's
        except Exception as exc:  # noqa: BLE001 - httpx/grpc/qdrant errors have no common base
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise IndexStoreError(
                f"Qdrant at {self.location} failed ({type(exc).__name__}: {first}); check that "
                f"the server is running and reachable, and the API key (QDRANT_API_KEY)"
            ) from exc
