"""Copy an index into another backend without re-embedding: documents, passages, their
vectors and sentence vectors, and the spec travel as stored; keyword terms are re-made by the
caller's analyzer (the same one made them: analysis is deterministic and needs no model).

`rag migrate` moves a local index directory into a Qdrant collection with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backend import IndexBackend
from .manifest import check_spec
from .records import ChunkRecord, DocumentRecord, PassageEvidence, StoredChunk

Analyze = Callable[[Sequence[tuple[str, str | None]]], list[Sequence[str]]]
"""(passage text, document language) pairs -> each passage's keyword terms."""
Progress = Callable[[int, int], None]
"""on_progress(documents done, documents in all)."""


@dataclass(frozen=True)
class TransferReport:
    """What a copy did: documents and passages written, and documents the target already
    held unchanged (a second run after an interruption copies only the rest)."""

    documents: int
    copied: int
    unchanged: int
    passages: int


def copy_index(
    source: IndexBackend,
    target: IndexBackend,
    analyzer_id: str,
    analyze: Analyze,
    *,
    batch: int = 64,
    on_progress: Progress | None = None,
) -> TransferReport:
    """Write every document of `source` into `target` (which must have the same spec), in
    batches of `batch` documents; idempotent."""
    check_spec(Path(str(target.info()["path"])), target.spec, source.spec)
    if target.keyword_analyzer() != analyzer_id:
        target.reanalyze_keywords(analyzer_id, analyze)  # terms of what it holds, analyzer noted
    docs = source.documents()
    copied = unchanged = passages = 0
    for start in range(0, len(docs), batch):
        group = docs[start : start + batch]
        held = target.content_hashes(d["doc_id"] for d in group)
        records = _records(source, group, analyze, held)
        result = target.write(upserts=records) if records else None
        copied += 0 if result is None else result.added + result.updated
        unchanged += len(group) - len(records) + (0 if result is None else result.unchanged)
        passages += 0 if result is None else result.chunks_added
        if on_progress is not None:
            on_progress(min(start + batch, len(docs)), len(docs))
    return TransferReport(len(docs), copied, unchanged, passages)


def _records(
    source: IndexBackend, group: list[dict[str, Any]], analyze: Analyze, held: dict[str, str]
) -> list[DocumentRecord]:
    """The documents of `group` the target lacks (or holds in another version), as records."""
    wanted = {d["doc_id"] for d in group}
    full = {d: source.document(d) for d in sorted(wanted)}
    todo = {d for d, doc in full.items() if doc and held.get(d) != doc["content_hash"]}
    if not todo:
        return []
    sources = sorted({full[d]["source"] for d in todo})
    rows = source.chunk_row_ids(sources=sources)
    chunks = [c for c in source.chunks([int(r) for r in rows]) if c.doc_id in todo]
    evidence = source.evidence([c.row_id for c in chunks])
    terms = analyze([(c.text, c.language) for c in chunks])
    by_doc: dict[str, list[ChunkRecord]] = {d: [] for d in todo}
    for chunk, t in zip(chunks, terms):
        by_doc[chunk.doc_id].append(_chunk_record(chunk, evidence[chunk.row_id], t))
    return [_document_record(full[d], by_doc[d]) for d in sorted(todo)]


def _chunk_record(chunk: StoredChunk, ev: PassageEvidence, terms: Sequence[str]) -> ChunkRecord:
    return ChunkRecord(
        chunk_id=chunk.chunk_id,
        ordinal=chunk.ordinal,
        start=chunk.start,
        end=chunk.end,
        text=chunk.text,
        vector=ev.vector,
        page=chunk.page,
        terms=list(terms),
        sentences=ev.sentence_spans,
        sentence_vectors=ev.sentence_vectors,
    )


def _document_record(doc: dict[str, Any], chunks: list[ChunkRecord]) -> DocumentRecord:
    return DocumentRecord(
        doc_id=doc["doc_id"],
        source=doc["source"],
        text=doc["text"],
        content_hash=doc["content_hash"],
        title=doc.get("title"),
        date=doc.get("date"),
        language=doc.get("language"),
        url=doc.get("url"),
        metadata=doc.get("metadata") or {},
        chunks=tuple(sorted(chunks, key=lambda c: c.ordinal)),
    )
