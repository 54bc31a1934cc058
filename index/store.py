"""The chunk store (`chunks.sqlite`): documents, chunks and their vectors; the index's commit point."""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, migrations, signatures
from .errors import IndexCorruptError, IndexUsageError
from .manifest import FORMAT_VERSION, IndexSpec
from .records import DocumentRecord, PassageEvidence, StoredChunk, WriteResult

DB_NAME = "chunks.sqlite"
_BUSY_TIMEOUT_MS = 30_000
_FETCH_BATCH = 10_000
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")

# A document's (possibly partial) date as the first and last day it may mean: "2022-06" spans
# "2022-06-01" .. "2022-06-31" (an upper bound that compares correctly with any real date).
_DOC_START = "(substr(d.date, 1, 10) || substr('0000-01-01', length(substr(d.date, 1, 10)) + 1))"
_DOC_END = "(substr(d.date, 1, 10) || substr('9999-12-31', length(substr(d.date, 1, 10)) + 1))"

_HAS_DATE = "d.date GLOB '[0-9][0-9][0-9][0-9]*'"

_CHUNK_COLUMNS = (
    'c.chunk_id, c.doc_id, c.ordinal, c.start, c."end", c.page, c.text, '
    "d.source, d.title, d.date, d.language, d.url, c.id, "
    "json_extract(d.metadata_json, '$.date_source'), c.signature"
)


@dataclass(frozen=True)
class PreparedDocument:
    """A validated DocumentRecord with its chunks' vectors as one float32 (n_chunks, dim) matrix."""

    record: DocumentRecord
    vectors: np.ndarray
    metadata_json: str


@dataclass(frozen=True)
class WriteOutcome:
    """What `Store.apply_write` changed, for updating the vector index after commit."""

    result: WriteResult
    removed_row_ids: np.ndarray
    added_row_ids: np.ndarray
    added_vectors: np.ndarray
    added_terms: tuple[str | None, ...] = ()
    """Keyword terms (space-separated) of each added row, in `added_row_ids` order."""

    @property
    def changed(self) -> bool:
        r = self.result
        return bool(r.added or r.updated or r.removed)


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, synchronous=FULL."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(
            f"{path} is not a readable SQLite database ({exc}); the index is damaged: "
            f"re-index into a new directory"
        ) from exc
    return conn


def create_database(directory: Path, spec: IndexSpec, created_at: str) -> None:
    """Create `chunks.sqlite` fully initialised, atomically: built under a temp name, then renamed.

    A crash leaves either no database or a complete one. The caller holds the write lock.
    """
    target = directory / DB_NAME
    with atomic.replacing(target) as tmp:
        conn = connect(tmp)
        try:
            migrations.apply(conn)
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("format_version", str(FORMAT_VERSION)),
                    ("spec", json.dumps(spec.to_json(), sort_keys=True)),
                    ("generation", "0"),
                    ("created_at", created_at),
                ],
            )
        finally:
            conn.close()  # checkpoints and removes the temp database's WAL


class Store:
    """Queries and the one write transaction over an open `chunks.sqlite` connection.

    Not thread-safe by itself; the Index serialises access.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, directory: Path) -> Store:
        path = directory / DB_NAME
        return cls(connect(path), path)

    def close(self) -> None:
        self._conn.close()

    # -- schema -------------------------------------------------------------------------------

    def schema_version(self) -> int:
        return migrations.schema_version(self._conn)

    @staticmethod
    def latest_schema_version() -> int:
        return migrations.SCHEMA_VERSION

    def migrate(self) -> None:
        """Apply pending migrations. The caller holds the write lock."""
        migrations.apply(self._conn)

    # -- transactions -------------------------------------------------------------------------

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the same committed state."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE .. COMMIT, rolled back on any exception."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _required_meta(self, key: str) -> str:
        value = self._meta(key)
        if value is None:
            raise IndexCorruptError(
                f"{self.path} has no {key!r} record; the index is damaged: re-index into a new "
                f"directory"
            )
        return value

    def generation(self) -> int:
        """The commit counter, bumped by every write that changed something."""
        return int(self._required_meta("generation"))

    def format_version(self) -> int:
        return int(self._required_meta("format_version"))

    def spec(self) -> IndexSpec:
        try:
            data = json.loads(self._required_meta("spec"))
        except json.JSONDecodeError as exc:
            raise IndexCorruptError(f"{self.path} holds a malformed spec record ({exc})") from exc
        return IndexSpec.from_json(data)

    def created_at(self) -> str:
        return self._meta("created_at") or ""

    def _bump_generation(self) -> int:
        self._conn.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
            "WHERE key = 'generation'"
        )
        return self.generation()

    # -- reads --------------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        docs = self._conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        chunks = self._conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)

    def all_vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Every stored vector: (row ids int64 (n,), float32 (n, dim)), for rebuilding FAISS.

        Call inside `snapshot()` so the count and the rows agree.
        """
        n = int(self._conn.execute("SELECT count(*) FROM vectors").fetchone()[0])
        ids = np.empty(n, dtype=np.int64)
        matrix = np.empty((n, dim), dtype=np.float32)
        cursor = self._conn.execute(
            "SELECT chunk_row_id, vector FROM vectors ORDER BY chunk_row_id"
        )
        filled = 0
        while rows := cursor.fetchmany(_FETCH_BATCH):
            for row_id, blob in rows:
                if len(blob) != dim * 4 or filled >= n:
                    raise IndexCorruptError(
                        f"{self.path} holds a vector that is not {dim} float32 values (chunk row "
                        f"{row_id}); the index is damaged: re-index into a new directory"
                    )
                ids[filled] = row_id
                matrix[filled] = np.frombuffer(blob, dtype="<f4")
                filled += 1
        return ids[:filled], matrix[:filled]

    def content_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        rows = self._conn.execute(
            "SELECT doc_id, content_hash FROM documents "
            "WHERE doc_id IN (SELECT value FROM json_each(?))",
            (_json_list(doc_ids),),
        )
        return {doc_id: content_hash for doc_id, content_hash in rows}

    def doc_ids_for_sources(self, sources: Iterable[str]) -> dict[str, list[str]]:
        wanted = list(dict.fromkeys(sources))
        found: dict[str, list[str]] = {source: [] for source in wanted}
        rows = self._conn.execute(
            "SELECT source, doc_id FROM documents "
            "WHERE source IN (SELECT value FROM json_each(?)) ORDER BY source, doc_id",
            (_json_list(wanted),),
        )
        for source, doc_id in rows:
            found[source].append(doc_id)
        return found

    def chunks(self, row_ids: Sequence[int]) -> list[StoredChunk]:
        ids = [int(i) for i in row_ids]
        rows = self._conn.execute(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
            "WHERE c.id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),),
        )
        by_id = {row[12]: StoredChunk(*row) for row in rows}  # row[12]: c.id
        return [by_id[i] for i in ids if i in by_id]

    def passage_texts(self, row_ids: Sequence[int]) -> dict[int, tuple[str, bytes | None]]:
        rows = self._conn.execute(
            "SELECT id, text, signature FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps([int(i) for i in row_ids]),),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def chunk_row_ids(
        self,
        *,
        date_from: str | None = None,
        date_to: str | None = None,
        sources: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
    ) -> np.ndarray:
        where: list[str] = []
        params: list[Any] = []
        if date_from is not None:
            where.append(f"{_HAS_DATE} AND {_DOC_END} >= ?")
            params.append(date_bound(date_from, end=False))
        if date_to is not None:
            where.append(f"{_HAS_DATE} AND {_DOC_START} <= ?")
            params.append(date_bound(date_to, end=True))
        if sources is not None:
            where.append("d.source IN (SELECT value FROM json_each(?))")
            params.append(_json_list(sources))
        if languages is not None:
            where.append("d.language IN (SELECT value FROM json_each(?))")
            params.append(_json_list(languages))
        sql = "SELECT c.id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id"
        if where:
            sql += " WHERE " + " AND ".join(f"({w})" for w in where)
        rows = self._conn.execute(sql + " ORDER BY c.id", params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def documents(self) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT d.doc_id, d.source, d.title, d.date, d.language, count(c.id) "
            "FROM documents d LEFT JOIN chunks c ON c.doc_id = d.doc_id "
            "GROUP BY d.doc_id ORDER BY d.doc_id"
        )
        keys = ("doc_id", "source", "title", "date", "language", "n_chunks")
        return [dict(zip(keys, row)) for row in rows]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT d.doc_id, d.source, d.title, d.date, d.language, d.url, d.content_hash, "
            "d.text, d.metadata_json, d.added_at, "
            "(SELECT count(*) FROM chunks c WHERE c.doc_id = d.doc_id) "
            "FROM documents d WHERE d.doc_id = ?",
            (doc_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("doc_id", "source", "title", "date", "language", "url", "content_hash", "text")
        doc: dict[str, Any] = dict(zip(keys, row[:8]))
        doc["metadata"] = json.loads(row[8])
        doc["added_at"] = row[9]
        doc["n_chunks"] = row[10]
        return doc

    # -- the write ----------------------------------------------------------------------------

    def apply_write(
        self, upserts: Sequence[PreparedDocument], removals: Sequence[str], now: str, dim: int
    ) -> WriteOutcome:
        """Apply removals and upserts inside the caller's write transaction.

        Bumps the generation if anything changed. Unchanged documents (same content hash) are
        not touched.
        """
        removed_ids: list[int] = []
        added_ids: list[int] = []
        added_terms: list[str | None] = []
        added_vectors: list[np.ndarray] = []
        counts = {"added": 0, "updated": 0, "removed": 0, "unchanged": 0}
        for doc_id in removals:
            old = self._delete_document(doc_id)
            if old is not None:
                counts["removed"] += 1
                removed_ids.extend(old)
        for prepared in upserts:
            doc_id = prepared.record.doc_id
            existing = self._conn.execute(
                "SELECT content_hash FROM documents WHERE doc_id = ?", (doc_id,)
            ).fetchone()
            if existing is not None and existing[0] == prepared.record.content_hash:
                counts["unchanged"] += 1
                continue
            if existing is not None:
                removed_ids.extend(self._delete_document(doc_id) or [])
                counts["updated"] += 1
            else:
                counts["added"] += 1
            for row_id, terms in self._insert_document(prepared, now):
                added_ids.append(row_id)
                added_terms.append(terms)
            added_vectors.append(prepared.vectors)
        result = WriteResult(**counts, chunks_added=len(added_ids), chunks_removed=len(removed_ids))
        vectors = np.concatenate(added_vectors) if added_vectors else np.empty((0, dim), np.float32)
        outcome = WriteOutcome(
            result=result,
            removed_row_ids=np.asarray(removed_ids, dtype=np.int64),
            added_row_ids=np.asarray(added_ids, dtype=np.int64),
            added_vectors=vectors,
            added_terms=tuple(added_terms),
        )
        if outcome.changed:
            self._bump_generation()
        return outcome

    def _delete_document(self, doc_id: str) -> list[int] | None:
        """Delete a document (its chunks and vectors cascade); its chunks' row ids, None if absent."""
        row_ids = [
            r[0] for r in self._conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))
        ]
        cursor = self._conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        return row_ids if cursor.rowcount else None

    def _insert_document(
        self, prepared: PreparedDocument, now: str
    ) -> list[tuple[int, str | None]]:
        """Insert the document and its chunks; (row id, keyword terms text) of each chunk."""
        doc = prepared.record
        self._conn.execute(
            "INSERT INTO documents(doc_id, source, title, date, language, url, content_hash, "
            "text, metadata_json, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc.doc_id, doc.source, doc.title, doc.date, doc.language, doc.url,
                doc.content_hash, doc.text, prepared.metadata_json, now,
            ),
        )  # fmt: skip
        rows: list[tuple[int, str | None]] = []
        for chunk, vector in zip(doc.chunks, prepared.vectors):
            try:
                cursor = self._conn.execute(
                    'INSERT INTO chunks(chunk_id, doc_id, ordinal, start, "end", page, text, '
                    "signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (chunk.chunk_id, doc.doc_id, int(chunk.ordinal), int(chunk.start),
                     int(chunk.end), None if chunk.page is None else int(chunk.page), chunk.text,
                     signatures.signature(chunk.text)),
                )  # fmt: skip
            except sqlite3.IntegrityError as exc:
                raise self._chunk_conflict(chunk.chunk_id, doc.doc_id) from exc
            row_id = int(cursor.lastrowid or 0)
            self._conn.execute(
                "INSERT INTO vectors(chunk_row_id, vector) VALUES (?, ?)",
                (row_id, vector.astype("<f4", copy=False).tobytes()),
            )
            self._insert_sentences(row_id, chunk)
            terms = None if chunk.terms is None else _terms_text(chunk.terms)
            if terms is not None:
                self._conn.execute(
                    "INSERT INTO keywords(rowid, terms) VALUES (?, ?)", (row_id, terms)
                )
            rows.append((row_id, terms))
        return rows

    def _insert_sentences(self, row_id: int, chunk: Any) -> None:
        vectors = chunk.sentence_vectors
        rows = []
        for i, (start, end) in enumerate(chunk.sentences):
            blob = None if vectors is None else vectors[i].astype("<f2").tobytes()
            rows.append((row_id, i, int(start), int(end), blob))
        if rows:
            self._conn.executemany(
                'INSERT INTO sentences(chunk_row_id, ordinal, start, "end", vector) '
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def evidence(self, row_ids: Sequence[int], dim: int) -> dict[int, PassageEvidence]:
        """Passage vectors and sentence spans/vectors of these chunks (missing ids skipped)."""
        ids = json.dumps([int(i) for i in row_ids])
        vectors = {
            int(r): np.frombuffer(blob, dtype="<f4").astype(np.float32)
            for r, blob in self._conn.execute(
                "SELECT chunk_row_id, vector FROM vectors "
                "WHERE chunk_row_id IN (SELECT value FROM json_each(?))",
                (ids,),
            )
        }
        spans: dict[int, list[tuple[int, int]]] = {}
        svecs: dict[int, list[bytes | None]] = {}
        for r, start, end, blob in self._conn.execute(
            'SELECT chunk_row_id, start, "end", vector FROM sentences '
            "WHERE chunk_row_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY chunk_row_id, ordinal",
            (ids,),
        ):
            spans.setdefault(int(r), []).append((int(start), int(end)))
            svecs.setdefault(int(r), []).append(blob)
        out: dict[int, PassageEvidence] = {}
        for r, vec in vectors.items():
            blobs = svecs.get(r, [])
            matrix = None
            if blobs and all(b is not None for b in blobs):
                matrix = (
                    np.frombuffer(b"".join(blobs), dtype="<f2").astype(np.float32).reshape(-1, dim)  # type: ignore[arg-type]
                )
            out[r] = PassageEvidence(r, vec, tuple(spans.get(r, ())), matrix)
        return out

    def _chunk_conflict(self, chunk_id: str, doc_id: str) -> IndexUsageError:
        row = self._conn.execute(
            "SELECT doc_id FROM chunks WHERE chunk_id = ?", (chunk_id,)
        ).fetchone()
        owner = row[0] if row else "?"
        return IndexUsageError(
            f"chunk id {chunk_id!r} of document {doc_id!r} is already used by document "
            f"{owner!r}; chunk ids must be unique across the index (derive them from the doc id)"
        )

    # -- near-duplicate signatures -------------------------------------------------------------

    def signatures_pending(self) -> bool:
        """True if chunks written before signatures existed still lack theirs."""
        return self._meta("signatures_pending") is not None

    def fill_signatures(self, limit: int) -> int:
        """Inside the caller's write transaction: compute the signatures of up to `limit`
        chunks that lack one; 0 when none is left (and the pending mark is cleared)."""
        rows = self._conn.execute(
            "SELECT id, text FROM chunks WHERE signature IS NULL LIMIT ?", (int(limit),)
        ).fetchall()
        self._conn.executemany(
            "UPDATE chunks SET signature = ? WHERE id = ?",
            [(signatures.signature(text), row_id) for row_id, text in rows],
        )
        if not rows:
            self._conn.execute("DELETE FROM meta WHERE key = 'signatures_pending'")
        return len(rows)

    # -- keywords -----------------------------------------------------------------------------

    def keyword_analyzer(self) -> str | None:
        """The id of the analyzer that made the stored keyword terms (None: never set)."""
        return self._meta("keyword_analyzer")

    def set_keyword_analyzer(self, analyzer_id: str) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES ('keyword_analyzer', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (analyzer_id,),
        )

    def chunk_texts(self) -> Iterator[tuple[int, str, str | None]]:
        """(row id, text, document language) of every chunk, by row id."""
        yield from self._conn.execute(
            "SELECT c.id, c.text, d.language FROM chunks c JOIN documents d "
            "ON d.doc_id = c.doc_id ORDER BY c.id"
        )

    def replace_keywords(self, terms: Iterable[tuple[int, Sequence[str]]]) -> None:
        """Inside the caller's write transaction: drop every keyword row, insert these."""
        self._conn.execute("DELETE FROM keywords")
        self._conn.executemany(
            "INSERT INTO keywords(rowid, terms) VALUES (?, ?)",
            ((int(row), _terms_text(t)) for row, t in terms),
        )

    def keyword_row_ids(self) -> np.ndarray:
        """Row ids (int64, ascending) of every chunk with keyword terms."""
        rows = self._conn.execute("SELECT rowid FROM keywords ORDER BY rowid").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def keyword_rows(self, after: int = 0) -> Iterator[tuple[int, str]]:
        """(row id, terms text) of the chunks with keyword terms and a row id above `after`,
        ascending (what the tantivy keyword index is built from)."""
        cursor = self._conn.execute(
            "SELECT rowid, terms FROM keywords WHERE rowid > ? ORDER BY rowid", (int(after),)
        )
        while rows := cursor.fetchmany(_FETCH_BATCH):
            yield from ((int(r), str(t)) for r, t in rows)

    def keyword_search(
        self, terms: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Up to k (row id, BM25 score) pairs for chunks holding any of `terms`, best first
        (SQLite FTS5: exact, but slow on large indexes; `index.keywords` is the fast path)."""
        query = " OR ".join(f'"{t}"' for t in dict.fromkeys(_clean_term(t) for t in terms) if t)
        if not query:
            return []
        sql = "SELECT rowid, -bm25(keywords) FROM keywords WHERE keywords MATCH ?"
        params: list[Any] = [query]
        if allowed is not None:
            sql += " AND rowid IN (SELECT value FROM json_each(?))"
            params.append(json.dumps([int(i) for i in allowed]))
        sql += " ORDER BY bm25(keywords) LIMIT ?"
        params.append(int(k))
        return [(int(r), float(score)) for r, score in self._conn.execute(sql, params)]

    def size_bytes(self) -> int:
        """Size of the database and its WAL on disk."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(f"{self.path}{suffix}")
        return total


def _clean_term(term: str) -> str:
    """A term safe inside an FTS5 string literal (our analyzer makes only letters/digits)."""
    return "".join(ch for ch in term if ch.isalnum())


def _terms_text(terms: Sequence[str]) -> str:
    return " ".join(t for t in (_clean_term(t) for t in terms) if t)


def date_bound(value: str, *, end: bool) -> str:
    """A (possibly partial) ISO date as the first (or, with `end`, last) day it covers.

    "2022" -> "2022-01-01" / "2022-12-31"; "2022-02" -> "2022-02-01" / "2022-02-28".
    """
    match = _DATE_RE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise IndexUsageError(
            f"date filter {value!r} is not an ISO date; use YYYY, YYYY-MM or YYYY-MM-DD "
            f"(e.g. 2022-06)"
        )
    year, month, day = match.group(1), match.group(2), match.group(3)
    if month is not None and not 1 <= int(month) <= 12:
        raise IndexUsageError(f"date filter {value!r} has month {month}; months run 01..12")
    if day is not None:
        last = calendar.monthrange(int(year), int(month))[1]
        if not 1 <= int(day) <= last:
            raise IndexUsageError(
                f"date filter {value!r} has day {day}; that month has {last} days"
            )
        return f"{year}-{month}-{day}"
    if month is None:
        return f"{year}-12-31" if end else f"{year}-01-01"
    last = calendar.monthrange(int(year), int(month))[1]
    return f"{year}-{month}-{last:02d}" if end else f"{year}-{month}-01"


def _json_list(values: Iterable[str]) -> str:
    items = [values] if isinstance(values, str) else list(values)
    return json.dumps([str(v) for v in items])


def metadata_json(metadata: Mapping[str, Any], doc_id: str) -> str:
    """Document metadata as JSON; IndexUsageError naming the document if it is not serialisable."""
    try:
        return json.dumps(dict(metadata), ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise IndexUsageError(
            f"metadata of document {doc_id!r} is not JSON-serialisable ({exc}); use str, numbers, "
            f"bools, lists and dicts"
        ) from exc
