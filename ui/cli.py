"""`rag serve` and `rag start`: the HTTP API and the chat UI over one index, with uvicorn (one
worker). `register` adds them to the `rag` group through the `newsrag.commands` entry point.

Defaults come from the `server` section of the settings; the flags override them.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rag.cli import progress_bar, warm
from rag.cli.options import index_option
from rag.errors import ConfigError
from ui.auth import Principal, TokenStore

if TYPE_CHECKING:
    import uvicorn

    from rag.settings import ServerSettings
    from ui.auth import AuditLog, Security
    from ui.service import Service


def register(main: click.Group) -> None:
    """Add `rag serve`, `rag start` and `rag tokens` to the `rag` command group."""
    main.add_command(serve_cmd)
    main.add_command(start_cmd)
    main.add_command(tokens_group)


_INSECURE = click.option(
    "--insecure",
    is_flag=True,
    help="Listen beyond loopback without access tokens: anyone who reaches the address can "
    "read, add and remove documents. Only on a trusted network.",
)


@click.group("tokens")
def tokens_group() -> None:
    """Access tokens for `rag serve`: reader (search, ask, export), editor (also upload and
    remove), admin (also tokens). Stored hashed in server.tokens_file; once one exists, the
    server requires them (server.auth = auto)."""


@tokens_group.command("create")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["reader", "editor", "admin"]), default="reader", show_default=True
)
def tokens_create(name: str, role: str) -> None:
    """Create a token named NAME; it is printed once and cannot be shown again."""
    store, audit = _token_store()
    token = store.create(name, role)
    audit.record("local", "token-create", name=name, role=role)
    click.echo(token)
    click.echo(
        f"token {name!r} ({role}) created in {store.path}; it is shown only now: send it as "
        "'Authorization: Bearer <token>' or paste it on the login page",
        err=True,
    )


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def tokens_list(as_json: bool) -> None:
    """The tokens: name, role, created (never the secrets)."""
    import json

    store, _ = _token_store()
    tokens = store.list()
    if as_json:
        click.echo(json.dumps({"tokens": tokens}, ensure_ascii=False, indent=2))
        return
    for t in tokens:
        click.echo(f"{t['name']:<24} {t['role']:<8} {t['created']}")
    if not tokens:
        click.echo("no tokens; create one with `rag tokens create NAME --role admin`", err=True)


@tokens_group.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke the token named NAME: a running server refuses it at its next request."""
    store, audit = _token_store()
    if not store.revoke(name):
        raise ConfigError(f"no token named {name!r}; `rag tokens list` shows them")
    audit.record("local", "token-revoke", name=name)
    click.echo(f"token {name!r} revoked")


def _token_store() -> tuple[TokenStore, AuditLog]:
    from rag.settings import load_settings
    from ui.auth import AuditLog, TokenStore

    server = load_settings().server
    return TokenStore(server.tokens_path()), AuditLog(server.audit_path())


@click.command("serve")
@index_option
@click.option(
    "--host",
    show_default="127.0.0.1, or server.host in the settings",
    help="Address to listen on. Beyond loopback only with access tokens (`rag tokens "
    "create`), or with --insecure.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), show_default="7860, or server.port in the settings"
)
@click.option("--no-ui", is_flag=True, help="Serve the HTTP API only, without the chat UI.")
@click.option(
    "--seed",
    "seeds",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Index these files or folders first (repeatable); unchanged ones cost nothing.",
)
@click.option(
    "--empty",
    is_flag=True,
    help="Start even without an index; the first upload creates it.",
)
@click.option(
    "--max-upload-mb",
    type=click.IntRange(1, 4096),
    show_default="50, or server.max_upload_bytes in the settings",
    help="Largest file an upload may carry, in MiB.",
)
@_INSECURE
@click.option(
    "--mcp-allow-writes",
    "mcp_writes",
    is_flag=True,
    help="Offer the MCP tools add_documents and remove_document at /mcp (to editor tokens).",
)
@click.option(
    "--idle-exit",
    type=click.FloatRange(min=1),
    help="Stop after this many seconds without a request (the background worker that "
    "`rag search` starts with RAG_WARM).",
)
def serve_cmd(
    index_dir: Path | None,
    host: str | None,
    port: int | None,
    no_ui: bool,
    seeds: tuple[Path, ...],
    empty: bool,
    max_upload_mb: int | None,
    insecure: bool,
    mcp_writes: bool,
    idle_exit: float | None,
) -> None:
    """Serve the HTTP API (/api/..., docs at /docs), the MCP endpoint for AI assistants (/mcp)
    and the chat UI (/) for an index."""
    service, server = _open_service(index_dir, max_upload_mb)
    with service:
        if seeds:
            report = service.add(list(seeds))
            click.echo(
                f"{service.location}: {report.added} added, {report.updated} updated, "
                f"{report.unchanged} unchanged"
            )
            for p in report.problems:
                click.echo(f"  failed: {p.source}: {p.message}", err=True)
        if not service.has_index() and not empty:
            raise ConfigError(
                f"no index at {service.location}; create one with `{service.index_command()}`, "
                "or pass --seed PATH to index files first, or --empty to start without "
                "documents and upload them"
            )
        run(
            service,
            host=host if host is not None else server.host,
            port=port if port is not None else server.port,
            with_ui=not no_ui,
            server=server,
            insecure=insecure,
            mcp_writes=mcp_writes,
            idle_exit=idle_exit,
        )


@click.command("start")
@click.argument("paths", nargs=-1)
@index_option
@click.option(
    "--host", show_default="127.0.0.1, or server.host in the settings", help="Address to listen on."
)
@click.option(
    "--port", type=click.IntRange(1, 65535), show_default="7860, or server.port in the settings"
)
@_INSECURE
def start_cmd(
    paths: tuple[str, ...],
    index_dir: Path | None,
    host: str | None,
    port: int | None,
    insecure: bool,
) -> None:
    """Index PATHS (default: ./seeds), then serve the chat UI and the HTTP API."""
    paths = paths or ("seeds",)
    service, server = _open_service(index_dir)
    with service:
        click.echo("Preparing the embedding model and the index (first run builds the model)...")
        report = service.add(list(paths), on_progress=progress_bar())
        click.echo(
            f"{service.location}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged; {service.info()['index']['counts']['documents']} "
            "documents in the index."
        )
        for p in report.problems:
            click.echo(f"  failed: {p.source}: {p.message}", err=True)
        run(
            service,
            host=host if host is not None else server.host,
            port=port if port is not None else server.port,
            with_ui=True,
            server=server,
            insecure=insecure,
        )


def _open_service(
    index_dir: Path | None, max_upload_mb: int | None = None
) -> tuple[Service, ServerSettings]:
    """A `Service` over the index with the upload limits of the `server` settings (which
    `--max-upload-mb` overrides), and those settings."""
    from rag.settings import load_settings
    from ui.service import MiB, Service

    settings = load_settings()
    server = settings.server
    service = Service.open(
        index_dir,
        settings,
        max_upload_bytes=(
            max_upload_mb * MiB if max_upload_mb is not None else server.max_upload_bytes
        ),
        max_total_bytes=server.max_total_bytes,
        max_files=server.max_files,
        uploads_dir=server.uploads_dir,
    )
    return service, server


def run(
    service: Service,
    *,
    host: str,
    port: int,
    with_ui: bool = True,
    server: ServerSettings | None = None,
    insecure: bool = False,
    mcp_writes: bool = False,
    idle_exit: float | None = None,
) -> None:
    """Serve `service` with uvicorn until Ctrl-C, SIGTERM or `idle_exit` seconds without a
    request (for `rag serve`, and `rag start` to end in)."""
    import uvicorn

    from ui.server import create_app

    security = security_for(server, host, insecure)
    if security.store is not None:
        click.echo(f"Access tokens required (server.auth; tokens in {security.store.path}).")
    security, cli_token = with_local_token(security)
    click.echo("Loading the embedding model...")
    service.warm_up()
    app = create_app(service, with_ui=with_ui, security=security, mcp_writes=mcp_writes)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"Serving on http://{shown}:{port}/ (API docs at /docs, MCP at /mcp); Ctrl-C stops."
    )
    record = warm.ServerRecord.new(
        service.path, service.engine.settings.index_dir, host, port, cli_token
    )
    # Keep-alive longer than uvicorn's 5 s: a client pausing ~5 s between requests otherwise races
    # the server closing its connection (seen as a ReadError in benchmarks/serve.py --mixed).
    config = uvicorn.Config(
        app, host=host, port=port, workers=1, log_level="warning", timeout_keep_alive=30
    )
    _serve(config, record, idle_exit)


LOCAL_PRINCIPAL = "local rag commands"
"""Who requests with the server's local token come from (no token file name has a space)."""


class _WithLocalToken(TokenStore):
    """The tokens file, plus one reader token that exists only in this server's memory and in
    its user's 0600 record (`rag.cli.warm`): that user's `rag search`, `ask` and `timeline`."""

    def __init__(self, path: Path, local_token: str) -> None:
        super().__init__(path)
        self._local = local_token.encode()

    def verify(self, token: str) -> Principal | None:
        if hmac.compare_digest(token.strip().encode("utf-8", "surrogatepass"), self._local):
            return Principal(LOCAL_PRINCIPAL, "reader")
        return super().verify(token)


def with_local_token(security: Security) -> tuple[Security, str | None]:
    """`security`, accepting also a new local reader token when tokens are required (None
    when they are not: the local commands need none then)."""
    if security.store is None:
        return security, None
    token = warm.new_token()
    store = _WithLocalToken(security.store.path, token)
    return dataclasses.replace(security, store=store, sessions=None), token


def _serve(
    config: uvicorn.Config, record: warm.ServerRecord, idle_exit: float | None = None
) -> None:
    """`uvicorn.run` (one worker) that publishes `record` once the server listens and withdraws
    it when the server stops (Ctrl-C, SIGTERM, `idle_exit` seconds without a request), so this
    user's `rag` commands use it meanwhile."""
    import asyncio

    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if not self.started:
                return
            try:
                published = warm.publish(record)
            except OSError as exc:
                click.echo(f"warning: `rag` commands will not use this server: {exc}", err=True)
            else:
                if published is not None:
                    click.echo(
                        "`rag search`, `rag ask` and `rag timeline` on this index now ask this "
                        f"server (record: {published}; --no-server: in-process)."
                    )
            if idle_exit is not None:
                self._idle_watch = asyncio.create_task(self.exit_when_idle(idle_exit))

        async def exit_when_idle(self, seconds: float) -> None:
            state = self.server_state
            seen, last = -1, time.monotonic()
            while not self.should_exit:
                await asyncio.sleep(min(seconds / 4, 5.0))
                if state.tasks or state.total_requests != seen:  # busy, or requests came
                    seen, last = state.total_requests, time.monotonic()
                elif time.monotonic() - last >= seconds:
                    click.echo(f"No request for {seconds:g} s: stopping.")
                    self.should_exit = True

        async def shutdown(self, sockets: Any = None) -> None:
            warm.withdraw(record)  # first: no new command comes here while it stops
            await super().shutdown(sockets)

    server = Server(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        warm.withdraw(record)
    if not server.started:
        raise SystemExit(3)  # as uvicorn.run: the server could not start


def security_for(server: ServerSettings | None, host: str, insecure: bool) -> Security:
    """What the server enforces: tokens when server.auth says so (auto: once one exists);
    beyond loopback without them only with `insecure`."""
    from rag.settings import ServerSettings
    from ui.auth import Security, TokenStore

    server = server or ServerSettings()
    has_tokens = TokenStore(server.tokens_path()).any()
    auth = server.auth == "on" or (server.auth == "auto" and has_tokens)
    if auth and not has_tokens:
        raise ConfigError(
            f"server.auth is 'on' but {server.tokens_path()} holds no token; create one with "
            "`rag tokens create NAME --role admin`"
        )
    if not auth and not _is_loopback(host):
        if not insecure:
            raise ConfigError(
                f"refusing to listen on {host} without access tokens: anyone who reaches it "
                "could read, add and remove documents. Create a token (`rag tokens create NAME "
                "--role admin`), or pass --insecure on a trusted network"
            )
        click.echo(
            f"warning: listening on {host} without access tokens (--insecure): anyone who "
            "can reach this address can read, add and remove documents",
            err=True,
        )
    return Security.from_settings(server, auth=auth)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
