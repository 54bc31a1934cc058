"""Salvage of a damaged `chunks.sqlite`: every row SQLite can still read, copied into a new
database, without the documents that lost part of themselves.

`index.verify.repair` runs it under `write.lock` when SQLite's integrity check fails. Each table
is read in key order; where a read fails (a damaged page), the next key from which reading works
again is found by galloping and bisection, so a bad page costs its own rows, not the table's.
Then, in the new database:

- a document is kept whole or not at all: a passage whose document row was lost is dropped, and
  a document that lost a passage (or its sentences) is dropped with all its other passages and
  listed, so that `rag index` of its source adds it again, whole. Kept documents keep their
  content hash, so that same run finds them unchanged and embeds nothing else;
- a passage whose vector was lost takes it back from `vectors.faiss` when that file agrees with
  the vectors that were read; otherwise its document is dropped;
- keyword terms are derived from the passages: lost ones are analysed again by the repair that
  follows (`Index.reanalyze_keywords`' analyzer);
- row ids are kept and the AUTOINCREMENT counter never goes down, so the HNSW graph and the
  keyword index, which treat rows that are gone as removed, stay right; the generation moves on,
  so every derived file is rebuilt or caught up.

Which passages a document had is told by the database's own index b-trees (`chunks_doc_id`, the
documents' id and source indexes: pages of their own), and by row ids: a document's passages get
consecutive row ids (they are inserted in one go), so a damaged range of the passages table can
only have cost the document just before it, the one just after it, and documents wholly inside.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, migrations
from .errors import IndexCorruptError, IndexMismatchError
from .manifest import FORMAT_VERSION, IndexSpec, Manifest, now_iso
from .store import DB_NAME, connect

logger = logging.getLogger(__name__)

DAMAGED_INFIX = ".damaged-"
"""The damaged database is kept as `chunks.sqlite.damaged-<UTC time>`."""

_MIN_KEY = -(2**63)
_MAX_KEY = 2**63 - 1
_BATCH = 10_000


@dataclass(frozen=True)
class BackupVectors:
    """The vectors `vectors.faiss` holds, for passages whose stored vector cannot be read."""

    ids: np.ndarray
    """Row ids, ascending."""
    vectors: np.ndarray
    vouched: bool
    """The manifest's checksum names this file (so it is trusted even when no stored vector is
    left to compare it with)."""


Backup = Callable[[int], BackupVectors | None]
"""dim -> what `vectors.faiss` holds, or None when it is missing or unusable."""


@dataclass(frozen=True)
class Unreadable:
    """A range of keys of one table that SQLite could not read."""

    table: str
    first: int | None
    """None: from the start of the table."""
    last: int | None
    """None: to the end of the table."""

    def __str__(self) -> str:
        first = "start" if self.first is None else self.first
        return f"{self.table} keys {first}..{'end' if self.last is None else self.last}"

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "first": self.first, "last": self.last}

    @property
    def bounds(self) -> tuple[int, int]:
        """(first, last) as 64-bit integers."""
        return (
            _MIN_KEY if self.first is None else self.first,
            _MAX_KEY if self.last is None else self.last,
        )


@dataclass(frozen=True)
class LostDocument:
    """A document the salvaged index no longer holds; `rag index` of its source adds it again."""

    doc_id: str
    title: str | None
    source: str | None
    """None when neither its row nor the index of sources could be read."""

    def to_json(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "title": self.title, "source": self.source}


@dataclass(frozen=True)
class Salvage:
    """What a salvage kept and lost. `verify.repair` fills in `damaged_copy` and `restore`."""

    documents: int
    """Documents kept."""
    passages: int
    """Passages kept."""
    lost_documents: tuple[LostDocument, ...]
    lost_passages: int
    """Passages the damaged index held that the new one does not (counted from every trace
    that could be read: the manifest, vectors.faiss and each table)."""
    unnamed_documents: int
    """Lost documents of which not even the id could be read (counted from the manifest)."""
    vectors_from_faiss: int
    """Passage vectors that were unreadable in SQLite and were taken from vectors.faiss."""
    unreadable: tuple[Unreadable, ...]
    row_ids_certain: bool
    """The AUTOINCREMENT counter was read, so no row id of the damaged index can be reused
    (otherwise the approximate graph and the keyword index are built anew)."""
    damaged_copy: Path | None = None
    restore: str | None = None
    """The command that indexes the lost documents again; None when nothing was lost."""

    @property
    def lost(self) -> bool:
        return bool(self.lost_documents or self.lost_passages or self.unnamed_documents)

    def to_json(self) -> dict[str, Any]:
        return {
            "damaged_copy": None if self.damaged_copy is None else str(self.damaged_copy),
            "kept": {"documents": self.documents, "passages": self.passages},
            "lost": {
                "documents": [d.to_json() for d in self.lost_documents],
                "unnamed_documents": self.unnamed_documents,
                "passages": self.lost_passages,
            },
            "vectors_from_faiss": self.vectors_from_faiss,
            "unreadable": [u.to_json() for u in self.unreadable],
            "restore": self.restore,
        }


# -- what can be salvaged at all -----------------------------------------------------------------


def salvage_blocker(conn: sqlite3.Connection) -> str | None:
    """Why nothing of the database behind `conn` can be salvaged (None: something can).

    The list of tables lives on the first page, with the file's header: without it no row can
    be found. A schema newer than this version of newsrag is not guessed at either.
    """
    try:
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        version = migrations.schema_version(conn)
    except sqlite3.DatabaseError as exc:
        return f"SQLite cannot read even its first page, which lists the tables ({exc})"
    if version > migrations.SCHEMA_VERSION:
        return (
            f"it has schema version {version}; this version of newsrag reads up to "
            f"{migrations.SCHEMA_VERSION} (upgrade newsrag to salvage it)"
        )
    missing = {"documents", "chunks", "meta"} - names
    if missing:
        return f"its list of tables lacks {', '.join(sorted(missing))}"
    return None


# -- reading a damaged database ------------------------------------------------------------------


class _Reader:
    """Reads what it can of a damaged database, remembering the key ranges it could not."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.unreadable: list[Unreadable] = []

    def tables(self) -> set[str]:
        return {name for (name,) in self.conn.execute("SELECT name FROM sqlite_master")}

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.conn.execute(f'PRAGMA table_info("{table}")')]

    def lost(self, table: str) -> list[Unreadable]:
        return [u for u in self.unreadable if u.table == table]

    def rows(
        self, table: str, key: str, columns: Iterable[str], *, unique: bool = True
    ) -> Iterator[tuple[Any, ...]]:
        """(key, *columns) of every readable row, by key (an integer: the rowid or the first
        column of the primary key). With `unique=False` the rows of one key come together or,
        if a read failed among them, not at all."""
        select = ", ".join(_quote(c) for c in (key, *columns))
        sql = f"SELECT {select} FROM {_quote(table)} WHERE {_quote(key)} >= ? ORDER BY 1"
        start: int | None = _MIN_KEY
        while start is not None:
            group: list[tuple[Any, ...]] = []
            try:
                for row in self.conn.execute(sql, (start,)):
                    if not isinstance(row[0], int):
                        continue  # a damaged cell; integer keys sort first, so nothing is skipped
                    if group and row[0] != group[0][0]:
                        yield from group
                        start, group = group[0][0] + 1, []
                    group.append(row)
                    if unique:
                        yield row
                        start, group = row[0] + 1, []
                yield from group
                return
            except sqlite3.DatabaseError as exc:
                if unique:
                    # Python's cursor reads a row ahead and drops the row it holds when that
                    # read fails: take the rows up to the damage one query (LIMIT 1) each.
                    start = yield from self._one_by_one(sql + " LIMIT 1", start)
                    if start is None:
                        return
                resume = self._next_readable(sql + " LIMIT 1", start)
                lost = Unreadable(
                    table,
                    None if start == _MIN_KEY else start,
                    None if resume is None else resume - 1,
                )
                logger.info("cannot read %s of %s (%s)", lost, DB_NAME, exc)
                self._add_unreadable(lost)
                start = resume

    def _add_unreadable(self, lost: Unreadable) -> None:
        """Record a range, joined to the one before if it continues it."""
        previous = self.unreadable[-1] if self.unreadable else None
        if (
            previous is not None
            and previous.table == lost.table
            and previous.last is not None
            and lost.first == previous.last + 1
        ):
            self.unreadable[-1] = Unreadable(lost.table, previous.first, lost.last)
        else:
            self.unreadable.append(lost)

    def _one_by_one(self, probe: str, start: int) -> Generator[tuple[Any, ...], None, int | None]:
        """The rows from `start` on, read one per query until a read fails; returns the key
        from which it failed (None: the end of the table was reached)."""
        while True:
            try:
                row = self.conn.execute(probe, (start,)).fetchone()
            except sqlite3.DatabaseError:
                return start
            if row is None or not isinstance(row[0], int):
                return None
            yield row
            start = row[0] + 1

    def _next_readable(self, probe: str, start: int) -> int | None:
        """The smallest key above `start` (from which reading failed) from which a row can be
        read again; None if none can. Galloping away from `start`, then bisecting."""
        failing, step = start, 1
        while True:
            candidate = min(start + step, _MAX_KEY)
            if self._reads(probe, candidate):
                break
            if candidate == _MAX_KEY:
                return None
            failing, step = candidate, step * 2
        while candidate - failing > 1:
            middle = (failing + candidate) // 2
            if self._reads(probe, middle):
                candidate = middle
            else:
                failing = middle
        return candidate

    def _reads(self, probe: str, key: int) -> bool:
        try:
            self.conn.execute(probe, (key,)).fetchone()
        except sqlite3.DatabaseError:
            return False
        return True

    def index_entries(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query that walks one index b-tree (`sql` ends in ORDER BY ... and takes
        ASC or DESC): from the front until a read fails, then from the back likewise."""
        found: list[tuple[Any, ...]] = []
        for direction in ("ASC", "DESC"):
            try:
                for row in self.conn.execute(f"{sql} {direction}"):
                    found.append(tuple(row))
            except sqlite3.DatabaseError:
                continue
            break  # read to the end: the other direction has nothing new
        return list(dict.fromkeys(found))

    def chunk_ids_of(self, doc_id: str) -> set[int] | None:
        """The passages' row ids of a document, as the `chunks_doc_id` index holds them (None:
        it cannot be read there)."""
        try:
            rows = self.conn.execute(
                "SELECT id FROM chunks INDEXED BY chunks_doc_id WHERE doc_id = ?", (doc_id,)
            ).fetchall()
        except sqlite3.DatabaseError:
            return None
        return {int(r) for (r,) in rows}

    def indexed_documents(self) -> dict[str, str | None]:
        """doc id -> source of every document the documents' own indexes still name."""
        ids = self.index_entries(
            "SELECT doc_id, rowid FROM documents INDEXED BY sqlite_autoindex_documents_1 "
            "ORDER BY doc_id"
        )
        sources = dict(
            (rowid, source)
            for source, rowid in self.index_entries(
                "SELECT source, rowid FROM documents INDEXED BY documents_source ORDER BY source"
            )
        )
        return {doc_id: sources.get(rowid) for doc_id, rowid in ids if isinstance(doc_id, str)}

    def sequence(self) -> int | None:
        """The AUTOINCREMENT counter of the passages (0 if never used); None if unreadable."""
        try:
            row = self.conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'chunks'"
            ).fetchone()
        except sqlite3.DatabaseError:
            return None
        return int(row[0]) if row is not None and isinstance(row[0], int) else 0


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- building the new database -------------------------------------------------------------------

_COPIED = (
    # (table, key, keep the key as row id, unique key)
    ("documents", "rowid", False, True),
    ("chunks", "id", True, True),
    ("vectors", "chunk_row_id", True, True),
    ("sentences", "chunk_row_id", True, False),
    ("keywords", "rowid", True, True),
)
_PASSAGE_KEYED = ("chunks", "vectors", "sentences", "keywords")
"""Tables whose key is a passage's row id."""


def salvage(
    damaged: sqlite3.Connection,
    target: Path,
    *,
    recorded: Manifest | None,
    backup: Backup,
) -> Salvage:
    """Copy what can be read through `damaged` (read-only) into a new database at `target`, in
    the current schema, keeping documents whole. The caller holds the write lock, moves
    `target` into place (`swap_in`) and rebuilds the derived files."""
    reader = _Reader(damaged)
    meta = {str(k): str(v) for _, k, v in reader.rows("meta", "rowid", ("key", "value")) if k and v}
    spec = _spec(meta, recorded)
    conn = connect(target)
    try:
        migrations.apply(conn)
        conn.execute("PRAGMA foreign_keys = OFF")  # rows arrive table by table; orphans go below
        conn.execute("BEGIN IMMEDIATE")
        work = _Work(reader, conn, spec)
        work.copy()
        restored = work.settle(backup(spec.dim))
        work.finish(meta, recorded)
        conn.execute("COMMIT")
        left = conn.execute("PRAGMA foreign_key_check").fetchall()
        if left:
            raise IndexCorruptError(f"the salvaged database still has orphaned rows: {left[:3]}")
        kept = work.kept_ids()
        documents = int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    finally:
        conn.close()
    passages = len(kept)
    lost_passages = len(work.passage_ids - kept)
    unnamed = 0
    old_generation = _int(meta.get("generation"))
    if recorded is not None and recorded.generation == old_generation:
        lost_passages = max(lost_passages, recorded.chunks - passages)
        unnamed = max(0, recorded.documents - documents - len(work.lost_documents))
    return Salvage(
        documents=documents,
        passages=passages,
        lost_documents=tuple(work.lost_documents),
        lost_passages=lost_passages,
        unnamed_documents=unnamed,
        vectors_from_faiss=restored,
        unreadable=tuple(reader.unreadable),
        row_ids_certain=work.sequence_read,
    )


def _spec(meta: dict[str, str], recorded: Manifest | None) -> IndexSpec:
    """The index's spec: from its meta record, else from the manifest."""
    if (_int(meta.get("format_version")) or 0) > FORMAT_VERSION:
        raise IndexMismatchError(
            f"cannot salvage {DB_NAME}: it was written by a newer version of newsrag (format "
            f"{meta['format_version']}, this one reads {FORMAT_VERSION}); upgrade newsrag"
        )
    with contextlib.suppress(ValueError, TypeError, KeyError, IndexCorruptError):
        return IndexSpec.from_json(json.loads(meta["spec"]))
    if recorded is not None:
        return recorded.spec
    raise IndexCorruptError(
        f"cannot salvage {DB_NAME}: neither its meta record nor manifest.json can be read, so "
        f"nothing says which embedding model made its vectors. Restore the index from a backup, "
        f"or index the sources again into a new directory."
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Work:
    """One salvage: the rows copied into `conn` (inside its transaction), and what was lost."""

    def __init__(self, reader: _Reader, conn: sqlite3.Connection, spec: IndexSpec) -> None:
        self.reader = reader
        self.conn = conn
        self.spec = spec
        self.passage_ids: set[int] = set()
        """Every passage row id seen in any table: what the damaged index held."""
        self.highest = 0
        """The highest passage row id any trace of the index holds."""
        self.broken: set[str] = set()
        """Documents with a row that was read but could not be stored."""
        self.lost_documents: list[LostDocument] = []
        self.sequence_read = False

    # -- copying

    def copy(self) -> None:
        tables = self.reader.tables()
        for table, key, keep_key, unique in _COPIED:
            if table not in tables:
                continue  # an older schema (the repair's checks say what that leaves to do)
            ours = set(self.reader.columns(table)) if table != "keywords" else {"terms"}
            columns = [c for c in _columns(self.conn, table) if c in ours and c != key]
            self._copy_table(table, key, keep_key, unique, columns)

    def _copy_table(
        self, table: str, key: str, keep_key: bool, unique: bool, columns: list[str]
    ) -> None:
        names = ([key] if keep_key else []) + columns
        insert = (
            f"INSERT INTO {_quote(table)}({', '.join(_quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
        doc_at = columns.index("doc_id") + 1 if "doc_id" in columns else None
        for row in self.reader.rows(table, key, columns, unique=unique):
            if table in _PASSAGE_KEYED:
                self.passage_ids.add(row[0])
            if table == "vectors" and not _usable_vector(row[1], self.spec.dim):
                continue  # taken from vectors.faiss below, or its document is dropped
            try:
                self.conn.execute(insert, row if keep_key else row[1:])
            except sqlite3.IntegrityError as exc:  # a damaged cell: a NULL, a duplicate id
                logger.info("cannot keep a row of %s (key %s): %s", table, row[0], exc)
                if doc_at is not None and isinstance(row[doc_at], str):
                    self.broken.add(row[doc_at])

    # -- deciding what stays

    def settle(self, backup: BackupVectors | None) -> int:
        """Drop every document that lost part of itself; returns the vectors taken from
        `backup` for passages that lost theirs in SQLite."""
        lost = self.broken | self._documents_missing_passages()
        lost |= self._chunk_docs(self._ranges_ids("sentences"))
        restored, unrecoverable = self._restore_vectors(backup, lost)
        lost |= self._chunk_docs(unrecoverable)
        if backup is not None and len(backup.ids):
            self.highest = max(self.highest, int(backup.ids[-1]))
            if backup.vouched:  # the manifest's file: the passages of the damaged generation
                self.passage_ids.update(int(i) for i in backup.ids)
        self._name_lost(lost)
        self._drop(lost | {d.doc_id for d in self.lost_documents})
        return restored

    def _documents_missing_passages(self) -> set[str]:
        """Documents that lost their row or a passage.

        Once passages were lost, every document's passages are compared with the ones the
        damaged database's `chunks_doc_id` index lists for it. Where that index cannot be read
        either, a document is taken as damaged if it may be: next to a lost range, without
        passages, or with passage numbers (ordinals) that are not 0, 1, ... n-1.
        """
        lost = {
            d
            for (d,) in self.conn.execute(
                "SELECT DISTINCT doc_id FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM "
                "documents)"
            )
        }
        suspects = {
            d
            for (d,) in self.conn.execute(
                "SELECT doc_id FROM chunks GROUP BY doc_id HAVING min(ordinal) != 0 OR "
                "max(ordinal) != count(*) - 1 OR count(DISTINCT ordinal) != count(*)"
            )
        }
        gaps = self.reader.lost("chunks")
        for gap in gaps:
            suspects.update(self._neighbours(gap))
        if gaps:  # a document may have lost every passage it had
            suspects.update(
                d
                for (d,) in self.conn.execute(
                    "SELECT doc_id FROM documents WHERE doc_id NOT IN (SELECT doc_id FROM chunks)"
                )
            )
        compared = (
            {d for (d,) in self.conn.execute("SELECT doc_id FROM documents")} if gaps else suspects
        )
        for doc_id in sorted(compared - lost):
            indexed = self.reader.chunk_ids_of(doc_id)
            if indexed is not None:
                self.passage_ids.update(indexed)
            if indexed != self._kept_of(doc_id) and (indexed is not None or doc_id in suspects):
                lost.add(doc_id)
        return lost

    def _neighbours(self, gap: Unreadable) -> set[str]:
        """The documents of the passages just before and just after an unreadable range."""
        first, last = gap.bounds
        before = self.conn.execute(
            "SELECT doc_id FROM chunks WHERE id < ? ORDER BY id DESC LIMIT 1", (first,)
        ).fetchone()
        after = (
            None
            if gap.last is None
            else self.conn.execute(
                "SELECT doc_id FROM chunks WHERE id > ? ORDER BY id LIMIT 1", (last,)
            ).fetchone()
        )
        return {row[0] for row in (before, after) if row is not None}

    def _kept_of(self, doc_id: str) -> set[int]:
        rows = self.conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))
        return {r for (r,) in rows}

    def kept_ids(self) -> set[int]:
        return {r for (r,) in self.conn.execute("SELECT id FROM chunks")}

    def _ranges_ids(self, table: str) -> list[int]:
        """Row ids of the copied passages inside an unreadable range of `table`."""
        ids: list[int] = []
        for gap in self.reader.lost(table):
            rows = self.conn.execute("SELECT id FROM chunks WHERE id BETWEEN ? AND ?", gap.bounds)
            ids += [r for (r,) in rows]
        return ids

    def _chunk_docs(self, row_ids: Iterable[int]) -> set[str]:
        return {
            d
            for (d,) in self.conn.execute(
                "SELECT DISTINCT doc_id FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(int(r) for r in row_ids)),),
            )
        }

    def _restore_vectors(
        self, backup: BackupVectors | None, lost: set[str]
    ) -> tuple[int, list[int]]:
        """Give each kept passage without a vector the one `backup` holds, if `backup` agrees
        with every vector that was read. (taken, row ids still without one)."""
        missing = [
            r
            for r, doc_id in self.conn.execute(
                "SELECT id, doc_id FROM chunks WHERE id NOT IN (SELECT chunk_row_id FROM vectors) "
                "ORDER BY id"
            )
            if doc_id not in lost
        ]
        if not missing or backup is None or not self._backup_agrees(backup):
            return 0, missing
        ids = np.asarray(missing, dtype=np.int64)
        pos = np.minimum(np.searchsorted(backup.ids, ids), max(len(backup.ids) - 1, 0))
        held = (backup.ids[pos] == ids) if len(backup.ids) else np.zeros(len(ids), bool)
        rows = backup.vectors[pos[held]]
        good = [
            (int(r), v)
            for r, v in zip(ids[held], rows)
            if _usable_vector(v.astype("<f4").tobytes(), self.spec.dim)
            and (not self.spec.normalized or abs(float(np.linalg.norm(v)) - 1.0) <= 1e-3)
        ]
        self.conn.executemany(
            "INSERT INTO vectors(chunk_row_id, vector) VALUES (?, ?)",
            ((r, v.astype("<f4").tobytes()) for r, v in good),
        )
        taken = {r for r, _ in good}
        return len(good), [r for r in missing if r not in taken]

    def _backup_agrees(self, backup: BackupVectors) -> bool:
        """Every vector read from SQLite that `backup` also holds is the same there."""
        if not len(backup.ids):
            return backup.vouched
        agreeing = 0
        cursor = self.conn.execute("SELECT chunk_row_id, vector FROM vectors ORDER BY 1")
        while rows := cursor.fetchmany(_BATCH):
            ids = np.asarray([r for r, _ in rows], dtype=np.int64)
            pos = np.minimum(np.searchsorted(backup.ids, ids), len(backup.ids) - 1)
            held = backup.ids[pos] == ids
            stored = np.frombuffer(b"".join(b for (_, b), h in zip(rows, held) if h), dtype="<f4")
            if not np.array_equal(stored.reshape(-1, self.spec.dim), backup.vectors[pos[held]]):
                return False
            agreeing += int(held.sum())
        return agreeing > 0 or backup.vouched

    def _name_lost(self, lost: set[str]) -> None:
        """Every lost document with what can still be read of its title and source: documents
        dropped here, and documents whose row is gone that the damaged indexes still name."""
        kept = {d for (d,) in self.conn.execute("SELECT doc_id FROM documents")} - lost
        indexed = self.reader.indexed_documents()
        rows = {
            doc_id: (title, source)
            for doc_id, title, source in self.conn.execute(
                "SELECT doc_id, title, source FROM documents WHERE doc_id IN "
                "(SELECT value FROM json_each(?))",
                (json.dumps(sorted(lost)),),
            )
        }
        for doc_id in sorted(lost | (set(indexed) - kept)):
            title, source = rows.get(doc_id, (None, indexed.get(doc_id)))
            self.lost_documents.append(LostDocument(doc_id, title, source))

    def _drop(self, doc_ids: set[str]) -> None:
        """Delete these documents and every row left without its passage or document."""
        ids = json.dumps(sorted(doc_ids))
        for statement in (
            "DELETE FROM chunks WHERE doc_id IN (SELECT value FROM json_each(?))",
            "DELETE FROM documents WHERE doc_id IN (SELECT value FROM json_each(?))",
        ):
            self.conn.execute(statement, (ids,))
        for statement in (
            "DELETE FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)",
            "DELETE FROM vectors WHERE chunk_row_id NOT IN (SELECT id FROM chunks)",
            "DELETE FROM sentences WHERE chunk_row_id NOT IN (SELECT id FROM chunks)",
            "DELETE FROM keywords WHERE rowid NOT IN (SELECT id FROM chunks)",
        ):
            self.conn.execute(statement)

    # -- the meta records and the row id counter

    def finish(self, meta: dict[str, str], recorded: Manifest | None) -> None:
        """Meta records as the damaged index had them, a generation past every earlier one,
        and the AUTOINCREMENT counter past every row id it ever gave out."""
        generations = [_int(meta.get("generation")) or 0]
        if recorded is not None:
            generations.append(recorded.generation)
        values = {
            **{k: v for k, v in meta.items() if k != "schema_version"},
            "format_version": meta.get("format_version") or str(FORMAT_VERSION),
            "spec": json.dumps(self.spec.to_json(), sort_keys=True),
            "generation": str(max(generations) + 1),
            "created_at": meta.get("created_at")
            or (recorded.created_at if recorded is not None else "")
            or now_iso(),
        }
        if self.reader.lost("meta") and "keyword_analyzer" not in meta:
            # The record may be what was lost: then nothing says which analyzer made the terms,
            # and the first search analyses every passage again (as for an index without them).
            self.conn.execute("DELETE FROM keywords")
        values.pop("signatures_pending", None)
        if self.conn.execute("SELECT 1 FROM chunks WHERE signature IS NULL LIMIT 1").fetchone():
            values["signatures_pending"] = "1"
        self.conn.execute("DELETE FROM meta WHERE key != 'schema_version'")
        self.conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            sorted((k, v) for k, v in values.items()),
        )
        self._set_sequence()

    def _set_sequence(self) -> None:
        read = self.reader.sequence()
        self.sequence_read = read is not None
        highest = max(read or 0, self.highest, max(self.passage_ids, default=0))
        self.conn.execute("DELETE FROM sqlite_sequence WHERE name = 'chunks'")
        self.conn.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('chunks', ?)", (highest,))


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    if table == "keywords":
        return ["terms"]
    return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]


def _usable_vector(blob: object, dim: int) -> bool:
    if not isinstance(blob, bytes) or len(blob) != dim * 4:
        return False
    return bool(np.isfinite(np.frombuffer(blob, dtype="<f4")).all())


# -- putting it in place ----------------------------------------------------------------------


def swap_in(directory: Path, built: Path) -> Path:
    """Put the salvaged database `built` (in `directory`) in place of the damaged one, which
    is kept, with its write-ahead log, as `chunks.sqlite.damaged-<time>`; returns that path.

    The damaged file gets its second name first (a hard link, or a copy), so at any moment
    `chunks.sqlite` is the damaged database or the new one, and the damaged data is never
    without a name. The caller holds the write lock.
    """
    db = directory / DB_NAME
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = directory / f"{DB_NAME}{DAMAGED_INFIX}{stamp}"
    n = 1
    while any(Path(f"{aside}{s}").exists() for s in ("", "-wal", "-shm")):
        n += 1
        aside = directory / f"{DB_NAME}{DAMAGED_INFIX}{stamp}-{n}"
    for suffix in ("", "-wal"):
        if Path(f"{db}{suffix}").exists():
            _second_name(Path(f"{db}{suffix}"), Path(f"{aside}{suffix}"))
    atomic.fsync_dir(directory)
    # The damaged database's log must not be read as the new one's.
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    atomic.fsync_file(built)
    os.replace(built, db)
    atomic.fsync_dir(directory)
    return aside


def _second_name(path: Path, name: Path) -> None:
    try:
        os.link(path, name)
    except OSError:  # a file system without hard links
        shutil.copy2(path, name)
        atomic.fsync_file(name)
