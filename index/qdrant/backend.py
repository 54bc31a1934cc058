"""`QdrantIndex`: the index Protocol (`index.backend.IndexBackend`) on one Qdrant collection.

One point per passage (named vectors: dense, sparse keyword terms with Qdrant's IDF, the
sentence vectors as a MAX_SIM multivector; a payload with everything a hit and a citation
need), one point per document (its text, metadata and content hash), and a reserved point
holding the manifest (spec, format version, generation, keyword analyzer). Point ids are
derived from chunk and document ids, so writing the same thing twice changes nothing.

Qdrant has no multi-point transactions, so a write is not atomic for readers as the local
index's is. It is convergent instead: every document a write touches is first marked
`PENDING`, its passages replaced, and its real content hash written last; a crash leaves the
touched documents marked changed, and the next `rag index` (or `rag remove`) redoes them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import manifest as manifest_mod
from ..directory import _check_chunk, _check_document, _check_sentence_vectors, _removal_ids
from ..errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IndexUsageError
from ..manifest import IndexSpec
from ..records import DocumentRecord, PassageEvidence, StoredChunk, WriteResult
from ..store import date_bound
from .points import (
    CHUNK_FIELDS,
    DENSE,
    KEYWORD_NORMS,
    KIND_CHUNK,
    KIND_DOC,
    KIND_MANIFEST,
    MANIFEST_ID,
    PENDING,
    SENTENCES,
    SPARSE,
    RowSelection,
    Where,
    chunk_payload,
    document_payload,
    document_sparse,
    fp16,
    passage_signature,
    point_id,
    query_sparse,
    selection,
    stored_chunk,
    term_count,
)
from .store import CollectionOptions, Location, PointData, PointStore, Search, parse_location

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Layout of the collection (points, payload fields, named vectors); recorded in the manifest."""

_NORM_TOLERANCE = 1e-3
_WRITE_BATCH = 256
_DOC_FIELDS = ("doc_id", "source", "title", "date", "language", "n_chunks")


def open_store(
    location: str | Path,
    *,
    collection: str | None = None,
    api_key: str | None = None,
    timeout: float = 60,
) -> PointStore:
    """The store for a location string (see `index.qdrant.store`)."""
    where = parse_location(location, collection)
    _check_directory(where)
    if where.kind == "edge":
        from .edge import EdgeStore

        return EdgeStore(where)
    from .client import ClientStore

    return ClientStore(where, api_key=api_key, timeout=timeout)


class QdrantIndex:
    """An index in a Qdrant collection. Open it with `QdrantIndex.open`."""

    def __init__(self, store: PointStore, spec: IndexSpec, state: dict[str, Any]) -> None:
        self._store: PointStore | None = store
        self.spec = spec
        self.path = str(store.location)
        self._state = state
        self._mutex = threading.RLock()

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        location: str | Path,
        spec: IndexSpec | None = None,
        *,
        create: bool = False,
        collection: str | None = None,
        api_key: str | None = None,
        timeout: float = 60,
        shards: int = 1,
        replicas: int = 1,
        quantization: str = "none",
    ) -> QdrantIndex:
        """Open the index in the collection at `location`, checking it was built with `spec`
        (None: take it as stored). `create=True` (with a spec) makes a missing collection."""
        store = open_store(location, collection=collection, api_key=api_key, timeout=timeout)
        try:
            if not store.exists():
                if not create or spec is None:
                    if create:
                        raise IndexUsageError(
                            "creating an index needs an IndexSpec (embedder id, dim)"
                        )
                    raise IndexNotFoundError(
                        f"No index in the Qdrant collection {store.location}. Run `rag index PATH "
                        f"--backend qdrant --url ...` or `rag migrate` first to fill it."
                    )
                options = CollectionOptions(spec.dim, shards, replicas, quantization)  # type: ignore[arg-type]
                _create(store, spec, options)
            stored, state = _read_manifest(store)
            if spec is not None:
                manifest_mod.check_spec(Path(str(store.location)), stored, spec)
            dim = store.dense_dim()
            if dim != stored.dim:
                raise IndexCorruptError(
                    f"the Qdrant collection {store.location} holds dense vectors of size {dim}, "
                    f"its manifest says {stored.dim}; it was changed outside newsrag: re-index "
                    f"into a new collection"
                )
        except BaseException:
            store.close()
            raise
        return cls(store, stored, state)

    @staticmethod
    def exists(
        location: str | Path, *, collection: str | None = None, api_key: str | None = None
    ) -> bool:
        """True when the collection exists (without creating anything)."""
        parsed = parse_location(location, collection)
        _check_directory(parsed)
        if parsed.kind in ("path", "edge") and not _present(parsed):
            return False
        store = open_store(location, collection=collection, api_key=api_key)
        try:
            return store.exists()
        finally:
            store.close()

    # -- documents -------------------------------------------------------------------------

    def content_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """doc_id -> stored content hash, for the given ids that are in the index."""
        found = self._docs(list(dict.fromkeys(doc_ids)), ("doc_id", "content_hash"))
        return {p["doc_id"]: p["content_hash"] for p in found.values()}

    def doc_ids_for_sources(self, sources: Iterable[str]) -> dict[str, list[str]]:
        """source -> doc ids stored from it, for every source asked about (empty list if none)."""
        wanted = list(dict.fromkeys(sources))
        out: dict[str, list[str]] = {s: [] for s in wanted}
        if not wanted:
            return out
        with self._mutex:
            where = Where(kind=KIND_DOC, sources=tuple(wanted))
            for f in self._open().scroll(where, ("doc_id", "source")):
                out[f.payload["source"]].append(f.payload["doc_id"])
        return {s: sorted(ids) for s, ids in out.items()}

    def documents(self) -> list[dict[str, Any]]:
        """Every document: doc_id, source, title, date, language, n_chunks (by doc_id)."""
        with self._mutex:
            rows = [
                {k: f.payload.get(k) for k in _DOC_FIELDS}
                for f in self._open().scroll(Where(kind=KIND_DOC), _DOC_FIELDS)
            ]
        return sorted(rows, key=lambda d: d["doc_id"])

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """One document with its text, metadata, url, content_hash, added_at and n_chunks."""
        found = self._docs([doc_id], True)
        if not found:
            return None
        payload = dict(next(iter(found.values())))
        payload.pop("kind", None)
        return payload

    def _docs(
        self, doc_ids: Sequence[str], fields: Sequence[str] | bool
    ) -> dict[str, dict[str, Any]]:
        ids = [point_id(KIND_DOC, d) for d in doc_ids]
        with self._mutex:
            fetched = self._open().retrieve(ids, fields if fields is True else ("kind", *fields))
        return {
            f.payload["doc_id"]: f.payload
            for f in fetched
            if f.payload.get("kind") == KIND_DOC and f.payload.get("doc_id") in doc_ids
        }

    # -- passages and evidence -------------------------------------------------------------

    def chunks(self, row_ids: Sequence[int]) -> list[StoredChunk]:
        """The passages with these row ids, in order; ids no longer stored are skipped."""
        ids = [int(i) for i in row_ids]
        with self._mutex:
            fetched = self._open().retrieve(list(dict.fromkeys(ids)), ("kind", *CHUNK_FIELDS))
        by_id = {
            f.id: stored_chunk(f.id, f.payload)
            for f in fetched
            if f.payload.get("kind") == KIND_CHUNK
        }
        return [by_id[i] for i in ids if i in by_id]

    def passage_texts(self, row_ids: Sequence[int]) -> dict[int, tuple[str, bytes | None]]:
        """row id -> (text, signature) of each passage; ids no longer stored are skipped."""
        ids = list(dict.fromkeys(int(i) for i in row_ids))
        with self._mutex:
            fetched = self._open().retrieve(ids, ("kind", "text", "signature"))
        return {
            f.id: (f.payload.get("text", ""), passage_signature(f.payload))
            for f in fetched
            if f.payload.get("kind") == KIND_CHUNK
        }

    def evidence(self, row_ids: Sequence[int]) -> dict[int, PassageEvidence]:
        """Passage vector and sentence spans/vectors of each passage (unknown ids skipped)."""
        ids = list(dict.fromkeys(int(i) for i in row_ids))
        with self._mutex:
            fetched = self._open().retrieve(ids, ("kind", "sentences"), (DENSE, SENTENCES))
        out: dict[int, PassageEvidence] = {}
        for f in fetched:
            if f.payload.get("kind") != KIND_CHUNK or DENSE not in f.vectors:
                continue
            spans = tuple((int(s), int(e)) for s, e in f.payload.get("sentences") or ())
            sentences = f.vectors.get(SENTENCES)
            matrix = None
            if sentences is not None and len(sentences) == len(spans) and spans:
                matrix = np.asarray(sentences, dtype=np.float32).reshape(len(spans), self.spec.dim)
            vector = np.asarray(f.vectors[DENSE], dtype=np.float32)
            out[f.id] = PassageEvidence(f.id, vector, spans, matrix)
        return out

    # -- search ----------------------------------------------------------------------------

    def search(
        self, vectors: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Per query vector, up to k (row id, inner product) pairs, best first; `allowed`
        restricts to those row ids inside the search."""
        queries = _query_matrix(vectors, self.spec.dim)
        where = _restriction(allowed)
        if where is None:
            return [[] for _ in range(len(queries))]
        searches = [Search(DENSE, q, int(k), where) for q in queries]
        with self._mutex:
            return self._open().query(searches)

    def keyword_search(
        self, terms: Sequence[Sequence[str]], k: int, *, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Per query (analysed terms, any may match), up to k (row id, BM25) pairs, best
        first: the stored BM25 term weights times Qdrant's IDF, summed over the terms."""
        where = _restriction(allowed)
        sparse = [query_sparse(t) for t in terms]
        out: list[list[tuple[int, float]]] = [[] for _ in sparse]
        todo = [i for i, s in enumerate(sparse) if s[0]]
        if where is None or not todo:
            return out
        with self._mutex:
            found = self._open().query([Search(SPARSE, sparse[i], int(k), where) for i in todo])
        for i, hits in zip(todo, found):
            out[i] = hits
        return out

    def chunk_row_ids(
        self,
        *,
        date_from: str | None = None,
        date_to: str | None = None,
        sources: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Row ids (int64, ascending) of passages whose document matches every filter. The
        array also carries the filter, so a search restricted to it sends the filter."""
        where = Where(
            kind=KIND_CHUNK,
            sources=None if sources is None else tuple(sources),
            languages=None if languages is None else tuple(languages),
            date_from=None if date_from is None else date_bound(date_from, end=False),
            date_to=None if date_to is None else date_bound(date_to, end=True),
        )
        with self._mutex:
            ids = sorted(f.id for f in self._open().scroll(where, False))
        return selection(np.asarray(ids, dtype=np.int64), where)

    # -- keyword analyzer ------------------------------------------------------------------

    def keyword_analyzer(self) -> str | None:
        """Id of the analyzer that made the stored keyword terms; None when they were weighted
        by an older rule than `KEYWORD_NORMS` (so they are re-made, as for a new analyzer)."""
        if self._state.get("keyword_norms") != KEYWORD_NORMS:
            return None
        return self._state.get("keyword_analyzer")

    def reanalyze_keywords(
        self,
        analyzer_id: str,
        analyze: Callable[[Sequence[tuple[str, str | None]]], list[Sequence[str]]],
    ) -> int:
        """Re-make every passage's keyword terms (the BM25 average length is re-estimated
        from the first batch); returns how many. Not atomic: an interrupted run is redone on
        the next open, because the analyzer id is recorded last."""
        with self._mutex:
            store = self._open()
            n, avgdl = 0, None
            batch: list[tuple[int, str, str | None]] = []
            for f in store.scroll(Where(kind=KIND_CHUNK), ("text", "language")):
                batch.append((f.id, f.payload.get("text", ""), f.payload.get("language")))
                if len(batch) >= _WRITE_BATCH:
                    avgdl = self._reanalyze_batch(batch, analyze, avgdl)
                    n, batch = n + len(batch), []
            if batch:
                avgdl = self._reanalyze_batch(batch, analyze, avgdl)
                n += len(batch)
            self._save_state(
                keyword_analyzer=analyzer_id, keyword_avgdl=avgdl, keyword_norms=KEYWORD_NORMS
            )
            return n

    def _reanalyze_batch(
        self,
        batch: list[tuple[int, str, str | None]],
        analyze: Callable[[Sequence[tuple[str, str | None]]], list[Sequence[str]]],
        avgdl: float | None,
    ) -> float | None:
        terms = analyze([(text, lang) for _, text, lang in batch])
        avgdl = avgdl or _mean_length(terms)
        items = [(row, document_sparse(t, avgdl or 1.0)) for (row, _, _), t in zip(batch, terms)]
        self._open().set_sparse(items)
        return avgdl

    # -- writing ---------------------------------------------------------------------------

    def write(
        self, upserts: Sequence[DocumentRecord] = (), removals: Iterable[str] = ()
    ) -> WriteResult:
        """Add, replace and remove documents. Every record and vector is checked before
        anything is sent; unchanged content hashes cost nothing; a crash part-way leaves the
        touched documents marked changed (see the module docstring)."""
        with self._mutex:
            store = self._open()
            removal_ids = _removal_ids(removals)
            records = self._validated(list(upserts), set(removal_ids))
            stored = self._docs(
                [d.doc_id for d in records] + removal_ids, ("doc_id", "content_hash")
            )
            changed = [
                d for d in records if stored.get(d.doc_id, {}).get("content_hash") != d.content_hash
            ]
            gone = [d for d in removal_ids if d in stored]
            replaced = [d.doc_id for d in changed if d.doc_id in stored]
            if not changed and not gone:
                return WriteResult(unchanged=len(records))
            self._check_collisions(changed, set(replaced) | set(gone))
            avgdl = self._state.get("keyword_avgdl") or _mean_length(
                [c.terms for d in changed for c in d.chunks if c.terms is not None]
            )
            now = manifest_mod.now_iso()
            # 1. mark every touched document pending, 2. take out its old passages,
            # 3. write the new passages, 4. write the real content hashes / drop the documents.
            store.upsert(
                [
                    PointData(point_id(KIND_DOC, d.doc_id), document_payload(d, PENDING, now))
                    for d in changed
                ]
            )
            store.set_payloads([(point_id(KIND_DOC, d), {"content_hash": PENDING}) for d in gone])
            removed_chunks = 0
            if replaced or gone:
                leaving = Where(kind=KIND_CHUNK, doc_ids=tuple(replaced + gone))
                removed_chunks = store.count(leaving)
                store.delete_where(leaving)
            self._write_chunks(store, changed, avgdl or 1.0)
            store.set_payloads(
                [(point_id(KIND_DOC, d.doc_id), {"content_hash": d.content_hash}) for d in changed]
            )
            store.delete_ids([point_id(KIND_DOC, d) for d in gone])
            self._save_state(
                generation=int(self._state.get("generation", 0)) + 1,
                updated_at=now,
                keyword_avgdl=avgdl,
            )
            return WriteResult(
                added=len(changed) - len(replaced),
                updated=len(replaced),
                removed=len(gone),
                unchanged=len(records) - len(changed),
                chunks_added=sum(len(d.chunks) for d in changed),
                chunks_removed=removed_chunks,
            )

    def _write_chunks(
        self, store: PointStore, docs: Sequence[DocumentRecord], avgdl: float
    ) -> None:
        batch: list[PointData] = []
        for doc in docs:
            for chunk in doc.chunks:
                sentences = None if chunk.sentence_vectors is None else fp16(chunk.sentence_vectors)
                batch.append(
                    PointData(
                        id=point_id(KIND_CHUNK, chunk.chunk_id),
                        payload=chunk_payload(doc, chunk),
                        dense=np.asarray(chunk.vector, dtype=np.float32),
                        sentences=sentences,
                        sparse=None if chunk.terms is None else document_sparse(chunk.terms, avgdl),
                    )
                )
                if len(batch) >= _WRITE_BATCH:
                    store.upsert(batch)
                    batch = []
        store.upsert(batch)

    def _validated(
        self, upserts: list[DocumentRecord], removal_ids: set[str]
    ) -> list[DocumentRecord]:
        """The checks of the local index, so both refuse the same records with the same words."""
        seen_docs: set[str] = set()
        seen_chunks: dict[str, str] = {}
        for doc in upserts:
            _check_document(doc)
            if doc.doc_id in seen_docs:
                raise IndexUsageError(
                    f"document {doc.doc_id!r} appears twice in one write; pass it once"
                )
            if doc.doc_id in removal_ids:
                raise IndexUsageError(
                    f"document {doc.doc_id!r} is both upserted and removed in one write; do one"
                )
            seen_docs.add(doc.doc_id)
            for chunk in doc.chunks:
                _check_chunk(chunk, doc.doc_id, seen_chunks)
                _check_sentence_vectors(chunk, doc.doc_id, self.spec.dim)
                self._check_vector(chunk.vector, chunk.chunk_id, doc.doc_id)
        return upserts

    def _check_vector(self, vector: Any, chunk_id: str, doc_id: str) -> None:
        dim = self.spec.dim
        shape = np.shape(vector)
        if shape != (dim,):
            got = shape[0] if len(shape) == 1 else f"shape {shape}"
            raise IndexMismatchError(
                f"the vector of chunk {chunk_id!r} (document {doc_id!r}) has dimension {got}, but "
                f"the index holds dimension {dim} (embedding model {self.spec.embedder_id!r}); "
                f"embed with that model or re-index into a new collection"
            )
        v = np.asarray(vector, dtype=np.float32)
        if not np.all(np.isfinite(v)):
            raise IndexUsageError(
                f"the vector of chunk {chunk_id!r} (document {doc_id!r}) is not finite"
            )
        if self.spec.normalized and abs(float(np.linalg.norm(v)) - 1.0) > _NORM_TOLERANCE:
            raise IndexMismatchError(
                f"the vector of chunk {chunk_id!r} (document {doc_id!r}) has length "
                f"{float(np.linalg.norm(v)):.4g}, but the index stores normalized vectors; "
                f"normalize the embeddings (or build an index with normalized=False)"
            )

    def _check_collisions(self, docs: Sequence[DocumentRecord], leaving: set[str]) -> None:
        """A chunk id another document holds (as locally: chunk ids are unique across the
        index), or, once in 2^63, two ids hashing to one point id: refused before writing."""
        want = {
            point_id(KIND_CHUNK, c.chunk_id): (c.chunk_id, d.doc_id) for d in docs for c in d.chunks
        }
        want.update({point_id(KIND_DOC, d.doc_id): (None, d.doc_id) for d in docs})
        for f in self._open().retrieve(list(want), ("kind", "chunk_id", "doc_id")):
            chunk_id, doc_id = want[f.id]
            owner = f.payload.get("doc_id")
            if chunk_id is None:
                if f.payload.get("kind") == KIND_DOC and owner == doc_id:
                    continue
            elif f.payload.get("chunk_id") == chunk_id and (owner == doc_id or owner in leaving):
                continue
            if chunk_id is not None and f.payload.get("chunk_id") == chunk_id:
                raise IndexUsageError(
                    f"chunk id {chunk_id!r} of document {doc_id!r} is already used by document "
                    f"{owner!r}; chunk ids must be unique across the index (derive them from "
                    f"the doc id)"
                )
            raise IndexUsageError(
                f"point id {f.id} of {chunk_id or doc_id!r} collides with the stored "
                f"{f.payload.get('kind')} {f.payload.get('chunk_id') or owner!r} (a 63-bit hash "
                f"collision); give the document another id"
            )

    # -- the manifest ----------------------------------------------------------------------

    def _save_state(self, **changes: Any) -> None:
        state = {**self._state, **changes}
        self._open().set_payloads([(MANIFEST_ID, changes)])
        self._state = state

    def info(self) -> dict[str, Any]:
        """path, backend, format_version, spec, counts, generation, sizes, times."""
        with self._mutex:
            store = self._open()
            counts = {
                "documents": store.count(Where(kind=KIND_DOC)),
                "chunks": store.count(Where(kind=KIND_CHUNK)),
            }
        return {
            "path": self.path,
            "backend": "qdrant",
            "format_version": FORMAT_VERSION,
            "spec": self.spec.to_json(),
            "counts": counts,
            "generation": int(self._state.get("generation", 0)),
            "size_bytes": _size_on_disk(self.path),
            "created_at": self._state.get("created_at"),
            "updated_at": self._state.get("updated_at"),
        }

    # -- plumbing --------------------------------------------------------------------------

    def _open(self) -> PointStore:
        if self._store is None:
            raise IndexUsageError(
                f"the index at {self.path} is closed; open it again with QdrantIndex.open"
            )
        return self._store

    def close(self) -> None:
        """Close the connection (or the local store). Idempotent."""
        with self._mutex:
            if self._store is not None:
                self._store.close()
                self._store = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"QdrantIndex({self.path!r}, embedder={self.spec.embedder_id!r}, dim={self.spec.dim})"
        )


# -- module helpers ------------------------------------------------------------------------


def _create(store: PointStore, spec: IndexSpec, options: CollectionOptions) -> None:
    store.create(options)
    now = manifest_mod.now_iso()
    state = {
        "kind": KIND_MANIFEST,
        "format_version": FORMAT_VERSION,
        **spec.to_json(),
        "generation": 0,
        "created_at": now,
        "updated_at": now,
        "keyword_analyzer": None,
        "keyword_avgdl": None,
        "keyword_norms": KEYWORD_NORMS,
    }
    store.upsert([PointData(MANIFEST_ID, state)])
    log.info(
        "created Qdrant collection %s (%s, dim %d)", store.location, spec.embedder_id, spec.dim
    )


def _read_manifest(store: PointStore) -> tuple[IndexSpec, dict[str, Any]]:
    found = store.retrieve([MANIFEST_ID], True)
    if not found or found[0].payload.get("kind") != KIND_MANIFEST:
        raise IndexUsageError(
            f"the Qdrant collection {store.location} is not a newsrag index (it has no manifest "
            f"point); name another collection (qdrant://HOST:PORT/COLLECTION)"
        )
    state = dict(found[0].payload)
    version = state.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise IndexCorruptError(
            f"the manifest of {store.location} has no valid format_version (got {version!r}); "
            f"re-index into a new collection"
        )
    if version > FORMAT_VERSION:
        raise IndexMismatchError(
            f"The index at {store.location} was written by a newer version (format {version}, "
            f"this one reads {FORMAT_VERSION}); upgrade newsrag"
        )
    return IndexSpec.from_json(state), state


def _query_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Query vectors as float32 (n, dim); a wrong dimension names both."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise IndexMismatchError(
            f"query vectors have shape {np.shape(vectors)}, but the index holds dimension {dim}; "
            f"embed the query with the index's model"
        )
    if not np.all(np.isfinite(matrix)):
        raise IndexUsageError("query vectors contain NaN or infinity")
    return matrix


def _restriction(allowed: np.ndarray | None) -> Where | None:
    """The filter a search runs under; None when nothing is allowed."""
    if allowed is None:
        return Where(kind=KIND_CHUNK)
    if isinstance(allowed, RowSelection) and allowed.where is not None:
        return allowed.where if len(allowed) else None
    ids = tuple(int(i) for i in np.asarray(allowed).ravel())
    return Where(kind=KIND_CHUNK, ids=ids) if ids else None


def _mean_length(terms: Sequence[Sequence[str] | None]) -> float | None:
    """BM25's average passage length, as the local index (tantivy) computes it: its state
    record counts as a passage without terms."""
    lengths = [term_count(t) for t in terms if t is not None]
    return sum(lengths) / (len(lengths) + 1) if lengths and sum(lengths) else None


_LOCAL_INDEX_FILES = ("manifest.json", "chunks.sqlite")


def _check_directory(location: Location) -> None:
    """A directory given for local mode or qdrant-edge must not be a local index (or hold
    anything else): Qdrant's files would be written beside the index's."""
    if location.kind not in ("path", "edge"):
        return
    target = Path(location.target)
    if target.is_file():
        raise IndexUsageError(f"{target} is a file; give a directory for the Qdrant index")
    if any((target / name).exists() for name in _LOCAL_INDEX_FILES):
        raise IndexUsageError(
            f"{target} holds a local newsrag index, not a Qdrant one; move it with "
            f"`rag migrate --from {target} --to NEW_DIR_OR_URL`, or use --backend local"
        )
    if target.is_dir() and not _present(location):
        names = sorted(p.name for p in target.iterdir())
        if names:
            what = "qdrant-edge shard" if location.kind == "edge" else "Qdrant local-mode"
            raise IndexUsageError(
                f"{target} is not a {what} directory (it holds {', '.join(names[:3])}"
                f"{', ...' if len(names) > 3 else ''}); give a new or empty directory"
            )


def _present(location: Location) -> bool:
    """Whether a local directory holds a store (without creating anything)."""
    marker = "edge_config.json" if location.kind == "edge" else "meta.json"
    return (Path(location.target) / marker).exists()


def _size_on_disk(path: str) -> int | None:
    """Bytes of a local-mode directory; None for a server (ask the cluster's metrics)."""
    target = Path(path[5:] if path.startswith("edge:") else path)
    if "://" in path or path.startswith(":memory:") or not target.is_dir():
        return None
    return sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
