"""`rag verify`: check an index directory's files against each other; `--repair` rebuilds the
derived ones."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli import _echo_json
from rag.cli.options import index_option, json_option

if TYPE_CHECKING:
    from index.verify import VerifyReport


@click.command("verify", short_help="Check an index's files; --repair rebuilds derived ones.")
@index_option
@click.option(
    "--repair",
    "do_repair",
    is_flag=True,
    help="Rebuild what derives from chunks.sqlite (vectors.faiss, manifest.json, keyword terms, "
    "orphaned rows, the schema), atomically and under the write lock, then check again.",
)
@json_option
def verify_cmd(index_dir: Path | None, do_repair: bool, as_json: bool) -> None:
    """Check an index: SQLite's integrity, that every passage has its vector and keyword terms,
    that vectors.faiss holds exactly the stored passages, that the manifest's counts and
    checksum match, and that quotes can be cut from the stored text.

    Each problem is printed with what --repair does about it, or why it cannot (a damaged
    chunks.sqlite holds the only copy of the data: restore a backup or re-index). Without
    --repair nothing is changed.

    Exit code 0 when the index is clean (with --repair: clean afterwards), 1 when problems
    remain.
    """
    from index.verify import repair, verify
    from rag.settings import load_settings

    path = index_dir or load_settings().index_dir
    if do_repair:
        from rag.retrieval.analysis import Analyzer

        analyzer = Analyzer()
        report = repair(
            path,
            analyzer_id=analyzer.id,
            analyze=lambda rows: [analyzer.document_terms(t, lang) for t, lang in rows],
        )
    else:
        report = verify(path)
    if as_json:
        _echo_json(report.to_json())
    else:
        _print_report(report, do_repair)
    if not report.ok:
        sys.exit(1)


def _print_report(report: VerifyReport, repaired: bool) -> None:
    for action in report.repaired:
        click.echo(f"repaired: {action}")
    if report.ok:
        click.echo(f"{report.path}: clean")
        return
    click.echo(f"{report.path}: {len(report.problems)} problem(s)")
    for problem in report.problems:
        click.echo(f"  [{problem.kind}] {problem.message}")
        label = "--repair" if problem.repairable and not repaired else "to do"
        click.echo(f"    {label}: {problem.repair}")
    fixable = sum(p.repairable for p in report.problems)
    if fixable and not repaired:
        index = shlex.quote(str(report.path))
        click.echo(f"Run `rag verify --repair --index {index}` to fix {fixable} of them.")
