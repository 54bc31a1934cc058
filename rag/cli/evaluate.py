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
@click.argument(
    "squad_file", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
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
    help="With SQUAD_FILE: ask the questions as worded in this parallel file (e.g. "
    "xquad.en.json: English questions, gold answers still from SQUAD_FILE). Without it: a JSONL "
    "file of questions with gold dates (benchmarks/temporal_questions.jsonl), asked against "
    "--index.",
)
@click.option(
    "--index-from",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="JSONL questions: add these articles to --index first (unchanged ones cost nothing, "
    "so the index is built once). Repeatable.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write one JSON line per question and mode here (the answer, its first citation, "
    "the verdicts; with a SQuAD file also per run: answerable, hard negative).",
)
@click.option(
    "--hard-negatives",
    is_flag=True,
    help="Also ask each question against its article's other paragraphs only (same names and "
    "topic, no answer): every answer there should be a refusal.",
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N questions.")
@click.option("--sample", type=click.IntRange(1), help="N questions spread evenly over the file.")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the index of the paragraphs here (reused by later runs); with JSONL questions, "
    "the index they are asked against.",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(ANSWER_MODES),
    help="Answer mode; repeat to compare modes (default: the configured one).",
)
@click.option("--json", "as_json", is_flag=True)
def eval_answers_cmd(
    squad_file: Path | None,
    unanswerable: tuple[Path, ...],
    questions: Path | None,
    index_from: tuple[Path, ...],
    out: Path | None,
    hard_negatives: bool,
    limit: int | None,
    sample: int | None,
    index_dir: Path | None,
    modes: tuple[AnswerMode, ...],
    as_json: bool,
) -> None:
    """Answer quality on a SQuAD-format file, per mode: gold answer contained, answered and
    correct, wrongly refused, first citation gold, latency; refusals on hard negatives and on
    an index that cannot answer. Or, without SQUAD_FILE, on questions with gold dates
    (--questions FILE.jsonl --index DIR): the right value for the right time, cited."""
    from rag.evaluation import evaluate_answers
    from rag.settings import load_settings

    if squad_file is None:
        if unanswerable or hard_negatives:
            raise click.UsageError(
                "--unanswerable and --hard-negatives go with a SQuAD file, not JSONL questions"
            )
        _temporal_cmd(questions, index_dir, index_from, out, modes, limit, sample, as_json)
        return
    if index_from:
        raise click.UsageError(
            "--index-from goes with a JSONL question file (--questions FILE.jsonl without "
            "SQUAD_FILE)"
        )
    report = evaluate_answers(
        load_settings(),
        squad_file,
        list(unanswerable),
        limit,
        index_dir,
        None,
        questions,
        modes=modes,
        hard_negatives=hard_negatives,
        sample=sample,
        rows=out,
    )
    if as_json:
        _echo_json(report)
        return
    click.echo(f"{report['n_questions']} questions")
    for mode, block in report["by_mode"].items():
        a = block["answerable_index"]
        click.echo(f"mode {mode}")
        click.echo(f"  answer contains the gold answer:   {a['contains_gold']:.3f}")
        click.echo(f"  answered and correct:              {a['correct']:.3f}")
        click.echo(f"  refused though answerable:         {a['wrongly_refused']:.3f}")
        click.echo(f"  first citation is the gold passage: {a['first_citation_gold']:.3f}")
        click.echo(f"  latency p50 {a['latency_p50_s']:.2f} s, p95 {a['latency_p95_s']:.2f} s")
        h = block.get("hard_negatives")
        if h:
            click.echo(
                f"  hard negatives ({h['n']}): refused {h['refused']:.3f} "
                f"(clean {h['n_clean']}: {h['refused_clean']:.3f}), "
                f"latency p50 {h['latency_p50_s']} s"
            )
        u = block.get("unanswerable_index")
        if u:
            click.echo(
                f"  against {u['documents']} unrelated articles, not answerable: "
                f"{u['not_answerable']:.3f}"
            )
    a = report["answerable_index"]
    u = report.get("unanswerable_index")
    click.echo(
        f"evidence (threshold {report['answerable_threshold']}, across languages "
        f"{report['answerable_threshold_crosslingual']}): answerable p05 "
        f"{a['evidence_p05']}, p50 {a['evidence_p50']}"
        + (f"; unanswerable p50 {u['evidence_p50']}, p95 {u['evidence_p95']}" if u else "")
    )


TEMPORAL_MEASURES = ("correct", "contains_gold", "right_time", "answered")


def _temporal_cmd(
    questions: Path | None,
    index_dir: Path | None,
    index_from: tuple[Path, ...],
    out: Path | None,
    modes: tuple[AnswerMode, ...],
    limit: int | None,
    sample: int | None,
    as_json: bool,
) -> None:
    """`rag eval-answers --questions FILE.jsonl --index DIR`: temporal questions."""
    from rag.evaluation import evaluate_temporal_questions
    from rag.settings import load_settings

    if questions is None:
        raise click.UsageError(
            "give a SQuAD file, or --questions FILE.jsonl (questions with gold dates) and --index"
        )
    if questions.suffix.lower() != ".jsonl":
        raise click.UsageError(
            f"without SQUAD_FILE, --questions must be a JSONL file of questions with gold "
            f"dates (got {questions}); a parallel SQuAD file goes with its SQUAD_FILE"
        )
    if index_dir is None:
        raise click.UsageError(
            "JSONL questions are asked against an index: pass --index DIR (and --index-from "
            "ARTICLES to build it)"
        )
    report = evaluate_temporal_questions(
        load_settings(), questions, index_dir, index_from, modes, limit, sample, out
    )
    if as_json:
        _echo_json(report)
        return
    index = report["index"]
    click.echo(
        f"{report['n_questions']} questions; index {index['path']}: {index['documents']} "
        f"documents, {index['chunks']} passages"
    )
    if index["missing_gold_documents"]:
        click.echo(
            f"  gold documents not in the index: {', '.join(index['missing_gold_documents'])}"
        )
    for mode, block in report["by_mode"].items():
        used = f" (answered in {block['mode_used']} mode)" if block["mode_used"] != mode else ""
        click.echo(f"mode {mode}{used}")
        click.echo(f"  {'':<10}{'n':>4}" + "".join(f"{m:>15}" for m in TEMPORAL_MEASURES))
        rows = [*block["by_kind"].items(), *block["by_language"].items()]
        for name, rates in [*rows, ("overall", block["overall"])]:
            click.echo(
                f"  {name:<10}{rates['n']:>4}"
                + "".join(f"{rates[m]:>15.3f}" for m in TEMPORAL_MEASURES)
            )
        click.echo(f"  latency p50 {block['latency_p50_s']} s, p95 {block['latency_p95_s']} s")
