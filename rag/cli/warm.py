"""The warm CLI: `rag search`, `rag ask` and `rag timeline` answered by a running `rag serve`.

A `rag serve` (or `rag start`) publishes a small record in a per-user directory while it
listens; a command that finds one for its index sends its request there instead of loading the
models itself, and prints exactly what it prints in-process (both paths produce the HTTP API's
JSON, which the commands render).

Discovery: `<runtime dir>/<sha256 of the index's resolved path>.json`, where the runtime dir is
`$RAG_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/newsrag`, else `~/.cache/newsrag/servers`; the
directory is the user's own (mode 0700, other owners refused) and each record is 0600. A
record holds the server's address, pid, start time, a digest of the settings it was started
with and, when the server requires access tokens, a reader token that exists only in that
server's memory and in this record: the same user can read the index files anyway, so the
token gives that user nothing new, and no other user can read it.

A command stays in-process when: `--no-server` (env RAG_NO_SERVER=1); no record for its
index (the default index: a record whose server serves its own settings' default); the
record's pid is gone; the settings differ (another `rag.toml` or its content, other `RAG_*`
variables, the `server` section aside); an option the API lacks (`--dedupe`, `--batch`); or the
server cannot take the request (connection refused, 401/403/404/422/429, any server failure
other than a bad argument or a language-model error). Nothing has been printed at that point.

With RAG_WARM=SECONDS and no server running, the first command starts one itself in the
background (`rag serve --no-ui --idle-exit SECONDS` on a free loopback port, its output in the
runtime dir), waits for it and sends its request there; the next commands find it; it stops
after SECONDS without a request.

This module imports no model, no index and no HTTP library beyond the standard one: the whole
point is a `rag search` that reaches the server in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from rag.types import Filters

log = logging.getLogger(__name__)

RECORD_VERSION = 1
TIMEOUT = 300.0
"""Seconds to wait for the server (an answer by a language model on a CPU can take minutes)."""

WORKER_ENV = "RAG_WARM"
"""Seconds of idleness after which a background worker started by a command exits; unset or 0:
the commands start no worker."""
WORKER_START_TIMEOUT = 600.0
"""Seconds a command waits for the worker it started (a first run may build the model)."""

_UNRELATED_ENV = frozenset(
    {"RAG_CONFIG", "RAG_INDEX_DIR", "RAG_NO_SERVER", "RAG_RUNTIME_DIR", WORKER_ENV}
)
"""`RAG_*` variables that do not change what a search or an answer returns (RAG_CONFIG is
replaced by the file it names, the index directory is compared on its own)."""

_RAISED = frozenset({"ConfigError", "GeneratorError"})
"""Server errors that are this process's errors too (a bad argument, the language model
failing): raised as they are. Any other failure runs the command in-process instead."""


# ------------------------------------------------------------------------------ the record
@dataclass(frozen=True)
class ServerRecord:
    """What a running `rag serve` publishes about itself for the commands of its user."""

    index: str
    """The served index directory, resolved."""
    default_index: bool
    """Whether that directory is the server's settings' `index_dir` (no `--index` given)."""
    host: str
    """Where to connect (a wildcard address becomes loopback)."""
    port: int
    pid: int
    started: str
    settings: str
    """`settings_fingerprint()` of the server's environment."""
    token: str | None = None
    """A reader token for this user's commands when the server requires tokens."""

    @classmethod
    def new(
        cls,
        index: Path,
        default_index: Path,
        host: str,
        port: int,
        token: str | None = None,
    ) -> ServerRecord:
        """The record of this process serving `index` on `host:port` (`default_index`: its
        settings' `index_dir`). A default that RAG_INDEX_DIR gave is not the default of a
        command without `--index` (the variable would have been its `--index`)."""
        from datetime import datetime, timezone

        resolved = Path(index).resolve()
        from_env = any(name.upper() == "RAG_INDEX_DIR" for name in os.environ)
        return cls(
            index=str(resolved),
            default_index=not from_env and resolved == Path(default_index).resolve(),
            host=_connect_host(host),
            port=port,
            pid=os.getpid(),
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            settings=settings_fingerprint(),
            token=token,
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {"version": RECORD_VERSION, "url": self.url, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> ServerRecord | None:
        """The record, or None for anything else (another version, a damaged file)."""
        if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
            return None
        try:
            record = cls(
                index=str(data["index"]),
                default_index=bool(data["default_index"]),
                host=str(data["host"]),
                port=int(data["port"]),
                pid=int(data["pid"]),
                started=str(data["started"]),
                settings=str(data["settings"]),
                token=str(data["token"]) if data.get("token") else None,
            )
        except (KeyError, TypeError, ValueError):
            return None
        return record


def new_token() -> str:
    """A fresh secret for `ServerRecord.token` (never written anywhere else)."""
    import secrets

    return f"nrl_{secrets.token_urlsafe(32)}"


def settings_fingerprint() -> str:
    """A digest of what this process's settings are read from: the TOML file (its path and
    content), the `RAG_*` variables (but those in `_UNRELATED_ENV` and the `server` section,
    which shapes no answer) and the home directories the default paths derive from. Equal
    digests mean a server answers as this process would."""
    config = Path(os.environ.get("RAG_CONFIG", "rag.toml"))
    try:
        toml: list[str] | None = [
            str(config.resolve()),
            hashlib.sha256(config.read_bytes()).hexdigest(),
        ]
    except OSError:  # no file: the settings' defaults
        toml = None
    env = sorted(
        (name.upper(), value)
        for name, value in os.environ.items()
        if name.upper().startswith("RAG_")
        and name.upper() not in _UNRELATED_ENV
        and not name.upper().startswith("RAG_SERVER__")
    )
    homes = [os.environ.get(v) for v in ("HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")]
    text = json.dumps([toml, env, homes], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def runtime_dir() -> Path:
    """Where the records are: $RAG_RUNTIME_DIR, $XDG_RUNTIME_DIR/newsrag or the user's cache."""
    explicit = os.environ.get("RAG_RUNTIME_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "newsrag"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("newsrag")) / "servers"


def record_path(index: Path, folder: Path | None = None) -> Path:
    """The record's file for the index at `index`."""
    key = hashlib.sha256(str(Path(index).resolve()).encode()).hexdigest()[:24]
    return (folder or runtime_dir()) / f"{key}.json"


# ------------------------------------------------------------------------------ the server side
def publish(record: ServerRecord) -> Path | None:
    """Write `record` (0600, atomically) for this user's commands; None when the runtime dir
    is not safely this user's (the server runs on; the commands just stay in-process)."""
    import tempfile  # the server's side only: the commands' start-up does not pay for it

    folder = runtime_dir()
    if not _private_dir(folder, create=True):
        return None
    path = record_path(Path(record.index), folder)
    fd, tmp = tempfile.mkstemp(prefix=".record-", dir=folder)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record.to_json(), f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def withdraw(record: ServerRecord) -> None:
    """Remove `record`'s file if it is still this server's (another server of the same index,
    started since, has replaced it otherwise)."""
    path = record_path(Path(record.index))
    try:
        if _read(path) == record:
            path.unlink(missing_ok=True)
    except OSError as exc:  # the server stops anyway; a stale record is ignored (dead pid)
        log.warning("could not remove %s: %s", path, exc)


def _private_dir(folder: Path, *, create: bool) -> bool:
    """Whether `folder` is a directory of this user that no one else can enter (a missing
    one is created so when `create`)."""
    try:
        if create:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return False
    if not hasattr(os, "getuid"):  # no owners to check (Windows): the profile is private
        return folder.is_dir()
    private = (
        stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077
    )
    if not private and create:
        log.warning(
            "%s is not a directory only this user can enter (mode 0700): `rag` commands will "
            "not use this server; set RAG_RUNTIME_DIR to such a directory",
            folder,
        )
    return private


# ------------------------------------------------------------------------------ the command side
def find(index_dir: Path | None) -> ServerRecord | None:
    """The live server of `index_dir` (None: the settings' default index) started with this
    process's settings, if there is one."""
    folder = runtime_dir()
    if not _private_dir(folder, create=False):
        return None
    if index_dir is not None:
        paths = [record_path(index_dir, folder)]
    else:
        paths = sorted(folder.glob("*.json"))
    fingerprint = settings_fingerprint()
    wanted = str(Path(index_dir).resolve()) if index_dir is not None else None
    for path in paths:
        record = _read(path)
        if record is None or record.settings != fingerprint or not _alive(record.pid):
            continue
        if (record.index == wanted) if wanted is not None else record.default_index:
            return record
    return None


def _read(path: Path) -> ServerRecord | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return ServerRecord.from_json(data)


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end it there; the connection tells instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user has the pid now: try, and see
        return True
    return True


# ------------------------------------------------------------------------------ the worker
def start_worker(index_dir: Path | None) -> ServerRecord | None:
    """With RAG_WARM=SECONDS: a `rag serve --no-ui --idle-exit SECONDS` of `index_dir`, started
    in the background (or the one another command is starting), once it listens; None without
    RAG_WARM, or when it does not come up (the command then runs in-process)."""
    idle = _worker_idle()
    if idle is None or (index_dir is not None and not Path(index_dir).is_dir()):
        return None  # no worker wanted, or no index to serve (in-process says so)
    folder = runtime_dir()
    if not _private_dir(folder, create=True):
        return None
    import subprocess
    import sys
    import time

    key = record_path(index_dir, folder).stem if index_dir is not None else "default"
    lock = folder / f"{key}-{settings_fingerprint()[:12]}.starting"
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        worker = None  # another command is starting it: wait for its record
        if time.time() - _mtime(lock) > WORKER_START_TIMEOUT:
            lock.unlink(missing_ok=True)  # left by a command that died while waiting
    else:
        command = [sys.executable, "-m", "rag.cli", "serve", "--no-ui", "--idle-exit", f"{idle:g}"]
        command += ["--host", "127.0.0.1", "--port", str(_free_port())]
        if index_dir is not None:
            command += ["--index", str(index_dir)]
        # This user's own process: no per-minute limit on its asks (RAG_SERVER__* is not part
        # of the settings' fingerprint).
        env = {**os.environ, "RAG_SERVER__ASK_PER_MINUTE": "0"}
        with (folder / f"{key}.log").open("ab") as out:
            worker = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # not stopped by the shell's Ctrl-C of this command
            )  # fmt: skip
        log.info("started a background worker (pid %d, exits after %g s idle)", worker.pid, idle)
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while time.monotonic() < deadline:
            record = find(index_dir)
            if record is not None:
                return record
            if (worker is not None and worker.poll() is not None) or (
                worker is None and not lock.exists()
            ):
                break  # it failed (its log says why), or the other command gave up
            time.sleep(0.05)
        log.info("no background worker came up (see %s): running in-process", folder)
        return find(index_dir)
    finally:
        if worker is not None:
            lock.unlink(missing_ok=True)


def _worker_idle() -> float | None:
    value = os.environ.get(WORKER_ENV, "").strip()
    try:
        seconds = float(value) if value else 0.0
    except ValueError:
        log.warning("%s=%r is not a number of seconds: no background worker", WORKER_ENV, value)
        return None
    return seconds if seconds >= 1 else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ requests
def search(
    index_dir: Path | None,
    query: str,
    k: int | None,
    filters: Filters | None,
    mode: str | None,
    rerank: bool | None,
    *,
    full: bool,
) -> dict[str, Any] | None:
    """`POST /api/search` (`rag search --json`'s shape; with `full`, hits as
    `rag.export.answer_json.hit_record`) from the server of `index_dir`; None: run in-process."""
    body = _set(query=query, k=k, filters=_filters(filters), mode=mode, rerank=rerank)
    return _call(index_dir, "POST", "/api/search", body={**body, "full": full})


def ask(
    index_dir: Path | None, question: str, filters: Filters | None, mode: str | None
) -> dict[str, Any] | None:
    """`POST /api/ask`: the answer as `rag ask --json` prints it; None: run in-process."""
    body = _set(question=question, filters=_filters(filters), mode=mode)
    return _call(index_dir, "POST", "/api/ask", body=body)


def ask_stream(
    index_dir: Path | None, question: str, filters: Filters | None, mode: str | None
) -> Iterator[str | dict[str, Any]] | None:
    """`POST /api/ask/stream`: the answer's text pieces, then the answer (as
    `rag.export.answer_json.answer_record`); None: run in-process. A failure after the stream
    began is raised (text may have been printed)."""
    body = _set(question=question, filters=_filters(filters), mode=mode)
    response = _open(index_dir, "POST", "/api/ask/stream", body={**body, "full": True})
    return None if response is None else _answer_events(response)


def timeline(
    index_dir: Path | None,
    query: str,
    by: str,
    k: int | None,
    min_score: float | None,
    filters: Filters | None,
) -> dict[str, Any] | None:
    """`GET /api/timeline`: the timeline as `rag timeline --json` prints it; None: in-process."""
    f = _filters(filters) or {}
    params: dict[str, Any] = _set(
        q=query, by=by, k=k, min_score=min_score, date_from=f.get("date_from"),
        date_to=f.get("date_to"),
    )  # fmt: skip
    params.update(source=f.get("sources", []), language=f.get("languages", []))
    return _call(index_dir, "GET", "/api/timeline", params=params)


def _set(**fields: Any) -> dict[str, Any]:
    """The fields given (the server's defaults are this process's)."""
    return {name: value for name, value in fields.items() if value is not None}


def _filters(filters: Filters | None) -> dict[str, Any] | None:
    """As given: an answer records its filters, and `Filters()` is not None there."""
    return filters.to_json() if filters is not None else None


def _call(
    index_dir: Path | None,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    response = _open(index_dir, method, path, body=body, params=params)
    if response is None:
        return None
    with response:
        try:
            data = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            log.info("reading the server's answer failed (%s): running in-process", exc)
            return None
    return data if isinstance(data, dict) else None


def _open(
    index_dir: Path | None,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> http.client.HTTPResponse | None:
    """The server's successful response to the request, open for reading; None when there is
    no usable server or it declined. A bad argument or a model failure is raised."""
    record = find(index_dir) or start_worker(index_dir)
    if record is None:
        return None
    headers = {"Accept": "application/json", "Connection": "close"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if record.token:
        headers["Authorization"] = f"Bearer {record.token}"
    target = f"{path}?{urlencode(params, doseq=True)}" if params else path
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    connection = http.client.HTTPConnection(record.host, record.port, timeout=TIMEOUT)
    try:
        connection.request(method, target, body=data, headers=headers)
        response = connection.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        log.info("the server at %s cannot be used (%s): running in-process", record.url, exc)
        return None
    if response.status >= 400:
        with response:
            _raise_or_decline(record, response)
        connection.close()
        return None
    log.info("%s %s: answered by the server at %s (pid %d)", method, path, record.url, record.pid)
    return response


def _raise_or_decline(record: ServerRecord, response: http.client.HTTPResponse) -> None:
    """Raise the server's error when it is one this process would raise too."""
    try:
        error = json.loads(response.read()).get("error") or {}
        kind, message = str(error.get("type", "")), str(error.get("message", ""))
    except (OSError, http.client.HTTPException, ValueError, AttributeError):
        kind, message = "", ""
    if kind in _RAISED:
        raise _error(kind, message)
    log.info(
        "the server at %s answered %d (%s: %s): running in-process",
        record.url, response.status, kind or "no error type", message,
    )  # fmt: skip


def _error(kind: str, message: str) -> Exception:
    """The project's error class named `kind` (RagError for one this process does not know)."""
    from rag import errors

    cls = getattr(errors, kind, None)
    known = isinstance(cls, type) and issubclass(cls, errors.PROJECT_ERRORS)
    return cls(message) if known else errors.RagError(message or f"the server failed ({kind})")


def _answer_events(response: http.client.HTTPResponse) -> Iterator[str | dict[str, Any]]:
    """Server-Sent Events (`delta`, then `answer`; or `error`) as text pieces and the answer."""
    with response:
        for event, data in _sse(response):
            if event == "delta":
                yield str(data.get("text", ""))
            elif event == "answer":
                yield data
                return
            elif event == "error":
                error = data.get("error") or {}
                raise _error(str(error.get("type", "")), str(error.get("message", "")))
    raise _error("ServerError", "the answer stream ended without an answer")


def _sse(response: http.client.HTTPResponse) -> Iterator[tuple[str, dict[str, Any]]]:
    event, data = "message", []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


def _connect_host(host: str) -> str:
    """The address a local client reaches a server listening on `host` at."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "::1"
    return host.strip("[]")
