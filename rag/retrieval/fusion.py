"""Reciprocal rank fusion of ranked candidate lists, and near-duplicate collapsing."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace


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
    """Fuse ranked lists by reciprocal rank: score = sum over lists of weight / (k + rank)."""
    fused: dict[int, dict[str, float]] = {}
    for name, hits in lists.items():
        weight = weights.get(name, 1.0)
        for rank, (row_id, score) in enumerate(hits, start=1):
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
    return ranked(out)


def single(name: str, ranked: Sequence[tuple[int, float]]) -> list[Candidate]:
    """One retriever's list as candidates (its own score kept as the score)."""
    return [
        Candidate(row_id=r, score=s, **{name: s, f"{name}_rank": i})  # type: ignore[arg-type]
        for i, (r, s) in enumerate(ranked, start=1)
    ]


_WORD = re.compile(r"\w+")


def shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def collapse(
    candidates: Sequence[Candidate], texts: Mapping[int, str], threshold: float
) -> list[Candidate]:
    """Merge each candidate into the best-ranked earlier one whose text it nearly repeats
    (word-trigram Jaccard >= threshold): the same wire story in several outlets is one hit."""
    kept: list[Candidate] = []
    kept_shingles: list[frozenset[tuple[str, ...]]] = []
    for cand in candidates:
        sh = shingles(texts.get(cand.row_id, ""))
        for i, other in enumerate(kept_shingles):
            if jaccard(sh, other) >= threshold:
                kept[i] = replace(kept[i], duplicates=(*kept[i].duplicates, cand.row_id))
                break
        else:
            kept.append(cand)
            kept_shingles.append(sh)
    return kept
