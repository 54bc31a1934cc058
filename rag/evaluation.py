"""Retrieval evaluation on SQuAD-format files (XQuAD): Recall@k, MRR@10, nDCG@10.

Every paragraph becomes a document of a temporary index (optionally among distractor articles);
a question's gold document is its own paragraph. Hits are counted per document (a paragraph split
into several passages counts once, at its best rank).
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
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
) -> dict[str, Any]:
    """Answer every question of a SQuAD file against an index of its own paragraphs, in each
    of `modes` (default: `mode`, else the configured one).

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
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        with Engine.open(index_dir or Path(tmp) / "index", settings) as engine:
            engine.add_documents(docs)
            for asked in asked_modes:
                block: dict[str, Any] = {}
                block["answerable_index"], used = _answer_run(engine, items, golds, asked)
                if hard_negatives:
                    block["hard_negatives"] = _hard_negative_run(
                        engine, items, golds, asked, docs, article, Filters
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


def _answer_run(
    engine: Any, items: Sequence[Question], golds: dict[str, list[str]], mode: str
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
