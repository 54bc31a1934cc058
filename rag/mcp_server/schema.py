"""The MCP tools' output schemas (`outputSchema`) and the write tool's input.

The data itself always comes from the project's own encoders (`Hit.to_json`, `Answer.to_json`,
`AddReport.to_json`, `Engine.documents`): these models only describe those shapes, field by
field, for an assistant to read, and the SDK checks every result against them. They allow
extra keys, so a field added to a public JSON shape never breaks the tools.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class DuplicateOut(_Out):
    doc_id: str
    source: str
    title: str | None
    date: str | None


class HitOut(_Out):
    """One retrieved passage with its citation metadata (as `rag search --json`)."""

    rank: int = Field(description="1 = best match.")
    score: float = Field(
        description="Orders the hits; its scale depends on the last retrieval stage "
        "(reranked: 0-2; dense only: cosine; keyword only: BM25)."
    )
    chunk_id: str = Field(description="The passage's id (get_passage takes it).")
    doc_id: str = Field(description="The document's id (its resource: newsrag://documents/ID).")
    source: str = Field(description="Where the document came from: a file path or URL.")
    title: str | None
    date: str | None = Field(description="Publication date, ISO, possibly partial (2022-06).")
    date_source: str | None = Field(
        description='"inferred" when the date was read from the article text, not its metadata.'
    )
    text: str = Field(description="The passage text.")
    start: int = Field(description="Offset of the passage in the document text (characters).")
    end: int = Field(description="End offset of the passage in the document text.")
    duplicates: list[DuplicateOut] = Field(
        description="Other documents carrying nearly the same passage (the same wire story)."
    )


class SearchOut(_Out):
    query: str
    stages: list[str] = Field(description="The retrieval stages that ran, in order.")
    hits: list[HitOut] = Field(description="The passages, best first.")


class SentenceOut(_Out):
    text: str
    citations: list[int] = Field(description="The numbers n of the citations this sentence cites.")
    supported: bool = Field(
        description="The support check's verdict: every number, month and name of the sentence "
        "stands in a passage it cites, and it is close in meaning to a sentence there."
    )
    problems: list[str] = Field(description="Why the sentence is not supported (empty if it is).")
    repaired_from: list[int] = Field(
        description="The numbers the model first cited, when another passage supports the "
        "sentence instead (empty when nothing was re-cited)."
    )


class CitationOut(_Out):
    n: int = Field(description="The citation number, as [n] in the answer text.")
    chunk_id: str
    doc_id: str
    source: str
    title: str | None
    date: str | None = Field(description="Publication date, ISO, possibly partial.")
    date_source: str | None = Field(description='"inferred" when read from the article text.')
    quote: str = Field(
        description="The exact words of the source: the document text from start to end."
    )
    start: int = Field(description="Offset of the quote in the document text (characters).")
    end: int
    passage: str = Field(description="The retrieved passage the quote lies in (context).")
    passage_start: int = Field(description="Offset of that passage in the document text.")
    page: int | None = Field(description="PDF page of the quote, when known.")
    url: str | None


class PhraseOut(_Out):
    text: str = Field(description="The answering phrase, exactly as it stands in the source.")
    n: int = Field(description="The citation it stands in.")
    start: int
    end: int


class AnswerOut(_Out):
    """The answer JSON of `rag ask --json` and `POST /api/ask`."""

    question: str
    answer: str = Field(description="The answer text with [n] citation markers.")
    answerable: bool = Field(
        description="False when the sources do not answer the question: then `answer` says "
        "so, `citations` is empty and `passages` holds the nearest passages."
    )
    mode: str = Field(description="reader, quote or generate (see the ask tool).")
    model: str | None = Field(description="The language model used, if any.")
    language: str = Field(description="Language of the answer (ISO 639-1).")
    sentences: list[SentenceOut]
    citations: list[CitationOut]
    passages: list[HitOut] = Field(description="The retrieved passages, best first.")
    retrieval: dict[str, Any] = Field(description="Retrieval settings and stages used.")
    standalone_question: str | None
    phrase: PhraseOut | None = Field(description="Reader answers: the answering phrase.")


class DocumentOut(_Out):
    doc_id: str
    source: str
    title: str | None
    date: str | None
    language: str | None
    n_chunks: int = Field(description="How many passages the document was split into.")
    uri: str = Field(description="The document's resource URI (its full text).")


class DocumentsOut(_Out):
    documents: list[DocumentOut]
    total: int = Field(description="How many documents the index holds.")
    offset: int = Field(description="Index of the first document listed here.")


class PassageOut(_Out):
    chunk_id: str
    doc_id: str
    source: str
    title: str | None
    date: str | None
    date_source: str | None
    text: str = Field(description="The passage text: the document text from start to end.")
    start: int = Field(description="Offset of the passage in the document text (characters).")
    end: int
    page: int | None
    url: str | None
    uri: str = Field(description="The document's resource URI (its full text).")


class ProblemOut(_Out):
    source: str
    line: int | None
    message: str = Field(description="What was wrong and what to do.")


class AddOut(_Out):
    """The add report of `rag index --json` and `POST /api/documents`."""

    files: int
    documents: int = Field(description="Documents read.")
    added: int
    updated: int = Field(description="Documents that replaced an older version.")
    unchanged: int = Field(description="Documents already indexed as they are (no work).")
    chunks: int = Field(description="Passages written.")
    seconds: float
    problems: list[ProblemOut] = Field(description="Files or articles that were not indexed.")


class RemoveOut(_Out):
    removed: int
    chunks_removed: int


class ArticleIn(BaseModel):
    """One article to index (the write tool's input)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2_000_000, description="The article's body text.")
    source: str = Field(
        min_length=1,
        max_length=1000,
        description="Where the article comes from (a URL or a name); adding an article with "
        "the same source (and no id) again replaces it.",
    )
    title: str | None = Field(None, max_length=1000)
    date: str | None = Field(
        None, max_length=64, description="Publication date: 2022, 2022-06 or 2022-06-01."
    )
    url: str | None = Field(None, max_length=2000)
    language: str | None = Field(
        None, min_length=2, max_length=12, description="ISO 639-1 (detected when left out)."
    )
    id: str | None = Field(
        None, min_length=1, max_length=200, description="Document id (default: from source)."
    )


class TimelineEntryOut(_Out):
    date: str | None
    date_source: str | None
    sentence: str = Field(description="The article's key sentence: its citation's exact quote.")
    score: float = Field(description="How well the sentence matches the query (higher: better).")
    n_sources: int = Field(description="Independent sources that carried this story.")
    n_articles: int = Field(description="This article and its near-duplicate copies.")
    citation: CitationOut
    duplicates: list[DuplicateOut] = Field(description="The copies collapsed into this entry.")


class TimelineGroupOut(_Out):
    period: str | None = Field(description="2022, 2022-06 or 2022-06-01; null: undated.")
    n_articles: int
    entries: list[TimelineEntryOut]


class TimelineOut(_Out):
    """The timeline JSON of `rag timeline --json` and `GET /api/timeline`."""

    query: str
    by: str = Field(description="day, month or year: how the articles are grouped.")
    n_articles: int
    n_entries: int
    groups: list[TimelineGroupOut] = Field(description="The dated periods, oldest first.")
    undated: TimelineGroupOut = Field(description="The articles without a date.")
    retrieval: dict[str, Any]
