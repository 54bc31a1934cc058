"""`rag index --ray` against the plain `rag index`: same counts, same search results, throughput.

    python benchmarks/ray_ingest.py ../shared/data/wikinews-de/articles.jsonl \\
        [--work DIR] [--backend local --backend edge] [--cpus 2] \\
        [--questions benchmarks/temporal_questions.jsonl] [--n-questions 20]

For each backend (the local index; qdrant-edge, `--url edge:PATH`) the file is indexed twice
into fresh indexes, each side in its own child process (this script with the hidden `--side`
flag), one after the other:

- plain: `Engine.add` (what `rag index` runs), the model loaded first and timed apart;
- ray: `ray_add` (what `rag index --ray` runs) on a Ray started in the child with `--cpus`
  CPUs (`ray.init(num_cpus=...)`, timed apart); its time includes what the Ray path pays
  itself: the driver loading the model for a new index's spec, the actors starting and
  loading theirs, reading in tasks, the object store.

Then both indexes are opened and compared: documents (id, source, title, date, language,
passages), counts, and the top 10 of the first `--n-questions` questions in the default
search (hybrid + rerank), dense and keyword. Prints one JSON line per side and per
comparison, and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import MachineLoad  # benchmarks/machine.py, beside this script

RESULT_PREFIX = "RESULT "
ROOT = Path(__file__).resolve().parents[1]
MODES = ("hybrid", "dense", "keyword")


def settings_for(backend: str, target: Path) -> Any:
    from rag.settings import load_settings

    if backend == "edge":
        return load_settings(
            embedding={"show_progress": False},
            index={"backend": "qdrant", "url": f"edge:{target}"},
        )
    return load_settings(embedding={"show_progress": False}, index={"backend": "local"})


def run_side(side: str, backend: str, corpus: Path, target: Path, cpus: int) -> dict[str, Any]:
    """One side, in this (child) process: index `corpus` into the fresh `target`."""
    settings = settings_for(backend, target)
    if side == "plain":
        from rag.embedders import create_embedder
        from rag.engine import Engine

        embedder = create_embedder(settings.embedding)
        started = time.perf_counter()
        embedder.embed_passages(["warm up"])
        load = time.perf_counter() - started
        started = time.perf_counter()
        cpu = machine_cpu_seconds()
        with Engine.open(target, settings, embedder=embedder) as engine:
            report = engine.add([corpus])
        return {"seconds": time.perf_counter() - started, "model_seconds": load,
                "cpu_seconds": machine_cpu_seconds() - cpu, **_counts(report)}  # fmt: skip
    import ray

    from rag.ingest.ray_ingest import ray_add

    started = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="warning")
    init = time.perf_counter() - started
    started, cpu = time.perf_counter(), machine_cpu_seconds()
    report = ray_add([corpus], settings, target)
    seconds, cpu = time.perf_counter() - started, machine_cpu_seconds() - cpu
    ray.shutdown()
    return {"seconds": seconds, "ray_init_seconds": init, "cpu_seconds": cpu, **_counts(report)}


def machine_cpu_seconds() -> float:
    """CPU seconds (user, nice, system, irq, steal) the whole machine has been busy since
    boot, from /proc/stat. A count over this process's tree missed most of the Ray path's work
    (30 CPU seconds for a side that kept both cores busy for 209 s: the time of Ray's exited
    workers and actors was not where it looked); the machine's count holds it, and everyone
    else's too: run this on a quiet machine (each side prints the load it started under)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _counts(report: Any) -> dict[str, Any]:
    return {"documents": report.documents, "added": report.added, "passages": report.chunks,
            "problems": len(report.problems)}  # fmt: skip


def compare(backend: str, plain: Path, by_ray: Path, questions: list[str]) -> dict[str, Any]:
    """Documents, counts and top-10 hits of the two indexes."""
    from rag.embedders import create_embedder
    from rag.engine import Engine

    settings_a, settings_b = settings_for(backend, plain), settings_for(backend, by_ray)
    embedder = create_embedder(settings_a.embedding)
    out: dict[str, Any] = {"backend": backend}
    with (
        Engine.open(plain, settings_a, embedder=embedder) as a,
        Engine.open(by_ray, settings_b, embedder=embedder) as b,
    ):
        out["same_documents"] = a.documents() == b.documents()
        out["counts"] = [a.info()["counts"], b.info()["counts"]]
        for mode in MODES:
            hits_a = a.search_batch(questions, 10, mode=mode)
            hits_b = b.search_batch(questions, 10, mode=mode)
            same = [
                [h.chunk_id for h in x] == [h.chunk_id for h in y] for x, y in zip(hits_a, hits_b)
            ]
            diff = max(
                (abs(p.score - q.score) for x, y in zip(hits_a, hits_b) for p, q in zip(x, y)),
                default=0.0,
            )
            out[mode] = {"same_top10": sum(same), "of": len(same), "max_score_diff": diff}
    return out


def child(args: argparse.Namespace) -> None:
    result = run_side(args.side, args.backend[0], args.corpus, args.target, args.cpus)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def spawn(side: str, backend: str, corpus: Path, target: Path, cpus: int) -> dict[str, Any]:
    quiet = MachineLoad()
    time.sleep(3)
    before = str(quiet)
    command = [sys.executable, __file__, str(corpus), "--side", side, "--backend", backend,
               "--target", str(target), "--cpus", str(cpus)]  # fmt: skip
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=ROOT)
    lines = [x for x in done.stdout.splitlines() if x.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{side}/{backend} failed:\n{done.stderr[-4000:]}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result.update(side=side, backend=backend, machine_before=before,
                  passages_per_s=result["passages"] / result["seconds"],
                  passages_per_cpu_s=result["passages"] / result["cpu_seconds"])  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--work", type=Path, default=Path("ray-bench"))
    parser.add_argument("--backend", action="append", choices=["local", "edge"])
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks" /
                        "temporal_questions.jsonl")  # fmt: skip
    parser.add_argument("--n-questions", type=int, default=20)
    parser.add_argument("--side", choices=["plain", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.backend = args.backend or ["local", "edge"]
    if args.side:
        child(args)
        return
    questions = [
        json.loads(line)["question"]
        for line in args.questions.read_text("utf-8").splitlines()
        if line.strip()
    ][: args.n_questions]
    rows = []
    for backend in args.backend:
        targets = {side: args.work / f"{backend}-{side}" for side in ("plain", "ray")}
        for side, target in targets.items():
            shutil.rmtree(target, ignore_errors=True)
            result = spawn(side, backend, args.corpus.resolve(), target.resolve(), args.cpus)
            print(json.dumps(result), flush=True)
            rows.append(result)
        comparison = compare(backend, targets["plain"].resolve(), targets["ray"].resolve(),
                             questions)  # fmt: skip
        print(json.dumps(comparison), flush=True)
    print("\n| backend | path | documents | passages | seconds | passages/s | CPU s | "
          "passages/CPU-s | set-up s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        setup = r.get("model_seconds", r.get("ray_init_seconds", 0.0))
        print(f"| {r['backend']} | {r['side']} | {r['documents']} | {r['passages']} | "
              f"{r['seconds']:.1f} | {r['passages_per_s']:.1f} | {r['cpu_seconds']:.0f} | "
              f"{r['passages_per_cpu_s']:.2f} | {setup:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
