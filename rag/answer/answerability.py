"""Whether a reading answers the question: one probability from all the reader's signals.

The reader (`rag.answer.reader`) ends with a phrase the model copied from the passages, or
NONE, and with signals about it (`reader.Signals`): the model's probability of NONE, the
probability of its phrase's tokens, whether it said NONE (its phrase then is the one it gives
with NONE barred), and how the sentence holding the phrase scored against the question
(evidence, cosine, share of the question's terms, its rank among all sentences). No one of
them separates "answers" from "is about" well (the model's P(NONE) alone refuses a fifth of
answerable questions at the threshold that refuses two thirds of hard negatives). A logistic
model over all of them, fitted on XQuAD questions asked over their own article (answerable)
and over the article's *other* paragraphs (hard negatives: same names and topic, no answer),
gives `p_answers`. The reader refuses below `generation.reader_answer_threshold`. A question
in another language than its passage (English over German news) has its own fit,
`CALIBRATION_CROSSLINGUAL`, and threshold, `generation.reader_answer_threshold_crosslingual`.

`CALIBRATION` holds the fitted model (`CALIBRATION_CROSSLINGUAL` the cross-lingual one);
`benchmarks/reader_fit.py` refits it from the rows of `benchmarks/reader_calibrate.py` and prints
the figures behind the numbers here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.answer.reader import Signals

FEATURES = (
    "said_none",
    "p_none",
    "log_p_phrase",
    "evidence",
    "below_best",
    "coverage",
    "cosine",
    "rank",
    "phrase_words",
    "repeats_question",
)


@dataclass(frozen=True)
class Calibration:
    """A logistic model over `FEATURES`: standardised by `means` and `scales`, then
    `weights` and `bias`."""

    means: tuple[float, ...]
    scales: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    fitted_on: str = ""


def features(signals: Signals) -> tuple[float, ...] | None:
    """The feature vector of a reading; None when the model gave no probabilities (an HTTP
    endpoint) or no grounded phrase (nothing to answer with)."""
    if signals.p_none is None or signals.p_phrase is None or not signals.grounded:
        return None
    return (
        float(signals.said_none),
        signals.p_none,
        math.log(max(signals.p_phrase, 1e-6)),
        signals.evidence,
        signals.best - signals.evidence,
        signals.coverage,
        signals.cosine,
        float(min(signals.rank, 10)),
        math.log(1 + signals.phrase_words),
        float(signals.repeats_question),
    )


def p_answers(
    signals: Signals, calibration: Calibration | None = None, *, crosslingual: bool = False
) -> float | None:
    """The fitted probability that the passages answer and the phrase is the answer (by
    `calibration`, else the fit for the question's and the passage's languages being the same
    or, `crosslingual`, different); None when `features` has none (the caller then falls back
    to its thresholds)."""
    x = features(signals)
    if x is None:
        return None
    c = calibration or (CALIBRATION_CROSSLINGUAL if crosslingual else CALIBRATION)
    z = c.bias + sum(
        w * (v - m) / s for w, v, m, s in zip(c.weights, x, c.means, c.scales, strict=True)
    )
    return 1.0 / (1.0 + math.exp(-z))


# Fitted by benchmarks/reader_fit.py on 120 German XQuAD questions (benchmarks/
# reader_calibrate.py --n 120), each asked over the 240 paragraphs and over its article's other
# paragraphs. Cross-validated, at reader_answer_threshold 0.3: answerable refused 0.092, hard
# negatives refused 0.792 (the former rule, P(NONE) < 0.2: 0.18 and 0.69).
CALIBRATION = Calibration(
    means=(0.3417, 0.2290, -3.7291, 1.7539, 0.0283, 0.2831, 0.8462, 1.5167, 1.0009, 0.0250),
    scales=(0.4743, 0.2298, 4.1467, 0.1253, 0.0526, 0.2560, 0.0483, 2.4324, 0.4443, 0.1561),
    weights=(0.1343, -0.8391, 0.3985, 1.1867, 1.2759, 0.7590, 0.9099, -0.0103, -0.0576, -0.1977),
    bias=0.0407,
    fitted_on="xquad.de.json, 120 questions: 120 answerable, 120 hard negatives",
)

# Fitted the same way on 120 English XQuAD questions asked over the German paragraphs
# (`reader_calibrate.py --questions xquad.en.json --n 120 --skip 2`), each over the whole index
# and over its article's other paragraphs. An English question shares few terms with a German
# sentence, and the model, held to copying German words, says NONE more often: the same-language
# fit refused most of them, and the thresholds before it refused 0.23 of the answerable (gold
# in answer 0.52, hard negatives refused 0.76). Cross-validated, at
# reader_answer_threshold_crosslingual 0.45: answerable refused 0.133, gold in answer 0.592,
# hard negatives refused 0.792.
CALIBRATION_CROSSLINGUAL = Calibration(
    means=(0.4728, 0.2772, -5.5771, 1.6290, 0.0165, 0.1426, 0.7981, 1.2385, 0.9974, 0.0460),
    scales=(0.4993, 0.2547, 5.1479, 0.0932, 0.0287, 0.1893, 0.0381, 2.2421, 0.4609, 0.2095),
    weights=(-0.6708, -0.5072, 0.1835, 1.0651, 0.9859, -0.0500, 0.7082, -0.1581, 0.1972, -0.1514),
    bias=-0.1122,
    fitted_on="xquad.en.json questions over xquad.de.json paragraphs, 120 questions: "
    "120 answerable, 120 hard negatives",
)
