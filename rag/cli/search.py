"""`rag search`: the passages that best match a query, or a JSONL file of queries.

A single query goes to a running `rag serve` of the same index when there is one
(`rag.cli.warm`); either way the result is `POST /api/search`'s JSON, which is printed as it
is (`--json`) or rendered here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rag.cli import _echo_json, _engine, _read_batch, warm
from rag.cli.options import (
    batch_option,
    filter_options,
    index_option,
    json_option,
    server_option,
)
from rag.vocabulary import RETRIEVAL_MODES, RetrievalMode

if TYPE_CHECKING:
    from rag.types import Filters

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
@server_option
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
    no_server: bool,
) -> None:
    """Find the passages that best match QUERY (stages: dense, keyword, fusion, rerank, dedupe)."""
    if (query is None) == (batch is None):
        from rag.errors import ConfigError

        raise ConfigError("give either a QUERY or --batch FILE (not both)")
    if batch is not None:
        _search_batch(batch, index_dir, k, filters, mode, rerank, dedupe)
        return
    assert query is not None
    found = None
    if not no_server and dedupe is None:  # the API has no dedupe option
        found = warm.search(index_dir, query, k, filters, mode, rerank, full=not as_json)
    if found is None:
        found = _search_here(index_dir, query, k, filters, mode, rerank, dedupe, full=not as_json)
    if as_json:
        _echo_json(found)
        return
    click.echo(f"stages: {' -> '.join(found['stages'])}", err=True)
    print_hits(found["hits"])


def _search_here(
    index_dir: Path | None,
    query: str,
    k: int | None,
    filters: Filters,
    mode: RetrievalMode | None,
    rerank: bool | None,
    dedupe: bool | None,
    *,
    full: bool,
) -> dict[str, Any]:
    """What `POST /api/search` answers (`full`: hits with their exact scores), found by an
    Engine in this process."""
    from rag.export.answer_json import hit_record

    with _engine(index_dir) as engine:
        stages = engine.plan(mode, rerank, dedupe).stages()
        hits = engine.search_batch([query], k, filters, mode=mode, rerank=rerank, dedupe=dedupe)[0]
    return {
        "query": query,
        "stages": stages,
        "hits": [hit_record(h) if full else h.to_json() for h in hits],
    }


def _search_batch(
    batch: Path,
    index_dir: Path | None,
    k: int | None,
    filters: Filters,
    mode: RetrievalMode | None,
    rerank: bool | None,
    dedupe: bool | None,
) -> None:
    """One JSON line per query of `batch`, the queries embedded `BATCH_SIZE` at a time."""
    with _engine(index_dir) as engine:
        stages = engine.plan(mode, rerank, dedupe).stages()
        items = _read_batch(batch, "query")
        for start in range(0, len(items), BATCH_SIZE):
            group = items[start : start + BATCH_SIZE]
            results = engine.search_batch(
                [q for _, q in group], k, filters, mode=mode, rerank=rerank, dedupe=dedupe
            )
            for (item_id, q), hits in zip(group, results):
                records = [h.to_json() for h in hits]
                _echo_json({"id": item_id, "query": q, "stages": stages, "hits": records})


def print_hits(hits: Sequence[Mapping[str, Any]]) -> None:
    """Hits (their JSON, with exact scores) as `rag search` shows them: rank, score,
    title · date · source, the passage."""
    if not hits:
        click.echo("no matching passages")
    for h in hits:
        meta = " · ".join(x for x in (h["title"], h["date"], h["source"]) if x)
        click.secho(f"[{h['rank']}] {h['score']:.3f}  {meta}", bold=True)
        click.echo(f"    {h['text'].strip()}")
        for d in h["duplicates"]:
            also = " · ".join(x for x in (d["title"], d["date"], d["source"]) if x)
            click.echo(f"    also in: {also}")
        click.echo()
