"""Command-line options that several commands share (and `ui.cli` reuses)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

INDEX_HELP = "Index directory (default: the per-user data dir, or $RAG_INDEX_DIR)."


def index_dir_option(help: str = INDEX_HELP) -> Callable[[F], F]:
    """`--index DIR` (env RAG_INDEX_DIR) as the `index_dir` parameter, with its own help."""
    return click.option(
        "--index",
        "index_dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="RAG_INDEX_DIR",
        help=help,
    )


index_option = index_dir_option()
"""`--index DIR` (env RAG_INDEX_DIR) as the `index_dir` parameter."""

_BACKEND_OPTIONS = (
    click.option(
        "--backend",
        type=click.Choice(["local", "qdrant"]),
        help="Index backend (default: settings index.backend, env RAG_INDEX__BACKEND).",
    ),
    click.option(
        "--url",
        help="qdrant backend: qdrant://HOST:PORT[/COLLECTION], :memory:, edge:PATH or a "
        "directory (env RAG_INDEX__URL); implies --backend qdrant.",
    ),
)


def backend_options(command: F) -> F:
    """--backend and --url, handed to `command` as `index_settings`: overrides of the
    settings' `index` section (empty when neither is given)."""

    @functools.wraps(command)
    def with_backend(*args: Any, backend: str | None, url: str | None, **kwargs: Any) -> Any:
        overrides: dict[str, str] = {}
        if backend is not None or url is not None:
            overrides["backend"] = backend or "qdrant"
        if url is not None:
            if overrides["backend"] != "qdrant":
                raise click.UsageError(
                    "--url names a Qdrant location; use it with --backend qdrant"
                )
            overrides["url"] = url
        return command(*args, index_settings=overrides, **kwargs)

    decorated: Any = with_backend
    for option in reversed(_BACKEND_OPTIONS):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


json_option = click.option(
    "--json", "as_json", is_flag=True, help="JSON output (see README for the shape)."
)

server_option = click.option(
    "--no-server",
    is_flag=True,
    envvar="RAG_NO_SERVER",
    help="Run in this process even when a `rag serve` of the index is running (env "
    "RAG_NO_SERVER=1); by default a running server answers (README: the warm CLI).",
)
"""`--no-server` as the `no_server` parameter (`rag.cli.warm`)."""


def batch_option(field: str, prints: str) -> Callable[[F], F]:
    """`--batch FILE`: JSONL lines {"id", FIELD}, one output line per input line."""
    return click.option(
        "--batch",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=f'JSONL file of {{"id", "{field}"}} lines; prints {prints} per line.',
    )


_FILTER_OPTIONS = (
    click.option(
        "--from", "date_from", help="Only articles dated on/after (2022, 2022-06, 2022-06-01)."
    ),
    click.option("--to", "date_to", help="Only articles dated on/before (partial dates allowed)."),
    click.option("--source", "sources", multiple=True, help="Only this source (repeatable)."),
    click.option("--language", "languages", multiple=True, help="Only articles in this language."),
)


def filter_options(command: F) -> F:
    """--from, --to, --source and --language, handed to `command` as one `filters: Filters`."""

    @functools.wraps(command)
    def with_filters(
        *args: Any,
        date_from: str | None,
        date_to: str | None,
        sources: tuple[str, ...],
        languages: tuple[str, ...],
        **kwargs: Any,
    ) -> Any:
        from rag.types import Filters

        filters = Filters(
            date_from=date_from, date_to=date_to, sources=sources, languages=languages
        )
        return command(*args, filters=filters, **kwargs)

    decorated: Any = with_filters
    for option in reversed(_FILTER_OPTIONS):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
