"""The tantivy keyword index of the local index (index.keywords): it follows every write,
catches up when it missed one, is built for an index that has none, and answers what
SQLite's FTS5 table (the authority) answers."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from index import DocumentRecord, Index, keywords
from index.records import ChunkRecord

from .conftest import make_doc

Open = Callable[[], Index]
TOPICS = ["bahn streik sylt", "seilbahn stadtrat", "arminia torwart", "wahl kanzler berlin"]


def kdoc(n: int, version: str = "v1") -> DocumentRecord:
    """Document n: three passages on topic n % 4, each with a word of its own."""
    texts = [f"{TOPICS[n % 4]} gemeinsam eigen{n}x{j} {version}" for j in range(3)]
    doc = make_doc(f"d{n:04d}", texts, version=version)
    chunks = tuple(ChunkRecord(**{**c.__dict__, "terms": c.text.split()}) for c in doc.chunks)
    return DocumentRecord(**{**doc.__dict__, "chunks": chunks})


def fts5(ix: Index, terms: Sequence[str], k: int = 1000, allowed=None) -> set[int]:
    """What SQLite's FTS5 table answers (the reference)."""
    return {r for r, _ in ix._open_store().keyword_search(terms, k, allowed)}


def found(ix: Index, terms: Sequence[str], k: int = 1000, allowed=None) -> set[int]:
    (hits,) = ix.keyword_search([list(terms)], k, allowed=allowed)
    return {r for r, _ in hits}


QUERIES = [["seilbahn"], ["streik", "torwart"], ["gemeinsam"], ["eigen7x1"], ["zeppelin"]]


def assert_same_as_fts5(ix: Index) -> None:
    for terms in QUERIES:
        assert found(ix, terms) == fts5(ix, terms), terms


def keyword_dirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.glob("keywords.*") if p.is_dir())


def test_a_new_index_keeps_its_keyword_index_current(new_index: Open, index_dir: Path) -> None:
    ix = new_index()
    ix.write([kdoc(n) for n in range(20)])
    assert ix.info()["search"]["keywords"] == "tantivy"
    assert_same_as_fts5(ix)
    assert len(found(ix, ["seilbahn"])) == 15  # 5 documents x 3 passages
    ix.write([kdoc(1, "v2")], removals=["d0005", "d0009"])
    assert ix.info()["search"]["keywords"] == "tantivy"
    assert_same_as_fts5(ix)
    assert {c.doc_id for c in ix.chunks(sorted(found(ix, ["seilbahn"])))} == {
        f"d{n:04d}" for n in (1, 13, 17)
    }
    assert found(ix, ["v1"]) and {c.doc_id for c in ix.chunks(sorted(found(ix, ["v2"])))} == {
        "d0001"
    }
    assert len(keyword_dirs(index_dir)) == 1
    assert keywords.read_pointer(index_dir) == keyword_dirs(index_dir)[0]


def test_the_best_match_comes_first(new_index: Open) -> None:
    ix = new_index()
    ix.write([kdoc(n) for n in range(12)])
    (hits,) = ix.keyword_search([["eigen7x1", "seilbahn"]], 3)
    assert ix.chunks([hits[0][0]])[0].text.startswith("wahl kanzler berlin gemeinsam eigen7x1")
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_a_write_the_keyword_index_missed_is_caught_up(
    new_index: Open, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ix = new_index()
    ix.write([kdoc(n) for n in range(8)])

    def broken(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(keywords.TantivyKeywords, "apply", broken)
        ix.write([kdoc(n) for n in range(8, 12)], removals=["d0002"])
    assert "cannot update the keyword index" in caplog.text
    assert_same_as_fts5(ix)  # committed in SQLite: FTS5 answers meanwhile
    assert ix.settle(timeout=60)
    assert ix.info()["search"]["keywords"] == "tantivy"
    assert_same_as_fts5(ix)
    assert "d0002" not in {c.doc_id for c in ix.chunks(sorted(found(ix, ["gemeinsam"])))}


def test_an_index_without_a_keyword_index_gets_one(new_index: Open, index_dir: Path, spec) -> None:
    ix = new_index()
    ix.write([kdoc(n) for n in range(10)])
    ix.close()
    (index_dir / keywords.POINTER_NAME).unlink()  # as an index written before tantivy
    for name in keyword_dirs(index_dir):
        shutil.rmtree(index_dir / name)
    with Index.open(index_dir, spec) as again:
        assert_same_as_fts5(again)
        assert again.settle(timeout=60)
        assert again.info()["search"]["keywords"] == "tantivy"
        assert_same_as_fts5(again)
        assert len(keyword_dirs(index_dir)) == 1


def test_reanalysis_replaces_the_keyword_index(new_index: Open, index_dir: Path) -> None:
    ix = new_index()
    ix.write([kdoc(n) for n in range(6)])
    before = keyword_dirs(index_dir)
    ix.reanalyze_keywords("first-words-v1", lambda rows: [t.split()[:1] for t, _ in rows])
    assert ix.info()["search"]["keywords"] == "tantivy"
    assert keyword_dirs(index_dir) != before and len(keyword_dirs(index_dir)) == 1
    assert found(ix, ["gemeinsam"]) == set() and len(found(ix, ["seilbahn"])) == 6
    assert_same_as_fts5(ix)


def test_another_process_writes_are_seen(new_index: Open, index_dir: Path, spec) -> None:
    reader = new_index()
    reader.write([kdoc(n) for n in range(4)])
    with Index.open(index_dir, spec) as writer:
        writer.write([kdoc(n) for n in range(4, 9)], removals=["d0001"])
    assert_same_as_fts5(reader)
    assert reader.info()["search"]["keywords"] == "tantivy"


def test_filtered_keyword_search_keeps_to_the_allowed_rows(new_index: Open) -> None:
    ix = new_index()
    ix.write([kdoc(n) for n in range(40)])  # 120 passages, all with "gemeinsam"
    rows = ix.chunk_row_ids()
    narrow = rows[:6]  # 5 %: the filter goes into the query
    broad = rows[::2]  # 50 %: searched, then filtered
    for allowed in (narrow, broad):
        got = found(ix, ["gemeinsam", "seilbahn"], k=10, allowed=allowed)
        assert got <= set(allowed.tolist()) and len(got) == min(10, len(allowed))
        assert found(ix, ["gemeinsam"], allowed=allowed) == set(allowed.tolist())
    assert found(ix, ["gemeinsam"], allowed=np.array([], dtype=np.int64)) == set()
