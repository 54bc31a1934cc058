"""`rag export`: answers as Markdown, JSON, PDF, BibTeX or CSL-JSON, from saved answer JSON or
from a question asked now."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli import _engine
from rag.cli.options import index_dir_option
from rag.errors import ConfigError
from rag.vocabulary import ANSWER_MODES, EXPORT_FORMATS, AnswerMode, ExportFormat

if TYPE_CHECKING:
    from rag.answer.types import Answer
    from rag.export import Export


@click.command("export")
@click.argument("question", required=False)
@click.option(
    "--from-json",
    "from_json",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Saved answers: one JSON answer (`rag ask --json`), JSONL of them (`rag ask --batch "
    "--json`) or a JSON export. '-' reads standard input.",
)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(EXPORT_FORMATS, case_sensitive=False),
    required=True,
    help="markdown, json (versioned schema), pdf, bibtex or csl (CSL-JSON of the cited sources).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(allow_dash=True, path_type=Path),
    help="File to write, or a folder for the default file name (default: standard output).",
)
@index_dir_option(
    "Index to ask QUESTION against (default: the per-user data dir, or $RAG_INDEX_DIR)."
)
@click.option(
    "--mode",
    type=click.Choice(ANSWER_MODES),
    help="How to answer QUESTION: quote = verbatim source sentences; generate = the model.",
)
def export_cmd(
    question: str | None,
    from_json: Path | None,
    fmt: ExportFormat,
    output: Path | None,
    index_dir: Path | None,
    mode: AnswerMode | None,
) -> None:
    """Export answers with their cited quotes and sources.

    \b
    rag export --from-json answer.json --format pdf -o answer.pdf
    rag ask --batch questions.jsonl --json > answers.jsonl
    rag export --from-json answers.jsonl --format bibtex -o sources.bib
    rag export "Wer regiert in Berlin?" --format markdown
    """
    from rag.export import export_answers

    if (question is None) == (from_json is None):
        raise ConfigError("give either a QUESTION to ask or --from-json FILE (not both)")
    if from_json is not None:
        exported = export_answers(read_answers(from_json), fmt)
    else:
        exported = _ask_and_export(question or "", index_dir, fmt, mode)
    _write(exported, output)


def _ask_and_export(
    question: str, index_dir: Path | None, fmt: ExportFormat, mode: AnswerMode | None
) -> Export:
    with _engine(index_dir) as engine:
        return engine.export(engine.ask(question, mode=mode), fmt)


def read_answers(path: Path) -> list[Answer]:
    """Answers from a JSON file (one answer, a list, or an export) or JSONL, one per line;
    errors name the file (and line)."""
    from rag.export import answers_from_json

    name = "<stdin>" if str(path) == "-" else str(path)
    text = _read_text(path, name)
    if not text.strip():
        raise ConfigError(f"{name} is empty; expected answer JSON as `rag ask --json` prints it")
    try:
        data = json.loads(text)
    except ValueError:
        return _read_jsonl(text, name)
    try:
        return answers_from_json(data)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _read_jsonl(text: str, name: str) -> list[Answer]:
    from rag.export import answer_from_json

    answers = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ConfigError(
                f"{name}:{n}: not JSON ({exc.args[0] if exc.args else exc}); expected one "
                "answer object per line, as `rag ask --batch FILE --json` writes"
            ) from None
        answers.append(answer_from_json(item, where=f"{name}:{n}"))
    return answers


def _read_text(path: Path, name: str) -> str:
    try:
        raw = sys.stdin.buffer.read() if name == "<stdin>" else path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{name} does not exist; give the file `rag ask --json` wrote") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{name} is not UTF-8 text; answer JSON is always UTF-8") from None


def _write(exported: Export, output: Path | None) -> None:
    if output is None or str(output) == "-":
        if exported.media_type == "application/pdf" and sys.stdout.isatty():
            raise ConfigError(
                f"not writing a PDF to the terminal; add -o {exported.filename} (or redirect)"
            )
        sys.stdout.flush()
        sys.stdout.buffer.write(exported.data)
        sys.stdout.buffer.flush()
        return
    target = output / exported.filename if output.is_dir() else output
    try:
        target.write_bytes(exported.data)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
    click.echo(f"wrote {target}", err=True)
