"""Quote-exact answers: the sentences of the retrieved passages that answer the question, verbatim.

Every sentence of the top passages is scored with the evidence already in the index: the
question's cosine to the sentence (sentence vectors are stored at ingest), the share of the
question's terms the sentence contains (the keyword analyzer, so inflections, umlaut spellings
and compound parts count), and the passage's own retrieval rank. The best one to three
sentences become the answer; their score is the evidence that decides whether the sources
answer the question at all (threshold calibrated on XQuAD, see `rag eval-answers`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from index import PassageEvidence
from rag.retrieval.analysis import Analyzer
from rag.types import Hit

_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class QuoteWeights:
    """How sentence evidence is combined (tuned on XQuAD de, see the README)."""

    keyword: float = 0.2
    """Weight of the share of question terms found in the sentence."""
    passage: float = 1.0
    """Weight of the passage's cosine to the question (context of the sentence)."""
    rank_decay: float = 0.0
    """Penalty per retrieval rank of the passage (trust the retriever's order a little)."""
    second_margin: float = 0.04
    """A further sentence joins the answer when it scores within this margin of the best."""
    restatement: float = 0.15
    """Penalty for a sentence that only restates the question (a headline that repeats it):
    fewer than `min_novelty` of its terms are new."""
    min_novelty: float = 0.25
    same_words: float = 0.6
    """Two sentences sharing this share of their words (Jaccard) say the same: quote one."""
    same_meaning: float = 0.94
    """... or whose vectors are this close (paraphrases in one article score ~0.96, related
    but different statements ~0.88)."""


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate answer sentence: a span of one hit's document."""

    hit: int
    """Index into the hits list."""
    start: int
    end: int
    text: str
    score: float
    cosine: float
    coverage: float
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)


def score_sentences(
    question: str,
    query_vector: np.ndarray,
    hits: Sequence[Hit],
    evidence: Mapping[int, PassageEvidence],
    analyzer: Analyzer,
    weights: QuoteWeights,
) -> list[ScoredSentence]:
    """Every sentence of the hits with its score, best first (ties: earlier hit, earlier span)."""
    q_terms = set(analyzer.query_terms(question))
    seen: set[tuple[str, int, int]] = set()
    out: list[ScoredSentence] = []
    for i, hit in enumerate(hits):
        ev = evidence.get(hit.row_id)
        if ev is None:
            continue
        passage_cos = float(ev.vector @ query_vector)
        spans = ev.sentence_spans or ((hit.start, hit.end),)
        vectors: Sequence[np.ndarray | None]
        if ev.sentence_vectors is not None and len(ev.sentence_vectors) == len(spans):
            cosines = ev.sentence_vectors @ query_vector
            vectors = list(ev.sentence_vectors)
        else:
            cosines = np.full(len(spans), passage_cos, dtype=np.float32)
            vectors = [None] * len(spans)
        for (start, end), cos, vec in zip(spans, cosines, vectors):
            key = (hit.doc_id, start, end)
            if key in seen:  # the overlap sentence of two neighbouring passages
                continue
            seen.add(key)
            text = hit.text[start - hit.start : end - hit.start]
            if not text.strip():
                continue
            s_terms = set(analyzer.document_terms(text, hit.language))
            shown = start + heading_end(text)  # scored whole, quoted without its heading
            coverage = len(q_terms & s_terms) / len(q_terms) if q_terms else 0.0
            novelty = len(s_terms - q_terms) / len(s_terms) if s_terms else 0.0
            score = (
                float(cos)
                + weights.keyword * coverage
                + weights.passage * passage_cos
                - weights.rank_decay * i
                - (weights.restatement if novelty < weights.min_novelty else 0.0)
            )
            text = text[shown - start :]
            out.append(ScoredSentence(i, shown, end, text, score, float(cos), coverage, vec))
    out.sort(key=lambda s: (-s.score, s.hit, s.start))
    return out


# A line that ends without a sentence's end or a lead-in (no . ! ? : ; , or closing quote):
# a subheading or a byline the sentence splitter joined to the sentence after it.
_HEADING_LINE = re.compile(r"[^\n]*[\w)\]]\s*\n\s*")
_MAX_HEADING_WORDS = 15


def heading_end(text: str) -> int:
    """Where a sentence starts after the subheadings and bylines joined to its front ("Nato:
    Waffenlieferungen und Verhandlungen\nAuf dem Nato-Treffen ..."); 0 when there are none.
    A sentence keeps at least three words."""
    at = 0
    while m := _HEADING_LINE.match(text, at):
        line = text[at : m.end()]
        if len(_WORDS.findall(line)) > _MAX_HEADING_WORDS:
            break
        if len(_WORDS.findall(text[m.end() :])) < 3:
            break
        at = m.end()
    return at


def select_sentences(
    scored: Sequence[ScoredSentence], weights: QuoteWeights, max_sentences: int
) -> list[ScoredSentence]:
    """The best sentence, plus those within `second_margin` of it (at most `max_sentences`).

    The best sentence's passage comes first (its sentences in reading order), then the others
    by passage, so the first citation is always the strongest evidence.
    """
    if not scored:
        return []
    best = scored[0]
    chosen: list[ScoredSentence] = []
    for s in scored:
        if len(chosen) == max_sentences or best.score - s.score > weights.second_margin:
            break
        # The same statement twice (a teaser repeating the body, a wire story in two outlets)
        # adds nothing: keep the better-scored one.
        if any(_same_statement(s, c, weights) for c in chosen):
            continue
        chosen.append(s)
    return sorted(chosen, key=lambda s: (s.hit != best.hit, s.hit, s.start))


def _same_statement(a: ScoredSentence, b: ScoredSentence, weights: QuoteWeights) -> bool:
    if a.vector is not None and b.vector is not None:
        if float(a.vector @ b.vector) >= weights.same_meaning:
            return True
    wa = frozenset(_WORDS.findall(a.text.casefold()))
    wb = frozenset(_WORDS.findall(b.text.casefold()))
    return len(wa & wb) / max(1, len(wa | wb)) >= weights.same_words
