"""Search latency: realistic German queries, one at a time, through `Engine.search`.

    python benchmarks/search.py ../shared/data/wikinews-de/articles.jsonl \\
        ../shared/data/10kGNAD/test.csv [--queries 200] [--k 10] [--index DIR]

Indexes the corpora (anything `rag.evaluation.load_corpus` reads) into a temporary index, or into
`--index DIR` and reuses it on later runs (unchanged documents cost no work). Queries are drawn
from random articles with a fixed seed: the article's title, or, where it has none, its first
sentence (at most 25 words). For each retrieval mode the Engine offers, a warm-up, then each query
alone; latency includes embedding the query. Prints p50/p95/mean/max in ms per mode, the share of
queries whose own article is among the hits (a sanity check that the queries are answerable, not a
quality benchmark), the index size, and how busy the machine was with other work.
"""

from __future__ import annotations

import argparse
import inspect
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
from machine import MachineLoad  # noqa: E402  (benchmarks/machine.py, beside this script)

from rag.types import Document, Hit

if TYPE_CHECKING:
    from rag.engine import Engine

Search = Callable[[str, int], list[Hit]]
MAX_QUERY_WORDS = 25
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9„\"])")
EMBED_ONLY = "(query embedding alone)"
# name -> (mode, rerank), for an Engine whose search takes them.
MODES = {
    "dense": ("dense", False),
    "keyword": ("keyword", False),
    "hybrid": ("hybrid", False),
    "hybrid+rerank": ("hybrid", True),
}


@dataclass(frozen=True)
class Query:
    text: str
    doc_id: str  # the article it was drawn from


def query_for(doc: Document) -> str:
    """The article's title, or its first sentence, cut to `MAX_QUERY_WORDS` words."""
    text = doc.title or _SENTENCE_END.split(doc.text.strip(), maxsplit=1)[0]
    return " ".join(text.split()[:MAX_QUERY_WORDS])


def draw_queries(docs: list[Document], n: int, seed: int) -> list[Query]:
    usable = [d for d in docs if d.text.strip()]
    picked = random.Random(seed).sample(usable, min(n, len(usable)))
    return [Query(query_for(d), d.doc_id) for d in picked]


def retrieval_modes(engine: Engine) -> dict[str, tuple[Search, str]]:
    """name -> (search function, stages it runs): one table row each."""
    if "mode" not in inspect.signature(engine.search).parameters:  # an Engine before modes
        return {"dense": (lambda q, k: engine.search(q, k=k), "dense")}
    return {
        name: (
            partial(engine.search, mode=mode, rerank=rerank),
            "+".join(engine.plan(mode, rerank).stages()),
        )
        for name, (mode, rerank) in MODES.items()
    }


def measure(
    searches: dict[str, Search], queries: list[Query], warmup: list[Query], k: int
) -> dict[str, dict[str, float]]:
    """Latency per search function. They take turns query by query, so that a burst of other
    work on the machine hits all of them alike."""
    for search in searches.values():
        for q in warmup:
            search(q.text, k)
    latencies: dict[str, list[float]] = {name: [] for name in searches}
    found = dict.fromkeys(searches, 0)
    for q in queries:
        for name, search in searches.items():
            t0 = time.perf_counter()
            hits = search(q.text, k)
            latencies[name].append((time.perf_counter() - t0) * 1000)
            found[name] += any(h.doc_id == q.doc_id for h in hits)
    return {
        name: _summary(np.array(ms), found[name] / len(queries)) for name, ms in latencies.items()
    }


def _summary(ms: np.ndarray, found: float) -> dict[str, float]:
    return {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "mean": float(ms.mean()),
        "max": float(ms.max()),
        "found": found,
    }


def _embed_only(engine: Engine) -> Search:
    def search(query: str, k: int) -> list[Hit]:
        engine.embedder.embed_queries([query])
        return []

    return search


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("corpus", type=Path, nargs="+", help="corpus files (JSONL, 10kGNAD CSV, ...)")
    ap.add_argument("--queries", type=int, default=200, help="timed queries")
    ap.add_argument("--k", type=int, default=10, help="hits per query")
    ap.add_argument("--warmup", type=int, default=10, help="untimed queries first, per mode")
    ap.add_argument("--seed", type=int, default=0, help="which articles give the queries")
    ap.add_argument("--index", type=Path, help="build here, or reuse; default: a temporary index")
    args = ap.parse_args()
    for path in args.corpus:
        if not path.is_file():
            sys.exit(f"no such corpus file: {path}")

    from rag.embedders import precision, resolve_runtime
    from rag.engine import Engine
    from rag.evaluation import load_corpus
    from rag.settings import load_settings

    print(f"load average at start: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    settings = load_settings(embedding={"show_progress": False})
    docs = [doc for path in args.corpus for doc in load_corpus(path)]
    drawn = draw_queries(docs, args.queries + args.warmup, args.seed)
    warmup, queries = drawn[: args.warmup], drawn[args.warmup :]

    with ExitStack() as stack:
        index_dir = args.index or Path(stack.enter_context(tempfile.TemporaryDirectory())) / "ix"
        engine = stack.enter_context(Engine.open(index_dir, settings))
        t0 = time.perf_counter()
        report = engine.add_documents(docs)
        built = time.perf_counter() - t0
        info = engine.info()

        during = MachineLoad()
        modes = retrieval_modes(engine)
        searches = {name: fn for name, (fn, _) in modes.items()}
        searches[EMBED_ONLY] = _embed_only(engine)
        rows = measure(searches, queries, warmup, args.k)
        embed_only = rows.pop(EMBED_ONLY)

    counts = info["counts"]
    where = index_dir if args.index else "(temporary)"
    print(
        f"index: {counts['documents']} documents, {counts['chunks']} chunks, "
        f"{info['size_bytes'] / 1e6:.0f} MB at {where}; {report.added + report.updated} "
        f"documents indexed, {report.unchanged} unchanged, in {built:.1f} s (with model load)"
    )
    print(
        f"embedder {engine.embedder.id}, runtime {resolve_runtime(settings.embedding.runtime)}, "
        f"precision {precision.resolve(settings.embedding.precision)}, threads "
        f"{settings.embedding.threads or 'all'}; {len(queries)} queries (seed {args.seed}), "
        f"k={args.k}, "
        f"{args.warmup} warm-up per mode, modes take turns query by query"
    )
    print(f"while timing: {during}")
    print()
    head = (
        f"{'mode':<15}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'max ms':>9}{'own article':>13}"
        "  stages"
    )
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        print(
            f"{name:<15}{r['p50']:>9.1f}{r['p95']:>9.1f}{r['mean']:>9.1f}{r['max']:>9.1f}"
            f"{r['found']:>13.1%}  {modes[name][1]}"
        )
    print(
        f"(query embedding alone: p50 {embed_only['p50']:.1f} ms, p95 {embed_only['p95']:.1f} ms)"
    )


if __name__ == "__main__":
    main()
