"""Bulk ingest on Ray (`rag index PATHS --ray [ADDRESS]`; `pip install "newsrag[ray]"`).

The same steps as `Engine.add`, spread over a Ray cluster as Ray Data stages; every step
calls the code the plain path calls, so the index ends up the same:

1. **read** (Ray tasks, one file each): `read_file`, then each document alone through
   `Indexer.check` (empty text, too long, date inferred) and `content_hash`.
2. **admit** (the driver, on ids and hashes only; the texts stay in Ray's object store):
   duplicate ids across the whole input (the first one wins, as in `Indexer.check`), and the
   index's stored content hashes: unchanged documents go no further.
3. **embed** (Ray actors, each loading the model once): `Indexer.records` chunks and embeds a
   batch of documents into `DocumentRecord`s.
4. **write** (the driver, the one writer): records in batches of whole documents, each one
   `IndexBackend.write` (atomic for the local index, convergent for Qdrant). An interrupted
   run leaves the written batches in place; running it again embeds only the rest.

Nothing of the default path imports this module or `ray`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from index import DocumentRecord, IndexBackend, WriteResult, check_compatible
from rag.errors import ConfigError
from rag.ingest.batch import IngestProblem
from rag.ingest.discover import discover
from rag.ingest.indexer import (
    AddReport,
    Indexer,
    _unique_ids,
    chunking_spec,
    content_hash,
    index_spec,
)
from rag.ingest.read import read_file
from rag.types import Document

if TYPE_CHECKING:
    from rag.settings import Settings

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "newsrag[ray]"'

WriteProgress = Callable[[int, int], None]
"""on_progress(documents written, documents to write)."""

_FILE_SHIFT = 32
"""A row's key is file number << 32 | position in the file: sorts as the plain path reads."""
_READ_BLOCKS = 1024
"""At most this many read tasks' worth of blocks (files are spread over them)."""
_HASH_LOOKUP = 10_000
"""Document ids per `content_hashes` call while the driver looks for unchanged documents."""
_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
"""Ray's workers never reach for a model hub either (as the CLI sets for itself)."""


@dataclass(frozen=True)
class RayOptions:
    """How the Ray stages are laid out. The defaults suit any cluster size: one embedding
    actor per `actor_cpus` CPUs of the cluster (on 2 cores: two actors of one core each)."""

    address: str | None = None
    """A running cluster ("auto", "HOST:6379", "ray://HOST:10001"); None: $RAY_ADDRESS, else
    start Ray here."""
    local_cpus: int | None = None
    """CPUs of a Ray started here (None: this machine's)."""
    actors: int | None = None
    """Embedding actors (None: the cluster's CPUs // `actor_cpus`)."""
    actor_cpus: int = 1
    """CPUs (and inference threads) of each embedding actor."""
    batch_documents: int = 64
    """Documents per embedding call of an actor."""
    write_passages: int = 4096
    """Passages per index write (the local index writes more at once as it grows: see
    `_flush_at`)."""
    progress_bars: bool = False
    """Ray Data's progress bars on stderr."""

    def __post_init__(self) -> None:
        for name in ("local_cpus", "actors", "actor_cpus", "batch_documents", "write_passages"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"RayOptions.{name} must be at least 1, got {value}")


@dataclass(frozen=True)
class _Scanned:
    """What the driver learns of one read row: no text, just what admission needs."""

    key: int
    doc_id: str
    source: str
    digest: str
    problem: str
    line: int | None


def import_ray() -> Any:
    """The `ray` module, or a `ConfigError` with the install hint."""
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is the extra's other half
    except ImportError as exc:
        raise ConfigError(
            f"`rag index --ray` needs Ray Data ({exc}); install it with {INSTALL_HINT}"
        ) from None
    return ray


def ray_add(
    paths: Sequence[str | Path],
    settings: Settings,
    index_path: Path,
    *,
    options: RayOptions = RayOptions(),
    password: str | None = None,
    on_progress: WriteProgress | None = None,
) -> AddReport:
    """Index `paths` into the index the settings select at `index_path` (as `Engine.add`
    does), with reading, chunking and embedding as Ray Data stages. Starts Ray here when
    it is not running and no address is given (`ray.init(num_cpus=...)`)."""
    started = time.perf_counter()
    ray = import_ray()
    index = _open_existing(settings, index_path)  # refused before any work if incompatible
    try:
        _connect(ray, options)
        files, problems = discover(paths)
        with _data_context(ray, options):
            scanned, rows = _read(ray, files, settings, password)
            kept, refused = _admit(rows)
            problems = [*problems, *refused]
            if index is None and kept:
                index = _create(settings, index_path)
            if index is None:  # nothing to add: leave no empty index behind
                return _report(len(files), 0, 0, WriteResult(), problems, started)
            _current_keywords(index)
            todo = _changed(index, kept)
            result = _embed_and_write(ray, scanned, todo, settings, index, options, on_progress)
    finally:
        if index is not None:
            index.close()
    return _report(len(files), len(kept), len(todo), result, problems, started)


# -- Ray --------------------------------------------------------------------------------------


def _connect(ray: Any, options: RayOptions) -> None:
    if ray.is_initialized():
        return
    runtime_env = {"env_vars": _OFFLINE_ENV}
    address = options.address or os.environ.get("RAY_ADDRESS")  # as `ray.init()` reads it
    if address:
        ray.init(address=address, runtime_env=runtime_env, logging_level=logging.WARNING)
        return
    cpus = options.local_cpus or len(os.sched_getaffinity(0))
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        runtime_env=runtime_env,
        logging_level=logging.WARNING,
    )


@contextmanager
def _data_context(ray: Any, options: RayOptions) -> Iterator[None]:
    """Order kept (documents are written in the order they were read, as by the plain
    path), progress bars as asked; the previous context restored afterwards."""
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars,
             ctx.print_on_execution_start)  # fmt: skip
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = options.progress_bars
    ctx.print_on_execution_start = options.progress_bars
    try:
        yield
    finally:
        (ctx.execution_options.preserve_order, ctx.enable_progress_bars,
         ctx.print_on_execution_start) = saved  # fmt: skip


def _embed_actors(ray: Any, options: RayOptions) -> int:
    if options.actors is not None:
        return options.actors
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, cpus // options.actor_cpus)


# -- 1. read (Ray tasks) ----------------------------------------------------------------------


def _read(
    ray: Any, files: Sequence[tuple[Path, str]], settings: Settings, password: str | None
) -> tuple[Any, list[_Scanned]]:
    """Read every file in Ray tasks; the rows stay in the object store (materialized), the
    driver gets their keys, ids, sources, hashes and problems."""
    items = [{"file": i, "path": str(p), "source": s} for i, (p, s) in enumerate(files)]
    if not items:
        return None, []
    scanned = (
        ray.data.from_items(items, override_num_blocks=min(len(items), _READ_BLOCKS))
        .flat_map(
            _read_rows, fn_kwargs={"settings": settings, "password": password}, num_cpus=1
        )  # fmt: skip
        .materialize()
    )
    columns = ["key", "doc_id", "source", "digest", "problem", "line"]
    rows = [
        _Scanned(
            key=int(r["key"]),
            doc_id=str(r["doc_id"]),
            source=str(r["source"]),
            digest=str(r["digest"]),
            problem=str(r["problem"]),
            line=None if int(r["line"]) < 0 else int(r["line"]),
        )  # fmt: skip
        for r in scanned.select_columns(columns).iter_rows()
    ]
    return scanned, sorted(rows, key=lambda r: r.key)


def _read_rows(item: dict[str, Any], settings: Settings, password: str | None) -> list[dict]:
    """One file -> a row per document (checked alone, hashed) and a row per problem."""
    batch = read_file(
        Path(item["path"]),
        item["source"],
        password=password,
        max_bytes=settings.chunking.max_file_bytes,
        pdf_seconds=settings.chunking.pdf_seconds,
    )
    checker = _checker(settings)
    base = int(item["file"]) << _FILE_SHIFT
    rows = []
    for n, doc in enumerate(batch.documents):
        checked = checker.check([doc])
        if checked.documents:
            (kept,) = checked.documents
            rows.append(_row(base + n, kept.doc_id, kept.source, content_hash(kept), "", None,
                             encode_document(kept)))  # fmt: skip
        else:
            (problem,) = checked.problems
            rows.append(_row(base + n, doc.doc_id, problem.source, "", problem.message, None, ""))
    for m, problem in enumerate(batch.problems, start=len(batch.documents)):
        rows.append(_row(base + m, "", problem.source, "", problem.message, problem.line, ""))
    return rows


def _checker(settings: Settings) -> Indexer:
    """An Indexer for `check` only: it never touches the embedder (which stays unloaded)."""
    from rag.embedders import create_embedder
    from rag.retrieval.analysis import Analyzer

    return Indexer(settings, create_embedder(settings.embedding), Analyzer())


def _row(
    key: int, doc_id: str, source: str, digest: str, problem: str, line: int | None, doc: str
) -> dict[str, Any]:
    return {"key": key, "doc_id": doc_id, "source": source, "digest": digest,
            "problem": problem, "line": -1 if line is None else line, "doc": doc}  # fmt: skip


def encode_document(doc: Document) -> str:
    """A `Document` as JSON text (ASCII, so any string survives Arrow's UTF-8 columns)."""
    return json.dumps(dataclasses.asdict(doc))


def decode_document(text: str) -> Document:
    """The `Document` `encode_document` wrote."""
    data = json.loads(text)
    data["pages"] = tuple(tuple(p) for p in data.get("pages") or ())
    return Document(**data)


# -- 2. admit (the driver) --------------------------------------------------------------------


def _admit(rows: Sequence[_Scanned]) -> tuple[list[_Scanned], list[IngestProblem]]:
    """The documents to index and the problems, decided as `Indexer.check` decides: a
    repeated id is refused whatever else is wrong with either copy (first one wins), then
    the first copy's own problem, if any, applies."""
    file_problems = [IngestProblem(r.source, r.problem, r.line) for r in rows if not r.doc_id]
    documents = [r for r in rows if r.doc_id]
    stand_ins = [Document(doc_id=r.doc_id, text="", source=r.source) for r in documents]
    first, duplicates = _unique_ids(stand_ins)
    firsts = {id(d) for d in first}
    kept, refused = [], []
    for row, stand_in in zip(documents, stand_ins):
        if id(stand_in) not in firsts:
            continue
        if row.problem:
            refused.append(IngestProblem(row.source, row.problem))
        else:
            kept.append(row)
    return kept, [*file_problems, *duplicates, *refused]


def _open_existing(settings: Settings, path: Path) -> IndexBackend | None:
    """The index the settings select, opened as `Engine.open` opens it: refused when it was
    built with another model or chunking (no model is loaded); None when there is none."""
    from rag.embedders import create_embedder
    from rag.engine import index_location, open_index

    index = open_index(settings, path)
    if index is not None:
        try:
            check_compatible(
                index_location(settings, path),
                index.spec,
                embedder_id=create_embedder(settings.embedding).id,
                chunking=chunking_spec(settings),
            )
        except BaseException:
            index.close()
            raise
    return index


def _create(settings: Settings, path: Path) -> IndexBackend:
    """A new index with the spec of these settings (the driver loads the model once, for
    its dimension)."""
    from rag.embedders import create_embedder
    from rag.engine import open_index

    spec = index_spec(settings, create_embedder(settings.embedding))
    return cast(IndexBackend, open_index(settings, path, spec, create=True))


def _current_keywords(index: IndexBackend) -> None:
    """Stored keyword terms made current before new ones are added (as `Engine` does)."""
    from rag.retrieval.analysis import Analyzer
    from rag.retrieval.pipeline import ensure_keywords

    ensure_keywords(index, Analyzer())


def _changed(index: IndexBackend, kept: Sequence[_Scanned]) -> np.ndarray:
    """Keys of the documents new to `index` or changed (their content hash differs)."""
    todo = []
    for start in range(0, len(kept), _HASH_LOOKUP):
        part = kept[start : start + _HASH_LOOKUP]
        known = index.content_hashes([r.doc_id for r in part])
        todo.extend(r.key for r in part if known.get(r.doc_id) != r.digest)
    return np.asarray(sorted(todo), dtype=np.int64)


# -- 3. embed (Ray actors) and 4. write (the driver) ------------------------------------------


class _Embed:
    """A Ray actor: one model load, then `Indexer.records` on each batch of documents."""

    def __init__(self, settings: Settings) -> None:
        from rag.embedders import create_embedder
        from rag.retrieval.analysis import Analyzer

        embedder = create_embedder(settings.embedding)
        embedder.embed_passages(["load the model now, before the first batch"])
        self.indexer = Indexer(settings, embedder, Analyzer())

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        documents = [decode_document(str(text)) for text in batch["doc"]]
        digests = {d.doc_id: str(g) for d, g in zip(documents, batch["digest"])}
        records = self.indexer.records(documents, digests=digests)
        column = np.empty(len(records), dtype=object)
        column[:] = records
        return {"key": batch["key"], "record": column}


def _keep(batch: dict[str, np.ndarray], wanted: np.ndarray) -> dict[str, np.ndarray]:
    mask = np.isin(batch["key"], wanted)
    return {name: values[mask] for name, values in batch.items()}


def _actor_settings(settings: Settings, options: RayOptions) -> Settings:
    """Each actor infers on its own CPUs (one OpenVINO stream per core), without bars."""
    embedding = settings.embedding.model_copy(
        update={"threads": options.actor_cpus, "show_progress": False}
    )
    return settings.model_copy(update={"embedding": embedding})


def _embed_and_write(
    ray: Any,
    scanned: Any,
    todo: np.ndarray,
    settings: Settings,
    index: IndexBackend,
    options: RayOptions,
    on_progress: WriteProgress | None,
) -> WriteResult:
    if not len(todo):
        return WriteResult()
    # Filtered and cut into blocks of a batch each before any actor starts: every actor
    # gets work, and no task waits for the CPUs the actors hold.
    pending = (
        scanned.map_batches(_keep, fn_kwargs={"wanted": todo}, batch_format="numpy")
        .repartition(target_num_rows_per_block=options.batch_documents)
        .materialize()
    )
    records = pending.map_batches(
        _Embed,
        fn_constructor_kwargs={"settings": _actor_settings(settings, options)},
        batch_size=options.batch_documents,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=_embed_actors(ray, options)),
        num_cpus=options.actor_cpus,
    )
    writer = _Writer(index, settings.index.backend == "local", options.write_passages)
    for batch in records.iter_batches(batch_size=None, batch_format="numpy"):
        for record in batch["record"]:
            writer.add(record)
            if on_progress:
                on_progress(writer.written, len(todo))
    writer.flush()
    if on_progress:
        on_progress(writer.written, len(todo))
    return writer.result


class _Writer:
    """The one writer: whole documents, in batches of about `passages` passages."""

    def __init__(self, index: IndexBackend, grows: bool, passages: int) -> None:
        self.index, self.grows, self.passages = index, grows, passages
        self.pending: list[DocumentRecord] = []
        self.pending_passages = 0
        self.written = 0
        self.written_passages = 0
        self.result = WriteResult()

    def add(self, record: DocumentRecord) -> None:
        self.pending.append(record)
        self.pending_passages += len(record.chunks)
        if self.pending_passages >= _flush_at(self.passages, self.written_passages, self.grows):
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        result = self.index.write(upserts=self.pending)
        self.result = _sum(self.result, result)
        self.written += len(self.pending)
        self.written_passages += self.pending_passages
        self.pending, self.pending_passages = [], 0


def _flush_at(passages: int, written: int, grows: bool) -> int:
    """Passages to gather before the next write. The local index rewrites its whole vector
    file on every write, so there a write holds at least half as many passages as are
    already written: the bytes rewritten stay proportional to the index, not its square."""
    return max(passages, written // 2) if grows else passages


def _sum(a: WriteResult, b: WriteResult) -> WriteResult:
    return WriteResult(
        **{f.name: getattr(a, f.name) + getattr(b, f.name) for f in dataclasses.fields(a)}
    )


def _report(
    files: int,
    documents: int,
    n_changed: int,
    result: WriteResult,
    problems: Sequence[IngestProblem],
    started: float,
) -> AddReport:
    """The report `Engine.add` gives (`Batch.report`'s counts, without the documents)."""
    return AddReport(
        files=files,
        documents=documents,
        added=result.added,
        updated=result.updated,
        unchanged=documents - n_changed + result.unchanged,
        chunks=result.chunks_added,
        problems=tuple(problems),
        seconds=time.perf_counter() - started,
    )
