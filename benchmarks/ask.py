"""Answer latency per answer mode, through `Engine.ask`, after warm-up.

    python benchmarks/ask.py [seeds/] [--questions benchmarks/seed_questions.jsonl]
        [--index DIR] [--repeat 5] [--mode reader --mode quote]

Indexes the given files or folders (default: the repository's `seeds/`) into a temporary index,
or into `--index DIR` (reused: unchanged documents cost nothing). Each question (JSONL lines
`{"id", "question"}`) is asked once to warm up, then `--repeat` times, one at a time; latency
covers everything `ask` does: question embedding, hybrid retrieval, reranking, sentence
selection and the support check, and in reader mode the language model reading the excerpts.
Prints, per mode, p50/p95/mean/max in ms, the answerable share, and how busy the machine was
with other work. Targets: quote p50 <= 300 ms on the seed index; reader p50 <= 6 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import MachineLoad  # noqa: E402  (benchmarks/machine.py, beside this script)

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[HERE.parent / "seeds"])
    parser.add_argument("--questions", type=Path, default=HERE / "seed_questions.jsonl")
    parser.add_argument("--index", type=Path, help="Keep (and reuse) the index here.")
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs per question.")
    parser.add_argument(
        "--mode",
        dest="modes",
        action="append",
        choices=["reader", "quote", "generate"],
        help="Answer mode; repeat for a table of modes (default: reader and quote).",
    )
    args = parser.parse_args()
    modes = args.modes or ["reader", "quote"]

    from rag.engine import Engine
    from rag.settings import load_settings

    questions = [
        json.loads(line)["question"]
        for line in args.questions.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        with Engine.open(args.index or Path(tmp) / "index", load_settings()) as engine:
            report = engine.add(args.paths)
            print(
                f"index: {engine.info()['counts']['documents']} documents, "
                f"{engine.info()['counts']['chunks']} passages ({report.added} newly added)"
            )
            for mode in modes:
                for q in questions:  # warm-up: model load, caches, first-call costs
                    engine.ask(q, mode=mode)
                load = MachineLoad()
                times: list[float] = []
                answerable = 0
                used: set[str] = set()
                for _ in range(args.repeat):
                    for q in questions:
                        t0 = time.perf_counter()
                        answer = engine.ask(q, mode=mode)
                        times.append((time.perf_counter() - t0) * 1000)
                        answerable += answer.answerable
                        used.add(answer.mode)
                rows.append((mode, sorted(used), times, answerable, str(load)))
    print(f"\n{len(questions)} questions x {args.repeat} runs each, after one warm-up round")
    print(
        f"{'mode':9} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'max ms':>9}  answerable  machine"
    )
    for mode, used, times, answerable, load in rows:
        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        label = mode if used == [mode] else f"{mode} (answered as {', '.join(used)})"
        print(
            f"{label:9} {statistics.median(times):9.1f} {p95:9.1f} {statistics.fmean(times):9.1f} "
            f"{times[-1]:9.1f}  {answerable / len(times):10.0%}  {load}"
        )


if __name__ == "__main__":
    main()
