"""`rag ask`: an answer from the indexed articles, every sentence with its sources."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli import _echo_json, _engine, _read_batch
from rag.cli.options import batch_option, filter_options, index_option, json_option
from rag.cli.search import print_hits
from rag.errors import ConfigError
from rag.vocabulary import ANSWER_MODES, AnswerMode

if TYPE_CHECKING:
    from rag.answer.types import Answer
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
def ask_cmd(
    question: str | None,
    index_dir: Path | None,
    as_json: bool,
    batch: Path | None,
    filters: Filters,
    mode: AnswerMode | None,
    stream: bool,
) -> None:
    """Answer QUESTION from the indexed articles, every sentence with its sources."""
    if (question is None) == (batch is None):
        raise ConfigError("give either a QUESTION or --batch FILE (not both)")
    from rag.answer.types import Answer, AnswerDelta

    with _engine(index_dir) as engine:
        if batch is not None:
            for item_id, q in _read_batch(batch, "question"):
                _echo_json({"id": item_id, **engine.ask(q, filters, mode=mode).to_json()})
            return
        assert question is not None
        if as_json:
            _echo_json(engine.ask(question, filters, mode=mode).to_json())
            return
        answer = None
        for event in engine.ask_stream(question, filters, mode=mode):
            if isinstance(event, AnswerDelta) and stream:
                click.echo(event.text, nl=False)
            elif isinstance(event, Answer):
                answer = event
        assert answer is not None
        if not stream:
            click.echo(answer.text, nl=False)
        click.echo()
        _print_answer_details(answer)


def _print_answer_details(answer: Answer) -> None:
    for s in answer.sentences:
        if not s.supported:
            click.secho(f"! not supported: {s.text}", fg="red", err=False)
            for problem in s.problems:
                click.echo(f"    - {problem}")
    if answer.citations:
        click.echo()
    for c in answer.citations:
        meta = " · ".join(x for x in (c.title, c.date, c.source) if x)
        click.secho(f"[{c.n}] {meta}  (chars {c.start}-{c.end})", bold=True)
        click.echo(f"    „{c.quote.strip()}“")
    if not answer.answerable and answer.passages:
        click.echo()
        print_hits(list(answer.passages))
