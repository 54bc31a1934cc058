"""Short text renderings of the MCP tools' results, for assistants that read only the text:
the answer with its [n] markers, then each citation's exact quote, date and source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rag.answer.timeline import Timeline
from rag.answer.types import Answer
from rag.ingest.indexer import AddReport
from rag.types import Hit

NEAREST_SHOWN = 3
"""Passages listed under an answer the sources do not give."""


def dated(date: str | None, date_source: str | None) -> str | None:
    """A date as shown: "2022-06", or "2022-06 (inferred)" when read from the text."""
    if date and date_source == "inferred":
        return f"{date} (inferred)"
    return date


def meta_line(*parts: str | None) -> str:
    return " · ".join(p for p in parts if p)


def render_hits(hits: Sequence[Hit], stages: Sequence[str] = ()) -> str:
    if not hits:
        return "No matching passages."
    head = _count(len(hits), "passage") + (f" (stages: {' -> '.join(stages)})" if stages else "")
    lines = [head]
    for h in hits:
        meta = meta_line(h.title, dated(h.date, h.date_source), h.source)
        lines.append(
            f"[{h.rank}] {meta} (doc {h.doc_id}, passage {h.chunk_id}, chars {h.start}-{h.end}, "
            f"score {h.score:.3f})"
        )
        lines.append(f"    {h.text.strip()}")
        for d in h.duplicates:
            lines.append(f"    also in: {meta_line(d.title, d.date, d.source)}")
    return "\n".join(lines)


def render_answer(answer: Answer) -> str:
    """The answer text, unsupported sentences flagged, then `[n] title · date · source: "quote"`."""
    lines = [answer.text.strip()]
    for s in answer.sentences:
        if not s.supported:
            lines.append(f"(not supported by its sources: {s.text!r}: {'; '.join(s.problems)})")
    if answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:
            meta = meta_line(c.title, dated(c.date, c.date_source), c.source)
            where = f"chars {c.start}-{c.end}" + (f", page {c.page}" if c.page else "")
            lines.append(f'[{c.n}] {meta} ({where}): "{c.quote.strip()}"')
    elif not answer.answerable and answer.passages:
        lines += ["", "Nearest passages (they do not answer it):"]
        for h in answer.passages[:NEAREST_SHOWN]:
            meta = meta_line(h.title, dated(h.date, h.date_source), h.source)
            lines.append(f"- {meta}: {_shortened(h.text)}")
    return "\n".join(lines)


def render_timeline(timeline: Timeline) -> str:
    """Per period, oldest first: `[n] date · title · source: "key sentence"`."""
    if not timeline.entries:
        return f"No articles match {timeline.query!r}."
    lines = [
        f"Timeline of {timeline.query!r} by {timeline.by}: "
        f"{_count(timeline.n_articles, 'article')}, {_count(len(timeline.entries), 'story')}"
    ]
    for group in (*timeline.groups, timeline.undated):
        if not group.entries:
            continue
        lines.append(f"{group.period or 'undated'} ({_count(group.n_articles, 'article')})")
        for e in group.entries:
            c = e.citation
            meta = meta_line(dated(c.date, c.date_source), c.title, c.source)
            also = f" (also in {e.n_sources - 1} more sources)" if e.n_sources > 1 else ""
            lines.append(f'  [{c.n}] {meta}: "{c.quote.strip()}"{also}')
    return "\n".join(lines)


def render_documents(documents: Sequence[Mapping[str, Any]], total: int, offset: int) -> str:
    if not documents:
        return f"No documents listed ({total} in the index, offset {offset})."
    last = offset + len(documents)
    lines = [f"Documents {offset + 1}-{last} of {total}:"]
    for d in documents:
        meta = meta_line(d.get("title"), d.get("date"), d.get("source"))
        passages = _count(d["n_chunks"], "passage")
        lines.append(f"- {meta} (id {d['doc_id']}, {passages}, {d['uri']})")
    return "\n".join(lines)


def render_passage(hit: Hit, uri: str) -> str:
    meta = meta_line(hit.title, dated(hit.date, hit.date_source), hit.source)
    return (
        f"{meta}\npassage {hit.chunk_id}: chars {hit.start}-{hit.end} of document {hit.doc_id} "
        f"({uri})\n\n{hit.text}"
    )


def render_report(report: AddReport) -> str:
    text = (
        f"{_count(report.documents, 'document')} read: {report.added} added, "
        f"{report.updated} updated, {report.unchanged} unchanged; "
        f"{_count(report.chunks, 'passage')} written."
    )
    problems = [f"- {p.source}: {p.message}" for p in report.problems]
    return "\n".join([text, *(["Not indexed:"] if problems else []), *problems])


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def _shortened(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
