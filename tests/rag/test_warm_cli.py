"""The warm CLI (`rag.cli.warm`): while a `rag serve` of the same index runs, `rag search`,
`rag ask` and `rag timeline` are answered by it and print exactly what they print in-process
(text and `--json`); whatever the server cannot answer as this process would runs in-process.

A real `rag serve --no-ui` (a subprocess, with access tokens required) serves an index of the
seeds; in-process runs are the same commands with `--no-server`. Which path ran is seen by
replacing the commands' `_engine` (the in-process path's only way to the index).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import rag.cli
from rag.cli import BUILT_IN, main, warm
from rag.engine import Engine
from tests.seeds import SEED_QUESTIONS, SEEDS

QUESTIONS = [q["question"] for q in SEED_QUESTIONS]
AID_QUESTION = "Wie viel ist das neue Hilfspaket von Joe Biden wert?"
UNANSWERABLE = "Who won the Super Bowl 50?"
COMMAND_MODULES = ("search", "ask", "timeline")

MODEL_FIXTURES = frozenset({"served", "seed_index"})
"""The index is embedded with the real model and the server loads it: these tests are slow."""


def run(args: Sequence[Any]) -> Result:
    """`rag ARGS` in this process; stdout and stderr apart."""
    return CliRunner().invoke(main, [str(a) for a in args])


# --- a real `rag serve` ------------------------------------------------------------------------
@dataclass
class Served:
    process: subprocess.Popen[bytes]
    index: Path
    runtime: Path
    log: Path

    @property
    def record_file(self) -> Path:
        return warm.record_path(self.index, self.runtime)

    def record(self) -> warm.ServerRecord:
        record = warm.ServerRecord.from_json(json.loads(self.record_file.read_text("utf-8")))
        assert record is not None
        return record


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory, settings, embedder) -> Path:
    path = tmp_path_factory.mktemp("warm") / "idx"
    with Engine.open(path, settings, embedder=embedder) as engine:
        assert engine.add([SEEDS]).added == 5
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(seed_index, tmp_path_factory) -> Iterator[Served]:
    """`rag serve --index DIR --no-ui` with a tokens file (so tokens are required), its records
    in a private runtime dir of its own; stopped with SIGTERM at the end of the module."""
    from ui.auth import TokenStore

    base = tmp_path_factory.mktemp("serve")
    runtime, tokens, log = base / "run", base / "tokens.json", base / "serve.log"
    TokenStore(tokens).create("admin", "admin")
    env = {
        **os.environ,
        "RAG_RUNTIME_DIR": str(runtime),
        "RAG_SERVER__TOKENS_FILE": str(tokens),  # the server section is not in the fingerprint
        "RAG_SERVER__ASK_PER_MINUTE": "0",
    }
    args = ["serve", "--index", str(seed_index), "--no-ui", "--port", str(_free_port())]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", *args],
            env=env, cwd=os.getcwd(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    served = Served(process, seed_index, runtime, log)
    deadline = time.monotonic() + 600
    while not served.record_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"rag serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    yield served
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


@pytest.fixture
def warm_env(served, monkeypatch) -> Served:
    """This process finds `served`'s records."""
    monkeypatch.setenv("RAG_RUNTIME_DIR", str(served.runtime))
    return served


@pytest.fixture
def in_process(monkeypatch) -> list[Path | None]:
    """The index directories the commands open in this process (they still work)."""
    opened: list[Path | None] = []

    def spy(index_dir: Path | None, *args: Any) -> Engine:
        opened.append(index_dir)
        return rag.cli._engine(index_dir, *args)

    for name in COMMAND_MODULES:
        monkeypatch.setattr(f"rag.cli.{name}._engine", spy)
    return opened


def by_server(args: Sequence[Any], monkeypatch: pytest.MonkeyPatch) -> Result:
    """`rag ARGS`, failing if it runs in-process."""
    with monkeypatch.context() as m:
        for name in COMMAND_MODULES:
            m.setattr(f"rag.cli.{name}._engine", _refuse)
        return run(args)


def both(args: Sequence[Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Result, Result]:
    """`rag ARGS` answered by the server, then with `--no-server`."""
    return by_server(args, monkeypatch), run([*args, "--no-server"])


def _refuse(*args: Any) -> Engine:
    raise AssertionError("the command ran in-process, not through the server")


def assert_same(remote: Result, local: Result) -> None:
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, (remote.output, remote.exception)
    assert remote.stdout == local.stdout
    assert remote.stderr == local.stderr


# --- the server's answers are the in-process ones, byte for byte ------------------------------
@pytest.mark.parametrize("as_json", [False, True])
def test_search_prints_what_it_prints_in_process(warm_env, seed_index, monkeypatch, as_json):
    for question in QUESTIONS[:3]:
        args = ["search", question, "--index", seed_index, *(["--json"] if as_json else [])]
        remote, local = both(args, monkeypatch)
        assert_same(remote, local)
        assert "[1] " in local.stdout or '"rank": 1' in local.stdout


@pytest.mark.parametrize(
    "options",
    [
        ["-k", "3", "--mode", "keyword"],
        ["--from", "2023", "--no-rerank", "--json"],
        ["--source", f"{SEEDS.as_posix()}/001_9706a68281888026.txt", "--mode", "dense"],
        ["--language", "xx", "--json"],  # nothing matches: "no matching passages" / no hits
    ],
)
def test_search_options_reach_the_server(warm_env, seed_index, monkeypatch, options):
    remote, local = both(["search", "Was sagte Stoltenberg?", "--index", seed_index, *options],
                         monkeypatch)  # fmt: skip
    assert_same(remote, local)


@pytest.mark.parametrize(
    "options", [[], ["--json"], ["--no-stream"], ["--from", "2023", "--to", "2023-12"]]
)
def test_ask_prints_what_it_prints_in_process(warm_env, seed_index, monkeypatch, options):
    remote, local = both(["ask", AID_QUESTION, "--index", seed_index, *options], monkeypatch)
    assert_same(remote, local)
    assert "700 Millionen Dollar" in local.stdout or "--from" in options


@pytest.mark.parametrize("as_json", [False, True])
def test_an_unanswerable_question_shows_the_same_passages(
    warm_env, seed_index, monkeypatch, as_json
):
    args = ["ask", UNANSWERABLE, "--index", seed_index, *(["--json"] if as_json else [])]
    remote, local = both(args, monkeypatch)
    assert_same(remote, local)
    assert "do not answer" in local.stdout


@pytest.mark.parametrize("options", [[], ["--json"], ["--by", "year", "-k", "20"]])
def test_timeline_prints_what_it_prints_in_process(warm_env, seed_index, monkeypatch, options):
    remote, local = both(["timeline", "Ukraine Verhandlungen", "--index", seed_index, *options],
                         monkeypatch)  # fmt: skip
    assert_same(remote, local)
    assert "2022" in local.stdout


def test_a_bad_argument_is_the_same_error(warm_env, seed_index, monkeypatch):
    """The server's ConfigError is raised here as it is: one line, exit code 1."""
    args = ["ask", AID_QUESTION, "--index", seed_index, "--mode", "generate"]
    remote, local = both(args, monkeypatch)
    assert local.exit_code == remote.exit_code == 1
    assert remote.stderr == local.stderr
    assert remote.stderr.startswith("error: no language model is configured")


def test_a_served_search_imports_no_engine_no_index_and_no_model(warm_env, seed_index):
    """The point of the warm path: it reaches the server without numpy, FAISS, torch or the
    Engine (a real process, as from the shell)."""
    code = (
        "import sys\n"
        "from rag.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'numpy', 'faiss', 'torch', 'openvino', 'index', 'httpx', 'pydantic'}\n"
        "loaded = {m for m in sys.modules if m.split('.')[0] in heavy or m == 'rag.engine'}\n"
        "print(sorted(loaded), file=sys.stderr)\n"
    )
    args = ["search", AID_QUESTION, "--index", str(seed_index), "--json"]
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "RAG_RUNTIME_DIR": str(warm_env.runtime)}, check=True,
    )  # fmt: skip
    assert out.stderr.strip().splitlines()[-1] == "[]", out.stderr
    local = run([*args, "--no-server"])
    assert out.stdout == local.stdout


# --- what stays in-process --------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["search", AID_QUESTION, "--no-server"],
        ["search", AID_QUESTION, "--dedupe"],  # the API has no dedupe option
        ["ask", AID_QUESTION, "--json", "--no-server"],
        ["timeline", "Ukraine", "--no-server"],
    ],
)
def test_options_the_server_cannot_honour_run_in_process(warm_env, seed_index, in_process, args):
    result = run([*args, "--index", seed_index])
    assert result.exit_code == 0, result.output
    assert in_process == [seed_index]


def test_a_batch_runs_in_process(warm_env, seed_index, in_process, tmp_path):
    batch = tmp_path / "q.jsonl"
    batch.write_text(json.dumps({"id": 1, "query": AID_QUESTION}) + "\n", encoding="utf-8")
    result = run(["search", "--batch", batch, "--index", seed_index, "--json"])
    assert result.exit_code == 0, result.output
    assert in_process == [seed_index]


def test_no_server_from_the_environment(warm_env, seed_index, in_process, monkeypatch):
    monkeypatch.setenv("RAG_NO_SERVER", "1")
    assert run(["search", AID_QUESTION, "--index", seed_index]).exit_code == 0
    assert in_process == [seed_index]


def test_other_settings_run_in_process(warm_env, seed_index, in_process, monkeypatch):
    monkeypatch.setenv("RAG_RETRIEVAL__K", "3")  # the server was started without it
    result = run(["search", AID_QUESTION, "--index", seed_index, "--json"])
    assert result.exit_code == 0, result.output
    assert in_process == [seed_index]
    assert len(json.loads(result.stdout)["hits"]) == 3


def test_another_index_runs_in_process(warm_env, in_process, tmp_path):
    result = run(["search", AID_QUESTION, "--index", tmp_path / "other"])
    assert result.exit_code == 1 and result.stderr.startswith("error: ")  # no index there
    assert in_process == [tmp_path / "other"]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(lambda s: {"pid": _dead_pid()}, id="dead pid"),
        pytest.param(lambda s: {"port": _free_port()}, id="connection refused"),
        pytest.param(lambda s: {"token": warm.new_token()}, id="token refused"),
        pytest.param(lambda s: {"token": None}, id="no token"),
    ],
)
def test_a_stale_or_refused_record_runs_in_process(
    served, seed_index, in_process, monkeypatch, tmp_path, changes: Callable[[Served], Any]
):
    """`served`'s record, changed, as the only record of a runtime dir of this test."""
    monkeypatch.setenv("RAG_RUNTIME_DIR", str(tmp_path / "run"))
    assert warm.publish(replace(served.record(), **changes(served))) is not None
    remote = run(["search", AID_QUESTION, "--index", seed_index, "--json"])
    assert remote.exit_code == 0, remote.output
    assert in_process == [seed_index]
    assert remote.stdout == run(["search", AID_QUESTION, "--index", seed_index, "--json",
                                 "--no-server"]).stdout  # fmt: skip


def test_a_rate_limited_ask_runs_in_process(
    seed_index, settings, embedder, tmp_path, monkeypatch, in_process
):
    """A server that allows one ask a minute (server.ask_per_minute): the second ask gets 429
    there and is answered in-process instead, the same answer."""
    from tests.ui.test_server import LiveServer
    from ui.auth import RateLimiter, Security
    from ui.server import create_app
    from ui.service import Service

    monkeypatch.setenv("RAG_RUNTIME_DIR", str(tmp_path / "run"))
    security = Security(limiter=RateLimiter({"ask": 1}))
    with (
        Service(Engine.open(seed_index, settings, embedder=embedder)) as service,
        LiveServer(create_app(service, with_ui=False, security=security)) as live,
    ):
        port = int(live.url.rsplit(":", 1)[1])
        assert warm.publish(warm.ServerRecord.new(seed_index, tmp_path, "127.0.0.1", port))
        args = ["ask", AID_QUESTION, "--index", seed_index, "--json"]
        first = run(args)
        assert first.exit_code == 0 and in_process == []  # the minute's one ask
        second = run(args)
        assert second.exit_code == 0 and in_process == [seed_index]  # 429: in-process
    assert first.stdout == second.stdout


# --- the record ---------------------------------------------------------------------------------
def test_the_record_is_private_and_names_the_server(served, seed_index):
    record = served.record()
    assert record.pid == served.process.pid
    assert record.index == str(seed_index.resolve()) and record.default_index is False
    assert record.host == "127.0.0.1" and record.url == f"http://127.0.0.1:{record.port}"
    assert record.token and record.token.startswith("nrl_")  # tokens are required here
    assert record.settings == warm.settings_fingerprint()
    assert stat.S_IMODE(served.record_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(served.runtime.stat().st_mode) == 0o700
    data = json.loads(served.record_file.read_text("utf-8"))
    assert {"url", "pid", "started", "index", "token", "version"} <= set(data)


def test_the_local_token_reads_and_nothing_more(served):
    """The record's token is a reader's: it searches, and it cannot upload or remove."""
    import httpx

    record = served.record()
    headers = {"Authorization": f"Bearer {record.token}"}
    with httpx.Client(base_url=record.url, headers=headers, timeout=60) as http:
        assert http.post("/api/search", json={"query": "Genf"}).status_code == 200
        assert http.delete("/api/documents/x").status_code == 403
        assert http.post("/api/search", json={"query": "Genf"}, headers={
            "Authorization": "Bearer nrl_wrong"}).status_code == 401  # fmt: skip


def _publish(folder: Path, monkeypatch: pytest.MonkeyPatch, **fields: Any) -> warm.ServerRecord:
    monkeypatch.setenv("RAG_RUNTIME_DIR", str(folder))
    record = warm.ServerRecord(
        index="/nowhere/idx", default_index=False, host="127.0.0.1", port=9, pid=os.getpid(),
        started="2026-01-01T00:00:00+00:00", settings=warm.settings_fingerprint(),
    )  # fmt: skip
    record = replace(record, **fields)
    assert warm.publish(record) is not None
    return record


def test_the_default_index_is_the_record_of_a_server_of_its_default(tmp_path, monkeypatch):
    other = _publish(tmp_path / "run", monkeypatch, index="/a/idx")
    default = _publish(tmp_path / "run", monkeypatch, index="/b/idx", default_index=True)
    assert warm.find(None) == default
    assert warm.find(Path("/a/idx")) == other
    assert warm.find(Path("/c/idx")) is None
    monkeypatch.setenv("RAG_EMBEDDING__PRECISION", "fp32")  # other settings: neither
    assert warm.find(None) is None and warm.find(Path("/a/idx")) is None


def test_a_default_given_by_rag_index_dir_is_not_the_default(tmp_path, monkeypatch):
    """A command without --index has no RAG_INDEX_DIR (click reads it as --index), so a server
    whose index came from RAG_INDEX_DIR does not serve that command's default index."""
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "idx"))
    record = warm.ServerRecord.new(tmp_path / "idx", tmp_path / "idx", "0.0.0.0", 7860)
    assert record.default_index is False and record.host == "127.0.0.1"
    monkeypatch.delenv("RAG_INDEX_DIR")
    assert warm.ServerRecord.new(tmp_path / "idx", tmp_path / "idx", "::", 7860).default_index
    assert warm.ServerRecord.new(tmp_path / "idx", tmp_path / "idx", "::", 7860).url == (
        "http://[::1]:7860"
    )


def test_records_of_other_owners_or_open_directories_are_ignored(tmp_path, monkeypatch):
    record = _publish(tmp_path / "run", monkeypatch, index="/a/idx")
    assert warm.find(Path("/a/idx")) == record
    (tmp_path / "run").chmod(0o755)  # others could plant a record: not trusted
    assert warm.find(Path("/a/idx")) is None
    (tmp_path / "run").chmod(0o700)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "run")
    monkeypatch.setenv("RAG_RUNTIME_DIR", str(link))
    assert warm.find(Path("/a/idx")) is None


def test_withdraw_leaves_a_newer_servers_record(tmp_path, monkeypatch):
    old = _publish(tmp_path / "run", monkeypatch, index="/a/idx", port=1)
    new = _publish(tmp_path / "run", monkeypatch, index="/a/idx", port=2)
    warm.withdraw(old)
    assert warm.find(Path("/a/idx")) == new
    warm.withdraw(new)
    assert not warm.record_path(Path("/a/idx")).exists()


def test_the_fingerprint_follows_the_settings_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    without = warm.settings_fingerprint()
    (tmp_path / "rag.toml").write_text("[retrieval]\nk = 4\n", encoding="utf-8")
    with_file = warm.settings_fingerprint()
    (tmp_path / "rag.toml").write_text("[retrieval]\nk = 5\n", encoding="utf-8")
    assert len({without, with_file, warm.settings_fingerprint()}) == 3
    before = warm.settings_fingerprint()
    monkeypatch.setenv("RAG_SERVER__PORT", "9999")  # shapes no answer
    monkeypatch.setenv("RAG_NO_SERVER", "1")
    monkeypatch.setenv("RAG_RUNTIME_DIR", str(tmp_path))
    assert warm.settings_fingerprint() == before
    monkeypatch.setenv("RAG_RETRIEVAL__RERANK", "false")
    assert warm.settings_fingerprint() != before


# --- the command group stays light ------------------------------------------------------------
def test_every_built_in_command_loads_under_its_name():
    group_ctx = click.Context(main)
    for name in BUILT_IN:
        command = main.get_command(group_ctx, name)
        assert command is not None and command.name == name, name
    assert set(BUILT_IN) <= set(main.list_commands(group_ctx))
    assert {"serve", "start"} <= set(main.list_commands(group_ctx))


def test_importing_the_cli_loads_no_command_and_no_index():
    code = (
        "import sys, rag.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('index', 'numpy', 'ui') "
        "or m.startswith('rag.cli.') or m == 'rag.errors'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_help_lists_the_commands():
    result = run(["--help"])
    assert result.exit_code == 0, result.output
    for name in ("search", "ask", "timeline", "index", "serve", "eval-answers", "migrate"):
        assert f"  {name}" in result.stdout


# --- the background worker (RAG_WARM) -----------------------------------------------------------
def test_a_worker_started_by_the_first_command_answers_and_exits_when_idle(
    seed_index, tmp_path, monkeypatch
):
    monkeypatch.setenv("RAG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("RAG_WARM", "3")
    args = ["search", AID_QUESTION, "--index", seed_index, "--json"]
    first = by_server(args, monkeypatch)  # starts the worker, waits for it, asks it
    second = by_server(args, monkeypatch)
    record = warm.find(seed_index)
    assert record is not None and record.pid != os.getpid()
    assert first.exit_code == second.exit_code == 0, (first.output, first.exception)
    assert first.stdout == second.stdout == run([*args, "--no-server"]).stdout
    log = tmp_path / "run" / f"{warm.record_path(seed_index).stem}.log"
    deadline = time.monotonic() + 120
    while warm.record_path(seed_index).exists():
        assert time.monotonic() < deadline, "the worker did not stop when idle"
        time.sleep(0.2)
    assert "No request for 3 s: stopping." in log.read_text("utf-8")


def test_no_worker_for_a_missing_index(tmp_path, monkeypatch, in_process):
    monkeypatch.setenv("RAG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("RAG_WARM", "3")
    result = run(["search", AID_QUESTION, "--index", tmp_path / "nothing"])
    assert result.exit_code == 1 and in_process == [tmp_path / "nothing"]
    assert not list((tmp_path / "run").glob("*.log"))  # no worker was started


# --- stopping -----------------------------------------------------------------------------------
def test_stopping_the_server_removes_its_record(served):
    """Last in this module: SIGTERM (as `kill` and service managers send) ends the shared
    server gracefully, and its record goes with it."""
    assert served.record_file.exists()
    served.process.send_signal(signal.SIGTERM)
    served.process.wait(timeout=60)
    assert not served.record_file.exists(), served.log.read_text(errors="replace")[-2000:]
