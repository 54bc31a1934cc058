"""Checking an index directory (`verify`) and rebuilding what derives from its store (`repair`).

`Index.open` quietly rebuilds a stale FAISS file and applies migrations, so `verify` reads the
files directly and changes nothing: SQLite is opened read-only (immutable when no write-ahead
log is pending, so not even its side files appear). It holds the write lock while it reads, so
a write in progress is not mistaken for damage. It checks:

- `chunks.sqlite`: SQLite's integrity check, the schema and the format version;
- every passage has a well-formed vector (and keyword terms, once an analyzer is recorded), and
  no vector, sentence, keyword or passage row has lost its passage or document;
- quotes can be cut: each passage's offsets give back its text from the stored document, and
  its sentences lie inside it;
- `vectors.faiss` holds exactly the live passages, with the vectors SQLite stores;
- `manifest.json` parses, and its spec, counts, generation and checksum match.

`repair` fixes what can be derived, under the write lock: migrations, orphaned rows, vectors
that `vectors.faiss` still holds, keyword terms (with the caller's analyzer) in one SQLite
transaction; then `vectors.faiss` and `manifest.json` are replaced atomically, manifest last;
then it checks again. A corrupted SQLite page is salvaged first (`index.salvage`): every row
SQLite can still read goes into a new `chunks.sqlite`, swapped in atomically, with the damaged
file kept beside it; documents that lost part of themselves are left out whole and listed, with
the `rag index` command that adds them again. Damage nothing can be salvaged from (the first
page of the database, a passage whose text no longer matches its document) is reported with
what to do instead: restore a backup or re-index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shlex
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import faiss
import filelock
import numpy as np

from . import ann, atomic, keywords, manifest, migrations, salvage
from .directory import _NORM_TOLERANCE, LOCK_NAME, Index, _holding
from .errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IndexUsageError
from .manifest import FORMAT_VERSION, MANIFEST_NAME, VECTORS_NAME, IndexSpec, Manifest
from .salvage import BackupVectors, Salvage
from .store import DB_NAME, Store, connect
from .vectors import FaissFlatIndex

logger = logging.getLogger(__name__)

Analyze = Callable[[Sequence[tuple[str, str | None]]], list[Sequence[str]]]
"""(passage text, document language) pairs -> each passage's keyword terms."""

SQLITE_DAMAGED = "sqlite_damaged"
FORMAT_NEWER = "format_newer"
SCHEMA_OUTDATED = "schema_outdated"
ORPHAN_ROWS = "orphan_rows"
PASSAGE_VECTOR = "passage_vector"
KEYWORD_TERMS = "keyword_terms"
QUOTE_SPAN = "quote_span"
FAISS_MISSING = "faiss_missing"
FAISS_UNREADABLE = "faiss_unreadable"
FAISS_STALE = "faiss_stale"
MANIFEST_MISSING = "manifest_missing"
MANIFEST_UNREADABLE = "manifest_unreadable"
MANIFEST_STALE = "manifest_stale"
KINDS = (
    SQLITE_DAMAGED, FORMAT_NEWER, SCHEMA_OUTDATED, ORPHAN_ROWS, PASSAGE_VECTOR, KEYWORD_TERMS,
    QUOTE_SPAN, FAISS_MISSING, FAISS_UNREADABLE, FAISS_STALE, MANIFEST_MISSING,
    MANIFEST_UNREADABLE, MANIFEST_STALE,
)  # fmt: skip
"""Every `Problem.kind`, in the order a report lists them."""

_BATCH = 10_000
_SHOWN = 3  # examples named in a message


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an index: what (`message`) and what `repair` does about it."""

    kind: str
    """One of `KINDS`."""
    message: str
    """What is wrong, with the values found."""
    repair: str
    """What `repair` (`rag verify --repair`) does, or why it cannot and what to do instead."""
    repairable: bool
    documents: tuple[str, ...] = ()
    """Ids of the documents affected, for problems of single passages."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "repair": self.repair,
            "repairable": self.repairable,
            "documents": list(self.documents),
        }


@dataclass(frozen=True)
class VerifyReport:
    """What `verify` found (after `repair`: what is left) and what `repair` did."""

    path: Path
    problems: tuple[Problem, ...]
    repaired: tuple[str, ...] = ()
    """What `repair` changed, one sentence each (empty for `verify`)."""
    salvage: Salvage | None = None
    """What `repair` kept and lost when it salvaged a damaged `chunks.sqlite` (else None)."""

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "problems": [p.to_json() for p in self.problems],
            "repaired": list(self.repaired),
            "salvage": None if self.salvage is None else self.salvage.to_json(),
        }


def verify(path: str | Path, *, lock_timeout: float = 10.0) -> VerifyReport:
    """Check the index at `path` without changing anything. See the module docstring."""
    directory = _index_directory(path)
    with contextlib.ExitStack() as stack:
        lock = filelock.FileLock(str(directory / LOCK_NAME))
        try:
            stack.enter_context(_holding(lock, directory, lock_timeout))
        except OSError as exc:  # a read-only directory: nobody can be writing to it either
            logger.info("checking %s without %s (%s)", directory, LOCK_NAME, exc)
        found = _inspect(directory)
    return found.report()


def repair(
    path: str | Path,
    *,
    analyzer_id: str | None = None,
    analyze: Analyze | None = None,
    lock_timeout: float = 10.0,
) -> VerifyReport:
    """Fix what can be derived from `chunks.sqlite`, then check again; returns what is left.

    A damaged `chunks.sqlite` is salvaged first (see `index.salvage`; the report's `salvage`
    says what was kept and lost). `analyzer_id` and `analyze` (as for
    `Index.reanalyze_keywords`) make missing keyword terms again; without them such a problem
    stays. Problems `verify` marks not repairable are left untouched, and a store that cannot
    be salvaged or a newer format stops every other repair.
    """
    if (analyzer_id is None) != (analyze is None):
        raise IndexUsageError("repair() needs both analyzer_id and analyze, or neither")
    directory = _index_directory(path)
    done: list[str] = []
    salvaged: Salvage | None = None
    with _holding(filelock.FileLock(str(directory / LOCK_NAME)), directory, lock_timeout):
        atomic.remove_stale_temp_files(directory)
        found = _inspect(directory)
        if found.salvageable:
            salvaged = _salvage(directory, done)
            found = _inspect(directory)
        if found.schema_outdated:
            done.append(_migrate(directory))
            found = _inspect(directory)
        if found.content_checked:
            _repair_content(directory, found, analyzer_id, analyze, done)
        found = _inspect(directory)
    for action in done:
        logger.info("%s: %s", directory, action)
    return found.report(done, salvaged)


# -- the checks -------------------------------------------------------------------------------


@dataclass
class _Inspection:
    """Problems found, and what `repair` needs to know to fix them."""

    directory: Path
    problems: list[Problem] = field(default_factory=list)
    content_checked: bool = False
    """The store was readable and current, so every check ran."""
    salvageable: bool = False
    """SQLite's integrity check failed, but rows can still be read: `repair` salvages them."""
    schema_outdated: bool = False
    restorable: dict[int, np.ndarray] = field(default_factory=dict)
    """Vectors missing or malformed in SQLite that `vectors.faiss` holds: row id -> vector."""

    def add(self, kind: str, message: str, repair: str, repairable: bool, **kw: Any) -> None:
        self.problems.append(Problem(kind, message, repair, repairable, **kw))

    def has(self, *kinds: str) -> bool:
        return any(p.kind in kinds for p in self.problems)

    def report(self, repaired: Sequence[str] = (), salvaged: Salvage | None = None) -> VerifyReport:
        problems = sorted(self.problems, key=lambda p: KINDS.index(p.kind))
        return VerifyReport(self.directory, tuple(problems), tuple(repaired), salvaged)


@dataclass(frozen=True)
class _State:
    """What SQLite says the index is."""

    spec: IndexSpec
    generation: int
    documents: int
    chunks: int
    analyzer: str | None


def _inspect(directory: Path) -> _Inspection:
    found = _Inspection(directory)
    db = directory / DB_NAME
    if not db.exists():
        found.add(
            SQLITE_DAMAGED,
            f"{db} is missing; it holds the documents, passages and vectors",
            _lost_store_fix(directory, None),
            False,
        )
        return found
    try:
        conn = _connect_read_only(db)
    except sqlite3.DatabaseError as exc:
        found.add(
            SQLITE_DAMAGED,
            f"SQLite cannot open {db}: {exc}",
            _lost_store_fix(directory, None),
            False,
        )
        return found
    try:
        _inspect_store(found, conn)
    finally:
        conn.close()
    return found


def _inspect_store(found: _Inspection, conn: sqlite3.Connection) -> None:
    directory = found.directory
    damage = _integrity_errors(conn)
    if damage:
        blocker = salvage.salvage_blocker(conn)
        found.salvageable = blocker is None
        found.add(
            SQLITE_DAMAGED,
            f"{directory / DB_NAME} is damaged: SQLite's integrity check reports "
            + "; ".join(damage[:_SHOWN])
            + (f" (and {len(damage) - _SHOWN} more)" if len(damage) > _SHOWN else ""),
            _SALVAGE if blocker is None else _lost_store_fix(directory, conn, blocker),
            blocker is None,
        )
        return
    conn.execute("BEGIN")  # every check sees one snapshot
    try:
        state = _read_state(found, conn)
        if state is None:
            return
        recorded = _read_manifest(found)
        faiss_ok = _check_vectors(found, conn, state, recorded)
        _check_orphans(found, conn)
        _check_keywords(found, conn, state)
        _check_quotes(found, conn)
        _check_manifest(found, state, recorded, faiss_ok=faiss_ok)
        found.content_checked = True
    finally:
        conn.execute("COMMIT")


def _connect_read_only(db: Path) -> sqlite3.Connection:
    """Read-only. Immutable when no write-ahead log is pending: then SQLite creates no -wal or
    -shm file (we hold the write lock, so nobody writes meanwhile)."""
    pending = Path(f"{db}-wal").exists()
    uri = db.resolve().as_uri() + ("?mode=ro" if pending else "?mode=ro&immutable=1")
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _integrity_errors(conn: sqlite3.Connection) -> list[str]:
    """SQLite's integrity check: [] when sound, else its messages (or the error it stopped at)."""
    messages: list[str] = []
    try:
        for (line,) in conn.execute("PRAGMA integrity_check"):
            messages.append(str(line))
    except sqlite3.DatabaseError as exc:
        messages.append(str(exc))
    return [] if messages == ["ok"] else messages


def _read_state(found: _Inspection, conn: sqlite3.Connection) -> _State | None:
    """The store's schema, format and meta records; None (with a problem) if the other checks
    cannot run on it."""
    db = found.directory / DB_NAME
    version = migrations.schema_version(conn)
    if version > migrations.SCHEMA_VERSION:
        found.add(
            FORMAT_NEWER,
            f"{db} has schema version {version}, this version of newsrag reads up to "
            f"{migrations.SCHEMA_VERSION}",
            "cannot repair it: upgrade newsrag, then run `rag verify` again",
            False,
        )
        return None
    if version < migrations.SCHEMA_VERSION:
        found.schema_outdated = True
        found.add(
            SCHEMA_OUTDATED,
            f"{db} has schema version {version}, this version of newsrag uses "
            f"{migrations.SCHEMA_VERSION} (the other checks need it)",
            "apply the schema migrations, as opening the index does, then check the rest",
            True,
        )
        return None
    store = Store(conn, db)
    try:
        if store.format_version() > FORMAT_VERSION:
            found.add(
                FORMAT_NEWER,
                f"{db} was written by a newer version of newsrag (format "
                f"{store.format_version()}, this one reads {FORMAT_VERSION})",
                "cannot repair it: upgrade newsrag, then run `rag verify` again",
                False,
            )
            return None
        documents, chunks = store.counts()
        return _State(store.spec(), store.generation(), documents, chunks, store.keyword_analyzer())
    except (IndexCorruptError, ValueError) as exc:
        found.add(
            SQLITE_DAMAGED,
            f"{db} has a damaged meta record: {exc}",
            _lost_store_fix(found.directory, conn),
            False,
        )
        return None


# -- vectors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FaissFile:
    """The ids and vectors of `vectors.faiss`, sorted by id."""

    ids: np.ndarray
    vectors: np.ndarray
    sha256: str

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of `ids` the file holds, their vectors)."""
        pos = np.searchsorted(self.ids, ids)
        held = pos < len(self.ids)
        held[held] = self.ids[pos[held]] == ids[held]
        return held, self.vectors[pos[held]]


def _read_faiss(found: _Inspection, dim: int) -> _FaissFile | None:
    """The FAISS file, or None after adding why it is missing or unusable."""
    file = found.directory / VECTORS_NAME
    rebuild = f"rebuild {VECTORS_NAME} from the vectors in {DB_NAME}"
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        found.add(FAISS_MISSING, f"{file} is missing", rebuild, True)
        return None
    except OSError as exc:
        found.add(FAISS_UNREADABLE, f"cannot read {file}: {exc}", rebuild, True)
        return None
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if (
            not isinstance(index, faiss.IndexIDMap2)
            or index.d != dim
            or index.metric_type != faiss.METRIC_INNER_PRODUCT
        ):
            raise ValueError(f"it is not an inner-product IndexIDMap2 of dimension {dim}")
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        vectors = faiss.downcast_index(index.index).reconstruct_n(0, index.ntotal)
    except (RuntimeError, MemoryError, ValueError, AttributeError) as exc:
        found.add(FAISS_UNREADABLE, f"FAISS cannot use {file}: {exc}", rebuild, True)
        return None
    order = np.argsort(ids, kind="stable")
    sha = hashlib.sha256(data).hexdigest()
    return _FaissFile(ids[order], np.asarray(vectors, dtype=np.float32)[order], sha)


def _stored_vectors(
    conn: sqlite3.Connection, spec: IndexSpec
) -> Iterator[tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]]:
    """Batches over every passage, by row id: (ids, vectors) of the well-formed vectors, and
    (row id, what is wrong) for passages whose vector is missing or malformed."""
    dim = spec.dim
    cursor = conn.execute(
        "SELECT c.id, v.vector FROM chunks c LEFT JOIN vectors v ON v.chunk_row_id = c.id "
        "ORDER BY c.id"
    )
    while rows := cursor.fetchmany(_BATCH):
        ids, blobs, faults = [], [], []
        for row_id, blob in rows:
            if blob is None:
                faults.append((row_id, "has no vector"))
            elif not isinstance(blob, bytes) or len(blob) != dim * 4:
                size = len(blob) if isinstance(blob, (bytes, str)) else 0
                faults.append((row_id, f"has a vector of {size} bytes, not {dim} float32 values"))
            else:
                ids.append(row_id)
                blobs.append(blob)
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32).reshape(-1, dim)
        good = np.ones(len(ids), dtype=bool)
        for i, fault in _vector_faults(matrix, spec.normalized):
            faults.append((ids[i], fault))
            good[i] = False
        yield np.asarray(ids, dtype=np.int64)[good], matrix[good], faults


def _vector_faults(matrix: np.ndarray, normalized: bool) -> Iterator[tuple[int, str]]:
    finite = np.isfinite(matrix).all(axis=1)
    for i in np.flatnonzero(~finite):
        yield int(i), "has a vector with NaN or infinity"
    if normalized:
        norms = np.linalg.norm(np.where(finite[:, None], matrix, 0), axis=1)
        for i in np.flatnonzero(finite & (np.abs(norms - 1.0) > _NORM_TOLERANCE)):
            yield int(i), f"has a vector of length {norms[i]:.4g}, not 1 (the index is normalized)"


def _check_vectors(
    found: _Inspection, conn: sqlite3.Connection, state: _State, recorded: Manifest | None
) -> bool:
    """Passage vectors in SQLite, and `vectors.faiss` against them. True if the FAISS file
    is sound (so the manifest's checksum of it is worth comparing)."""
    file = _read_faiss(found, state.spec.dim)
    live: list[np.ndarray] = []
    faults: list[tuple[int, str]] = []
    missing: list[np.ndarray] = []
    differing: list[np.ndarray] = []
    agreeing = 0
    for ids, matrix, bad in _stored_vectors(conn, state.spec):
        live.append(ids)
        live.append(np.asarray([r for r, _ in bad], dtype=np.int64))
        faults.extend(bad)
        if file is None:
            continue
        held, rows = file.rows(ids)
        missing.append(ids[~held])
        same = np.all(rows == matrix[held], axis=1)
        differing.append(ids[held][~same])
        agreeing += int(same.sum())
    if file is not None:
        # Row ids are never reused, so a file whose vectors agree with SQLite's holds the right
        # vector for every id it has (also from another generation of this index).
        trusted = not any(len(d) for d in differing) and (
            agreeing > 0 or (recorded is not None and recorded.vectors_sha256 == file.sha256)
        )
        if trusted:
            found.restorable = _restorable(file, faults, state.spec.normalized)
    _report_vector_faults(found, conn, faults)
    if file is None:
        return False
    live_ids = np.concatenate(live) if live else np.empty(0, np.int64)
    extra = file.ids[~np.isin(file.ids, live_ids)]
    return _report_faiss(found, file, state, recorded, _cat(missing), extra, _cat(differing))


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _valid_vectors(conn: sqlite3.Connection, spec: IndexSpec) -> tuple[np.ndarray, np.ndarray]:
    """(row ids, vectors) of every well-formed stored vector, what the FAISS file should hold."""
    batches = list(_stored_vectors(conn, spec))
    if not batches:
        return np.empty(0, np.int64), np.empty((0, spec.dim), np.float32)
    return _cat([ids for ids, _, _ in batches]), np.concatenate([m for _, m, _ in batches])


def _restorable(
    file: _FaissFile, faults: list[tuple[int, str]], normalized: bool
) -> dict[int, np.ndarray]:
    if not faults:
        return {}
    ids = np.asarray([r for r, _ in faults], dtype=np.int64)
    held, rows = file.rows(ids)
    usable = {int(i) for i, _ in _vector_faults(rows, normalized)}
    return {
        int(r): v for n, (r, v) in enumerate(zip(ids[held], rows, strict=True)) if n not in usable
    }


def _report_vector_faults(
    found: _Inspection, conn: sqlite3.Connection, faults: list[tuple[int, str]]
) -> None:
    if not faults:
        return
    passages = _describe(conn, [r for r, _ in faults])
    shown = "; ".join(f"{passages.get(r, f'row {r}')} {what}" for r, what in faults[:_SHOWN])
    message = f"{len(faults)} passage(s) lack a usable vector in {DB_NAME}: {shown}"
    lost = [r for r, _ in faults if r not in found.restorable]
    if not lost:
        fix = (
            f"take the {len(faults)} vector(s) back from {VECTORS_NAME}, which still holds them "
            f"(its other vectors match {DB_NAME})"
        )
    else:
        kept = len(faults) - len(lost)
        fix = (f"take {kept} back from {VECTORS_NAME}; " if kept else "") + (
            f"nothing else in the index holds the vector of {len(lost)} passage(s) ("
            f"{VECTORS_NAME} lacks it or disagrees with {DB_NAME}), so they must be embedded "
            "again: " + _reindex_fix(found.directory, conn, lost)
        )
    found.add(
        PASSAGE_VECTOR, message, fix, not lost, documents=_documents(conn, [r for r, _ in faults])
    )


def _report_faiss(
    found: _Inspection,
    file: _FaissFile,
    state: _State,
    recorded: Manifest | None,
    missing: np.ndarray,
    extra: np.ndarray,
    differing: np.ndarray,
) -> bool:
    duplicates = len(file.ids) - len(np.unique(file.ids))
    wrong = []
    if len(missing):
        wrong.append(f"lacks {len(missing)} stored passage(s) (row {_ids(missing)})")
    if len(extra):
        wrong.append(f"holds {len(extra)} passage(s) not in {DB_NAME} (row {_ids(extra)})")
    if len(differing):
        wrong.append(
            f"has other vectors than {DB_NAME} for {len(differing)} (row {_ids(differing)})"
        )
    if duplicates:
        wrong.append(f"holds {duplicates} row id(s) twice")
    if not wrong:
        return True
    origin = ""
    if recorded is not None and recorded.vectors_sha256 != file.sha256:
        origin = f"; it is not the file {MANIFEST_NAME} records (another generation or index)"
    found.add(
        FAISS_STALE,
        f"{found.directory / VECTORS_NAME} does not match the {state.chunks} stored passages "
        f"(generation {state.generation}): it " + ", ".join(wrong) + origin,
        f"rebuild {VECTORS_NAME} from the vectors in {DB_NAME}",
        True,
    )
    return False


# -- rows, keywords, quotes -------------------------------------------------------------------

_ORPHANS = (
    ("chunks", "doc_id NOT IN (SELECT doc_id FROM documents)", "passage(s) without a document"),
    ("vectors", "chunk_row_id NOT IN (SELECT id FROM chunks)", "vector(s) without a passage"),
    ("sentences", "chunk_row_id NOT IN (SELECT id FROM chunks)", "sentence(s) without a passage"),
    ("keywords", "rowid NOT IN (SELECT id FROM chunks)", "keyword row(s) without a passage"),
)
"""(table, which of its rows are orphans, what they are), parents first."""


def _check_orphans(found: _Inspection, conn: sqlite3.Connection) -> None:
    counts = [
        (conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0], what)
        for table, where, what in _ORPHANS
    ]
    orphans = [(n, what) for n, what in counts if n]
    if not orphans:
        return
    found.add(
        ORPHAN_ROWS,
        f"{DB_NAME} holds " + ", ".join(f"{n} {what}" for n, what in orphans),
        "delete them (without their passage or document they can be neither found nor quoted)",
        True,
    )


def _check_keywords(found: _Inspection, conn: sqlite3.Connection, state: _State) -> None:
    """Once an analyzer is recorded, every passage has keyword terms (before that, the first
    search analyses them all)."""
    if state.analyzer is None:
        return
    rows = [
        r
        for (r,) in conn.execute(
            "SELECT id FROM chunks WHERE id NOT IN (SELECT rowid FROM keywords) ORDER BY id"
        )
    ]
    if not rows:
        return
    passages = _describe(conn, rows[:_SHOWN])
    found.add(
        KEYWORD_TERMS,
        f"{len(rows)} passage(s) have no keyword terms, so keyword search cannot find them: "
        + "; ".join(passages.get(r, f"row {r}") for r in rows[:_SHOWN]),
        f"analyse every passage's text for keyword search again (analyzer {state.analyzer!r}; "
        f"`rag verify --repair` supplies it)",
        True,
        documents=_documents(conn, rows),
    )


def _check_quotes(found: _Inspection, conn: sqlite3.Connection) -> None:
    """Each passage's offsets cut its own text out of the document, and its sentences (what
    quotes are cut by) lie inside it."""
    faults: list[tuple[int, str]] = []
    for doc_id, text in conn.execute("SELECT doc_id, text FROM documents ORDER BY doc_id"):
        faults.extend(_quote_faults(conn, doc_id, text))
    if not faults:
        return
    passages = _describe(conn, [r for r, _ in faults[:_SHOWN]])
    found.add(
        QUOTE_SPAN,
        f"{len(faults)} passage(s) cannot be quoted from their document's stored text: "
        + "; ".join(f"{passages.get(r, f'row {r}')} {what}" for r, what in faults[:_SHOWN]),
        "cannot repair it: the passages and their documents are the stored data itself. "
        "Index those documents again: "
        + _reindex_fix(found.directory, conn, [r for r, _ in faults]),
        False,
        documents=_documents(conn, [r for r, _ in faults]),
    )


def _quote_faults(conn: sqlite3.Connection, doc_id: str, text: str) -> Iterator[tuple[int, str]]:
    spans: dict[int, tuple[int, int]] = {}
    for row_id, start, end, chunk_text in conn.execute(
        'SELECT id, start, "end", text FROM chunks WHERE doc_id = ? ORDER BY id', (doc_id,)
    ):
        spans[row_id] = (start, end)
        if not 0 <= start <= end <= len(text):
            yield (
                row_id,
                f"has offsets {start}..{end} outside the document's {len(text)} characters",
            )
        elif text[start:end] != chunk_text:
            yield row_id, f"has text that differs from the document's characters {start}..{end}"
    bad: dict[int, tuple[int, int]] = {}
    for row_id, start, end in conn.execute(
        'SELECT s.chunk_row_id, s.start, s."end" FROM sentences s JOIN chunks c '
        "ON c.id = s.chunk_row_id WHERE c.doc_id = ? ORDER BY s.chunk_row_id, s.ordinal",
        (doc_id,),
    ):
        lo, hi = spans[row_id]
        if not lo <= start < end <= hi and row_id not in bad:
            bad[row_id] = (start, end)
    for row_id, (start, end) in bad.items():
        yield row_id, f"has a sentence at {start}..{end}, outside the passage {spans[row_id]}"


# -- the manifest -----------------------------------------------------------------------------


def _read_manifest(found: _Inspection) -> Manifest | None:
    """The parsed manifest, or None after adding why it is missing or unusable."""
    file = found.directory / MANIFEST_NAME
    rewrite = f"write {MANIFEST_NAME} again from {DB_NAME} (the authority)"
    try:
        data = manifest.load_json(found.directory)
        if data is None:
            found.add(MANIFEST_MISSING, f"{file} is missing", rewrite, True)
            return None
        manifest.read_format_version(data, found.directory)
        return manifest.parse(data, found.directory)
    except IndexCorruptError as exc:
        found.add(MANIFEST_UNREADABLE, str(exc), rewrite, True)
    except IndexMismatchError as exc:
        found.add(FORMAT_NEWER, str(exc), "cannot repair it: upgrade newsrag", False)
    except OSError as exc:
        found.add(MANIFEST_UNREADABLE, f"cannot read {file}: {exc}", rewrite, True)
    return None


def _check_manifest(
    found: _Inspection, state: _State, recorded: Manifest | None, *, faiss_ok: bool
) -> None:
    if recorded is None:
        return
    wrong = [
        f"{name}: manifest {theirs!r}, {DB_NAME} {ours!r}"
        for name, ours, theirs in manifest.spec_differences(state.spec, recorded.spec)
    ]
    for name, ours, theirs in (
        ("generation", state.generation, recorded.generation),
        ("documents", state.documents, recorded.documents),
        ("passages", state.chunks, recorded.chunks),
    ):
        if ours != theirs:
            wrong.append(f"{name}: manifest {theirs}, {DB_NAME} {ours}")
    if faiss_ok:  # otherwise the FAISS file is the problem, and it is rebuilt anyway
        actual = atomic.sha256_file(found.directory / VECTORS_NAME)
        if recorded.vectors_sha256 != actual:
            wrong.append(
                f"checksum of {VECTORS_NAME}: manifest {recorded.vectors_sha256}, file {actual}"
            )
    if wrong:
        found.add(
            MANIFEST_STALE,
            f"{found.directory / MANIFEST_NAME} does not match the index: " + "; ".join(wrong),
            f"write {MANIFEST_NAME} again from {DB_NAME} (the authority)",
            True,
        )


# -- messages ---------------------------------------------------------------------------------


def _describe(conn: sqlite3.Connection, row_ids: Sequence[int]) -> dict[int, str]:
    """row id -> "passage CHUNK_ID of document DOC_ID (SOURCE)", for messages."""
    rows = conn.execute(
        "SELECT c.id, c.chunk_id, c.doc_id, d.source FROM chunks c LEFT JOIN documents d "
        "ON d.doc_id = c.doc_id WHERE c.id IN (SELECT value FROM json_each(?))",
        (json.dumps([int(r) for r in row_ids]),),
    )
    return {
        r: f"passage {chunk_id!r} of document {doc_id!r}" + (f" ({source})" if source else "")
        for r, chunk_id, doc_id, source in rows
    }


def _affected(conn: sqlite3.Connection, row_ids: Sequence[int]) -> list[tuple[str, str | None]]:
    """(doc id, source) of the documents of these passages, by doc id."""
    return list(
        conn.execute(
            "SELECT DISTINCT c.doc_id, d.source FROM chunks c LEFT JOIN documents d "
            "ON d.doc_id = c.doc_id WHERE c.id IN (SELECT value FROM json_each(?)) "
            "ORDER BY c.doc_id",
            (json.dumps([int(r) for r in row_ids]),),
        )
    )


def _documents(conn: sqlite3.Connection, row_ids: Sequence[int]) -> tuple[str, ...]:
    return tuple(doc_id for doc_id, _ in _affected(conn, row_ids))


_JSONL_LINE = re.compile(r"#\d+$")


def _reindex_fix(directory: Path, conn: sqlite3.Connection, row_ids: Sequence[int]) -> str:
    """The commands that index these passages' documents again (unchanged documents are skipped
    by `rag index`, so they are removed first)."""
    docs = _affected(conn, row_ids)
    index = shlex.quote(str(directory))
    # "feed.jsonl#3" is line 3 of feed.jsonl: index the file (its unchanged lines cost nothing).
    sources = dict.fromkeys(_JSONL_LINE.sub("", s) for _, s in docs if s)
    if len(docs) > 5:
        return (
            f"`rag remove --doc DOC_ID --index {index}` for each of the {len(docs)} documents "
            f"(`rag verify --json` lists them), then `rag index SOURCE --index {index}` for "
            f"their sources (e.g. {', '.join(list(sources)[:3])})"
        )
    remove = " ".join(f"--doc {shlex.quote(d)}" for d, _ in docs)
    again = " ".join(shlex.quote(s) for s in sources) or "SOURCE"
    return f"`rag remove {remove} --index {index}`, then `rag index {again} --index {index}`"


_SALVAGE = (
    f"salvage it: copy every row SQLite can still read into a new {DB_NAME} (the damaged file "
    f"is kept beside it as {DB_NAME}{salvage.DAMAGED_INFIX}TIME), leaving out whole every "
    f"document that lost a passage, its vector or its sentences; then rebuild {VECTORS_NAME} "
    f"and {MANIFEST_NAME}. The documents left out are listed with the `rag index` command that "
    f"adds them again from their sources (the others are found unchanged)"
)


def _lost_store_fix(
    directory: Path, conn: sqlite3.Connection | None, why: str | None = None
) -> str:
    """Why a damaged store cannot be repaired here, and what to do instead."""
    sources: list[str] = []
    if conn is not None:
        with contextlib.suppress(sqlite3.DatabaseError):
            rows = conn.execute("SELECT DISTINCT source FROM documents ORDER BY 1")
            sources = list(dict.fromkeys(_JSONL_LINE.sub("", s) for (s,) in rows))
    named = ""
    if sources:
        shown = ", ".join(sources[:5]) + (", ..." if len(sources) > 5 else "")
        named = f" (what is still readable names {len(sources)} source(s): {shown})"
    new = shlex.quote(str(directory.with_name(directory.name + "-new")))
    reason = f"{why}, so not a row can be salvaged. " if why else ""
    return (
        f"cannot repair it: {reason}{DB_NAME} is the only copy of the documents, passages and "
        f"vectors; {VECTORS_NAME} and {MANIFEST_NAME} are derived from it, not the other way "
        f"round, so repair leaves everything as it is. Restore the index directory from a "
        f"backup, or index the sources again into a new directory: "
        f"`rag index SOURCES --index {new}`{named}"
    )


def _ids(ids: np.ndarray) -> str:
    shown = ", ".join(str(int(i)) for i in np.sort(ids)[:_SHOWN])
    return shown + (", ..." if len(ids) > _SHOWN else "")


# -- repair -----------------------------------------------------------------------------------


def _index_directory(path: str | Path) -> Path:
    directory = Path(path).expanduser()
    if not Index.exists(directory):
        raise IndexNotFoundError(
            f"No index at {directory}: nothing to verify. Pass --index the directory of an "
            f"existing index."
        )
    return directory


def _salvage(directory: Path, done: list[str]) -> Salvage:
    """Salvage the damaged `chunks.sqlite` into a new one and swap it in (the damaged file is
    kept beside it, with a JSON note of what was lost); the derived files are rebuilt after."""
    db = directory / DB_NAME
    recorded = _read_manifest(_Inspection(directory))
    target = atomic.temp_path_for(db)
    try:
        conn = _connect_read_only(db)
        try:
            result = salvage.salvage(
                conn, target, recorded=recorded, backup=_faiss_backup(directory, recorded)
            )
        finally:
            conn.close()
        aside = salvage.swap_in(directory, target)
    except BaseException:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        raise
    result = replace(
        result,
        damaged_copy=aside,
        restore=_restore_command(directory, result) if result.lost else None,
    )
    atomic.write_json(aside.with_name(aside.name + ".json"), result.to_json())
    done.append(
        f"salvaged {DB_NAME} into a new database: kept {result.documents} document(s) and "
        f"{result.passages} passage(s)"
        + (
            f", lost {len(result.lost_documents) + result.unnamed_documents} document(s) and "
            f"{result.lost_passages} passage(s)"
            if result.lost
            else ", lost nothing"
        )
        + (
            f" ({result.vectors_from_faiss} vector(s) taken from {VECTORS_NAME})"
            if result.vectors_from_faiss
            else ""
        )
        + f"; the damaged file is kept as {aside.name}"
    )
    if not result.row_ids_certain:
        _forget_graph_and_keywords(directory, done)
    return result


def _faiss_backup(directory: Path, recorded: Manifest | None) -> salvage.Backup:
    """What `vectors.faiss` holds, for passages whose vector SQLite can no longer read."""

    def read(dim: int) -> BackupVectors | None:
        file = _read_faiss(_Inspection(directory), dim)
        if file is None:
            return None
        vouched = recorded is not None and recorded.vectors_sha256 == file.sha256
        return BackupVectors(file.ids, file.vectors, vouched)

    return read


def _forget_graph_and_keywords(directory: Path, done: list[str]) -> None:
    """The AUTOINCREMENT counter was lost, so a row id may be given out again: the approximate
    graph and the keyword index, which would take it for the old passage, are built anew."""
    dropped = [
        name for name in (ann.POINTER_NAME, keywords.POINTER_NAME) if (directory / name).exists()
    ]
    for name in dropped:
        (directory / name).unlink()
    if not dropped:
        return
    atomic.fsync_dir(directory)
    ann.remove_unreferenced(directory)
    keywords.remove_unreferenced(directory)
    done.append(
        "removed the approximate graph and the keyword index (the row id counter was "
        "unreadable); opening the index builds them again in the background"
    )


def _restore_command(directory: Path, result: Salvage) -> str:
    """`rag index` of the lost documents' sources (the documents it finds stored are
    unchanged and skipped); SOURCES when a lost document's source is unknown."""
    sources = dict.fromkeys(
        _JSONL_LINE.sub("", d.source) for d in result.lost_documents if d.source
    )
    unknown = result.unnamed_documents or any(d.source is None for d in result.lost_documents)
    named = [shlex.quote(s) for s in sources] + (["SOURCES"] if unknown or not sources else [])
    return f"rag index {' '.join(named)} --index {shlex.quote(str(directory))}"


def _migrate(directory: Path) -> str:
    store = Store.open(directory)
    try:
        before = store.schema_version()
        store.migrate()
    finally:
        store.close()
    return f"migrated {DB_NAME} from schema version {before} to {migrations.SCHEMA_VERSION}"


def _repair_content(
    directory: Path,
    found: _Inspection,
    analyzer_id: str | None,
    analyze: Analyze | None,
    done: list[str],
) -> None:
    """One SQLite transaction for the row fixes, then the FAISS file, then the manifest."""
    if found.has(FORMAT_NEWER) or not any(p.repairable for p in found.problems):
        return  # nothing to do, or a newer newsrag's files: leave them to it
    db = directory / DB_NAME
    conn = connect(db)
    store = Store(conn, db)
    try:
        changed = _repair_rows(conn, store, found, analyzer_id, analyze, done)
        if changed or found.has(FAISS_MISSING, FAISS_UNREADABLE, FAISS_STALE):
            _rewrite_derived(directory, conn, store, done, rebuild_faiss=True)
        elif found.has(MANIFEST_MISSING, MANIFEST_UNREADABLE, MANIFEST_STALE):
            _rewrite_derived(directory, conn, store, done, rebuild_faiss=False)
    finally:
        store.close()


def _repair_rows(
    conn: sqlite3.Connection,
    store: Store,
    found: _Inspection,
    analyzer_id: str | None,
    analyze: Analyze | None,
    done: list[str],
) -> bool:
    """Orphans, vectors from the FAISS file, keyword terms; True if SQLite changed."""
    fixes: list[str] = []
    with store.write_transaction():
        if found.has(ORPHAN_ROWS):
            deleted = sum(
                conn.execute(f"DELETE FROM {table} WHERE {where}").rowcount
                for table, where, _ in _ORPHANS
            )
            fixes.append(f"deleted {deleted} orphaned row(s) from {DB_NAME}")
        if found.restorable:
            conn.executemany(
                "INSERT OR REPLACE INTO vectors(chunk_row_id, vector) "
                "SELECT id, ? FROM chunks WHERE id = ?",
                ((v.astype("<f4").tobytes(), r) for r, v in found.restorable.items()),
            )
            fixes.append(
                f"took {len(found.restorable)} passage vector(s) back from {VECTORS_NAME} "
                f"into {DB_NAME}"
            )
        if found.has(KEYWORD_TERMS) and analyzer_id is not None and analyze is not None:
            rows = list(store.chunk_texts())
            terms = analyze([(text, lang) for _, text, lang in rows]) if rows else []
            store.replace_keywords(zip([r for r, _, _ in rows], terms, strict=True))
            store.set_keyword_analyzer(analyzer_id)
            fixes.append(f"analysed {len(rows)} passage(s) for keyword search ({analyzer_id})")
        if fixes:
            # A new generation, so processes that have the index open reload the vectors.
            store._bump_generation()
    done.extend(fixes)
    return bool(fixes)


def _rewrite_derived(
    directory: Path, conn: sqlite3.Connection, store: Store, done: list[str], *, rebuild_faiss: bool
) -> None:
    """Replace `vectors.faiss` (if asked) and then `manifest.json`, each atomically."""
    with store.snapshot():
        spec = store.spec()
        generation = store.generation()
        documents, chunks = store.counts()
        created_at = store.created_at()
        vectors = _valid_vectors(conn, spec) if rebuild_faiss else None
    if vectors is not None:
        ids, matrix = vectors
        checksum = FaissFlatIndex.build(spec.dim, ids, matrix).save(directory / VECTORS_NAME)
        done.append(f"rebuilt {VECTORS_NAME} from {DB_NAME} ({len(ids)} vectors)")
    else:
        checksum = atomic.sha256_file(directory / VECTORS_NAME)
    updated = manifest.now_iso()
    manifest.write(
        directory,
        Manifest(spec, documents, chunks, generation, checksum, created_at or updated, updated),
    )
    done.append(f"wrote {MANIFEST_NAME} (generation {generation}, {chunks} passages)")
