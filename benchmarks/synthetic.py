"""A large index made from a small real one, through the index layer, for scale benchmarks.

`build(base, target, n)` writes the base index's passages as they are (text, vector, sentences
with their vectors, keyword terms), then synthetic passages up to `n`. Each is made of real
sentences of one topic (part from a random real passage, the rest from one of its 63 nearest
neighbours; a fixed seed), with their real sentence vectors and keyword terms (analysed per
sentence, so a passage's terms are what analysing its text gives), and a vector near the first
passage's, pulled part of the way towards some of its nearest neighbours. Documents of three
passages take the metadata (date, language) of their first passage's article. Embedding a
million passages on two cores is out of reach; this keeps the vocabulary, term frequencies,
passage lengths and the topics' layout of the vector space real, each topic N / 7k times as
dense.

The build is resumable (documents have fixed ids, and hashes of their text: present ones are
skipped) and writes in large batches with the approximate graph off; the caller opens the
result with its own options and lets the index build the graph (`Index.settle`).
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index import ChunkRecord, DocumentRecord, Index, PassageEvidence, StoredChunk
from index.ann import AnnOptions

SEED = 20251130
PASSAGES_PER_DOC = 3
POOL = 64  # a synthetic passage mixes a real passage with one of its 63 nearest
NEAREST = 16  # its vector leans towards some of the 15 nearest
BATCH_PASSAGES = 100_000


@dataclass(frozen=True)
class Sentence:
    text: str
    terms: tuple[str, ...]
    vector: np.ndarray


@dataclass(frozen=True)
class Passage:
    """A real passage: its sentences, vector and its article's metadata."""

    sentences: tuple[Sentence, ...]
    vector: np.ndarray
    date: str | None
    language: str | None
    title: str | None


def read_base(
    index: Index, analyze: Callable[[str, str | None], list[str]]
) -> tuple[list[DocumentRecord], list[Passage]]:
    """The base index's documents as records to write again (stored vectors, sentences and
    their vectors; terms analysed again), and its passages split into sentences."""
    by_doc: dict[str, list[StoredChunk]] = {}
    rows = [int(r) for r in index.chunk_row_ids()]
    for start in range(0, len(rows), 2_000):
        for chunk in index.chunks(rows[start : start + 2_000]):
            by_doc.setdefault(chunk.doc_id, []).append(chunk)
    records: list[DocumentRecord] = []
    passages: list[Passage] = []
    for doc_id in sorted(by_doc):
        doc = index.document(doc_id)
        chunks = sorted(by_doc[doc_id], key=lambda c: c.ordinal)
        evidence = index.evidence([c.row_id for c in chunks])
        if doc is None or len(evidence) != len(chunks):
            continue  # removed while read
        text = doc["text"]
        records.append(_record(doc, chunks, evidence, analyze))
        for chunk in chunks:
            ev = evidence[chunk.row_id]
            if ev.sentence_vectors is None:
                continue
            sentences = tuple(
                Sentence(text[s:e], tuple(analyze(text[s:e], chunk.language)), vec)
                for (s, e), vec in zip(ev.sentence_spans, ev.sentence_vectors)
                if text[s:e].strip()
            )
            if sentences:
                passages.append(
                    Passage(sentences, ev.vector, chunk.date, chunk.language, chunk.title)
                )
    return records, passages


def _record(
    doc: dict[str, Any],
    chunks: list[StoredChunk],
    evidence: dict[int, PassageEvidence],
    analyze: Callable[[str, str | None], list[str]],
) -> DocumentRecord:
    return DocumentRecord(
        doc_id=doc["doc_id"],
        source=doc["source"],
        text=doc["text"],
        content_hash=doc["content_hash"],
        title=doc["title"],
        date=doc["date"],
        language=doc["language"],
        url=doc["url"],
        metadata=doc["metadata"],
        chunks=tuple(
            ChunkRecord(
                chunk_id=c.chunk_id,
                ordinal=c.ordinal,
                start=c.start,
                end=c.end,
                text=c.text,
                vector=evidence[c.row_id].vector,
                page=c.page,
                terms=analyze(c.text, c.language),
                sentences=evidence[c.row_id].sentence_spans,
                sentence_vectors=evidence[c.row_id].sentence_vectors,
            )
            for c in chunks
        ),
    )


def neighbours(vectors: np.ndarray, n: int) -> np.ndarray:
    """Row i: the indices of the `n` passages nearest passage i (itself included)."""
    out = np.empty((len(vectors), n), dtype=np.int64)
    for start in range(0, len(vectors), 1_000):
        sims = vectors[start : start + 1_000] @ vectors.T
        out[start : start + 1_000] = np.argpartition(-sims, n - 1, axis=1)[:, :n]
    return out


def _document(
    n: int, parts: list[tuple[list[Sentence], np.ndarray]], meta: Passage
) -> DocumentRecord:
    doc_id = f"synthetic-{n:07d}"
    chunks, pieces, offset = [], [], 0
    for ordinal, (sentences, vector) in enumerate(parts):
        spans, texts = [], []
        start = offset
        for s in sentences:
            spans.append((offset, offset + len(s.text)))
            texts.append(s.text)
            offset += len(s.text) + 1
        text = " ".join(texts)
        pieces.append(text)
        chunks.append(
            ChunkRecord(
                chunk_id=f"{doc_id}#{ordinal}",
                ordinal=ordinal,
                start=start,
                end=start + len(text),
                text=text,
                vector=vector,
                terms=[t for s in sentences for t in s.terms],
                sentences=tuple(spans),
                sentence_vectors=np.stack([s.vector for s in sentences]),
            )
        )
    return DocumentRecord(
        doc_id=doc_id,
        source=f"synthetic/{n // 1000:04d}.jsonl",
        text=" ".join(pieces),
        content_hash=hashlib.sha256(" ".join(pieces).encode("utf-8")).hexdigest(),
        title=f"{meta.title or ''} (synthetic {n})",
        date=meta.date,
        language=meta.language,
        chunks=tuple(chunks),
    )


def synthetic_documents(base: list[Passage], n_passages: int) -> Iterator[DocumentRecord]:
    """`n_passages` passages (fixed seed), `PASSAGES_PER_DOC` to a document. Each takes a random
    part of its sentences from a random real passage and the rest from one of that passage's
    63 nearest (one broad topic; random subsets, so two passages made around the same one
    share little text); its vector lies near the first passage's, towards its neighbours
    (`_near`)."""
    rng = np.random.default_rng(SEED)
    near = neighbours(np.stack([p.vector for p in base]), POOL)
    lengths = np.array([len(p.sentences) for p in base])
    for n in range(0, -(-n_passages // PASSAGES_PER_DOC)):
        count = min(PASSAGES_PER_DOC, n_passages - n * PASSAGES_PER_DOC)
        parts = []
        first = None
        for _ in range(count):
            i = int(rng.integers(len(base)))
            j = int(rng.choice([x for x in near[i] if x != i] or [i]))
            a, b = base[i], base[j]
            m = max(2, int(lengths[rng.integers(len(base))]))
            from_a = min(len(a.sentences), int(rng.integers(1, m)))
            from_b = min(len(b.sentences), m - from_a)
            sentences = _subset(a.sentences, from_a, rng) + _subset(b.sentences, from_b, rng)
            parts.append((sentences, _near(base, i, near, rng)))
            first = first or a
        assert first is not None
        yield _document(n, parts, first)


def _near(base: list[Passage], i: int, near: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A unit vector near real passage `i`'s, pulled a random 15-50% of the way towards two or
    three of its nearest neighbours: a new point on the topic's own surface (noise in random
    directions would put every new point at the same distance from its passage, and make each
    real passage the hub of a star no graph search can cover)."""
    others = [int(x) for x in near[i][:NEAREST] if x != i]
    picks = rng.choice(others, size=min(len(others), int(rng.integers(2, 4))), replace=False)
    weights = rng.dirichlet(np.ones(len(picks))) * rng.uniform(0.15, 0.5)
    vector = (1 - weights.sum()) * base[i].vector
    for j, w in zip(picks, weights):
        vector = vector + w * base[int(j)].vector
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _subset(sentences: tuple[Sentence, ...], n: int, rng: np.random.Generator) -> list[Sentence]:
    """`n` of `sentences`, drawn at random, in their order."""
    picked = sorted(rng.choice(len(sentences), size=n, replace=False)) if n else []
    return [sentences[i] for i in picked]


def build(
    base: Index,
    target: Path,
    n_passages: int,
    analyze: Callable[[str, str | None], list[str]],
    analyzer_id: str,
    log: Callable[[str], None] = print,
) -> None:
    """Make `target` an index of `n_passages`: the base's real ones, then synthetic ones;
    `analyze` (recorded as `analyzer_id`) makes the keyword terms."""
    started = time.perf_counter()
    records, real = read_base(base, analyze)
    log(f"  read {len(real):,} real passages in {time.perf_counter() - started:.0f} s")
    n_real = sum(len(r.chunks) for r in records)
    with Index.open(target, base.spec, create=True, ann=AnnOptions(threshold=None)) as ix:
        if ix.keyword_analyzer() != analyzer_id:
            ix.set_keyword_analyzer(analyzer_id)
        batch: list[DocumentRecord] = []
        in_batch = 0
        synthetic = synthetic_documents(real, max(0, n_passages - n_real))
        for doc in itertools.chain(records, synthetic):
            batch.append(doc)
            in_batch += len(doc.chunks)
            if in_batch >= BATCH_PASSAGES:
                _write_new(ix, batch)
                batch, in_batch = [], 0
                log(
                    f"  {ix.info()['counts']['chunks']:,} passages "
                    f"({time.perf_counter() - started:.0f} s)"
                )
        _write_new(ix, batch)
        log(
            f"  {ix.info()['counts']['chunks']:,} passages in {target} "
            f"({time.perf_counter() - started:.0f} s)"
        )


def _write_new(ix: Index, docs: list[DocumentRecord]) -> None:
    held = ix.content_hashes(d.doc_id for d in docs)
    new = [d for d in docs if held.get(d.doc_id) != d.content_hash]
    if new:
        ix.write(new)
