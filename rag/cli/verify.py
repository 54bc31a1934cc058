"""`rag verify`: check an index directory's files against each other; `--repair` rebuilds the
derived ones and salvages a damaged chunks.sqlite."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli import _echo_json
from rag.cli.options import index_option, json_option

if TYPE_CHECKING:
    from index.salvage import Salvage
    from index.verify import VerifyReport

_LISTED = 20  # lost documents named in the text output (--json lists them all)


@click.command("verify", short_help="Check an index's files; --repair rebuilds derived ones.")
@index_option
@click.option(
    "--repair",
    "do_repair",
    is_flag=True,
    help="Rebuild what derives from chunks.sqlite (vectors.faiss, manifest.json, keyword terms, "
    "orphaned rows, the schema), atomically and under the write lock, then check again. A "
    "damaged chunks.sqlite is salvaged first: the readable rows go into a new one, the damaged "
    "file is kept, and the documents lost are listed with the `rag index` command that restores "
    "them.",
)
@json_option
def verify_cmd(index_dir: Path | None, do_repair: bool, as_json: bool) -> None:
    """Check an index: SQLite's integrity, that every passage has its vector and keyword terms,
    that vectors.faiss holds exactly the stored passages, that the manifest's counts and
    checksum match, and that quotes can be cut from the stored text.

    Each problem is printed with what --repair does about it, or why it cannot. A damaged
    chunks.sqlite (the only copy of the data) is salvaged: every readable row is copied into a
    new database, documents that lost a passage are left out whole and listed, and `rag index`
    of their sources adds them again; when not even its first page can be read, restore a backup
    or re-index. Without --repair nothing is changed.

    Exit code 0 when the index is clean (with --repair: clean afterwards, even when a salvage
    lost documents: they are listed), 1 when problems remain.
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
    if report.salvage is not None:
        _print_salvage(report.salvage)
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


def _print_salvage(salvage: Salvage) -> None:
    for gap in salvage.unreadable:
        click.echo(f"  unreadable: {gap}")
    if not salvage.lost:
        return
    lost = salvage.lost_documents
    click.echo(
        f"lost: {len(lost) + salvage.unnamed_documents} document(s), "
        f"{salvage.lost_passages} passage(s):"
    )
    for doc in lost[:_LISTED]:
        title = f" {doc.title!r}" if doc.title else ""
        click.echo(f"  {doc.doc_id}{title} ({doc.source or 'source unknown'})")
    if len(lost) > _LISTED:
        click.echo(f"  ... and {len(lost) - _LISTED} more (--json lists them all)")
    if salvage.unnamed_documents:
        click.echo(f"  ... and {salvage.unnamed_documents} whose id could not be read")
    if salvage.restore:
        hint = "from the directory the sources were first indexed from"
        if "SOURCES" in salvage.restore.split():
            hint += "; SOURCES: every original source, whose unchanged documents are skipped"
        click.echo(f"restore them ({hint}):\n  {salvage.restore}")
