"""PDF text extraction in a worker process, under a per-file time limit.

A pathological PDF (a content stream that keeps pypdf busy for minutes, a decompression bomb)
must not hang `rag index` or the server. A Python thread cannot be stopped, so extraction runs
in a separate process that is killed when a file takes longer than `chunking.pdf_seconds`; the
file becomes one problem and the next PDF gets a fresh worker. A worker that crashes (a
segfault, the out-of-memory killer) is the same: one problem, and the batch goes on.

The worker is a plain `python -c` child (not `multiprocessing`, whose "spawn" would re-run the
caller's main script, and whose "fork" is unsafe in the threaded server), started on the first
PDF and reused. Requests and replies are length-prefixed frames on its stdin/stdout: the PDF's
bytes, and JSON back. The first PDF of a process pays the start, 1-2 s (importing pypdf and this
package); every later one only the round trip of its bytes and text. Measured on 2 busy cores
(median of 40 reads): a 2-page PDF 1.5 ms in-process, 1.9 ms through the worker; a 50-page PDF
128 ms against 133 ms, so about 0.4 ms plus 0.1 ms a page.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from rag.errors import IngestError
from rag.ingest.metadata import Extracted
from rag.ingest.pdf import parse_pdf

DEFAULT_PDF_SECONDS = 30.0
"""Default of `chunking.pdf_seconds`."""

STARTUP_SECONDS = 120.0
"""How long a new worker may take to start (imports, on a busy machine); this is not part of
any file's time limit."""

MAX_WORKERS = max(1, min(4, os.cpu_count() or 1))
"""PDFs read at the same time (concurrent uploads); more wait, before their time starts."""

MAX_RECORDS = 50
"""Log records a worker hands back per file (a hostile file can warn on every object)."""

_LIMIT_SETTING = "chunking.pdf_seconds (RAG_CHUNKING__PDF_SECONDS)"
# Replies go to a copy of stdout made before any import, and stdout itself to stderr: a stray
# print (of a library, on import) must not corrupt them.
_WORKER_MAIN = (
    "import os, sys; replies = os.fdopen(os.dup(1), 'wb'); os.dup2(2, 1); sys.stdout = sys.stderr; "
    "from rag.ingest.pdf_worker import serve; serve(replies)"
)
_LENGTH = struct.Struct(">Q")


def extract_pdf(raw: bytes, source: str, password: str | None, seconds: float | None) -> Extracted:
    """`parse_pdf` in a worker process, stopped after `seconds` (None: in this process, with
    no limit). Raises `IngestError` for a damaged, encrypted, crashing or too slow PDF. Costs
    about 0.4 ms a PDF more than in-process, and 1-2 s once for the worker's start."""
    if seconds is None:
        return parse_pdf(raw, source, password)
    return _workers.run(raw, source, password, seconds)


class _Worker:
    """One child process that reads PDFs sent to it, one at a time."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])  # the same `rag` as ours
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_MAIN],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": path},
            )
        except OSError as error:
            raise IngestError(
                f"the PDF reader process could not be started ({error}); check that "
                f"{sys.executable!r} can be run"
            ) from None
        # Replies are read by a thread so that waiting for one can time out on any platform.
        self.replies: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read_replies, name="rag-pdf-replies", daemon=True).start()
        try:
            ready = self.replies.get(timeout=STARTUP_SECONDS)
        except queue.Empty:
            ready = None
        if ready != b"ready":
            self.stop()
            raise IngestError(
                f"the PDF reader process did not start (exit code {self.process.returncode}); "
                f"its error is in the log above, or run: {sys.executable} -c "
                "'from rag.ingest.pdf_worker import serve'"
            )

    def run(self, raw: bytes, source: str, password: str | None, seconds: float) -> Extracted:
        """The PDF's text; after a timeout or a crash the worker is stopped (`alive()` False)."""
        assert self.process.stdin is not None
        try:
            header = json.dumps({"source": source, "password": password}).encode()
            _write_frames(self.process.stdin, header, raw)
            reply = self.replies.get(timeout=seconds)
        except queue.Empty:
            self.stop()
            raise IngestError(
                f"{source}: took longer than {seconds:g} s to read; raise {_LIMIT_SETTING} or "
                "split/repair the PDF (e.g. with qpdf, or print it to a new PDF)"
            ) from None
        except OSError:  # the worker died before it had the whole request
            reply = None
        if reply is None:
            self.stop()
            raise IngestError(
                f"{source}: the PDF reader crashed on this file (exit code "
                f"{self.process.returncode}); the file may be damaged or too large once "
                "unpacked: repair it (e.g. with qpdf) or export it again"
            )
        answer = json.loads(reply)
        for name, level, message in answer["records"]:
            logging.getLogger(name).log(level, "%s", message)
        if answer["kind"] == "problem":
            raise IngestError(answer["value"])
        value = answer["value"]
        return Extracted(**{**value, "pages": tuple(tuple(span) for span in value["pages"])})

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:  # a request half-written to the dead worker
                    pass

    def _read_replies(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while (frame := _read_frame(stdout)) is not None:
                self.replies.put(frame)
        except (OSError, ValueError):  # closed by `stop`
            pass
        self.replies.put(None)


class _Workers:
    """Idle workers for reuse, and at most `limit` of them busy at once."""

    def __init__(self, limit: int) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(limit)

    def run(self, raw: bytes, source: str, password: str | None, seconds: float) -> Extracted:
        with self._slots:
            try:
                worker = self._take()
            except IngestError as error:
                raise IngestError(f"{source}: {error}") from None
            try:
                return worker.run(raw, source, password, seconds)
            except IngestError:
                raise  # the file's problem; `run` stopped the worker if it had to go
            except BaseException:
                worker.stop()  # interrupted mid-file (Ctrl-C): its state is unknown
                raise
            finally:
                if worker.alive():
                    with self._lock:
                        self._idle.append(worker)

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.stop()
        return _Worker()

    def stop(self) -> None:
        """Stop the idle workers (at exit)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


_workers = _Workers(MAX_WORKERS)
atexit.register(_workers.stop)


def _write_frames(stream: IO[bytes], *frames: bytes) -> None:
    for frame in frames:
        stream.write(_LENGTH.pack(len(frame)))
        stream.write(frame)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed frame, or None at the end of the stream."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


# ------------------------------------------------------------------------------- the worker
def serve(replies: IO[bytes]) -> None:
    """The worker's main loop: read a PDF per request from stdin, write each reply to
    `replies`, until stdin closes."""
    # Ctrl-C reaches the whole process group; the parent decides, the worker says nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer
    records = _Collector()
    logging.getLogger().addHandler(records)
    logging.getLogger().setLevel(logging.WARNING)
    logging.captureWarnings(True)
    import pypdf  # noqa: F401  # imported before "ready": its import does not count against a PDF's time

    _write_frames(replies, b"ready")
    while (header := _read_frame(requests)) is not None:
        raw = _read_frame(requests)
        if raw is None:
            return
        request = json.loads(header)
        kind, value = _extract(raw, request["source"], request["password"])
        answer = {"kind": kind, "value": value, "records": records.take()}
        _write_frames(replies, json.dumps(answer).encode())


def _extract(raw: bytes, source: str, password: str | None) -> tuple[str, Any]:
    try:
        return "ok", asdict(parse_pdf(raw, source, password))
    except IngestError as error:
        return "problem", str(error)
    except Exception as error:  # pypdf on a hostile file: one problem, never a dead worker
        return "problem", (
            f"{source}: cannot be read as a PDF ({type(error).__name__}: {error}); the file may "
            "be damaged: repair it (e.g. with qpdf) or export it again"
        )


class _Collector(logging.Handler):
    """Keeps the worker's warnings (pypdf's, a skipped page) for the parent to log."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self._records) < MAX_RECORDS:
            self._records.append((record.name, record.levelno, record.getMessage()))

    def take(self) -> list[tuple[str, int, str]]:
        records, self._records = self._records, []
        return records
