"""Reciprocal rank fusion of ranked candidate lists, and near-duplicate collapsing (by the
passages' MinHash signatures, `index.signatures`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from index import signatures


@dataclass(frozen=True)
class Candidate:
    """A passage on its way through retrieval: its row id and the evidence gathered so far."""

    row_id: int
    score: float
    dense: float | None = None  # cosine to the query
    keyword: float | None = None  # BM25
    dense_rank: int | None = None
    keyword_rank: int | None = None
    rerank: float | None = None
    duplicates: tuple[int, ...] = field(default=())


def ranked(candidates: list[Candidate]) -> list[Candidate]:
    """Best score first; ties broken by row id so results are deterministic."""
    return sorted(candidates, key=lambda c: (-c.score, c.row_id))


def rrf(
    lists: Mapping[str, Sequence[tuple[int, float]]],
    weights: Mapping[str, float],
    k: int = 60,
) -> list[Candidate]:
    """Fuse ranked lists by reciprocal rank: score = sum over lists of weight / (k + rank).
    Hits with equal scores share the best of their ranks: a tie is not a preference, and
    which of them an engine lists first (storage order) differs between index backends."""
    fused: dict[int, dict[str, float]] = {}
    for name, hits in lists.items():
        weight = weights.get(name, 1.0)
        for rank, (row_id, score) in zip(shared_ranks([s for _, s in hits]), hits):
            entry = fused.setdefault(row_id, {"rrf": 0.0})
            entry["rrf"] += weight / (k + rank)
            entry[name] = score
            entry[f"{name}_rank"] = rank
    out = [
        Candidate(
            row_id=row_id,
            score=e["rrf"],
            dense=e.get("dense"),
            keyword=e.get("keyword"),
            dense_rank=int(e["dense_rank"]) if "dense_rank" in e else None,
            keyword_rank=int(e["keyword_rank"]) if "keyword_rank" in e else None,
        )
        for row_id, e in fused.items()
    ]
    # Equal fused scores are common (dense rank 1 + keyword rank 2 = dense 2 + keyword 1): the
    # passage closer in meaning goes first, then the better keyword score; the row id (which
    # differs between index backends) only after those.
    return sorted(out, key=lambda c: (-c.score, -_or_low(c.dense), -_or_low(c.keyword), c.row_id))


def _or_low(score: float | None) -> float:
    return float("-inf") if score is None else score


def shared_ranks(scores: Sequence[float]) -> list[int]:
    """1-based ranks of scores listed best first, equal scores sharing the first of theirs:
    [9, 7, 7, 5] -> [1, 2, 2, 4]."""
    out: list[int] = []
    for i, score in enumerate(scores, start=1):
        out.append(out[-1] if out and score == scores[i - 2] else i)
    return out


def single(name: str, ranked: Sequence[tuple[int, float]]) -> list[Candidate]:
    """One retriever's list as candidates (its own score kept as the score)."""
    return [
        Candidate(row_id=r, score=s, **{name: s, f"{name}_rank": i})  # type: ignore[arg-type]
        for i, (r, s) in enumerate(ranked, start=1)
    ]


_WORD = re.compile(r"\w+")
_MARGIN = 0.2
"""Signature estimates within this of the threshold are checked on the texts: the estimate's
standard error is at most 0.045 (128 slots), so beyond 4.5 of them the decision is the exact
one but for odds below 1 in 100,000 per pair."""


def shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


class _Overlap:
    """Word-trigram overlap of candidates' texts: estimated from the MinHash signatures stored
    at ingest, exact from the texts near the threshold and for passages without a signature
    (written before signatures existed)."""

    def __init__(
        self, texts: Mapping[int, str], stored: Mapping[int, bytes | None], threshold: float
    ) -> None:
        self._texts, self._stored, self._threshold = texts, stored, threshold
        self._shingles: dict[int, frozenset[tuple[str, ...]]] = {}

    def signature(self, row_id: int) -> np.ndarray | None:
        sig = self._stored.get(row_id)
        if sig is None or len(sig) != signatures.SIGNATURE_BYTES:
            return None
        return signatures.as_array(sig)

    def exact(self, a: int, b: int) -> bool:
        return jaccard(self._shingles_of(a), self._shingles_of(b)) >= self._threshold

    def _shingles_of(self, row_id: int) -> frozenset[tuple[str, ...]]:
        if row_id not in self._shingles:
            self._shingles[row_id] = shingles(self._texts.get(row_id, ""))
        return self._shingles[row_id]


def collapse(
    candidates: Sequence[Candidate],
    texts: Mapping[int, str],
    threshold: float,
    stored_signatures: Mapping[int, bytes | None] | None = None,
) -> list[Candidate]:
    """Merge each candidate into the best-ranked earlier one whose text it nearly repeats
    (word-trigram Jaccard >= threshold): the same wire story in several outlets is one hit.

    With `stored_signatures` (row id -> the MinHash signature stored at ingest) pairs are
    compared by their signatures, and by their texts only where an estimate is too close to
    the threshold to decide or a passage has none, so the result is the exact overlap's.
    """
    overlap = _Overlap(texts, stored_signatures or {}, threshold)
    sigs = [overlap.signature(c.row_id) for c in candidates]
    signed = np.array([sig is not None for sig in sigs], dtype=bool)
    # Every pair's estimate at once (n x n x 128 comparisons: microseconds for a search's few
    # dozen candidates); a pair without both signatures is decided by the texts.
    estimate = np.zeros((len(candidates), len(candidates)))
    if signed.any():
        matrix = np.stack([sig for sig in sigs if sig is not None])
        where = np.flatnonzero(signed)
        estimate[np.ix_(where, where)] = (matrix[:, None, :] == matrix[None, :, :]).mean(axis=2)
    both = signed[:, None] & signed[None, :]
    look = (~both | (estimate >= threshold - _MARGIN)).tolist()
    sure = (both & (estimate >= threshold + _MARGIN)).tolist()
    kept: list[int] = []  # positions in `candidates`
    out: list[Candidate] = []
    for i, cand in enumerate(candidates):
        for slot, j in enumerate(kept):
            if look[i][j] and (sure[i][j] or overlap.exact(cand.row_id, candidates[j].row_id)):
                out[slot] = replace(out[slot], duplicates=(*out[slot].duplicates, cand.row_id))
                break
        else:
            kept.append(i)
            out.append(cand)
    return out
