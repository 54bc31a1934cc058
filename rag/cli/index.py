"""`rag index`, `rag remove` and `rag info`: fill an index, take documents out, describe it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli import _echo_json, _engine, progress_bar
from rag.cli.options import backend_options, index_option
from rag.errors import ConfigError

if TYPE_CHECKING:
    from rag.ingest.indexer import AddReport


@click.command("index")
@click.argument("paths", nargs=-1, required=True)
@index_option
@backend_options
@click.option("--password", help="Password for encrypted PDFs.")
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[ADDRESS]",
    callback=lambda ctx, param, value: _ray_address(value),
    help='Read, chunk and embed as Ray Data stages (pip install "newsrag[ray]"): on a Ray '
    "started here with this machine's CPUs, or on the cluster at ADDRESS (auto, HOST:6379, "
    "ray://HOST:10001). Put it after the paths.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def index_cmd(
    paths: tuple[str, ...],
    index_dir: Path | None,
    index_settings: dict[str, str],
    password: str | None,
    ray_address: str | None,
    as_json: bool,
) -> None:
    """Add files and folders (.txt .md .html .pdf .jsonl) to the index.

    Exit code 1 when any file could not be read (the others are still indexed).
    """
    from rag.engine import index_location

    if ray_address is not None:
        report, where = _ray_index(paths, index_dir, index_settings, ray_address, password)
    else:
        with _engine(index_dir, index_settings) as engine:
            report = engine.add(
                list(paths), password=password, on_progress=None if as_json else progress_bar()
            )
            where = index_location(engine.settings, engine.path)
    if as_json:
        _echo_json(report.to_json())
    else:
        click.echo(
            f"{where}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged ({report.chunks} passages) in {report.seconds:.1f} s"
        )
        for p in report.problems:
            where = f"{p.source}:{p.line}" if p.line else p.source
            click.echo(f"  failed: {where}: {p.message}", err=True)
    if not report.ok:
        sys.exit(1)


def _ray_index(
    paths: tuple[str, ...],
    index_dir: Path | None,
    index_settings: dict[str, str],
    address: str,
    password: str | None,
) -> tuple[AddReport, Path | str]:
    """`rag index --ray`: the Ray pipeline (rag.ingest.ray_ingest) into the selected index."""
    from rag.engine import index_location
    from rag.ingest.ray_ingest import RayOptions, ray_add
    from rag.settings import load_settings

    settings = load_settings(index=index_settings) if index_settings else load_settings()
    path = index_dir or settings.index_dir
    report = ray_add(
        list(paths), settings, path, options=RayOptions(address=address or None),
        password=password, on_progress=_write_progress(),
    )  # fmt: skip
    return report, index_location(settings, path)


def _ray_address(value: str | None) -> str | None:
    """--ray's value; a path there means the paths came after --ray (which took the first)."""
    if value and Path(value).exists():
        raise click.BadParameter(
            f"{value!r} is a path, not a Ray address: put --ray after the paths, or write "
            "--ray=ADDRESS"
        )
    return value


def _write_progress():  # noqa: ANN202 - a callback for ray_add
    def update(done: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\r{done}/{total} documents embedded and written", nl=done >= total,
                       err=True)  # fmt: skip

    return update


@click.command("remove")
@index_option
@backend_options
@click.option("--doc", "doc_ids", multiple=True, help="Document id to remove (repeatable).")
@click.option("--source", "sources", multiple=True, help="Remove every document from this source.")
def remove_cmd(
    index_dir: Path | None,
    index_settings: dict[str, str],
    doc_ids: tuple[str, ...],
    sources: tuple[str, ...],
) -> None:
    """Remove documents by id or source."""
    if not doc_ids and not sources:
        raise ConfigError("name what to remove: --doc ID or --source PATH (repeatable)")
    with _engine(index_dir, index_settings) as engine:
        result = engine.remove(doc_ids, sources)
    click.echo(f"removed {result.removed} documents ({result.chunks_removed} passages)")


@click.command("info")
@index_option
@backend_options
@click.option("--json", "as_json", is_flag=True)
def info_cmd(index_dir: Path | None, index_settings: dict[str, str], as_json: bool) -> None:
    """Show what an index holds and how it was built."""
    from index import Index
    from rag.engine import index_location, open_index
    from rag.settings import load_settings

    settings = load_settings(index=index_settings) if index_settings else load_settings()
    path = index_dir or settings.index_dir
    idx = open_index(settings, path)
    if idx is None and settings.index.backend == "qdrant":
        raise ConfigError(
            f"no index at {index_location(settings, path)}; fill it with `rag index PATH "
            "--backend qdrant --url ...` or `rag migrate`"
        )
    idx = idx or Index.open(path)  # raises the "no index here, run rag index" error
    try:
        data = idx.info()
    finally:
        idx.close()
    if as_json:
        _echo_json(data)
        return
    for key, value in data.items():
        click.echo(
            f"{key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value}"
        )
