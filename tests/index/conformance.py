"""The conformance suite of `index.IndexBackend`: what the pipeline relies on from any index.

A backend's test module subclasses `IndexConformance` and provides the `backend` fixture: a
callable that opens (creating on first call) one index of the given `IndexSpec`, the same one
on every call, so a test can write, close and open again. Everything else is inherited:

    class TestMyBackend(IndexConformance):
        @pytest.fixture
        def backend(self, tmp_path):
            ...

The tests use deterministic fake vectors (no model); they check behaviour a caller sees:
exact inner-product order, filters inside the search, keyword search, evidence, atomic
writes, unchanged documents costing nothing, removal, and the spec recorded and checked.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from index import ChunkRecord, DocumentRecord, IndexBackend, IndexSpec, check_compatible
from index.errors import IndexMismatchError, IndexStoreError, IndexUsageError

from .conftest import DIM, fake_vector, make_doc

Open = Callable[[], IndexBackend]

TEXTS = {
    "a": ["Die Bahn streicht Züge nach Sylt.", "Der Streik dauert bis Montag."],
    "b": ["Der Stadtrat baut eine Seilbahn.", "Sie soll 2027 fahren."],
    "c": ["Arminia verpflichtet einen Torwart."],
}
DATES = {"a": "2022-06-15", "b": "2023-01", "c": None}
SOURCES = {"a": "archive/a.txt", "b": "archive/b.txt", "c": "feed.jsonl#3"}
LANGS = {"a": "de", "b": "de", "c": "en"}


def _doc(doc_id: str, version: str = "v1") -> DocumentRecord:
    doc = make_doc(
        doc_id,
        TEXTS[doc_id],
        source=SOURCES[doc_id],
        date=DATES[doc_id],
        language=LANGS[doc_id],
        version=version,
    )
    chunks = tuple(
        ChunkRecord(
            chunk_id=c.chunk_id,
            ordinal=c.ordinal,
            start=c.start,
            end=c.end,
            text=c.text,
            vector=c.vector,
            terms=[w.lower().strip(".") for w in c.text.split()],
            sentences=((c.start, c.end),),
            sentence_vectors=fake_vector("s:" + c.text)[None, :],
        )
        for c in doc.chunks
    )
    return DocumentRecord(**{**doc.__dict__, "chunks": chunks})


def _row_of(ix: IndexBackend, text: str) -> int:
    rows = ix.chunk_row_ids()
    found = [c.row_id for c in ix.chunks(list(rows)) if c.text == text]
    assert len(found) == 1, (text, found)
    return found[0]


class IndexConformance:
    """Inherit and provide the `backend` fixture (see the module docstring); the `spec`
    fixture comes from tests/index/conftest.py."""

    @pytest.fixture
    def filled(self, backend: Open) -> IndexBackend:
        ix = backend()
        ix.write(upserts=[_doc("a"), _doc("b"), _doc("c")])
        return ix

    # -- it is an IndexBackend ---------------------------------------------------------------
    def test_implements_the_protocol_and_records_its_spec(self, backend: Open, spec) -> None:
        ix = backend()
        assert isinstance(ix, IndexBackend)
        assert ix.spec == spec
        assert ix.info()["spec"] == spec.to_json()

    # -- documents ---------------------------------------------------------------------------
    def test_documents_and_their_metadata(self, filled: IndexBackend) -> None:
        docs = {d["doc_id"]: d for d in filled.documents()}
        assert set(docs) == {"a", "b", "c"}
        assert docs["a"]["n_chunks"] == 2 and docs["b"]["date"] == "2023-01"
        one = filled.document("a")
        assert one is not None and one["text"] == " ".join(TEXTS["a"])
        assert one["url"] == "https://example.org/a"
        assert filled.document("zz") is None
        assert filled.info()["counts"] == {"documents": 3, "chunks": 5}

    def test_content_hashes_and_sources(self, filled: IndexBackend) -> None:
        assert filled.content_hashes(["a", "zz"]) == {"a": _doc("a").content_hash}
        assert filled.doc_ids_for_sources(["archive/b.txt", "nope"]) == {
            "archive/b.txt": ["b"],
            "nope": [],
        }

    def test_chunks_carry_text_offsets_and_document_fields(self, filled: IndexBackend) -> None:
        row = _row_of(filled, "Sie soll 2027 fahren.")
        (c,) = filled.chunks([row])
        assert (c.doc_id, c.ordinal, c.source, c.date, c.language) == (
            "b",
            1,
            "archive/b.txt",
            "2023-01",
            "de",
        )
        body = filled.document("b")["text"]
        assert body[c.start : c.end] == c.text
        assert c.url == "https://example.org/b"
        assert filled.chunks([row, 10**9]) == [c]  # unknown ids are skipped

    def test_passage_texts_are_the_chunks_text_and_signature(self, filled: IndexBackend) -> None:
        rows = [c.row_id for c in filled.chunks(list(filled.chunk_row_ids()))]
        light = filled.passage_texts(rows + [10**9])  # unknown ids are skipped
        assert set(light) == set(rows)
        for c in filled.chunks(rows):
            assert light[c.row_id] == (c.text, c.signature)
        assert any(sig is not None for _, sig in light.values())

    # -- search ------------------------------------------------------------------------------
    def test_dense_search_is_exact_inner_product_order(self, filled: IndexBackend) -> None:
        rows = list(filled.chunk_row_ids())
        chunks = filled.chunks(rows)
        query = fake_vector("Seilbahn")
        expected = sorted(chunks, key=lambda c: -float(fake_vector(c.text) @ query))
        (hits,) = filled.search(query[None, :], k=5)
        assert [r for r, _ in hits] == [c.row_id for c in expected]
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == pytest.approx(float(fake_vector(expected[0].text) @ query), abs=1e-5)

    def test_a_passage_finds_itself_first(self, filled: IndexBackend) -> None:
        row = _row_of(filled, "Arminia verpflichtet einen Torwart.")
        (hits,) = filled.search(fake_vector("Arminia verpflichtet einen Torwart.")[None, :], 1)
        assert hits[0][0] == row and hits[0][1] == pytest.approx(1.0, abs=1e-5)

    def test_wrong_query_dimension_is_a_clear_error(self, filled: IndexBackend) -> None:
        with pytest.raises(IndexStoreError, match=str(DIM)):
            filled.search(np.ones((1, DIM + 1), dtype=np.float32), 3)

    def test_keyword_search_ranks_matching_passages(self, filled: IndexBackend) -> None:
        (hits,) = filled.keyword_search([["seilbahn"]], 5)
        assert [filled.chunks([r])[0].text for r, _ in hits] == ["Der Stadtrat baut eine Seilbahn."]
        (none,) = filled.keyword_search([["zeppelin"]], 5)
        assert none == []

    @pytest.mark.parametrize(
        ("filters", "docs"),
        [
            ({"date_from": "2023"}, {"b"}),
            ({"date_to": "2022-06"}, {"a"}),
            ({"date_from": "2022-06-15", "date_to": "2022-06-15"}, {"a"}),
            ({"sources": ["archive/b.txt", "feed.jsonl#3"]}, {"b", "c"}),
            ({"languages": ["en"]}, {"c"}),
            ({"date_from": "2030"}, set()),
        ],
    )
    def test_filters(self, filled: IndexBackend, filters, docs) -> None:
        rows = filled.chunk_row_ids(**filters)
        assert {c.doc_id for c in filled.chunks(list(rows))} == docs
        query = fake_vector("Seilbahn")[None, :]
        (dense,) = filled.search(query, 10, allowed=rows)
        assert {r for r, _ in dense} == {int(r) for r in rows}  # k hits whenever k exist
        (kw,) = filled.keyword_search([["der", "sie", "die", "arminia"]], 10, allowed=rows)
        assert {r for r, _ in kw} <= {int(r) for r in rows}

    def test_a_malformed_date_filter_names_the_value(self, filled: IndexBackend) -> None:
        with pytest.raises(IndexUsageError, match="month 13"):
            filled.chunk_row_ids(date_from="2022-13")

    # -- evidence ----------------------------------------------------------------------------
    def test_evidence_holds_vectors_and_sentences(self, filled: IndexBackend) -> None:
        row = _row_of(filled, "Der Streik dauert bis Montag.")
        ev = filled.evidence([row, 10**9])
        assert set(ev) == {row}
        (c,) = filled.chunks([row])
        np.testing.assert_allclose(ev[row].vector, fake_vector(c.text), atol=1e-6)
        assert ev[row].sentence_spans == ((c.start, c.end),)
        # Sentence vectors may be stored at lower precision (fp16 here).
        np.testing.assert_allclose(
            ev[row].sentence_vectors[0], fake_vector("s:" + c.text), atol=1e-3
        )

    # -- writing -----------------------------------------------------------------------------
    def test_unchanged_documents_cost_nothing_and_changed_ones_replace(self, backend: Open) -> None:
        ix = backend()
        first = ix.write(upserts=[_doc("a"), _doc("b")])
        assert (first.added, first.chunks_added) == (2, 4)
        again = ix.write(upserts=[_doc("a"), _doc("b")])
        assert (again.added, again.updated, again.unchanged, again.chunks_added) == (0, 0, 2, 0)
        changed = ix.write(upserts=[_doc("a", version="v2")])
        assert (changed.updated, changed.chunks_removed, changed.chunks_added) == (1, 2, 2)
        assert ix.info()["counts"] == {"documents": 2, "chunks": 4}

    def test_removal_takes_passages_out_of_every_search(self, filled: IndexBackend) -> None:
        result = filled.write(removals=["b", "unknown"])
        assert (result.removed, result.chunks_removed) == (1, 2)
        assert "b" not in {d["doc_id"] for d in filled.documents()}
        (dense,) = filled.search(fake_vector("Der Stadtrat baut eine Seilbahn.")[None, :], 10)
        assert "b" not in {c.doc_id for c in filled.chunks([r for r, _ in dense])}
        (kw,) = filled.keyword_search([["seilbahn"]], 10)
        assert kw == []

    def test_a_bad_record_changes_nothing(self, filled: IndexBackend) -> None:
        before = filled.info()["counts"]
        bad = _doc("a", version="v9")
        broken = DocumentRecord(
            **{
                **bad.__dict__,
                "chunks": (
                    ChunkRecord(
                        chunk_id="a#0",
                        ordinal=0,
                        start=0,
                        end=3,
                        text="Die",
                        vector=np.full(DIM, np.nan, dtype=np.float32),
                    ),
                ),
            }
        )
        with pytest.raises(IndexStoreError):
            filled.write(upserts=[_doc("c", version="v2"), broken])
        assert filled.info()["counts"] == before
        assert filled.content_hashes(["a", "c"]) == {
            "a": _doc("a").content_hash,
            "c": _doc("c").content_hash,
        }

    def test_written_state_survives_closing(self, backend: Open) -> None:
        ix = backend()
        ix.write(upserts=[_doc("a"), _doc("c")])
        ix.close()
        again = backend()
        assert {d["doc_id"] for d in again.documents()} == {"a", "c"}
        row = _row_of(again, "Arminia verpflichtet einen Torwart.")
        (hits,) = again.search(fake_vector("Arminia verpflichtet einen Torwart.")[None, :], 1)
        assert hits[0][0] == row

    # -- keyword analyzer --------------------------------------------------------------------
    def test_reanalyze_keywords_replaces_terms_in_one_commit(self, filled: IndexBackend) -> None:
        n = filled.reanalyze_keywords("upper-v1", lambda rows: [["X" + t[:3]] for t, _ in rows])
        assert n == 5 and filled.keyword_analyzer() == "upper-v1"
        (hits,) = filled.keyword_search([["XDer"]], 5)
        assert len(hits) == 2

    # -- the spec ----------------------------------------------------------------------------
    def test_another_embedder_or_chunking_is_refused_naming_both(self, filled, spec) -> None:
        path = filled.info()["path"]
        with pytest.raises(IndexMismatchError, match="'fake-hash-16'.*'other-model'"):
            check_compatible(path, filled.spec, embedder_id="other-model", chunking=spec.chunking)
        with pytest.raises(IndexMismatchError, match="max_tokens: index 200 vs settings 100"):
            check_compatible(
                path,
                filled.spec,
                embedder_id=spec.embedder_id,
                chunking={**spec.chunking, "max_tokens": 100},
            )
        check_compatible(path, filled.spec, embedder_id=spec.embedder_id, chunking=spec.chunking)
