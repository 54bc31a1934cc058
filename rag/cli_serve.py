"""`rag serve`: the HTTP API and the chat UI over one index, with uvicorn (one worker)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

import click

from index.errors import ConfigError
from rag.cli_options import index_option

if TYPE_CHECKING:
    from ui.service import Service

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


@click.command("serve")
@index_option
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="Address to listen on. The API has no authentication: keep it on loopback unless "
    "the network is trusted.",
)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
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
    default=50,
    show_default=True,
    type=click.IntRange(1, 4096),
    help="Largest file an upload may carry, in MiB.",
)
def serve_cmd(
    index_dir: Path | None,
    host: str,
    port: int,
    no_ui: bool,
    seeds: tuple[Path, ...],
    empty: bool,
    max_upload_mb: int,
) -> None:
    """Serve the HTTP API (/api/..., docs at /docs) and the chat UI (/) for an index."""
    from ui.service import MiB, Service

    with Service.open(index_dir, max_upload_bytes=max_upload_mb * MiB) as service:
        if seeds:
            report = service.add(list(seeds))
            click.echo(
                f"{service.path}: {report.added} added, {report.updated} updated, "
                f"{report.unchanged} unchanged"
            )
            for p in report.problems:
                click.echo(f"  failed: {p.source}: {p.message}", err=True)
        if not service.has_index() and not empty:
            raise ConfigError(
                f"no index at {service.path}; create one with `rag index PATH --index "
                f"{service.path}`, or pass --seed PATH to index files first, or --empty to "
                "start without documents and upload them"
            )
        run(service, host=host, port=port, with_ui=not no_ui)


def run(
    service: Service, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, with_ui: bool = True
) -> None:
    """Serve `service` with uvicorn until Ctrl-C (for `rag serve`, and `rag start` to end in)."""
    import uvicorn

    from ui.server import create_app

    if not _is_loopback(host):
        click.echo(
            f"warning: listening on {host}: the API has no authentication, anyone who can "
            "reach this address can read, add and remove documents",
            err=True,
        )
    click.echo("Loading the embedding model...")
    service.warm_up()
    app = create_app(service, with_ui=with_ui)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Serving on http://{shown}:{port}/ (API docs at /docs); Ctrl-C stops.")
    uvicorn.run(app, host=host, port=port, workers=1, log_level="warning")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
