"""The newsrag MCP server: search, cited answers and the documents of one index as tools and
resources for AI assistants, built with the official `mcp` SDK over an `Engine`.

It knows no transport: `rag mcp` serves it over stdio (`rag.cli.mcp`), `rag serve` mounts it at
`/mcp` over streamable HTTP behind the API's auth (`ui.mcp_http`). What a caller may do is the
transport's `Access`: on stdio the local user may do everything the server offers; over HTTP
the access token's role decides.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import quote

from mcp.server.mcpserver import Context, MCPServer, ResourceSecurity
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from rag.answer.timeline import TimelineBy
from rag.errors import PROJECT_ERRORS, RagError
from rag.mcp_server import render
from rag.mcp_server.schema import (
    AddOut,
    AnswerOut,
    ArticleIn,
    DocumentsOut,
    PassageOut,
    RemoveOut,
    SearchOut,
    TimelineOut,
)
from rag.types import Document, Filters
from rag.vocabulary import DATE_PATTERN, AnswerMode, RetrievalMode

if TYPE_CHECKING:
    from rag.engine import Engine

log = logging.getLogger(__name__)

DOCUMENT_URI = "newsrag://documents/{doc_id}"
"""The resource template of a document's text; the id is percent-encoded (it may hold `/`)."""
READ_TOOLS = ("search", "ask", "timeline", "list_documents", "get_passage")
WRITE_TOOLS = ("add_documents", "remove_document")
"""Offered only when writes are allowed (`rag mcp --allow-writes`, `rag serve
--mcp-allow-writes`), and over HTTP only to editors."""

INSTRUCTIONS = """\
newsrag answers questions from a news archive with verifiable citations, offline.
Use `ask` for an answer built from the sources: every sentence carries [n] markers, is
checked against the passages it cites (`supported`), and each citation n gives the exact
quote, its document, title, date and source. When you pass an answer on, keep the [n]
markers and give the quotes and dates; when `answerable` is false, say that the archive does
not answer the question rather than answering from memory. Use `timeline` for how the archive
reported on a subject over time, `search` for the raw passages, `get_passage` and the document
resources (newsrag://documents/ID) to read more of a source."""

_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

DateBound = Annotated[
    str | None,
    Field(
        pattern=DATE_PATTERN, description="ISO date, partial allowed: 2022, 2022-06, 2022-06-01."
    ),
]
Sources = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=1000)]] | None,
    Field(max_length=200, description="Only documents from these sources (exact match)."),
]
Languages = Annotated[
    list[Annotated[str, Field(min_length=2, max_length=12)]] | None,
    Field(max_length=20, description="Only documents in these languages (de, en, ...)."),
]


class AccessDenied(RagError):
    """The caller may not use this tool now (its role is too low, or it asked too often)."""


class Access(Protocol):
    """What the transport says about a caller. `request` is the transport's request (the
    Starlette request over HTTP; None on stdio)."""

    local_paths: bool
    """Whether `add_documents` may read paths on this machine (stdio: the user's own)."""

    def admit(self, request: Any, tool: str) -> str:
        """The caller's name (for the audit log); raises `AccessDenied` when refused."""
        ...

    def may_write(self, request: Any) -> bool:
        """Whether the caller may use the write tools (they are hidden otherwise)."""
        ...

    def record(self, who: str, action: str, **details: Any) -> None:
        """Note a write (the server's audit log)."""
        ...


class LocalAccess:
    """stdio: the user who started `rag mcp` is the only caller and may do all it offers."""

    local_paths = True

    def admit(self, request: Any, tool: str) -> str:
        return "local"

    def may_write(self, request: Any) -> bool:
        return True

    def record(self, who: str, action: str, **details: Any) -> None:
        log.info("%s by %s: %s", action, who, details)


def create_server(
    engine: Engine, *, allow_writes: bool = False, access: Access | None = None
) -> MCPServer:
    """The MCP server over `engine`: read-only tools, the document resources and, with
    `allow_writes`, `add_documents` and `remove_document` (for callers `access` lets write)."""
    access = access or LocalAccess()
    tools = NewsTools(engine, access)
    server: MCPServer = MCPServer(
        "newsrag",
        title="newsrag: news archive with cited answers",
        instructions=INSTRUCTIONS,
        version=_version(),
        log_level="WARNING",
    )
    for tool in (tools.search, tools.ask, tools.timeline, tools.list_documents, tools.get_passage):
        server.add_tool(tool, description=_described(tool), annotations=_READ_ONLY)
    server.resource(
        DOCUMENT_URI,
        name="document",
        title="A document's text",
        description="The whole text of one indexed document; every `start`/`end` offset of "
        "a hit, passage or citation indexes into it. doc_id is percent-encoded.",
        mime_type="text/plain",
        # An id is looked up in the index, never used as a path: it may hold `..` or `/`.
        security=ResourceSecurity(exempt_params=frozenset({"doc_id"})),
    )(tools.document_text)
    if allow_writes:
        server.add_tool(
            tools.add_documents,
            description=_described(tools.add_documents),
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True
            ),
        )
        server.add_tool(
            tools.remove_document,
            description=_described(tools.remove_document),
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True),
        )
        server.middleware.append(_WriteToolsFor(access))
    return server


def document_uri(doc_id: str) -> str:
    """The resource URI of a document's text."""
    return DOCUMENT_URI.replace("{doc_id}", quote(doc_id, safe=""))


class NewsTools:
    """The tools, over one Engine. Each runs in a worker thread of the SDK; the Engine is
    thread-safe. Project errors reach the caller as tool errors with their message."""

    def __init__(self, engine: Engine, access: Access) -> None:
        self.engine, self.access = engine, access

    def search(
        self,
        query: Annotated[str, Field(min_length=1, max_length=2000, description="What to find.")],
        k: Annotated[int | None, Field(ge=1, le=100, description="How many passages.")] = None,
        date_from: DateBound = None,
        date_to: DateBound = None,
        sources: Sources = None,
        languages: Languages = None,
        mode: Annotated[
            RetrievalMode | None,
            Field(description="dense, keyword or hybrid (default: the server's, hybrid)."),
        ] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, SearchOut]:
        """Find the passages of the news archive that best match `query` (German or English),
        best first. Each hit carries its citation metadata: chunk_id, doc_id, source, title,
        date (ISO, maybe partial; date_source "inferred" when read from the text) and the
        passage's character offsets start/end in its document. Dates filter by publication
        date (2022, 2022-06 or 2022-06-01; undated documents never match a date filter)."""
        self._admit(ctx, "search")
        filters = _filters(date_from, date_to, sources, languages)
        with _as_tool_errors():
            stages = self.engine.plan(mode).stages()
            hits = self.engine.search(query, k, filters, mode=mode)
        data = {"query": query, "stages": stages, "hits": [h.to_json() for h in hits]}
        return _result(render.render_hits(hits, stages), data)

    def ask(
        self,
        question: Annotated[str, Field(min_length=1, max_length=4000)],
        date_from: DateBound = None,
        date_to: DateBound = None,
        sources: Sources = None,
        languages: Languages = None,
        mode: Annotated[
            AnswerMode | None,
            Field(
                description="reader: a local language model finds the answering phrase and the "
                "answer quotes the source sentence that holds it (a few seconds); quote: the "
                "best source sentences verbatim (instant, no model); generate: a configured "
                "language model writes, every sentence support-checked. Default: the server's."
            ),
        ] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, AnswerOut]:
        """Answer `question` from the news archive only, with numbered citations. Returns the
        answer text with [n] markers; `sentences`, each with the citation numbers it rests on
        and `supported` (the support check's verdict; `problems` say why not); `citations`,
        each n with the exact `quote` (the document text from start to end), its `passage`,
        doc_id, title, date and source. `answerable` is false when the sources do not answer:
        then say so. Filters as in `search`."""
        self._admit(ctx, "ask")
        filters = _filters(date_from, date_to, sources, languages)
        with _as_tool_errors():
            answer = self.engine.ask(question, filters, mode=mode)
        return _result(render.render_answer(answer), answer.to_json())

    def timeline(
        self,
        query: Annotated[
            str, Field(min_length=1, max_length=2000, description="What the timeline is about.")
        ],
        by: Annotated[
            TimelineBy, Field(description="Group the articles by day, month or year.")
        ] = "month",
        k: Annotated[
            int | None,
            Field(ge=1, le=1000, description="Passages to retrieve (default 100)."),
        ] = None,
        date_from: DateBound = None,
        date_to: DateBound = None,
        sources: Sources = None,
        languages: Languages = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, TimelineOut]:
        """How the archive reported on `query` over time: the matching articles grouped by
        publication date (`groups`, oldest first; `undated` last), each entry an article's
        key sentence with its citation (exact quote, offsets, doc_id, title, date, source;
        date_source "inferred" when the date was read from the text), near-duplicate copies
        of one story collapsed (`n_sources` independent sources carried it). Filters as in
        `search`."""
        self._admit(ctx, "timeline")
        filters = _filters(date_from, date_to, sources, languages)
        with _as_tool_errors():
            timeline = self.engine.timeline(query, filters, by=by, k=k)
        return _result(render.render_timeline(timeline), timeline.to_json())

    def list_documents(
        self,
        offset: Annotated[int, Field(ge=0, description="Skip this many documents.")] = 0,
        limit: Annotated[int, Field(ge=1, le=1000, description="List at most this many.")] = 100,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, DocumentsOut]:
        """The indexed documents, by doc_id: source, title, date, language, number of
        passages and the URI of the document's text (a resource)."""
        self._admit(ctx, "list_documents")
        with _as_tool_errors():
            documents = self.engine.documents()
        shown = [
            {**d, "uri": document_uri(d["doc_id"])} for d in documents[offset : offset + limit]
        ]
        data = {"documents": shown, "total": len(documents), "offset": offset}
        return _result(render.render_documents(shown, len(documents), offset), data)

    def get_passage(
        self,
        chunk_id: Annotated[
            str, Field(min_length=1, max_length=200, description="A hit's or citation's chunk_id.")
        ],
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, PassageOut]:
        """One stored passage by its chunk_id: its text, its character offsets start/end in
        the document, and the document's metadata and resource URI."""
        self._admit(ctx, "get_passage")
        with _as_tool_errors():
            hit = self.engine.passage(chunk_id)
        if hit is None:
            raise ToolError(
                f"no passage with chunk_id {chunk_id!r} in the index; use a chunk_id from a "
                "search hit or an answer's citation"
            )
        data = {k: v for k, v in hit.to_json().items() if k not in ("rank", "score", "duplicates")}
        uri = document_uri(hit.doc_id)
        data |= {"page": hit.page, "url": hit.url, "uri": uri}
        return _result(render.render_passage(hit, uri), data)

    def document_text(self, doc_id: str) -> str:
        with _as_tool_errors():
            document = self.engine.document(doc_id)
        if document is None:
            raise ResourceNotFoundError(
                f"no document with id {doc_id!r}; list_documents shows the ids"
            )
        return str(document["text"])

    # ------------------------------------------------------------------------- writes
    def add_documents(
        self,
        articles: Annotated[
            list[ArticleIn],
            Field(max_length=500, description="Articles to index, each with its text and source."),
        ] = [],  # noqa: B006 - a default the SDK reads for the schema; never mutated
        paths: Annotated[
            list[Annotated[str, Field(min_length=1, max_length=4096)]],
            Field(
                max_length=1000,
                description="Files or folders on the machine running the server (stdio only): "
                ".txt .md .html .pdf .jsonl, as `rag index` reads them.",
            ),
        ] = [],  # noqa: B006
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, AddOut]:
        """Index articles, or (when the server runs on your machine) files, into the archive.
        An unchanged document costs nothing; one with the same id or source as an indexed one
        replaces it. Returns counts and each article or file that was not indexed."""
        who = self._admit(ctx, "add_documents")
        if bool(articles) == bool(paths):
            raise ToolError("give either `articles` (each with text and source) or `paths`")
        if paths and not self.access.local_paths:
            raise ToolError(
                "`paths` name files on the server's disk, which a remote caller may not read; "
                "send the articles' text in `articles` instead"
            )
        documents = [_document(a, n) for n, a in enumerate(articles, start=1)]
        with _as_tool_errors():
            report = self.engine.add(paths) if paths else self.engine.add_documents(documents)
        self.access.record(
            who,
            "add",
            sources=[d.source for d in documents] or list(paths),
            added=report.added,
            updated=report.updated,
            unchanged=report.unchanged,
            problems=len(report.problems),
        )
        return _result(render.render_report(report), report.to_json())

    def remove_document(
        self,
        doc_id: Annotated[str, Field(min_length=1, max_length=1000, description="Its doc_id.")],
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, RemoveOut]:
        """Remove one document (all its passages) from the archive."""
        who = self._admit(ctx, "remove_document")
        with _as_tool_errors():
            result = self.engine.remove([doc_id])
        if not result.removed:
            raise ToolError(f"no document with id {doc_id!r}; list_documents shows the ids")
        self.access.record(who, "remove", doc_ids=[doc_id], chunks=result.chunks_removed)
        data = {"removed": result.removed, "chunks_removed": result.chunks_removed}
        text = f"Removed document {doc_id} ({result.chunks_removed} passages)."
        return _result(text, data)

    def _admit(self, ctx: Context | None, tool: str) -> str:
        request = _request(ctx)
        try:
            who = self.access.admit(request, tool)
            if tool in WRITE_TOOLS and not self.access.may_write(request):
                raise AccessDenied(f"{tool} changes the archive, which this caller may not do")
        except AccessDenied as exc:
            raise ToolError(str(exc)) from None
        return who


class _WriteToolsFor:
    """Server middleware: lists the write tools only to callers who may write."""

    def __init__(self, access: Access) -> None:
        self.access = access

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        result = await call_next(ctx)
        if ctx.method != "tools/list" or self.access.may_write(ctx.request):
            return result
        if isinstance(result, BaseModel) and hasattr(result, "tools"):
            kept = [t for t in result.tools if t.name not in WRITE_TOOLS]
            return result.model_copy(update={"tools": kept})
        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            return {
                **result,
                "tools": [t for t in result["tools"] if t.get("name") not in WRITE_TOOLS],
            }
        return result


# ------------------------------------------------------------------------------ helpers
@contextmanager
def _as_tool_errors() -> Iterator[None]:
    """Turns a project error into a `ToolError` carrying its message (what to do), so the
    assistant reads it; any other exception stays a crash (its text stays in the log)."""
    try:
        yield
    except PROJECT_ERRORS as exc:
        raise ToolError(str(exc)) from None


def _described(tool: Any) -> str:
    """A tool's description: its docstring without the source's indentation."""
    return inspect.cleandoc(tool.__doc__ or "")


def _result(text: str, data: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def _request(ctx: Context | None) -> Any:
    if ctx is None:
        return None
    try:
        return ctx.request_context.request
    except ValueError:  # a Context outside a request
        return None


def _filters(
    date_from: str | None,
    date_to: str | None,
    sources: Sequence[str] | None,
    languages: Sequence[str] | None,
) -> Filters | None:
    filters = Filters(
        date_from=date_from,
        date_to=date_to,
        sources=tuple(sources or ()),
        languages=tuple(languages or ()),
    )
    return filters if filters.active() else None


def _document(article: ArticleIn, n: int) -> Document:
    """An article as a `Document`: the date read as `rag index` reads a JSONL line's, the
    language detected and the title guessed when not given; the id from the source."""
    from rag.ingest.decode import normalise_newlines
    from rag.ingest.metadata import Extracted, file_doc_id, normalise_date, to_document

    date = normalise_date(article.date) if article.date else None
    if article.date and date is None:
        raise ToolError(
            f"article {n}: unreadable date {article.date[:40]!r}; write it as YYYY, YYYY-MM or "
            "YYYY-MM-DD, or leave it out"
        )
    extracted = Extracted(
        text=normalise_newlines(article.text).strip(),
        title=article.title,
        date=date,
        url=article.url,
        language=article.language,
    )
    with _as_tool_errors():
        return to_document(
            extracted,
            doc_id=article.id or file_doc_id(article.source),
            source=article.source,
            fallback_title=article.source,
        )


def _version() -> str:
    try:
        return version("newsrag")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0"
