"""Retrieval evaluation on SQuAD-format files (XQuAD): Recall@k, MRR@10, nDCG@10.

Every paragraph becomes a document of a temporary index (optionally among distractor articles);
a question's gold document is its own paragraph. Hits are counted per document (a paragraph split
into several passages counts once, at its best rank).
"""

from __future__ import annotations

import csv
import json
import math
import re
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.settings import Settings
from rag.types import Document

CUTOFFS = (1, 5, 10)
RETRIEVERS = (
    ("dense", "dense", False),
    ("keyword", "keyword", False),
    ("hybrid", "hybrid", False),
    ("hybrid+rerank", "hybrid", True),
)


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    gold_doc_id: str


def load_squad(path: Path) -> tuple[list[Document], dict[str, Question]]:
    """Paragraphs as documents, and questions keyed by id, from a SQuAD-1.1 JSON file."""
    try:
        return _parse_squad(path, json.loads(path.read_text(encoding="utf-8"))["data"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{path} is not a SQuAD-format JSON file (problem: {type(exc).__name__} {exc}); "
            "expected {'data': [{'title', 'paragraphs': [{'context', 'qas': [{'id', "
            "'question'}]}]}]}"
        ) from None


def _parse_squad(path: Path, data: list[Any]) -> tuple[list[Document], dict[str, Question]]:
    docs: list[Document] = []
    questions: dict[str, Question] = {}
    for a, article in enumerate(data):
        for p, para in enumerate(article["paragraphs"]):
            doc_id = f"squad-{a}-{p}"
            docs.append(
                Document(
                    doc_id=doc_id,
                    text=para["context"],
                    source=f"{path.name}#{a}.{p}",
                    title=article.get("title"),
                )
            )
            for qa in para["qas"]:
                questions[qa["id"]] = Question(qa["id"], qa["question"], doc_id)
    return docs, questions


def load_corpus(path: Path) -> list[Document]:
    """Distractor articles: 10kGNAD-style CSV (`label;text`), or anything the ingest reads."""
    if path.suffix.lower() == ".csv":
        return _load_gnad_csv(path)
    from rag.ingest import discover, read_file

    files, problems = discover([path])
    if problems and not files:
        raise ConfigError(f"cannot read distractors from {path}: {problems[0].message}")
    docs: list[Document] = []
    for file_path, source in files:
        docs.extend(read_file(file_path, source).documents)
    return docs


def _load_gnad_csv(path: Path) -> list[Document]:
    docs = []
    with path.open(encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter=";", quotechar="'")):
            if len(row) < 2 or not row[1].strip():
                continue
            docs.append(
                Document(
                    doc_id=f"{path.stem}-{n}",
                    text=row[1],
                    source=f"{path.name}:{n + 1}",
                    title=None,
                    language="de",
                    metadata={"label": row[0]},
                )
            )
    return docs


def metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    """ranks: 1-based rank of the gold document per question, None when not in the top 10."""
    n = len(ranks) or 1
    out = {f"R@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in CUTOFFS}
    out["MRR@10"] = sum(1 / r for r in ranks if r is not None and r <= 10) / n
    out["nDCG@10"] = sum(1 / math.log2(r + 1) for r in ranks if r is not None and r <= 10) / n
    return {k: round(v, 4) for k, v in out.items()}


def gold_ranks(results: Sequence[Sequence[Any]], golds: Sequence[str]) -> list[int | None]:
    """Rank of each question's gold document among its hits, counting each document once."""
    ranks: list[int | None] = []
    for hits, gold in zip(results, golds):
        seen: list[str] = []
        for hit in hits:
            if hit.doc_id not in seen:
                seen.append(hit.doc_id)
        ranks.append(seen.index(gold) + 1 if gold in seen[:10] else None)
    return ranks


def _parallel_questions(
    questions: dict[str, Question], questions_file: Path
) -> dict[str, Question]:
    """The same questions worded as in `questions_file` (a parallel SQuAD file, same ids)."""
    _, asked = load_squad(questions_file)
    missing = [qid for qid in questions if qid not in asked]
    if missing:
        raise ConfigError(
            f"{questions_file} lacks {len(missing)} question ids of the SQuAD file (e.g. "
            f"{missing[0]}); pass a parallel file with the same ids"
        )
    return {qid: Question(qid, asked[qid].text, q.gold_doc_id) for qid, q in questions.items()}


def evaluate_retrieval(
    settings: Settings,
    squad_file: Path,
    questions_file: Path | None = None,
    distractors: Sequence[Path] = (),
    limit: int | None = None,
    index_dir: Path | None = None,
    misses: Path | None = None,
) -> dict[str, Any]:
    """Index the paragraphs (+ distractors) and score every retriever.

    The index is temporary unless `index_dir` is given; there it is kept, and a later run with
    the same files finds every document unchanged and embeds nothing. With `misses`, the
    questions whose gold paragraph the last retriever (the default, hybrid+rerank) leaves out of
    its top 5 are written there as JSONL, with each retriever's gold rank and the top 3 hits.
    """
    from rag.engine import Engine

    docs, questions = load_squad(squad_file)
    if questions_file is not None:
        questions = _parallel_questions(questions, questions_file)
    for path in distractors:
        docs.extend(load_corpus(path))
    items = list(questions.values())[:limit] if limit else list(questions.values())
    with (
        tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp,
        Engine.open(index_dir or Path(tmp) / "index", settings) as engine,
    ):
        engine.add_documents(docs)
        texts = [q.text for q in items]
        golds = [q.gold_doc_id for q in items]
        retrievers: dict[str, dict[str, float]] = {}
        ranks: dict[str, list[int | None]] = {}
        for name, mode, rerank in RETRIEVERS:
            results = engine.search_batch(texts, k=30, mode=mode, rerank=rerank, dedupe=False)
            ranks[name] = gold_ranks(results, golds)
            retrievers[name] = metrics(ranks[name])
        if misses is not None:
            _write_misses(misses, items, ranks, results)
        n_passages = engine.info()["counts"]["chunks"]
    return {"n_questions": len(items), "n_passages": n_passages, "retrievers": retrievers}


def _write_misses(
    path: Path,
    items: Sequence[Question],
    ranks: dict[str, list[int | None]],
    results: Sequence[Sequence[Any]],
) -> None:
    """JSONL of the questions the last retriever misses at 5: what an analysis starts from."""
    last = list(ranks)[-1]
    with path.open("w", encoding="utf-8") as f:
        for i, question in enumerate(items):
            rank = ranks[last][i]
            if rank is not None and rank <= 5:
                continue
            row = {
                "id": question.qid,
                "question": question.text,
                "gold_doc_id": question.gold_doc_id,
                "gold_rank": {name: r[i] for name, r in ranks.items()},
                "top": [
                    {
                        "doc_id": h.doc_id,
                        "source": h.source,
                        "score": round(h.score, 4),
                        "text": h.text[:200],
                    }
                    for h in results[i][:3]
                ],
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- answers
def _load_answers(path: Path) -> dict[str, list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return {
        qa["id"]: [a["text"] for a in qa.get("answers", [])]
        for article in data
        for para in article["paragraphs"]
        for qa in para["qas"]
    }


def _contains(text: str, golds: Sequence[str]) -> bool:
    flat = " ".join(text.split()).casefold()
    return any(" ".join(g.split()).casefold() in flat for g in golds if g.strip())


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


def evaluate_answers(
    settings: Settings,
    squad_file: Path,
    unanswerable_corpus: Sequence[Path] = (),
    limit: int | None = None,
    index_dir: Path | None = None,
    mode: str | None = None,
    questions_file: Path | None = None,
    *,
    modes: Sequence[str] = (),
    hard_negatives: bool = False,
    sample: int | None = None,
    rows: Path | None = None,
) -> dict[str, Any]:
    """Answer every question of a SQuAD file against an index of its own paragraphs, in each
    of `modes` (default: `mode`, else the configured one). With `rows`, one JSON line per
    question, mode and run (answerable, hard negative) is written there as it is answered.

    Per mode: how often the answer contains a gold answer string (`contains_gold`), is answered
    and correct, is refused although the paragraph is there (`wrongly_refused`), cites the gold
    paragraph first, and how long it took. With `hard_negatives`, each question is asked again
    restricted to its article's *other* paragraphs (same names, same topic, no answer): every
    answer there should be a refusal (`refused`; `refused_clean` leaves out questions whose gold
    string happens to stand in those paragraphs too). With `unanswerable_corpus` (e.g. the seed
    articles), against an index of only that corpus. `sample` takes N questions spread evenly
    over the file; `limit` the first N.
    """
    from rag.engine import Engine
    from rag.types import Filters

    docs, questions = load_squad(squad_file)
    golds = _load_answers(squad_file)  # gold strings of the paragraphs' language
    if questions_file is not None:
        questions = _parallel_questions(questions, questions_file)
    items = list(questions.values())
    if sample:
        items = [items[i * len(items) // sample] for i in range(min(sample, len(items)))]
    if limit:
        items = items[:limit]
    asked_modes = list(dict.fromkeys(modes or [mode or settings.generation.mode]))
    article = {d.doc_id: d.doc_id.rsplit("-", 1)[0] for d in docs}
    n = len(items) or 1
    out: dict[str, Any] = {"n_questions": len(items), "mode": asked_modes[0], "by_mode": {}}
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp, ExitStack() as stack:
        sink = stack.enter_context(rows.open("w", encoding="utf-8")) if rows else None
        with Engine.open(index_dir or Path(tmp) / "index", settings) as engine:
            engine.add_documents(docs)
            for asked in asked_modes:
                block: dict[str, Any] = {}
                block["answerable_index"], used = _answer_run(engine, items, golds, asked, sink)
                if hard_negatives:
                    block["hard_negatives"] = _hard_negative_run(
                        engine, items, golds, asked, docs, article, Filters, sink
                    )
                out["by_mode"][used or asked] = block
        if unanswerable_corpus:
            with Engine.open(Path(tmp) / "unanswerable", settings) as engine:
                report = engine.add(list(unanswerable_corpus))
                if not report.documents:
                    raise ConfigError(
                        f"no documents could be read from {[str(p) for p in unanswerable_corpus]}"
                    )
                for used_mode, block in out["by_mode"].items():
                    refused = 0
                    evidence: list[float] = []
                    for q in items:
                        answer = engine.ask(q.text, mode=used_mode)  # type: ignore[arg-type]
                        refused += not answer.answerable
                        if answer.evidence is not None:
                            evidence.append(answer.evidence)
                    block["unanswerable_index"] = {
                        "documents": report.documents,
                        "not_answerable": round(refused / n, 4),
                        "evidence_p50": _quantile(evidence, 0.5),
                        "evidence_p95": _quantile(evidence, 0.95),
                    }
    # The first mode's figures stay at the top level, where earlier reports had them.
    first_mode, first = next(iter(out["by_mode"].items()))
    out["mode"] = first_mode
    out.update(first)
    out["answerable_threshold"] = settings.generation.answerable_threshold
    out["answerable_threshold_crosslingual"] = settings.generation.answerable_threshold_crosslingual
    return out


def _squad_row(
    sink: Any, run: str, mode: str, q: Question, golds: list[str], answer: Any, seconds: float
) -> None:
    """One answered question as a JSON line (`--out`): what was asked, the answer, its first
    citation and whether it held a gold string."""
    if sink is None:
        return
    first = answer.citations[0] if answer.citations else None
    row = {
        "run": run,
        "mode": mode,
        "answered_mode": answer.mode,
        "id": q.qid,
        "question": q.text,
        "gold_doc_id": q.gold_doc_id,
        "gold_answers": golds,
        "answer": answer.text,
        "answerable": bool(answer.answerable),
        "contains_gold": _contains(answer.text, golds),
        "first_citation_doc_id": None if first is None else first.doc_id,
        "evidence": answer.evidence,
        "seconds": round(seconds, 3),
    }
    sink.write(json.dumps(row, ensure_ascii=False) + "\n")
    sink.flush()


def _answer_run(
    engine: Any,
    items: Sequence[Question],
    golds: dict[str, list[str]],
    mode: str,
    sink: Any = None,
) -> tuple[dict[str, Any], str | None]:
    """The answerable run of one mode, and the mode that actually answered (reader mode with
    no model answers in quote mode)."""
    contains = correct = first_gold = answered = 0
    evidence: list[float] = []
    seconds: list[float] = []
    used: Counter[str] = Counter()
    for q in items:
        started = time.perf_counter()
        answer = engine.ask(q.text, mode=mode)
        seconds.append(time.perf_counter() - started)
        used[answer.mode] += 1
        hit = _contains(answer.text, golds.get(q.qid, []))
        contains += hit
        correct += hit and answer.answerable
        first_gold += bool(answer.citations) and answer.citations[0].doc_id == q.gold_doc_id
        answered += answer.answerable
        _squad_row(sink, "answerable", mode, q, golds.get(q.qid, []), answer, seconds[-1])
        if answer.evidence is not None:
            evidence.append(answer.evidence)
    n = len(items) or 1
    block = {
        "contains_gold": round(contains / n, 4),
        "correct": round(correct / n, 4),
        "first_citation_gold": round(first_gold / n, 4),
        "answerable": round(answered / n, 4),
        "wrongly_refused": round(1 - answered / n, 4),
        "evidence_p05": _quantile(evidence, 0.05),
        "evidence_p50": _quantile(evidence, 0.5),
        "latency_p50_s": _quantile(seconds, 0.5),
        "latency_p95_s": _quantile(seconds, 0.95),
    }
    return block, used.most_common(1)[0][0] if used else None


def _hard_negative_run(
    engine: Any,
    items: Sequence[Question],
    golds: dict[str, list[str]],
    mode: str,
    docs: Sequence[Document],
    article: dict[str, str],
    filters: Any,
    sink: Any = None,
) -> dict[str, Any]:
    """Each question against its article's other paragraphs only: it should be refused."""
    refused = asked = clean = refused_clean = 0
    seconds: list[float] = []
    for q in items:
        same = article[q.gold_doc_id]
        others = [d for d in docs if article[d.doc_id] == same and d.doc_id != q.gold_doc_id]
        if not others:
            continue  # an article of one paragraph has no hard negative
        started = time.perf_counter()
        answer = engine.ask(q.text, filters(sources=tuple(d.source for d in others)), mode=mode)
        seconds.append(time.perf_counter() - started)
        _squad_row(sink, "hard_negative", mode, q, golds.get(q.qid, []), answer, seconds[-1])
        asked += 1
        refused += not answer.answerable
        if not any(_contains(d.text, golds.get(q.qid, [])) for d in others):
            clean += 1
            refused_clean += not answer.answerable
    return {
        "n": asked,
        "refused": round(refused / (asked or 1), 4),
        "wrongly_answered": round(1 - refused / (asked or 1), 4),
        "n_clean": clean,
        "refused_clean": round(refused_clean / (clean or 1), 4),
        "latency_p50_s": _quantile(seconds, 0.5),
    }


# --------------------------------------------------------------------------- temporal questions
TEMPORAL_KINDS = ("as_of", "latest", "change", "when", "in_year")
"""as_of: the value at a named time; latest: what the newest report says; change: two values
with their dates; when: a date (possibly resolved from "am Mittwoch"); in_year: in a named year."""
TEMPORAL_FIELDS = (
    "id",
    "kind",
    "language",
    "question",
    "answers",
    "gold_date",
    "gold_doc_ids",
    "evidence",
    "distractor_doc_ids",
)
_GOLD_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
_DATE = r"\d{4}(?:-\d{2}){0,2}"
# Labels that date a quoted source, not the answer: after a citation marker ("„...“ [1]
# (2005-07-26)", "[1] (As of 2006-08-17)", "[1] (2005-07, date inferred from the text)"), and
# before a quote ("Stand 2023-06:", "Früher, 2022-06 (Datum erschlossen):", "As of ...",
# "Earlier, ...", "Später, ..."). A resolved relative date ("(am Mittwoch = 2005-04-27, ...)")
# is the answer's own statement and stays.
_CITATION_DATE_LABEL = re.compile(
    rf"(\[\d+\])\s*\((?:(?:Stand|[Aa]s of)\s+)?(?:{_DATE}|ohne Datum|undated)(?:,[^)\n]*)?\)"
)
_SOURCE_DATE_LABEL = re.compile(
    rf"\b(?:Stand|[Aa]s of|Früher,|Earlier,|Später,|Later,)\s+{_DATE}(?:\s*\([^)\n]*\))?"
)


@dataclass(frozen=True)
class DatedValue:
    """One value of a "change" question: what was true, when, where it is said."""

    answers: tuple[str, ...]
    gold_date: str
    gold_doc_ids: tuple[str, ...]
    evidence: str


@dataclass(frozen=True)
class TemporalQuestion:
    """A question whose answer depends on time (see benchmarks/README.md for the file format).

    `answers` are alternative gold strings (any one counts); `gold_date` is when the answer is
    true (the answering article's date; for "when" questions, the date asked for);
    `values` (only "change") are the dated values, earliest first, every one of which an answer
    must give.
    """

    qid: str
    kind: str
    language: str
    text: str
    answers: tuple[str, ...]
    gold_date: str
    gold_doc_ids: tuple[str, ...]
    evidence: str
    distractor_doc_ids: tuple[str, ...] = ()
    values: tuple[DatedValue, ...] = ()
    note: str | None = None

    def parts(self) -> tuple[DatedValue, ...]:
        """What an answer must give: every value of a "change" question, else the one answer."""
        if self.values:
            return self.values
        return (DatedValue(self.answers, self.gold_date, self.gold_doc_ids, self.evidence),)


def load_temporal_questions(path: Path) -> list[TemporalQuestion]:
    """Read and check a JSONL file of temporal questions; every problem is reported at once."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the question file {path}: {exc}") from None
    questions: list[TemporalQuestion] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            problems.append(f"line {number}: not JSON ({exc})")
            continue
        found = _temporal_problems(record)
        qid = record.get("id") if isinstance(record, dict) else None
        if isinstance(qid, str) and qid in seen:
            found.append(f"duplicate id {qid!r}")
        if found:
            problems.extend(f"line {number}: {p}" for p in found)
            continue
        seen.add(qid)  # type: ignore[arg-type]
        questions.append(_temporal_question(record))
    if problems:
        shown = "; ".join(problems[:10]) + (
            f"; ... {len(problems) - 10} more" if len(problems) > 10 else ""
        )
        raise ConfigError(
            f"{path} has {len(problems)} problem(s): {shown}. Each line is one question "
            f"with the fields {', '.join(TEMPORAL_FIELDS)} (see benchmarks/README.md)"
        )
    if not questions:
        raise ConfigError(f"{path} holds no questions; write one JSON object per line")
    return questions


def _is_strings(value: Any, *, empty: bool = False) -> bool:
    return (
        isinstance(value, list)
        and (empty or bool(value))
        and all(isinstance(v, str) and v.strip() for v in value)
    )


def _temporal_problems(record: Any) -> list[str]:
    if not isinstance(record, dict):
        return ["not a JSON object"]
    missing = [f for f in TEMPORAL_FIELDS if f not in record]
    if missing:
        return [f"missing {', '.join(missing)}"]
    problems = [
        f"{f} must be a non-empty string"
        for f in ("id", "question", "evidence")
        if not (isinstance(record[f], str) and record[f].strip())
    ]
    if record["kind"] not in TEMPORAL_KINDS:
        problems.append(f"kind {record['kind']!r} is not one of {', '.join(TEMPORAL_KINDS)}")
    if record["language"] not in ("de", "en"):
        problems.append(f"language {record['language']!r} is not de or en")
    for f in ("answers", "gold_doc_ids"):
        if not _is_strings(record[f]):
            problems.append(f"{f} must be a non-empty list of strings")
    if not _is_strings(record["distractor_doc_ids"], empty=True):
        problems.append("distractor_doc_ids must be a list of strings")
    elif record["kind"] in ("as_of", "latest") and not record["distractor_doc_ids"]:
        problems.append(
            f"a {record['kind']} question needs a distractor (another date, another answer)"
        )
    elif set(record["distractor_doc_ids"]) & set(record["gold_doc_ids"] or ()):
        problems.append("a distractor is also a gold document")
    if not (isinstance(record["gold_date"], str) and _GOLD_DATE.match(record["gold_date"])):
        problems.append(f"gold_date {record['gold_date']!r} is not YYYY-MM-DD or YYYY-MM")
    if record["kind"] == "change" or "values" in record:
        problems.extend(_values_problems(record))
    return problems


def _values_problems(record: dict[str, Any]) -> list[str]:
    values = record.get("values")
    if record["kind"] != "change":
        return ["only change questions have values"]
    if not isinstance(values, list) or len(values) < 2:
        return ["a change question needs values: two or more dated values, earliest first"]
    problems: list[str] = []
    for i, value in enumerate(values):
        if not isinstance(value, dict):
            problems.append(f"values[{i}] is not an object")
            continue
        if not (_is_strings(value.get("answers")) and _is_strings(value.get("gold_doc_ids"))):
            problems.append(f"values[{i}] needs answers and gold_doc_ids (lists of strings)")
        elif not set(value["answers"]) <= set(record["answers"] or ()):
            problems.append(f"values[{i}].answers are not all in answers")
        elif not set(value["gold_doc_ids"]) <= set(record["gold_doc_ids"] or ()):
            problems.append(f"values[{i}].gold_doc_ids are not all in gold_doc_ids")
        if not (isinstance(value.get("gold_date"), str) and _GOLD_DATE.match(value["gold_date"])):
            problems.append(f"values[{i}].gold_date is not YYYY-MM-DD or YYYY-MM")
        if not (isinstance(value.get("evidence"), str) and value["evidence"].strip()):
            problems.append(f"values[{i}].evidence must be a non-empty string")
    if problems:
        return problems
    dates = [v["gold_date"] for v in values]
    if dates != sorted(dates):
        problems.append("values must be ordered by gold_date, earliest first")
    if record["gold_date"] != dates[-1]:
        problems.append("gold_date must be the last value's gold_date")
    return problems


def _temporal_question(record: dict[str, Any]) -> TemporalQuestion:
    values = tuple(
        DatedValue(tuple(v["answers"]), v["gold_date"], tuple(v["gold_doc_ids"]), v["evidence"])
        for v in record.get("values") or ()
    )
    return TemporalQuestion(
        qid=record["id"],
        kind=record["kind"],
        language=record["language"],
        text=record["question"],
        answers=tuple(record["answers"]),
        gold_date=record["gold_date"],
        gold_doc_ids=tuple(record["gold_doc_ids"]),
        evidence=record["evidence"],
        distractor_doc_ids=tuple(record["distractor_doc_ids"]),
        values=values,
        note=record.get("note"),
    )


def check_evidence(
    questions: Sequence[TemporalQuestion], documents: Sequence[Document]
) -> list[str]:
    """Problems of a question set against the articles it was written from: unknown document
    ids, an evidence sentence that does not stand verbatim in its gold document, a gold date
    whose month is not its document's (except "when" questions, whose date is the event's)."""
    by_id = {d.doc_id: d for d in documents}
    problems: list[str] = []
    for q in questions:
        unknown = [i for i in (*q.gold_doc_ids, *q.distractor_doc_ids) if i not in by_id]
        if unknown:
            problems.append(f"{q.qid}: unknown document id(s) {', '.join(unknown)}")
            continue
        for part in q.parts():
            docs = [by_id[i] for i in part.gold_doc_ids]
            if not any(part.evidence in d.text for d in docs):
                problems.append(
                    f"{q.qid}: evidence not verbatim in {', '.join(part.gold_doc_ids)}: "
                    f"{part.evidence[:80]!r}"
                )
            if q.kind != "when" and not any((d.date or "")[:7] == part.gold_date[:7] for d in docs):
                problems.append(
                    f"{q.qid}: gold_date {part.gold_date} is not the month of "
                    f"{', '.join(f'{d.doc_id} ({d.date})' for d in docs)}"
                )
    return problems


@dataclass(frozen=True)
class TemporalVerdict:
    """How one answer did on one temporal question."""

    contains_gold: bool
    """The answer gives every value asked for (a gold string; for "when", also the gold date
    written as a full date in any form)."""
    right_time: bool
    """The first citation is a gold document or dated in the gold month ("in_year": the gold
    year; "change": every value is cited so, each in its month or in the time the question
    names for it)."""
    cited: bool
    """The answer is not a refusal and has a citation."""

    @property
    def correct(self) -> bool:
        return self.contains_gold and self.right_time and self.cited


def answer_body(text: str) -> str:
    """An answer's text without the labels that print its sources' dates (see
    `_CITATION_DATE_LABEL`): what is left is what the answer itself says."""
    return _SOURCE_DATE_LABEL.sub("", _CITATION_DATE_LABEL.sub(r"\1", text))


def full_dates(text: str) -> set[str]:
    """Every full date (day, month, year) written in `text`, as YYYY-MM-DD."""
    from rag.ingest.dates import find_date_mentions

    return {
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}"
        for m in find_date_mentions(text)
        if m.year and m.month and m.day
    }


def score_temporal(question: TemporalQuestion, answer: Any) -> TemporalVerdict:
    """Score an `Answer` against a temporal question (see `TemporalVerdict`)."""
    body = answer_body(answer.text)
    dates = full_dates(body) if question.kind == "when" else set()
    contains = all(
        _contains(body, part.answers) or part.gold_date in dates for part in question.parts()
    )
    citations = sorted(answer.citations, key=lambda c: c.n)
    if question.kind == "change":
        # Each value cited in its month, or anywhere in the time the question names for it
        # ("zwischen 2008 und 2010": any report of 2010 for the 2010 value).
        from rag.retrieval.when import read_time

        asked = read_time(question.text).anchors
        right_time = all(
            any(_cited_for(c, part, 7) or _cited_within(c, part, asked) for c in citations)
            for part in question.parts()
        )
    else:
        # An "in_year" answer may come from any report of that year; the others from the month.
        width = 4 if question.kind == "in_year" else 7
        right_time = bool(citations) and _cited_for(citations[0], question.parts()[0], width)
    return TemporalVerdict(contains, right_time, bool(answer.answerable and citations))


def _cited_for(citation: Any, part: DatedValue, width: int) -> bool:
    """A gold document, or dated in the gold date's year (`width` 4) or month (7)."""
    if citation.doc_id in part.gold_doc_ids:
        return True
    when = (citation.date or "")[:width]
    return len(when) == width and when == part.gold_date[:width]


def _cited_within(citation: Any, part: DatedValue, asked: Sequence[Any]) -> bool:
    """Dated within the asked time (a `rag.retrieval.when.TimeSpan`) that holds the gold date."""
    return any(
        span.contains(part.gold_date) and span.contains(citation.date)
        for span in asked
        if span.kind in ("year", "month", "day")
    )


def _rates(verdicts: Sequence[TemporalVerdict], answered: Sequence[bool]) -> dict[str, Any]:
    n = len(verdicts) or 1
    return {
        "n": len(verdicts),
        "correct": round(sum(v.correct for v in verdicts) / n, 4),
        "contains_gold": round(sum(v.contains_gold for v in verdicts) / n, 4),
        "right_time": round(sum(v.right_time for v in verdicts) / n, 4),
        "answered": round(sum(answered) / n, 4),
    }


def evaluate_temporal(
    engine: Any,
    questions: Sequence[TemporalQuestion],
    modes: Sequence[str],
    out: Path | None = None,
) -> dict[str, Any]:
    """Ask every question in every mode through `engine` and score it (`score_temporal`).

    Per mode: the rates overall, per kind and per language, the latency, and the mode that
    answered (reader mode without a model answers in quote mode). With `out`, one JSON line per
    question and mode is written there as it is scored: the answer, its first citation and the
    verdicts, for error analysis.
    """
    report: dict[str, Any] = {
        "n_questions": len(questions),
        "kinds": dict(Counter(q.kind for q in questions)),
        "by_mode": {},
    }
    with ExitStack() as stack:
        sink = stack.enter_context(out.open("w", encoding="utf-8")) if out else None
        for mode in dict.fromkeys(modes):
            report["by_mode"][mode] = _temporal_run(engine, questions, mode, sink)
    return report


def _temporal_run(
    engine: Any, questions: Sequence[TemporalQuestion], mode: str, sink: Any
) -> dict[str, Any]:
    verdicts: list[TemporalVerdict] = []
    answered: list[bool] = []
    seconds: list[float] = []
    used: Counter[str] = Counter()
    for q in questions:
        started = time.perf_counter()
        answer = engine.ask(q.text, mode=mode)
        seconds.append(time.perf_counter() - started)
        used[answer.mode] += 1
        verdict = score_temporal(q, answer)
        verdicts.append(verdict)
        answered.append(bool(answer.answerable))
        if sink is not None:
            row = _temporal_row(q, mode, answer, verdict, seconds[-1])
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()

    def group(key: str) -> dict[str, dict[str, Any]]:
        values = sorted({getattr(q, key) for q in questions}, key=str)
        picked = {v: [i for i, q in enumerate(questions) if getattr(q, key) == v] for v in values}
        return {
            v: _rates([verdicts[i] for i in idx], [answered[i] for i in idx])
            for v, idx in picked.items()
        }

    by_kind = group("kind")
    return {
        "mode_used": used.most_common(1)[0][0] if used else mode,
        "overall": _rates(verdicts, answered),
        "by_kind": {k: by_kind[k] for k in TEMPORAL_KINDS if k in by_kind},
        "by_language": group("language"),
        "latency_p50_s": _quantile(seconds, 0.5),
        "latency_p95_s": _quantile(seconds, 0.95),
    }


def _temporal_row(
    q: TemporalQuestion, mode: str, answer: Any, verdict: TemporalVerdict, seconds: float
) -> dict[str, Any]:
    citations = sorted(answer.citations, key=lambda c: c.n)
    first = citations[0] if citations else None
    return {
        "id": q.qid,
        "kind": q.kind,
        "language": q.language,
        "mode": mode,
        "mode_used": answer.mode,
        "question": q.text,
        "gold_answers": list(q.answers),
        "gold_date": q.gold_date,
        "gold_doc_ids": list(q.gold_doc_ids),
        "answer": answer.text,
        "answerable": bool(answer.answerable),
        "first_citation": None
        if first is None
        else {
            "doc_id": first.doc_id,
            "date": first.date,
            "date_source": first.date_source,
            "title": first.title,
            "quote": first.quote,
        },
        "citations": [{"n": c.n, "doc_id": c.doc_id, "date": c.date} for c in citations],
        "contains_gold": verdict.contains_gold,
        "right_time": verdict.right_time,
        "cited": verdict.cited,
        "correct": verdict.correct,
        "seconds": round(seconds, 3),
    }


def evaluate_temporal_questions(
    settings: Settings,
    questions_file: Path,
    index_dir: Path,
    index_from: Sequence[Path] = (),
    modes: Sequence[str] = (),
    limit: int | None = None,
    sample: int | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """`evaluate_temporal` over the questions of `questions_file`, against the index at
    `index_dir`; with `index_from`, those article files are added to it first (unchanged
    articles cost nothing, so a kept index is built once)."""
    from rag.engine import Engine

    questions = load_temporal_questions(questions_file)
    if sample:
        questions = [
            questions[i * len(questions) // sample] for i in range(min(sample, len(questions)))
        ]
    if limit:
        questions = questions[:limit]
    with Engine.open(index_dir, settings) as engine:
        if index_from:
            added = engine.add(list(index_from))
            if not added.documents:
                raise ConfigError(f"no articles could be read from {[str(p) for p in index_from]}")
        counts = engine.info()["counts"]  # no index there: an error naming `rag index`
        missing = _missing_gold_documents(engine, questions)
        report = evaluate_temporal(engine, questions, modes or [settings.generation.mode], out)
    report["index"] = {
        "path": str(index_dir),
        "documents": counts.get("documents"),
        "chunks": counts.get("chunks"),
        "missing_gold_documents": missing,
    }
    return report


def _missing_gold_documents(engine: Any, questions: Sequence[TemporalQuestion]) -> list[str]:
    """Gold documents the index lacks: a question about them cannot be answered right."""
    known = {d["doc_id"] for d in engine.documents()}
    return sorted({i for q in questions for i in q.gold_doc_ids} - known)
