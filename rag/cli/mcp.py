"""`rag mcp`: the index as an MCP server over stdio, for an AI assistant to start (see the
README, "Use from an AI assistant (MCP)"). stdout carries the protocol; messages go to stderr."""

from __future__ import annotations

from pathlib import Path

import click

from rag.cli import _engine
from rag.cli.options import index_option


@click.command("mcp")
@index_option
@click.option(
    "--allow-writes",
    is_flag=True,
    help="Also offer the tools add_documents and remove_document (read-only without it); "
    "also lets the server start before the index exists.",
)
def mcp_cmd(index_dir: Path | None, allow_writes: bool) -> None:
    """Serve the index to AI assistants over the Model Context Protocol (stdio): tools search,
    ask, timeline, list_documents, get_passage; the documents as resources."""
    from rag.mcp_server import create_server

    with _engine(index_dir) as engine:
        if not allow_writes:
            engine.info()  # no index: one clear error now, not one per tool call
        click.echo(
            f"newsrag MCP server on stdio for {engine.path} "
            f"({'read and write' if allow_writes else 'read-only'})",
            err=True,
        )
        create_server(engine, allow_writes=allow_writes).run("stdio")
