"""`Index`: one index directory, the facade over the chunk store, the vector file and the manifest.

SQLite is the single commit point. `vectors.faiss` and `manifest.json` are derived from it and
rewritten (atomically, manifest last) after every committed write; on open, a FAISS file whose
manifest does not match SQLite's generation or checksum is rebuilt from the `vectors` table. So
a crash at any moment leaves an index that opens with exactly the last committed state.

Large indexes search through two more derived structures, each kept current in the background
(`index.upkeep`) and ignored whenever it is not: an HNSW graph over the vectors (`index.ann`,
from `AnnOptions.threshold` passages on) and a tantivy index of the keyword terms
(`index.keywords`; SQLite's FTS5 table answers while it is behind).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import filelock
import numpy as np

from . import ann, atomic, crashpoints, keywords, manifest, upkeep
from .ann import AnnOptions, ApproximateVectors, GraphRecord
from .errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexUsageError,
)
from .manifest import FORMAT_VERSION, MANIFEST_NAME, VECTORS_NAME, IndexSpec, Manifest
from .records import ChunkRecord, DocumentRecord, PassageEvidence, StoredChunk, WriteResult
from .store import (
    DB_NAME,
    PreparedDocument,
    Store,
    WriteOutcome,
    create_database,
    metadata_json,
)
from .upkeep import Upkeep
from .vectors import FaissFlatIndex, Hits, as_matrix, sorted_ids

if TYPE_CHECKING:
    from typing_extensions import Self

logger = logging.getLogger(__name__)

LOCK_NAME = "write.lock"
_SIGNATURE_BATCH = 500  # passages given their signature per transaction of the backfill
_NORM_TOLERANCE = 1e-3


class Index:
    """An on-disk index: documents, chunks and their vectors. Open it with `Index.open`.

    Readers need no lock and may run in several processes while one process writes; a reader
    picks up other processes' commits on its next `search`. Writes hold `write.lock`. Methods
    are safe to call from several threads (they are serialised).
    """

    def __init__(
        self,
        path: Path,
        spec: IndexSpec,
        store: Store,
        lock_timeout: float,
        ann_options: AnnOptions | None = None,
    ) -> None:
        self.path = path
        self.spec = spec
        self._store: Store | None = store
        self._lock_timeout = lock_timeout
        self._lock = filelock.FileLock(str(path / LOCK_NAME))
        self._mutex = threading.RLock()
        self._vectors = FaissFlatIndex.empty(spec.dim)
        self._generation = -1  # of the vectors in memory; -1 forces a load
        self._ann_options = ann_options or AnnOptions()
        self._graph: ApproximateVectors | None = None
        self._graph_record: GraphRecord | None = None  # of the graph in memory, once on disk
        self._graph_refused: GraphRecord | None = None  # a damaged one: not read again
        self._keywords: keywords.TantivyKeywords | None = None
        self._keywords_checked = -1  # generation at which the keyword index was last looked for
        self._upkeep = Upkeep(f"index {path.name}")

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        spec: IndexSpec | None = None,
        *,
        create: bool = False,
        lock_timeout: float = 10.0,
        ann: AnnOptions | None = None,
    ) -> Index:
        """Open the index at `path`, checking it was built with `spec` (None: take it as stored).

        With `create=True` (which needs a spec) a missing or empty directory becomes a new index.
        `ann` says from what size and how searches use an approximate graph (default:
        `AnnOptions()`).
        """
        directory = Path(path).expanduser()
        if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)):
            raise IndexUsageError(f"lock_timeout must be a number of seconds, got {lock_timeout!r}")
        if lock_timeout < 0:
            raise IndexUsageError(f"lock_timeout must be >= 0 seconds, got {lock_timeout}")
        if not _is_index_directory(directory):
            if not create or spec is None:
                if create:
                    raise IndexUsageError("creating an index needs an IndexSpec (embedder id, dim)")
                raise IndexNotFoundError(
                    f"No index at {directory}. Run `rag index PATH --index {directory}` first "
                    f"to build one."
                )
            _create(directory, spec, lock_timeout)
        return cls._open_existing(directory, spec, lock_timeout, ann)

    @staticmethod
    def exists(path: str | Path) -> bool:
        """True when `path` holds an index; False when missing or empty; IndexUsageError otherwise."""
        return _is_index_directory(Path(path).expanduser())

    @classmethod
    def _open_existing(
        cls, path: Path, spec: IndexSpec | None, lock_timeout: float, ann: AnnOptions | None
    ) -> Index:
        recorded = _read_manifest(path)
        if not (path / DB_NAME).exists():
            raise IndexCorruptError(
                f"{path} has a {MANIFEST_NAME} but no {DB_NAME}, which holds the index's data; "
                f"it cannot be recovered: re-index into a new directory (--index NEW_DIR)"
            )
        store = Store.open(path)
        try:
            _migrate(store, path, lock_timeout)
            stored_version = store.format_version()
            if stored_version > FORMAT_VERSION:
                raise _newer_format(path, stored_version)
            stored_spec = store.spec()
            if spec is not None:
                manifest.check_spec(path, stored_spec, spec)
            index = cls(path, stored_spec, store, lock_timeout, ann)
            with index._mutex:
                index._open_keywords()
                rebuilt = index._load_vectors(recorded)
                if rebuilt:
                    index._try_persist()
        except BaseException:
            store.close()
            raise
        return index

    # -- reading ------------------------------------------------------------------------------

    def content_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """doc_id -> stored content hash, for the given ids that are in the index."""
        with self._mutex:
            return self._open_store().content_hashes(doc_ids)

    def doc_ids_for_sources(self, sources: Iterable[str]) -> dict[str, list[str]]:
        """source -> doc ids stored from it, for every source asked about (empty list if none)."""
        with self._mutex:
            return self._open_store().doc_ids_for_sources(sources)

    def search(
        self, vectors: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Per query vector, up to k (row id, score) pairs, best first.

        `vectors` has shape (n, dim) or (dim,). `allowed` restricts the search to those row ids
        (filtering happens inside the search, so k hits come back whenever k allowed exist).
        """
        with self._mutex:
            self._open_store()
            queries = as_matrix(vectors, self.spec.dim)
            self._sync()
            if self._graph is not None and self._ann_options.wanted(len(self._vectors)):
                return self._graph.search(queries, k, self._vectors, allowed)
            hits: Hits = self._vectors.search(queries, k, allowed=allowed)
            return hits

    def exact_search(
        self, vectors: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """`search` without the approximate graph: exact inner products over every vector
        (what a graph's recall is measured against)."""
        with self._mutex:
            self._open_store()
            queries = as_matrix(vectors, self.spec.dim)
            self._sync()
            return self._vectors.search(queries, k, allowed=allowed)

    def keyword_search(
        self, terms: Sequence[Sequence[str]], k: int, *, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Per query (a list of analysed terms), up to k (row id, BM25 score) pairs, best first.

        Any term may match (OR), ranked by BM25: the tantivy index when it is current, else
        SQLite's FTS5 table. `allowed` restricts to those row ids.
        """
        with self._mutex:
            store = self._open_store()
            engine = self._current_keywords(store)
            if engine is None:
                return [store.keyword_search(t, k, allowed) for t in terms]
            allowed_ids = None if allowed is None else sorted_ids(allowed)
            return [engine.search(t, k, allowed_ids) for t in terms]

    def evidence(self, row_ids: Sequence[int]) -> dict[int, PassageEvidence]:
        """Passage vector and sentence spans/vectors of each chunk (ids not stored are skipped)."""
        with self._mutex:
            return self._open_store().evidence(row_ids, self.spec.dim)

    def keyword_analyzer(self) -> str | None:
        """Id of the analyzer that made the stored keyword terms; None for an index without."""
        with self._mutex:
            return self._open_store().keyword_analyzer()

    def reanalyze_keywords(
        self,
        analyzer_id: str,
        analyze: Callable[[Sequence[tuple[str, str | None]]], list[Sequence[str]]],
    ) -> int:
        """Re-make every chunk's keyword terms with `analyze` ((text, language) pairs -> terms),
        in one transaction, and record `analyzer_id`. Returns the number of chunks analysed.

        For indexes written before keyword search existed, or by another analyzer version.
        """
        with self._mutex, self._holding_lock():
            store = self._open_store()
            rows = list(store.chunk_texts())
            terms = analyze([(text, lang) for _, text, lang in rows]) if rows else []
            with store.write_transaction():
                store.replace_keywords(zip((r[0] for r in rows), terms))
                store.set_keyword_analyzer(analyzer_id)
            self._rebuild_keywords(store)
            return len(rows)

    def set_keyword_analyzer(self, analyzer_id: str) -> None:
        """Record the analyzer of an index whose chunks all carry terms from it."""
        with self._mutex, self._holding_lock():
            store = self._open_store()
            generation, before = store.generation(), store.keyword_analyzer()
            with store.write_transaction():
                store.set_keyword_analyzer(analyzer_id)
            engine = self._keywords_for_write()
            if engine is not None and engine.current(generation, before):
                engine.apply(np.empty(0, np.int64), (), generation, analyzer_id)
            self._schedule_upkeep()

    def chunks(self, row_ids: Sequence[int]) -> list[StoredChunk]:
        """The chunks with these row ids, in the given order.

        Ids not in the index (e.g. removed by another process since the search) are skipped;
        match results up by `StoredChunk.row_id`.
        """
        with self._mutex:
            return self._open_store().chunks(row_ids)

    def passage_texts(self, row_ids: Sequence[int]) -> dict[int, tuple[str, bytes | None]]:
        """row id -> (text, signature) of each chunk; ids not in the index are skipped."""
        with self._mutex:
            return self._open_store().passage_texts(row_ids)

    def chunk_row_ids(
        self,
        *,
        date_from: str | None = None,
        date_to: str | None = None,
        sources: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Row ids (int64, ascending) of chunks whose document matches every given filter.

        Dates are ISO and may be partial: date_from "2022-06" means >= 2022-06-01, date_to
        "2022-06" means <= 2022-06-30. A document with a partial date matches if its period
        overlaps the range; documents without a date are excluded when a date filter is set.
        """
        with self._mutex:
            return self._open_store().chunk_row_ids(
                date_from=date_from, date_to=date_to, sources=sources, languages=languages
            )

    def documents(self) -> list[dict[str, Any]]:
        """Every document: doc_id, source, title, date, language, n_chunks (by doc_id)."""
        with self._mutex:
            return self._open_store().documents()

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """One document with its text, metadata, url, content_hash, added_at and n_chunks."""
        with self._mutex:
            return self._open_store().document(doc_id)

    def info(self) -> dict[str, Any]:
        """path, format_version, spec, counts, generation, size_bytes, created_at, updated_at."""
        with self._mutex:
            store = self._open_store()
            with store.snapshot():
                generation = store.generation()
                documents, chunks = store.counts()
                created_at = store.created_at()
            recorded = _read_manifest(self.path, quiet=True)
            updated_at = recorded.updated_at if recorded is not None else None
            return {
                "path": str(self.path),
                "format_version": FORMAT_VERSION,
                "spec": self.spec.to_json(),
                "counts": {"documents": documents, "chunks": chunks},
                "generation": generation,
                "size_bytes": _directory_size(self.path),
                "created_at": created_at,
                "updated_at": updated_at,
                "search": self._search_info(store),
            }

    def _search_info(self, store: Store) -> dict[str, Any]:
        """How searches run now: exact or approximate vectors, tantivy or FTS5 keywords."""
        self._sync()
        graph = self._graph if self._ann_options.wanted(len(self._vectors)) else None
        engine = self._current_keywords(store)
        return {
            "vectors": "approximate" if graph is not None else "exact",
            "graph_vectors": len(graph.graph) if graph is not None else 0,
            "graph_pending": graph.pending if graph is not None else 0,
            "keywords": "tantivy" if engine is not None else "fts5",
            "upkeep": self._upkeep.busy(),
        }

    # -- writing ------------------------------------------------------------------------------

    def write(
        self, upserts: Sequence[DocumentRecord] = (), removals: Iterable[str] = ()
    ) -> WriteResult:
        """Add, replace and remove documents in one atomic transaction.

        An upsert whose doc_id is stored with the same content_hash is unchanged (no work);
        otherwise the old document, chunks and vectors are replaced. Removals are doc ids;
        unknown ones are ignored. Every vector is checked before the database is touched.
        """
        with self._mutex:
            self._open_store()
            removal_ids = _removal_ids(removals)
            prepared = self._prepare(list(upserts), set(removal_ids))
            if not prepared and not removal_ids:
                return WriteResult()
            with self._holding_lock():
                return self._write_locked(prepared, removal_ids)

    def _write_locked(
        self, prepared: list[PreparedDocument], removal_ids: list[str]
    ) -> WriteResult:
        store = self._open_store()
        self._sync()  # another process may have written since we loaded the vectors
        atomic.remove_stale_temp_files(self.path)
        ann.remove_unreferenced(self.path)  # graphs replaced, or left by a killed writer
        keywords.remove_unreferenced(self.path)
        before = store.generation()
        with store.write_transaction():
            outcome = store.apply_write(prepared, removal_ids, manifest.now_iso(), self.spec.dim)
            crashpoints.reached("before_commit")
        if not outcome.changed:
            return outcome.result
        crashpoints.reached("after_commit")
        self._apply_to_vectors(outcome, store.generation())
        self._apply_to_keywords(store, outcome, before)
        try:
            self._persist()
        except OSError as exc:
            logger.error(
                "the write to %s is committed, but %s/%s could not be rewritten (%s); they will "
                "be rebuilt when the index is next opened",
                self.path, VECTORS_NAME, MANIFEST_NAME, exc,
            )  # fmt: skip
        return outcome.result

    def _apply_to_vectors(self, outcome: WriteOutcome, generation: int) -> None:
        try:
            self._vectors.remove(outcome.removed_row_ids)
            self._vectors.add(outcome.added_row_ids, outcome.added_vectors)
            if self._graph is not None:
                self._graph.apply(
                    outcome.removed_row_ids, outcome.added_row_ids, outcome.added_vectors
                )
        except BaseException:
            self._generation = -1  # memory no longer matches any generation: reload next time
            raise
        self._generation = generation
        self._schedule_upkeep()

    def _apply_to_keywords(self, store: Store, outcome: WriteOutcome, before: int) -> None:
        """Follow a committed write in the keyword index, if it was current before it (else
        it is caught up in the background; FTS5 answers meanwhile)."""
        engine = self._keywords_for_write()
        analyzer = store.keyword_analyzer()
        if engine is None or not engine.current(before, analyzer):
            self._schedule_upkeep()
            return
        added = [
            (int(row), terms)
            for row, terms in zip(outcome.added_row_ids, outcome.added_terms)
            if terms is not None
        ]
        try:
            engine.apply(outcome.removed_row_ids, added, store.generation(), analyzer)
        except Exception as exc:  # committed in SQLite: FTS5 serves until it is caught up
            logger.error("cannot update the keyword index of %s (%s)", self.path, exc)
            self._schedule_upkeep()
            return
        crashpoints.reached("keywords_applied")

    def _prepare(
        self, upserts: list[DocumentRecord], removal_ids: set[str]
    ) -> list[PreparedDocument]:
        """Validate every record and vector before anything touches the database."""
        prepared: list[PreparedDocument] = []
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
            vectors = self._chunk_vectors(doc)
            prepared.append(PreparedDocument(doc, vectors, metadata_json(doc.metadata, doc.doc_id)))
        return prepared

    def _chunk_vectors(self, doc: DocumentRecord) -> np.ndarray:
        dim = self.spec.dim
        if not doc.chunks:
            return np.empty((0, dim), dtype=np.float32)
        for chunk in doc.chunks:
            _check_sentence_vectors(chunk, doc.doc_id, dim)
            shape = np.shape(chunk.vector)
            if shape != (dim,):
                got = shape[0] if len(shape) == 1 else f"shape {shape}"
                raise IndexMismatchError(
                    f"the vector of chunk {chunk.chunk_id!r} (document {doc.doc_id!r}) has "
                    f"dimension {got}, but the index holds dimension {dim} (embedding model "
                    f"{self.spec.embedder_id!r}); embed with that model or re-index into a new "
                    f"directory (--index NEW_DIR)"
                )
        stacked = np.stack([np.asarray(chunk.vector) for chunk in doc.chunks])
        matrix = as_matrix(stacked, dim, what=f"a vector of document {doc.doc_id!r}")
        if self.spec.normalized:
            norms = np.linalg.norm(matrix, axis=1)
            bad = np.flatnonzero(np.abs(norms - 1.0) > _NORM_TOLERANCE)
            if bad.size:
                first = int(bad[0])
                raise IndexMismatchError(
                    f"the vector of chunk {doc.chunks[first].chunk_id!r} (document "
                    f"{doc.doc_id!r}) has length {norms[first]:.4g}, but the index stores "
                    f"normalized vectors; normalize the embeddings (or build an index with "
                    f"normalized=False)"
                )
        return matrix

    # -- the derived files --------------------------------------------------------------------

    def _load_vectors(self, recorded: Manifest | None) -> bool:
        """Load the FAISS file if it matches SQLite, else rebuild it. True if it was rebuilt."""
        store = self._open_store()
        with store.snapshot():
            generation = store.generation()
            vectors, problem = self._vectors_from_file(recorded, generation)
            if vectors is None:
                logger.warning(
                    "rebuilding %s from %s: %s", self.path / VECTORS_NAME, DB_NAME, problem
                )
                ids, matrix = store.all_vectors(self.spec.dim)
                vectors = FaissFlatIndex.build(self.spec.dim, ids, matrix)
        self._vectors = vectors
        self._generation = generation
        self._attach_graph()
        return problem is not None

    def _vectors_from_file(
        self, recorded: Manifest | None, generation: int
    ) -> tuple[FaissFlatIndex | None, str | None]:
        if recorded is None:
            return None, f"{MANIFEST_NAME} is missing or unreadable"
        if recorded.generation != generation:
            return None, (
                f"{MANIFEST_NAME} is at generation {recorded.generation} but {DB_NAME} at "
                f"{generation} (a write was interrupted or is in progress)"
            )
        if recorded.vectors_sha256 is None:
            return None, f"{MANIFEST_NAME} records no checksum for {VECTORS_NAME}"
        try:
            vectors = FaissFlatIndex.load(
                self.path / VECTORS_NAME, self.spec.dim, recorded.vectors_sha256
            )
        except IndexCorruptError as exc:
            return None, str(exc)
        if len(vectors) != recorded.chunks:
            return None, f"{VECTORS_NAME} holds {len(vectors)} vectors, not {recorded.chunks}"
        return vectors, None

    def _sync(self) -> None:
        """Reload the vectors if another process (or a failed step) changed SQLite since."""
        if self._open_store().generation() == self._generation:
            return
        self._load_vectors(_read_manifest(self.path, quiet=True))

    # -- the approximate graph and the keyword index (index.ann, index.keywords) ------------

    def settle(self, timeout: float | None = None) -> bool:
        """Start the background upkeep the index needs now (building the approximate graph,
        bringing the keyword index up to date) and wait until it is done; False if `timeout`
        seconds passed first. Searches never need this: they use what is current."""
        with self._mutex:
            self._open_store()
            self._sync()
            self._schedule_upkeep()
        return self._upkeep.wait(timeout)

    def _attach_graph(self) -> None:
        """After the vectors were (re)loaded: pair them with the newest graph (ours in memory,
        or the one on disk if another process saved a newer one), and queue what is missing."""
        if not self._ann_options.wanted(len(self._vectors)):
            self._graph = None
            return
        record = ann.read_record(self.path)
        graph = self._graph.graph if self._graph is not None else None
        unsaved = graph is not None and self._graph_record is None  # ours, newer than the disk's
        if (
            record is not None
            and record not in (self._graph_record, self._graph_refused)
            and not unsaved
        ):
            try:
                graph = ann.HnswGraph.load(self.path, record, self.spec.dim)
                self._graph_record = record
            except IndexCorruptError as exc:
                logger.warning("not using the graph of %s (%s); rebuilding it", self.path, exc)
                self._graph_refused = record
        if graph is not None:
            self._graph = ApproximateVectors(graph, self._vectors, self._ann_options)
        self._schedule_upkeep()

    def _open_keywords(self) -> None:
        """Open the tantivy keyword index `keywords.json` names (None: FTS5 until built)."""
        if not keywords.available():
            return
        self._keywords = keywords.TantivyKeywords.open(self.path)
        self._keywords_checked = self._open_store().generation()
        self._schedule_upkeep()

    def _current_keywords(self, store: Store) -> keywords.TantivyKeywords | None:
        """The keyword index if it holds exactly SQLite's current state, else None."""
        engine = self._keywords
        generation, analyzer = store.generation(), store.keyword_analyzer()
        if engine is not None and engine.current(generation, analyzer):
            return engine
        if self._keywords_checked != generation:  # another process wrote: look again
            self._keywords_checked = generation
            engine = self._refresh_keywords()
            if engine is not None and engine.current(generation, analyzer):
                return engine
            self._schedule_upkeep()
        return None

    def _refresh_keywords(self) -> keywords.TantivyKeywords | None:
        """See the keyword index's latest commit, reopening it if `keywords.json` moved on."""
        engine = self._keywords
        try:
            if engine is not None and keywords.read_pointer(self.path) == engine.name:
                engine.reload()
                return engine
        except (OSError, ValueError) as exc:
            logger.info("reopening the keyword index of %s (%s)", self.path, exc)
        self._keywords = keywords.TantivyKeywords.open(self.path) if keywords.available() else None
        return self._keywords

    def _keywords_for_write(self) -> keywords.TantivyKeywords | None:
        """Under write.lock: the keyword index as on disk now (another process may have
        written or rebuilt it)."""
        if not keywords.available():
            return None
        return self._refresh_keywords()

    def _rebuild_keywords(self, store: Store) -> None:
        """Under write.lock, after every passage's terms changed: a new keyword index."""
        if not keywords.available():
            return
        generation, analyzer = store.generation(), store.keyword_analyzer()
        built = keywords.TantivyKeywords.build(
            self.path, generation, analyzer, store.keyword_rows(), lambda: False
        )
        if built is not None:
            self._keywords = built.publish()

    def _schedule_upkeep(self) -> None:
        """Queue the background work the index needs: a graph once it is large enough or the
        changes since the last one pass `rebuild_share`; the keyword index when behind."""
        options, graph = self._ann_options, self._graph
        if options.wanted(len(self._vectors)) and (
            graph is None or graph.stale_share() > options.rebuild_share
        ):
            self._upkeep.submit("graph", self._build_graph)
        store = self._store
        if store is None:
            return
        if store.signatures_pending():
            self._upkeep.submit("signatures", self._fill_signatures)
        if not keywords.available():
            return
        engine = self._keywords
        if engine is None or not engine.current(store.generation(), store.keyword_analyzer()):
            self._upkeep.submit("keywords", self._update_keywords)

    def _build_graph(self) -> None:
        """Background: build a graph from a snapshot, use it, then save it (write.lock).
        First looks at the disk: another process may have saved a graph that will do."""
        with self._mutex:
            if self._store is None:
                return
            self._attach_graph()
            graph = self._graph
            if graph is not None and graph.stale_share() <= self._ann_options.rebuild_share:
                return
        cancelled = self._upkeep.cancelled
        graph = ann.build_from_store(self.path, self.spec.dim, self._ann_options, cancelled)
        if graph is None:
            return
        with self._mutex:
            if self._store is None:
                return
            self._graph = ApproximateVectors(graph, self._vectors, self._ann_options)
            self._graph_record = None
        record = ann.save_graph(
            self.path, graph, self._ann_options, self.path / LOCK_NAME, cancelled
        )
        with self._mutex:
            if record is not None and self._graph is not None and self._graph.graph is graph:
                self._graph_record = record

    def _fill_signatures(self) -> None:
        """Background: compute the near-duplicate signatures that passages written before
        them lack, in short transactions under write.lock (a writer waits one batch at most)."""
        cancelled = self._upkeep.cancelled
        store = Store.open(self.path)
        try:
            while not cancelled():
                with upkeep.write_lock(self.path / LOCK_NAME, cancelled) as held:
                    if not held:
                        return
                    with store.write_transaction():
                        if not store.fill_signatures(_SIGNATURE_BATCH):
                            return
        finally:
            store.close()

    def _update_keywords(self) -> None:
        """Background: bring the keyword index up to date, then use it."""
        engine = keywords.bring_up_to_date(
            self.path, self.path / LOCK_NAME, self._upkeep.cancelled
        )
        if engine is None:
            return
        with self._mutex:
            if self._store is not None:
                self._keywords = engine

    def _try_persist(self) -> None:
        """Save rebuilt vectors and manifest if no writer is active; otherwise leave it to it."""
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            logger.info("another process is writing to %s; it will rewrite the files", self.path)
            return
        except OSError as exc:
            logger.warning(
                "cannot take %s (%s); the rebuilt vectors stay in memory", LOCK_NAME, exc
            )
            return
        try:
            if self._open_store().generation() == self._generation:
                self._persist()
        except OSError as exc:
            logger.warning("cannot save the rebuilt %s (%s)", VECTORS_NAME, exc)
        finally:
            self._lock.release()

    def _persist(self) -> None:
        """Rewrite vectors.faiss, then manifest.json, for the current generation. Needs the lock."""
        store = self._open_store()
        checksum = self._vectors.save(
            self.path / VECTORS_NAME,
            before_replace=lambda: crashpoints.reached("faiss_tmp_written"),
        )
        crashpoints.reached("faiss_replaced")
        documents, chunks = store.counts()
        manifest.write(
            self.path,
            Manifest(
                spec=self.spec,
                documents=documents,
                chunks=chunks,
                generation=self._generation,
                vectors_sha256=checksum,
                created_at=store.created_at(),
                updated_at=manifest.now_iso(),
            ),
        )
        crashpoints.reached("after_manifest")

    # -- plumbing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _holding_lock(self) -> Iterator[None]:
        with _holding(self._lock, self.path, self._lock_timeout):
            yield

    def _open_store(self) -> Store:
        if self._store is None:
            raise IndexUsageError(
                f"the index at {self.path} is closed; open it again with Index.open"
            )
        return self._store

    def close(self) -> None:
        """Stop the background upkeep and close the database connection. Idempotent."""
        self._upkeep.close()  # before the mutex: a finishing task takes it to install its work
        with self._mutex:
            if self._store is not None:
                self._store.close()
                self._store = None
            self._vectors = FaissFlatIndex.empty(self.spec.dim)
            self._generation = -1
            self._graph, self._keywords = None, None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Index({str(self.path)!r}, embedder={self.spec.embedder_id!r}, dim={self.spec.dim})"


# -- module helpers ---------------------------------------------------------------------------


@contextlib.contextmanager
def _holding(lock: filelock.FileLock, path: Path, timeout: float) -> Iterator[None]:
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout as exc:
        raise IndexLockedError(
            f"Another process is writing to the index at {path} (it has held {path / LOCK_NAME} "
            f"for more than {timeout:g} s). Wait for that `rag index` or upload to finish, "
            "then retry (Index.open(..., lock_timeout=SECONDS) waits longer)."
        ) from exc
    try:
        yield
    finally:
        lock.release()


def _is_index_directory(path: Path) -> bool:
    """True for an index; False for a missing or empty directory; IndexUsageError for anything else."""
    if not path.exists():
        return False
    if not path.is_dir():
        raise IndexUsageError(
            f"{path} is a file, not an index directory; pass a directory to --index"
        )
    names = sorted(
        p.name for p in path.iterdir() if p.name != LOCK_NAME and not atomic.is_temp_file(p)
    )
    if MANIFEST_NAME in names or DB_NAME in names:
        return True
    if not names:
        return False
    sample = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    raise IndexUsageError(
        f"{path} is not a newsrag index: it has no {MANIFEST_NAME} but holds other files "
        f"({sample}). Pass --index a new or empty directory, or the directory of an existing "
        f"index."
    )


def _create(path: Path, spec: IndexSpec, lock_timeout: float) -> None:
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        atomic.fsync_dir(path.parent)
    with _holding(filelock.FileLock(str(path / LOCK_NAME)), path, lock_timeout):
        if _is_index_directory(path):
            return  # another process created it while we waited for the lock
        atomic.remove_stale_temp_files(path)
        now = manifest.now_iso()
        create_database(path, spec, now)
        if keywords.available():
            keywords.TantivyKeywords.create_empty(path, 0, None)
        checksum = FaissFlatIndex.empty(spec.dim).save(path / VECTORS_NAME)
        manifest.write(path, Manifest(spec, 0, 0, 0, checksum, now, now))
        logger.info("created index at %s (%s, dim %d)", path, spec.embedder_id, spec.dim)


def _migrate(store: Store, path: Path, lock_timeout: float) -> None:
    version = store.schema_version()
    if version > store.latest_schema_version():
        raise IndexMismatchError(
            f"The index at {path} has schema version {version}, this version of newsrag reads "
            f"up to {store.latest_schema_version()}; upgrade newsrag"
        )
    if version == store.latest_schema_version():
        return
    with _holding(filelock.FileLock(str(path / LOCK_NAME)), path, lock_timeout):
        store.migrate()


def _read_manifest(path: Path, *, quiet: bool = False) -> Manifest | None:
    """The parsed manifest, or None if missing or damaged (SQLite is the authority; it is
    rewritten). A manifest from a newer format raises IndexMismatchError unless `quiet`."""
    try:
        data = manifest.load_json(path)
        if data is None:
            return None
        manifest.read_format_version(data, path)
        return manifest.parse(data, path)
    except IndexCorruptError as exc:
        if not quiet:
            logger.warning("ignoring a damaged %s (%s); it will be rewritten", MANIFEST_NAME, exc)
        return None
    except IndexMismatchError:
        if quiet:
            return None
        raise


def _newer_format(path: Path, version: int) -> IndexMismatchError:
    return IndexMismatchError(
        f"The index at {path} was written by a newer version (format {version}, this one reads "
        f"{FORMAT_VERSION}); upgrade newsrag"
    )


def _removal_ids(removals: Iterable[str]) -> list[str]:
    if isinstance(removals, str):
        raise IndexUsageError(
            f"removals must be a list of doc ids, got the single string {removals!r}; "
            f"pass [{removals!r}]"
        )
    ids = list(dict.fromkeys(removals))
    bad = [r for r in ids if not isinstance(r, str)]
    if bad:
        raise IndexUsageError(f"removals must be doc id strings, got {bad[0]!r}")
    return ids


def _check_document(doc: object) -> None:
    if not isinstance(doc, DocumentRecord):
        raise IndexUsageError(f"upserts must be DocumentRecord objects, got {type(doc).__name__}")
    for name in ("doc_id", "source", "content_hash"):
        value = getattr(doc, name)
        if not isinstance(value, str) or not value:
            raise IndexUsageError(
                f"DocumentRecord.{name} must be a non-empty string, got {value!r}"
            )
    if not isinstance(doc.text, str):
        raise IndexUsageError(f"DocumentRecord.text of {doc.doc_id!r} must be a string")


def _check_chunk(chunk: object, doc_id: str, seen: dict[str, str]) -> None:
    if not isinstance(chunk, ChunkRecord):
        raise IndexUsageError(
            f"chunks of document {doc_id!r} must be ChunkRecord objects, got {type(chunk).__name__}"
        )
    if not isinstance(chunk.chunk_id, str) or not chunk.chunk_id:
        raise IndexUsageError(f"a chunk of document {doc_id!r} has an empty or non-string chunk_id")
    if chunk.chunk_id in seen:
        raise IndexUsageError(
            f"chunk id {chunk.chunk_id!r} is used by documents {seen[chunk.chunk_id]!r} and "
            f"{doc_id!r} in one write; chunk ids must be unique"
        )
    seen[chunk.chunk_id] = doc_id
    for name in ("ordinal", "start", "end"):
        if not _is_int(getattr(chunk, name)):
            raise IndexUsageError(
                f"chunk {chunk.chunk_id!r}: {name} must be an integer, got {getattr(chunk, name)!r}"
            )
    if chunk.page is not None and not _is_int(chunk.page):
        raise IndexUsageError(f"chunk {chunk.chunk_id!r}: page must be an integer or None")
    if not isinstance(chunk.text, str):
        raise IndexUsageError(f"chunk {chunk.chunk_id!r}: text must be a string")


def _check_sentence_vectors(chunk: ChunkRecord, doc_id: str, dim: int) -> None:
    vectors = chunk.sentence_vectors
    if vectors is None:
        return
    want = (len(chunk.sentences), dim)
    if np.shape(vectors) != want:
        raise IndexMismatchError(
            f"chunk {chunk.chunk_id!r} (document {doc_id!r}) has {len(chunk.sentences)} "
            f"sentences but sentence vectors of shape {np.shape(vectors)}; expected {want}"
        )
    if not np.all(np.isfinite(vectors)):
        raise IndexUsageError(f"chunk {chunk.chunk_id!r} has non-finite sentence vectors")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _directory_size(path: Path) -> int:
    total = 0
    for child in path.iterdir():
        with contextlib.suppress(OSError):
            if child.is_file():
                total += child.stat().st_size
    return total
