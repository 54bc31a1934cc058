"""The Qdrant backend beyond the conformance suite: locations, point ids, dates, keyword
weights, the filter sent instead of ids, refusals on open, and a crash part-way through a
write that the next write repairs. qdrant-client's local mode; no server, no model."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index import ChunkRecord, DocumentRecord, Index, IndexSpec
from index.errors import IndexMismatchError, IndexUsageError
from index.qdrant import QdrantIndex, parse_location
from index.qdrant.points import (
    PENDING,
    RowSelection,
    date_span,
    document_sparse,
    point_id,
    query_sparse,
    stored_length,
    term_index,
)

from .conftest import fake_vector, make_doc

ROOT = Path(__file__).resolve().parents[2]


def _with_terms(doc: DocumentRecord) -> DocumentRecord:
    chunks = tuple(
        ChunkRecord(
            chunk_id=c.chunk_id, ordinal=c.ordinal, start=c.start, end=c.end, text=c.text,
            vector=c.vector, terms=[w.lower().strip(".") for w in c.text.split()],
            sentences=((c.start, c.end),), sentence_vectors=fake_vector("s:" + c.text)[None, :],
        )  # fmt: skip
        for c in doc.chunks
    )
    return DocumentRecord(**{**doc.__dict__, "chunks": chunks})


@pytest.fixture
def qdrant(tmp_path: Path, spec: IndexSpec) -> Iterator[QdrantIndex]:
    ix = QdrantIndex.open(tmp_path / "q", spec, create=True)
    yield ix
    ix.close()


# -- locations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "target", "collection"),
    [
        ("qdrant://db.example.org:6334/news", "server", "http://db.example.org:6334", "news"),
        ("qdrants://db.example.org", "server", "https://db.example.org:6333", "newsrag"),
        ("http://127.0.0.1:6333", "server", "http://127.0.0.1:6333", "newsrag"),
        (":memory:", "memory", ":memory:", "newsrag"),
        ("edge:/data/shard", "edge", "/data/shard", "newsrag"),
        ("/data/qdrant-local", "path", "/data/qdrant-local", "newsrag"),
    ],
)
def test_locations(text: str, kind: str, target: str, collection: str) -> None:
    where = parse_location(text)
    assert (where.kind, where.target, where.collection) == (kind, target, collection)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://host/x", "unknown Qdrant URL scheme 'ftp'"),
        ("qdrant:///news", "names no host"),
        ("qdrant://host:6333/a/b", "only a collection name"),
        ("  ", "location is empty"),
    ],
)
def test_bad_locations_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(IndexUsageError, match=message):
        parse_location(text)


# -- points ------------------------------------------------------------------------------------


def test_point_ids_are_stable_63_bit_and_never_the_manifest() -> None:
    ids = {point_id("chunk", f"c{i}") for i in range(1000)}
    assert len(ids) == 1000 and all(0 < i < 2**63 for i in ids)
    assert point_id("chunk", "c1") == point_id("chunk", "c1") != point_id("doc", "c1")


@pytest.mark.parametrize(
    ("date", "span"),
    [
        ("2022", ("2022-01-01", "2022-12-31")),
        ("2024-02", ("2024-02-01", "2024-02-29")),
        ("2022-06-15", ("2022-06-15", "2022-06-15")),
        ("2022-06-15T10:30:00", ("2022-06-15", "2022-06-15")),
        (None, None),
        ("Juni 2022", None),
        ("2022-13", None),
    ],
)
def test_a_partial_date_covers_its_whole_period(date, span) -> None:
    got = date_span(date)
    assert (got if got is None else (got[0][:10], got[1][:10])) == span


def test_keyword_weights_saturate_and_normalise_length_as_bm25() -> None:
    once, _ = document_sparse(["bahn", "streik"], avgdl=2)
    (i_bahn, i_streik) = (term_index("bahn"), term_index("streik"))
    _, w_once = document_sparse(["bahn", "streik"], avgdl=2)
    _, w_twice = document_sparse(["bahn", "bahn", "streik"], avgdl=2)
    twice = dict(zip(*document_sparse(["bahn", "bahn", "streik"], avgdl=2)))
    single = dict(zip(once, w_once))
    assert single[i_bahn] < twice[i_bahn] < 2 * single[i_bahn]  # more is better, not linear
    long = dict(zip(*document_sparse(["bahn"] + ["x"] * 20, avgdl=2)))
    assert long[i_bahn] < single[i_bahn]  # the same term counts less in a longer passage
    assert i_streik in single
    indices, values = query_sparse(["Bahn", "bahn", "b-a-h-n", ""])
    assert indices == [i_bahn] and values == [1.0]  # case-folded, cleaned, each term once


@pytest.mark.parametrize(
    ("length", "stored"), [(0, 0), (39, 39), (40, 40), (41, 40), (150, 144), (2**40, 2013265944)]
)
def test_passage_lengths_are_stored_as_tantivy_stores_them(length: int, stored: int) -> None:
    assert stored_length(length) == stored


@pytest.mark.parametrize("where", ["local-mode", "edge"])
def test_keyword_scores_are_the_local_index_scores(
    tmp_path: Path, spec: IndexSpec, where: str
) -> None:
    """One term, passages of 3 to 300 terms: Qdrant's score is tantivy's (up to the IDF's
    document count), so both rank alike and tie alike."""
    docs = []
    for i, n in enumerate([3, 12, 39, 41, 43, 47, 60, 61, 63, 150, 151, 160, 170, 290, 300] * 2):
        terms = ["streik"] * (1 + i % 3) + [f"w{j % 40}" for j in range(n - 1 - i % 3)]
        doc = make_doc(f"d{i}", [" ".join(terms)], source=f"s{i}.txt")
        chunk = doc.chunks[0]
        docs.append(DocumentRecord(**{**doc.__dict__, "chunks": (
            ChunkRecord(**{**chunk.__dict__, "terms": terms}),)}))  # fmt: skip
    location = str(tmp_path / "q") if where == "local-mode" else f"edge:{tmp_path / 'q'}"
    with Index.open(tmp_path / "local", spec, create=True) as local, QdrantIndex.open(
        location, spec, create=True
    ) as qdrant:
        local.write(upserts=docs)
        qdrant.write(upserts=docs)
        scores = []
        for ix in (local, qdrant):
            (hits,) = ix.keyword_search([["streik"]], 100)
            scores.append({c.chunk_id: s for c, (_, s) in zip(ix.chunks([r for r, _ in hits]), hits)})
    assert scores[0].keys() == scores[1].keys() and len(scores[0]) == len(docs)
    ratios = np.array([scores[1][c] / scores[0][c] for c in scores[0]])
    # the same scores but for one factor: the IDF, whose document count in tantivy includes
    # the index's state record (large here, with the term in every passage)
    assert ratios.std() / ratios.mean() < 1e-5
    assert len(set(scores[0].values())) < len(docs)  # ties in tantivy's lengths are ties here


def test_keywords_weighted_by_an_older_rule_are_remade(qdrant: QdrantIndex) -> None:
    qdrant.write(upserts=[_with_terms(make_doc("a", ["Bahn streikt"]))])
    assert qdrant.reanalyze_keywords("plain-v1", lambda rows: [t.split() for t, _ in rows]) == 1
    assert qdrant.keyword_analyzer() == "plain-v1"
    qdrant._save_state(keyword_norms=None)  # as a collection written before the rule was kept
    assert qdrant.keyword_analyzer() is None  # so `ensure_keywords` re-makes the weights


# -- search --------------------------------------------------------------------------------------


def test_a_filter_travels_with_its_row_ids(qdrant: QdrantIndex) -> None:
    qdrant.write(upserts=[make_doc("a", ["eins", "zwei"]), make_doc("b", ["drei"], date="2023")])
    rows = qdrant.chunk_row_ids(date_from="2023")
    assert isinstance(rows, RowSelection) and rows.where is not None
    assert rows.where.date_from == "2023-01-01"
    assert rows[:1].where is None  # a slice is just ids again
    query = fake_vector("zwei")[None, :]
    by_filter = qdrant.search(query, 5, allowed=rows)
    by_ids = qdrant.search(query, 5, allowed=np.asarray(rows))
    assert by_filter == by_ids and len(by_filter[0]) == 1


def test_keyword_search_prefers_rare_terms_and_repeats(qdrant: QdrantIndex) -> None:
    docs = [
        make_doc("a", ["streik streik bahn"]),
        make_doc("b", ["streik bahn"], source="b.txt"),
        make_doc("c", ["bahn bahn"], source="c.txt"),
        make_doc("d", ["bahn fährt"], source="d.txt"),
    ]
    qdrant.write(upserts=[_with_terms(d) for d in docs])
    (hits,) = qdrant.keyword_search([["streik", "bahn"]], 10)
    order = [c.doc_id for c in qdrant.chunks([r for r, _ in hits])]
    assert order[:2] == ["a", "b"]  # the rarer term decides, and twice beats once
    assert set(order) == {"a", "b", "c", "d"}


# -- opening -------------------------------------------------------------------------------------


def test_another_spec_is_refused_on_open_naming_both(tmp_path: Path, spec: IndexSpec) -> None:
    QdrantIndex.open(tmp_path / "q", spec, create=True).close()
    other = IndexSpec(embedder_id="other-model", dim=spec.dim, chunking=spec.chunking)
    with pytest.raises(IndexMismatchError, match="'fake-hash-16'.*'other-model'"):
        QdrantIndex.open(tmp_path / "q", other)
    with QdrantIndex.open(tmp_path / "q") as ix:  # no spec: taken as stored
        assert ix.spec == spec


def test_a_newer_format_is_refused(tmp_path: Path, spec: IndexSpec) -> None:
    with QdrantIndex.open(tmp_path / "q", spec, create=True) as ix:
        ix._save_state(format_version=99)
    with pytest.raises(IndexMismatchError, match="newer version.*format 99.*upgrade newsrag"):
        QdrantIndex.open(tmp_path / "q")


def test_a_local_index_directory_is_not_taken_for_a_qdrant_one(
    tmp_path: Path, spec: IndexSpec
) -> None:
    Index.open(tmp_path / "local", spec, create=True).close()
    with pytest.raises(IndexUsageError, match="holds a local newsrag index.*rag migrate"):
        QdrantIndex.exists(tmp_path / "local")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(IndexUsageError, match="not a Qdrant local-mode directory"):
        QdrantIndex.open(tmp_path / "other", spec, create=True)
    assert not QdrantIndex.exists(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()  # asking created nothing


# -- writes ------------------------------------------------------------------------------------


def test_a_write_interrupted_part_way_is_redone_by_the_next(
    qdrant: QdrantIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    qdrant.write(upserts=[make_doc("a", ["alt eins", "alt zwei"])])
    store = qdrant._store
    real_upsert = store.upsert
    calls = {"n": 0}

    def crash_on_passages(points):
        calls["n"] += 1
        if calls["n"] == 2:  # 1: documents marked pending; 2: the new passages
            raise OSError("connection lost")
        return real_upsert(points)

    monkeypatch.setattr(store, "upsert", crash_on_passages)
    new = make_doc("a", ["neu eins"], version="v2")
    with pytest.raises(OSError):
        qdrant.write(upserts=[new])
    assert qdrant.content_hashes(["a"]) == {"a": PENDING}  # marked changed, not unchanged
    monkeypatch.setattr(store, "upsert", real_upsert)
    result = qdrant.write(upserts=[new])
    assert (result.updated, result.chunks_added, result.chunks_removed) == (1, 1, 0)
    assert qdrant.content_hashes(["a"]) == {"a": new.content_hash}
    assert [c.text for c in qdrant.chunks(list(qdrant.chunk_row_ids()))] == ["neu eins"]


def test_a_chunk_id_of_another_document_is_refused(qdrant: QdrantIndex) -> None:
    qdrant.write(upserts=[make_doc("a", ["eins"])])
    stolen = make_doc("b", ["zwei"], source="b.txt")
    chunk = ChunkRecord(**{**stolen.chunks[0].__dict__, "chunk_id": "a#0"})
    with pytest.raises(IndexUsageError, match="'a#0' of document 'b' is already used by .*'a'"):
        qdrant.write(upserts=[DocumentRecord(**{**stolen.__dict__, "chunks": (chunk,)})])
    assert qdrant.content_hashes(["b"]) == {}


# -- the default path stays lean ---------------------------------------------------------------

_DEFAULT_PATH = """
import sys, numpy as np
from pathlib import Path
import rag, rag.cli, rag.cli.index, rag.engine, index, ui.service
from rag.settings import load_settings
from rag.types import Document

class Embedder:
    id, dim, prompts, max_tokens = "fake", 8, {"query": "", "passage": ""}, 512
    def embed_queries(self, texts):
        v = np.ones((len(texts), 8), np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    embed_passages = embed_queries
    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]

with rag.engine.Engine.open(Path(sys.argv[1]), load_settings(), embedder=Embedder()) as e:
    e.add_documents([Document(doc_id="a", text="Die Bahn streikt.", source="a.txt")])
    assert e.search("Bahn", k=1)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("qdrant_client", "qdrant_edge", "ray")))
"""


def test_the_local_default_never_imports_qdrant_or_ray(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _DEFAULT_PATH, str(tmp_path / "idx")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**__import__("os").environ, "RAG_INDEX__BACKEND": "local"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("where", ["local-mode", "edge"])
def test_an_int8_quantized_collection_rescores_with_the_originals(
    tmp_path: Path, spec: IndexSpec, where: str
) -> None:
    location = str(tmp_path / "q") if where == "local-mode" else f"edge:{tmp_path / 'q'}"
    with QdrantIndex.open(location, spec, create=True, quantization="int8") as ix:
        ix.write(upserts=[make_doc("a", ["eins", "zwei", "drei"]), make_doc("b", ["vier"])])
        query = fake_vector("zwei")
        (hits,) = ix.search(query[None, :], 4)
        exact = sorted(((float(fake_vector(c.text) @ query), c.row_id) for c in
                        ix.chunks([r for r, _ in hits])), reverse=True)  # fmt: skip
        assert [r for r, _ in hits] == [r for _, r in exact]
        assert hits[0][1] == pytest.approx(1.0, abs=1e-5)


def test_passages_carry_the_near_duplicate_signature_dedupe_compares(qdrant: QdrantIndex) -> None:
    from index import signatures

    qdrant.write(upserts=[make_doc("a", ["Die Bahn streikt heute wieder in ganz Bayern."])])
    (chunk,) = qdrant.chunks(list(qdrant.chunk_row_ids()))
    assert chunk.signature == signatures.signature(chunk.text)
