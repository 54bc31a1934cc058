"""Qdrant against the local index: the same retrieval on XQuAD, with and without filters, and
whether fusion and reranking inside Qdrant (Query API prefetch + RRF, MAX_SIM over the
sentence multivector) are worth it against ours.

    python benchmarks/qdrant_parity.py ../shared/data/xquad/xquad.de.json \\
        --questions ../shared/data/xquad/xquad.en.json \\
        [--base WIKINEWS_INDEX_DIR] --work DIR [--latency 100] [--json]

(`--local-mode` adds qdrant-client's local mode: slow, see `targets`.)

Every XQuAD paragraph becomes a document with a made-up date (its article's number spread over
2004-2023, so date filters cut across the set) and is added to a local index in `--work`
(with `--base`, to a copy of that index: e.g. Wikinews as distractors, real dates). The local
index is copied without re-embedding (`index.transfer.copy_index`, what `rag migrate` runs)
to qdrant-client's local mode and to qdrant-edge (Qdrant's engine, in-process). Then, for the
paragraphs' own questions and each `--questions` file, per backend and filter (none; a date
range of the gold article's year +- 3; the sources of every other article plus the gold
one's), each retriever's R@1/R@5/R@10/MRR@10 and how often the top 5 documents are identical
to the local backend's. Engine-side variants run on qdrant-edge only (local mode computes in
Python, so its timings say nothing about a server). Latencies are single queries after
warm-up, query embeddings cached (retrieval only), and are printed with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAG_GENERATION__BACKEND", "none")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
from machine import MachineLoad  # noqa: E402  (benchmarks/machine.py, beside this script)

from index import Index  # noqa: E402
from index.qdrant import QdrantIndex  # noqa: E402
from index.qdrant.points import Where, query_sparse  # noqa: E402
from index.store import date_bound  # noqa: E402
from index.transfer import copy_index  # noqa: E402
from rag.embedders import create_embedder  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.evaluation import RETRIEVERS, Question, load_squad, metrics  # noqa: E402
from rag.retrieval.fusion import Candidate  # noqa: E402
from rag.retrieval.rerank import SentenceEvidenceReranker  # noqa: E402
from rag.settings import load_settings  # noqa: E402
from rag.types import Document, Filters  # noqa: E402


def targets(work: Path, local_mode: bool) -> dict[str, str]:
    """The Qdrant copies compared with the local index: qdrant-edge always; qdrant-client's
    local mode on request (it computes in Python: a keyword query over 3,000 passages takes
    0.2 s, so a full run takes hours; `rag eval` through it is the cheaper check)."""
    out = {"qdrant-edge": f"edge:{work / 'edge'}"}
    if local_mode:
        out = {"qdrant-local-mode": str(work / "qlocal"), **out}
    return out


FILTERS = ("none", "date", "source")


class CachedEmbedder:
    """The real embedder; each query is embedded once for all backends and variants."""

    def __init__(self, inner: Any) -> None:
        self.inner, self._cache = inner, {}
        self.id, self.dim, self.prompts = inner.id, inner.dim, inner.prompts
        self.max_tokens = inner.max_tokens

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.embed_queries(missing)))
        return np.stack([self._cache[t] for t in texts])

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_passages(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


def article_of(doc_id: str) -> int:
    return int(doc_id.split("-")[1])  # "squad-A-P"


def dated(docs: list[Document]) -> list[Document]:
    """XQuAD paragraphs with a date per article, spread over 2004-2023."""
    return [
        replace(
            d, date=f"{2004 + article_of(d.doc_id) * 19 // 47}-{article_of(d.doc_id) % 12 + 1:02d}"
        )
        for d in docs
    ]


def filters_for(variant: str, article: int, docs: list[Document]) -> Filters | None:
    if variant == "none":
        return None
    if variant == "date":
        year = 2004 + article * 19 // 47
        return Filters(date_from=str(year - 3), date_to=str(year + 3))
    sources = tuple(
        d.source for d in docs if article_of(d.doc_id) % 2 == 0 or article_of(d.doc_id) == article
    )
    return Filters(sources=sources)


# -- building the three indexes -------------------------------------------------------------


def build(
    work: Path, base: Path | None, docs: list[Document], settings, embedder, copies: dict[str, str]
) -> dict[str, Any]:
    local = work / "local"
    timings: dict[str, Any] = {}
    if not Index.exists(local):
        if base is not None:
            shutil.copytree(base, local, ignore=shutil.ignore_patterns("write.lock"))
        started = time.perf_counter()
        with Engine.open(local, settings, embedder=embedder) as engine:
            engine.add_documents(docs)
        timings["embed_xquad_s"] = round(time.perf_counter() - started, 1)
    with Index.open(local) as source:
        from rag.retrieval.analysis import Analyzer

        analyzer = Analyzer()
        analyze = lambda rows: [analyzer.document_terms(t, lang) for t, lang in rows]  # noqa: E731
        for name, location in copies.items():
            started = time.perf_counter()
            with QdrantIndex.open(location, source.spec, create=True) as target:
                report = copy_index(source, target, analyzer.id, analyze, batch=128)
            seconds = time.perf_counter() - started
            timings[f"migrate_{name}"] = {
                "seconds": round(seconds, 1),
                "copied": report.copied,
                "passages": report.passages,
                "passages_per_s": round(report.passages / seconds, 1) if report.copied else None,
            }
        timings["counts"] = source.info()["counts"]
    return timings


def open_all(
    work: Path, settings, embedder, copies: dict[str, str]
) -> dict[str, tuple[Engine, Any]]:
    out: dict[str, tuple[Engine, Any]] = {}
    out["local"] = (Engine.open(work / "local", settings, embedder=embedder), None)
    for name, location in copies.items():
        index = QdrantIndex.open(location)
        out[name] = (Engine(work / name, settings, embedder, index), index)
    return out


# -- quality ----------------------------------------------------------------------------------


def ranks_of(results: Sequence[Sequence[str]], golds: Sequence[str]) -> list[int | None]:
    """Rank of the gold document among each list of doc ids (each document once), top 10."""
    out: list[int | None] = []
    for doc_ids, gold in zip(results, golds):
        seen = list(dict.fromkeys(doc_ids))
        out.append(seen.index(gold) + 1 if gold in seen[:10] else None)
    return out


def by_article(items: list[Question]) -> dict[int, list[Question]]:
    groups: dict[int, list[Question]] = {}
    for q in items:
        groups.setdefault(article_of(q.gold_doc_id), []).append(q)
    return groups


def pipeline_runs(
    engine: Engine, items: list[Question], docs: list[Document], variant: str
) -> dict[str, list[list[str]]]:
    """Per retriever, per question (in `items` order), the doc ids of the hits."""
    order = {q.qid: i for i, q in enumerate(items)}
    out: dict[str, list[list[str]]] = {}
    for name, mode, rerank in RETRIEVERS:
        found: list[list[str]] = [[] for _ in items]
        for article, group in by_article(items).items():
            hits = engine.search_batch(
                [q.text for q in group], 30, filters_for(variant, article, docs),
                mode=mode, rerank=rerank, dedupe=False,
            )  # fmt: skip
            for q, h in zip(group, hits):
                found[order[q.qid]] = [x.doc_id for x in h]
        out[name] = found
    return out


# -- fusion and rerank inside Qdrant (qdrant-edge) ---------------------------------------------


def engine_side(
    index: QdrantIndex, engine: Engine, settings
) -> dict[str, Callable[[str, Filters | None], list[int]]]:
    """Variants that run fusion (and the rerank) in the engine; each returns row ids, best first."""
    import qdrant_edge as e

    shard = index._store.shard  # noqa: SLF001 - the benchmark talks to the engine directly
    r = settings.retrieval
    reranker = SentenceEvidenceReranker(r.sentence_weight)

    def prefetches(query: str, f: Filters | None) -> list[Any]:
        vector = engine.embedder.embed_queries([query])[0].tolist()
        where = None
        if f is not None and f.active():
            where = index._store._filter(  # noqa: SLF001
                Where(
                    date_from=f.date_from and date_bound(f.date_from, end=False),
                    date_to=f.date_to and date_bound(f.date_to, end=True),
                    sources=f.sources or None,
                )
            )
        out = [
            e.Prefetch(
                limit=r.candidates, query=e.Query.Nearest(vector, using="dense"), filter=where
            )
        ]
        idx, val = query_sparse(engine.analyzer.query_terms(query))
        if idx:
            sparse = e.SparseVector(idx, val)
            out.append(
                e.Prefetch(
                    limit=r.candidates,
                    query=e.Query.Nearest(sparse, using="keywords"),
                    filter=where,
                )
            )
        return out

    def fused(query: str, f: Filters | None) -> Any:
        return e.Prefetch(
            limit=r.rerank_depth, prefetches=prefetches(query, f), query=e.Fusion.Rrf(k=r.rrf_k)
        )

    def run(request: Any) -> list[int]:
        return [int(p.id) for p in shard.query(request)]

    def rrf(query: str, f: Filters | None) -> list[int]:
        return run(
            e.QueryRequest(limit=30, prefetches=prefetches(query, f), query=e.Fusion.Rrf(k=r.rrf_k))
        )

    def rrf_then_ours(query: str, f: Filters | None) -> list[int]:
        head = run(
            e.QueryRequest(
                limit=r.rerank_depth, prefetches=prefetches(query, f), query=e.Fusion.Rrf(k=r.rrf_k)
            )
        )
        vector = engine.embedder.embed_queries([query])[0]
        cands = [Candidate(row_id=i, score=0.0) for i in head]
        texts = {c.row_id: c.text for c in index.chunks(head)}
        return [
            c.row_id for c in reranker.rerank(query, vector, cands, index.evidence(head), texts)
        ]

    def maxsim(query: str, f: Filters | None) -> list[int]:
        vector = engine.embedder.embed_queries([query])[0].tolist()
        return run(
            e.QueryRequest(
                limit=r.rerank_depth,
                prefetches=[fused(query, f)],
                query=e.Query.Nearest([vector], using="sentences"),
            )
        )

    def formula(query: str, f: Filters | None) -> list[int]:
        vector = engine.embedder.embed_queries([query])[0].tolist()
        stage = fused(query, f)
        passage = e.Prefetch(
            limit=r.rerank_depth, prefetches=[stage], query=e.Query.Nearest(vector, using="dense")
        )
        sentence = e.Prefetch(
            limit=r.rerank_depth,
            prefetches=[stage],
            query=e.Query.Nearest([vector], using="sentences"),
        )
        score = e.Formula(
            e.Expression.Sum(
                [e.Expression.Variable("$score[0]"), e.Expression.Variable("$score[1]")]
            )
        )
        return run(
            e.QueryRequest(limit=r.rerank_depth, prefetches=[passage, sentence], query=score)
        )

    return {
        "engine RRF": rrf,
        "engine RRF + our rerank": rrf_then_ours,
        "engine RRF + engine MAX_SIM": maxsim,
        "engine RRF + engine passage+MAX_SIM": formula,
    }


def engine_runs(
    variants, index: QdrantIndex, items: list[Question], docs: list[Document], variant: str
) -> tuple[dict[str, list[list[str]]], dict[str, list[float]]]:
    out: dict[str, list[list[str]]] = {}
    times: dict[str, list[float]] = {}
    for name, fn in variants.items():
        found, spent = [], []
        for q in items:
            f = filters_for(variant, article_of(q.gold_doc_id), docs)
            started = time.perf_counter()
            rows = fn(q.text, f)
            spent.append(time.perf_counter() - started)
            doc_of = {c.row_id: c.doc_id for c in index.chunks(rows)}
            found.append([doc_of[r] for r in rows if r in doc_of])
        out[name], times[name] = found, spent
    return out, times


# -- latency ----------------------------------------------------------------------------------


def latencies(
    engine: Engine, items: list[Question], docs: list[Document], n: int
) -> dict[str, dict[str, float]]:
    sample = [items[i * len(items) // n] for i in range(min(n, len(items)))]
    out = {}
    runs = [(name, mode, rerank, "none") for name, mode, rerank in RETRIEVERS]
    runs.append(("hybrid+rerank, date filter", "hybrid", True, "date"))
    for name, mode, rerank, variant in runs:
        engine.search(sample[0].text, k=5, mode=mode, rerank=rerank)  # warm-up
        spent = []
        for q in sample:
            f = filters_for(variant, article_of(q.gold_doc_id), docs)
            started = time.perf_counter()
            engine.search(q.text, k=5, filters=f, mode=mode, rerank=rerank)
            spent.append(time.perf_counter() - started)
        out[name] = summary(spent)
    return out


def summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
    }


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad", type=Path)
    parser.add_argument("--questions", type=Path, action="append", default=[])
    parser.add_argument("--base", type=Path, help="a local index to copy and add XQuAD to")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--latency", type=int, default=100, help="questions timed one by one")
    parser.add_argument(
        "--engine-sample", type=int, default=300, help="questions for the engine-side variants"
    )
    parser.add_argument(
        "--local-mode", action="store_true", help="also qdrant-client's local mode (hours)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    load = MachineLoad()
    settings = load_settings(embedding={"show_progress": False})
    embedder = CachedEmbedder(create_embedder(settings.embedding))
    docs, own = load_squad(args.squad)
    docs = dated(docs)
    args.work.mkdir(parents=True, exist_ok=True)
    copies = targets(args.work, args.local_mode)
    report: dict[str, Any] = {
        "build": build(args.work, args.base, docs, settings, embedder, copies)
    }
    sets = {args.squad.name: list(own.values())}
    for path in args.questions:
        _, asked = load_squad(path)
        sets[path.name] = [Question(q.qid, asked[q.qid].text, q.gold_doc_id) for q in own.values()]
    engines = open_all(args.work, settings, embedder, copies)
    try:
        for label, items in sets.items():
            embedder.embed_queries([q.text for q in items])  # once, for every backend
            golds = [q.gold_doc_id for q in items]
            block: dict[str, Any] = {
                "quality": {},
                "agreement_top5": {},
                "latency": {},
                "engine_side": {},
            }
            for variant in FILTERS:
                runs = {
                    name: pipeline_runs(engine, items, docs, variant)
                    for name, (engine, _) in engines.items()
                }
                block["quality"][variant] = {
                    b: {r: metrics(ranks_of(found, golds)) for r, found in runs[b].items()}
                    for b in runs
                }
                block["agreement_top5"][variant] = {
                    b: {
                        r: round(
                            sum(
                                list(dict.fromkeys(x))[:5] == list(dict.fromkeys(y))[:5]
                                for x, y in zip(runs[b][r], runs["local"][r])
                            )
                            / len(items),
                            4,
                        )
                        for r in runs[b]
                    }
                    for b in runs
                    if b != "local"
                }
            edge_engine, edge_index = engines["qdrant-edge"]
            variants = engine_side(edge_index, edge_engine, settings)
            sample = [
                items[i * len(items) // args.engine_sample]
                for i in range(min(args.engine_sample, len(items)))
            ]
            sample_golds = [q.gold_doc_id for q in sample]
            for variant in ("none", "date"):
                found, times = engine_runs(variants, edge_index, sample, docs, variant)
                ours = pipeline_runs(edge_engine, sample, docs, variant)["hybrid+rerank"]
                block["engine_side"][variant] = {
                    "ours (hybrid+rerank)": metrics(ranks_of(ours, sample_golds)),
                    **{
                        n: {**metrics(ranks_of(f, sample_golds)), **summary(times[n])}
                        for n, f in found.items()
                    },
                }
            for name, (engine, _) in engines.items():
                block["latency"][name] = latencies(engine, items, docs, args.latency)
            report[label] = block
            # Kept as it grows: a long run that is stopped still leaves what it measured.
            (args.work / "report.json").write_text(json.dumps(report, indent=1))
    finally:
        for engine, _ in engines.values():
            engine.close()
    report["machine"] = str(load)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print_report(report)


def print_report(report: dict[str, Any]) -> None:
    print("build:", json.dumps(report["build"]))
    for label, block in report.items():
        if not isinstance(block, dict) or "quality" not in block:
            continue
        print(f"\n== {label}")
        for variant, by_backend in block["quality"].items():
            print(f"-- filter: {variant}")
            print(f"{'retriever':<16}" + "".join(f"{b + ' R@1/R@5':>32}" for b in by_backend))
            for r in by_backend["local"]:
                cells = "".join(
                    f"{by_backend[b][r]['R@1']:>23.4f} /{by_backend[b][r]['R@5']:.4f}"
                    for b in by_backend
                )
                agree = " ".join(
                    f"{block['agreement_top5'][variant][b][r]:.3f}"
                    for b in block["agreement_top5"][variant]
                )
                print(f"{r:<16}{cells}   top-5 identical: {agree}")
        for variant, rows in block["engine_side"].items():
            print(f"-- in the engine (qdrant-edge), filter: {variant}")
            for name, m in rows.items():
                lat = f"  p50 {m['p50_ms']} ms p95 {m['p95_ms']} ms" if "p50_ms" in m else ""
                print(
                    f"{name:<38} R@1 {m['R@1']:.4f} R@5 {m['R@5']:.4f} "
                    f"MRR@10 {m['MRR@10']:.4f}{lat}"
                )
        print("-- latency, one query at a time (query embedding cached)")
        for name, rows in block["latency"].items():
            print(
                f"{name:<20}"
                + "  ".join(f"{r} {v['p50_ms']}/{v['p95_ms']} ms" for r, v in rows.items())
            )
    print("\nmachine:", report["machine"])


if __name__ == "__main__":
    main()
