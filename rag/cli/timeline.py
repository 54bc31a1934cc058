"""`rag timeline`: the articles matching a query, grouped by date, each with its key sentence."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli import _echo_json, _engine
from rag.cli.options import filter_options, index_option, json_option

if TYPE_CHECKING:
    from rag.answer.timeline import Timeline, TimelineEntry
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
def timeline_cmd(
    query: str,
    index_dir: Path | None,
    by: str,
    k: int | None,
    min_score: float | None,
    as_json: bool,
    filters: Filters,
) -> None:
    """The articles matching QUERY grouped by date, oldest first, each with its key sentence
    and citation; copies of one story are one entry with the number of sources."""
    with _engine(index_dir) as engine:
        timeline = engine.timeline(
            query,
            filters,
            by=by,  # type: ignore[arg-type]  # one of BY_CHOICES
            k=k,
            min_score=min_score,
        )
    if as_json:
        _echo_json(timeline.to_json())
        return
    click.echo(f"stages: {' -> '.join(timeline.retrieval['stages'])}", err=True)
    print_timeline(timeline)


def print_timeline(timeline: Timeline) -> None:
    """Groups oldest first, then the undated; under each, its entries with their citations."""
    if not timeline.entries:
        click.echo("no matching articles")
        return
    for group in (*timeline.groups, timeline.undated):
        if not group.entries:
            continue
        articles = "article" if group.n_articles == 1 else "articles"
        click.secho(f"{group.period or 'undated'}  ({group.n_articles} {articles})", bold=True)
        for entry in group.entries:
            _print_entry(entry)
        click.echo()


def _print_entry(entry: TimelineEntry) -> None:
    c = entry.citation
    date = c.date and (f"{c.date} (inferred)" if c.date_source == "inferred" else c.date)
    meta = " · ".join(x for x in (c.title, date, c.source) if x)
    click.echo(f"  [{c.n}] {meta}")
    sentence = " ".join(entry.sentence.split())
    if not sentence.startswith(("„", '"', "“", "»", "«", "'")):
        sentence = f"„{sentence}“"
    click.echo(f"      {sentence}  (chars {c.start}-{c.end})")
    if entry.duplicates:
        others = entry.n_sources - 1
        label = f"+{others} source{'s' if others != 1 else ''}" if others else "+copies"
        click.echo(f"      {label}:")
        for d in entry.duplicates:
            click.echo(f"        {' · '.join(x for x in (d.title, d.date, d.source) if x)}")
