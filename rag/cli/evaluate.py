"""`rag eval` and `rag eval-answers`: retrieval and answer quality on SQuAD-format files."""

from __future__ import annotations

from pathlib import Path

import click

from rag.cli import _echo_json
from rag.vocabulary import ANSWER_MODES, AnswerMode

RETRIEVAL_METRICS = ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10")


@click.command("eval")
@click.argument("squad_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--questions",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A parallel SQuAD file (same question ids) to take the questions from, "
    "e.g. English questions against German paragraphs.",
)
@click.option(
    "--distractors",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Extra articles mixed into the index (.jsonl, 10kGNAD-style .csv, or any "
    "ingestible file/folder). Repeatable.",
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N questions.")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the evaluation index here (default: a temporary one); a later run with the same "
    "files reuses it without embedding anything.",
)
@click.option(
    "--misses",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the questions the default retriever misses at R@5 here (JSONL: gold ranks of "
    "every retriever, top 3 hits).",
)
@click.option("--json", "as_json", is_flag=True)
def eval_cmd(
    squad_file: Path,
    questions: Path | None,
    distractors: tuple[Path, ...],
    limit: int | None,
    index_dir: Path | None,
    misses: Path | None,
    as_json: bool,
) -> None:
    """Retrieval quality on a SQuAD-format file: Recall@1/5/10, MRR@10, nDCG@10."""
    from rag.evaluation import evaluate_retrieval
    from rag.settings import load_settings

    report = evaluate_retrieval(
        load_settings(), squad_file, questions, list(distractors), limit, index_dir, misses
    )
    if as_json:
        _echo_json(report)
        return
    click.echo(f"{report['n_questions']} questions, {report['n_passages']} passages")
    click.echo(f"{'retriever':<16}" + "".join(f"{c:>9}" for c in RETRIEVAL_METRICS))
    for name, scores in report["retrievers"].items():
        click.echo(f"{name:<16}" + "".join(f"{scores[c]:>9.3f}" for c in RETRIEVAL_METRICS))


@click.command("eval-answers")
@click.argument("squad_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--unanswerable",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Articles that do not answer these questions (e.g. seeds/): the questions are also asked "
    "against an index of only these, where every answer should say the sources do not answer. "
    "Repeatable.",
)
@click.option(
    "--questions",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Ask the questions as worded in this parallel file (e.g. xquad.en.json: English "
    "questions, gold answers still from SQUAD_FILE).",
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N questions.")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the index of the paragraphs here (reused by later runs).",
)
@click.option("--mode", type=click.Choice(ANSWER_MODES), help="Answer mode.")
@click.option("--json", "as_json", is_flag=True)
def eval_answers_cmd(
    squad_file: Path,
    unanswerable: tuple[Path, ...],
    questions: Path | None,
    limit: int | None,
    index_dir: Path | None,
    mode: AnswerMode | None,
    as_json: bool,
) -> None:
    """Answer quality on a SQuAD-format file: gold answer contained, first citation gold,
    and refusals on an index that cannot answer."""
    from rag.evaluation import evaluate_answers
    from rag.settings import load_settings

    report = evaluate_answers(
        load_settings(), squad_file, list(unanswerable), limit, index_dir, mode, questions
    )
    if as_json:
        _echo_json(report)
        return
    a = report["answerable_index"]
    click.echo(f"{report['n_questions']} questions, mode {report['mode']}")
    click.echo(f"answer contains the gold answer:   {a['contains_gold']:.3f}")
    click.echo(f"first citation is the gold passage: {a['first_citation_gold']:.3f}")
    click.echo(f"answerable:                         {a['answerable']:.3f}")
    u = report.get("unanswerable_index")
    if u:
        click.echo(
            f"against {u['documents']} unrelated articles, not answerable: "
            f"{u['not_answerable']:.3f}"
        )
    click.echo(
        f"evidence (threshold {report['answerable_threshold']}, across languages "
        f"{report['answerable_threshold_crosslingual']}): answerable p05 "
        f"{a['evidence_p05']}, p50 {a['evidence_p50']}"
        + (f"; unanswerable p50 {u['evidence_p50']}, p95 {u['evidence_p95']}" if u else "")
    )
