"""Timelines (`Engine.timeline`) on a real news archive: which articles they show, how fast.

    python benchmarks/timeline.py ../shared/data/wikinews-de/articles.jsonl --index /tmp/wn-tl \\
        [--articles 200] [--seed 14]

Indexes a sample of the JSONL articles (those naming the topics below, the rest random; built
once into `--index`, reused later), plus an agency-style copy (another `source`, one word
changed) of three articles of the first topic. Then, for each topic query and several score
floors: how many articles the timeline shows, how many of them name the topic's term (a proxy
for "on topic"), and how many of the sample's articles naming it are shown; how many copies were
collapsed; and the time per timeline (best and median of 3, warm).

The default floor (`FLOOR_MARGIN` above `generation.answerable_threshold`) was chosen on these
figures: the first five queries were looked at first, the other seven afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.answer.timeline import FLOOR_MARGIN  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.types import Document  # noqa: E402

# query -> the term an on-topic article names
QUERIES = {
    "Barack Obama": "Obama",
    "Angela Merkel": "Merkel",
    "Papst Benedikt": "Benedikt",
    "Erdbeben": "Erdbeben",
    "G8-Gipfel": "G8",
    "Afghanistan": "Afghanistan",
    "China": "China",
    "Flughafen": "Flughafen",
    "die Grünen": "Grünen",
    "Atomprogramm des Iran": "Iran",
    "Kirche": "Kirche",
    "Bundestag": "Bundestag",
}
SAMPLE_TOPICS = ("Merkel", "Obama", "Papst", "Erdbeben")
FLOORS = (1.60, 1.65, 1.70, 1.75)


def sample(path: Path, n: int, seed: int) -> list[Document]:
    articles = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    topical = [a for a in articles if any(t in a["text"] for t in SAMPLE_TOPICS)]
    rest = [a for a in articles if a not in topical]
    chosen = topical + random.Random(seed).sample(rest, max(0, n - len(topical)))
    docs = [
        Document(a["id"], a["text"], source="wikinews", title=a["title"], date=a["date"])
        for a in chosen
    ]
    copies = [a for a in topical if "Obama" in a["text"]][:3]
    docs += [
        Document(
            f"{a['id']}-copy",
            a["text"].replace(" und ", " sowie ", 1),
            source="copy-outlet",
            title=f"{a['title']} (copy)",
            date=a["date"],
        )
        for a in copies
    ]
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("articles", type=Path, help="JSONL: id, title, date, text per line")
    parser.add_argument("--index", type=Path, required=True, help="index directory (reused)")
    parser.add_argument("--articles", dest="n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()

    docs = sample(args.articles, args.n, args.seed)
    texts = {d.doc_id: d.text for d in docs}
    with Engine.open(args.index) as engine:
        started = time.perf_counter()
        report = engine.add_documents(docs)
        print(
            f"index: {report.documents} articles, {report.added} added "
            f"({time.perf_counter() - started:.0f} s)"
        )
        floor = engine.settings.generation.answerable_threshold + FLOOR_MARGIN
        engine.timeline("warm up")
        timelines, seconds = {}, []
        for query in QUERIES:
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                engine.timeline(query)
                runs.append(time.perf_counter() - t0)
            seconds += runs
            timelines[query] = engine.timeline(query, min_score=-100.0)
        print(
            f"time per timeline (k=100 passages): median {statistics.median(seconds):.2f} s, "
            f"max {max(seconds):.2f} s over {len(seconds)} runs; default floor {floor:.2f}"
        )
        for min_score in FLOORS:
            shown = on_topic = relevant = collapsed = 0
            for query, term in QUERIES.items():
                kept = [e for e in timelines[query].entries if e.score >= min_score]
                ids = [
                    i for e in kept for i in (e.citation.doc_id, *(d.doc_id for d in e.duplicates))
                ]
                collapsed += sum(len(e.duplicates) for e in kept)
                shown += len(ids)
                on_topic += sum(term in texts[i] for i in ids)
                relevant += sum(term in t for t in texts.values())
            print(
                f"floor {min_score:.2f}: {shown} articles shown, {on_topic} on topic "
                f"({on_topic / max(shown, 1):.0%}); {on_topic} of {relevant} on-topic articles "
                f"shown ({on_topic / max(relevant, 1):.0%}); {collapsed} copies collapsed"
            )


if __name__ == "__main__":
    main()
