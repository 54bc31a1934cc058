"""Citation markers in written answers: `[n]` parsed back to passage numbers.

A model writes "Die USA lieferten HIMARS [1][3]." or "... [1, 3]."; markers after the final
period ("Satz. [2]") belong to the sentence before them, markers standing alone before the first
sentence ("[2]\n\nSatz.") to that sentence. Numbers that match no passage are
dropped, and the sentence says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.chunking import split_sentences

_MARKERS = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_LEADING = re.compile(r"^(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+")


@dataclass(frozen=True)
class ParsedSentence:
    text: str
    """The sentence without its markers."""
    citations: tuple[int, ...]
    """Valid passage numbers, in order of first mention."""
    invalid: tuple[int, ...]
    """Numbers that match no passage (dropped)."""


def _numbers(marked: str) -> list[int]:
    return [int(n) for m in _MARKERS.finditer(marked) for n in re.split(r"\s*[,;]\s*", m.group(1))]


def parse_answer(text: str, n_passages: int, language: str | None = None) -> list[ParsedSentence]:
    """Split a written answer into sentences and their citation numbers."""
    pieces = [text[s:e] for s, e in split_sentences(text, language)]
    merged: list[str] = []
    pending = ""  # markers standing alone before the first sentence ("[2]\n\nSatz.")
    for piece in pieces:
        lead = _LEADING.match(piece)
        if lead and merged:
            merged[-1] += lead.group()
            piece = piece[lead.end() :]
        elif lead and not piece[lead.end() :].strip():
            pending += lead.group()
            continue
        if piece.strip():
            merged.append(pending + piece)
            pending = ""
    out = []
    for raw in merged:
        numbers = _numbers(raw)
        clean = " ".join(_MARKERS.sub("", raw).split())
        clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
        if not clean:
            continue
        valid = tuple(dict.fromkeys(n for n in numbers if 1 <= n <= n_passages))
        invalid = tuple(dict.fromkeys(n for n in numbers if not 1 <= n <= n_passages))
        out.append(ParsedSentence(clean, valid, invalid))
    return out
