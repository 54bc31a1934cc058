"""`rag timeline`: the articles matching a query, grouped by date, each with its key sentence.

The query goes to a running `rag serve` of the same index when there is one (`rag.cli.warm`);
either way the timeline is `GET /api/timeline`'s JSON (`Timeline.to_json()`), which is printed
as it is (`--json`) or rendered here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rag.cli import _echo_json, _engine, warm
from rag.cli.options import filter_options, index_option, json_option, server_option

if TYPE_CHECKING:
    from rag.types import Filters

# The choices are rag.answer.timeline.TIMELINE_BY (not imported here: it loads the answer
# pipeline, which `rag --help` should not pay for); a test checks that the two agree.
BY_CHOICES = ("day", "month", "year")


@click.command("timeline")
@click.argument("query")
@index_option
@click.option(
    "--by",
    type=click.Choice(BY_CHOICES),
    default="month",
    show_default=True,
    help="Group the articles by the day, month or year of their date.",
)
@click.option(
    "-k",
    default=None,
    type=click.IntRange(1, 1000),
    help="Passages to retrieve (default 100; an article can give several).",
)
@click.option(
    "--min-score",
    type=float,
    default=None,
    help="Key-sentence score an article needs (default: the quote answers' evidence "
    "threshold, generation.answerable_threshold).",
)
@json_option
@filter_options
@server_option
def timeline_cmd(
    query: str,
    index_dir: Path | None,
    by: str,
    k: int | None,
    min_score: float | None,
    as_json: bool,
    filters: Filters,
    no_server: bool,
) -> None:
    """The articles matching QUERY grouped by date, oldest first, each with its key sentence
    and citation; copies of one story are one entry with the number of sources."""
    found = None if no_server else warm.timeline(index_dir, query, by, k, min_score, filters)
    if found is None:
        found = _timeline_here(index_dir, query, by, k, min_score, filters)
    if as_json:
        _echo_json(found)
        return
    click.echo(f"stages: {' -> '.join(found['retrieval']['stages'])}", err=True)
    print_timeline(found)


def _timeline_here(
    index_dir: Path | None,
    query: str,
    by: str,
    k: int | None,
    min_score: float | None,
    filters: Filters,
) -> dict[str, Any]:
    """`GET /api/timeline`'s JSON, built by an Engine in this process."""
    with _engine(index_dir) as engine:
        timeline = engine.timeline(
            query,
            filters,
            by=by,  # type: ignore[arg-type]  # one of BY_CHOICES
            k=k,
            min_score=min_score,
        )
    return timeline.to_json()


def print_timeline(timeline: Mapping[str, Any]) -> None:
    """Groups oldest first, then the undated; under each, its entries with their citations
    (from the timeline's JSON, `Timeline.to_json()`)."""
    if not timeline["n_entries"]:
        click.echo("no matching articles")
        return
    for group in (*timeline["groups"], timeline["undated"]):
        if not group["entries"]:
            continue
        n = group["n_articles"]
        articles = "article" if n == 1 else "articles"
        click.secho(f"{group['period'] or 'undated'}  ({n} {articles})", bold=True)
        for entry in group["entries"]:
            _print_entry(entry)
        click.echo()


def _print_entry(entry: Mapping[str, Any]) -> None:
    c = entry["citation"]
    date = c["date"]
    if date and c["date_source"] == "inferred":
        date = f"{date} (inferred)"
    meta = " · ".join(x for x in (c["title"], date, c["source"]) if x)
    click.echo(f"  [{c['n']}] {meta}")
    sentence = " ".join(entry["sentence"].split())
    if not sentence.startswith(("„", '"', "“", "»", "«", "'")):
        sentence = f"„{sentence}“"
    click.echo(f"      {sentence}  (chars {c['start']}-{c['end']})")
    if entry["duplicates"]:
        others = entry["n_sources"] - 1
        label = f"+{others} source{'s' if others != 1 else ''}" if others else "+copies"
        click.echo(f"      {label}:")
        for d in entry["duplicates"]:
            copy = " · ".join(x for x in (d["title"], d["date"], d["source"]) if x)
            click.echo(f"        {copy}")
