"""Child process for the background-upkeep crash tests (run as a script, never imported).

    python upkeep_child.py init DIR     600 passages (above the test threshold), no graph yet;
                                        then a write the keyword index misses (it is behind)
    python upkeep_child.py settle DIR   open DIR, print "ready", build the graph and catch the
                                        keyword index up, print "done SECONDS"

Needs the repository root on PYTHONPATH. NEWSRAG_INDEX_PAUSE_AT / NEWSRAG_INDEX_PAUSE_FILE
(index.crashpoints) freeze it at a step of the upkeep.
"""

from __future__ import annotations

import hashlib
import sys
import time

import numpy as np

from index import ChunkRecord, DocumentRecord, Index, IndexSpec, keywords
from index.ann import AnnOptions

DIM = 32
SPEC = IndexSpec(embedder_id="fake-hash-32", dim=DIM)
OPTIONS = AnnOptions(threshold=300, ef_search=64, m=16)
TOPICS = ["bahn streik", "seilbahn stadtrat", "torwart arminia", "kanzler wahl"]


def vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def document(n: int) -> DocumentRecord:
    doc_id = f"d{n:04d}"
    texts = [f"{TOPICS[n % 4]} eigen{n}x{j} passage" for j in range(5)]
    chunks = tuple(
        ChunkRecord(f"{doc_id}#{j}", j, j * 50, j * 50 + len(t), t, vector(t), terms=t.split())
        for j, t in enumerate(texts)
    )
    return DocumentRecord(doc_id, f"archive/{n % 3}.txt", " ".join(texts), doc_id, chunks=chunks)


def main(command: str, directory: str) -> None:
    if command == "init":
        with Index.open(directory, SPEC, create=True, ann=AnnOptions(threshold=None)) as ix:
            ix.write([document(n) for n in range(120)])

            def missed(*args: object, **kwargs: object) -> None:
                raise OSError("simulated: the keyword index misses this write")

            keywords.TantivyKeywords.apply = missed  # type: ignore[method-assign]
            keywords.TantivyKeywords.catch_up = missed  # type: ignore[method-assign]
            ix.write([document(n) for n in range(120, 140)], removals=["d0003", "d0004"])
        return
    with Index.open(directory, SPEC, ann=OPTIONS) as ix:
        print("ready", flush=True)
        started = time.perf_counter()
        ix.settle()
        print(f"done {time.perf_counter() - started:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
