"""Dates inferred from text (`rag.ingest.dates.infer_date`) on articles whose dates are hidden.

    python benchmarks/dates.py ../shared/data/wikinews-de/articles.jsonl [--seeds seeds/] \\
        [--language de] [--min-confidence 0.7]

Each JSONL line is an article with `date` (YYYY-MM-DD), `text`, and optionally `title` and
`split`. The date is hidden; the date inferred from `text` and `title` is compared with it. Per
split (the rules and their confidences were tuned on `train` only; `dev` and `test` are held
out) and per rule: how many articles got a date (coverage), and of those the share with the
right month, and, for the dates given to the day, the right day. Then the articles without any
date evidence (no year 1900-2099 and no day of a month in title or text): how many, and how
many still got a date (should be none). With `--seeds`, each seed's inferred date beside the
expected one: the ` date YYYY-MM` header for those that have one (stripped before inferring),
the known month for the others.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.ingest.dates import (  # noqa: E402
    DEFAULT_MIN_CONFIDENCE,
    RULE_CONFIDENCE,
    InferredDate,
    find_date_mentions,
    has_date_evidence,
    infer_date,
)
from rag.ingest.metadata import normalise_date, split_date_header  # noqa: E402

# Seeds without a date header, and the month they were published in (read from their sources).
SEED_MONTHS = {"003": "2022-01", "004": "2024-12"}


@dataclass(frozen=True)
class Outcome:
    split: str
    truth: str
    found: InferredDate | None  # at any confidence
    evidence: bool  # names a year or a day of a month at all
    month_named: bool  # names a month with its year
    right_month_named: bool  # names the publication month with its year, somewhere
    min_confidence: float

    @property
    def inferred(self) -> InferredDate | None:
        """What `infer_date` returns at the threshold."""
        if self.found is None or self.found.confidence < self.min_confidence:
            return None
        return self.found

    @property
    def month_right(self) -> bool:
        return self.found is not None and self.found.date[:7] == self.truth[:7]

    @property
    def day_right(self) -> bool:
        return self.found is not None and self.found.date == self.truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("articles", type=Path, help="JSONL: date, text, title, split")
    parser.add_argument("--seeds", type=Path, help="a folder of seed .txt files")
    parser.add_argument("--language", help="language passed to infer_date (default: none)")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    parser.add_argument("--show-wrong", action="store_true", help="print each wrong month")
    args = parser.parse_args()

    outcomes, skipped, seconds = run(args.articles, args.language, args.min_confidence)
    if not outcomes:
        parser.error(f"{args.articles}: no article with a usable date")
    print(
        f"{len(outcomes)} articles from {args.articles} ({skipped} without a usable date "
        f"skipped), inferred in {seconds:.2f} s, min confidence {args.min_confidence}"
    )
    report_splits(outcomes)
    report_rules(outcomes)
    report_no_evidence(outcomes)
    if args.show_wrong:
        report_wrong(args.articles, args.language, args.min_confidence)
    if args.seeds:
        report_seeds(args.seeds, args.language, args.min_confidence)


def run(
    path: Path, language: str | None, min_confidence: float
) -> tuple[list[Outcome], int, float]:
    outcomes: list[Outcome] = []
    skipped = 0
    seconds = 0.0
    for row in read_rows(path):
        truth = normalise_date(row.get("date"))
        if truth is None or truth < "1900":  # Wikinews has one 0001-01-01
            skipped += 1
            continue
        text, title = row["text"], row.get("title") or None
        started = time.perf_counter()
        found = infer_date(text, language, title=title, min_confidence=0.0)
        seconds += time.perf_counter() - started
        mentions = find_date_mentions(text) + find_date_mentions(title or "")
        outcomes.append(
            Outcome(
                split=row.get("split") or "all",
                truth=truth,
                found=found,
                evidence=has_date_evidence(text) or has_date_evidence(title or ""),
                month_named=any(m.month and m.year for m in mentions),
                right_month_named=any(
                    m.month and m.year and f"{m.year}-{m.month:02d}" == truth[:7] for m in mentions
                ),
                min_confidence=min_confidence,
            )
        )
    return outcomes, skipped, seconds


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def report_splits(outcomes: list[Outcome]) -> None:
    groups = by_split(outcomes)
    print()
    print(
        f"{'split':<10}{'articles':>9}{'dated':>7}{'coverage':>10}{'month ok':>10}"
        f"{'precision':>11}{'to the day':>12}{'day ok':>8}"
    )
    for split, group in groups.items():
        dated = [o for o in group if o.inferred is not None]
        to_day = [o for o in dated if len(o.inferred.date) == 10]  # type: ignore[union-attr]
        months = sum(o.month_right for o in dated)
        print(
            f"{split:<10}{len(group):>9}{len(dated):>7}{share(len(dated), len(group)):>10}"
            f"{months:>10}{share(months, len(dated)):>11}{len(to_day):>12}"
            f"{share(sum(o.day_right for o in to_day), len(to_day)):>8}"
        )


def report_rules(outcomes: list[Outcome]) -> None:
    print()
    print("per rule, at any confidence (the first rule that fires wins):")
    print("fired, month right (precision)")
    groups = by_split(outcomes)
    print(
        f"{'rule':<16}{'confidence':>11}"
        + "".join(f"{s:>18}" for s in groups)
        + f"{'(right+1)/(fired+2) on train':>30}"
    )
    for rule, confidence in RULE_CONFIDENCE.items():
        cells = []
        smoothed = "-"
        for split, group in groups.items():
            fired = [o for o in group if o.found is not None and o.found.rule == rule]
            right = sum(o.month_right for o in fired)
            cells.append(f"{len(fired):>5} {right:>4} ({share(right, len(fired)):>5})")
            if split == "train":
                smoothed = f"{(right + 1) / (len(fired) + 2):.2f}"
        below = " (below threshold)" if confidence < outcomes[0].min_confidence else ""
        print(
            f"{rule:<16}{confidence:>11.2f}"
            + "".join(f"{c:>18}" for c in cells)
            + f"{smoothed:>30}{below}"
        )


def report_no_evidence(outcomes: list[Outcome]) -> None:
    without = [o for o in outcomes if not o.evidence]
    dated = [o for o in without if o.inferred is not None]
    print()
    print(
        f"no date evidence (no year 1900-2099, no day of a month in title or text): "
        f"{len(without)} of {len(outcomes)} articles ({share(len(without), len(outcomes))}); "
        f"a date was inferred for {len(dated)} of them ({share(len(dated), len(without))})"
    )
    with_evidence = [o for o in outcomes if o.evidence]
    dated_with = [o for o in with_evidence if o.inferred is not None]
    print(
        f"with some evidence: {len(with_evidence)} articles, {len(dated_with)} dated "
        f"({share(len(dated_with), len(with_evidence))})"
    )
    named = [o for o in outcomes if o.month_named]
    dated_named = [o for o in named if o.inferred is not None]
    right = sum(o.right_month_named for o in named)
    print(
        f"naming a month with its year: {len(named)} articles, {len(dated_named)} dated "
        f"({share(len(dated_named), len(named))}); {right} of them "
        f"({share(right, len(named))}) name the publication month somewhere"
    )


def report_wrong(path: Path, language: str | None, min_confidence: float) -> None:
    print()
    print("wrong months:")
    for row in read_rows(path):
        truth = normalise_date(row.get("date")) or ""
        if truth < "1900":
            continue
        inferred = infer_date(
            row["text"], language, title=row.get("title"), min_confidence=min_confidence
        )
        if inferred is None or inferred.date[:7] == truth[:7]:
            continue
        source = row["text"] if inferred.field == "text" else row.get("title") or ""
        context = source[max(0, inferred.start - 80) : inferred.end + 40].replace("\n", " ")
        print(
            f"  {row.get('split', ''):<6}{truth}  {inferred.date:<11}{inferred.rule:<15}…{context}…"
        )


def report_seeds(folder: Path, language: str | None, min_confidence: float) -> None:
    print()
    print(f"seeds in {folder}:")
    for path in sorted(folder.glob("*.txt")):
        header, body = split_date_header(path.read_text(encoding="utf-8"))
        expected = header or SEED_MONTHS.get(path.name[:3], "?")
        inferred = infer_date(body, language, min_confidence=min_confidence)
        if inferred is None:
            found = "undated"
        else:
            verdict = "right" if inferred.date[:7] == expected[:7] else "WRONG"
            how = f"{inferred.rule}, {inferred.confidence:.2f}: {inferred.evidence!r}"
            found = f"{inferred.date} {verdict} ({how})"
        print(f"  {path.name:<28} expected {expected:<9} inferred {found}")


def by_split(outcomes: list[Outcome]) -> dict[str, list[Outcome]]:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.split].append(outcome)
    ordered = {split: groups[split] for split in ("train", "dev", "test") if split in groups}
    ordered.update({split: group for split, group in groups.items() if split not in ordered})
    held_out = [o for o in outcomes if o.split in ("dev", "test")]
    if held_out and len(ordered) > 1:
        ordered["dev+test"] = held_out
    if len(ordered) > 1:
        ordered["all"] = outcomes
    return ordered


def share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


if __name__ == "__main__":
    main()
