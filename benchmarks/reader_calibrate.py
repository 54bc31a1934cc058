"""Reader answers on XQuAD: answerable questions and hard negatives, for calibrating refusals.

    python benchmarks/reader_calibrate.py ../shared/data/xquad/xquad.de.json --n 40 \
        --out reader.jsonl [--questions ../shared/data/xquad/xquad.en.json] [--index DIR]

Indexes the SQuAD file's paragraphs, each as its own document (source "ARTICLE#i"). For `--n`
questions spread over the articles it asks twice in reader mode with the refusal thresholds
off: over the whole index (answerable: the gold paragraph is there), and restricted to the
same article's *other* paragraphs (a hard negative: same names and topic, no answer). Each
line of `--out` records the phrase, whether it was grounded, the model's probability of NONE,
the evidence score, whether the gold answer is in the phrase and in the quoted sentence, and
the latency; the summary prints the refusal rates for a grid of thresholds.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Capture(logging.Handler):
    """Keeps the reader's debug record of the last question (phrase, p(NONE), grounded)."""

    last: dict = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("reader:"):
            _Capture.last = dict(record.args)  # type: ignore[arg-type]  # reader.Signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad", type=Path)
    parser.add_argument("--questions", type=Path, help="Parallel file to take questions from.")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--index", type=Path)
    parser.add_argument(
        "--skip",
        type=int,
        default=0,
        help="Take each paragraph's question this many places later (a held-out sample).",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A generation setting for the run, e.g. --set reader_passages=2 (repeatable).",
    )
    args = parser.parse_args()

    from rag.engine import Engine
    from rag.settings import load_settings
    from rag.types import Document, Filters

    logger = logging.getLogger("rag.answer.pipeline")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(_Capture())
    data = json.loads(args.squad.read_text(encoding="utf-8"))["data"]
    asked = data
    if args.questions:
        asked = json.loads(args.questions.read_text(encoding="utf-8"))["data"]
    wording = {qa["id"]: qa["question"] for a in asked for p in a["paragraphs"] for qa in p["qas"]}
    docs, items = [], []
    for a in data:
        sources = [f"{a['title']}#{i}" for i in range(len(a["paragraphs"]))]
        for i, p in enumerate(a["paragraphs"]):
            docs.append(
                Document(doc_id=sources[i], text=p["context"], source=sources[i], title=a["title"])
            )
    step = max(1, len(data) * 5 // args.n)
    for k in range(args.n):
        a = data[(k * len(data)) // args.n]
        sources = [f"{a['title']}#{i}" for i in range(len(a["paragraphs"]))]
        gi = k % len(a["paragraphs"])
        qas = a["paragraphs"][gi]["qas"]
        qa = qas[(k // len(data) + args.skip) % len(qas)]
        others = tuple(s for j, s in enumerate(sources) if j != gi)
        items.append(
            (
                qa["id"],
                wording.get(qa["id"], qa["question"]),
                [x["text"] for x in qa["answers"]],
                others,
            )
        )
    del step
    settings = load_settings(
        generation={
            "backend": "packaged",
            "reader_refusal": "calibrated",
            # every grounded phrase is shown (same or other language, of the asked form or not)
            "reader_answer_threshold": 0.0,
            "reader_answer_threshold_crosslingual": 0.0,
            "reader_form_threshold": 0.0,
            **dict(item.split("=", 1) for item in args.set),
        }
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        Engine.open(args.index or Path(tmp) / "idx", settings) as engine,
    ):
        engine.add_documents(docs)
        with args.out.open("w", encoding="utf-8") as out:
            for qid, question, golds, others in items:
                for kind, filters in (
                    ("answerable", None),
                    ("hard_negative", Filters(sources=others)),
                ):
                    _Capture.last = {}
                    started = time.perf_counter()
                    answer = engine.ask(question, filters, mode="reader")
                    seconds = time.perf_counter() - started
                    quote = answer.citations[0].quote if answer.citations else ""
                    quoted = engine.ask(question, filters, mode="quote")
                    row = {
                        "id": qid,
                        "kind": kind,
                        "question": question,
                        "golds": golds,
                        **_Capture.last,
                        "evidence": answer.evidence,
                        "answerable": answer.answerable,
                        "phrase_shown": answer.phrase.text if answer.phrase else None,
                        "gold_in_phrase": bool(answer.phrase)
                        and any(
                            _n(g) in _n(answer.phrase.text) or _n(answer.phrase.text) in _n(g)
                            for g in golds
                        ),
                        "gold_in_answer": any(_n(g) in _n(answer.text) for g in golds),
                        "gold_in_quote": any(_n(g) in _n(quote) for g in golds),
                        "seconds": round(seconds, 2),
                        "quote_answerable": quoted.answerable,
                        "quote_evidence": quoted.evidence,
                        "gold_in_quote_answer": quoted.answerable
                        and any(_n(g) in _n(quoted.text) for g in golds),
                    }
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    out.flush()
                    print(
                        kind[:4],
                        f"{seconds:5.1f}s",
                        row.get("p_none"),
                        row.get("grounded"),
                        repr(row.get("phrase")),
                        golds[0],
                        flush=True,
                    )
    summarize(args.out)


def _n(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def summarize(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    pos = [r for r in rows if r["kind"] == "answerable"]
    neg = [r for r in rows if r["kind"] == "hard_negative"]
    print(
        f"{len(pos)} answerable, {len(neg)} hard negatives; latency p50 "
        f"{statistics.median(r['seconds'] for r in rows):.1f} s"
    )
    for t_none in (0.02, 0.05, 0.1, 0.2, 0.3, 1.01):
        for t_ev in (0.0, 1.45, 1.6):

            def answers(r: dict) -> bool:
                return (
                    bool(r.get("grounded"))
                    and (r.get("p_none") is None or r["p_none"] < t_none)
                    and (r.get("evidence") or 0) >= t_ev
                )

            pa = [r for r in pos if answers(r)]
            gold = sum(r["gold_in_answer"] for r in pa) / max(1, len(pos))
            print(
                f"p(NONE) < {t_none:<4} evidence >= {t_ev:<4}: answerable refused "
                f"{1 - len(pa) / max(1, len(pos)):.2f}, gold in answer {gold:.2f}; "
                f"hard negatives refused {1 - sum(answers(r) for r in neg) / max(1, len(neg)):.2f}"
            )


if __name__ == "__main__":
    main()
