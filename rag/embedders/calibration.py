"""Static int8 for the OpenVINO embedder: the calibration texts and the NNCF recipe.

The model's float IR is quantized once (weights and activations to int8, with SmoothQuant and
fast bias correction) on texts shaped like what the embedder sees: passages of news articles,
single sentences (the sentence vectors of ingest), and short questions in German and English.
The texts ship with the package (`calibration_texts.json`): German Wikinews articles (CC BY 2.5,
attributed in the file) and questions written for this project. Calibration runs one text at a
time in a fixed order, so the same model, texts and recipe give the same int8 model.

Rebuild the text file (a maintainer's step; the selection rule is in `select_texts`):

    python -m rag.embedders.calibration ../shared/data/wikinews-de/articles.jsonl
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rag.errors import ModelError

log = logging.getLogger(__name__)

TEXTS_FILE = Path(__file__).with_name("calibration_texts.json")

RECIPE: Mapping[str, Any] = {
    "version": 2,
    "tool": "nncf.quantize",
    "model_type": "transformer",  # NNCF's transformer patterns; preset "mixed" follows from it
    # The word-embedding table (250k x 384) is a lookup, not a product: int8 there saves no
    # time, and OpenVINO expands an int8 table to fp32 at load (+450 MB resident), where the
    # fp16 one stays mapped from disk.
    "ignored_types": ["Gather"],
    "smooth_quant_matmul_alpha": 0.95,
    "fast_bias_correction": True,
    "batch": 1,  # one text per calibration sample: no padding tokens in the statistics
}
"""What shapes the int8 model besides the texts; part of its cache key (change the version when
the code that applies it changes)."""

INSTALL_HINT = "pip install nncf"

Role = Literal["query", "passage"]


@dataclass(frozen=True)
class CalibrationText:
    role: Role
    text: str


def float_hint() -> str:
    """The way out of int8 that an error names: the float precision `auto` runs on this CPU
    (bf16 is slow where the CPU lacks native bf16)."""
    from rag.embedders.precision import float_precision

    return f"set embedding.precision = '{float_precision()}'"


def load_texts(path: Path = TEXTS_FILE) -> list[CalibrationText]:
    """The packaged calibration texts, in their fixed order."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [CalibrationText(t["role"], t["text"]) for t in data["texts"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"the int8 calibration texts {path} are missing or damaged ({exc}); reinstall "
            f"newsrag, or {float_hint()}"
        ) from exc


def recipe_key(path: Path = TEXTS_FILE) -> dict[str, Any]:
    """The recipe and a digest of the calibration texts: what an int8 model is cached under."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise ModelError(
            f"the int8 calibration texts {path} cannot be read ({exc}); reinstall newsrag, or "
            f"{float_hint()}"
        ) from exc
    return {**RECIPE, "texts": digest}


def nncf_available() -> bool:
    """Whether NNCF is installed (needed once, to produce the int8 model; not to run it)."""
    import importlib.util

    return importlib.util.find_spec("nncf") is not None


def nncf_version() -> str:
    """The installed NNCF's version ("" where it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nncf")
    except PackageNotFoundError:
        return ""


def calibration_inputs(
    texts: Sequence[CalibrationText],
    tokenizer: Any,
    prompts: Mapping[str, str],
    max_seq_length: int,
    input_names: Sequence[str],
) -> list[dict[str, Any]]:
    """One input dict per text, tokenized as the embedder does (its prompt, its token limit)."""
    import numpy as np

    samples = []
    for item in texts:
        batch = tokenizer(
            [prompts.get(item.role, "") + item.text],
            truncation=True,
            max_length=max_seq_length,
            return_tensors="np",
        )
        samples.append({name: batch[name].astype(np.int64) for name in input_names})
    return samples


def quantize(
    model: Any, samples: Sequence[Mapping[str, Any]], recipe: Mapping[str, Any] = RECIPE
) -> Any:
    """The float OpenVINO model `model`, quantized to int8 by NNCF on `samples` (`recipe`)."""
    # NNCF sends usage telemetry unless told otherwise (opt-out); this project works offline,
    # so turn it off the way NNCF documents for CI runs. Must be set before nncf is imported.
    os.environ.setdefault("NNCF_CI", "1")
    try:
        import nncf
        from nncf.common.logging import nncf_logger
        from nncf.quantization.advanced_parameters import (
            AdvancedQuantizationParameters,
            AdvancedSmoothQuantParameters,
        )
    except ImportError as exc:
        raise ModelError(
            f"embedding.precision 'int8' needs NNCF once, to quantize the model ({exc}); "
            f"{INSTALL_HINT}, or {float_hint()}"
        ) from exc

    # NNCF logs and draws progress bars on stdout, which carries the CLI's JSON: send its log
    # through ours and its bars to stderr.
    nncf_logger.handlers = []
    nncf_logger.propagate = True
    advanced = AdvancedQuantizationParameters(
        smooth_quant_alphas=AdvancedSmoothQuantParameters(
            matmul=float(recipe["smooth_quant_matmul_alpha"])
        )
    )
    ignored = nncf.IgnoredScope(
        types=list(recipe["ignored_types"]),
        patterns=list(recipe.get("ignored_patterns", ())),
    )
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        quantized = nncf.quantize(
            model,
            nncf.Dataset(list(samples)),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(samples),
            fast_bias_correction=bool(recipe["fast_bias_correction"]),
            ignored_scope=ignored,
            advanced_parameters=advanced,
        )
    log.info(
        "quantized the embedding model to int8 on %d texts in %.0f s",
        len(samples),
        time.perf_counter() - started,
    )
    return quantized


def agreement(
    float_model: Any, quantized: Any, samples: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """Cosine of the int8 model's vectors to the float model's on every `CHECK_EVERY`-th
    sample, both run in fp32: `min` and `mean` (the build refuses a model under `MIN_COSINE`)."""
    import numpy as np
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    reference = core.compile_model(float_model, "CPU", config)
    candidate = core.compile_model(quantized, "CPU", config)
    cosines = []
    for sample in samples[::CHECK_EVERY]:
        a, b = reference(dict(sample))[0][0], candidate(dict(sample))[0][0]
        cosines.append(float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)))
    return {"min": round(min(cosines), 4), "mean": round(sum(cosines) / len(cosines), 4)}


MIN_COSINE = 0.98
"""The lowest cosine to the float model an int8 model may have on the checked texts. Measured:
min 0.9988, mean 0.9992; a model calibrated on two one-word texts instead (ranges far off):
min 0.84, mean 0.88. It catches a broken quantization, not a slightly worse one: recall is
what the README measures."""
CHECK_EVERY = 4  # texts checked: every 4th calibration text (57 of 226; a few seconds)


# --------------------------------------------------------------------------- the text file
# Questions written for this project (MIT, like the code): German and English, the shapes of
# questions users ask a news archive. None is taken from an evaluation set.
QUESTIONS_DE = (
    "Wer hat die Wahl in Niedersachsen gewonnen?",
    "Wann wurde der neue Flughafen in Berlin eröffnet?",
    "Warum streiken die Lokführer?",
    "Wie viele Menschen kamen bei dem Erdbeben ums Leben?",
    "Was hat der Bundestag zum Mindestlohn beschlossen?",
    "Welche Länder nehmen an dem Gipfel in Brüssel teil?",
    "Wer ist der neue Trainer des Vereins?",
    "Wo fand das Treffen der Außenminister statt?",
    "Wie hoch ist die Inflation im Euroraum?",
    "Was fordert die Gewerkschaft von den Arbeitgebern?",
    "Seit wann gilt das Rauchverbot in Gaststätten?",
    "Wie reagierte Russland auf die Sanktionen?",
    "Welche Partei stellt den Bürgermeister?",
    "Was ist über die Ursache des Brandes bekannt?",
    "Wer erhielt den Friedensnobelpreis?",
    "Wie viel kostet der Umbau des Bahnhofs?",
    "Was sagte die Kanzlerin zur Flüchtlingspolitik?",
    "Wann soll das Kraftwerk abgeschaltet werden?",
    "Welche Folgen hat das Hochwasser für die Landwirte?",
    "Worüber verhandeln die Koalitionsparteien?",
)
QUESTIONS_EN = (
    "Who won the election in Lower Saxony?",
    "When did the new airport in Berlin open?",
    "Why are the train drivers on strike?",
    "How many people died in the earthquake?",
    "What did the parliament decide about the minimum wage?",
    "Which countries take part in the summit in Brussels?",
    "Who is the club's new coach?",
    "Where did the foreign ministers meet?",
    "How high is inflation in the euro area?",
    "What does the union demand from the employers?",
    "Since when has smoking been banned in restaurants?",
    "How did Russia respond to the sanctions?",
    "Which party holds the mayor's office?",
    "What is known about the cause of the fire?",
    "Who received the Nobel Peace Prize?",
    "How much does the rebuilding of the station cost?",
    "What did the chancellor say about refugee policy?",
    "When is the power plant to be shut down?",
    "What does the flood mean for farmers?",
    "What are the coalition parties negotiating about?",
)
_ARTICLES = 100  # passages: the opening of this many articles, spread over the corpus
_TITLES = 40  # headlines as short German queries
_PASSAGE_WORDS = (60, 140)  # a passage: whole paragraphs, at least / at most this many words


def select_texts(articles: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The calibration file's content from Wikinews articles (`id`, `title`, `date`, `text`):
    articles sorted by id and taken at even steps; from each, its first paragraphs up to
    about 140 words as a passage, and from every other one its longest sentence of at most 40
    words; headlines as queries; then the written questions."""
    from rag.chunking import split_sentences

    ordered = sorted(articles, key=lambda a: int(a["id"]))
    step = max(1, len(ordered) // _ARTICLES)
    chosen = [a for a in ordered[::step] if _opening(a["text"])][:_ARTICLES]
    texts: list[dict[str, str]] = []
    for i, article in enumerate(chosen):
        texts.append({"role": "passage", "text": _opening(article["text"]), "from": article["id"]})
        if i % 2 == 0:
            spans = split_sentences(article["text"], "de")
            sentences = [article["text"][s:e].strip() for s, e in spans]
            fitting = [s for s in sentences if 6 <= len(s.split()) <= 40]
            if fitting:
                sentence = max(fitting, key=len)
                texts.append({"role": "passage", "text": sentence, "from": article["id"]})
    for article in chosen[1 :: max(1, len(chosen) // _TITLES)][:_TITLES]:
        texts.append({"role": "query", "text": article["title"], "from": article["id"]})
    texts += [{"role": "query", "text": q, "from": "newsrag"} for q in QUESTIONS_DE + QUESTIONS_EN]
    sources = [
        {
            "id": a["id"],
            "title": a["title"],
            "date": a["date"],
            "url": "https://de.wikinews.org/wiki/" + a["title"].replace(" ", "_"),
        }
        for a in chosen
    ]
    return {
        "about": "Calibration texts for the int8 embedding model (rag/embedders/calibration.py). "
        "Passages, sentences and headlines are excerpts of German Wikinews articles (listed in "
        "`sources`; `from` names the article id), by Wikinews contributors, licensed under "
        "Creative Commons Attribution 2.5 (https://creativecommons.org/licenses/by/2.5/); "
        "excerpted unchanged except for joining paragraphs with one space. The questions "
        "(`from`: newsrag) were written for this project (MIT).",
        "license": "CC-BY-2.5 (Wikinews excerpts); MIT (questions)",
        "texts": texts,
        "sources": sources,
    }


def _opening(text: str) -> str:
    """An article's first paragraphs, whole, up to `_PASSAGE_WORDS[1]` words ("" if fewer than
    `_PASSAGE_WORDS[0]`)."""
    low, high = _PASSAGE_WORDS
    taken: list[str] = []
    words = 0
    for paragraph in (p.strip() for p in text.split("\n")):
        size = len(paragraph.split())
        if not size:
            continue
        if words + size > high:
            break
        taken.append(paragraph)
        words += size
    return " ".join(taken) if words >= low else ""


def _main(argv: Sequence[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m rag.embedders.calibration WIKINEWS_ARTICLES.jsonl")
    with open(argv[0], encoding="utf-8") as f:
        articles = [json.loads(line) for line in f if line.strip()]
    content = select_texts(articles)
    TEXTS_FILE.write_text(json.dumps(content, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(f"{TEXTS_FILE}: {len(content['texts'])} texts from {len(content['sources'])} articles")


if __name__ == "__main__":
    _main(sys.argv[1:])
