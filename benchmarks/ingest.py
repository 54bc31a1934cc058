"""Ingest throughput and memory: our `Engine` vs the usual LangChain recipe, same documents, model.

    python benchmarks/ingest.py ../shared/data/wikinews-de/articles.jsonl [more corpora...] \\
        [--limit N] [--repeats 1]

Corpora are anything `rag.evaluation.load_corpus` reads (JSONL articles, 10kGNAD-style CSV, ...).
Both sides embed with multilingual-e5-small, the converted model the project builds into the user
cache:

- ours: `Engine.add_documents` into a fresh temporary index (sentence chunker, e5 prompts,
  runtime and precision from the settings, "auto" by default), written to disk atomically;
- LangChain: `RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=150)`,
  `HuggingFaceEmbeddings` over the same model directory (fp32, no prompts, batch 32),
  `FAISS.from_documents`, then `save_local` so that both sides end with an index on disk.

Each side runs in its own child process (this script with the hidden `--side` flag), so peak RSS
is that side's alone, and both pay the same imports, model load and corpus reading. Model load is
timed apart; documents/s and chunks/s count reading + chunking + embedding + storing. Prints one
row per side and the ratio ours/LangChain in documents/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import MachineLoad  # noqa: E402  (benchmarks/machine.py, beside this script)

SIDES = ("ours", "langchain")
RESULT_PREFIX = "RESULT "  # marks the child's one line of JSON on stdout
CHUNK_SIZE, CHUNK_OVERLAP = 1000, 150


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM on Linux, ru_maxrss elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024  # bytes vs KiB


def read_corpora(paths: list[Path], limit: int | None) -> list[Any]:
    from rag.evaluation import load_corpus

    docs = [doc for path in paths for doc in load_corpus(path)]
    return docs[:limit] if limit else docs


# ---------------------------------------------------------------------------------- ours
def run_ours(paths: list[Path], limit: int | None) -> dict[str, Any]:
    from rag.embedders import precision, resolve_runtime
    from rag.engine import Engine
    from rag.settings import load_settings

    settings = load_settings(embedding={"show_progress": False})
    runtime = resolve_runtime(settings.embedding.runtime)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        t0 = time.perf_counter()
        with Engine.open(Path(tmp) / "index", settings) as engine:
            # The model loads lazily: load it here, outside the ingest timing.
            _ = engine.embedder.dim
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            docs = read_corpora(paths, limit)
            read_s = time.perf_counter() - t0
            report = engine.add_documents(docs)
            ingest_s = time.perf_counter() - t0
            size = engine.info()["size_bytes"]
    return {
        "docs": report.documents,
        "chunks": report.chunks,
        "load_s": load_s,
        "read_s": read_s,
        "ingest_s": ingest_s,
        "problems": len(report.problems),
        "disk_mb": size / 1e6,
        "detail": f"runtime {runtime}, "
        f"precision {precision.for_runtime(settings.embedding, runtime)} "
        f"(setting {settings.embedding.precision!r}), max {settings.chunking.max_tokens} tokens "
        f"+ {settings.chunking.overlap_sentences} sentence overlap, batch "
        f"{settings.embedding.batch_size}",
    }


# ----------------------------------------------------------------------------- LangChain
def langchain_embeddings(model_dir: Path) -> tuple[Any, str]:
    """`HuggingFaceEmbeddings` from langchain-community, or an exact stand-in where it is gone.

    `langchain-huggingface` is not an option: it pins huggingface-hub < 2, which transformers 5
    and sentence-transformers 6 do not run with.
    """
    try:
        from langchain_community.embeddings import HuggingFaceEmbeddings
    except ImportError:
        return _SentenceTransformerEmbeddings(str(model_dir)), "stand-in Embeddings subclass"
    with warnings.catch_warnings():
        # The class is deprecated in favour of langchain-huggingface, which we cannot install.
        warnings.simplefilter("ignore")
        embeddings = HuggingFaceEmbeddings(model_name=str(model_dir))
    return embeddings, "langchain_community.embeddings.HuggingFaceEmbeddings"


class _SentenceTransformerEmbeddings(Embeddings):
    """As `HuggingFaceEmbeddings` does: newlines to spaces, `encode` fp32, no prompts, batch 32."""

    def __init__(self, model_dir: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.client = SentenceTransformer(model_dir)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.client.encode([t.replace("\n", " ") for t in texts]).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def run_langchain(paths: list[Path], limit: int | None) -> dict[str, Any]:
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document as LCDocument
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from transformers.utils import logging as hf_logging

    from rag.embedders import e5_build
    from rag.embedders.sentence_transformers import default_model_dir
    from rag.settings import load_settings

    hf_logging.disable_progress_bar()  # as ours does; keeps stderr quiet
    t0 = time.perf_counter()
    model_dir = e5_build.ensure(default_model_dir(load_settings().embedding.cache_dir))
    embeddings, embeddings_class = langchain_embeddings(model_dir)
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    docs = read_corpora(paths, limit)
    read_s = time.perf_counter() - t0
    lc_docs = [
        LCDocument(
            page_content=d.text, metadata={"source": d.source, "title": d.title, "date": d.date}
        )
        for d in docs
    ]
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    chunks = splitter.split_documents(lc_docs)
    split_s = time.perf_counter() - t0 - read_s
    store = FAISS.from_documents(chunks, embeddings)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-lc-") as tmp:
        store.save_local(tmp)
        ingest_s = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())
    return {
        "docs": len(lc_docs),
        "chunks": len(chunks),
        "load_s": load_s,
        "read_s": read_s,
        "ingest_s": ingest_s,
        "problems": 0,
        "disk_mb": size / 1e6,
        "detail": f"{embeddings_class}, fp32, no prompts; splitter {CHUNK_SIZE}/{CHUNK_OVERLAP} "
        f"chars ({split_s:.1f} s); FAISS.from_documents + save_local",
    }


# -------------------------------------------------------------------------------- parent
def run_side(side: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, *map(str, args.corpus)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    t0, load = time.perf_counter(), MachineLoad()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.exit(f"the {side} run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result["process_s"] = wall
    result["machine"] = str(load)
    return result


def print_table(results: dict[str, dict[str, Any]]) -> None:
    head = (
        f"{'side':<10}{'docs':>6}{'chunks':>8}{'load s':>8}{'ingest s':>10}{'docs/s':>8}"
        f"{'chunks/s':>10}{'peak RSS MB':>13}{'on disk MB':>12}{'process s':>11}"
    )
    print(head)
    print("-" * len(head))
    for side, r in results.items():
        print(
            f"{side:<10}{r['docs']:>6}{r['chunks']:>8}{r['load_s']:>8.1f}{r['ingest_s']:>10.1f}"
            f"{r['docs'] / r['ingest_s']:>8.1f}{r['chunks'] / r['ingest_s']:>10.1f}"
            f"{r['peak_rss_mb']:>13.0f}{r['disk_mb']:>12.1f}{r['process_s']:>11.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "corpus", type=Path, nargs="+", help="corpus files (JSONL articles, 10kGNAD CSV, ...)"
    )
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument(
        "--repeats", type=int, default=1, help="runs per side, taking turns; the fastest counts"
    )
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # child process
    args = ap.parse_args()
    for path in args.corpus:
        if not path.is_file():
            sys.exit(f"no such corpus file: {path}")

    if args.side:
        run = run_ours if args.side == "ours" else run_langchain
        result = run(args.corpus, args.limit)
        result["peak_rss_mb"] = peak_rss_mb()
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return

    from rag.embedders import e5_build
    from rag.embedders.sentence_transformers import default_model_dir
    from rag.settings import load_settings

    # Build (first run) and checksum the model here: neither side pays for it, and both find
    # the files in the page cache.
    e5_build.ensure(default_model_dir(load_settings().embedding.cache_dir))
    print(f"corpora: {', '.join(str(p) for p in args.corpus)}")
    print(f"load average at start: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for _ in range(max(1, args.repeats)):
        for side in SIDES:
            runs[side].append(run_side(side, args))
    results = {side: min(done, key=lambda r: r["ingest_s"]) for side, done in runs.items()}
    if args.repeats > 1:
        print(f"fastest of {args.repeats} runs per side; ingest s of each run:")
        for side, done in runs.items():
            times = ", ".join(f"{r['ingest_s']:.1f}" for r in done)
            print(f"  {side}: {times}")
    print()
    print_table(results)
    print()
    for side, r in results.items():
        print(f"{side}: {r['detail']}; of the ingest, reading took {r['read_s']:.1f} s")
        if r["problems"]:
            print(f"  {r['problems']} documents could not be added")
        print(f"  while it ran: {r['machine']}")
    ours, lc = results["ours"], results["langchain"]
    rate = {s: r["docs"] / r["ingest_s"] for s, r in results.items()}
    end_to_end = {s: r["docs"] / (r["load_s"] + r["ingest_s"]) for s, r in results.items()}
    print(
        f"ratio ours/LangChain, documents/s: {rate['ours'] / rate['langchain']:.2f}x "
        f"(with model load: {end_to_end['ours'] / end_to_end['langchain']:.2f}x)"
    )
    print(f"peak RSS ours/LangChain: {ours['peak_rss_mb'] / lc['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
