"""Timelines: the articles matching a query, grouped by publication date, each with its key
sentence and citation.

Retrieval fetches wide (a timeline wants coverage, not the top five), every retrieved sentence
is scored as quote answers score them (`rag.answer.quote.score_sentences`), and each document
keeps its best sentence: its key sentence, cited exactly as answers cite. Entries are grouped
by day, month or year of their document's date, oldest first; undated documents form a group
of their own. Within a group, near-duplicate copies of one story (the same wire text in
several outlets) are collapsed into one entry with the near-duplicate test search uses
(`rag.retrieval.fusion.collapse`); the entry counts the independent sources that carried it.

`Timeline.to_json()` is the public JSON shape of `rag timeline --json` and `GET /api/timeline`
(described field by field in `timeline.schema.json` beside this file):

    {"query", "by", "n_articles", "n_entries",
     "groups": [{"period": "2022-06", "n_articles", "entries": [entry...]}],
     "undated": {"period": null, "n_articles", "entries": [entry...]},
     "retrieval": {"k", "stages", "filters", "embedder", "min_score", "min_score_crosslingual"}}

    entry: {"date", "date_source", "sentence", "score", "n_sources", "n_articles",
            "citation": {citation as in `rag ask --json`}, "duplicates": [{"doc_id", "source",
            "title", "date"}]}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from rag.answer.pipeline import _citation, question_language
from rag.answer.quote import QuoteWeights, ScoredSentence, score_sentences
from rag.answer.types import Citation
from rag.errors import ConfigError
from rag.retrieval.fusion import Candidate, collapse, ranked
from rag.types import DuplicateSource, Filters, Hit

if TYPE_CHECKING:
    from rag.embedders import Embedder
    from rag.retrieval.analysis import Analyzer
    from rag.retrieval.pipeline import Retriever
    from rag.settings import GenerationSettings

TimelineBy = Literal["day", "month", "year"]
"""How finely a timeline groups its articles by date."""
TIMELINE_BY: tuple[TimelineBy, ...] = get_args(TimelineBy)

DEFAULT_PASSAGES = 100
"""Passages a timeline retrieves by default (several can come from one article)."""
MAX_PASSAGES = 1000
FLOOR_MARGIN = 0.05
"""How far above the quote answers' evidence threshold an article's key sentence must score.
Chosen with `benchmarks/timeline.py` (203 German Wikinews articles, 12 topic queries; an
article counts as on topic when its text names the topic): at the answers' threshold, 1.65,
79% of the articles shown were on topic and 97% of the on-topic ones were shown; 0.05 above
it, 92% and 94%; 0.10 above it, 98% and 84%."""
MAX_PLOT_PERIODS = 400
"""`coverage(fill=True)` fills empty periods only while the axis stays this short."""

_PRECISION: dict[TimelineBy, int] = {"year": 4, "month": 7, "day": 10}
"""Characters of an ISO date that name its period."""


def schema_path() -> Path:
    """The JSON Schema of `Timeline.to_json()`."""
    return Path(__file__).with_name("timeline.schema.json")


@dataclass(frozen=True)
class TimelineEntry:
    """One story at one date: an article's key sentence, cited, and the copies collapsed in."""

    citation: Citation
    """The key sentence: `citation.quote` is exactly the document's text from `start` to `end`."""
    score: float
    """The key sentence's score (as quote answers score sentences; higher matches better)."""
    duplicates: tuple[DuplicateSource, ...] = ()
    """Other articles carrying nearly the same passage, collapsed into this entry."""

    @property
    def date(self) -> str | None:
        return self.citation.date

    @property
    def date_source(self) -> str | None:
        """`"inferred"` when the date was read from the article's text, not its metadata."""
        return self.citation.date_source

    @property
    def sentence(self) -> str:
        return self.citation.quote

    @property
    def n_articles(self) -> int:
        """This article and its collapsed copies."""
        return 1 + len(self.duplicates)

    @property
    def n_sources(self) -> int:
        """Independent sources that carried the story: distinct `source`s among the articles."""
        return len({self.citation.source, *(d.source for d in self.duplicates)})

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "date_source": self.date_source,
            "sentence": self.sentence,
            "score": round(float(self.score), 6),
            "n_sources": self.n_sources,
            "n_articles": self.n_articles,
            "citation": self.citation.to_json(),
            "duplicates": [d.to_json() for d in self.duplicates],
        }


@dataclass(frozen=True)
class TimelineGroup:
    """The entries of one period ("2022-06" when grouped by month), oldest first; `period` is
    None for the undated articles."""

    period: str | None
    entries: tuple[TimelineEntry, ...] = ()

    @property
    def n_articles(self) -> int:
        return sum(e.n_articles for e in self.entries)

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "n_articles": self.n_articles,
            "entries": [e.to_json() for e in self.entries],
        }


@dataclass(frozen=True)
class Timeline:
    """The articles matching `query`, grouped by date: `groups` oldest first, then `undated`."""

    query: str
    by: TimelineBy
    groups: tuple[TimelineGroup, ...]
    undated: TimelineGroup = TimelineGroup(None)
    retrieval: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def entries(self) -> tuple[TimelineEntry, ...]:
        """Every entry in timeline order (the undated last)."""
        return tuple(e for g in (*self.groups, self.undated) for e in g.entries)

    @property
    def n_articles(self) -> int:
        return sum(g.n_articles for g in (*self.groups, self.undated))

    def coverage(self, fill: bool = True) -> list[tuple[str, int]]:
        """Articles per period, oldest first (the undated are not on a time axis). With
        `fill`, the periods without articles between the first and the last appear with 0
        (unless there would be more than `MAX_PLOT_PERIODS`); a coarser period ("2022" by
        month) stays where it sorts, before the finer ones it contains."""
        counts = [(g.period, g.n_articles) for g in self.groups if g.period is not None]
        fine = [p for p, _ in counts if len(p) == _PRECISION[self.by]]
        if not fill or not fine:
            return counts
        periods = _periods_between(fine[0], fine[-1], self.by)
        if periods is None:
            return counts
        known = dict(counts)
        return [(p, known.get(p, 0)) for p in sorted({*periods, *known})]

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape (see the module docstring)."""
        return {
            "query": self.query,
            "by": self.by,
            "n_articles": self.n_articles,
            "n_entries": len(self.entries),
            "groups": [g.to_json() for g in self.groups],
            "undated": self.undated.to_json(),
            "retrieval": dict(self.retrieval),
        }


def build_timeline(
    query: str,
    retriever: Retriever,
    embedder: Embedder,
    analyzer: Analyzer,
    filters: Filters | None = None,
    *,
    by: str = "month",
    k: int | None = None,
    min_score: float | None = None,
    generation: GenerationSettings | None = None,
    weights: QuoteWeights | None = None,
) -> Timeline:
    """Retrieve `k` passages for `query` (filters as in search), keep each article's best
    sentence, drop articles whose best sentence scores under `min_score`, group the rest by
    `by` and collapse near-duplicate copies per group.

    Without `min_score`, the floor is `FLOOR_MARGIN` above the quote answers' evidence
    threshold of `generation` (`answerable_threshold`, or `answerable_threshold_crosslingual`
    for an article in another language than the query): an article matches when its best
    sentence would be evidence enough to quote, with a margin. Without either, every retrieved
    article is kept.
    """
    if not query or not query.strip():
        raise ConfigError("the query is empty; name what the timeline is about")
    period_of = _grouping(by)
    k = DEFAULT_PASSAGES if k is None else k
    if not 1 <= k <= MAX_PASSAGES:
        raise ConfigError(f"k (passages to retrieve) must be 1 to {MAX_PASSAGES}, got {k}")
    # No dedupe in retrieval: each article keeps its best sentence, and copies are collapsed
    # per period below, where their dates are known, not across the archive as search does.
    plan = retriever.plan(dedupe=False)
    query_vectors = embedder.embed_queries([query])
    hits = retriever.search(
        [query], k, filters, plan, query_vectors=query_vectors, with_evidence=True
    )[0]
    evidence = {h.row_id: h.evidence for h in hits if h.evidence is not None}
    scored = score_sentences(
        query, query_vectors[0], hits, evidence, analyzer, weights or QuoteWeights()
    )
    floor = _Floor.of(query, min_score, generation)
    best = [(s, hit) for s, hit in _best_per_document(scored, hits) if floor.passes(s, hit)]
    groups = _numbered(_grouped(best, period_of, retriever.settings.duplicate_overlap))
    retrieval = {
        "k": k,
        "stages": plan.stages(),
        "filters": filters.to_json() if filters is not None and filters.active() else None,
        "embedder": embedder.id,
        "min_score": floor.same,
        "min_score_crosslingual": floor.cross,
    }
    return Timeline(
        query=query,
        by=by,  # type: ignore[arg-type]  # checked by _grouping
        groups=tuple(g for g in groups if g.period is not None),
        undated=next((g for g in groups if g.period is None), TimelineGroup(None)),
        retrieval=retrieval,
    )


@dataclass(frozen=True)
class _Floor:
    """The score an article's best sentence needs to be in the timeline (None: no floor)."""

    same: float | None
    cross: float | None
    language: str

    @classmethod
    def of(
        cls, query: str, min_score: float | None, generation: GenerationSettings | None
    ) -> _Floor:
        language = question_language(query)
        if min_score is not None:
            return cls(min_score, min_score, language)
        if generation is not None:
            return cls(
                round(generation.answerable_threshold + FLOOR_MARGIN, 6),
                round(generation.answerable_threshold_crosslingual + FLOOR_MARGIN, 6),
                language,
            )
        return cls(None, None, language)

    def passes(self, sentence: ScoredSentence, hit: Hit) -> bool:
        other = hit.language in ("de", "en") and hit.language != self.language
        floor = self.cross if other else self.same
        return floor is None or sentence.score >= floor


def _grouping(by: str) -> Callable[[str | None], str | None]:
    """The function from a date to its period key for `by` (None for no date)."""
    if by not in _PRECISION:
        raise ConfigError(f"unknown timeline grouping {by!r}; valid: {', '.join(TIMELINE_BY)}")
    width = _PRECISION[by]  # type: ignore[index]

    def period_of(date: str | None) -> str | None:
        # A date less precise than the grouping ("2022" by month) keeps its own, coarser
        # period, which sorts before the finer ones it contains.
        return date[:width] if date else None

    return period_of


def _best_per_document(
    scored: Sequence[ScoredSentence], hits: Sequence[Hit]
) -> list[tuple[ScoredSentence, Hit]]:
    """Each document's best sentence (scored is best first) with the hit it stands in."""
    seen: set[str] = set()
    out = []
    for s in scored:
        hit = hits[s.hit]
        if hit.doc_id in seen:
            continue
        seen.add(hit.doc_id)
        out.append((s, hit))
    return out


_Item = tuple[ScoredSentence, Hit, list[Hit]]
"""An entry to be: the key sentence, the hit it stands in, the hits of the copies."""


def _grouped(
    best: Sequence[tuple[ScoredSentence, Hit]],
    period_of: Callable[[str | None], str | None],
    overlap: float,
) -> list[tuple[str | None, list[_Item]]]:
    """The articles by period, oldest first, the undated (None) last; copies collapsed."""
    groups: dict[str | None, list[tuple[ScoredSentence, Hit]]] = {}
    for sentence, hit in best:
        groups.setdefault(period_of(hit.date), []).append((sentence, hit))
    dated = sorted(p for p in groups if p is not None)
    return [(p, _collapsed(groups[p], overlap)) for p in [*dated, None] if p in groups]


def _collapsed(items: Sequence[tuple[ScoredSentence, Hit]], overlap: float) -> list[_Item]:
    """The items of one period with near-duplicate passages merged into the best-scored copy;
    each with the hits of the copies merged into it."""
    by_row = {hit.row_id: (s, hit) for s, hit in items}
    candidates = ranked([Candidate(row_id=hit.row_id, score=s.score) for s, hit in items])
    kept = collapse(candidates, {hit.row_id: hit.text for _, hit in items}, overlap)
    return [(*by_row[c.row_id], [by_row[d][1] for d in c.duplicates]) for c in kept]


def _numbered(built: Sequence[tuple[str | None, list[_Item]]]) -> list[TimelineGroup]:
    """The groups with their entries in order (date, then score), cited 1..N in that order."""
    groups, n = [], 0
    for period, items in built:
        ordered = sorted(items, key=lambda it: (it[1].date or "", -it[0].score, it[1].doc_id))
        entries = []
        for s, hit, copies in ordered:
            n += 1
            entries.append(TimelineEntry(_key_citation(n, hit, s), s.score, _duplicates(copies)))
        groups.append(TimelineGroup(period, tuple(entries)))
    return groups


def _key_citation(n: int, hit: Hit, sentence: ScoredSentence) -> Citation:
    """The citation of a key sentence, its span without the whitespace around it."""
    lead = len(sentence.text) - len(sentence.text.lstrip())
    trail = len(sentence.text) - len(sentence.text.rstrip())
    return _citation(n, hit, sentence.start + lead, sentence.end - trail)


def _duplicates(copies: Sequence[Hit]) -> tuple[DuplicateSource, ...]:
    ordered = sorted(copies, key=lambda h: (h.date or "", h.source, h.doc_id))
    return tuple(DuplicateSource(h.doc_id, h.source, h.title, h.date, h.chunk_id) for h in ordered)


def _periods_between(first: str, last: str, by: TimelineBy) -> list[str] | None:
    """Every period from `first` to `last` (both at `by`'s precision); None when there would
    be more than `MAX_PLOT_PERIODS`, or a period is not an ISO date."""
    try:
        a, b = _ordinal(first, by), _ordinal(last, by)
    except ValueError:
        return None
    if b - a >= MAX_PLOT_PERIODS:
        return None
    return [_period(i, by) for i in range(a, b + 1)]


def _ordinal(period: str, by: TimelineBy) -> int:
    if by == "year":
        return int(period)
    if by == "month":
        year, month = period.split("-")
        return int(year) * 12 + int(month) - 1
    return dt.date.fromisoformat(period).toordinal()


def _period(ordinal: int, by: TimelineBy) -> str:
    if by == "year":
        return f"{ordinal:04d}"
    if by == "month":
        return f"{ordinal // 12:04d}-{ordinal % 12 + 1:02d}"
    return dt.date.fromordinal(ordinal).isoformat()
