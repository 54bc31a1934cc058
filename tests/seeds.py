"""The five seed articles and the questions about them (benchmarks/seed_questions.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED_QUESTIONS: list[dict] = [
    json.loads(line)
    for line in (ROOT / "benchmarks" / "seed_questions.jsonl").read_text("utf-8").splitlines()
    if line.strip()
]
