"""Qdrant sizing from measurement: bytes per passage for each vector kind and the payload,
write throughput, index build time and query latency, on qdrant-edge (Qdrant's engine,
in-process, one shard) grown from a real local index's passages.

    python benchmarks/qdrant_sizing.py --from WIKINEWS_INDEX_DIR --work DIR \\
        [--passages 100000] [--quantization none|int8] [--queries 100]

The source index's passages (text, payload, keyword terms, sentence spans and vectors) are
written again and again until `--passages` exist, each copy's vectors nudged by a little noise
and renormalised (so the HNSW graph does not see exact duplicates) and with ids of its own.
Then the shard is optimised (HNSW built, segments made immutable) and the bytes on disk of
each part are divided by the number of passages. Queries are the source documents' titles,
embedded once; latencies are single queries, retrieval only, under whatever load the machine
has (printed). These figures are what docs/scale.md extrapolates from.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAG_GENERATION__BACKEND", "none")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
from machine import MachineLoad  # noqa: E402

from index import Index  # noqa: E402
from index.qdrant import QdrantIndex  # noqa: E402
from index.records import ChunkRecord, DocumentRecord  # noqa: E402
from rag.embedders import create_embedder  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.retrieval.analysis import Analyzer  # noqa: E402
from rag.settings import load_settings  # noqa: E402

PARTS = {
    "dense vectors (fp32)": "vector_storage-dense",
    "dense HNSW graph": "vector_index-dense",
    "dense int8 copy": "quantized",
    "sentence multivectors (fp16)": "vector_storage-sentences",
    "keyword sparse vectors": "vector_storage-keywords",
    "keyword inverted index": "vector_index-keywords",
    "payload": "payload_storage",
    "payload indexes": "payload_index",
}


def source_documents(path: Path, analyzer: Analyzer) -> list[DocumentRecord]:
    """Every document of a local index as records, with vectors and terms as stored."""
    out = []
    with Index.open(path) as index:
        rows = [int(r) for r in index.chunk_row_ids()]
        chunks = index.chunks(rows)
        evidence = index.evidence(rows)
        by_doc: dict[str, list[ChunkRecord]] = defaultdict(list)
        for c in chunks:
            ev = evidence[c.row_id]
            by_doc[c.doc_id].append(
                ChunkRecord(
                    chunk_id=c.chunk_id,
                    ordinal=c.ordinal,
                    start=c.start,
                    end=c.end,
                    text=c.text,
                    vector=ev.vector,
                    page=c.page,
                    terms=analyzer.document_terms(c.text, c.language),
                    sentences=ev.sentence_spans,
                    sentence_vectors=ev.sentence_vectors,
                )  # fmt: skip
            )
        for doc_id, records in by_doc.items():
            d = index.document(doc_id)
            out.append(
                DocumentRecord(
                    doc_id=doc_id,
                    source=d["source"],
                    text=d["text"],
                    content_hash=d["content_hash"],
                    title=d["title"],
                    date=d["date"],
                    language=d["language"],
                    url=d["url"],
                    metadata=d["metadata"],
                    chunks=tuple(sorted(records, key=lambda c: c.ordinal)),
                )  # fmt: skip
            )
    return out


def nudged(doc: DocumentRecord, copy: int, rng: np.random.Generator) -> DocumentRecord:
    if copy == 0:
        return doc

    def move(v: np.ndarray) -> np.ndarray:
        w = v + rng.normal(0, 0.02, v.shape).astype(np.float32)
        return (w / np.linalg.norm(w, axis=-1, keepdims=True)).astype(np.float32)

    chunks = tuple(
        replace(
            c,
            chunk_id=f"{c.chunk_id}~{copy}",
            vector=move(c.vector),
            sentence_vectors=None if c.sentence_vectors is None else move(c.sentence_vectors),
        )
        for c in doc.chunks
    )
    return replace(doc, doc_id=f"{doc.doc_id}~{copy}", content_hash=f"{doc.content_hash}~{copy}",
                   source=f"{doc.source}~{copy}", chunks=chunks)  # fmt: skip


def disk_bytes(root: Path, marker: str) -> int:
    """Bytes actually allocated (not apparent size) under every path whose name holds marker;
    the int8 copy (`quantized.*`, kept inside the vector storage) counts only as its own part."""
    total = 0
    for p in root.rglob("*"):
        parts = p.relative_to(root).parts
        if marker != "quantized" and p.name.startswith("quantized"):
            continue
        if p.is_file() and any(marker in part for part in parts):
            total += p.stat().st_blocks * 512
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--quantization", choices=["none", "int8"], default="none")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64, help="documents per write")
    args = parser.parse_args()

    load = MachineLoad()
    analyzer = Analyzer()
    docs = source_documents(args.source, analyzer)
    per_copy = sum(len(d.chunks) for d in docs)
    copies = max(1, -(-args.passages // per_copy))
    with Index.open(args.source) as index:
        spec = index.spec
    target = args.work / f"edge-{args.passages}-{args.quantization}"
    shutil.rmtree(target, ignore_errors=True)
    rng = np.random.default_rng(0)
    written = 0
    started = time.perf_counter()
    with QdrantIndex.open(
        f"edge:{target}", spec, create=True, quantization=args.quantization
    ) as ix:
        ix.reanalyze_keywords(analyzer.id, lambda rows: [])
        for copy in range(copies):
            batch = [nudged(d, copy, rng) for d in docs]
            for i in range(0, len(batch), args.batch):
                written += ix.write(upserts=batch[i : i + args.batch]).chunks_added
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        ix._store.shard.optimize()  # noqa: SLF001 - build HNSW, make segments immutable
        optimize_s = time.perf_counter() - started
        counts = ix.info()["counts"]
    print(f"{counts['chunks']} passages, {counts['documents']} documents ({copies} copies of "
          f"{per_copy} passages)")  # fmt: skip
    print(f"write: {write_s:.0f} s, {written / write_s:.0f} passages/s (payload, 3 vector kinds)")
    print(f"optimize (HNSW build, immutable segments): {optimize_s:.0f} s, "
          f"{counts['chunks'] / optimize_s:.0f} passages/s")  # fmt: skip
    n = counts["chunks"]
    print("bytes on disk per passage (documents' points included in payload):")
    total = 0
    for label, marker in PARTS.items():
        b = disk_bytes(target / "segments", marker)
        total += b
        print(f"  {label:<30} {b / n:>9,.0f}")
    everything = sum(p.stat().st_blocks * 512 for p in target.rglob("*") if p.is_file())
    print(f"  {'all files (WAL, trackers, ...)':<30} {everything / n:>9,.0f}")

    settings = load_settings(embedding={"show_progress": False})
    embedder = create_embedder(settings.embedding)
    titles = [d.title for d in docs if d.title][: args.queries]
    vectors = embedder.embed_queries(titles)
    cache = dict(zip(titles, vectors))

    class Cached:
        id, dim, prompts, max_tokens = embedder.id, embedder.dim, embedder.prompts, 512

        def embed_queries(self, texts):  # noqa: ANN001, ANN202
            return np.stack([cache[t] for t in texts])

    index = QdrantIndex.open(f"edge:{target}")
    with Engine(target, settings, Cached(), index) as engine:
        for mode, rerank in (
            ("dense", False),
            ("keyword", False),
            ("hybrid", False),
            ("hybrid", True),
        ):
            engine.search(titles[0], k=5, mode=mode, rerank=rerank)
            spent = []
            for t in titles:
                t0 = time.perf_counter()
                engine.search(t, k=5, mode=mode, rerank=rerank)
                spent.append((time.perf_counter() - t0) * 1000)
            spent.sort()
            name = f"{mode}{'+rerank' if rerank else ''}"
            print(f"latency {name:<14} p50 {statistics.median(spent):6.1f} ms  "
                  f"p95 {spent[int(0.95 * (len(spent) - 1))]:6.1f} ms")  # fmt: skip
    print("machine:", load)


if __name__ == "__main__":
    main()
