"""Numbered SQLite schema migrations for `chunks.sqlite`, applied on open (`PRAGMA user_version`).

Append new steps to `MIGRATIONS`; never edit a step that has shipped. Step N (1-based) moves the
schema from version N-1 to N, in one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence

from .errors import IndexMismatchError

logger = logging.getLogger(__name__)


def _add_column(table: str, column: str, declaration: str) -> Callable[[sqlite3.Connection], None]:
    """A step that adds a column unless it is there (SQLite has no ADD COLUMN IF NOT EXISTS)."""

    def step(conn: sqlite3.Connection) -> None:
        names = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in names:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    return step


def _signatures(conn: sqlite3.Connection) -> None:
    """Step 3: the signature column; existing chunks are marked for the background backfill."""
    _add_column("chunks", "signature", "BLOB")(conn)
    if conn.execute("SELECT 1 FROM chunks WHERE signature IS NULL LIMIT 1").fetchone():
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('signatures_pending', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        )


Step = Sequence[str] | Callable[[sqlite3.Connection], None]
"""SQL statements, or a function of the connection, run in the step's transaction."""

MIGRATIONS: tuple[Step, ...] = (
    # 1: the initial schema.
    (
        """CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        """CREATE TABLE documents (
            doc_id        TEXT PRIMARY KEY,
            source        TEXT NOT NULL,
            title         TEXT,
            date          TEXT,
            language      TEXT,
            url           TEXT,
            content_hash  TEXT NOT NULL,
            text          TEXT NOT NULL,
            metadata_json TEXT NOT NULL DEFAULT '{}',
            added_at      TEXT NOT NULL
        )""",
        """CREATE TABLE chunks (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            chunk_id TEXT NOT NULL UNIQUE,
            doc_id   TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            ordinal  INTEGER NOT NULL,
            start    INTEGER NOT NULL,
            "end"    INTEGER NOT NULL,
            page     INTEGER,
            text     TEXT NOT NULL
        )""",
        """CREATE TABLE vectors (
            chunk_row_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
            vector       BLOB NOT NULL
        )""",
        "CREATE INDEX documents_source ON documents(source)",
        "CREATE INDEX documents_date ON documents(date)",
        "CREATE INDEX chunks_doc_id ON chunks(doc_id)",
    ),
    # 2: keyword search and sentence vectors. Passages' analysed terms (made by the caller's
    # analyzer, recorded in meta 'keyword_analyzer'), keyed by chunk row id; each passage's
    # sentences (offsets into the document text) with their own vectors (float16), for
    # sentence-level reranking and quoting. Both written in the same transaction as the chunks.
    (
        """CREATE TABLE sentences (
            chunk_row_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
            ordinal      INTEGER NOT NULL,
            start        INTEGER NOT NULL,
            "end"        INTEGER NOT NULL,
            vector       BLOB,
            PRIMARY KEY (chunk_row_id, ordinal)
        ) WITHOUT ROWID""",
        """CREATE VIRTUAL TABLE keywords USING fts5(
            terms, tokenize = "unicode61 remove_diacritics 0"
        )""",
        """CREATE TRIGGER chunks_keywords_delete AFTER DELETE ON chunks BEGIN
            DELETE FROM keywords WHERE rowid = old.id;
        END""",
    ),
    # 3: near-duplicate signatures (index.signatures: MinHash of the chunk's word trigrams),
    # computed when a chunk is written. Chunks written before have NULL until the background
    # upkeep fills them in (meta 'signatures_pending'); searches compare those by their text.
    _signatures,
)

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database file."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def needs_migration(conn: sqlite3.Connection) -> bool:
    """True if `apply` would change the database (the caller should hold the write lock)."""
    return schema_version(conn) < SCHEMA_VERSION


def apply(conn: sqlite3.Connection) -> int:
    """Bring the schema up to `SCHEMA_VERSION`; return the number of steps applied.

    `conn` must be in autocommit mode (`isolation_level=None`); each step is its own transaction
    so a crash leaves the database at a whole version.
    """
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise IndexMismatchError(
            f"chunks.sqlite has schema version {current}, this version of newsrag reads up to "
            f"{SCHEMA_VERSION}; upgrade newsrag"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        _apply_step(conn, version)
    return SCHEMA_VERSION - current


def _apply_step(conn: sqlite3.Connection, version: int) -> None:
    logger.info("migrating index schema to version %d", version)
    conn.execute("BEGIN IMMEDIATE")
    try:
        step = MIGRATIONS[version - 1]
        if callable(step):
            step(conn)
        else:
            for statement in step:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(version),),
        )
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
