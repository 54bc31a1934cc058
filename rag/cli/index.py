"""`rag index`, `rag remove` and `rag info`: fill an index, take documents out, describe it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rag.cli import _echo_json, _engine, progress_bar
from rag.cli.options import backend_options, index_option
from rag.errors import ConfigError


@click.command("index")
@click.argument("paths", nargs=-1, required=True)
@index_option
@backend_options
@click.option("--password", help="Password for encrypted PDFs.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def index_cmd(
    paths: tuple[str, ...],
    index_dir: Path | None,
    index_settings: dict[str, str],
    password: str | None,
    as_json: bool,
) -> None:
    """Add files and folders (.txt .md .html .pdf .jsonl) to the index.

    Exit code 1 when any file could not be read (the others are still indexed).
    """
    with _engine(index_dir, index_settings) as engine:
        report = engine.add(
            list(paths), password=password, on_progress=None if as_json else progress_bar()
        )
        if as_json:
            _echo_json(report.to_json())
        else:
            from rag.engine import index_location

            where = index_location(engine.settings, engine.path)
            click.echo(
                f"{where}: {report.added} added, {report.updated} updated, "
                f"{report.unchanged} unchanged ({report.chunks} passages) in {report.seconds:.1f} s"
            )
            for p in report.problems:
                where = f"{p.source}:{p.line}" if p.line else p.source
                click.echo(f"  failed: {where}: {p.message}", err=True)
    if not report.ok:
        sys.exit(1)


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
