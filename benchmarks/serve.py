"""The HTTP API under load: concurrent clients asking questions, end to end over HTTP.

    python benchmarks/serve.py --url http://127.0.0.1:7860
    python benchmarks/serve.py --index /tmp/bench-idx --seed seeds [--clients 20 --asks 20]
    python benchmarks/serve.py --url ... --questions my-questions.txt --endpoint search

With `--url`, a running server (`rag serve`) is measured; with `--index DIR`, the script starts
`rag serve --index DIR --no-ui` itself on a free loopback port (`--seed PATH` indexes files
first; unchanged ones cost nothing) and stops it afterwards. `--clients` clients each send
`--asks` requests one after another (20 x 20 by default), cycling through the questions:
German and English questions about the seed articles, or one per line of `--questions FILE`
(a .jsonl file's lines are objects with a "question"). One warm-up request goes first.

Prints the number of failed requests (by status), latency p50/p95/max in ms, throughput in
requests/s, and how busy the machine was with other work. The server's engine answers one
request at a time (it sits behind one lock), so latency grows with the number of clients while
throughput is bounded by how fast one request runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import MachineLoad  # benchmarks/machine.py, beside this script

SEED_QUESTIONS = [
    "Wie viel ist das neue Hilfspaket von Joe Biden wert?",
    "Was sagte Stoltenberg über Verhandlungen mit Russland?",
    "Welche Waffen liefern die USA an die Ukraine?",
    "Wer trifft in Genf den russischen Vizeaußenminister?",
    "Was berichtet Bloomberg über ein Ende des Ukraine-Krieges?",
    "Was erwartet Stoltenberg von der ukrainischen Gegenoffensive?",
    "How much is Biden's new aid package for Ukraine worth?",
    "What did the NATO secretary general say about negotiations?",
    "Why is the United States sending rocket launchers to Ukraine?",
    "Where did the talks between NATO and Russia take place?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="A running server, e.g. http://127.0.0.1:7860")
    target.add_argument("--index", type=Path, help="Start `rag serve --index DIR` for the run.")
    parser.add_argument("--seed", action="append", default=[], help="With --index: index first.")
    parser.add_argument("--questions", type=Path, help="One question per line (or .jsonl).")
    parser.add_argument("--clients", type=int, default=20, help="Concurrent clients.")
    parser.add_argument("--asks", type=int, default=20, help="Requests per client.")
    parser.add_argument(
        "--endpoint",
        choices=["ask", "stream", "search"],
        default="ask",
        help="POST /api/ask (default), /api/ask/stream (read to the end) or /api/search.",
    )
    parser.add_argument("--mode", help="Answer mode to ask for (default: the server's).")
    parser.add_argument("--timeout", type=float, default=600, help="Seconds per request.")
    args = parser.parse_args()

    questions = read_questions(args.questions) if args.questions else SEED_QUESTIONS
    load = MachineLoad()
    server = start_server(args.index, args.seed) if args.index else None
    try:
        url = server[1] if server else args.url.rstrip("/")
        result = asyncio.run(run(url, questions, args))
    finally:
        if server:
            stop_server(server[0])
    report(result, args, load)


def read_questions(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if path.suffix == ".jsonl":
        questions = [json.loads(line)["question"] for line in lines if line]
    else:
        questions = [line for line in lines if line and not line.startswith("#")]
    if not questions:
        sys.exit(f"{path}: no questions in it")
    return questions


# ---------------------------------------------------------------------------------- server
def start_server(index: Path, seeds: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    entry = "from rag.cli import main; main()"  # the `rag` command, from this interpreter
    command = [sys.executable, "-c", entry, "serve", "--index", str(index)]
    command += ["--port", str(port), "--no-ui", *(x for s in seeds for x in ("--seed", s))]
    print(f"starting: {' '.join(command)}", file=sys.stderr)
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 900  # a first run builds the model and indexes the seeds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(process)
    sys.exit("the server did not come up within 15 minutes")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ------------------------------------------------------------------------------------ load
class Result:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failures: Counter[str] = Counter()
        self.seconds = 0.0
        self.example_error = ""


async def run(url: str, questions: list[str], args: argparse.Namespace) -> Result:
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout, limits=limits) as client:
        info = (await client.get("/api/info")).json()
        print(
            f"{url}: {info['index']['counts']['documents']} documents, answer modes "
            f"{info['answer_modes']}; {args.clients} clients x {args.asks} {args.endpoint} "
            f"requests, {len(questions)} distinct questions",
            file=sys.stderr,
        )
        warm = Result()
        await request(client, questions[0], args, warm)
        if warm.failures:
            sys.exit(f"the warm-up request failed: {warm.example_error}")
        result = Result()
        started = time.perf_counter()
        await asyncio.gather(
            *(client_loop(client, c, questions, args, result) for c in range(args.clients))
        )
        result.seconds = time.perf_counter() - started
    return result


async def client_loop(
    client: httpx.AsyncClient, n: int, questions: list[str], args: argparse.Namespace, out: Result
) -> None:
    for i in range(args.asks):
        await request(client, questions[(n * args.asks + i) % len(questions)], args, out)


async def request(
    client: httpx.AsyncClient, question: str, args: argparse.Namespace, out: Result
) -> None:
    if args.endpoint == "search":
        path, body = "/api/search", {"query": question}
    else:
        path = "/api/ask/stream" if args.endpoint == "stream" else "/api/ask"
        body = {"question": question, **({"mode": args.mode} if args.mode else {})}
    started = time.perf_counter()
    try:
        async with client.stream("POST", path, json=body) as response:
            payload = await response.aread()
        failed = response.status_code != 200 or (
            args.endpoint == "stream" and b"event: answer" not in payload
        )
        if failed:
            out.failures[f"HTTP {response.status_code}"] += 1
            out.example_error = out.example_error or payload[:300].decode("utf-8", "replace")
            return
    except httpx.HTTPError as exc:
        out.failures[type(exc).__name__] += 1
        out.example_error = out.example_error or repr(exc)
        return
    out.latencies.append(time.perf_counter() - started)


def report(result: Result, args: argparse.Namespace, load: MachineLoad) -> None:
    total = args.clients * args.asks
    ms = np.array(result.latencies) * 1000
    print(f"requests: {total}, ok: {len(ms)}, errors: {sum(result.failures.values())}")
    for kind, count in result.failures.most_common():
        print(f"  {kind}: {count}")
    if result.example_error:
        print(f"  first error: {result.example_error}")
    if len(ms):
        p50, p95 = np.percentile(ms, [50, 95])
        print(f"latency ms: p50 {p50:.0f}, p95 {p95:.0f}, max {ms.max():.0f}")
    print(f"throughput: {len(ms) / result.seconds:.2f} requests/s over {result.seconds:.1f} s")
    print(f"machine: {load}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
