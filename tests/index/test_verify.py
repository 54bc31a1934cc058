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

import pytest
from click.testing import CliRunner

from index import ChunkRecord, DocumentRecord, Index, IndexSpec
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


def corrupt_sqlite_page(path: Path) -> None:
    """Overwrite the page holding the passages table with garbage."""
    db = path / "chunks.sqlite"
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'chunks'").fetchone()
    conn.close()
    with open(db, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(bytes(range(256)) * (page_size // 256))


def test_corrupted_sqlite_page_is_reported_and_not_made_worse(copy: Path) -> None:
    corrupt_sqlite_page(copy)
    damaged = files(copy)
    report = verify(copy)
    assert kinds(report) == {SQLITE_DAMAGED}
    (problem,) = report.problems
    assert "chunks.sqlite is damaged" in problem.message
    assert "malformed" in problem.message
    assert not problem.repairable
    assert problem.repair.startswith("cannot repair it: chunks.sqlite is the only copy")
    assert "from a backup" in problem.repair
    assert f"`rag index SOURCES --index {copy}-new`" in problem.repair

    after = repair(copy, analyzer_id=ANALYZER, analyze=analyze)
    assert kinds(after) == {SQLITE_DAMAGED} and after.repaired == ()
    assert files(copy) == damaged  # nothing rebuilt from a store that cannot be trusted


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
    corrupt_sqlite_page(copy)
    result = CliRunner().invoke(main, ["verify", "--index", str(copy), "--repair"])
    assert result.exit_code == 1
    assert "[sqlite_damaged]" in result.output and "to do: cannot repair it" in result.output
