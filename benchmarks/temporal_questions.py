"""Check the temporal question set: its format always, its evidence against the articles.

    python benchmarks/temporal_questions.py [benchmarks/temporal_questions.jsonl] \\
        [--check-evidence ../shared/data/wikinews-de/articles.jsonl]

Without `--check-evidence`: the file is read as `rag eval-answers --questions` reads it (every
field, kind, date and value checked; an error lists every problem) and the questions are
counted per kind and language. With `--check-evidence ARTICLES` (the articles the questions were
written from, read as `rag index` reads them): every gold and distractor document exists, every
evidence sentence stands verbatim in its gold document's text, every gold date (except of "when"
questions, whose date is the event's) is its gold document's month, and for "as_of", "latest"
and "in_year" questions it lists the distractors whose text mentions a gold string too (a
distractor gives another answer for its own date, but may name the gold one in passing, e.g. as
the former office holder: listed for review, not an error). Exit code 1 on any problem.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.errors import ConfigError  # noqa: E402
from rag.evaluation import check_evidence, load_corpus, load_temporal_questions  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "questions", type=Path, nargs="?", default=ROOT / "benchmarks/temporal_questions.jsonl"
    )
    parser.add_argument("--check-evidence", type=Path, metavar="ARTICLES")
    args = parser.parse_args()
    try:
        questions = load_temporal_questions(args.questions)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kinds = Counter(q.kind for q in questions)
    languages = Counter(q.language for q in questions)
    print(f"{len(questions)} questions in {args.questions}")
    print("  kinds:     " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print("  languages: " + ", ".join(f"{k} {n}" for k, n in sorted(languages.items())))
    if args.check_evidence is None:
        return 0
    documents = load_corpus(args.check_evidence)
    problems = check_evidence(questions, documents)
    parts = sum(len(q.parts()) for q in questions)
    print(
        f"evidence: {parts} evidence sentences and their gold dates checked against "
        f"{len(documents)} articles: {len(problems)} problem(s)"
    )
    for problem in problems:
        print(f"  PROBLEM {problem}")
    by_id = {d.doc_id: d for d in documents}
    for q in questions:
        if q.kind not in ("as_of", "latest", "in_year"):
            continue
        for doc_id in q.distractor_doc_ids:
            text = by_id[doc_id].text.casefold() if doc_id in by_id else ""
            named = [a for a in q.answers if a.casefold() in text]
            if named:
                print(f"  review: {q.qid}: distractor {doc_id} also names {', '.join(named)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
