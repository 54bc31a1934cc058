"""Fit the reader's answerability model (`rag.answer.answerability`) on calibration rows.

    python benchmarks/reader_calibrate.py ../shared/data/xquad/xquad.de.json --n 120 --out de.jsonl
    python benchmarks/reader_fit.py de.jsonl [more.jsonl ...] [--target 0.05]

Each row of `reader_calibrate.py` is one reading with its signals (`reader.Signals`), for an
answerable question (its paragraph is in the index) or a hard negative (the same question over
the article's other paragraphs). Label: answerable or not. A reading without a grounded phrase
or without the model's probabilities is always refused. The script prints, from 5-fold
cross-validation grouped by question (each question's two readings in the same fold), the
refusal rates over a grid of thresholds on the fitted probability, the threshold that refuses
at most `--target` of the answerable questions, and the `Calibration` fitted on all rows, to
paste into `rag/answer/answerability.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.answer.answerability import FEATURES, features  # noqa: E402
from rag.answer.reader import Signals  # noqa: E402

_FIELDS = tuple(Signals.__dataclass_fields__)


def load(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row.setdefault("said_none", False)
            rows.append(row)
    return rows


def signals_of(row: dict) -> Signals:
    return Signals(**{name: row.get(name) for name in _FIELDS})


def fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales[scales == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=1000).fit((x - means) / scales, y)
    return means, scales, model.coef_[0], float(model.intercept_[0])


def predict(x: np.ndarray, means, scales, weights, bias) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(((x - means) / scales) @ weights + bias)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=Path, nargs="+")
    parser.add_argument("--target", type=float, default=0.05, help="answerable refused, at most")
    parser.add_argument("--c", type=float, default=1.0, help="inverse L2 strength")
    args = parser.parse_args()

    rows = load(args.rows)
    vectors = [features(signals_of(r)) for r in rows]
    usable = [i for i, v in enumerate(vectors) if v is not None]
    x = np.array([vectors[i] for i in usable], dtype=np.float64)
    y = np.array([rows[i]["kind"] == "answerable" for i in usable], dtype=np.int64)
    ids = sorted({r["id"] for r in rows})
    fold_of = {qid: k % 5 for k, qid in enumerate(ids)}
    folds = np.array([fold_of[rows[i]["id"]] for i in usable])
    held_out = np.zeros(len(usable))
    for k in range(5):
        train, test = folds != k, folds == k
        held_out[test] = predict(x[test], *fit(x[train], y[train], args.c))
    p = np.full(len(rows), -1.0)  # never answered: no grounded phrase or no probabilities
    p[usable] = held_out

    pos = [i for i, r in enumerate(rows) if r["kind"] == "answerable"]
    neg = [i for i, r in enumerate(rows) if r["kind"] == "hard_negative"]
    print(f"{len(pos)} answerable, {len(neg)} hard negatives ({len(usable)} with a phrase)")
    print("threshold  answerable refused  gold in answer  hard negatives refused   (5-fold CV)")
    chosen = None
    for t in np.round(np.arange(0.05, 0.96, 0.05), 2):
        refused = np.mean([p[i] < t for i in pos])
        gold = np.mean([p[i] >= t and _gold(rows[i]) for i in pos])
        neg_refused = np.mean([p[i] < t for i in neg])
        print(f"{t:9.2f}  {refused:18.3f}  {gold:14.3f}  {neg_refused:22.3f}")
        if refused <= args.target:
            chosen = (t, refused, gold, neg_refused)
    if chosen:
        t, refused, gold, neg_refused = chosen
        print(
            f"\nthreshold {t:.2f}: answerable refused {refused:.3f}, gold in answer {gold:.3f}, "
            f"hard negatives refused {neg_refused:.3f} (cross-validated)"
        )
    means, scales, weights, bias = fit(x, y, args.c)
    print("\nfitted on all rows:")
    for name, w in zip(FEATURES, weights, strict=True):
        print(f"  {name:18s} {w:+.3f}")
    print(
        "\nCALIBRATION = Calibration(\n"
        f"    means={_tuple(means)},\n    scales={_tuple(scales)},\n"
        f"    weights={_tuple(weights)},\n    bias={bias:.4f},\n"
        f'    fitted_on="{", ".join(p.name for p in args.rows)}: {len(pos)} answerable, '
        f'{len(neg)} hard negatives",\n)'
    )


def _gold(row: dict) -> bool:
    """Whether the answer held the gold string. Rows whose reply was NONE were refused in the
    run (before `reader_refusal = "calibrated"`), so for them the phrase given with NONE
    barred stands in for the answer (a lower bound: its sentence is not known)."""
    if row.get("said_none") and not row.get("phrase_shown"):
        phrase = _n(row.get("phrase") or "")
        return bool(phrase) and any(_n(g) in phrase for g in row["golds"])
    return bool(row.get("gold_in_answer"))


def _n(text: str) -> str:
    return " ".join(text.split()).casefold()


def _tuple(values) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"


if __name__ == "__main__":
    main()
