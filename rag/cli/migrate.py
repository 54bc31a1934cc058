"""`rag migrate`: move a local index directory into Qdrant without re-embedding."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rag.cli import _echo_json


@click.command("migrate")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The local index directory to move (it is only read).",
)
@click.option(
    "--to",
    "target",
    required=True,
    help="qdrant://HOST:PORT[/COLLECTION] (qdrants:// for TLS), edge:PATH, or a directory "
    "(qdrant-client's local mode). The API key comes from $QDRANT_API_KEY "
    "(settings index.api_key_env).",
)
@click.option("--batch", default=64, show_default=True, type=click.IntRange(1, 10_000),
              help="Documents per write.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def migrate_cmd(source: Path, target: str, batch: int, as_json: bool) -> None:
    """Copy a local index into a Qdrant collection: vectors, sentence vectors, records and
    the manifest as stored; keyword terms re-made by the same analyzer (no model is loaded).

    Idempotent: a second run (after an interruption, or after the local index grew) copies
    only the documents the collection lacks or holds in another version. Afterwards, point
    the settings at it (index.backend = "qdrant", index.url = ...).
    """
    from index import Index
    from index.qdrant import QdrantIndex
    from index.transfer import copy_index
    from rag.retrieval.analysis import Analyzer
    from rag.settings import load_settings

    settings = load_settings()
    analyzer = Analyzer()
    with Index.open(source) as local:
        target_index = QdrantIndex.open(
            target, local.spec, create=True, **settings.index.qdrant_options()
        )
        try:
            report = copy_index(
                local,
                target_index,
                analyzer.id,
                lambda rows: [analyzer.document_terms(t, lang) for t, lang in rows],
                batch=batch,
                on_progress=None if as_json else _progress(),
            )
            info = target_index.info()
        finally:
            target_index.close()
    if as_json:
        _echo_json({"from": str(source), "to": info["path"], **report.__dict__,
                    "counts": info["counts"]})  # fmt: skip
        return
    click.echo(
        f"{source} -> {info['path']}: {report.copied} documents copied, {report.unchanged} "
        f"unchanged ({report.passages} passages); the collection holds "
        f"{info['counts']['documents']} documents, {info['counts']['chunks']} passages"
    )


def _progress():  # noqa: ANN202 - a callback for copy_index
    def update(done: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\r{done}/{total} documents", nl=done >= total, err=True)

    return update
