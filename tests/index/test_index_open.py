"""Opening, creating and reopening an index; the checks and error messages on open."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from index import FORMAT_VERSION, DocumentRecord, Index, IndexSpec
from index.errors import IndexMismatchError, IndexNotFoundError, IndexStoreError, IndexUsageError


def test_create_then_reopen_keeps_documents(
    new_index: Callable[[], Index],
    index_dir: Path,
    spec: IndexSpec,
    doc: Callable[..., DocumentRecord],
) -> None:
    ix = new_index()
    ix.write([doc("a", ["Der Bundestag beschließt.", "Die Opposition protestiert."])])
    ix.close()
    names = {p.name for p in index_dir.iterdir()}
    assert {"chunks.sqlite", "vectors.faiss", "manifest.json", "write.lock"} <= names
    with Index.open(index_dir, spec) as again:
        assert [d["doc_id"] for d in again.documents()] == ["a"]
        assert again.spec == spec


def test_manifest_records_the_spec(new_index: Callable[[], Index], index_dir: Path) -> None:
    new_index().close()
    data = json.loads((index_dir / "manifest.json").read_text())
    assert data["format_version"] == FORMAT_VERSION
    assert data["embedder"] == {
        "id": "fake-hash-16",
        "dim": 16,
        "normalized": True,
        "prompts": {"query": "query: ", "passage": "passage: "},
    }
    assert data["chunking"] == {"max_tokens": 200, "overlap_sentences": 1}
    assert data["counts"] == {"documents": 0, "chunks": 0}
    assert set(data["checksums"]) == {"vectors.faiss"}
    assert data["generation"] == 0 and data["created_at"] and data["updated_at"]


def test_open_without_spec_takes_it_from_the_index(
    new_index: Callable[[], Index], index_dir: Path, spec: IndexSpec
) -> None:
    new_index().close()
    with Index.open(index_dir) as ix:
        assert ix.spec == spec
        assert ix.info()["spec"]["embedder"]["id"] == "fake-hash-16"


def test_create_in_an_existing_empty_directory(index_dir: Path, spec: IndexSpec) -> None:
    index_dir.mkdir()
    with Index.open(index_dir, spec, create=True) as ix:
        assert ix.info()["counts"] == {"documents": 0, "chunks": 0}


def test_create_needs_a_spec(index_dir: Path) -> None:
    with pytest.raises(IndexUsageError, match="needs an IndexSpec"):
        Index.open(index_dir, create=True)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"embedder_id": "intfloat/multilingual-e5-small"},
            (
                "embedding model: index has 'fake-hash-16', settings ask for "
                "'intfloat/multilingual-e5-small'"
            ),
        ),
        ({"dim": 384}, "dimension: index has 16, settings ask for 384"),
        ({"normalized": False}, "normalized: index has True, settings ask for False"),
        (
            {"prompts": {"query": "", "passage": ""}},
            (
                "prompts: index has {'passage': 'passage: ', 'query': 'query: '}, "
                "settings ask for {'passage': '', 'query': ''}"
            ),
        ),
        (
            {"chunking": {"max_tokens": 120, "overlap_sentences": 1}},
            (
                "chunking: index has {'max_tokens': 200, 'overlap_sentences': 1}, "
                "settings ask for {'max_tokens': 120, 'overlap_sentences': 1}"
            ),
        ),
    ],
)
def test_spec_mismatch_names_both_values_and_the_fix(
    new_index: Callable[[], Index],
    index_dir: Path,
    spec: IndexSpec,
    change: dict[str, Any],
    expected: str,
) -> None:
    new_index().close()
    with pytest.raises(IndexMismatchError) as err:
        Index.open(index_dir, dataclasses.replace(spec, **change))
    message = str(err.value)
    assert expected in message
    assert "re-index into a new directory (--index NEW_DIR)" in message
    assert "set the embedding model back to 'fake-hash-16'" in message


def test_spec_mismatch_lists_every_differing_field(
    new_index: Callable[[], Index], index_dir: Path, spec: IndexSpec
) -> None:
    new_index().close()
    other = dataclasses.replace(spec, embedder_id="e5", dim=384)
    with pytest.raises(IndexMismatchError) as err:
        Index.open(index_dir, other)
    assert "'fake-hash-16'" in str(err.value) and "'e5'" in str(err.value)
    assert "16" in str(err.value) and "384" in str(err.value)


def test_chunking_given_as_tuples_matches_lists(
    new_index: Callable[[], Index], index_dir: Path, spec: IndexSpec
) -> None:
    with_list = dataclasses.replace(spec, chunking={"seps": ["\n\n", "."]})
    Index.open(index_dir, with_list, create=True).close()
    Index.open(index_dir, dataclasses.replace(spec, chunking={"seps": ("\n\n", ".")})).close()


def test_newer_format_asks_to_upgrade(new_index: Callable[[], Index], index_dir: Path) -> None:
    new_index().close()
    path = index_dir / "manifest.json"
    data = json.loads(path.read_text())
    data["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(IndexMismatchError) as err:
        Index.open(index_dir)
    assert str(err.value) == (
        f"The index at {index_dir} was written by a newer version (format 2, this one reads 1); "
        f"upgrade newsrag"
    )


def test_newer_schema_asks_to_upgrade(new_index: Callable[[], Index], index_dir: Path) -> None:
    new_index().close()
    with sqlite3.connect(index_dir / "chunks.sqlite") as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(IndexMismatchError, match="schema version 99.*upgrade newsrag"):
        Index.open(index_dir)


def test_directory_that_is_not_an_index(tmp_path: Path, spec: IndexSpec) -> None:
    docs = tmp_path / "articles"
    docs.mkdir()
    (docs / "a.txt").write_text("Ein Artikel.")
    for create in (False, True):
        with pytest.raises(IndexUsageError, match=r"is not a newsrag index.*a\.txt") as err:
            Index.open(docs, spec, create=create)
        assert "new or empty directory" in str(err.value)
    assert [p.name for p in docs.iterdir()] == ["a.txt"]


def test_file_instead_of_directory(tmp_path: Path, spec: IndexSpec) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(IndexUsageError, match="is a file, not an index directory"):
        Index.open(tmp_path / "f", spec, create=True)


def test_missing_index_says_how_to_build_one(tmp_path: Path, spec: IndexSpec) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(IndexNotFoundError) as err:
        Index.open(missing, spec)
    assert str(err.value) == (
        f"No index at {missing}. Run `rag index PATH --index {missing}` first to build one."
    )
    assert isinstance(err.value, IndexStoreError)
    assert not missing.exists()


def test_empty_directory_without_create_is_missing(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag index PATH --index"):
        Index.open(tmp_path)


def test_missing_manifest_is_rewritten_from_sqlite(
    new_index: Callable[[], Index],
    index_dir: Path,
    spec: IndexSpec,
    doc: Callable[..., DocumentRecord],
) -> None:
    ix = new_index()
    ix.write([doc("a", ["eins", "zwei"])])
    ix.close()
    (index_dir / "manifest.json").unlink()
    with Index.open(index_dir, spec) as again:
        assert again.info()["counts"] == {"documents": 1, "chunks": 2}
    assert json.loads((index_dir / "manifest.json").read_text())["counts"]["chunks"] == 2


def test_closed_index_says_so(new_index: Callable[[], Index]) -> None:
    ix = new_index()
    ix.close()
    ix.close()
    with pytest.raises(IndexUsageError, match="is closed"):
        ix.documents()


def test_bad_spec_values() -> None:
    with pytest.raises(IndexUsageError, match="dim must be a positive integer"):
        IndexSpec("m", 0)
    with pytest.raises(IndexUsageError, match="embedder_id"):
        IndexSpec("", 8)
    with pytest.raises(IndexUsageError, match="JSON-serialisable"):
        IndexSpec("m", 8, chunking={"f": object()})
