"""The FAISS file is derived from SQLite: when it is missing, damaged or stale it is rebuilt."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from index import DocumentRecord, Index, IndexSpec
from index.atomic import sha256_file

Doc = Callable[..., DocumentRecord]
Vec = Callable[[str], np.ndarray]


@pytest.fixture
def filled(new_index: Callable[[], Index], doc: Doc) -> Path:
    ix = new_index()
    ix.write([doc(f"d{i}", [f"Artikel {i} Absatz {j}" for j in range(3)]) for i in range(10)])
    ix.write(removals=["d0"])
    path = ix.path
    ix.close()
    return path


def assert_healthy(path: Path, spec: IndexSpec, vec: Vec) -> None:
    """Opens, finds a chunk by its own vector, and the files on disk agree with each other."""
    with Index.open(path, spec) as ix:
        row_id, score = ix.search(vec("Artikel 4 Absatz 2"), 1)[0][0]
        assert ix.chunks([row_id])[0].chunk_id == "d4#2"
        assert score == pytest.approx(1.0, abs=1e-5)
        assert len(ix.search(vec("x"), 100)[0]) == 27
        generation = ix.info()["generation"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["generation"] == generation
    assert manifest["checksums"]["vectors.faiss"] == sha256_file(path / "vectors.faiss")
    assert manifest["counts"] == {"documents": 9, "chunks": 27}


def test_healthy_open_does_not_rebuild(
    filled: Path, spec: IndexSpec, vec: Vec, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="index"):
        assert_healthy(filled, spec, vec)
    assert "rebuilding" not in caplog.text


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "empty"])
def test_damaged_faiss_file_is_rebuilt(
    filled: Path, spec: IndexSpec, vec: Vec, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    faiss_file = filled / "vectors.faiss"
    data = faiss_file.read_bytes()
    if damage == "delete":
        faiss_file.unlink()
    elif damage == "truncate":
        faiss_file.write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        faiss_file.write_bytes(bytes(reversed(data)))
    else:
        faiss_file.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="index"):
        assert_healthy(filled, spec, vec)
    assert "rebuilding" in caplog.text and "vectors.faiss" in caplog.text


def test_stale_manifest_generation_rebuilds(
    filled: Path, spec: IndexSpec, vec: Vec, caplog: pytest.LogCaptureFixture
) -> None:
    manifest_file = filled / "manifest.json"
    data = json.loads(manifest_file.read_text())
    data["generation"] -= 1
    manifest_file.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="index"):
        assert_healthy(filled, spec, vec)
    assert "generation 1 but chunks.sqlite at 2" in caplog.text


def test_faiss_file_of_an_older_generation_is_not_used(
    new_index: Callable[[], Index], doc: Doc, vec: Vec, spec: IndexSpec
) -> None:
    ix = new_index()
    ix.write([doc(f"d{i}", [f"Artikel {i} Absatz {j}" for j in range(3)]) for i in range(10)])
    old_faiss = (ix.path / "vectors.faiss").read_bytes()
    old_manifest = (ix.path / "manifest.json").read_text()
    ix.write(removals=["d0"])
    ix.close()
    # Put back the FAISS file and manifest from before the last commit, as a crash would.
    (ix.path / "vectors.faiss").write_bytes(old_faiss)
    (ix.path / "manifest.json").write_text(old_manifest)
    assert_healthy(ix.path, spec, vec)


def test_damaged_manifest_is_rewritten(filled: Path, spec: IndexSpec, vec: Vec) -> None:
    (filled / "manifest.json").write_text('{"format_version": 1, "embedder": ')
    assert_healthy(filled, spec, vec)


def test_leftover_temp_files_are_ignored_then_cleaned(
    filled: Path, spec: IndexSpec, vec: Vec, doc: Doc
) -> None:
    (filled / ".vectors.faiss.abc123.tmp").write_bytes(b"half a file")
    (filled / ".manifest.json.xyz.tmp").write_text("{")
    assert_healthy(filled, spec, vec)
    with Index.open(filled, spec) as ix:
        ix.write([doc("new", ["neu"])])
    assert not [p for p in filled.iterdir() if p.name.endswith(".tmp")]


def test_reader_rebuilds_in_memory_while_a_writer_holds_the_lock(
    filled: Path, spec: IndexSpec, vec: Vec
) -> None:
    import filelock

    (filled / "vectors.faiss").unlink()
    with filelock.FileLock(str(filled / "write.lock")):
        with Index.open(filled, spec) as ix:
            assert (
                ix.chunks([ix.search(vec("Artikel 4 Absatz 2"), 1)[0][0][0]])[0].chunk_id == "d4#2"
            )
        assert not (filled / "vectors.faiss").exists()  # left for the writer to rewrite
    assert_healthy(filled, spec, vec)
