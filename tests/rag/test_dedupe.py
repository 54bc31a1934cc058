"""Near-duplicate collapsing by stored MinHash signatures (index.signatures) makes the same
decisions as comparing the passages' word-trigram sets: on the seed articles, on copies of
them edited to every degree of overlap, and on the retrieval tests' wire-story case."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from index import Index, IndexSpec, signatures
from index.records import ChunkRecord, DocumentRecord
from rag.retrieval.fusion import Candidate, collapse, jaccard, shingles

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
THRESHOLD = 0.6  # retrieval.duplicate_overlap's default


def seed_paragraphs() -> list[str]:
    paragraphs = []
    for path in sorted(SEEDS.glob("*.txt")):
        paragraphs += [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n")]
    return [p for p in paragraphs if len(p.split()) >= 3]


def edited(text: str, share: float, rng: random.Random) -> str:
    """`text` with about `share` of its words replaced (a rewrite of the same story)."""
    words = text.split()
    for i in rng.sample(range(len(words)), int(len(words) * share)):
        words[i] = f"wort{rng.randrange(10**6)}"
    return " ".join(words)


def with_and_without_signatures(texts: dict[int, str], order: list[int]) -> tuple[list, list]:
    cands = [Candidate(r, float(len(order) - i)) for i, r in enumerate(order)]
    stored = {r: signatures.signature(t) for r, t in texts.items()}
    fast = collapse(cands, texts, THRESHOLD, stored)
    exact = collapse(cands, texts, THRESHOLD)
    return fast, exact


def test_seed_passages_and_their_rewrites_collapse_as_with_shingle_sets() -> None:
    rng = random.Random(11)
    paragraphs = seed_paragraphs()
    assert len(paragraphs) >= 20
    texts: dict[int, str] = {}
    for i, p in enumerate(paragraphs):
        texts[2 * i] = p
        texts[2 * i + 1] = edited(p, rng.choice([0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5]), rng)
    overlaps = [jaccard(shingles(texts[2 * i]), shingles(texts[2 * i + 1])) for i in range(40)]
    assert min(overlaps) < 0.45 and max(overlaps) > 0.75  # both sides of the threshold
    assert any(0.5 <= j <= 0.7 for j in overlaps)  # and near it
    merged = 0
    for trial in range(30):
        order = list(texts)
        rng.shuffle(order)
        fast, exact = with_and_without_signatures(texts, order[:60])
        assert [(c.row_id, c.duplicates) for c in fast] == [
            (c.row_id, c.duplicates) for c in exact
        ], trial
        merged += sum(len(c.duplicates) for c in exact)
    assert merged > 0


def test_the_wire_story_case_and_short_texts() -> None:
    story = (
        "Die NATO will ihre Ostflanke mit zusätzlichen Truppen stärken, sagte Generalsekretär "
        "Stoltenberg am Freitag in Brüssel. Das Bündnis sei auf jedes Szenario vorbereitet."
    )
    texts = {
        1: story,
        2: "Brüssel (dpa) - " + story.replace("am Freitag", "am Freitag vor Journalisten"),
        3: "Ein ganz anderer Text über Wetter und Sport in München.",
        4: "",
        5: "",
        6: "Zwei Wörter",
    }
    fast, exact = with_and_without_signatures(texts, [1, 2, 3, 4, 5, 6])
    assert [(c.row_id, c.duplicates) for c in fast] == [(c.row_id, c.duplicates) for c in exact]
    assert [(c.row_id, c.duplicates) for c in fast] == [(1, (2,)), (3, ()), (4, (5,)), (6, ())]


def test_passages_without_a_signature_are_compared_by_their_texts() -> None:
    texts = {1: "a b c d e f g h", 2: "a b c d e f g h i", 3: "x y z w v u"}
    cands = [Candidate(1, 3.0), Candidate(2, 2.0), Candidate(3, 1.0)]
    only_some = {1: signatures.signature(texts[1]), 2: None}
    out = collapse(cands, texts, THRESHOLD, only_some)
    assert [(c.row_id, c.duplicates) for c in out] == [(1, (2,)), (3, ())]


def test_signature_estimates_the_overlap() -> None:
    rng = random.Random(5)
    base = " ".join(f"w{rng.randrange(400)}" for _ in range(150))
    for share in (0.0, 0.1, 0.3, 0.6, 1.0):
        other = edited(base, share, rng)
        exact = jaccard(shingles(base), shingles(other))
        est = signatures.similarity(
            signatures.as_array(signatures.signature(base)),
            signatures.as_array(signatures.signature(other))[None, :],
        )[0]
        assert abs(est - exact) < 0.15, (share, exact, est)
    assert len(signatures.signature(base)) == signatures.SIGNATURE_BYTES
    assert signatures.signature(base) == signatures.signature(base)  # stable


# ------------------------------------------------------------------ stored with the passage
def _doc(doc_id: str, texts: list[str]) -> DocumentRecord:
    rng = np.random.default_rng(len(doc_id))
    chunks = []
    for i, text in enumerate(texts):
        v = rng.standard_normal(8).astype(np.float32)
        chunks.append(ChunkRecord(f"{doc_id}#{i}", i, 0, len(text), text, v / np.linalg.norm(v)))
    return DocumentRecord(doc_id, "src.txt", " ".join(texts), doc_id, chunks=tuple(chunks))


@pytest.fixture
def small_index(tmp_path: Path):
    ix = Index.open(tmp_path / "idx", IndexSpec(embedder_id="fake-8", dim=8), create=True)
    ix.write([_doc("a", ["erster Absatz mit Worten", "zweiter Absatz"])])
    yield ix
    ix.close()


def test_signatures_are_written_with_the_passages(small_index) -> None:
    chunks = small_index.chunks(list(small_index.chunk_row_ids()))
    assert [c.signature for c in chunks] == [signatures.signature(c.text) for c in chunks]


def test_an_index_from_before_signatures_gets_them_in_the_background(
    small_index, tmp_path: Path
) -> None:
    small_index.close()
    db = tmp_path / "idx" / "chunks.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("ALTER TABLE chunks DROP COLUMN signature")  # schema 2, as written before
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with Index.open(tmp_path / "idx") as ix:
        assert ix.settle(timeout=60)
        chunks = ix.chunks(list(ix.chunk_row_ids()))
        assert [c.signature for c in chunks] == [signatures.signature(c.text) for c in chunks]
        assert not ix._open_store().signatures_pending()
        ix.write([_doc("b", ["neuer Absatz hier"])])
        new = [c for c in ix.chunks(list(ix.chunk_row_ids())) if c.doc_id == "b"]
        assert new[0].signature == signatures.signature("neuer Absatz hier")
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
