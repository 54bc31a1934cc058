"""The retrieval pipeline: dense and keyword candidates -> fusion -> rerank -> collapse -> top k.

Filters are applied inside each retriever (FAISS selector, SQL restriction), so a filtered
search still returns k hits whenever k exist.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from index import Index
from rag.retrieval.analysis import Analyzer
from rag.retrieval.fusion import Candidate, collapse, rrf, single

if TYPE_CHECKING:
    from rag.embedders import Embedder
    from rag.retrieval.rerank import Reranker
    from rag.settings import RetrievalSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Which stages a search runs (settings, possibly overridden per call)."""

    mode: str
    rerank: bool
    collapse: bool

    def stages(self) -> list[str]:
        names = {
            "dense": ["dense"],
            "keyword": ["keyword"],
            "hybrid": ["dense", "keyword", "fusion"],
        }
        out = list(names[self.mode])
        if self.rerank:
            out.append("rerank")
        if self.collapse:
            out.append("dedupe")
        return out


def ensure_keywords(index: Index, analyzer: Analyzer) -> None:
    """Make the index's keyword terms current: analyse stored passages written before keyword
    search existed or by another analyzer version (one transaction)."""
    if index.keyword_analyzer() == analyzer.id:
        return
    n = index.reanalyze_keywords(
        analyzer.id, lambda rows: [analyzer.document_terms(t, lang) for t, lang in rows]
    )
    if n:
        log.warning("analysed %d stored passages for keyword search (%s)", n, analyzer.id)


class Retriever:
    """Runs a `Plan` for a batch of queries against one index."""

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        analyzer: Analyzer,
        settings: RetrievalSettings,
        reranker: Reranker | None = None,
    ) -> None:
        self.index, self.embedder, self.analyzer = index, embedder, analyzer
        self.settings, self.reranker = settings, reranker

    def run(
        self,
        queries: Sequence[str],
        k: int,
        plan: Plan,
        allowed: np.ndarray | None = None,
        query_vectors: np.ndarray | None = None,
    ) -> list[list[Candidate]]:
        """Candidates for each query, best first. `query_vectors` (one row per query) saves
        embedding the queries again when the caller has them already."""
        depth = max(self.settings.candidates, k)
        # Collapsing can merge candidates: fetch extra so k distinct hits remain.
        want = k * 3 if plan.collapse else k
        dense: list[list[tuple[int, float]]] = [[] for _ in queries]
        keyword: list[list[tuple[int, float]]] = [[] for _ in queries]
        if query_vectors is None and (plan.mode in ("dense", "hybrid") or plan.rerank):
            query_vectors = self.embedder.embed_queries(list(queries))
        if plan.mode in ("dense", "hybrid"):
            dense = self.index.search(query_vectors, max(depth, want), allowed=allowed)
        if plan.mode in ("keyword", "hybrid"):
            terms = [self.analyzer.query_terms(q) for q in queries]
            keyword = self.index.keyword_search(terms, max(depth, want), allowed=allowed)
        results = []
        for i, query in enumerate(queries):
            if plan.mode == "hybrid":
                weights = {
                    "dense": self.settings.dense_weight,
                    "keyword": self.settings.keyword_weight,
                }
                cands = rrf(
                    {"dense": dense[i], "keyword": keyword[i]}, weights, self.settings.rrf_k
                )
            else:
                cands = single(plan.mode, dense[i] if plan.mode == "dense" else keyword[i])
            texts: dict[int, str] = {}
            if plan.rerank and self.reranker is not None and cands:
                assert query_vectors is not None
                head = cands[: max(self.settings.rerank_depth, want)]
                ids = [c.row_id for c in head]
                texts = self._texts(ids)
                evidence = self.index.evidence(ids)
                reranked = self.reranker.rerank(query, query_vectors[i], head, evidence, texts)
                cands = reranked + cands[len(head) :]
            if plan.collapse and cands:
                head = cands[:want]
                missing = [c.row_id for c in head if c.row_id not in texts]
                texts.update(self._texts(missing))
                cands = collapse(head, texts, self.settings.duplicate_overlap)
            results.append(cands[:k])
        return results

    def _texts(self, row_ids: list[int]) -> dict[int, str]:
        if not row_ids:
            return {}
        return {c.row_id: c.text for c in self.index.chunks(row_ids)}

