"""Writing documents: unchanged / update / remove, counts, filters, and input checks."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from index import DocumentRecord, Index, IndexSpec, WriteResult
from index.errors import IndexMismatchError, IndexUsageError

Doc = Callable[..., DocumentRecord]
Vec = Callable[[str], np.ndarray]


def top_chunk(ix: Index, query: np.ndarray, **kwargs: object) -> str:
    row_id, _ = ix.search(query, 1, **kwargs)[0][0]  # type: ignore[arg-type]
    return ix.chunks([row_id])[0].chunk_id


def test_add_then_search_returns_the_chunk_with_metadata(
    new_index: Callable[[], Index], doc: Doc, vec: Vec
) -> None:
    ix = new_index()
    result = ix.write([doc("a", ["Wahl in Berlin", "Regen in Hamburg"]), doc("b", ["Börse"])])
    assert result == WriteResult(added=2, updated=0, removed=0, unchanged=0, chunks_added=3,
                                 chunks_removed=0)  # fmt: skip
    (row_id, score), *_ = ix.search(vec("Regen in Hamburg"), 2)[0]
    assert score == pytest.approx(1.0, abs=1e-5)
    (chunk,) = ix.chunks([row_id])
    assert (chunk.chunk_id, chunk.doc_id, chunk.text) == ("a#1", "a", "Regen in Hamburg")
    assert (chunk.start, chunk.end, chunk.ordinal, chunk.page) == (15, 31, 1, None)
    assert (chunk.source, chunk.title, chunk.date, chunk.language, chunk.url) == (
        "archive/a.txt",
        "Title a",
        "2022-06-15",
        "de",
        "https://example.org/a",
    )
    assert chunk.row_id == row_id


def test_unchanged_document_does_no_work(
    new_index: Callable[[], Index], index_dir: Path, doc: Doc
) -> None:
    ix = new_index()
    ix.write([doc("a", ["eins", "zwei"]), doc("b", ["drei"])])
    before = ix.info()
    faiss_mtime = (index_dir / "vectors.faiss").stat().st_mtime_ns
    result = ix.write([doc("a", ["eins", "zwei"]), doc("b", ["drei"])])
    assert result == WriteResult(added=0, updated=0, removed=0, unchanged=2, chunks_added=0,
                                 chunks_removed=0)  # fmt: skip
    after = ix.info()
    assert after["counts"] == before["counts"] == {"documents": 2, "chunks": 3}
    assert after["generation"] == before["generation"]
    assert (index_dir / "vectors.faiss").stat().st_mtime_ns == faiss_mtime


def test_update_replaces_the_chunks(new_index: Callable[[], Index], doc: Doc, vec: Vec) -> None:
    ix = new_index()
    ix.write([doc("a", ["alt eins", "alt zwei", "alt drei"], source="a.txt"),
              doc("b", ["bleibt"], source="b.txt")])  # fmt: skip
    old_rows = ix.chunk_row_ids(sources=["a.txt"])
    result = ix.write([doc("a", ["neu eins"], source="a.txt", version="v2"),
                       doc("b", ["bleibt"], source="b.txt")])  # fmt: skip
    assert result == WriteResult(added=0, updated=1, removed=0, unchanged=1, chunks_added=1,
                                 chunks_removed=3)  # fmt: skip
    assert top_chunk(ix, vec("neu eins")) == "a#0"
    texts = {c.text for c in ix.chunks([r for r, _ in ix.search(vec("alt zwei"), 10)[0]])}
    assert texts == {"neu eins", "bleibt"}
    assert ix.document("a")["n_chunks"] == 1  # type: ignore[index]
    assert ix.chunks(old_rows.tolist()) == []
    # Row ids are never reused, so a stale id can never name a different chunk.
    assert ix.chunk_row_ids(sources=["a.txt"]).min() > old_rows.max()


def test_remove(new_index: Callable[[], Index], doc: Doc, vec: Vec) -> None:
    ix = new_index()
    ix.write([doc("a", ["eins", "zwei"]), doc("b", ["drei"]), doc("c", ["vier"])])
    result = ix.write(removals=["a", "unknown", "c"])
    assert result == WriteResult(added=0, updated=0, removed=2, unchanged=0, chunks_added=0,
                                 chunks_removed=3)  # fmt: skip
    assert [d["doc_id"] for d in ix.documents()] == ["b"]
    assert ix.document("a") is None
    hits = ix.search(vec("eins"), 10)[0]
    assert [c.doc_id for c in ix.chunks([r for r, _ in hits])] == ["b"]
    assert ix.info()["counts"] == {"documents": 1, "chunks": 1}
    assert ix.write(removals=["unknown"]) == WriteResult()


def test_counts_in_info_and_manifest(
    new_index: Callable[[], Index], index_dir: Path, doc: Doc
) -> None:
    ix = new_index()
    ix.write([doc(f"d{i}", [f"text {i} {j}" for j in range(i + 1)]) for i in range(4)])
    info = ix.info()
    assert info["counts"] == {"documents": 4, "chunks": 10}
    assert info["generation"] == 1
    assert info["path"] == str(index_dir) and info["format_version"] == 1
    assert info["size_bytes"] > 0 and info["updated_at"]
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["counts"] == {"documents": 4, "chunks": 10}
    assert manifest["generation"] == 1


def test_documents_and_document(new_index: Callable[[], Index], doc: Doc) -> None:
    ix = new_index()
    ix.write([doc("b", ["x", "y"]), doc("a", ["z"], date=None, language="en")])
    assert ix.documents() == [
        {"doc_id": "a", "source": "archive/a.txt", "title": "Title a", "date": None,
         "language": "en", "n_chunks": 1},
        {"doc_id": "b", "source": "archive/a.txt", "title": "Title b", "date": "2022-06-15",
         "language": "de", "n_chunks": 2},
    ]  # fmt: skip
    full = ix.document("b")
    assert full is not None
    assert full["text"] == "x y" and full["metadata"] == {"section": "politik"}
    assert full["url"] == "https://example.org/b" and full["added_at"]


def test_content_hashes_and_sources(new_index: Callable[[], Index], doc: Doc) -> None:
    ix = new_index()
    a, b = doc("a", ["x"], source="s1.txt"), doc("b", ["y"], source="s1.txt")
    ix.write([a, b, doc("c", ["z"], source="s2.txt")])
    assert ix.content_hashes(["a", "zz"]) == {"a": a.content_hash}
    assert ix.doc_ids_for_sources(["s1.txt", "s9.txt"]) == {"s1.txt": ["a", "b"], "s9.txt": []}


def test_chunks_come_back_in_the_given_order(new_index: Callable[[], Index], doc: Doc) -> None:
    ix = new_index()
    ix.write([doc("a", ["eins", "zwei", "drei"])])
    rows = ix.chunk_row_ids().tolist()
    assert [c.text for c in ix.chunks(rows[::-1])] == ["drei", "zwei", "eins"]
    assert [c.text for c in ix.chunks([rows[1], 10_000])] == ["zwei"]


@pytest.mark.parametrize(
    ("date_from", "date_to", "expected"),
    [
        # A partial document date matches if its period overlaps the range ("2022" does here).
        ("2022-06", None, {"jun15", "jun", "jul01", "y2022", "y2023"}),
        (None, "2022-06", {"may31", "jun15", "jun", "y2022"}),
        ("2022-06", "2022-06", {"jun15", "jun", "y2022"}),
        ("2022-06-16", "2022-06-30", {"jun", "y2022"}),
        ("2022", "2022", {"may31", "jun15", "jun", "jul01", "y2022"}),
        ("2022-07-01", None, {"jul01", "y2022", "y2023"}),
        ("2022-12-31", "2023-01-09", {"y2022"}),
        (None, "2022-05-31", {"may31", "y2022"}),
        ("2024", None, set()),
        ("2022-02", "2022-02", {"y2022"}),
    ],
)
def test_date_filter_with_partial_dates(
    new_index: Callable[[], Index],
    doc: Doc,
    date_from: str | None,
    date_to: str | None,
    expected: set[str],
) -> None:
    ix = new_index()
    dates = {"may31": "2022-05-31", "jun15": "2022-06-15", "jun": "2022-06", "jul01": "2022-07-01",
             "y2022": "2022", "y2023": "2023-01-10", "nodate": None}  # fmt: skip
    ix.write([doc(name, [f"text {name}"], date=date) for name, date in dates.items()])
    rows = ix.chunk_row_ids(date_from=date_from, date_to=date_to)
    assert {c.doc_id for c in ix.chunks(rows.tolist())} == expected


def test_bad_date_filter_says_the_format(new_index: Callable[[], Index]) -> None:
    ix = new_index()
    with pytest.raises(IndexUsageError, match="use YYYY, YYYY-MM or YYYY-MM-DD"):
        ix.chunk_row_ids(date_from="June 2022")
    with pytest.raises(IndexUsageError, match="month 13"):
        ix.chunk_row_ids(date_to="2022-13")
    with pytest.raises(IndexUsageError, match="that month has 28 days"):
        ix.chunk_row_ids(date_to="2022-02-30")


def test_source_and_language_filters_and_filtered_search(
    new_index: Callable[[], Index], doc: Doc, vec: Vec
) -> None:
    ix = new_index()
    ix.write([
        doc("de1", ["Kanzler spricht"], source="taz.txt", language="de"),
        doc("en1", ["Chancellor speaks"], source="bbc.txt", language="en"),
        doc("en2", ["Minister resigns"], source="bbc.txt", language="en", date="2021-01-01"),
    ])  # fmt: skip
    english = ix.chunk_row_ids(languages=["en"])
    assert {c.doc_id for c in ix.chunks(english.tolist())} == {"en1", "en2"}
    bbc_2022 = ix.chunk_row_ids(sources=["bbc.txt"], date_from="2022")
    assert {c.doc_id for c in ix.chunks(bbc_2022.tolist())} == {"en1"}
    hits = ix.search(vec("Kanzler spricht"), 5, allowed=english)[0]
    assert len(hits) == 2
    assert {c.doc_id for c in ix.chunks([r for r, _ in hits])} == {"en1", "en2"}


def test_wrong_vector_dimension_is_refused_before_writing(
    new_index: Callable[[], Index], doc: Doc
) -> None:
    ix = new_index()
    ix.write([doc("a", ["eins"])])
    bad = doc("b", ["zwei", "drei"], dim=384)
    with pytest.raises(IndexMismatchError) as err:
        ix.write([doc("c", ["vier"]), bad])
    assert "dimension 384" in str(err.value) and "dimension 16" in str(err.value)
    assert "'b#0'" in str(err.value)
    assert [d["doc_id"] for d in ix.documents()] == ["a"]
    assert ix.info()["generation"] == 1


def test_vectors_are_converted_and_checked(new_index: Callable[[], Index], doc: Doc) -> None:
    ix = new_index()
    good = doc("a", ["eins"])
    as_float64 = dataclasses.replace(
        good,
        chunks=(dataclasses.replace(good.chunks[0], vector=good.chunks[0].vector.astype(float)),),
    )
    assert ix.write([as_float64]).added == 1
    nan = good.chunks[0].vector.copy()
    nan[0] = np.nan
    with pytest.raises(IndexUsageError, match="NaN or infinity"):
        ix.write([dataclasses.replace(doc("b", ["x"]),
                                      chunks=(dataclasses.replace(good.chunks[0], vector=nan),))])  # fmt: skip
    long = dataclasses.replace(good.chunks[0], chunk_id="c#0", vector=good.chunks[0].vector * 3)
    with pytest.raises(IndexMismatchError, match="has length 3.*normalized"):
        ix.write([dataclasses.replace(doc("c", ["x"]), chunks=(long,))])
    assert ix.info()["counts"]["documents"] == 1


def test_unnormalized_index_accepts_any_length(
    tmp_path: Path, spec: IndexSpec, doc: Doc, vec: Vec
) -> None:
    raw = dataclasses.replace(spec, normalized=False)
    with Index.open(tmp_path / "raw", raw, create=True) as ix:
        d = doc("a", ["eins"])
        scaled = dataclasses.replace(d.chunks[0], vector=d.chunks[0].vector * 5)
        assert ix.write([dataclasses.replace(d, chunks=(scaled,))]).added == 1


def test_batch_input_errors(new_index: Callable[[], Index], doc: Doc) -> None:
    ix = new_index()
    with pytest.raises(IndexUsageError, match="appears twice"):
        ix.write([doc("a", ["x"]), doc("a", ["y"])])
    with pytest.raises(IndexUsageError, match="both upserted and removed"):
        ix.write([doc("a", ["x"])], removals=["a"])
    with pytest.raises(IndexUsageError, match=r"pass \['a'\]"):
        ix.write(removals="a")
    clash = dataclasses.replace(doc("b", ["y"]), chunks=doc("a", ["x"]).chunks)
    with pytest.raises(IndexUsageError, match="chunk ids must be unique"):
        ix.write([doc("a", ["x"]), clash])
    assert ix.documents() == []


def test_chunk_id_taken_by_another_document_rolls_back(
    new_index: Callable[[], Index], doc: Doc
) -> None:
    ix = new_index()
    ix.write([doc("a", ["x"])])
    thief = dataclasses.replace(doc("b", ["y"]), chunks=doc("a", ["y"]).chunks)
    with pytest.raises(
        IndexUsageError, match="'a#0' of document 'b' is already used by document 'a'"
    ):
        ix.write([doc("c", ["z"]), thief])
    assert [d["doc_id"] for d in ix.documents()] == ["a"]
    assert ix.info()["generation"] == 1


def test_document_without_chunks(new_index: Callable[[], Index], doc: Doc) -> None:
    ix = new_index()
    assert ix.write([doc("empty", [])]).added == 1
    assert ix.documents()[0]["n_chunks"] == 0


def test_a_reader_sees_another_writers_commits(
    new_index: Callable[[], Index], index_dir: Path, doc: Doc, vec: Vec
) -> None:
    writer = new_index()
    writer.write([doc("a", ["eins"])])
    with Index.open(index_dir) as reader:
        assert len(reader.search(vec("zwei"), 10)[0]) == 1
        writer.write([doc("b", ["zwei"])])
        assert top_chunk(reader, vec("zwei")) == "b#0"
        # The reader can write too: it catches up before applying its own change.
        reader.write([doc("c", ["drei"])], removals=["a"])
    assert {c.doc_id for c in writer.chunks(writer.chunk_row_ids().tolist())} == {"b", "c"}
    assert top_chunk(writer, vec("drei")) == "c#0"
    assert len(writer.search(vec("eins"), 10)[0]) == 2
