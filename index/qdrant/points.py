"""What a Qdrant point of an index holds, independent of the client: point ids from our ids,
payloads of passages and documents, keyword terms as sparse vectors, dates as ranges, and
`Where`, the one filter shape the stores translate into their own.

Nothing here imports a Qdrant package, so it is tested and reused by every store.
"""

from __future__ import annotations

import base64
import bisect
import calendar
import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import signatures
from ..records import ChunkRecord, DocumentRecord, StoredChunk

DENSE = "dense"
"""Named vector of the passage embedding (inner product, as the local FAISS index)."""
SPARSE = "keywords"
"""Named sparse vector of the passage's analysed keyword terms (Qdrant applies the IDF)."""
SENTENCES = "sentences"
"""Named multivector of the passage's sentence embeddings (MAX_SIM), stored at fp16 precision."""

MANIFEST_ID = 0
"""The reserved point that holds the manifest (spec, format version, generation, analyzer)."""

PENDING = "pending"
"""A document's content hash while a write to it is in progress: a crash leaves the document
marked changed, so the next `rag index` (or `rag remove`) redoes it."""

KIND_CHUNK, KIND_DOC, KIND_MANIFEST = "chunk", "doc", "manifest"

_NAMESPACE = uuid.UUID("5b0b8f8e-2f57-4f0a-9d8c-6e2c1b7a9f10")
_DATE_HEAD = re.compile(r"^\d{4}")

# The local keyword index's BM25 constants (tantivy's, and FTS5's), so the stored term weights
# saturate and normalise as locally.
BM25_K1 = 1.2
BM25_B = 0.75
KEYWORD_NORMS = "byte4-lengths"
"""How the stored weights take a passage's length: as tantivy stores it (`stored_length`).
Recorded in the manifest point; a collection weighted otherwise is re-weighted on open."""


def _length_table() -> tuple[int, ...]:
    # One byte per passage length, as Lucene's SmallFloat.intToByte4 codes it (tantivy stores
    # its field norms so): codes below 24 are the length itself; above, 24 plus a float with a
    # 4-bit mantissa (3 bits and an implicit leading one), so lengths from 40 on are rounded
    # down to 4 significant bits.
    def decode(code: int) -> int:
        if code < 24:
            return code
        small = code - 24
        bits, shift = small & 7, (small >> 3) - 1
        return 24 + (bits if shift < 0 else (bits | 8) << shift)

    return tuple(decode(code) for code in range(256))


_LENGTHS = _length_table()


def stored_length(length: int) -> int:
    """A passage length as the local keyword index (tantivy) scores it: rounded down to the
    nearest length its one-byte code holds (exact up to 40: 41 -> 40, 150 -> 144)."""
    return _LENGTHS[bisect.bisect_right(_LENGTHS, max(0, length)) - 1]


def point_id(kind: str, key: str) -> int:
    """The deterministic point id of a chunk (key: chunk id) or document (key: doc id): the
    top 63 bits of uuid5(key), so it is also the int64 row id the pipeline sees. 0 is the
    manifest's."""
    value = uuid.uuid5(_NAMESPACE, f"{kind}\0{key}").int >> 65
    return value or 1


# -- keyword terms as sparse vectors ---------------------------------------------------------


def clean_term(term: str) -> str:
    """A term as the local FTS5 table sees it (letters and digits, case-folded)."""
    return "".join(ch for ch in term if ch.isalnum()).lower()


def term_index(term: str) -> int:
    """A term's sparse dimension: 32 bits of its hash (collisions merge two rare terms)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def term_count(terms: Sequence[str] | None) -> int:
    """A passage's length in terms (BM25's document length)."""
    return sum(1 for t in terms or () if clean_term(t))


def document_sparse(terms: Sequence[str] | None, avgdl: float) -> tuple[list[int], list[float]]:
    """A passage's terms as (indices, values): BM25's saturated, length-normalised term
    frequency; Qdrant's IDF modifier multiplies in the inverse document frequency. The length
    is the one tantivy stores (`stored_length`), so scores match the local index's."""
    counts = Counter(term_index(t) for t in (clean_term(t) for t in terms or ()) if t)
    if not counts:
        return [], []
    length = stored_length(sum(counts.values()))
    norm = BM25_K1 * (1 - BM25_B + BM25_B * length / max(avgdl, 1e-9))
    indices = sorted(counts)
    values = [counts[i] * (BM25_K1 + 1) / (counts[i] + norm) for i in indices]
    return indices, values


def query_sparse(terms: Sequence[str]) -> tuple[list[int], list[float]]:
    """A query's terms as (indices, values): each distinct term once (any may match)."""
    indices = sorted({term_index(t) for t in (clean_term(t) for t in terms) if t})
    return indices, [1.0] * len(indices)


# -- dates -----------------------------------------------------------------------------------


def date_span(date: str | None) -> tuple[str, str] | None:
    """A (possibly partial) document date as the first and last instant of the period it
    names, RFC 3339: "2022-06" -> 2022-06-01 .. 2022-06-30. None: undated (or unreadable),
    which no date filter matches, as locally."""
    if not isinstance(date, str) or not _DATE_HEAD.match(date):
        return None
    head = date[:10]
    start, end = head + "0000-01-01"[len(head) :], head + "9999-12-31"[len(head) :]
    try:
        year, month = int(end[:4]), int(end[5:7])
        last = calendar.monthrange(year, month)[1]
        end = f"{end[:8]}{min(int(end[8:10]), last):02d}"
        np.datetime64(start), np.datetime64(end)  # both must be real dates
    except ValueError:
        return None
    return f"{start}T00:00:00Z", f"{end}T00:00:00Z"


# -- the filter shape ------------------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """Points of one kind matching every given condition (None: no condition).

    Dates are bounds already resolved to days ("2022-06-01"): `date_from` keeps documents
    whose period ends on or after it, `date_to` those whose period starts on or before it.
    """

    kind: str = KIND_CHUNK
    doc_ids: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    languages: tuple[str, ...] | None = None
    date_from: str | None = None
    date_to: str | None = None
    ids: tuple[int, ...] | None = None


class RowSelection(np.ndarray):
    """Row ids (as `chunk_row_ids` promises) that also carry the `Where` they were selected
    by, so a search restricted to them sends Qdrant the filter, not the list of ids. Arrays
    derived from one (slices, copies) are plain ids again."""

    where: Where | None = None

    def __array_finalize__(self, obj: object) -> None:
        self.where = None


def selection(ids: np.ndarray, where: Where) -> RowSelection:
    out = np.asarray(ids, dtype=np.int64).view(RowSelection)
    out.where = where
    return out


# -- payloads --------------------------------------------------------------------------------


def document_payload(doc: DocumentRecord, content_hash: str, added_at: str) -> dict[str, Any]:
    return {
        "kind": KIND_DOC,
        "doc_id": doc.doc_id,
        "source": doc.source,
        "title": doc.title,
        "date": doc.date,
        "language": doc.language,
        "url": doc.url,
        "content_hash": content_hash,
        "text": doc.text,
        "metadata": dict(doc.metadata),
        "added_at": added_at,
        "n_chunks": len(doc.chunks),
    }


def chunk_payload(doc: DocumentRecord, chunk: ChunkRecord) -> dict[str, Any]:
    """Everything a `Hit` and a `Citation` need, and the fields the filters read."""
    payload: dict[str, Any] = {
        "kind": KIND_CHUNK,
        "chunk_id": chunk.chunk_id,
        "doc_id": doc.doc_id,
        "ordinal": int(chunk.ordinal),
        "start": int(chunk.start),
        "end": int(chunk.end),
        "page": None if chunk.page is None else int(chunk.page),
        "text": chunk.text,
        "source": doc.source,
        "title": doc.title,
        "date": doc.date,
        "date_source": _date_source(doc.metadata),
        "language": doc.language,
        "url": doc.url,
        "content_hash": doc.content_hash,
        "sentences": [[int(s), int(e)] for s, e in chunk.sentences],
        # The near-duplicate signature, as locally (`index.signatures`): dedupe compares these.
        "signature": base64.b64encode(signatures.signature(chunk.text)).decode("ascii"),
    }
    span = date_span(doc.date)
    if span is not None:
        payload["date_start"], payload["date_end"] = span
    return payload


def _date_source(metadata: Mapping[str, Any]) -> str | None:
    value = metadata.get("date_source")
    return value if isinstance(value, str) else None


CHUNK_FIELDS = (
    "chunk_id", "doc_id", "ordinal", "start", "end", "page", "text", "source", "title",
    "date", "language", "url", "date_source", "signature",
)  # fmt: skip


def stored_chunk(row_id: int, payload: Mapping[str, Any]) -> StoredChunk:
    return StoredChunk(
        chunk_id=payload["chunk_id"],
        doc_id=payload["doc_id"],
        ordinal=payload["ordinal"],
        start=payload["start"],
        end=payload["end"],
        page=payload.get("page"),
        text=payload["text"],
        source=payload["source"],
        title=payload.get("title"),
        date=payload.get("date"),
        language=payload.get("language"),
        url=payload.get("url"),
        row_id=int(row_id),
        date_source=payload.get("date_source"),
        signature=passage_signature(payload),
    )


def passage_signature(payload: Mapping[str, Any]) -> bytes | None:
    """The near-duplicate signature a passage's payload holds (None when it has none)."""
    value = payload.get("signature")
    return base64.b64decode(value) if isinstance(value, str) else None


def fp16(vectors: np.ndarray) -> np.ndarray:
    """Sentence vectors at the precision the local store keeps them (fp16), so reranking
    scores are the same on both backends."""
    return np.asarray(vectors, dtype=np.float32).astype(np.float16).astype(np.float32)
