"""`rag ask`: an answer from the indexed articles, every sentence with its sources.

A single question goes to a running `rag serve` of the same index when there is one
(`rag.cli.warm`); either way the answer is the HTTP API's JSON (`POST /api/ask`, or the
stream's events), which is printed as it is (`--json`) or rendered here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
from rag.cli.search import print_hits
from rag.vocabulary import ANSWER_MODES, AnswerMode

if TYPE_CHECKING:
    from rag.types import Filters


@click.command("ask")
@click.argument("question", required=False)
@index_option
@json_option
@batch_option("question", "one JSON answer")
@filter_options
@click.option(
    "--mode",
    type=click.Choice(ANSWER_MODES),
    help="quote = verbatim source sentences; generate = the configured language model.",
)
@click.option("--stream/--no-stream", default=True, help="Print the answer as it is written.")
@server_option
def ask_cmd(
    question: str | None,
    index_dir: Path | None,
    as_json: bool,
    batch: Path | None,
    filters: Filters,
    mode: AnswerMode | None,
    stream: bool,
    no_server: bool,
) -> None:
    """Answer QUESTION from the indexed articles, every sentence with its sources."""
    if (question is None) == (batch is None):
        from rag.errors import ConfigError

        raise ConfigError("give either a QUESTION or --batch FILE (not both)")
    if batch is not None:
        with _engine(index_dir) as engine:
            for item_id, q in _read_batch(batch, "question"):
                _echo_json({"id": item_id, **engine.ask(q, filters, mode=mode).to_json()})
        return
    assert question is not None
    if as_json:
        answer = None if no_server else warm.ask(index_dir, question, filters, mode)
        _echo_json(answer if answer is not None else _ask_here(index_dir, question, filters, mode))
        return
    events = None if no_server else warm.ask_stream(index_dir, question, filters, mode)
    if events is None:
        events = _ask_stream_here(index_dir, question, filters, mode)
    record: Mapping[str, Any] | None = None
    for event in events:
        if isinstance(event, str):
            if stream:
                click.echo(event, nl=False)
        else:
            record = event
    assert record is not None
    if not stream:
        click.echo(record["answer"], nl=False)
    click.echo()
    _print_answer_details(record)


def _ask_here(
    index_dir: Path | None, question: str, filters: Filters, mode: AnswerMode | None
) -> dict[str, Any]:
    """`POST /api/ask`'s answer, from an Engine in this process."""
    with _engine(index_dir) as engine:
        return engine.ask(question, filters, mode=mode).to_json()


def _ask_stream_here(
    index_dir: Path | None, question: str, filters: Filters, mode: AnswerMode | None
) -> Iterator[str | dict[str, Any]]:
    """`POST /api/ask/stream`'s events from an Engine in this process: the answer's text
    pieces, then the answer as `answer_record` (passages with their exact scores)."""
    from rag.answer.types import Answer, AnswerDelta
    from rag.export.answer_json import answer_record

    with _engine(index_dir) as engine:
        for event in engine.ask_stream(question, filters, mode=mode):
            if isinstance(event, AnswerDelta):
                yield event.text
            elif isinstance(event, Answer):
                yield answer_record(event)


def _print_answer_details(answer: Mapping[str, Any]) -> None:
    """The unsupported sentences, the citations and, when the sources do not answer, the
    passages found, from the answer's JSON (`answer_record`)."""
    for s in answer["sentences"]:
        if not s["supported"]:
            click.secho(f"! not supported: {s['text']}", fg="red", err=False)
            for problem in s["problems"]:
                click.echo(f"    - {problem}")
    if answer["citations"]:
        click.echo()
    for c in answer["citations"]:
        meta = " · ".join(x for x in (c["title"], c["date"], c["source"]) if x)
        click.secho(f"[{c['n']}] {meta}  (chars {c['start']}-{c['end']})", bold=True)
        click.echo(f"    „{c['quote'].strip()}“")
    if not answer["answerable"] and answer["passages"]:
        click.echo()
        print_hits(answer["passages"])
