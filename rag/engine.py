"""`Engine`: the one facade over ingest, index, retrieval, answers and exports. It holds the
parts and hands each call to its room (`rag.ingest.indexer`, `rag.retrieval.pipeline`,
`rag.answer.pipeline`, `rag.export`). Thread-safe: one re-entrant lock guards the index, held
only while it is read or written; embedding documents and running a language model happen
outside it, so searches and asks never wait for an upload's embedding or another's answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index import Index, IndexBackend, IndexSpec, WriteResult, check_compatible
from rag.embedders import Embedder, create_embedder
from rag.errors import ConfigError
from rag.ingest.indexer import AddReport, Batch, Indexer, Progress, chunking_spec, index_spec
from rag.retrieval.analysis import Analyzer
from rag.retrieval.pipeline import Plan, Retriever, ensure_keywords, make_plan
from rag.settings import Settings, load_settings
from rag.types import Document, Filters, Hit
from rag.vocabulary import AnswerMode, ExportFormat, RetrievalMode

if TYPE_CHECKING:
    from rag.answer.generators import Generator
    from rag.answer.pipeline import Answerer
    from rag.answer.timeline import Timeline, TimelineBy
    from rag.answer.types import Answer, AnswerDelta, Turn
    from rag.export import Export

_PASSAGE_SCAN_BATCH = 512
"""Passages read at a time while `Engine.passage` looks one up by its chunk id."""


class Engine:
    """Open an index directory; add, remove, search, ask and export.

    >>> with Engine.open("my-index") as engine:
    ...     engine.add(["seeds/"])
    ...     answer = engine.ask("Was sagte Stoltenberg?")
    """

    def __init__(
        self,
        path: Path,
        settings: Settings,
        embedder: Embedder,
        index: IndexBackend | None,
        generator: Generator | None = None,
    ) -> None:
        self.path, self.settings, self.embedder = path, settings, embedder
        self.analyzer = Analyzer()
        self._index = index
        self._indexer = Indexer(settings, embedder, self.analyzer)
        self._retriever: Retriever | None = None
        self._answerer: Answerer | None = None
        self._generator = generator
        self._lock = threading.RLock()
        self._closed = False

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ) -> Engine:
        """Open the index at `path` (created on the first `add`); refuse one of another
        embedder or chunking before any model is loaded."""
        settings = settings or load_settings()
        path = Path(path) if path is not None else settings.index_dir
        embedder = embedder or create_embedder(settings.embedding)
        index = open_index(settings, path)
        if index is not None:
            check_compatible(
                index_location(settings, path),
                index.spec,
                embedder_id=embedder.id,
                chunking=chunking_spec(settings),
            )
        return cls(path, settings, embedder, index, generator)

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
            self._index, self._retriever, self._answerer, self._closed = None, None, None, True

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------- write
    def add(
        self,
        paths: Sequence[str | Path],
        *,
        password: str | None = None,
        on_progress: Progress | None = None,
    ) -> AddReport:
        """Ingest files and folders in one atomic write; unreadable ones are report problems."""
        batch = self._indexer.read(paths, password=password, on_progress=on_progress)
        return self._commit(batch, on_progress)

    def add_documents(
        self, documents: Sequence[Document], *, on_progress: Progress | None = None
    ) -> AddReport:
        """Add already-built `Document`s (from code rather than files)."""
        return self._commit(self._indexer.check(documents), on_progress)

    def _commit(self, batch: Batch, on_progress: Progress | None) -> AddReport:
        """Embed outside the lock (the slow part: searches and asks go on meanwhile, on the
        last committed state), then write in one short locked step."""
        with self._lock:
            if not batch.documents and self._index is None:
                return batch.report(WriteResult(), 0)  # leave no empty index behind
            index = self._writable_index()
            changed, digests = self._indexer.changed(batch, index)
        records = self._indexer.records(changed, on_progress, digests)
        with self._lock:
            if index is not self._index:
                raise ConfigError(
                    f"this Engine for {self.path} was closed while documents were being "
                    "embedded; nothing was written: open it again and add them again"
                )
            result = index.write(upserts=records) if records else WriteResult()
        return batch.report(result, len(changed))

    def remove(self, doc_ids: Sequence[str] = (), sources: Sequence[str] = ()) -> WriteResult:
        """Remove documents by id or by source; unknown ones are ignored."""
        if isinstance(doc_ids, str) or isinstance(sources, str):
            raise ConfigError("remove() takes lists of doc ids and sources, not a single string")
        with self._lock:
            index = self._readable_index()
            ids = set(doc_ids).union(*index.doc_ids_for_sources(sources).values())
            return index.write(removals=sorted(ids))

    # ----------------------------------------------------------------------- read
    def plan(
        self,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
        dedupe: bool | None = None,
    ) -> Plan:
        """The retrieval stages a search runs: the settings, overridden by the arguments."""
        return make_plan(self.settings.retrieval, mode, rerank, dedupe)

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        *,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
    ) -> list[Hit]:
        """The `k` passages that best answer `query`, best first (see `plan` for the stages)."""
        return self.search_batch([query], k, filters, mode=mode, rerank=rerank)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int | None = None,
        filters: Filters | None = None,
        *,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
        dedupe: bool | None = None,
    ) -> list[list[Hit]]:
        """`search` for several queries at once (their embeddings are computed together)."""
        k = self.settings.retrieval.k if k is None else k
        plan = self.plan(mode, rerank, dedupe)
        with self._lock:
            retriever = self._retrieval()
        return retriever.search(queries, k, filters, plan)  # locks while it reads the index

    # ---------------------------------------------------------------------- answers
    def answer_modes(self) -> list[AnswerMode]:
        """The answer modes available: "quote" always; "reader" and "generate" with a model."""
        configured = self._generator is not None or self.settings.generation.configured()
        return ["reader", "quote", "generate"] if configured else ["quote"]

    def ask(
        self,
        question: str,
        filters: Filters | None = None,
        history: Sequence[Turn] | None = None,
        *,
        mode: AnswerMode | None = None,
    ) -> Answer:
        """Answer from the sources, cited and support-checked (mode: quote or generate);
        `history` (earlier turns) makes a follow-up question standalone."""
        from rag.answer.pipeline import final_answer

        return final_answer(self.ask_stream(question, filters, history, mode=mode))

    def ask_stream(
        self,
        question: str,
        filters: Filters | None = None,
        history: Sequence[Turn] | None = None,
        *,
        mode: AnswerMode | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
        """`ask`, streaming `AnswerDelta`s, then the `Answer`. The lock is held only while
        the index is read: a language model's seconds block no search and no write."""
        from rag.answer.pipeline import Answerer

        with self._lock:
            if self._answerer is None:
                self._answerer = Answerer(
                    self.settings.generation,
                    self.embedder,
                    self.analyzer,
                    self._generator,
                    retriever=self._retrieval(),
                )
            answerer = self._answerer
        yield from answerer.stream(question, filters, history, mode)
        self._generator = answerer.generator

    def timeline(
        self,
        query: str,
        filters: Filters | None = None,
        *,
        by: TimelineBy = "month",
        k: int | None = None,
        min_score: float | None = None,
    ) -> Timeline:
        """The articles matching `query`, grouped by date (`by`: day, month or year), each with
        its key sentence cited; copies of one story collapsed (see `rag.answer.timeline`)."""
        from rag.answer.timeline import build_timeline

        with self._lock:
            retriever = self._retrieval()
        return build_timeline(
            query, retriever, self.embedder, self.analyzer, filters, by=by, k=k,
            min_score=min_score, generation=self.settings.generation,
        )  # fmt: skip

    # ---------------------------------------------------------------------- export
    def export(self, answers: Answer | Sequence[Answer], fmt: ExportFormat | str) -> Export:
        """An answer (or a conversation's answers) as markdown, json, pdf, bibtex or csl."""
        from rag.export import ExportContext, export_answers

        return export_answers(answers, fmt, ExportContext.of_index(self.path, self.embedder.id))

    def has_index(self) -> bool:
        """True when there is an index to read, on any backend: it existed when the Engine
        was opened, or an `add` has created it since."""
        with self._lock:
            return self._index is not None and not self._closed

    def info(self) -> dict[str, Any]:
        """The index's summary: counts, embedder, chunking, size on disk."""
        with self._lock:
            return self._readable_index().info()

    def documents(self) -> list[dict[str, Any]]:
        """Every document: doc_id, source, title, date, language, n_chunks."""
        with self._lock:
            return self._readable_index().documents()

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """One document with its whole text (citation offsets index into `text`): doc_id,
        source, title, date, language, url, text, metadata, n_chunks; None when unknown."""
        with self._lock:
            return self._readable_index().document(doc_id)

    def passage(self, chunk_id: str) -> Hit | None:
        """The stored passage with this `chunk_id` (as hits and citations name it), with its
        document's metadata; `rank` and `score` are 0 (looked up, not ranked). None when no
        passage has this id. Reads the passages in batches until found: O(passages); the lock
        is taken per batch, so searches and writes go on meanwhile."""
        with self._lock:
            row_ids = self._readable_index().chunk_row_ids()
        for start in range(0, len(row_ids), _PASSAGE_SCAN_BATCH):
            with self._lock:
                batch = self._readable_index().chunks(
                    row_ids[start : start + _PASSAGE_SCAN_BATCH].tolist()
                )
            found = next((c for c in batch if c.chunk_id == chunk_id), None)
            if found is not None:
                return Hit(
                    rank=0, score=0.0, chunk_id=found.chunk_id, doc_id=found.doc_id,
                    source=found.source, title=found.title, date=found.date, text=found.text,
                    start=found.start, end=found.end, page=found.page, language=found.language,
                    row_id=found.row_id, url=found.url, date_source=found.date_source,
                )  # fmt: skip
        return None

    # -------------------------------------------------------------------- the index
    def _readable_index(self) -> IndexBackend:
        if self._closed:
            raise ConfigError(
                f"this Engine for {self.path} was closed; open it again with Engine.open(...)"
            )
        if self._index is None:
            raise ConfigError(
                f"no index at {self.path}; create one with `rag index PATH --index {self.path}`"
            )
        return self._index

    def _writable_index(self) -> IndexBackend:
        if self._index is None and not self._closed:
            spec = index_spec(self.settings, self.embedder)
            self._index = open_index(self.settings, self.path, spec, create=True)
        self._retrieval()  # stored keyword terms made current before new ones are added
        return self._readable_index()

    def _retrieval(self) -> Retriever:
        index = self._readable_index()
        if self._retriever is None:
            ensure_keywords(index, self.analyzer)
            self._retriever = Retriever(
                index, self.embedder, self.analyzer, self.settings.retrieval, lock=self._lock
            )
        return self._retriever


def index_location(settings: Settings, path: Path) -> Path | str:
    """Where the index the settings select lives: the directory, or the Qdrant location
    (`index.url`; unset: qdrant-client's local mode in the directory)."""
    if settings.index.backend == "qdrant":
        return settings.index.url or str(path)
    return path


def open_index(
    settings: Settings, path: Path, spec: IndexSpec | None = None, *, create: bool = False
) -> IndexBackend | None:
    """The index backend `settings.index.backend` selects at `path` (or `index.url`); None
    when there is none yet and `create` is not asked. qdrant-client is imported only here,
    and only for the qdrant backend."""
    if settings.index.backend == "qdrant":
        from index.qdrant import QdrantIndex

        location, options = index_location(settings, path), settings.index.qdrant_options()
        if not create and not QdrantIndex.exists(
            location, collection=options["collection"], api_key=options["api_key"]
        ):
            return None
        return QdrantIndex.open(location, spec, create=create, **options)
    if not create and not Index.exists(path):
        return None
    return Index.open(path, spec, create=create, ann=settings.index.ann_options())
