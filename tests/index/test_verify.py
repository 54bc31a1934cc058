"""`index.verify` and `rag verify`: copies of one small index, damaged on purpose, are found with
the right kind of problem, and `repair` restores a clean verify wherever that is possible."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from index import ChunkRecord, DocumentRecord, Index, IndexSpec, keywords
from index.ann import AnnOptions
from index.errors import IndexLockedError, IndexNotFoundError
from index.verify import (
    FAISS_MISSING,
    FAISS_STALE,
    KEYWORD_TERMS,
    MANIFEST_STALE,
    MANIFEST_UNREADABLE,
    ORPHAN_ROWS,
    PASSAGE_VECTOR,
    QUOTE_SPAN,
    SCHEMA_OUTDATED,
    SQLITE_DAMAGED,
    VerifyReport,
    repair,
    verify,
)
from rag.cli import main

from .conftest import fake_vector, make_doc

ANALYZER = "test-analyzer"
TEXTS = {
    "a": ["Die Bahn streicht Züge nach Sylt.", "Der Streik dauert bis Montag."],
    "b": ["Der Stadtrat baut eine Seilbahn.", "Sie soll 2027 fahren."],
    "c": ["Arminia verpflichtet einen Torwart.", "Er kommt aus Kiel."],
}


def terms(text: str) -> list[str]:
    return [w.lower().strip(".") for w in text.split()]


def analyze(rows: list[tuple[str, str | None]]) -> list[list[str]]:
    return [terms(text) for text, _ in rows]


def article(doc_id: str) -> DocumentRecord:
    """A document with keyword terms and one sentence (with its vector) per passage."""
    doc = make_doc(doc_id, TEXTS[doc_id], source=f"archive/{doc_id}.txt")
    chunks = tuple(
        ChunkRecord(
            chunk_id=c.chunk_id,
            ordinal=c.ordinal,
            start=c.start,
            end=c.end,
            text=c.text,
            vector=c.vector,
            terms=terms(c.text),
            sentences=((c.start, c.end),),
            sentence_vectors=fake_vector("s:" + c.text)[None, :],
        )
        for c in doc.chunks
    )
    return DocumentRecord(**{**doc.__dict__, "chunks": chunks})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A clean index at generation 2, and the vectors.faiss of its generation 1."""
    path = tmp_path_factory.mktemp("verify") / "idx"
    spec = IndexSpec(embedder_id="fake-hash-16", dim=16)
    with Index.open(path, spec, create=True) as ix:
        ix.write([article("a"), article("b")])
        old_faiss = (path / "vectors.faiss").read_bytes()
        ix.write([article("c")])
        ix.set_keyword_analyzer(ANALYZER)
    return path, old_faiss


@pytest.fixture
def copy(built: tuple[Path, bytes], tmp_path: Path) -> Path:
    """A fresh copy of the clean index, to damage."""
    target = tmp_path / "copy"
    shutil.copytree(built[0], target)
    return target


def files(path: Path) -> dict[str, tuple[str, int]]:
    """Every file of the directory (and of the keyword index's folder) but the lock:
    relative name -> (sha256, mtime in ns)."""
    return {
        p.relative_to(path).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "write.lock"
    }


def sql(path: Path, *statements: str) -> None:
    """Run statements on chunks.sqlite directly, behind the index's back."""
    conn = sqlite3.connect(path / "chunks.sqlite", isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def kinds(report: VerifyReport) -> set[str]:
    return {p.kind for p in report.problems}


def assert_healthy(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Verifies clean; opens without rebuilding anything; every passage is found by its vector."""
    report = verify(path)
    assert report.ok, report.problems
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="index"), Index.open(path) as ix:
        for doc_id, texts in TEXTS.items():
            for ordinal, text in enumerate(texts):
                row_id, score = ix.search(fake_vector(text), 1)[0][0]
                assert ix.chunks([row_id])[0].chunk_id == f"{doc_id}#{ordinal}"
                assert score == pytest.approx(1.0, abs=1e-5)
        assert [r for r, _ in ix.keyword_search([["seilbahn"]], 5)[0]]
    assert "rebuilding" not in caplog.text


# -- a clean index ----------------------------------------------------------------------------


def test_clean_index_verifies_clean_and_nothing_changes(copy: Path) -> None:
    before = files(copy)
    report = verify(copy)
    assert report.ok and report.problems == () and report.repaired == ()
    assert files(copy) == before  # not even SQLite's -wal/-shm side files appear


def test_verify_beside_a_process_that_has_the_index_open(copy: Path) -> None:
    """A server keeps SQLite's write-ahead log open: verify reads through it, read-only."""
    with Index.open(copy) as ix:
        assert ix.search(fake_vector(TEXTS["a"][0]), 1)[0]
        assert (copy / "chunks.sqlite-wal").exists()
        before = files(copy)
        assert verify(copy).ok
        assert {k: v for k, v in files(copy).items() if not k.endswith("-shm")} == {
            k: v for k, v in before.items() if not k.endswith("-shm")
        }


def test_repair_of_a_clean_index_changes_nothing(copy: Path) -> None:
    before = files(copy)
    report = repair(copy, analyzer_id=ANALYZER, analyze=analyze)
    assert report.ok and report.repaired == ()
    assert files(copy) == before


# -- the five damages of the issue ------------------------------------------------------------


def delete_faiss(path: Path, old_faiss: bytes) -> None:
    (path / "vectors.faiss").unlink()


def faiss_of_generation_1(path: Path, old_faiss: bytes) -> None:
    (path / "vectors.faiss").write_bytes(old_faiss)


def remove_vector_row(path: Path, old_faiss: bytes) -> None:
    sql(
        path,
        "DELETE FROM vectors WHERE chunk_row_id = (SELECT id FROM chunks WHERE chunk_id = 'b#1')",
    )


def truncate_manifest(path: Path, old_faiss: bytes) -> None:
    data = (path / "manifest.json").read_bytes()
    (path / "manifest.json").write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("damage", "kind", "words"),
    [
        (delete_faiss, FAISS_MISSING, "vectors.faiss is missing"),
        (faiss_of_generation_1, FAISS_STALE, "lacks 2 stored passage(s)"),
        (remove_vector_row, PASSAGE_VECTOR, "passage 'b#1' of document 'b'"),
        (truncate_manifest, MANIFEST_UNREADABLE, "manifest.json is not valid JSON"),
    ],
)
def test_damage_is_found_and_repaired(
    copy: Path,
    built: tuple[Path, bytes],
    damage: Callable[[Path, bytes], None],
    kind: str,
    words: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    damage(copy, built[1])
    damaged = files(copy)
    report = verify(copy)
    assert kinds(report) == {kind}
    (problem,) = report.problems
    assert words in problem.message
    assert problem.repairable
    assert files(copy) == damaged  # verify did not heal it behind our back

    repaired = repair(copy, analyzer_id=ANALYZER, analyze=analyze)
    assert repaired.ok, repaired.problems
    assert repaired.repaired
    assert_healthy(copy, caplog)


def test_faiss_of_another_generation_says_so(copy: Path, built: tuple[Path, bytes]) -> None:
    faiss_of_generation_1(copy, built[1])
    (problem,) = verify(copy).problems
    assert "generation 2" in problem.message
    assert "not the file manifest.json records" in problem.message
    assert problem.repair == "rebuild vectors.faiss from the vectors in chunks.sqlite"


def test_manifest_that_disagrees_with_the_store_is_written_again(
    copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = json.loads((copy / "manifest.json").read_text())
    data["counts"]["chunks"] = 5
    data["embedder"]["dim"] = 8
    (copy / "manifest.json").write_text(json.dumps(data))
    (problem,) = verify(copy).problems
    assert problem.kind == MANIFEST_STALE
    assert "dimension: manifest 8, chunks.sqlite 16" in problem.message
    assert "passages: manifest 5, chunks.sqlite 6" in problem.message
    assert repair(copy).repaired == ("wrote manifest.json (generation 2, 6 passages)",)
    assert_healthy(copy, caplog)


def test_removed_vector_comes_back_from_the_faiss_file(copy: Path) -> None:
    remove_vector_row(copy, b"")
    (problem,) = verify(copy).problems
    assert "has no vector" in problem.message and problem.documents == ("b",)
    assert "take the 1 vector(s) back from vectors.faiss" in problem.repair
    report = repair(copy)
    assert report.ok
    assert (
        report.repaired[0] == "took 1 passage vector(s) back from vectors.faiss into chunks.sqlite"
    )
    with Index.open(copy) as ix:
        row_id = next(c.row_id for c in ix.chunks(list(ix.chunk_row_ids())) if c.chunk_id == "b#1")
        stored = ix.evidence([row_id])[row_id].vector
    assert stored.tobytes() == fake_vector(TEXTS["b"][1]).tobytes()


def smash_page(db: Path, page: int) -> None:
    """Overwrite one page of an SQLite file with garbage (what a bad disk block leaves)."""
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(db, "r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(bytes(range(256)) * (page_size // 256))


def corrupt_sqlite_page(path: Path) -> None:
    """Overwrite the page holding the passages table with garbage (in the small index the
    table's only page: every passage is lost)."""
    conn = sqlite3.connect(path / "chunks.sqlite")
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'chunks'").fetchone()
    conn.close()
    smash_page(path / "chunks.sqlite", root)


def destroy_header(path: Path) -> None:
    """Overwrite the first page: SQLite's header and its list of tables."""
    smash_page(path / "chunks.sqlite", 1)


def test_corrupted_sqlite_page_is_reported_and_salvaged(
    copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corrupt_sqlite_page(copy)
    damaged = (copy / "chunks.sqlite").read_bytes()
    before = files(copy)
    report = verify(copy)
    assert kinds(report) == {SQLITE_DAMAGED}
    (problem,) = report.problems
    assert "chunks.sqlite is damaged" in problem.message
    assert "malformed" in problem.message
    assert problem.repairable
    assert problem.repair.startswith("salvage it: copy every row SQLite can still read")
    assert files(copy) == before

    after = repair(copy, analyzer_id=ANALYZER, analyze=analyze)
    assert after.ok, after.problems
    salvage = after.salvage
    assert salvage is not None
    # The passages table had one page: every passage is lost, so is every document (whole).
    assert (salvage.documents, salvage.passages, salvage.lost_passages) == (0, 0, 6)
    assert [(d.doc_id, d.title, d.source) for d in salvage.lost_documents] == [
        (d, f"Title {d}", f"archive/{d}.txt") for d in "abc"
    ]
    assert salvage.restore == (
        f"rag index archive/a.txt archive/b.txt archive/c.txt --index {copy}"
    )
    assert salvage.damaged_copy is not None and salvage.damaged_copy.parent == copy
    assert salvage.damaged_copy.read_bytes() == damaged  # kept as it was
    note = json.loads(
        salvage.damaged_copy.with_name(salvage.damaged_copy.name + ".json").read_text()
    )
    assert note == salvage.to_json()
    assert verify(copy).ok

    with Index.open(copy) as ix:  # what the restore command does
        assert ix.info()["counts"] == {"documents": 0, "chunks": 0}
        result = ix.write([article(d) for d in "abc"])
        assert (result.added, result.unchanged, result.chunks_added) == (3, 0, 6)
    assert_healthy(copy, caplog)


def test_unreadable_header_is_reported_and_nothing_changes(copy: Path) -> None:
    destroy_header(copy)
    damaged = files(copy)
    (problem,) = verify(copy).problems
    assert problem.kind == SQLITE_DAMAGED and not problem.repairable
    assert problem.repair.startswith(
        "cannot repair it: SQLite cannot read even its first page, which lists the tables"
    )
    assert "so not a row can be salvaged" in problem.repair
    assert "from a backup" in problem.repair
    assert f"`rag index SOURCES --index {copy}-new`" in problem.repair

    after = repair(copy, analyzer_id=ANALYZER, analyze=analyze)
    assert kinds(after) == {SQLITE_DAMAGED} and after.repaired == () and after.salvage is None
    assert files(copy) == damaged  # nothing rebuilt from a store that cannot be read, nothing lost


# -- the other checks -------------------------------------------------------------------------


def test_vector_lost_everywhere_names_the_commands_that_embed_it_again(copy: Path) -> None:
    remove_vector_row(copy, b"")
    delete_faiss(copy, b"")
    report = repair(copy)
    assert report.repaired[0] == "rebuilt vectors.faiss from chunks.sqlite (5 vectors)"
    (problem,) = report.problems
    assert problem.kind == PASSAGE_VECTOR and not problem.repairable
    assert f"`rag remove --doc b --index {copy}`" in problem.repair
    assert f"`rag index archive/b.txt --index {copy}`" in problem.repair
    with Index.open(copy) as ix:  # what those commands do
        ix.write(removals=["b"])
        ix.write([article("b")])
    assert verify(copy).ok


def test_missing_keyword_terms_are_analysed_again(
    copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sql(copy, "DELETE FROM keywords WHERE rowid = (SELECT id FROM chunks WHERE chunk_id = 'a#0')")
    (problem,) = verify(copy).problems
    assert problem.kind == KEYWORD_TERMS and problem.documents == ("a",)
    assert repair(copy).problems[0].kind == KEYWORD_TERMS  # no analyzer: left as it is
    report = repair(copy, analyzer_id=ANALYZER, analyze=analyze)
    assert report.ok
    assert "analysed 6 passage(s) for keyword search (test-analyzer)" in report.repaired
    assert_healthy(copy, caplog)


def test_orphaned_rows_are_deleted(copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    sql(
        copy,
        "PRAGMA foreign_keys = OFF",
        "INSERT INTO vectors(chunk_row_id, vector) VALUES (999, zeroblob(64))",
        'INSERT INTO sentences(chunk_row_id, ordinal, start, "end") VALUES (999, 0, 0, 1)',
    )
    (problem,) = verify(copy).problems
    assert problem.kind == ORPHAN_ROWS
    assert "1 vector(s) without a passage, 1 sentence(s) without a passage" in problem.message
    assert repair(copy).ok
    assert_healthy(copy, caplog)


def test_passage_that_no_longer_matches_its_document_cannot_be_quoted(copy: Path) -> None:
    sql(
        copy,
        "UPDATE chunks SET text = 'Der Streik dauert bis Freitag.' WHERE chunk_id = 'a#1'",
        'UPDATE sentences SET "end" = 9999 WHERE chunk_row_id = '
        "(SELECT id FROM chunks WHERE chunk_id = 'b#0')",
    )
    (problem,) = verify(copy).problems
    assert problem.kind == QUOTE_SPAN and not problem.repairable
    assert problem.documents == ("a", "b")
    assert "passage 'a#1' of document 'a' (archive/a.txt) has text that differs" in problem.message
    assert "has a sentence at 0..9999, outside the passage (0, 32)" in problem.message
    assert "`rag remove --doc a --doc b --index" in problem.repair
    assert kinds(repair(copy)) == {QUOTE_SPAN}


def test_outdated_schema_is_migrated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An index written before keyword search existed (schema 1)."""
    from index import migrations

    path = tmp_path / "old"
    with Index.open(path, IndexSpec(embedder_id="fake-hash-16", dim=16), create=True):
        pass
    sql(
        path,
        "DROP TRIGGER chunks_keywords_delete",
        "DROP TABLE keywords",
        "DROP TABLE sentences",
        "PRAGMA user_version = 1",
    )
    (problem,) = verify(path).problems
    assert problem.kind == SCHEMA_OUTDATED and problem.repairable
    report = repair(path)
    assert report.ok, report.problems
    assert report.repaired == (
        f"migrated chunks.sqlite from schema version 1 to {migrations.SCHEMA_VERSION}",
    )


# -- locking, errors --------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def locked(copy: Path) -> Iterator[Path]:
    """`copy`, while another process holds its write lock (a write in progress)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(copy / "write.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield copy
    finally:
        proc.kill()
        proc.wait()


def test_verify_waits_for_a_writer_rather_than_report_its_half_written_files(
    locked: Path,
) -> None:
    with pytest.raises(IndexLockedError, match="Another process is writing"):
        verify(locked, lock_timeout=0.2)
    with pytest.raises(IndexLockedError):
        repair(locked, lock_timeout=0.2)


def test_no_index_there(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="No index at"):
        verify(tmp_path / "nothing")


# -- rag verify -------------------------------------------------------------------------------


def test_cli_exit_codes_and_output(copy: Path) -> None:
    runner = CliRunner()
    clean = runner.invoke(main, ["verify", "--index", str(copy)])
    assert clean.exit_code == 0 and clean.output.strip() == f"{copy}: clean"

    delete_faiss(copy, b"")
    found = runner.invoke(main, ["verify", "--index", str(copy)])
    assert found.exit_code == 1
    assert "[faiss_missing]" in found.output
    assert "--repair: rebuild vectors.faiss from the vectors in chunks.sqlite" in found.output

    as_json = runner.invoke(main, ["verify", "--index", str(copy), "--json"])
    data = json.loads(as_json.output)
    assert as_json.exit_code == 1 and data["ok"] is False
    assert data["problems"][0]["kind"] == FAISS_MISSING

    fixed = runner.invoke(main, ["verify", "--index", str(copy), "--repair"])
    assert fixed.exit_code == 0, fixed.output
    assert "repaired: rebuilt vectors.faiss from chunks.sqlite (6 vectors)" in fixed.output
    assert fixed.output.strip().endswith(f"{copy}: clean")


def test_cli_unrepairable_damage_exits_1(copy: Path) -> None:
    destroy_header(copy)
    result = CliRunner().invoke(main, ["verify", "--index", str(copy), "--repair"])
    assert result.exit_code == 1
    assert "[sqlite_damaged]" in result.output and "to do: cannot repair it" in result.output


def test_cli_salvage_lists_what_was_lost_and_how_to_restore_it(copy: Path) -> None:
    corrupt_sqlite_page(copy)
    runner = CliRunner()
    found = runner.invoke(main, ["verify", "--index", str(copy)])
    assert found.exit_code == 1 and "--repair: salvage it" in found.output

    fixed = runner.invoke(main, ["verify", "--index", str(copy), "--repair"])
    assert fixed.exit_code == 0, fixed.output
    assert (
        "repaired: salvaged chunks.sqlite into a new database: kept 0 document(s) and 0 "
        "passage(s), lost 3 document(s) and 6 passage(s); the damaged file is kept as "
        "chunks.sqlite.damaged-" in fixed.output
    )
    assert "lost: 3 document(s), 6 passage(s):\n  a 'Title a' (archive/a.txt)\n" in fixed.output
    assert (
        f"\n  rag index archive/a.txt archive/b.txt archive/c.txt --index {copy}\n" in fixed.output
    )
    assert fixed.output.strip().endswith(f"{copy}: clean")

    data = json.loads(runner.invoke(main, ["verify", "--index", str(copy), "--json"]).output)
    assert data == {"path": str(copy), "ok": True, "problems": [], "repaired": [], "salvage": None}


def test_json_report_of_a_salvage(copy: Path) -> None:
    corrupt_sqlite_page(copy)
    result = CliRunner().invoke(main, ["verify", "--index", str(copy), "--repair", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True and data["problems"] == []
    salvage = data["salvage"]
    assert salvage["damaged_copy"].startswith(f"{copy}/chunks.sqlite.damaged-")
    assert salvage["kept"] == {"documents": 0, "passages": 0}
    assert salvage["lost"]["passages"] == 6 and salvage["lost"]["unnamed_documents"] == 0
    assert salvage["lost"]["documents"][1] == {
        "doc_id": "b",
        "title": "Title b",
        "source": "archive/b.txt",
    }
    assert salvage["vectors_from_faiss"] == 0
    assert salvage["unreadable"] == [{"table": "chunks", "first": None, "last": None}]
    assert salvage["restore"].endswith(f"--index {copy}")


# -- salvaging a larger index, page by page ---------------------------------------------------

WORDS = "Bahn Stadtrat Seilbahn Streik Montag Torwart Kiel Arminia Sylt Züge fahren bauen".split()
N_DOCS, N_PASSAGES = 30, 4


def long_passage(i: int, j: int) -> str:
    words = [WORDS[(i * 7 + j * 3 + k) % len(WORDS)] for k in range(80)]
    return f"Artikel{i} Absatz{j}: " + " ".join(words) + "."


def long_article(i: int) -> DocumentRecord:
    """A document of four long passages, each with three sentences and keyword terms: enough
    rows for every table to span several pages."""
    texts = [long_passage(i, j) for j in range(N_PASSAGES)]
    doc = make_doc(f"doc{i:02d}", texts, source=f"archive/doc{i:02d}.txt")
    chunks = []
    for c in doc.chunks:
        third = (c.end - c.start) // 3
        cuts = [c.start, c.start + third, c.start + 2 * third, c.end]
        chunks.append(
            ChunkRecord(
                chunk_id=c.chunk_id,
                ordinal=c.ordinal,
                start=c.start,
                end=c.end,
                text=c.text,
                vector=c.vector,
                terms=terms(c.text),
                sentences=tuple(zip(cuts, cuts[1:])),
                sentence_vectors=np.stack([fake_vector(f"s{n}:{c.text}") for n in range(3)]),
            )
        )
    return DocumentRecord(**{**doc.__dict__, "chunks": tuple(chunks)})


GRAPH = AnnOptions(threshold=10, ef_search=64, m=16)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean index of 30 documents (120 passages), written in three writes, with its
    approximate graph and keyword index built."""
    path = tmp_path_factory.mktemp("salvage") / "idx"
    with Index.open(path, IndexSpec(embedder_id="fake-hash-16", dim=16), create=True) as ix:
        for start in range(0, N_DOCS, 10):
            ix.write([long_article(i) for i in range(start, start + 10)])
        ix.set_keyword_analyzer(ANALYZER)
    with Index.open(path, ann=GRAPH) as ix:
        assert ix.settle(timeout=60)
    assert (path / "ann.json").exists()
    return path


@pytest.fixture
def large_copy(large: Path, tmp_path: Path) -> Path:
    target = tmp_path / "large"
    shutil.copytree(large, target)
    return target


def read_page(db: Path, page: int) -> tuple[bytes, int]:
    """One page of an SQLite file, and where its b-tree header starts (after the file's
    100-byte header on page 1)."""
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(db, "rb") as f:
        f.seek((page - 1) * page_size)
        data = f.read(page_size)
    return data, 100 if page == 1 else 0


def pages_of(db: Path, name: str) -> list[int]:
    """Leaf pages of a table or index b-tree, in key order (walked from its root page, as
    SQLite's file format, section 1.6, lays it out)."""
    conn = sqlite3.connect(db)
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    conn.close()
    leaves: list[int] = []
    pending = [root]
    while pending:
        page = pending.pop()
        data, h = read_page(db, page)
        if data[h] in (0x0A, 0x0D):  # index or table leaf
            leaves.append(page)
            continue
        assert data[h] in (0x02, 0x05), f"page {page} is not a b-tree page"
        cells = int.from_bytes(data[h + 3 : h + 5], "big")
        pointers = (
            int.from_bytes(data[h + 12 + 2 * n : h + 14 + 2 * n], "big") for n in range(cells)
        )
        children = [int.from_bytes(data[at : at + 4], "big") for at in pointers]
        children.append(int.from_bytes(data[h + 8 : h + 12], "big"))  # the right-most child
        pending.extend(reversed(children))
    return leaves


def rowids_on(db: Path, page: int) -> list[int]:
    """The row ids a leaf page of a table b-tree holds."""
    data, h = read_page(db, page)
    assert data[h] == 0x0D, "not a table leaf page"
    cells = int.from_bytes(data[h + 3 : h + 5], "big")
    ids = []
    for n in range(cells):
        pos = int.from_bytes(data[h + 8 + 2 * n : h + 10 + 2 * n], "big")
        _, pos = varint(data, pos)  # the payload's size
        ids.append(varint(data, pos)[0])
    return ids


def varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        byte = data[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return (value << 8) | data[pos + 8], pos + 9


def query(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path / "chunks.sqlite")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def passages_by_document(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """doc id -> its passages (chunk id, offsets, text, vector), as stored."""
    found: dict[str, list[tuple[object, ...]]] = {}
    for doc_id, *rest in query(
        path,
        'SELECT c.doc_id, c.chunk_id, c.start, c."end", c.text, v.vector FROM chunks c '
        "JOIN vectors v ON v.chunk_row_id = c.id ORDER BY c.id",
    ):
        found.setdefault(str(doc_id), []).append(tuple(rest))
    return found


def damage_middle_page(path: Path, name: str) -> list[int]:
    """Smash the middle leaf page of a table or index; the row ids it held (for tables)."""
    db = path / "chunks.sqlite"
    leaves = pages_of(db, name)
    table = name in ("chunks", "documents", "vectors", "sentences", "keywords_content")
    assert len(leaves) >= (2 if table else 1), f"{name} has {len(leaves)} leaf pages"
    page = leaves[len(leaves) // 2]
    held = rowids_on(db, page) if name in ("chunks", "documents", "vectors") else []
    smash_page(db, page)
    return held


def salvage_and_check(path: Path) -> VerifyReport:
    """Damaged -> found -> repaired (salvaged) -> clean, the damaged file kept as it was."""
    damaged = (path / "chunks.sqlite").read_bytes()
    (problem,) = verify(path).problems
    assert problem.kind == SQLITE_DAMAGED and problem.repairable
    report = repair(path, analyzer_id=ANALYZER, analyze=analyze)
    assert report.ok, report.problems
    assert report.salvage is not None and report.salvage.damaged_copy is not None
    assert report.salvage.damaged_copy.read_bytes() == damaged
    assert verify(path).ok
    assert repair(path, analyzer_id=ANALYZER, analyze=analyze).repaired == ()
    return report


def check_kept_whole(path: Path, original: dict[str, list[tuple[object, ...]]]) -> set[str]:
    """Every document is stored exactly as before or not at all; returns the ones not."""
    now = passages_by_document(path)
    for doc_id, passages in now.items():
        assert passages == original[doc_id], doc_id
    return set(original) - set(now)


def reindex(path: Path, lost: set[str]) -> None:
    """What the restore command does: every source again; only the lost documents are new."""
    with Index.open(path) as ix:
        result = ix.write([long_article(i) for i in range(N_DOCS)])
        assert (result.added, result.updated, result.unchanged) == (
            len(lost),
            0,
            N_DOCS - len(lost),
        )
        assert result.chunks_added == N_PASSAGES * len(lost)
        assert ix.info()["counts"] == {"documents": N_DOCS, "chunks": N_DOCS * N_PASSAGES}
    assert verify(path).ok


@pytest.mark.parametrize("table", ["chunks", "documents"])
def test_damaged_page_of_a_table_costs_exactly_its_documents(large_copy: Path, table: str) -> None:
    original = passages_by_document(large_copy)
    doc_of_row = dict(
        query(large_copy, "SELECT id, doc_id FROM chunks")
        if table == "chunks"
        else query(large_copy, "SELECT rowid, doc_id FROM documents")
    )
    held = damage_middle_page(large_copy, table)
    expected = {str(doc_of_row[r]) for r in held}
    assert 0 < len(expected) < N_DOCS

    salvage = salvage_and_check(large_copy).salvage
    assert salvage is not None
    lost = check_kept_whole(large_copy, original)
    assert lost == expected
    assert [d.doc_id for d in salvage.lost_documents] == sorted(expected)
    for doc in salvage.lost_documents:
        assert doc.source == f"archive/{doc.doc_id}.txt"  # for a lost row: from the source index
        assert doc.title == (f"Title {doc.doc_id}" if table == "chunks" else None)
    assert salvage.documents == N_DOCS - len(expected)
    assert salvage.passages == N_PASSAGES * salvage.documents
    assert salvage.lost_passages == N_PASSAGES * len(expected)
    assert salvage.unnamed_documents == 0 and salvage.row_ids_certain
    # The bisection finds the damaged page's rows exactly, no more.
    assert [(u.table, u.first, u.last) for u in salvage.unreadable] == [
        (table, min(held), max(held))
    ]
    sources = " ".join(f"archive/{d}.txt" for d in sorted(expected))
    assert salvage.restore == f"rag index {sources} --index {large_copy}"
    reindex(large_copy, lost)


def test_damaged_sentences_cost_whole_documents(large_copy: Path) -> None:
    original = passages_by_document(large_copy)
    damage_middle_page(large_copy, "sentences")
    salvage = salvage_and_check(large_copy).salvage
    assert salvage is not None
    lost = check_kept_whole(large_copy, original)
    assert lost and {d.doc_id for d in salvage.lost_documents} == lost
    kept_sentences = query(
        large_copy, "SELECT count(*) FROM sentences s JOIN chunks c ON c.id = s.chunk_row_id"
    )[0][0]
    assert kept_sentences == 3 * N_PASSAGES * (N_DOCS - len(lost))  # no passage lacks one
    reindex(large_copy, lost)


@pytest.mark.parametrize(
    "name", ["vectors", "chunks_doc_id", "sqlite_autoindex_chunks_1", "keywords_content"]
)
def test_damage_that_loses_nothing(large_copy: Path, name: str) -> None:
    """A vector is also in vectors.faiss, an index b-tree is rebuilt from its table, keyword
    terms are analysed again from the passages: nothing is lost, nothing needs re-indexing."""
    original = passages_by_document(large_copy)
    held = damage_middle_page(large_copy, name)
    report = salvage_and_check(large_copy)
    salvage = report.salvage
    assert salvage is not None
    assert not salvage.lost and salvage.restore is None
    assert salvage.vectors_from_faiss == len(held)  # only the vectors page held any
    assert check_kept_whole(large_copy, original) == set()
    if name == "keywords_content":
        assert f"analysed {N_DOCS * N_PASSAGES} passage(s) for keyword search" in " ".join(
            report.repaired
        )
    reindex(large_copy, set())


def test_vectors_lost_everywhere_cost_their_documents(large_copy: Path) -> None:
    original = passages_by_document(large_copy)
    doc_of_row = dict(query(large_copy, "SELECT id, doc_id FROM chunks"))
    held = damage_middle_page(large_copy, "vectors")
    (large_copy / "vectors.faiss").unlink()
    salvage = salvage_and_check(large_copy).salvage
    assert salvage is not None and salvage.vectors_from_faiss == 0
    lost = check_kept_whole(large_copy, original)
    assert lost == {str(doc_of_row[r]) for r in held}
    reindex(large_copy, lost)


def test_graph_and_keyword_index_follow_the_salvage(large_copy: Path) -> None:
    """The derived search structures treat the lost passages as removed: neither the graph
    nor the keyword index returns them, and both are used (no rebuild needed)."""
    doc_of_row = dict(query(large_copy, "SELECT id, doc_id FROM chunks"))
    lost = {str(doc_of_row[r]) for r in damage_middle_page(large_copy, "chunks")}
    salvage_and_check(large_copy)
    some_lost = int(sorted(lost)[0][3:])
    with Index.open(large_copy, ann=GRAPH) as ix:
        assert ix.settle(timeout=60)
        assert ix.info()["search"]["vectors"] == "approximate"
        live = set(ix.chunk_row_ids().tolist())
        for i in (some_lost, 0, N_DOCS - 1):
            hits = ix.search(fake_vector(long_passage(i, 1)), 5)[0]
            assert {r for r, _ in hits} <= live
            if f"doc{i:02d}" not in lost:
                assert ix.chunks([hits[0][0]])[0].chunk_id == f"doc{i:02d}#1"
        if keywords.available():
            assert ix.info()["search"]["keywords"] == "tantivy"
        assert ix.keyword_search([[f"artikel{some_lost}"]], 5) == [[]]
        found = ix.keyword_search([["artikel0"]], 5)[0]
        assert found and {r for r, _ in found} <= live
