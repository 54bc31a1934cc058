"""`Service`: what the HTTP API and the Gradio UI share: the `Engine` (which is thread-safe
itself) plus the checks an untrusted client needs: upload names, types and sizes, limits, and
an empty index's message.

Uploads are checked and parsed outside the Engine (PDF extraction can be slow); a streamed
answer is produced by a worker thread and handed over through a queue, so a slow reader never
holds the Engine's lock.
"""

from __future__ import annotations

import hashlib
import queue
import re
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from index import WriteResult
from rag.answer.types import Answer, AnswerDelta, Turn
from rag.engine import AddReport, Engine, index_location
from rag.errors import ConfigError, IndexNotFoundError
from rag.ingest import SUPPORTED_SUFFIXES, IngestProblem, read_file
from rag.ingest.indexer import index_spec
from rag.ingest.read import supported_list
from rag.types import Document, Filters, Hit

if TYPE_CHECKING:
    from typing_extensions import Self

    from rag.answer.timeline import Timeline, TimelineBy
    from rag.export import Export
    from rag.settings import Settings
    from ui.auth import AuditLog

MiB = 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = 50 * MiB
DEFAULT_MAX_TOTAL_BYTES = 200 * MiB
DEFAULT_MAX_FILES = 100
MAX_DISPLAY_NAME = 120
_UNSAFE_NAME_CHARS = re.compile(r'[<>:"|?*]')

Progress = Callable[[str, int, int], None]


class UploadTooLargeError(ConfigError):
    """An uploaded file, or all of them together, is over the size limit."""


class UnsupportedUploadError(ConfigError):
    """An uploaded file is of a type that cannot be indexed."""


class DocumentNotFoundError(ConfigError):
    """No document with the given id is in the index."""


@dataclass(frozen=True)
class Upload:
    """One checked upload: the name to show (the document's `source`), its type and bytes."""

    name: str
    suffix: str
    data: bytes

    @property
    def stored_name(self) -> str:
        """The name the bytes are written under: content hash and the checked extension only."""
        return hashlib.sha256(self.data).hexdigest()[:32] + self.suffix


class Service:
    """The engine behind a lock, plus the checks an untrusted client needs (uploads, limits).

    >>> with Service.open("my-index") as service:
    ...     hits = service.search("Was sagte Stoltenberg?")
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
        max_files: int = DEFAULT_MAX_FILES,
        uploads_dir: Path | None = None,
    ) -> None:
        """`uploads_dir` keeps every uploaded file (under its content hash); None keeps none."""
        for name, value in (
            ("max_upload_bytes", max_upload_bytes),
            ("max_total_bytes", max_total_bytes),
            ("max_files", max_files),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        self.engine = engine
        self.max_upload_bytes = max_upload_bytes
        self.max_total_bytes = max(max_total_bytes, max_upload_bytes)
        self.max_files = max_files
        self.uploads_dir = Path(uploads_dir) if uploads_dir is not None else None
        self.audit: AuditLog | None = None
        """Where writes are recorded (who, what, when); set by the server."""

    @classmethod
    def open(
        cls, index_dir: str | Path | None = None, settings: Settings | None = None, **options: Any
    ) -> Service:
        """A Service over `Engine.open(index_dir, settings)`; `options` go to `__init__`."""
        return cls(Engine.open(index_dir, settings), **options)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self.engine.path

    @property
    def location(self) -> Path | str:
        """Where the index lives: the directory, or the Qdrant location (`index.url`)."""
        return index_location(self.engine.settings, self.engine.path)

    def has_index(self) -> bool:
        """True once the engine has an index, on any backend (the first upload or add
        creates it)."""
        return self.engine.has_index()

    def warm_up(self) -> None:
        """Load the embedding model now, so the first request does not wait for it."""
        self.engine.embedder.embed_queries(["warm up"])  # before serving: nothing runs beside it

    # ---------------------------------------------------------------------------- read
    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        mode: str | None = None,
        rerank: bool | None = None,
    ) -> list[Hit]:
        """`Engine.search`: the `k` best passages for `query`."""
        self._require_index()
        return self.engine.search(query, k, filters, mode=mode, rerank=rerank)

    def stages(self, mode: str | None = None, rerank: bool | None = None) -> list[str]:
        """The retrieval stages a search with these options runs (as `rag search --json`)."""
        return self.engine.plan(mode, rerank).stages()

    def timeline(
        self,
        query: str,
        filters: Filters | None = None,
        by: TimelineBy = "month",
        k: int | None = None,
        min_score: float | None = None,
    ) -> Timeline:
        """`Engine.timeline`: the articles matching `query`, grouped by date."""
        self._require_index()
        return self.engine.timeline(query, filters, by=by, k=k, min_score=min_score)

    def ask(
        self,
        question: str,
        filters: Filters | None = None,
        history: Sequence[Turn] | None = None,
        mode: str | None = None,
    ) -> Answer:
        """`Engine.ask`: an answer with citations."""
        self._require_index()
        return self.engine.ask(question, filters, history, mode=mode)

    def ask_stream(
        self,
        question: str,
        filters: Filters | None = None,
        history: Sequence[Turn] | None = None,
        mode: str | None = None,
    ) -> Generator[AnswerDelta | Answer, None, None]:
        """`Engine.ask_stream`: `AnswerDelta`s while the answer is written, the `Answer` last.

        A worker thread runs the engine (which holds its lock while it answers) and queues
        what it yields, so the lock is held only while generating, however slowly the caller
        reads. Closing the iterator
        early stops the worker at its next piece. An error (bad input included) is raised by
        the first `next()`.
        """
        items: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                self._require_index()
                stream = self.engine.ask_stream(question, filters, history, mode=mode)
                try:
                    for item in stream:
                        if stop.is_set():
                            return
                        items.put(("item", item))
                finally:
                    stream.close()
            except BaseException as exc:  # noqa: BLE001 - handed to the reader, who raises it
                items.put(("error", exc))
            else:
                items.put(("done", None))

        threading.Thread(target=produce, name="ask-stream", daemon=True).start()
        return _drain(items, stop)

    def answer_modes(self) -> list[str]:
        """The answer modes `ask` accepts: "quote", and "generate" with a language model."""
        return self.engine.answer_modes()

    def documents(self) -> list[dict[str, Any]]:
        """Every document: doc_id, source, title, date, language, n_chunks. [] before any add."""
        if not self.has_index():
            return []
        return self.engine.documents()

    def info(self) -> dict[str, Any]:
        """The index summary (`Engine.info`), the answer modes and the upload limits."""
        index = self.engine.info() if self.has_index() else _empty_index_info(self.engine)
        return {
            "index": index,
            "answer_modes": self.answer_modes(),
            "retrieval": {
                "mode": self.engine.settings.retrieval.mode,
                "k": self.engine.settings.retrieval.k,
                "rerank": self.engine.settings.retrieval.rerank,
            },
            "uploads": {
                "types": sorted(SUPPORTED_SUFFIXES),
                "max_file_bytes": self.max_upload_bytes,
                "max_total_bytes": self.max_total_bytes,
                "max_files": self.max_files,
            },
        }

    # --------------------------------------------------------------------------- write
    def add(self, paths: Sequence[str | Path], on_progress: Progress | None = None) -> AddReport:
        """`Engine.add`: files and folders on the server's own disk (for `rag serve --seed`)."""
        report = self.engine.add(paths, on_progress=on_progress)
        self._record("local", "add", report, paths=[str(p) for p in paths])
        return report

    def upload(
        self,
        files: Sequence[tuple[str, bytes]],
        on_progress: Progress | None = None,
        *,
        who: str = "anonymous",
    ) -> AddReport:
        """Index uploaded `(file name, bytes)` pairs; each document's `source` is its file name.

        The file name is only ever shown, never used as a path: the bytes are written under
        their content hash and checked extension, in `uploads_dir` or a temporary folder.
        Raises `UploadTooLargeError`, `UnsupportedUploadError` or `ConfigError` before
        anything is written; content that cannot be read is listed in the report's problems.
        """
        started = time.perf_counter()
        uploads = self.check_uploads(files)
        documents: list[Document] = []
        problems: list[IngestProblem] = []
        with self._staging() as folder:
            for i, upload in enumerate(uploads):
                path = _store(folder, upload)
                batch = read_file(
                    path,
                    upload.name,
                    max_bytes=self.max_upload_bytes,
                    limit_setting="server.max_upload_bytes (rag serve --max-upload-mb)",
                    pdf_seconds=self.engine.settings.chunking.pdf_seconds,
                )
                documents.extend(_titled(d, path, upload.name) for d in batch.documents)
                problems.extend(batch.problems)
                if on_progress:
                    on_progress("read", i + 1, len(uploads))
        report = self.engine.add_documents(documents, on_progress=on_progress)
        report = replace(
            report,
            files=len(uploads),
            problems=(*problems, *report.problems),
            seconds=time.perf_counter() - started,
        )
        self._record(who, "upload", report, files=[u.name for u in uploads])
        return report

    def _record(self, who: str, action: str, report: AddReport, **what: Any) -> None:
        if self.audit is not None:
            self.audit.record(
                who,
                action,
                **what,
                added=report.added,
                updated=report.updated,
                unchanged=report.unchanged,
                problems=len(report.problems),
            )

    def check_uploads(self, files: Sequence[tuple[str, bytes]]) -> list[Upload]:
        """The uploads with display names and extensions checked, or the error for the first
        bad one. Nothing is written."""
        if not files:
            raise ConfigError("no files were uploaded; send one or more files")
        if len(files) > self.max_files:
            raise ConfigError(
                f"{len(files)} files in one upload, over the limit of {self.max_files}; "
                "upload them in smaller groups"
            )
        uploads = [self._check_upload(name, data) for name, data in files]
        total = sum(len(u.data) for u in uploads)
        if total > self.max_total_bytes:
            raise UploadTooLargeError(
                f"the upload is {_mb(total)} in all, over the {_mb(self.max_total_bytes)} "
                "limit; upload the files in smaller groups"
            )
        return uploads

    def _check_upload(self, name: str, data: bytes) -> Upload:
        display = display_name(name)
        suffix = PurePosixPath(display).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise UnsupportedUploadError(
                f"{display}: unsupported file type '{suffix or '(no extension)'}'; "
                f"supported: {supported_list()}"
            )
        if len(data) > self.max_upload_bytes:
            raise UploadTooLargeError(
                f"{display}: is {_mb(len(data))}, over the {_mb(self.max_upload_bytes)} limit "
                "per file; split it into smaller files"
            )
        return Upload(display, suffix, bytes(data))

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        if self.uploads_dir is not None:
            self.uploads_dir.mkdir(parents=True, exist_ok=True)
            yield self.uploads_dir
            return
        with tempfile.TemporaryDirectory(prefix="newsrag-upload-") as folder:
            yield Path(folder)

    def remove(
        self, doc_ids: Sequence[str] = (), sources: Sequence[str] = (), *, who: str = "anonymous"
    ) -> WriteResult:
        """`Engine.remove`: documents by id or source; unknown ones are ignored."""
        if not self.has_index():
            return WriteResult()
        result = self.engine.remove(list(doc_ids), list(sources))
        if self.audit is not None and result.removed:
            self.audit.record(
                who,
                "remove",
                doc_ids=list(doc_ids),
                sources=list(sources),
                removed=result.removed,
                chunks=result.chunks_removed,
            )
        return result

    def remove_document(self, doc_id: str, *, who: str = "anonymous") -> WriteResult:
        """Remove one document; `DocumentNotFoundError` when no document has that id."""
        result = self.remove([doc_id], who=who)
        if not result.removed:
            raise DocumentNotFoundError(
                f"no document with id {doc_id!r} in the index; list them with GET /api/documents"
            )
        return result

    # -------------------------------------------------------------------------- export
    def export(self, answers: Sequence[Answer | Mapping[str, Any]], fmt: str) -> Export:
        """The answers as a file (markdown, json, pdf, bibtex, csl: see `rag.export`).

        An item may be an `Answer` or its JSON (`Answer.to_json()`, as `POST /api/ask` gives).
        """
        from rag.export import ExportContext, export_answers

        location, embedder = self.location, self.engine.embedder.id
        context = (
            ExportContext.of_index(location, embedder)
            if isinstance(location, Path)
            else ExportContext(embedder=embedder, index_path=location)  # no manifest file
        )
        return export_answers(answers, fmt, context)

    def index_command(self) -> str:
        """The `rag index` command that fills this service's index (for messages)."""
        settings = self.engine.settings
        if settings.index.backend != "qdrant":
            return f"rag index PATH --index {self.engine.path}"
        if settings.index.url:
            return f"rag index PATH --backend qdrant --url {settings.index.url}"
        return f"rag index PATH --backend qdrant --index {self.engine.path}"

    def _require_index(self) -> None:
        if not self.has_index():
            raise IndexNotFoundError(
                f"the index at {self.location} holds no documents yet; upload some (POST "
                f"/api/documents or the UI's upload) or run `{self.index_command()}`"
            )


def _drain(
    items: queue.Queue[tuple[str, Any]], stop: threading.Event
) -> Generator[Any, None, None]:
    try:
        while True:
            kind, value = items.get()
            if kind == "error":
                raise value
            if kind == "done":
                return
            yield value
    finally:
        stop.set()


# -------------------------------------------------------------------------------- uploads
def display_name(name: str) -> str:
    """A file name fit to show and to use as a `source`: its last path part only, without
    control or shell-special characters, at most `MAX_DISPLAY_NAME` characters."""
    base = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C")
    base = _UNSAFE_NAME_CHARS.sub("_", " ".join(base.split())).rstrip(" .")
    rest = base.lstrip(".")  # no hidden-file names
    if not rest:
        base = "upload"
    elif base.startswith(".") and "." not in rest:
        base = f"upload.{rest}"  # ".md": nothing but an extension
    else:
        base = rest
    suffix = PurePosixPath(base).suffix
    if len(base) > MAX_DISPLAY_NAME:
        base = base[: MAX_DISPLAY_NAME - len(suffix)].rstrip() + suffix
    return base


def _store(folder: Path, upload: Upload) -> Path:
    path = folder / upload.stored_name
    if not path.exists():  # content-addressed: the same bytes are already there
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        tmp.write_bytes(upload.data)
        tmp.replace(path)
    return path


def _titled(doc: Document, stored: Path, name: str) -> Document:
    """Where the reader fell back to the file name for a title, use the uploaded name, not the
    content hash it was stored under."""
    if doc.title == stored.stem:
        return replace(doc, title=PurePosixPath(name).stem)
    return doc


def _mb(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB / 10 else f"{n / 1024:.1f} KiB"


def _empty_index_info(engine: Engine) -> dict[str, Any]:
    return {
        "path": str(index_location(engine.settings, engine.path)),
        "exists": False,
        "counts": {"documents": 0, "chunks": 0},
        "spec": index_spec(engine.settings, engine.embedder).to_json(),
    }
