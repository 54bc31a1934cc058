"""`Engine`: the one facade over ingest, index and search."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index import ChunkRecord, DocumentRecord, Index, IndexSpec, WriteResult
from index.errors import ConfigError, IndexMismatchError
from rag.chunking import chunk_text, split_sentences
from rag.embedders import Embedder, create_embedder
from rag.ingest import IngestProblem, discover, read_file
from rag.retrieval.analysis import Analyzer
from rag.retrieval.fusion import Candidate
from rag.retrieval.pipeline import Plan, Retriever, ensure_keywords
from rag.settings import Settings, load_settings
from rag.types import Document, DuplicateSource, Hit

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rag.answer.generators import Generator
    from rag.answer.types import Answer, AnswerDelta, Turn
    from rag.export import Export, ExportContext

log = logging.getLogger(__name__)

CHUNKER_ID = "sentences-v1"


@dataclass(frozen=True)
class Filters:
    """Restrict a search to documents by date (ISO, partial allowed), source or language."""

    date_from: str | None = None
    date_to: str | None = None
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()

    def active(self) -> bool:
        return bool(self.date_from or self.date_to or self.sources or self.languages)

    def to_json(self) -> dict[str, Any]:
        return {
            "date_from": self.date_from,
            "date_to": self.date_to,
            "sources": list(self.sources),
            "languages": list(self.languages),
        }


@dataclass(frozen=True)
class AddReport:
    """What `Engine.add` did: counts, and every file or line that could not be read."""

    files: int
    documents: int
    added: int
    updated: int
    unchanged: int
    chunks: int
    problems: tuple[IngestProblem, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "documents": self.documents,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "problems": [
                {"source": p.source, "line": p.line, "message": p.message} for p in self.problems
            ],
        }


@dataclass
class _Pending:
    """Documents of one `add` that need embedding, with their passages."""

    docs: list[tuple[Document, str, list[Any], list[list[tuple[int, int]]]]] = field(
        default_factory=list
    )


def content_hash(doc: Document) -> str:
    """Hash of everything stored for a document: re-adding it unchanged does no work."""
    payload = json.dumps(
        [doc.text, doc.source, doc.title, doc.date, doc.language, doc.url, list(doc.pages)],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def chunk_id_for(doc_id: str, start: int, end: int, text: str) -> str:
    digest = hashlib.sha256(f"{doc_id}\0{start}\0{end}\0{text}".encode()).hexdigest()
    return digest[:20]


class Engine:
    """Open an index directory and add, remove and search documents.

    >>> with Engine.open("my-index") as engine:
    ...     engine.add(["seeds/"])
    ...     hits = engine.search("Was sagte Stoltenberg?")
    """

    def __init__(self, path: Path, settings: Settings, embedder: Embedder, index: Index | None):
        self.path = path
        self.settings = settings
        self.embedder = embedder
        self.analyzer = Analyzer()
        self._index = index
        self._keywords_checked = False
        self._reranker: Any = None
        self._generator: Generator | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ) -> Engine:
        """Open (or prepare to create, on first `add`) the index at `path`.

        An existing index built with another embedder or chunking is refused here, before any
        model is loaded, with a message that names both values.
        """
        settings = settings or load_settings()
        path = Path(path) if path is not None else settings.index_dir
        embedder = embedder or create_embedder(settings.embedding)
        index = None
        if Index.exists(path):
            index = Index.open(path)
            _check_compatible(index.spec, embedder.id, chunking_spec(settings))
        engine = cls(path, settings, embedder, index)
        engine._generator = generator
        return engine

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        self._closed = True

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def spec(self) -> IndexSpec:
        return IndexSpec(
            embedder_id=self.embedder.id,
            dim=self.embedder.dim,
            normalized=True,
            prompts=self.embedder.prompts,
            chunking=chunking_spec(self.settings),
        )

    def _writable_index(self) -> Index:
        self._check_open()
        if self._index is None:
            self._index = Index.open(self.path, self.spec(), create=True)
        self._check_keywords(self._index)
        if self._index.spec.dim != self.embedder.dim:
            raise IndexMismatchError(
                f"index {self.path} holds {self._index.spec.dim}-d vectors but the embedder "
                f"{self.embedder.id!r} makes {self.embedder.dim}-d ones; re-index into a new "
                "directory (--index NEW_DIR)"
            )
        return self._index

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(
                f"this Engine for {self.path} was closed; open it again with Engine.open(...)"
            )

    def _readable_index(self) -> Index:
        self._check_open()
        if self._index is None:
            raise ConfigError(
                f"no index at {self.path}; create one with `rag index PATH --index {self.path}`"
            )
        return self._index

    def _check_keywords(self, index: Index) -> None:
        if not self._keywords_checked:
            ensure_keywords(index, self.analyzer)
            self._keywords_checked = True

    # ---------------------------------------------------------------------- write
    def add(
        self,
        paths: Sequence[str | Path],
        *,
        password: str | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> AddReport:
        """Ingest files and folders. One atomic write: the index holds all of it or none.

        Unreadable files do not stop the others; they are listed in the report's problems.
        """
        started = time.perf_counter()
        files, problems = discover(paths)
        documents: list[Document] = []
        for i, (path, source) in enumerate(files):
            batch = read_file(path, source, password=password)
            documents.extend(batch.documents)
            problems.extend(batch.problems)
            if on_progress:
                on_progress("read", i + 1, len(files))
        return self._add_documents(documents, problems, len(files), started, on_progress)

    def add_documents(
        self,
        documents: Sequence[Document],
        *,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> AddReport:
        """Add already-built `Document`s (from code rather than files)."""
        return self._add_documents(list(documents), [], 0, time.perf_counter(), on_progress)

    def _add_documents(
        self,
        documents: list[Document],
        problems: list[IngestProblem],
        n_files: int,
        started: float,
        on_progress: Callable[[str, int, int], None] | None,
    ) -> AddReport:
        documents, dup_problems = _dedupe_ids(documents)
        problems.extend(dup_problems)
        empty = [d for d in documents if not d.text.strip()]
        problems.extend(
            IngestProblem(source=d.source, message=f"document {d.doc_id!r} has no text; skipped")
            for d in empty
        )
        documents = [d for d in documents if d.text.strip()]
        if not documents and self._index is None:
            # Nothing readable: do not leave an empty index behind.
            return AddReport(n_files, 0, 0, 0, 0, 0, tuple(problems), time.perf_counter() - started)
        index = self._writable_index()
        hashes = {d.doc_id: content_hash(d) for d in documents}
        known = index.content_hashes(hashes)
        changed = [d for d in documents if known.get(d.doc_id) != hashes[d.doc_id]]
        pending = self._chunk(changed)
        records = self._embed(pending, on_progress)
        result = index.write(upserts=records) if records else WriteResult(0, 0, 0, 0, 0, 0)
        return AddReport(
            files=n_files,
            documents=len(documents),
            added=result.added,
            updated=result.updated,
            unchanged=len(documents) - len(changed) + result.unchanged,
            chunks=result.chunks_added,
            problems=tuple(problems),
            seconds=time.perf_counter() - started,
        )

    def _chunk(self, documents: Iterable[Document]) -> _Pending:
        cfg = self.settings.chunking
        pending = _Pending()
        for doc in documents:
            passages = chunk_text(
                doc.text,
                self.embedder.count_tokens,
                max_tokens=min(cfg.max_tokens, self.embedder.max_tokens - 2),
                overlap_sentences=cfg.overlap_sentences,
                language=doc.language,
                pages=doc.pages,
            )
            sentences = split_sentences(doc.text, doc.language)
            per_passage = [_sentences_within(sentences, p.start, p.end) for p in passages]
            pending.docs.append((doc, content_hash(doc), passages, per_passage))
        return pending

    def _embed(
        self, pending: _Pending, on_progress: Callable[[str, int, int], None] | None
    ) -> list[DocumentRecord]:
        """Embed every passage and every distinct sentence in one length-sorted job."""
        texts = [p.text for _, _, passages, _ in pending.docs for p in passages]
        n_passages = len(texts)
        sentence_row: dict[tuple[int, int, int], int] = {}
        with_sentences = self.settings.chunking.sentence_vectors
        for d, (doc, _, _, per_passage) in enumerate(pending.docs if with_sentences else ()):
            for spans in per_passage:
                for start, end in spans:
                    if (d, start, end) not in sentence_row:
                        sentence_row[(d, start, end)] = len(texts)
                        texts.append(doc.text[start:end])
        vectors = self._embed_in_steps(texts, on_progress)
        records: list[DocumentRecord] = []
        row = 0
        for d, (doc, digest, passages, per_passage) in enumerate(pending.docs):
            chunks = []
            for ordinal, (p, spans) in enumerate(zip(passages, per_passage)):
                rows = [sentence_row[(d, s, e)] for s, e in spans] if with_sentences else []
                chunks.append(
                    ChunkRecord(
                        chunk_id=chunk_id_for(doc.doc_id, p.start, p.end, p.text),
                        ordinal=ordinal,
                        start=p.start,
                        end=p.end,
                        text=p.text,
                        vector=vectors[row],
                        page=p.page,
                        terms=self.analyzer.document_terms(p.text, doc.language),
                        sentences=tuple(spans),
                        sentence_vectors=vectors[rows] if rows else None,
                    )
                )
                row += 1
            records.append(_document_record(doc, digest, tuple(chunks)))
        assert row == n_passages
        return records

    def _embed_in_steps(
        self, texts: list[str], on_progress: Callable[[str, int, int], None] | None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        step = 2048 if on_progress else len(texts)
        parts = []
        for start in range(0, len(texts), step):
            parts.append(self.embedder.embed_passages(texts[start : start + step]))
            if on_progress:
                on_progress("embed", min(start + step, len(texts)), len(texts))
        return np.concatenate(parts)

    def remove(self, doc_ids: Iterable[str] = (), sources: Iterable[str] = ()) -> WriteResult:
        """Remove documents by id or by source; unknown ones are ignored."""
        if isinstance(doc_ids, str) or isinstance(sources, str):
            raise ConfigError("remove() takes lists of doc ids and sources, not a single string")
        index = self._readable_index()
        ids = set(doc_ids)
        for found in index.doc_ids_for_sources(sources).values():
            ids.update(found)
        return index.write(removals=sorted(ids))

    # ----------------------------------------------------------------------- read
    def plan(
        self, mode: str | None = None, rerank: bool | None = None, collapse: bool | None = None
    ) -> Plan:
        """The retrieval stages a search runs: the settings, overridden by the arguments."""
        cfg = self.settings.retrieval
        mode = mode or cfg.mode
        if mode not in ("dense", "keyword", "hybrid"):
            raise ConfigError(f"unknown retrieval mode {mode!r}; valid: dense, keyword, hybrid")
        return Plan(
            mode=mode,
            rerank=cfg.rerank if rerank is None else rerank,
            collapse=cfg.collapse_duplicates if collapse is None else collapse,
        )

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        *,
        mode: str | None = None,
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
        mode: str | None = None,
        rerank: bool | None = None,
        collapse: bool | None = None,
    ) -> list[list[Hit]]:
        k = self.settings.retrieval.k if k is None else k
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        for q in queries:
            if not q or not q.strip():
                raise ConfigError("the query is empty; pass a question or keywords")
        return self._search(queries, k, filters, self.plan(mode, rerank, collapse))

    def _search(
        self,
        queries: Sequence[str],
        k: int,
        filters: Filters | None,
        plan: Plan,
        query_vectors: np.ndarray | None = None,
    ) -> list[list[Hit]]:
        index = self._readable_index()
        self._check_keywords(index)
        allowed = self._allowed(index, filters)
        if allowed is not None and len(allowed) == 0:
            return [[] for _ in queries]
        reranker = self._get_reranker() if plan.rerank else None
        retriever = Retriever(
            index, self.embedder, self.analyzer, self.settings.retrieval, reranker
        )
        results = retriever.run(list(queries), k, plan, allowed, query_vectors)
        return [self._hits(index, found) for found in results]

    def _get_reranker(self) -> Any:
        if self._reranker is None:
            from rag.retrieval.rerank import create_reranker

            self._reranker = create_reranker(self.settings.retrieval)
        return self._reranker

    def _allowed(self, index: Index, filters: Filters | None) -> np.ndarray | None:
        if filters is None or not filters.active():
            return None
        return index.chunk_row_ids(
            date_from=filters.date_from,
            date_to=filters.date_to,
            sources=list(filters.sources) or None,
            languages=list(filters.languages) or None,
        )

    @staticmethod
    def _hits(index: Index, found: list[Candidate]) -> list[Hit]:
        dup_ids = [d for c in found for d in c.duplicates]
        # chunks() skips rows another process removed since the search: match by row id.
        chunks = {c.row_id: c for c in index.chunks([c.row_id for c in found] + dup_ids)}
        hits: list[Hit] = []
        for cand in found:
            c = chunks.get(cand.row_id)
            if c is None:
                continue
            dups = tuple(
                DuplicateSource(d.doc_id, d.source, d.title, d.date, d.chunk_id)
                for d in (chunks.get(i) for i in cand.duplicates)
                if d is not None and d.doc_id != c.doc_id
            )
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    score=cand.score,
                    chunk_id=c.chunk_id,
                    doc_id=c.doc_id,
                    source=c.source,
                    title=c.title,
                    date=c.date,
                    text=c.text,
                    start=c.start,
                    end=c.end,
                    page=c.page,
                    language=c.language,
                    duplicates=dups,
                    row_id=c.row_id,
                )
            )
        return hits

    # ---------------------------------------------------------------------- answers
    def answer_modes(self) -> list[str]:
        """The answer modes available: always "quote"; "generate" with a model configured."""
        modes = ["quote"]
        if self._generator is not None or self.settings.generation.configured():
            modes.append("generate")
        return modes

    def _get_generator(self) -> Generator | None:
        if self._generator is None and self.settings.generation.configured():
            from rag.answer.generators import create_generator

            self._generator = create_generator(self.settings.generation)
        return self._generator

    def ask(
        self,
        question: str,
        filters: Filters | None = None,
        history: Sequence[Turn] | None = None,
        *,
        mode: str | None = None,
    ) -> Answer:
        """Answer `question` from the indexed sources, with citations and support verdicts.

        mode "quote" (the default without a language model) answers with verbatim source
        sentences; "generate" asks the configured model. `history` holds earlier turns of a
        conversation, used to make a follow-up question standalone.
        """
        from rag.answer.types import Answer

        for event in self.ask_stream(question, filters, history, mode=mode):
            if isinstance(event, Answer):
                return event
        raise AssertionError("ask_stream ended without an answer")  # pragma: no cover

    def ask_stream(
        self,
        question: str,
        filters: Filters | None = None,
        history: Sequence[Turn] | None = None,
        *,
        mode: str | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
        """Like `ask`, streaming: `AnswerDelta`s of text, then the full `Answer` last."""
        from rag.answer.pipeline import MODES, Answerer, Context, question_language

        if not question or not question.strip():
            raise ConfigError("the question is empty; ask something about your documents")
        cfg = self.settings.generation
        mode = mode or cfg.mode
        if mode not in MODES:
            raise ConfigError(f"unknown answer mode {mode!r}; valid: {', '.join(MODES)}")
        generator = self._get_generator() if mode == "generate" or history else None
        answerer = Answerer(cfg, self.embedder, self.analyzer, generator)
        language = question_language(question)
        standalone = answerer.standalone(question, list(history or ()), language)
        plan = self.plan()
        # One embedding of the question serves retrieval and sentence scoring.
        query_vectors = self.embedder.embed_queries([standalone])
        hits = self._search([standalone], cfg.passages, filters, plan, query_vectors)[0]
        index = self._readable_index()
        evidence = index.evidence([h.row_id for h in hits]) if hits else {}
        query_vector = query_vectors[0]
        retrieval = {
            "k": cfg.passages,
            "stages": plan.stages(),
            "filters": filters.to_json() if filters is not None else None,
            "embedder": self.embedder.id,
        }
        ctx = Context(question, standalone, language, hits, evidence, query_vector, retrieval)
        if mode == "generate":
            yield from answerer.generate(ctx)
        else:
            yield from answerer.quote(ctx)

    # ---------------------------------------------------------------------- export
    def export_context(self) -> ExportContext:
        """What an export records about this index and its models."""
        from rag.export import ExportContext

        manifest = self.path / "manifest.json"
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.exists() else None
        return ExportContext(
            index_manifest_sha256=digest, embedder=self.embedder.id, index_path=str(self.path)
        )

    def export(self, answers: Answer | Sequence[Answer], fmt: str) -> Export:
        """An answer (or a conversation's answers) as markdown, json, pdf, bibtex or csl."""
        from rag.answer.types import Answer
        from rag.export import export_answers

        items = [answers] if isinstance(answers, Answer) else list(answers)
        return export_answers(items, fmt, self.export_context())

    def info(self) -> dict[str, Any]:
        """The index's manifest summary: counts, embedder, chunking, size on disk."""
        return self._readable_index().info()

    def documents(self) -> list[dict[str, Any]]:
        return self._readable_index().documents()


def chunking_spec(settings: Settings) -> dict[str, Any]:
    return {
        "splitter": CHUNKER_ID,
        "max_tokens": settings.chunking.max_tokens,
        "overlap_sentences": settings.chunking.overlap_sentences,
        "sentence_vectors": settings.chunking.sentence_vectors,
    }


def _check_compatible(spec: IndexSpec, embedder_id: str, chunking: dict[str, Any]) -> None:
    if spec.embedder_id != embedder_id:
        raise IndexMismatchError(
            f"the index was built with the embedder {spec.embedder_id!r}, but the settings name "
            f"{embedder_id!r}; vectors of two models cannot be mixed. Set embedding.model back "
            f"(RAG_EMBEDDING__MODEL) or re-index into a new directory (--index NEW_DIR)."
        )
    if dict(spec.chunking) != chunking:
        diffs = ", ".join(
            f"{k}: index {spec.chunking.get(k)!r} vs settings {v!r}"
            for k, v in chunking.items()
            if spec.chunking.get(k) != v
        )
        raise IndexMismatchError(
            f"the index was chunked differently ({diffs}); set the chunking settings back or "
            "re-index into a new directory (--index NEW_DIR)."
        )


def _sentences_within(
    sentences: Sequence[tuple[int, int]], start: int, end: int
) -> list[tuple[int, int]]:
    """The sentences of a passage [start, end), clipped to it (a passage may hold part of an
    over-long sentence)."""
    out = []
    for s, e in sentences:
        s, e = max(s, start), min(e, end)
        if e > s:
            out.append((s, e))
    return out


def _dedupe_ids(documents: list[Document]) -> tuple[list[Document], list[IngestProblem]]:
    seen: dict[str, Document] = {}
    problems = []
    for doc in documents:
        if doc.doc_id in seen:
            problems.append(
                IngestProblem(
                    source=doc.source,
                    message=f"duplicate document id {doc.doc_id!r} (also in "
                    f"{seen[doc.doc_id].source}); the later one was skipped. Give each "
                    "article a unique id.",
                )
            )
            continue
        seen[doc.doc_id] = doc
    return list(seen.values()), problems


def _document_record(doc: Document, digest: str, chunks: tuple[ChunkRecord, ...]) -> DocumentRecord:
    return DocumentRecord(
        doc_id=doc.doc_id,
        source=doc.source,
        text=doc.text,
        content_hash=digest,
        title=doc.title,
        date=doc.date,
        language=doc.language,
        url=doc.url,
        metadata={**doc.metadata, "pages": [list(p) for p in doc.pages]}
        if doc.pages
        else dict(doc.metadata),
        chunks=chunks,
    )
