"""Command-line options shared by the commands in rag/cli.py and its sibling modules."""

from __future__ import annotations

from pathlib import Path

import click

index_option = click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="RAG_INDEX_DIR",
    help="Index directory (default: the per-user data dir, or $RAG_INDEX_DIR).",
)
