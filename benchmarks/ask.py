"""Answer latency in the default (quote-exact) mode, through `Engine.ask`, after warm-up.

    python benchmarks/ask.py [seeds/] [--questions benchmarks/seed_questions.jsonl]
        [--index DIR] [--repeat 5] [--mode quote]

Indexes the given files or folders (default: the repository's `seeds/`) into a temporary index,
or into `--index DIR` (reused: unchanged documents cost nothing). Each question (JSONL lines
`{"id", "question"}`) is asked once to warm up, then `--repeat` times, one at a time; latency
covers everything `ask` does: question embedding, hybrid retrieval, reranking, sentence
selection and the support check. Prints p50/p95/mean/max in ms, answerable share, and how busy
the machine was with other work. Target: p50 <= 300 ms on the seed index.
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
    parser.add_argument("--mode", choices=["reader", "quote", "generate"], default=None)
    args = parser.parse_args()

    from rag.engine import Engine
    from rag.settings import load_settings

    questions = [
        json.loads(line)["question"]
        for line in args.questions.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        with Engine.open(args.index or Path(tmp) / "index", load_settings()) as engine:
            report = engine.add(args.paths)
            print(
                f"index: {engine.info()['counts']['documents']} documents, "
                f"{engine.info()['counts']['chunks']} passages ({report.added} newly added)"
            )
            for q in questions:  # warm-up: model load, caches, first-call costs
                engine.ask(q, mode=args.mode)
            load = MachineLoad()
            times: list[float] = []
            answerable = 0
            for _ in range(args.repeat):
                for q in questions:
                    t0 = time.perf_counter()
                    answer = engine.ask(q, mode=args.mode)
                    times.append((time.perf_counter() - t0) * 1000)
                    answerable += answer.answerable
    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(
        f"ask ({args.mode or 'default mode'}), {len(questions)} questions x {args.repeat}: "
        f"p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, "
        f"mean {statistics.fmean(times):.1f} ms, max {times[-1]:.1f} ms"
    )
    print(f"answerable: {answerable / len(times):.0%} of answers")
    print(f"machine: {load}")


if __name__ == "__main__":
    main()
