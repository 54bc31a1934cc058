"""What every human-readable export shows: labels in the answer's language, sentences without
their `[n]` markers, and the one-line description of a cited source."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rag.answer.types import Answer, Citation

LABELS = {
    "en": {
        "conversation": "Questions and answers",
        "unsupported": "not supported by its sources",
        "no_answer": "The sources do not answer this question.",
        "nearest": "The nearest passages are:",
        "sources": "Sources",
        "undated": "undated",
        "untitled": "(untitled)",
        "page": "p.",
        "exported": "Exported by newsrag on {created_at}",
        "index": "index manifest {sha}",
        "embedder": "embedder {embedder}",
        "model": "model {model}",
        "mode": "mode {mode}",
    },
    "de": {
        "conversation": "Fragen und Antworten",
        "unsupported": "nicht durch die Quellen belegt",
        "no_answer": "Die Quellen beantworten diese Frage nicht.",
        "nearest": "Am nächsten kommen diese Passagen:",
        "sources": "Quellen",
        "undated": "ohne Datum",
        "untitled": "(ohne Titel)",
        "page": "S.",
        "exported": "Exportiert von newsrag am {created_at}",
        "index": "Index-Manifest {sha}",
        "embedder": "Embedder {embedder}",
        "model": "Modell {model}",
        "mode": "Modus {mode}",
    },
}
"""Fixed texts of the exports, by answer language; other languages get English."""

QUOTES = {"de": ("„", "“"), "en": ("“", "”")}
WARNING_SIGN = "⚠"

_MARKER = re.compile(r"\s*\[\d+\]")
_SPACE = re.compile(r"\s+")


def labels(language: str | None) -> dict[str, str]:
    """The fixed texts for `language` (English when the language has none)."""
    return LABELS.get((language or "en").split("-")[0].lower(), LABELS["en"])


def quoted(text: str, language: str | None) -> str:
    """`text` in the typographic quotation marks of `language`."""
    left, right = QUOTES.get((language or "en").split("-")[0].lower(), QUOTES["en"])
    return f"{left}{text}{right}"


def one_line(text: str) -> str:
    """Whitespace (line breaks included) collapsed to single spaces."""
    return _SPACE.sub(" ", text).strip()


def without_markers(text: str) -> str:
    """A sentence without its `[n]` citation markers: the exports place their own."""
    return one_line(_MARKER.sub("", text))


@dataclass(frozen=True)
class Line:
    """One sentence of an answer as the exports show it."""

    text: str
    citations: tuple[int, ...]
    supported: bool
    problems: tuple[str, ...] = ()


def answer_lines(answer: Answer) -> list[Line]:
    """The answer's sentences (only citation numbers the answer knows kept); the whole answer
    text as one line when it has no sentences."""
    known = {c.n for c in answer.citations}
    lines = [
        Line(
            without_markers(s.text),
            tuple(n for n in s.citations if n in known),
            s.supported,
            s.problems,
        )
        for s in answer.sentences
        if without_markers(s.text)
    ]
    if lines or not answer.text.strip():
        return lines
    return [Line(without_markers(answer.text), (), True)]


def unsupported_note(line: Line, texts: dict[str, str]) -> str:
    """The note after an unsupported sentence: "not supported by its sources: why"."""
    why = "; ".join(one_line(p) for p in line.problems if p.strip())
    return f"{texts['unsupported']}: {why}" if why else texts["unsupported"]


def source_parts(citation: Citation, texts: dict[str, str]) -> list[str]:
    """Title, date, source path, page and URL of a citation, in that order, plain text."""
    parts = [one_line(citation.title or "") or texts["untitled"]]
    parts.append(citation.date or texts["undated"])
    parts.append(citation.source)
    if citation.page is not None:
        parts.append(f"{texts['page']} {citation.page}")
    if citation.url:
        parts.append(citation.url)
    return parts


def provenance(
    created_at: str, sha: str | None, embedder: str | None, texts: dict[str, str]
) -> str:
    """The closing line: "Exported by newsrag on …; index manifest …; embedder …"."""
    parts = [texts["exported"].format(created_at=created_at)]
    if sha:
        parts.append(texts["index"].format(sha=sha[:16]))
    if embedder:
        parts.append(texts["embedder"].format(embedder=embedder))
    return "; ".join(parts)


def ascii_slug(text: str, max_len: int = 60) -> str:
    """Lowercase ASCII words joined by '-', German letters transliterated (ä -> ae, ß -> ss)."""
    text = text.translate(_GERMAN)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) <= max_len:
        return slug
    cut = slug[: max_len + 1].rsplit("-", 1)[0]  # end on a whole word when there is one
    return (cut if len(cut) >= max_len // 2 else slug[:max_len]).rstrip("-")


_GERMAN = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)
