"""HTML for the chat UI: answers, sources and passages. Every string from a document, a
question or an answer goes through `html.escape` here, and nowhere else builds HTML from them.

The output is single-line HTML: the chat renders messages as Markdown, and a blank line would
end the raw-HTML block and let Markdown loose on article text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from rag.answer.types import Answer, Citation
from rag.types import Hit

if TYPE_CHECKING:
    from rag.answer.timeline import Timeline, TimelineEntry, TimelineGroup

_MARKERS = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")
_CONTEXT = 600
"""Characters of passage shown on each side of a quote (a passage is a few sentences)."""

NOT_ANSWERABLE = {
    "de": "Die Quellen beantworten diese Frage nicht.",
    "en": "The sources do not answer this question.",
}
NEAREST = {
    "de": "Die nächstliegenden Passagen stehen neben dem Chat.",
    "en": "The nearest passages are listed beside the chat.",
}


def esc(text: object) -> str:
    """Escaped text with line breaks kept as `<br>` (so no raw newline reaches Markdown)."""
    escaped = escape("" if text is None else str(text), quote=True)
    return escaped.replace("\r\n", "\n").replace("\n", "<br>")


def question(text: str) -> str:
    return f'<div class="nr-question">{esc(text)}</div>'


def streaming(text: str) -> str:
    """The answer while it streams: plain text, no citations yet."""
    body = esc(text) if text else '<span class="nr-wait">Searching the sources…</span>'
    return f'<div class="nr-answer nr-streaming">{body}</div>'


READING = {
    "de": "Schnelles Zitat; das Modell liest die Passagen und sucht die genaue Antwort…",
    "en": "Quick quote shown; the model is reading the passages for the exact answer…",
}


def draft(ans: Answer) -> str:
    """The instant quote answer shown while the reader reads: the answer, then a visible
    "reading…" state (`role=status`, so screen readers hear it too)."""
    note = READING.get(ans.language, READING["en"])
    body = answer(ans).replace("nr-answer nr-final", "nr-answer nr-draft-answer", 1)
    return (
        f'<div class="nr-draft">{body}'
        f'<p class="nr-wait nr-reading" role="status">{esc(note)}</p></div>'
    )


def error(message: str) -> str:
    return f'<div class="nr-answer nr-error" role="alert">{esc(message)}</div>'


def answer(ans: Answer) -> str:
    """The answer as chat HTML: its text with `[n]` markers drawn as citation numbers, each
    checked sentence wrapped, unsupported ones marked (their problems on hover and below)."""
    if not ans.answerable:
        note = ans.text or NOT_ANSWERABLE.get(ans.language, NOT_ANSWERABLE["en"])
        near = NEAREST.get(ans.language, NEAREST["en"]) if ans.passages else ""
        hint = f'<span class="nr-hint">{esc(near)}</span>' if near else ""
        return f'<div class="nr-answer nr-final nr-unanswerable">{esc(note)}{hint}</div>'
    problems = [s for s in ans.sentences if not s.supported]
    notes = "".join(
        f"<li><q>{esc(_MARKERS.sub('', s.text).strip())}</q>: "
        f"{esc('; '.join(s.problems) or 'not supported')}</li>"
        for s in problems
    )
    warning = (
        f'<div class="nr-problems"><b>Not supported by the sources:</b><ul>{notes}</ul></div>'
        if problems
        else ""
    )
    return f'<div class="nr-answer nr-final">{_answer_text(ans)}{warning}{_provenance(ans)}</div>'


def _provenance(ans: Answer) -> str:
    """How the answer came about: the rewritten follow-up question, the model that wrote it."""
    bits = []
    if ans.standalone_question:
        bits.append(f"Searched for: {ans.standalone_question}")
    if ans.model and ans.mode == "reader":
        bits.append(f"Phrase found by {ans.model}; the quote is the source's own words.")
    elif ans.model:
        bits.append(f"Written by {ans.model}: check it against the sources.")
    return f'<div class="nr-provenance">{esc(" · ".join(bits))}</div>' if bits else ""


def _answer_text(ans: Answer) -> str:
    """`ans.text` with each sentence found in it (in order) wrapped in its span."""
    text, pos, out = ans.text, 0, []
    for s in ans.sentences:
        at = text.find(s.text, pos) if s.text else -1
        if at < 0:
            continue
        out.append(_with_cites(text[pos:at], ans))
        inner = _with_cites(text[at : at + len(s.text)], ans)
        if ans.phrase is not None and esc(ans.phrase.text) in inner:
            # The reader's phrase, marked where it stands in the quoted sentence.
            marked = f'<mark class="nr-phrase">{esc(ans.phrase.text)}</mark>'
            inner = inner.replace(esc(ans.phrase.text), marked, 1)
        if s.supported and s.repaired_from:
            was = ", ".join(f"[{n}]" for n in s.repaired_from)
            now = ", ".join(f"[{n}]" for n in s.citations)
            why = f"Citation corrected: the model cited {was}, which does not say this; {now} does."
            out.append(f'<span class="nr-sentence nr-repaired" title="{esc(why)}">{inner}</span>')
        elif s.supported:
            out.append(f'<span class="nr-sentence">{inner}</span>')
        else:
            why = "Not supported: " + ("; ".join(s.problems) or "no source says this")
            out.append(
                f'<span class="nr-sentence nr-unsupported" title="{esc(why)}">{inner}</span>'
            )
        pos = at + len(s.text)
    out.append(_with_cites(text[pos:], ans))
    return "".join(out)


def _with_cites(text: str, ans: Answer) -> str:
    """Escaped text whose `[n]` / `[n, m]` markers become citation numbers."""
    parts, last = [], 0
    for m in _MARKERS.finditer(text):
        parts.append(esc(text[last : m.start()]))
        numbers = [int(n) for n in re.findall(r"\d+", m.group(0))]
        parts.append("".join(_cite_mark(n, ans.citation(n)) for n in numbers))
        last = m.end()
    parts.append(esc(text[last:]))
    return "".join(parts)


def _cite_mark(n: int, cite: Citation | None) -> str:
    if cite is None:
        return f'<sup class="nr-cite nr-cite-unknown" title="no such source">[{n}]</sup>'
    label = " · ".join(x for x in (cite.title or cite.source, cite.date) if x)
    return f'<sup class="nr-cite" title="{esc(label)}">[{n}]</sup>'


def sources(ans: Answer | None) -> str:
    """The panel beside the chat: the answer's numbered sources, or its nearest passages."""
    if ans is None:
        return panel(
            "Sources",
            '<p class="nr-empty">Ask a question: the passages an answer is quoted from '
            "appear here, each quote highlighted.</p>",
        )
    if not ans.answerable or not ans.citations:
        title = "Nearest passages (they do not answer the question)"
        cards = "".join(_hit_card(h) for h in ans.passages)
        return panel(title, cards or '<p class="nr-empty">No passage matched.</p>')
    cards = "".join(_citation_card(c) for c in ans.citations)
    return panel(f"Sources for: {esc(ans.question)}", cards)


def panel(title: str, body: str) -> str:
    return f'<div class="nr-sources"><h3>{title}</h3>{body}</div>'


def _meta(
    title: str | None,
    date: str | None,
    source: str,
    page: int | None,
    url: str | None,
    date_source: str | None = None,
) -> str:
    if date and date_source == "inferred":
        why = "Inferred from the article's text (it has no date in its metadata)"
        bits = [f'<span class="nr-date nr-inferred" title="{why}">{esc(date)} (inferred)</span>']
    else:
        bits = [f'<span class="nr-date">{esc(date)}</span>' if date else ""]
    bits.append(f'<span class="nr-outlet">{esc(source)}</span>')
    if page is not None:
        bits.append(f"<span>page {page}</span>")
    if url and url.lower().startswith(("http://", "https://")):
        bits.append(f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">link</a>')
    return '<div class="nr-meta">' + " · ".join(b for b in bits if b) + "</div>"


def _citation_card(c: Citation) -> str:
    head = (
        f'<div class="nr-card-head"><span class="nr-n">{c.n}</span>'
        f'<span class="nr-title">{esc(c.title or c.source)}</span></div>'
    )
    passage = highlight(c.passage, c.passage_start, c.start, c.end, c.quote)
    return (
        f'<div class="nr-card" id="nr-source-{c.n}" data-n="{c.n}">{head}'
        f"{_meta(c.title, c.date, c.source, c.page, c.url, c.date_source)}"
        f'<blockquote class="nr-passage">{passage}</blockquote></div>'
    )


def _hit_card(h: Hit) -> str:
    head = (
        f'<div class="nr-card-head"><span class="nr-n nr-n-hit">{h.rank}</span>'
        f'<span class="nr-title">{esc(h.title or h.source)}</span></div>'
    )
    return (
        f'<div class="nr-card nr-hit">{head}'
        f"{_meta(h.title, h.date, h.source, h.page, None, h.date_source)}"
        f'<blockquote class="nr-passage">{esc(h.text)}</blockquote></div>'
    )


def highlight(passage: str, passage_start: int, start: int, end: int, quote: str) -> str:
    """The passage, escaped, with the quoted span inside `<mark>`.

    The span comes from the document offsets; if they do not land on the quote inside this
    passage (a quote that runs past it), the quote is looked up by text, and failing that shown
    above the passage.
    """
    a, b = start - passage_start, end - passage_start
    if not (0 <= a <= b <= len(passage) and passage[a:b] == quote):
        a = passage.find(quote) if quote else -1
        b = a + len(quote)
    if a < 0 or not quote:
        return f'<mark class="nr-quote">{esc(quote)}</mark><br>{esc(_trim(passage))}'
    before, inside, after = passage[:a], passage[a:b], passage[b:]
    if len(before) > _CONTEXT:
        before = "…" + before[-_CONTEXT:]
    if len(after) > _CONTEXT:
        after = after[:_CONTEXT] + "…"
    return f'{esc(before)}<mark class="nr-quote">{esc(inside)}</mark>{esc(after)}'


def _trim(text: str) -> str:
    return text if len(text) <= 2 * _CONTEXT else text[: 2 * _CONTEXT] + "…"


def timeline(tl: Timeline | None) -> str:
    """A timeline as HTML: its groups oldest first, then the undated; each entry its key
    sentence, citation number, title, date ("(inferred)" where read from the text), source,
    "+N sources" for the copies collapsed into it, and the sentence in its passage."""
    if tl is None:
        return (
            '<div class="nr-timeline"><p class="nr-empty">Name a person, event or topic: the '
            "articles about it appear here by date, each with its key sentence.</p></div>"
        )
    if not tl.entries:
        return (
            f'<div class="nr-timeline"><p class="nr-empty">No article matches '
            f"<q>{esc(tl.query)}</q>.</p></div>"
        )
    entries, articles = len(tl.entries), tl.n_articles
    summary = (
        f"{articles} article{'s' if articles != 1 else ''} in {entries} "
        f"entr{'ies' if entries != 1 else 'y'} for <q>{esc(tl.query)}</q>, by {esc(tl.by)}"
    )
    groups = "".join(_timeline_group(g) for g in (*tl.groups, tl.undated) if g.entries)
    return f'<div class="nr-timeline"><p class="nr-tl-summary">{summary}</p>{groups}</div>'


def _timeline_group(group: TimelineGroup) -> str:
    label = group.period or "Undated"
    count = f"{group.n_articles} article{'s' if group.n_articles != 1 else ''}"
    period = esc(group.period or "undated")
    return (
        f'<section class="nr-tl-group" data-period="{period}">'
        f'<h4><span class="nr-tl-period">{esc(label)}</span>'
        f'<span class="nr-tl-count">{count}</span></h4>'
        + "".join(_timeline_entry(e) for e in group.entries)
        + "</section>"
    )


def _timeline_entry(entry: TimelineEntry) -> str:
    c = entry.citation
    head = (
        f'<div class="nr-card-head"><span class="nr-n">{c.n}</span>'
        f'<span class="nr-title">{esc(c.title or c.source)}</span>'
        f"{_copies_badge(entry)}</div>"
    )
    context = highlight(c.passage, c.passage_start, c.start, c.end, c.quote)
    return (
        f'<div class="nr-card nr-tl-entry" id="nr-tl-{c.n}" data-n="{c.n}">{head}'
        f"{_meta(c.title, c.date, c.source, c.page, c.url, c.date_source)}"
        f'<blockquote class="nr-tl-sentence">{esc(entry.sentence)}</blockquote>'
        f"{_copies_list(entry)}"
        f'<details class="nr-tl-context"><summary>In its passage</summary>'
        f'<blockquote class="nr-passage">{context}</blockquote></details></div>'
    )


def _copies_badge(entry: TimelineEntry) -> str:
    """"+N sources" for the independent sources collapsed into an entry ("+N copies" when
    they share its source)."""
    if not entry.duplicates:
        return ""
    others = entry.n_sources - 1
    if others:
        label = f"+{others} source{'s' if others != 1 else ''}"
    else:
        label = f"+{len(entry.duplicates)} cop{'ies' if len(entry.duplicates) != 1 else 'y'}"
    why = "The same story, nearly word for word, in other articles of this period"
    return f'<span class="nr-tl-copies" title="{why}">{label}</span>'


def _copies_list(entry: TimelineEntry) -> str:
    if not entry.duplicates:
        return ""
    items = "".join(
        f"<li>{esc(' · '.join(x for x in (d.title, d.date, d.source) if x))}</li>"
        for d in entry.duplicates
    )
    return f'<ul class="nr-tl-dups">{items}</ul>'


def status(lines: Sequence[str], kind: str = "ok") -> str:
    """A short status block (upload and remove results)."""
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return f'<div class="nr-status nr-status-{kind}"><ul>{items}</ul></div>'


CSS = """
.nr-header{display:flex;align-items:baseline;gap:1rem;flex-wrap:wrap;margin:.2rem 0 .4rem}
.nr-header h1{font-size:1.5rem;margin:0}
.nr-header .nr-info{color:var(--body-text-color-subdued);font-size:.9rem}
.nr-question{white-space:normal}
.nr-answer p{margin:0}
.nr-sentence{border-radius:3px}
.nr-unsupported{background:rgba(245,158,11,.18);text-decoration:underline wavy rgba(220,38,38,.8);
 text-underline-offset:3px;cursor:help}
.nr-cite{font-size:.75em;font-weight:600;color:var(--color-accent);margin-left:1px;cursor:help}
.nr-cite-unknown{color:#dc2626}
.nr-problems{margin-top:.6rem;padding:.4rem .6rem;border-left:3px solid #f59e0b;
 background:rgba(245,158,11,.10);font-size:.9em}
.nr-problems ul{margin:.2rem 0 0 1rem;padding:0}
.nr-provenance{margin-top:.4rem;color:var(--body-text-color-subdued);font-size:.82em}
.nr-unanswerable{font-style:italic}
.nr-hint{display:block;font-style:normal;color:var(--body-text-color-subdued);font-size:.9em;
 margin-top:.3rem}
.nr-error{color:#b91c1c}
.nr-wait{color:var(--body-text-color-subdued)}
.nr-draft>.nr-answer{opacity:.75}
.nr-reading{font-style:italic;margin:.3rem 0 0}
.nr-repaired{text-decoration:underline dotted}
.nr-sources h3{margin:.2rem 0 .6rem;font-size:1rem}
.nr-sources{max-height:72vh;overflow-y:auto;padding-right:.3rem}
.nr-empty{color:var(--body-text-color-subdued)}
.nr-card{border:1px solid var(--border-color-primary);border-radius:8px;padding:.6rem .7rem;
 margin-bottom:.6rem;background:var(--background-fill-secondary)}
.nr-card-head{display:flex;gap:.5rem;align-items:baseline}
.nr-n{flex:none;display:inline-block;min-width:1.5rem;text-align:center;border-radius:999px;
 background:var(--color-accent);color:#fff;font-weight:700;font-size:.8rem;padding:0 .35rem}
.nr-n-hit{background:var(--neutral-500)}
.nr-title{font-weight:600}
.nr-meta{color:var(--body-text-color-subdued);font-size:.82rem;margin:.15rem 0 .35rem;
 word-break:break-all}
.nr-passage{margin:0;padding:0 0 0 .6rem;border-left:3px solid var(--border-color-primary);
 font-size:.9rem;line-height:1.45;white-space:normal}
.nr-quote{background:rgba(250,204,21,.45);color:inherit;padding:0 1px;border-radius:2px}
#nr-documents td{overflow-wrap:anywhere}
.nr-tl-summary{color:var(--body-text-color-subdued);margin:.2rem 0 .6rem}
.nr-tl-group h4{display:flex;gap:.6rem;align-items:baseline;margin:.8rem 0 .4rem;
 border-bottom:1px solid var(--border-color-primary)}
.nr-tl-period{font-size:1.05rem}
.nr-tl-count{color:var(--body-text-color-subdued);font-size:.82rem;font-weight:400}
.nr-tl-sentence{margin:.2rem 0;padding:0 0 0 .6rem;border-left:3px solid var(--color-accent);
 line-height:1.45}
.nr-tl-copies{margin-left:auto;flex:none;font-size:.75rem;border-radius:999px;padding:0 .45rem;
 background:var(--neutral-200);color:var(--neutral-800);cursor:help}
.nr-tl-dups{margin:.2rem 0 .2rem 1rem;padding:0;font-size:.82rem;
 color:var(--body-text-color-subdued)}
.nr-tl-context summary{cursor:pointer;font-size:.82rem;color:var(--body-text-color-subdued)}
.nr-status ul{margin:.2rem 0 0 1rem;padding:0}
.nr-status-error{color:#b91c1c}
"""
"""The UI's stylesheet; it uses Gradio's theme variables so the dark theme works too."""
