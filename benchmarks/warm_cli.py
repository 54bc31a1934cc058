"""A single `rag search` from the shell, whole process, without and with a running `rag serve`.

    python benchmarks/warm_cli.py                       # an index of seeds/ in a temp dir
    python benchmarks/warm_cli.py --index DIR [--runs 10] [--query "..."] [--command "rag"]

Each run is one new process, timed from start to exit, as a user's shell would: `--command`
(default: the `rag` console script beside this interpreter, else `python -m rag.cli`) followed
by `search QUERY --index DIR`. First `--runs` runs in-process (`--no-server`: imports, model
load, search), then the script starts `rag serve --index DIR --no-ui` (its discovery records in
a temporary runtime dir, RAG_RUNTIME_DIR), waits for its record, runs one (shown apart: the
server opens the index on its first search) and then `--runs` warm ones (the same command,
answered by the server), checks that both printed the same, and stops the server.
Also prints the time of `python -c "from rag.cli import main"` against `python -c pass` (p50 of
`--runs`) and the modules the warm run imported that it should not (numpy, faiss, torch, ...).

Prints p50, p95 and max per path, and how busy the machine was with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import MachineLoad  # noqa: E402  (benchmarks/machine.py, beside this script)

from rag.cli import warm  # noqa: E402

QUERY = "Wie viel ist das neue Hilfspaket von Joe Biden wert?"
HEAVY = ("numpy", "faiss", "torch", "openvino", "index", "httpx", "pydantic", "gradio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, help="index directory (default: seeds/ indexed)")
    parser.add_argument("--runs", type=int, default=10, help="processes per path")
    parser.add_argument("--query", default=QUERY)
    parser.add_argument("--command", help="the `rag` command to time (default: see above)")
    args = parser.parse_args()
    command = args.command.split() if args.command else default_command()
    scratch = Path(tempfile.mkdtemp(prefix="warm-cli-"))
    try:
        index = args.index or index_seeds(command, scratch / "idx")
        env = {**os.environ, "RAG_RUNTIME_DIR": str(scratch / "run")}
        search = [*command, "search", args.query, "--index", str(index)]
        print(f"command: {' '.join(search)}")
        load = MachineLoad()
        report("import rag.cli", import_times(args.runs))
        cold, cold_out = timed(search + ["--no-server"], env, args.runs)
        report("in-process (--no-server)", cold)
        server = start_server(command, index, env, scratch)
        try:
            report("first one after the start", timed(search, env, 1)[0])
            warm_times, warm_out = timed(search, env, args.runs)
            report("with `rag serve` running", warm_times)
            print(f"same output as in-process: {warm_out == cold_out}")
            print(f"heavy modules in a warm run: {heavy_modules(search[len(command):], env)}")
        finally:
            server.terminate()
            server.wait(timeout=60)
        print(f"p50 speed-up: {statistics.median(cold) / statistics.median(warm_times):.1f}x")
        print(f"machine: {load}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def default_command() -> list[str]:
    script = Path(sys.executable).with_name("rag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]


def index_seeds(command: list[str], index: Path) -> Path:
    subprocess.run([*command, "index", str(ROOT / "seeds"), "--index", str(index)], check=True,
                   capture_output=True)  # fmt: skip
    return index


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[list[float], str]:
    """Seconds of each of `runs` processes, and the (last) output."""
    seconds, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        seconds.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
        out = done.stdout
    return seconds, out


def import_times(runs: int) -> list[float]:
    """`from rag.cli import main` in a new interpreter, less an interpreter doing nothing."""
    base, _ = timed([sys.executable, "-c", "pass"], dict(os.environ), runs)
    full, _ = timed([sys.executable, "-c", "from rag.cli import main"], dict(os.environ), runs)
    return [max(0.0, f - statistics.median(base)) for f in full]


def start_server(
    command: list[str], index: Path, env: dict[str, str], scratch: Path
) -> subprocess.Popen[bytes]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (scratch / "serve.log").open("wb")
    argv = [*command, "serve", "--index", str(index), "--no-ui", "--port", str(port)]
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    record = warm.record_path(index, Path(env["RAG_RUNTIME_DIR"]))
    deadline = time.monotonic() + 600
    while not record.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"rag serve did not start; see {scratch / 'serve.log'}")
        time.sleep(0.2)
    return process


def heavy_modules(args: list[str], env: dict[str, str]) -> list[str]:
    code = (
        "import sys\nfrom rag.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\n"
        f"print(sorted({{m for m in sys.modules if m.split('.')[0] in {HEAVY!r}}}), "
        "file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True)  # fmt: skip
    return json.loads(done.stderr.strip().splitlines()[-1].replace("'", '"'))


def report(label: str, seconds: list[float]) -> None:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"{label:<28} p50 {statistics.median(seconds) * 1000:7.0f} ms   "
        f"p95 {p95 * 1000:7.0f} ms   max {ordered[-1] * 1000:7.0f} ms   ({len(seconds)} runs)"
    )


if __name__ == "__main__":
    main()
