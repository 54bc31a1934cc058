"""`rag search`: the passages that best match a query, or a JSONL file of queries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli import _echo_json, _engine, _read_batch
from rag.cli.options import batch_option, filter_options, index_option, json_option
from rag.errors import ConfigError
from rag.vocabulary import RETRIEVAL_MODES, RetrievalMode

if TYPE_CHECKING:
    from rag.types import Filters, Hit

BATCH_SIZE = 64
"""Queries embedded together in a --batch run."""


@click.command("search")
@click.argument("query", required=False)
@index_option
@click.option("-k", default=None, type=click.IntRange(1, 1000), help="Number of hits.")
@json_option
@batch_option("query", "one JSON object")
@filter_options
@click.option(
    "--mode",
    type=click.Choice(RETRIEVAL_MODES),
    help="Retrieval mode (default: the settings', hybrid).",
)
@click.option("--rerank/--no-rerank", default=None, help="Second-stage reranking on or off.")
@click.option("--dedupe/--no-dedupe", default=None, help="Merge near-duplicate passages.")
def search_cmd(
    query: str | None,
    index_dir: Path | None,
    k: int | None,
    as_json: bool,
    batch: Path | None,
    filters: Filters,
    mode: RetrievalMode | None,
    rerank: bool | None,
    dedupe: bool | None,
) -> None:
    """Find the passages that best match QUERY (stages: dense, keyword, fusion, rerank, dedupe)."""
    if (query is None) == (batch is None):
        raise ConfigError("give either a QUERY or --batch FILE (not both)")
    with _engine(index_dir) as engine:
        stages = engine.plan(mode, rerank, dedupe).stages()
        if batch is not None:
            items = _read_batch(batch, "query")
            for start in range(0, len(items), BATCH_SIZE):
                group = items[start : start + BATCH_SIZE]
                results = engine.search_batch(
                    [q for _, q in group], k, filters, mode=mode, rerank=rerank, dedupe=dedupe
                )
                for (item_id, q), hits in zip(group, results):
                    _echo_json(
                        {
                            "id": item_id,
                            "query": q,
                            "stages": stages,
                            "hits": [h.to_json() for h in hits],
                        }
                    )
            return
        assert query is not None
        hits = engine.search_batch([query], k, filters, mode=mode, rerank=rerank, dedupe=dedupe)[0]
        if as_json:
            _echo_json({"query": query, "stages": stages, "hits": [h.to_json() for h in hits]})
            return
        click.echo(f"stages: {' -> '.join(stages)}", err=True)
        print_hits(hits)


def print_hits(hits: list[Hit]) -> None:
    """Hits as `rag search` shows them: rank, score, title · date · source, the passage."""
    if not hits:
        click.echo("no matching passages")
    for h in hits:
        meta = " · ".join(x for x in (h.title, h.date, h.source) if x)
        click.secho(f"[{h.rank}] {h.score:.3f}  {meta}", bold=True)
        click.echo(f"    {h.text.strip()}")
        for d in h.duplicates:
            click.echo(f"    also in: {' · '.join(x for x in (d.title, d.date, d.source) if x)}")
        click.echo()
