"""The HTTP API under load: concurrent clients asking questions, end to end over HTTP; with
`--mixed`, readers and editors with access tokens at once (searches, asks, uploads, deletes).

    python benchmarks/serve.py --url http://127.0.0.1:7860
    python benchmarks/serve.py --index /tmp/bench-idx --seed seeds [--clients 20 --asks 20]
    python benchmarks/serve.py --url ... --questions my-questions.txt --endpoint search
    python benchmarks/serve.py --index /tmp/serve-mixed-idx --seed seeds --mixed \
        [--clients 50 --editors 3 --duration 90 --think 5 --large-uploads 1 --large-mb 1.9]

With `--url`, a running server (`rag serve`) is measured; with `--index DIR`, the script starts
`rag serve --index DIR --no-ui` itself on a free loopback port (`--seed PATH` indexes files
first; unchanged ones cost nothing) and stops it afterwards. That server gets the per-token
rate limits off (RAG_SERVER__ASK_PER_MINUTE=0, RAG_SERVER__UPLOAD_PER_MINUTE=0: from one
address, asks would otherwise get 429 after 30 a minute) unless the environment sets them; other
settings come from the environment as usual (e.g. RAG_EMBEDDING__THREADS=1).

Concurrent asks (the default): `--clients` clients each send `--asks` requests one after
another (20 x 20 by default), cycling through the questions: German and English questions
about the seed articles, or one per line of `--questions FILE` (a .jsonl file's lines are
objects with a "question"). One warm-up request goes first. Prints the number of failed
requests (by status), latency p50/p95/max in ms, throughput in requests/s, the rate limits
(with `--index`) and how busy the machine was with other work.

Mixed workload (`--mixed`, needs `--index`): the script writes one reader token per reader
and one editor token per editor (`ui.auth.TokenStore`) into a temporary tokens file and starts
the server with `server.auth = on`, that file and a temporary audit log. It checks first that a
request without a token gets 401 and an upload with a reader token 403, then warms up (one
ask: the first builds the answerer; one search per token: a token's first check costs a scrypt
hash). Then, at once:
- readers (`--clients` minus `--editors`, 47 + 3 by default): search, pause, ask, pause, ...
  (asks with `"mode": --mode`, default quote: no language model; a pause is 0.5-1.5 x
  `--think`, 5 s by default);
- editors, for `--duration` seconds: upload one or two small .txt articles, or delete one of
  their own earlier uploads, pausing 0.5-1.5 x `--editor-think`; `--large-uploads` times (the
  first at second `--large-at`) an editor uploads a `--large-mb` JSON Lines slice of
  `--articles` (German Wikinews: 1.9 MB is about all 998 articles, ids rewritten to be new)
  and then deletes three of its documents. Readers go on until the last upload is done.
Upload names and document ids are new in every run; the documents stay in the index (use a
scratch `--index DIR`).

It prints: the setup (answer mode, pauses, rate limits, embedding threads) and the readers'
request rate; the two sanity checks; per endpoint (search, ask, upload, upload-large, delete,
and the final document list) calls, ok, errors and latency p50/p95/max in ms; errors by
endpoint and status with the first message of each (client-side errors with their time and
how long the connection had been idle), and the count of 401, 403 and 429 responses during
the load (all expected 0); each large upload's size, documents and interval; ask and search
latency for the requests that overlapped a large upload, any upload, or none; the longest ask
and whether an upload was in progress; documents lost: every document an editor uploaded (200)
and did not delete must be listed by `GET /api/documents`, every deleted one must be gone
(documents of failed uploads or deletes are not judged); upload reports whose counts differ
from what was sent; the editors' records in the audit log against their successful writes;
and the machine load.

The engine embeds uploads outside its index lock, so reads do not wait for an upload's write;
but every search and ask embeds its query with the same embedding model the upload's passages
go through, so the "overlapping a large upload" rows show what that sharing costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import MachineLoad  # benchmarks/machine.py, beside this script
from mixed_data import DEFAULT_ARTICLES, Payload, large_jsonl, read_articles, small_text

from ui.auth import TokenStore

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
    parser.add_argument(
        "--clients",
        type=int,
        help="Concurrent clients (default 20; with --mixed 50, editors included).",
    )
    parser.add_argument("--asks", type=int, default=20, help="Requests per client.")
    parser.add_argument(
        "--endpoint",
        choices=["ask", "stream", "search"],
        default="ask",
        help="POST /api/ask (default), /api/ask/stream (read to the end) or /api/search.",
    )
    parser.add_argument(
        "--mode", help="Answer mode to ask for (default: the server's; with --mixed: quote)."
    )
    parser.add_argument("--timeout", type=float, default=600, help="Seconds per request.")
    mixed = parser.add_argument_group("mixed workload (--mixed, with --index)")
    mixed.add_argument(
        "--mixed",
        action="store_true",
        help="Readers (search + ask) and editors (uploads, deletes) with tokens, auth on.",
    )
    mixed.add_argument("--editors", type=int, default=3, help="Editor clients among --clients.")
    mixed.add_argument(
        "--duration",
        type=float,
        default=90,
        help="Seconds editors start new work (readers go on until the last upload is done).",
    )
    mixed.add_argument(
        "--think", type=float, default=5.0, help="Mean pause of a reader between requests (s)."
    )
    mixed.add_argument(
        "--editor-think", type=float, default=3.0, help="Mean pause of an editor (s)."
    )
    mixed.add_argument("--large-uploads", type=int, default=1, help="How many large JSONL uploads.")
    mixed.add_argument(
        "--large-mb", type=float, default=1.9, help="Size of a large upload (MB, 10^6 bytes)."
    )
    mixed.add_argument(
        "--large-at",
        type=float,
        default=15,
        help="Second of the run the first large upload starts.",
    )
    mixed.add_argument(
        "--articles",
        type=Path,
        default=DEFAULT_ARTICLES,
        help="JSONL articles the uploads are made of (default: ../shared/data/wikinews-de).",
    )
    mixed.add_argument(
        "--upload-timeout", type=float, default=1800, help="Seconds a large upload may take."
    )
    mixed.add_argument("--random-seed", type=int, default=1, help="Seed of the editors' choices.")
    args = parser.parse_args()
    if args.mixed:
        if not args.index:
            parser.error("--mixed needs --index DIR (it creates the tokens and starts the server)")
        args.clients = 50 if args.clients is None else args.clients
        if not 1 <= args.editors < args.clients:
            parser.error("--editors must be at least 1 and fewer than --clients")
        args.mode = args.mode or "quote"
        mixed_main(args)
        return
    args.clients = 20 if args.clients is None else args.clients

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
RATE_LIMITS = ("RAG_SERVER__ASK_PER_MINUTE", "RAG_SERVER__UPLOAD_PER_MINUTE")


def server_env() -> dict[str, str]:
    """The per-token rate limits off (0) for a server this script starts, unless the
    environment sets them: a load test from one address would otherwise measure 429s."""
    return {name: "0" for name in RATE_LIMITS if name not in os.environ}


def rate_limits() -> str:
    values = [f"{name}={os.environ.get(name, '0')}" for name in RATE_LIMITS]
    off = all(os.environ.get(name, "0") == "0" for name in RATE_LIMITS)
    return f"{', '.join(values)} ({'off' if off else 'ON: 429s are possible'})"


def start_server(
    index: Path, seeds: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    entry = "from rag.cli import main; main()"  # the `rag` command, from this interpreter
    command = [sys.executable, "-c", entry, "serve", "--index", str(index)]
    command += ["--port", str(port), "--no-ui", *(x for s in seeds for x in ("--seed", s))]
    print(f"starting: {' '.join(command)}", file=sys.stderr)
    process = subprocess.Popen(command, env={**os.environ, **server_env(), **(env or {})})
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
    if args.index:
        print(f"rate limits: {rate_limits()}")
    print(f"machine: {load}; {os.cpu_count()} CPUs")


# ------------------------------------------------------------------------------- mixed load
@dataclass(frozen=True)
class Call:
    """One request of the mixed workload: what, when (seconds from the start), the outcome."""

    endpoint: str  # search, ask, upload, upload-large, delete, list
    start: float
    end: float
    status: str  # "200", "403", ..., or the client-side exception's name
    ok: bool
    idle: float = 0.0  # seconds since this client's previous request ended (keep-alive gap)

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


@dataclass
class Mixed:
    """What the mixed run saw: every call, and which documents editors added and removed."""

    t0: float = 0.0
    deadline: float = 0.0
    editors_busy: int = 0
    calls: list[Call] = field(default_factory=list)
    uploaded: dict[str, str] = field(default_factory=dict)  # doc id -> upload name, 200 only
    deleted: set[str] = field(default_factory=set)  # doc ids, 200 only
    unsure: set[str] = field(default_factory=set)  # doc ids of failed uploads or deletes
    large: list[tuple[Call, int, int]] = field(default_factory=list)  # call, bytes, documents
    report_problems: list[str] = field(default_factory=list)
    first_errors: dict[str, str] = field(default_factory=dict)
    last_end: dict[str, float] = field(default_factory=dict)  # token -> its last request's end
    sanity: list[tuple[str, str, str]] = field(default_factory=list)  # what, expected, got
    listed: set[str] | None = None
    warmup_seconds: float = 0.0
    seconds: float = 0.0

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def readers_go_on(self) -> bool:
        return self.now() < self.deadline or self.editors_busy > 0


def mixed_main(args: argparse.Namespace) -> None:
    questions = read_questions(args.questions) if args.questions else SEED_QUESTIONS
    if not args.articles.is_file():
        sys.exit(f"{args.articles}: not found; give the articles to upload with --articles FILE")
    n_readers, n_editors = args.clients - args.editors, args.editors
    work = Path(tempfile.mkdtemp(prefix="serve-mixed-"))
    try:
        started = time.perf_counter()
        store = TokenStore(work / "tokens.json")
        readers = [store.create(f"reader-{i}", "reader") for i in range(n_readers)]
        editors = [store.create(f"editor-{i}", "editor") for i in range(n_editors)]
        print(
            f"{n_readers} reader and {n_editors} editor tokens in {store.path} "
            f"({time.perf_counter() - started:.1f} s)",
            file=sys.stderr,
        )
        articles = read_articles(args.articles)
        tag = f"mixed-{secrets.token_hex(3)}"
        large = [
            large_jsonl(articles, int(args.large_mb * 1e6), f"{tag}-large{k}", work)
            for k in range(args.large_uploads)
        ]
        env = {
            "RAG_SERVER__AUTH": "on",
            "RAG_SERVER__TOKENS_FILE": str(store.path),
            "RAG_SERVER__AUDIT_LOG": str(work / "audit.jsonl"),
        }
        load = MachineLoad()
        process, url = start_server(args.index, args.seed, env)
        try:
            state = asyncio.run(
                run_mixed(url, questions, articles, readers, editors, large, tag, args)
            )
        finally:
            stop_server(process)
        audit = read_audit(work / "audit.jsonl")
        report_mixed(state, args, large, audit, load)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def run_mixed(
    url: str,
    questions: list[str],
    articles: list[dict[str, object]],
    readers: list[str],
    editors: list[str],
    large: list[Payload],
    tag: str,
    args: argparse.Namespace,
) -> Mixed:
    state = Mixed()
    n = len(readers) + len(editors) + 2
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout, limits=limits) as client:
        info = await client.get("/api/info", headers=bearer(readers[0]))
        if info.status_code != 200:
            sys.exit(f"GET /api/info with a reader token: HTTP {info.status_code}: {info.text}")
        info_json = info.json()
        if args.mode not in info_json["answer_modes"]:
            sys.exit(f"--mode {args.mode}: the server offers {info_json['answer_modes']}")
        print(
            f"{url}: {info_json['index']['counts']['documents']} documents; "
            f"{len(readers)} readers, {len(editors)} editors, {args.duration:.0f} s",
            file=sys.stderr,
        )
        await sanity_checks(client, readers[0], state)
        # The first ask builds the answerer, and every token's first use costs a scrypt check
        # (~50 ms, on the server's event loop): both before measuring.
        started = time.perf_counter()
        body = {"question": questions[0], "mode": args.mode}
        warm = await client.post("/api/ask", json=body, headers=bearer(readers[0]))
        if warm.status_code != 200:
            sys.exit(f"the warm-up ask failed: HTTP {warm.status_code}: {warm.text[:300]}")
        await asyncio.gather(
            *(
                client.post("/api/search", json={"query": questions[0]}, headers=bearer(t))
                for t in [*readers, *editors]
            )
        )
        state.warmup_seconds = time.perf_counter() - started

        state.t0 = time.perf_counter()
        state.deadline = args.duration
        state.editors_busy = len(editors)
        gap = (args.duration - args.large_at) / max(1, len(large))
        schedule: list[list[tuple[float, Payload]]] = [[] for _ in editors]
        for k, payload in enumerate(large):
            schedule[k % len(editors)].append((args.large_at + k * gap, payload))
        await asyncio.gather(
            *(
                reader_loop(client, i, token, questions, args, state)
                for i, token in enumerate(readers)
            ),
            *(
                editor_loop(client, e, token, schedule[e], articles, tag, args, state)
                for e, token in enumerate(editors)
            ),
        )
        state.seconds = state.now()
        listing = await timed(client, state, "list", "GET", "/api/documents", readers[0])
        if listing is not None:
            state.listed = {d["doc_id"] for d in listing.json()["documents"]}
    return state


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sanity_checks(client: httpx.AsyncClient, reader: str, state: Mixed) -> None:
    """Auth is on (no token: 401) and a reader cannot upload (403)."""
    response = await client.get("/api/info")
    state.sanity.append(("GET /api/info without a token", "401", str(response.status_code)))
    files = [("files", ("reader-may-not.txt", b"Ein Leser darf nichts hochladen.\n", "text/plain"))]
    response = await client.post("/api/documents", files=files, headers=bearer(reader))
    state.sanity.append(
        ("POST /api/documents with a reader token", "403", str(response.status_code))
    )


async def timed(
    client: httpx.AsyncClient,
    state: Mixed,
    endpoint: str,
    method: str,
    path: str,
    token: str,
    **kwargs: Any,
) -> httpx.Response | None:
    """Send one request and record it (as the last of `state.calls` when this returns: nothing
    runs between); the response when it was a 200, else None."""
    start = state.now()
    idle = start - state.last_end.get(token, start)
    try:
        response = await client.request(method, path, headers=bearer(token), **kwargs)
    except httpx.HTTPError as exc:
        state.last_end[token] = end = state.now()
        state.calls.append(Call(endpoint, start, end, type(exc).__name__, False, idle))
        state.first_errors.setdefault(f"{endpoint} {type(exc).__name__}", repr(exc)[:300])
        return None
    state.last_end[token] = end = state.now()
    ok = response.status_code == 200
    state.calls.append(Call(endpoint, start, end, str(response.status_code), ok, idle))
    if not ok:
        key = f"{endpoint} HTTP {response.status_code}"
        state.first_errors.setdefault(key, response.text[:300])
    return response if ok else None


async def pause(rng: random.Random, mean: float) -> None:
    if mean > 0:
        await asyncio.sleep(rng.uniform(0.5 * mean, 1.5 * mean))


async def reader_loop(
    client: httpx.AsyncClient,
    n: int,
    token: str,
    questions: list[str],
    args: argparse.Namespace,
    state: Mixed,
) -> None:
    rng = random.Random(args.random_seed * 1000 + n)
    await asyncio.sleep(rng.uniform(0, 2 * args.think))  # spread the starts
    i = n
    while state.readers_go_on():
        question = questions[i % len(questions)]
        i += 1
        await timed(client, state, "search", "POST", "/api/search", token, json={"query": question})
        await pause(rng, args.think)
        if not state.readers_go_on():
            break
        body = {"question": question, "mode": args.mode}
        await timed(client, state, "ask", "POST", "/api/ask", token, json=body)
        await pause(rng, args.think)


async def editor_loop(
    client: httpx.AsyncClient,
    e: int,
    token: str,
    large: list[tuple[float, Payload]],
    articles: list[dict[str, object]],
    tag: str,
    args: argparse.Namespace,
    state: Mixed,
) -> None:
    """Small uploads (one or two .txt files) and deletes of this editor's own earlier uploads
    until the deadline; each large upload at its time, then three of its documents deleted."""
    rng = random.Random(args.random_seed * 1000 + 500 + e)
    own: list[str] = []
    count = 0

    async def rest(mean: float) -> None:  # never past the next large upload or the deadline
        until = large[0][0] if large else state.deadline
        await asyncio.sleep(min(rng.uniform(0.5 * mean, 1.5 * mean), max(0.0, until - state.now())))

    try:
        await rest(args.editor_think)
        while True:
            now = state.now()
            if large and now >= large[0][0]:
                payload = large.pop(0)[1]
                big = [payload]
                if await upload(client, token, big, "upload-large", state, args.upload_timeout):
                    for doc_id in rng.sample(payload.doc_ids, min(3, len(payload.doc_ids))):
                        await delete(client, token, doc_id, state)
                continue
            if now >= state.deadline and not large:
                break
            if own and rng.random() < 0.4:
                await delete(client, token, own.pop(rng.randrange(len(own))), state)
            else:
                files = []
                for _ in range(2 if rng.random() < 0.3 else 1):
                    count += 1
                    files.append(small_text(articles, f"{tag}-e{e}-{count}.txt", rng))
                if await upload(client, token, files, "upload", state, args.timeout):
                    own.extend(d for f in files for d in f.doc_ids)
            await rest(args.editor_think)
    finally:
        state.editors_busy -= 1


async def upload(
    client: httpx.AsyncClient,
    token: str,
    payloads: list[Payload],
    endpoint: str,
    state: Mixed,
    timeout: float,
) -> bool:
    content_type = {".txt": "text/plain", ".jsonl": "application/jsonl"}
    files = [("files", (p.name, p.data, content_type[Path(p.name).suffix])) for p in payloads]
    ids = [d for p in payloads for d in p.doc_ids]
    response = await timed(
        client, state, endpoint, "POST", "/api/documents", token, files=files, timeout=timeout
    )
    if response is None:
        state.unsure.update(ids)
        return False
    report = response.json()
    stored = report["added"] + report["updated"] + report["unchanged"]
    if stored != len(ids) or report["problems"]:
        state.report_problems.append(
            f"{payloads[0].name}: sent {len(ids)} documents, report {stored} stored, "
            f"problems {report['problems'][:2]}"
        )
    state.uploaded.update((d, p.name) for p in payloads for d in p.doc_ids)
    if endpoint == "upload-large":
        state.large.append((state.calls[-1], len(payloads[0].data), len(ids)))
    return True


async def delete(client: httpx.AsyncClient, token: str, doc_id: str, state: Mixed) -> None:
    response = await timed(client, state, "delete", "DELETE", f"/api/documents/{doc_id}", token)
    if response is None:
        state.unsure.add(doc_id)
    else:
        state.deleted.add(doc_id)


def read_audit(path: Path) -> Counter[str]:
    """Records of the audit log by action, for the editors' writes."""
    counts: Counter[str] = Counter()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if str(record.get("who", "")).startswith("editor-"):
                counts[record["action"]] += 1
    return counts


def report_mixed(
    state: Mixed,
    args: argparse.Namespace,
    large: list[Payload],
    audit: Counter[str],
    load: MachineLoad,
) -> None:
    readers, editors = args.clients - args.editors, args.editors
    print(
        f"mixed workload: {readers} readers (search, then ask with mode {args.mode!r}; pause "
        f"{args.think:g} s on average), {editors} editors (small .txt uploads and deletes, "
        f"pause {args.editor_think:g} s; {args.large_uploads} large upload(s)); auth on, one "
        f"token per client; editors started work for {args.duration:g} s, the run took "
        f"{state.seconds:.1f} s (token warm-up {state.warmup_seconds:.1f} s before it)"
    )
    reads = sum(c.endpoint in ("search", "ask") for c in state.calls)
    threads = os.environ.get("RAG_EMBEDDING__THREADS", "all cores (default)")
    print(
        f"readers sent {reads / state.seconds:.1f} requests/s; server embedding threads: {threads}"
    )
    print(f"rate limits: {rate_limits()}")
    for what, expected, got in state.sanity:
        verdict = "ok" if got == expected else "UNEXPECTED"
        print(f"sanity: {what}: {got} (expected {expected}) {verdict}")

    endpoints = ["search", "ask", "upload", "upload-large", "delete", "list"]
    heads = ("calls", "ok", "errors")
    print(f"{'endpoint':<13} " + " ".join(f"{h:>6}" for h in heads) + f" {TIMES}")
    for endpoint in endpoints:
        calls = [c for c in state.calls if c.endpoint == endpoint]
        if not calls:
            continue
        ok = [c.ms for c in calls if c.ok]
        p50, p95, top = stats(ok)
        print(
            f"{endpoint:<13} {len(calls):>6} {len(ok):>6} {len(calls) - len(ok):>6} "
            f"{p50:>8} {p95:>8} {top:>8}"
        )
    errors = Counter((c.endpoint, c.status) for c in state.calls if not c.ok)
    print(f"errors: {sum(errors.values())}" + ("" if errors else " (none)"))
    for (endpoint, status), count in sorted(errors.items()):
        print(f"  {endpoint} {status}: {count}")
    for key, text in state.first_errors.items():
        print(f"  first {key}: {text}")
    for c in [c for c in state.calls if not c.ok and not c.status.isdigit()][:10]:
        print(
            f"  {c.endpoint} {c.status} at t {c.start:.1f}-{c.end:.1f} s, "
            f"{c.idle:.2f} s after the client's previous request"
        )
    by_status = Counter(c.status for c in state.calls)
    print(
        f"HTTP 401: {by_status['401']}, HTTP 403: {by_status['403']}, HTTP 429: {by_status['429']}"
    )

    uploads = [c for c in state.calls if c.endpoint in ("upload", "upload-large")]
    big = [c for c in uploads if c.endpoint == "upload-large"]
    for call, size, docs in state.large:
        print(
            f"large upload: {size / 1e6:.2f} MB, {docs} documents, t {call.start:.1f}-"
            f"{call.end:.1f} s ({call.end - call.start:.1f} s), HTTP {call.status}"
        )
    for call in big:
        if not call.ok:
            print(f"large upload FAILED: t {call.start:.1f}-{call.end:.1f} s, {call.status}")
    print(f"{'requests':<40} {'n':>5} {TIMES}")
    for endpoint in ("ask", "search"):
        calls = [c for c in state.calls if c.endpoint == endpoint and c.ok]
        groups = [
            (f"{endpoint} overlapping a large upload", [c for c in calls if overlaps(c, big)]),
            (f"{endpoint} overlapping any upload", [c for c in calls if overlaps(c, uploads)]),
            (f"{endpoint} overlapping no upload", [c for c in calls if not overlaps(c, uploads)]),
        ]
        for label, group in groups:
            p50, p95, top = stats([c.ms for c in group])
            print(f"{label:<40} {len(group):>5} {p50:>8} {p95:>8} {top:>8}")
    asks = [c for c in state.calls if c.endpoint == "ask"]
    if asks:
        longest = max(asks, key=lambda c: c.ms)
        during = (
            "during a large upload"
            if overlaps(longest, big)
            else ("during a small upload" if overlaps(longest, uploads) else "outside uploads")
        )
        print(
            f"longest ask wait: {longest.ms:.0f} ms (t {longest.start:.1f} s, HTTP "
            f"{longest.status}, {during})"
        )

    if state.listed is None:
        print("documents: GET /api/documents failed; not checked")
    else:
        kept = set(state.uploaded) - state.deleted - state.unsure
        gone = state.deleted - state.unsure
        lost = kept - state.listed
        back = gone & state.listed
        print(
            f"documents: {len(state.uploaded)} uploaded, {len(state.deleted)} deleted, "
            f"{len(kept)} should be listed: {len(kept) - len(lost)} are, lost {len(lost)}; "
            f"deleted but still listed {len(back)}; "
            f"{len(state.unsure)} of failed requests not checked"
        )
        for doc_id in sorted(lost)[:5]:
            print(f"  lost: {doc_id} ({state.uploaded[doc_id]})")
        for doc_id in sorted(back)[:5]:
            print(f"  still listed after its delete: {doc_id}")
    for problem in state.report_problems[:5]:
        print(f"upload report mismatch: {problem}")
    if state.report_problems:
        print(f"upload report mismatches: {len(state.report_problems)}")
    ok_uploads = sum(c.ok for c in uploads)
    ok_deletes = sum(c.ok for c in state.calls if c.endpoint == "delete")
    print(
        f"audit log: {audit['upload']} upload and {audit['remove']} remove records by editors "
        f"(expected {ok_uploads} and {ok_deletes})"
    )
    print(f"machine: {load}; {os.cpu_count()} CPUs")


TIMES = f"{'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"


def overlaps(call: Call, intervals: list[Call]) -> bool:
    return any(call.start < u.end and call.end > u.start for u in intervals)


def stats(ms: list[float]) -> tuple[str, str, str]:
    if not ms:
        return "-", "-", "-"
    p50, p95 = np.percentile(ms, [50, 95])
    return f"{p50:.0f}", f"{p95:.0f}", f"{max(ms):.0f}"


if __name__ == "__main__":
    main()
