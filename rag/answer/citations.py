"""Citation markers in written answers: `[n]` parsed back to passage numbers.

A model writes "Die USA lieferten HIMARS [1][3]." or "... [1, 3]."; markers after the final
period ("Satz. [2]") belong to the sentence before them, markers standing alone before the first
sentence ("[2]\n\nSatz.") to that sentence. Numbers that match no passage are
dropped, and the sentence says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

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
    start: int = 0
    end: int = 0
    """Where the sentence, markers included, stands in the parsed text."""
    inherited: bool = False
    """The sentence had no markers; its paragraph's closing markers apply to it."""


def _numbers(marked: str) -> list[int]:
    return [int(n) for m in _MARKERS.finditer(marked) for n in re.split(r"\s*[,;]\s*", m.group(1))]


def parse_answer(text: str, n_passages: int, language: str | None = None) -> list[ParsedSentence]:
    """Split a written answer into sentences and their citation numbers. A sentence without
    markers takes those that close its paragraph ("Satz eins. Satz zwei. [1]")."""
    spans: list[list[int]] = []  # [start, end] of each sentence with its markers
    pending: int | None = None  # start of markers standing alone before a sentence
    for s, e in split_sentences(text, language):
        lead = _LEADING.match(text[s:e])
        if lead and spans:
            spans[-1][1] = s + lead.end()
            s += lead.end()
        elif lead and not text[s + lead.end() : e].strip():
            pending = s if pending is None else pending
            continue
        if text[s:e].strip():
            spans.append([pending if pending is not None else s, e])
            pending = None
    out: list[ParsedSentence] = []
    for start, end in spans:
        raw = text[start:end]
        numbers = _numbers(raw)
        clean = " ".join(_MARKERS.sub("", raw).split())
        clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
        if not clean:
            continue
        valid = tuple(dict.fromkeys(n for n in numbers if 1 <= n <= n_passages))
        invalid = tuple(dict.fromkeys(n for n in numbers if not 1 <= n <= n_passages))
        out.append(ParsedSentence(clean, valid, invalid, start, end))
    return _inherit(out, text)


def _inherit(sentences: list[ParsedSentence], text: str) -> list[ParsedSentence]:
    """Sentences without markers take the markers closing their paragraph (a line break
    ends a paragraph)."""
    out = list(sentences)
    paragraph: list[int] = []
    for i, sentence in enumerate([*sentences, None]):
        ends = sentence is None or (
            bool(paragraph) and "\n" in _gap(text, out[paragraph[-1]], sentence)
        )
        if ends and paragraph:
            last = out[paragraph[-1]]
            if last.citations:
                for j in paragraph[:-1]:
                    if not out[j].citations and not out[j].invalid:
                        out[j] = replace(out[j], citations=last.citations, inherited=True)
            paragraph = []
        if sentence is not None:
            paragraph.append(i)
    return out


def _gap(text: str, before: ParsedSentence, after: ParsedSentence) -> str:
    """The text between two sentences, with the whitespace that begins the second."""
    raw = text[after.start : after.end]
    return text[before.end : after.start] + raw[: len(raw) - len(raw.lstrip())]


def recite(
    text: str, sentences: Sequence[ParsedSentence], numbers: Mapping[int, tuple[int, ...]]
) -> str:
    """`text` with the markers of the sentences that start at the keys of `numbers` replaced
    by those numbers (put before the sentence's closing punctuation)."""
    out = text
    for p in sorted(sentences, key=lambda p: -p.start):
        if p.start not in numbers:
            continue
        segment = _MARKERS.sub("", text[p.start : p.end]).rstrip()
        marks = "".join(f"[{n}]" for n in numbers[p.start])
        body = segment.rstrip(".!?")
        segment = f"{body} {marks}{segment[len(body) :]}"
        out = out[: p.start] + segment + out[p.end :]
    return out
