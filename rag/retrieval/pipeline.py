"""The retrieval pipeline: dense and keyword candidates -> fusion -> rerank -> dedupe -> `Hit`s.

Filters are applied inside each retriever (FAISS selector, SQL restriction), so a filtered
search still returns k hits whenever k exist. Each passage's stored row (text, metadata) and
evidence (vectors, sentences) is read from the index at most once per search, and the `Hit`s
carry what was read, so answering does not read it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from index import PassageEvidence, StoredChunk
from rag.errors import ConfigError, IndexUsageError
from rag.retrieval.analysis import Analyzer
from rag.retrieval.fusion import Candidate, collapse, rrf, single
from rag.types import DuplicateSource, Filters, Hit
from rag.vocabulary import RETRIEVAL_MODES, RetrievalMode

if TYPE_CHECKING:
    from index.backend import IndexBackend
    from rag.embedders import Embedder
    from rag.retrieval.rerank import Reranker
    from rag.settings import RetrievalSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Which stages a search runs (settings, possibly overridden per call)."""

    mode: RetrievalMode
    rerank: bool
    dedupe: bool

    def stages(self) -> list[str]:
        names = {
            "dense": ["dense"],
            "keyword": ["keyword"],
            "hybrid": ["dense", "keyword", "fusion"],
        }
        out = list(names[self.mode])
        if self.rerank:
            out.append("rerank")
        if self.dedupe:
            out.append("dedupe")
        return out


def ensure_keywords(index: IndexBackend, analyzer: Analyzer) -> None:
    """Make the index's keyword terms current: analyse stored passages written before keyword
    search existed or by another analyzer version (one transaction)."""
    if index.keyword_analyzer() == analyzer.id:
        return
    n = index.reanalyze_keywords(
        analyzer.id, lambda rows: [analyzer.document_terms(t, lang) for t, lang in rows]
    )
    if n:
        log.warning("analysed %d stored passages for keyword search (%s)", n, analyzer.id)


class _Reads:
    """What one search has read from the index: stored rows and evidence, by row id."""

    def __init__(self, index: IndexBackend) -> None:
        self.index = index
        self.rows: dict[int, StoredChunk] = {}
        self.light: dict[int, tuple[str, bytes | None]] = {}
        self.evidence: dict[int, PassageEvidence] = {}

    def chunks(self, row_ids: Sequence[int]) -> dict[int, StoredChunk]:
        missing = list(dict.fromkeys(r for r in row_ids if r not in self.rows))
        if missing:
            # chunks() skips rows another process removed since the search: match by row id.
            self.rows.update((c.row_id, c) for c in self.index.chunks(missing))
        return self.rows

    def passages(self, row_ids: Sequence[int]) -> dict[int, tuple[str, bytes | None]]:
        """(text, signature) of each passage: what rerank and dedupe read of many candidates
        (no document join: at 1M passages, cold, that halves the time of reading 30)."""
        missing = list(dict.fromkeys(r for r in row_ids if r not in self.light))
        if missing:
            self.light.update(self.index.passage_texts(missing))
        return self.light

    def texts(self, row_ids: Sequence[int]) -> dict[int, str]:
        read = self.passages(row_ids)
        return {r: read[r][0] for r in row_ids if r in read}

    def signatures(self, row_ids: Sequence[int]) -> dict[int, bytes | None]:
        read = self.passages(row_ids)
        return {r: read[r][1] for r in row_ids if r in read}

    def evidence_of(self, row_ids: Sequence[int]) -> dict[int, PassageEvidence]:
        missing = list(dict.fromkeys(r for r in row_ids if r not in self.evidence))
        if missing:
            self.evidence.update(self.index.evidence(missing))
        return self.evidence


class Retriever:
    """Runs searches against one index: plan, filters, candidates, rerank, dedupe, hits."""

    def __init__(
        self,
        index: IndexBackend,
        embedder: Embedder,
        analyzer: Analyzer,
        settings: RetrievalSettings,
        reranker: Reranker | None = None,
        lock: AbstractContextManager[object] | None = None,
    ) -> None:
        self.index, self.embedder, self.analyzer = index, embedder, analyzer
        self.settings = settings
        self._reranker = reranker
        self._lock = lock or nullcontext()
        """Held while the index is read (the Engine's: a write waits, an embedding does not)."""

    def plan(
        self,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
        dedupe: bool | None = None,
    ) -> Plan:
        """The stages a search runs: the settings, overridden by the arguments."""
        return make_plan(self.settings, mode, rerank, dedupe)

    def reranker(self) -> Reranker:
        if self._reranker is None:
            from rag.retrieval.rerank import create_reranker

            self._reranker = create_reranker(self.settings)
        return self._reranker

    def search(
        self,
        queries: Sequence[str],
        k: int,
        filters: Filters | None = None,
        plan: Plan | None = None,
        *,
        query_vectors: np.ndarray | None = None,
        with_evidence: bool = False,
    ) -> list[list[Hit]]:
        """The `k` best hits for each query. `query_vectors` (one row per query) saves
        embedding the queries again; `with_evidence` attaches each hit's stored evidence."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        if any(not q or not q.strip() for q in queries):
            raise ConfigError("the query is empty; pass a question or keywords")
        plan = plan or self.plan()
        if query_vectors is None and (plan.mode in ("dense", "hybrid") or plan.rerank):
            query_vectors = self.embedder.embed_queries(list(queries))
        with self._lock:
            allowed = self._allowed(filters)
            if allowed is not None and len(allowed) == 0:
                return [[] for _ in queries]
            candidates = self._candidates(queries, k, plan, allowed, query_vectors)
            out = []
            for i, query in enumerate(queries):
                reads = _Reads(self.index)
                vector = query_vectors[i] if query_vectors is not None else None
                found = self._rank(query, vector, candidates[i], k, plan, reads)
                out.append(self._hits(found, reads, with_evidence))
        return out

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or not filters.active():
            return None
        try:
            return self.index.chunk_row_ids(
                date_from=filters.date_from,
                date_to=filters.date_to,
                sources=list(filters.sources) or None,
                languages=list(filters.languages) or None,
            )
        except IndexUsageError as exc:  # a malformed date: the caller's filter, not the index
            raise ConfigError(str(exc)) from None

    def _candidates(
        self,
        queries: Sequence[str],
        k: int,
        plan: Plan,
        allowed: np.ndarray | None,
        query_vectors: np.ndarray | None,
    ) -> list[list[Candidate]]:
        depth = max(self.settings.candidates, _wanted(k, plan))
        dense: list[list[tuple[int, float]]] = [[] for _ in queries]
        keyword: list[list[tuple[int, float]]] = [[] for _ in queries]
        if plan.mode in ("dense", "hybrid"):
            assert query_vectors is not None
            dense = self.index.search(query_vectors, depth, allowed=allowed)
        if plan.mode in ("keyword", "hybrid"):
            terms = [self.analyzer.query_terms(q) for q in queries]
            keyword = self.index.keyword_search(terms, depth, allowed=allowed)
        if plan.mode != "hybrid":
            return [
                single(plan.mode, d if plan.mode == "dense" else kw)
                for d, kw in zip(dense, keyword)
            ]
        weights = {"dense": self.settings.dense_weight, "keyword": self.settings.keyword_weight}
        return [
            rrf({"dense": d, "keyword": kw}, weights, self.settings.rrf_k)
            for d, kw in zip(dense, keyword)
        ]

    def _rank(
        self,
        query: str,
        vector: np.ndarray | None,
        cands: list[Candidate],
        k: int,
        plan: Plan,
        reads: _Reads,
    ) -> list[Candidate]:
        want = _wanted(k, plan)
        if plan.rerank and cands:
            assert vector is not None
            head = cands[: max(self.settings.rerank_depth, want)]
            ids = [c.row_id for c in head]
            reranked = self.reranker().rerank(
                query, vector, head, reads.evidence_of(ids), reads.texts(ids)
            )
            cands = reranked + cands[len(head) :]
        if plan.dedupe and cands:
            head = cands[:want]
            ids = [c.row_id for c in head]
            stored = reads.signatures(ids)
            cands = collapse(head, reads.texts(ids), self.settings.duplicate_overlap, stored)
        return cands[:k]

    def _hits(self, found: list[Candidate], reads: _Reads, with_evidence: bool) -> list[Hit]:
        rows = reads.chunks([c.row_id for c in found] + [d for c in found for d in c.duplicates])
        evidence = reads.evidence_of([c.row_id for c in found]) if with_evidence else {}
        hits: list[Hit] = []
        for cand in found:
            c = rows.get(cand.row_id)
            if c is None:
                continue
            dups = tuple(
                DuplicateSource(d.doc_id, d.source, d.title, d.date, d.chunk_id)
                for d in (rows.get(i) for i in cand.duplicates)
                if d is not None and d.doc_id != c.doc_id
            )
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    score=cand.score,
                    chunk_id=c.chunk_id,
                    doc_id=c.doc_id,
                    source=c.source,
                    title=c.title,
                    date=c.date,
                    text=c.text,
                    start=c.start,
                    end=c.end,
                    page=c.page,
                    language=c.language,
                    duplicates=dups,
                    row_id=c.row_id,
                    url=c.url,
                    evidence=evidence.get(c.row_id),
                    date_source=c.date_source,
                )
            )
        return hits


def make_plan(
    settings: RetrievalSettings,
    mode: RetrievalMode | None = None,
    rerank: bool | None = None,
    dedupe: bool | None = None,
) -> Plan:
    """The stages a search runs: `settings`, overridden by the arguments given."""
    mode = mode or settings.mode
    if mode not in RETRIEVAL_MODES:
        raise ConfigError(f"unknown retrieval mode {mode!r}; valid: {', '.join(RETRIEVAL_MODES)}")
    return Plan(
        mode=mode,
        rerank=settings.rerank if rerank is None else rerank,
        dedupe=settings.dedupe if dedupe is None else dedupe,
    )


def _wanted(k: int, plan: Plan) -> int:
    # Collapsing can merge candidates: fetch extra so k distinct hits remain.
    return k * 3 if plan.dedupe else k
