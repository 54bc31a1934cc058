"""Search latency: realistic German queries, one at a time, through `Engine.search`, on the real
index and (with --synthetic) on large ones made from it, with each stage's share.

    python benchmarks/search.py ../shared/data/wikinews-de/articles.jsonl \\
        ../shared/data/10kGNAD/test.csv [--queries 200] [--k 10] [--index DIR] \\
        [--synthetic 100000 --synthetic 1000000]

Indexes the corpora (anything `rag.evaluation.load_corpus` reads) into a temporary index, or into
`--index DIR` and reuses it on later runs (unchanged documents cost no work). `--synthetic N`
adds an index of N passages: the real ones plus passages joined from them (`synthetic.py`,
written through the index layer; kept beside --index as DIR.synthetic-N and reused), opened with
the settings' approximate-graph options and settled (graph built, keyword index current) before
timing. Queries are drawn from random articles with a fixed seed: the article's title, or,
where it has none, its first sentence (at most 25 words). For every index and retrieval mode, a
warm-up, then each query alone, all taking turns query by query; latency includes embedding the
query. Prints p50/p95/mean/max in ms per mode and index, the share of queries whose own article
is among the hits (a sanity check that the queries are answerable, not a quality benchmark),
each stage's time and share of the default mode (hybrid + rerank), the ratio of the largest
synthetic index's figures to the real one's, the approximate graph's recall@10/@50 against exact
search with the same query vectors, and how busy the machine was with other work.
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
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
from machine import MachineLoad  # noqa: E402  (benchmarks/machine.py, beside this script)

from rag.types import Document, Hit

if TYPE_CHECKING:
    from index import Index
    from rag.engine import Engine

Search = Callable[[str, int], list[Hit]]
MAX_QUERY_WORDS = 25
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9„\"])")
EMBED_ONLY = "(query embedding alone)"
DEFAULT_MODE = "hybrid+rerank"
# name -> (mode, rerank), for an Engine whose search takes them.
MODES = {
    "dense": ("dense", False),
    "keyword": ("keyword", False),
    "hybrid": ("hybrid", False),
    DEFAULT_MODE: ("hybrid", True),
}
STAGES = ("query embedding", "dense", "keyword", "fusion", "rerank", "dedupe", "reads")


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


# -- stage timing -------------------------------------------------------------------------------


@dataclass
class StageClock:
    """Time spent in each stage of the search that is running, per search."""

    running: str | None = None
    current: dict[str, float] = field(default_factory=dict)
    records: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def timed(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.running is not None:
                    elapsed = (time.perf_counter() - t0) * 1000
                    self.current[stage] = self.current.get(stage, 0.0) + elapsed

        return wrapper

    def around(self, name: str, search: Search) -> Search:
        def wrapper(query: str, k: int) -> list[Hit]:
            self.running, self.current = name, {}
            t0 = time.perf_counter()
            try:
                return search(query, k)
            finally:
                self.current["total"] = (time.perf_counter() - t0) * 1000
                self.records.setdefault(name, []).append(self.current)
                self.running = None

        return wrapper


def instrument(clock: StageClock, engine: Engine) -> None:
    """Time the stages of `engine`'s searches: wrap its index's reads and searches, its
    embedder, the fusion and dedupe functions the pipeline calls, and its reranker."""
    from rag.retrieval import pipeline

    index = engine._readable_index()  # the benchmark looks inside; the pipeline cannot tell
    for attr, stage in (
        ("search", "dense"),
        ("keyword_search", "keyword"),
        ("chunks", "reads"),
        ("evidence", "reads"),
    ):
        setattr(index, attr, clock.timed(stage, getattr(index, attr)))
    if not getattr(engine.embedder, "_timed", False):
        embed = engine.embedder.embed_queries
        engine.embedder.embed_queries = clock.timed("query embedding", embed)
        engine.embedder._timed = True
    if not getattr(pipeline, "_timed", False):
        pipeline.rrf = clock.timed("fusion", pipeline.rrf)
        pipeline.collapse = clock.timed("dedupe", pipeline.collapse)
        pipeline._timed = True
    reranker = engine._retrieval().reranker()
    reranker.rerank = clock.timed("rerank", reranker.rerank)


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


# -- the approximate graph against exact search -----------------------------------------------


def graph_recall(index: Index, vectors: np.ndarray) -> dict[str, float]:
    """recall@10 and @50 of `index.search` (graph) against `index.exact_search`, and the p50
    ms of each at k = 50 (the depth retrieval asks for), one query at a time."""
    out: dict[str, float] = {}
    for k in (10, 50):
        got, exact = index.search(vectors, k), index.exact_search(vectors, k)
        out[f"recall@{k}"] = float(
            np.mean([len({r for r, _ in a} & {r for r, _ in b}) / k for a, b in zip(got, exact)])
        )
    for name, fn in (("graph ms", index.search), ("exact ms", index.exact_search)):
        times = []
        for v in vectors:
            t0 = time.perf_counter()
            fn(v, 50)
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = float(np.percentile(times, 50))
    return out


def ef_sweep(where: Path, settings: Any, vectors: np.ndarray) -> dict[int, dict[str, float]]:
    """recall@10/@50 and p50 ms at k = 50 of the saved graph at `where` for several beam
    widths (`index.ann_ef_search`), to show what the default buys."""
    from index import Index

    out = {}
    for ef in (64, 256, 1024, 2048):  # a large graph searches with at least n / 1000
        options = replace(settings.index.ann_options(), ef_search=ef)
        with Index.open(where, ann=options) as ix:
            out[ef] = graph_recall(ix, vectors)
    return out


def warm_page_cache(directories: list[Path]) -> str:
    """Read the indexes' files once, as a server's page cache holds them after a while, when
    they fit in half the available memory: cold random reads of a large SQLite file would
    otherwise dominate the first thousands of searches. Says what it did."""
    files = [p for d in directories for p in d.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    available = _mem_available()
    if available is None or size > available / 2:
        return f"page cache not warmed ({size / 1e9:.1f} GB of index files, " + (
            "memory unknown)" if available is None else f"{available / 1e9:.1f} GB available)"
        )
    t0 = time.perf_counter()
    for path in files:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    seconds = time.perf_counter() - t0
    return f"page cache warmed: {size / 1e9:.1f} GB of index files read in {seconds:.0f} s"


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


# -- main ------------------------------------------------------------------------------------


def _label(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1_000_000 else f"{n / 1000:.0f}k"


def _synthetic_index(
    base: Engine, n: int, where: Path, analyzer: Any, settings: Any
) -> tuple[Engine, str]:
    """An Engine on the synthetic index of `n` passages at `where`: built unless complete,
    then settled (graph built on every core, keyword index current) before the Engine opens."""
    from synthetic import build  # noqa: E402  (benchmarks/synthetic.py)

    from index import Index
    from index.ann import AnnOptions
    from rag.engine import Engine

    note = []
    complete = Index.exists(where)
    if complete:
        with Index.open(where, ann=AnnOptions(threshold=None)) as existing:
            complete = existing.info()["counts"]["chunks"] >= n
    if not complete:
        print(f"building the synthetic index of {n:,} passages at {where} ...", flush=True)
        t0 = time.perf_counter()
        build(base._readable_index(), where, n, analyzer.document_terms, analyzer.id)
        note.append(f"built in {time.perf_counter() - t0:.0f} s")
    options = replace(settings.index.ann_options(), build_threads=os.cpu_count() or 1)
    t0 = time.perf_counter()
    with Index.open(where, ann=options) as ix:
        ix.settle()
    note.append(f"graph and keyword index ready after {time.perf_counter() - t0:.0f} s")
    return Engine.open(where, settings, embedder=base.embedder), ", ".join(note)


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
    ap.add_argument(
        "--synthetic",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also an index of N passages made from the real ones (repeatable); kept as "
        "INDEX.synthetic-N beside --index",
    )
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
        temp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        index_dir = args.index or temp / "ix"
        engine = stack.enter_context(Engine.open(index_dir, settings))
        t0 = time.perf_counter()
        report = engine.add_documents(docs)
        built = time.perf_counter() - t0
        engines: dict[str, Engine] = {}
        notes: list[str] = []
        base_info = engine.info()
        engines[_label(base_info["counts"]["chunks"])] = engine
        where = args.index or temp / "ix"
        for n in sorted(set(args.synthetic)):
            target = where.with_name(f"{where.name}.synthetic-{n}")
            syn, note = _synthetic_index(engine, n, target, engine.analyzer, settings)
            stack.enter_context(syn)
            engines[_label(n)] = syn
            notes.append(f"{_label(n)}: {target}, {note}")
        settled = {}
        for label, eng in engines.items():
            t1 = time.perf_counter()
            eng._readable_index().settle()
            settled[label] = time.perf_counter() - t1
        infos = {label: eng.info() for label, eng in engines.items()}
        warmed = warm_page_cache([Path(info["path"]) for info in infos.values()])

        clock = StageClock()
        modes = retrieval_modes(engine)
        searches: dict[str, Search] = {}
        for label, eng in engines.items():
            instrument(clock, eng)
            for name, (fn, _) in retrieval_modes(eng).items():
                searches[f"{label} {name}"] = clock.around(f"{label} {name}", fn)
        searches[EMBED_ONLY] = _embed_only(engine)

        during = MachineLoad()
        rows = measure(searches, queries, warmup, args.k)
        timing_load = str(during)
        embed_only = rows.pop(EMBED_ONLY)
        vectors = np.asarray(engine.embedder.embed_queries([q.text for q in queries]))
        recalls = {
            label: graph_recall(eng._readable_index(), vectors)
            for label, eng in engines.items()
            if infos[label]["search"]["vectors"] == "approximate"
        }
        sweep = {}
        if recalls:
            largest = list(recalls)[-1]
            sweep = {largest: ef_sweep(Path(infos[largest]["path"]), settings, vectors)}

    counts = base_info["counts"]
    where_text = index_dir if args.index else "(temporary)"
    print(
        f"index: {counts['documents']} documents, {counts['chunks']} chunks, "
        f"{base_info['size_bytes'] / 1e6:.0f} MB at {where_text}; {report.added + report.updated} "
        f"documents indexed, {report.unchanged} unchanged, in {built:.1f} s (with model load)"
    )
    for note in notes:
        print(f"synthetic index {note}")
    for label, info in infos.items():
        s = info["search"]
        print(
            f"  {label}: {info['counts']['chunks']:,} passages, {info['size_bytes'] / 1e9:.2f} GB; "
            f"vectors {s['vectors']}"
            + (f" (graph of {s['graph_vectors']:,}, {s['graph_pending']} pending)"
               if s["vectors"] == "approximate" else "")
            + f", keywords {s['keywords']}; settled in {settled[label]:.1f} s"
        )  # fmt: skip
    runtime = resolve_runtime(settings.embedding.runtime)
    print(
        f"embedder {engine.embedder.id}, runtime {runtime}, "
        f"precision {precision.for_runtime(settings.embedding, runtime)}, threads "
        f"{settings.embedding.threads or 'all'}; {len(queries)} queries (seed {args.seed}), "
        f"k={args.k}, {args.warmup} warm-up per mode; indexes and modes take turns query by query"
    )
    print(warmed)
    print(f"while timing: {timing_load}")
    print()
    _print_latency(rows, modes, list(engines))
    print(
        f"(query embedding alone: p50 {embed_only['p50']:.1f} ms, p95 {embed_only['p95']:.1f} ms)"
    )
    print()
    _print_stages(clock, list(engines))
    _print_ratio(rows, list(engines))
    _print_recall(recalls, rows)
    for label, by_ef in sweep.items():
        print(
            f"{label}, beam width (index.ann_ef_search; default {settings.index.ann_ef_search}, "
            "at least graph size / 1000):"
        )
        for ef, r in by_ef.items():
            print(
                f"  ef {ef:>4}: recall@10 {r['recall@10']:.3f}, recall@50 {r['recall@50']:.3f}, "
                f"k=50 p50 {r['graph ms']:.2f} ms"
            )


def _print_latency(rows: dict[str, dict[str, float]], modes: dict, labels: list[str]) -> None:
    head = (
        f"{'index':<7}{'mode':<15}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'max ms':>9}"
        f"{'own article':>13}  stages"
    )
    print(head)
    print("-" * len(head))
    for label in labels:
        for name in modes:
            r = rows[f"{label} {name}"]
            print(
                f"{label:<7}{name:<15}{r['p50']:>9.1f}{r['p95']:>9.1f}{r['mean']:>9.1f}"
                f"{r['max']:>9.1f}{r['found']:>13.1%}  {modes[name][1]}"
            )


def _print_stages(clock: StageClock, labels: list[str]) -> None:
    print(f"where the time goes in {DEFAULT_MODE} (ms per search; share of the mean total):")
    head = f"{'index':<7}{'stage':<17}{'p50':>8}{'p95':>8}{'mean':>8}{'share':>8}"
    print(head)
    print("-" * len(head))
    for label in labels:
        records = clock.records.get(f"{label} {DEFAULT_MODE}", [])
        if not records:
            continue
        total = np.array([r["total"] for r in records])
        accounted = np.zeros(len(records))
        for stage in STAGES:
            ms = np.array([r.get(stage, 0.0) for r in records])
            accounted += ms
            _stage_row(label, stage, ms, total.mean())
        _stage_row(label, "other", np.maximum(total - accounted, 0), total.mean())
        _stage_row(label, "total", total, total.mean())


def _stage_row(label: str, stage: str, ms: np.ndarray, mean_total: float) -> None:
    print(
        f"{label:<7}{stage:<17}{np.percentile(ms, 50):>8.2f}{np.percentile(ms, 95):>8.2f}"
        f"{ms.mean():>8.2f}{ms.mean() / mean_total:>8.0%}"
    )


def _print_ratio(rows: dict[str, dict[str, float]], labels: list[str]) -> None:
    if len(labels) < 2:
        return
    base = labels[0]
    print()
    for label in labels[1:]:
        for name in MODES:
            big, small = rows[f"{label} {name}"], rows[f"{base} {name}"]
            print(
                f"{name} {label} / {base}: p50 {big['p50'] / small['p50']:.2f}x "
                f"({big['p50']:.1f} / {small['p50']:.1f} ms), p95 "
                f"{big['p95'] / small['p95']:.2f}x ({big['p95']:.1f} / {small['p95']:.1f} ms)"
            )


def _print_recall(recalls: dict[str, dict[str, float]], rows: dict[str, dict[str, float]]) -> None:
    if not recalls:
        return
    print()
    print("approximate graph against exact search (same query vectors, one query at a time):")
    for label, r in recalls.items():
        dense = rows[f"{label} dense"]
        print(
            f"{label}: recall@10 {r['recall@10']:.3f}, recall@50 {r['recall@50']:.3f}; vector "
            f"search k=50 p50 {r['graph ms']:.2f} ms (exact {r['exact ms']:.2f} ms); dense mode "
            f"with query embedding p50 {dense['p50']:.1f} ms, p95 {dense['p95']:.1f} ms"
        )


if __name__ == "__main__":
    main()
