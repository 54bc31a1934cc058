"""The cited documents of answers as a bibliography: BibTeX (written with pybtex) and CSL-JSON.

One entry per cited document, deduplicated across answers, in order of first citation. Keys
are stable: the outlet (the URL's host), the year and the title's first word ("spiegel2022oelpreis",
"gaspreise2022" without an outlet), with a piece of the document id added only when two
documents would share a key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any
from urllib.parse import quote, urlsplit

from rag.answer.types import Answer
from rag.errors import ConfigError
from rag.export.render import ascii_slug

NOTE = "newsrag source: {source}"
_DATE = re.compile(r"^\s*(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?(?:$|[T\s])")


@dataclass(frozen=True)
class CitedSource:
    """A document cited by at least one answer, with its bibliography key."""

    key: str
    doc_id: str
    source: str
    title: str | None
    date: str | None
    url: str | None

    @property
    def container(self) -> str | None:
        """The outlet, as far as it is known: the host of the article's URL."""
        if not self.url:
            return None
        host = (urlsplit(self.url).hostname or "").removeprefix("www.")
        return host or None


def date_parts(date: str | None) -> tuple[int, ...] | None:
    """(year,), (year, month) or (year, month, day) of an ISO-like, possibly partial date;
    None when it is not one."""
    m = _DATE.match(date or "")
    if not m:
        return None
    parts = tuple(int(p) for p in m.groups() if p is not None)
    if len(parts) > 1 and not 1 <= parts[1] <= 12:
        return parts[:1]
    if len(parts) > 2 and not 1 <= parts[2] <= 31:
        return parts[:2]
    return parts


def cited_sources(answers: Sequence[Answer]) -> list[CitedSource]:
    """Every document the answers cite, once, in order of first citation, with unique keys."""
    found: dict[str, CitedSource] = {}
    for answer in answers:
        for c in sorted(answer.citations, key=lambda c: c.n):
            seen = found.get(c.doc_id)
            if seen is None:
                found[c.doc_id] = CitedSource("", c.doc_id, c.source, c.title, c.date, c.url)
            else:  # fill what an earlier citation of the same document lacked
                found[c.doc_id] = replace(
                    seen,
                    title=seen.title or c.title,
                    date=seen.date or c.date,
                    url=seen.url or c.url,
                )
    sources = list(found.values())
    keys = _keys(sources)
    return [replace(s, key=k) for s, k in zip(sources, keys)]


def _base_key(s: CitedSource) -> str:
    outlet = ascii_slug((s.container or "").split(".")[0]).replace("-", "")
    parts = date_parts(s.date)
    year = str(parts[0]) if parts else ""
    words = [w for w in ascii_slug(s.title or "").split("-") if len(w) > 3 or w.isdigit()]
    word = words[0] if words else ascii_slug(PurePath(s.source).stem).replace("-", "")[:20]
    key = f"{outlet}{year}{word}" if outlet else f"{word}{year}"
    return key[:48] or "source"


def _keys(sources: list[CitedSource]) -> list[str]:
    """Base keys; where several documents share one, each gets a piece of its document id."""
    bases = [_base_key(s) for s in sources]
    keys, used = [], set()
    for s, base in zip(sources, bases):
        key = base
        if bases.count(base) > 1:
            key = f"{base}-{re.sub(r'[^a-z0-9]', '', s.doc_id.lower())[:8] or 'doc'}"
        while key in used:
            key += "x"
        used.add(key)
        keys.append(key)
    return keys


def to_csl(answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """CSL-JSON items (type article-newspaper) of the cited documents."""
    items = []
    for s in cited_sources(answers):
        item: dict[str, Any] = {"id": s.key, "type": "article-newspaper"}
        if s.title:
            item["title"] = s.title
        parts = date_parts(s.date)
        if parts:
            item["issued"] = {"date-parts": [list(parts)]}
        elif s.date:
            item["issued"] = {"raw": s.date}
        if s.container:
            item["container-title"] = s.container
        if s.url:
            item["URL"] = s.url
        item["note"] = NOTE.format(source=s.source)
        items.append(item)
    return items


def csl_json(answers: Sequence[Answer]) -> str:
    return json.dumps(to_csl(answers), ensure_ascii=False, indent=2) + "\n"


# ------------------------------------------------------------------------------ BibTeX
# pybtex's writer escapes % & # _ ~ (and keeps Unicode as UTF-8); the characters it leaves
# alone because they are LaTeX markup are plain text here, so they are escaped first.
_LATEX = {
    "\\": r"\textbackslash{}",
    "{": r"\textbraceleft{}",
    "}": r"\textbraceright{}",
    "$": r"\$",
    "^": r"\textasciicircum{}",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX))


def latex_text(text: str) -> str:
    """Plain text as the LaTeX pybtex expects in a field (before its own escaping)."""
    return _LATEX_RE.sub(lambda m: _LATEX[m.group()], " ".join(text.split()))


def bibtex(answers: Sequence[Answer]) -> str:
    """A BibTeX database (type article) of the cited documents, UTF-8."""
    try:
        from pybtex.database import BibliographyData, Entry
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError("BibTeX export needs pybtex: pip install pybtex") from exc
    entries = {}
    for s in cited_sources(answers):
        fields: dict[str, str] = {}
        if s.title:  # the inner braces keep the title's capitals (German nouns) as written
            fields["title"] = "{" + latex_text(s.title) + "}"
        if s.container:
            fields["journal"] = latex_text(s.container)
        parts = date_parts(s.date)
        if parts:
            fields["year"] = str(parts[0])
        if parts and len(parts) > 1:
            fields["month"] = str(parts[1])
        if s.url:
            fields["url"] = s.url
        fields["note"] = latex_text(NOTE.format(source=s.source))
        entries[s.key] = Entry("article", fields=fields)
    if not entries:
        return "% newsrag: the exported answers cite no sources\n"
    return _writer().to_string(BibliographyData(entries=entries))


def _writer() -> Any:
    from pybtex.database.output.bibtex import Writer

    class _Writer(Writer):  # type: ignore[misc]
        """URLs are verbatim in BibTeX (the url package, biblatex): write them unescaped,
        percent-encoding only what would break the field."""

        def _write_field(self, stream: Any, type: str, value: str) -> None:
            if type.lower() != "url":
                return super()._write_field(stream, type, value)
            stream.write(f",\n    {type} = {self.quote(safe_url(value))}")

    return _Writer(encoding="UTF-8")


def safe_url(url: str) -> str:
    """`url` with spaces, quotes, braces, backslashes and non-ASCII percent-encoded."""
    return quote(url.strip(), safe="!#$%&'()*+,-./:;=?@[]_~")
