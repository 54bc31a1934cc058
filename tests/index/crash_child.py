"""Child process for the crash tests (run as a script, never imported by pytest).

    python crash_child.py init DIR    build state A in DIR
    python crash_child.py write DIR   open DIR (state A), print "ready", write state B in one
                                      call, print "done SECONDS"

Needs the repository root on PYTHONPATH. The parent kills the `write` child at chosen
moments; see test_index_crash.py. Set
NEWSRAG_INDEX_PAUSE_AT / NEWSRAG_INDEX_PAUSE_FILE (index.crashpoints) to freeze it at a step.
"""

from __future__ import annotations

import hashlib
import sys
import time

import numpy as np

from index import ChunkRecord, DocumentRecord, Index, IndexSpec

DIM = 64
SPEC = IndexSpec(embedder_id="fake-hash-64", dim=DIM, chunking={"max_tokens": 50})
A_DOCS = 300  # d0000..d0299, 5 chunks each
REMOVED = range(60)  # removed in state B
UPDATED = range(60, 120)  # rewritten in state B, 8 chunks each
B_NEW = range(1000, 1400)  # added in state B, 15 chunks each


def vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def document(n: int, version: int, n_chunks: int) -> DocumentRecord:
    doc_id = f"d{n:04d}"
    filler = "lorem ipsum " * 20
    texts = [f"{doc_id} version {version} paragraph {j} {filler}" for j in range(n_chunks)]
    chunks = tuple(
        ChunkRecord(f"{doc_id}#{j}", j, j * 300, j * 300 + len(t), t, vector(t))
        for j, t in enumerate(texts)
    )
    return DocumentRecord(
        doc_id=doc_id,
        source=f"archive/{n % 7}.txt",
        text="\n".join(texts),
        content_hash=f"{doc_id}-v{version}",
        title=f"Artikel {n}",
        date=f"20{10 + n % 12}-0{1 + n % 9}",
        language="de" if n % 2 else "en",
        chunks=chunks,
    )


def state_a() -> list[DocumentRecord]:
    return [document(n, 1, 5) for n in range(A_DOCS)]


def state_b_write() -> tuple[list[DocumentRecord], list[str]]:
    upserts = [document(n, 2, 8) for n in UPDATED] + [document(n, 1, 15) for n in B_NEW]
    upserts += [document(n, 1, 5) for n in range(120, A_DOCS)]  # unchanged: skipped
    return upserts, [f"d{n:04d}" for n in REMOVED]


def main(command: str, directory: str) -> None:
    if command == "init":
        with Index.open(directory, SPEC, create=True) as ix:
            ix.write(state_a())
        return
    upserts, removals = state_b_write()
    with Index.open(directory, SPEC) as ix:
        print("ready", flush=True)
        started = time.perf_counter()
        ix.write(upserts, removals)
        print(f"done {time.perf_counter() - started:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
