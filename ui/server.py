"""The HTTP API (FastAPI, under `/api/`) and, at `/`, the Gradio UI, both over one `Service`.

Interactive documentation is at `/docs`, the schema at `/openapi.json`.

Errors are JSON: `{"error": {"type": "<error class>", "message": "<what was wrong and what to
do>"}}` with 400 for bad input, 404 for an unknown document, 409 while the index is empty, 413
for an upload over the limits, 415 for a file type that cannot be indexed, 422 for a request
that does not match its schema (`error.details` lists each problem), 502 when the language model
backend fails, 503 while another process writes the index (with `Retry-After`), 500 otherwise
(the traceback goes to the server log, never to the client).

`POST /api/ask/stream` answers with Server-Sent Events (`text/event-stream`), each one
`event: <name>\\ndata: <JSON>\\n\\n`:

- `delta`:  `{"text": "..."}`: the next piece of the answer text, in order;
- `answer`: the finished answer, exactly as `POST /api/ask` returns it; always the last event
  of a stream that worked;
- `error`:  `{"error": {"type", "message"}}` when answering fails after the stream began
  (failures before it, such as an empty question, are ordinary error responses).

Search, ask and the stream take `"full": true` to add what the public shapes leave out (as the
JSON export keeps it, plus hits' exact scores and urls): `rag.client.Client` asks for it, so
it rebuilds hits and answers equal to the in-process `Engine`'s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from rag.answer.timeline import TimelineBy
from rag.answer.types import Answer, AnswerDelta, Turn
from rag.errors import (
    PROJECT_ERRORS,
    ConfigError,
    GeneratorError,
    IndexLockedError,
    IndexNotFoundError,
    IndexStoreError,
    IndexUsageError,
    IngestError,
    RagError,
)
from rag.export.answer_json import answer_record, hit_record
from rag.types import Filters, Hit
from rag.vocabulary import ANSWER_MODES, DATE_PATTERN, EXPORT_FORMATS, RetrievalMode
from ui.auth import SESSION_COOKIE, SESSION_SECONDS, Guard, Security
from ui.mcp_http import mcp_endpoint
from ui.service import (
    DocumentNotFoundError,
    MiB,
    Service,
    UnsupportedUploadError,
    UploadTooLargeError,
)

log = logging.getLogger(__name__)

API_VERSION = "1"
UPLOAD_PATH = "/api/documents"
MAX_JSON_BYTES = 16 * MiB
"""Largest JSON request body (an export of many answers with their passages is the biggest)."""

# The status of each project error; an error takes that of its nearest listed class.
_STATUS: dict[type[BaseException], int] = {
    DocumentNotFoundError: 404,
    IndexNotFoundError: 409,
    UploadTooLargeError: 413,
    UnsupportedUploadError: 415,
    IndexLockedError: 503,
    GeneratorError: 502,
    IngestError: 400,
    ConfigError: 400,
    IndexUsageError: 400,
    RagError: 500,
    IndexStoreError: 500,
}


# --------------------------------------------------------------------------------- requests
class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


DateBound = Annotated[
    str,
    Field(
        pattern=DATE_PATTERN,
        description="ISO date, partial allowed: 2022, 2022-06, 2022-06-01.",
        examples=["2022-06"],
    ),
]


class FiltersIn(_Request):
    """Restrict to documents by date, source or language (every given filter must match)."""

    date_from: DateBound | None = Field(None, description="Dated on or after (partial allowed).")
    date_to: DateBound | None = Field(None, description="Dated on or before (partial allowed).")
    sources: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list, max_length=200, description="Only these sources (exact match)."
    )
    languages: list[Annotated[str, Field(min_length=2, max_length=12)]] = Field(
        default_factory=list, max_length=20, description="Only these languages (e.g. de, en)."
    )

    def to_filters(self) -> Filters:
        return Filters(
            date_from=self.date_from,
            date_to=self.date_to,
            sources=tuple(self.sources),
            languages=tuple(self.languages),
        )


_FULL = (
    "Also return what the public shape leaves out (exact scores; hits' page, language, url and "
    "duplicates' chunk ids; answers' evidence and sentences' similarity), for `rag.client`."
)


class SearchIn(_Request):
    query: str = Field(min_length=1, max_length=2000, examples=["Was sagte Stoltenberg?"])
    k: int | None = Field(None, ge=1, le=1000, description="Hits to return (default: settings).")
    filters: FiltersIn | None = None
    mode: RetrievalMode | None = Field(
        None, description="Retrieval mode (default: the settings', hybrid)."
    )
    rerank: bool | None = Field(None, description="Second-stage reranking (default: settings).")
    full: bool = Field(False, description=_FULL)


class TimelineIn(_Request):
    """The query string of `GET /api/timeline` (`source` and `language` repeat)."""

    q: str = Field(min_length=1, max_length=2000, examples=["Stoltenberg Verhandlungen"])
    by: TimelineBy = Field("month", description="Group by the day, month or year of the date.")
    k: int | None = Field(None, ge=1, le=1000, description="Passages to retrieve (default 100).")
    min_score: float | None = Field(
        None, ge=-3, le=3, description="Key-sentence score an article needs (default: settings)."
    )
    date_from: DateBound | None = Field(None, description="Dated on or after (partial allowed).")
    date_to: DateBound | None = Field(None, description="Dated on or before (partial allowed).")
    source: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list, max_length=200, description="Only these sources (repeatable)."
    )
    language: list[Annotated[str, Field(min_length=2, max_length=12)]] = Field(
        default_factory=list, max_length=20, description="Only these languages (repeatable)."
    )

    def to_filters(self) -> Filters:
        return Filters(self.date_from, self.date_to, tuple(self.source), tuple(self.language))


class TurnIn(_Request):
    question: str = Field(max_length=4000)
    answer: str = Field("", max_length=20000)


class _Conversation(_Request):
    filters: FiltersIn | None = None
    history: list[TurnIn] = Field(
        default_factory=list, max_length=50, description="Earlier turns, oldest first."
    )
    # A plain string, so an unknown mode is a 400 that lists the modes this server offers.
    mode: str | None = Field(
        None,
        max_length=40,
        description=f"Answer mode: {' or '.join(ANSWER_MODES)} (GET /api/info: answer_modes).",
        json_schema_extra={"enum": [*ANSWER_MODES, None]},
    )

    def turns(self) -> list[Turn]:
        return [Turn(t.question, t.answer) for t in self.history]


class AskIn(_Conversation):
    question: str = Field(min_length=1, max_length=4000, examples=["Was sagte Stoltenberg?"])
    full: bool = Field(False, description=_FULL)


class ExportIn(_Conversation):
    """Either `answers` (as `POST /api/ask` returned them) or a `question` to answer first."""

    format: str = Field(
        min_length=1,
        max_length=20,
        description=f"Export format: {', '.join(EXPORT_FORMATS)}.",
        json_schema_extra={"enum": list(EXPORT_FORMATS)},
    )
    answers: list[dict[str, Any]] | None = Field(None, min_length=1, max_length=200)
    question: str | None = Field(None, min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _one_source(self) -> ExportIn:
        if (self.answers is None) == (self.question is None):
            raise ValueError("give either 'answers' (a list of answers) or a 'question'")
        return self


def _filters(filters: FiltersIn | None) -> Filters | None:
    return filters.to_filters() if filters is not None else None


# ------------------------------------------------------------------------------------ app
def create_app(
    service: Service,
    *,
    with_ui: bool = True,
    security: Security | None = None,
    mcp_writes: bool = False,
) -> FastAPI:
    """The FastAPI app: the API under `/api/`, the MCP endpoint at `/mcp` (`ui.mcp_http`;
    its write tools only with `mcp_writes`), the Gradio UI at `/` (unless `with_ui=False`,
    or while `ui.app` does not exist: then `/` leads to the API docs). `security` (default:
    no tokens; Host and Origin checked) is enforced on every request by `ui.auth.Guard`."""
    security = security or Security()
    mcp = mcp_endpoint(
        service.engine, security, allow_writes=mcp_writes, max_body_bytes=MAX_JSON_BYTES
    )
    app = FastAPI(
        title="newsrag",
        version=API_VERSION,
        summary="Question answering over news archives, with citations. Runs offline.",
        description=__doc__,
        lifespan=mcp.lifespan,  # the MCP session manager runs while the app does
    )
    service.audit = security.audit
    app.state.security = security
    _add_error_handlers(app)
    app.add_middleware(_BodyLimit, upload_limit=service.max_total_bytes)
    app.add_middleware(Guard, security=security)  # added last: runs first
    _add_routes(app, service)
    app.router.routes.append(mcp.route)  # before the UI's mount at "/", which takes the rest
    if security.auth_on:
        _add_login(app, security)
    blocks = _build_ui(service, security) if with_ui else None
    if blocks is None:

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/docs")

        return app
    import gradio as gr

    # System fonts only: the default theme pulls web fonts from the internet, which an offline
    # machine cannot reach (the page then waits for them and falls back anyway).
    theme = gr.themes.Default(
        font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"],
    )
    app = gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        theme=theme,
        max_file_size=service.max_upload_bytes,
        # The Guard has checked the token or session already; Gradio learns the name (its
        # handlers check the role for writes through `gr.Request.username`).
        auth_dependency=_principal_name if security.auth_on else None,
    )
    # Gradio checks that a file a client names in an event is one it uploaded only once the
    # app "has launched", which `launch()` sets and `mount_gradio_app` does not: without this
    # a client could name any server path and have it copied in and indexed.
    blocks.has_launched = True
    return app


def _build_ui(service: Service, security: Security) -> Any:
    try:
        from ui.app import build_ui
    except ModuleNotFoundError as exc:
        if exc.name != "ui.app":
            raise
        log.warning("ui.app is not there yet: serving the API only")
        return None
    return build_ui(service, security)


def _add_routes(app: FastAPI, service: Service) -> None:
    @app.get("/api/health", tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness: answers at once, without waiting for a running search or answer."""
        return {"status": "ok"}

    @app.get("/api/info", tags=["service"])
    def info() -> dict[str, Any]:
        """The index (counts, embedder, chunking, size), answer modes and upload limits."""
        return service.info()

    @app.post("/api/search", tags=["search"])
    def search(body: SearchIn) -> dict[str, Any]:
        """The passages that best match `query`; the same JSON as `rag search --json`:
        `{"query", "stages", "hits": [{"rank", "score", "chunk_id", "doc_id", "source",
        "title", "date", "text", "start", "end", "duplicates"}]}`."""
        filters = _filters(body.filters)
        stages = service.stages(body.mode, body.rerank)
        hits = service.search(body.query, body.k, filters, body.mode, body.rerank)
        encode = hit_record if body.full else Hit.to_json
        return {"query": body.query, "stages": stages, "hits": [encode(h) for h in hits]}

    @app.get("/api/timeline", tags=["search"])
    def timeline(params: Annotated[TimelineIn, Query()]) -> dict[str, Any]:
        """The articles matching `q` grouped by date, oldest first, then the undated; each
        entry a key sentence with its citation, copies of one story collapsed. The same JSON
        as `rag timeline --json` (`rag.answer.timeline`): `{"query", "by", "n_articles",
        "n_entries", "groups": [{"period", "n_articles", "entries": [{"date", "date_source",
        "sentence", "score", "n_sources", "n_articles", "citation", "duplicates"}]}],
        "undated": {...}, "retrieval"}`."""
        found = service.timeline(
            params.q, params.to_filters(), params.by, params.k, params.min_score
        )
        return found.to_json()

    @app.post("/api/ask", tags=["answer"])
    def ask(body: AskIn) -> dict[str, Any]:
        """An answer with citations: `Answer.to_json()` (see `rag.answer.types`)."""
        filters = _filters(body.filters)
        answer = service.ask(body.question, filters, body.turns(), body.mode)
        return answer_record(answer) if body.full else answer.to_json()

    @app.post(
        "/api/ask/stream",
        tags=["answer"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    def ask_stream(body: AskIn) -> StreamingResponse:
        """The answer as Server-Sent Events: `delta` events (`{"text"}`), then one `answer`
        event (as `POST /api/ask`), or an `error` event if it fails midway."""
        filters = _filters(body.filters)
        stream = service.ask_stream(body.question, filters, body.turns(), body.mode)
        first = next(stream, None)  # bad input fails here, as an ordinary error response
        if first is None:
            raise RagError("the answer stream ended without an answer")
        return StreamingResponse(
            _sse(first, stream, full=body.full),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/api/documents", tags=["documents"])
    def documents() -> dict[str, Any]:
        """Every document: `{"documents": [{"doc_id", "source", "title", "date", "language",
        "n_chunks"}]}`."""
        return {"documents": service.documents()}

    @app.post("/api/documents", tags=["documents"])
    async def upload(
        files: Annotated[list[UploadFile], File(description="One or more files to index.")],
        request: Request,
    ) -> dict[str, Any]:
        """Index uploaded files (.txt .md .html .pdf .jsonl); returns the add report:
        `{"files", "documents", "added", "updated", "unchanged", "chunks", "seconds",
        "problems": [{"source", "line", "message"}]}`. A document's `source` is its file name;
        uploading a file of the same name again replaces it."""
        items = [(f.filename or "upload", await _read_limited(f, service)) for f in files]
        who = _principal_name(request) or "anonymous"
        report = await run_in_threadpool(lambda: service.upload(items, who=who))
        return report.to_json()

    @app.delete("/api/documents/{doc_id:path}", tags=["documents"])
    def remove(doc_id: str, request: Request) -> dict[str, Any]:
        """Remove one document (its id may hold `/`); 404 when no document has this id."""
        result = service.remove_document(doc_id, who=_principal_name(request) or "anonymous")
        return {"removed": result.removed, "chunks_removed": result.chunks_removed}

    @app.post("/api/export", tags=["answer"])
    def export(body: ExportIn) -> Response:
        """Answers as a file to download (`format`: see the export module), from `answers` as
        `POST /api/ask` returned them, or from a `question` answered first."""
        if body.question is not None:
            filters = _filters(body.filters)
            answers = [service.ask(body.question, filters, body.turns(), body.mode)]
        else:
            answers = body.answers or []
        exported = service.export(answers, body.format)
        return Response(
            content=exported.data,
            media_type=exported.media_type,
            headers={"Content-Disposition": _attachment(exported.filename)},
        )

    @app.api_route(
        "/api/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    def unknown(rest: str, request: Request) -> JSONResponse:
        """Any other /api/ path: 404 in the documented error shape (not Gradio's)."""
        message = f"no endpoint {request.method} /api/{rest}; the endpoints are listed at /docs"
        return JSONResponse({"error": {"type": "NotFound", "message": message}}, status_code=404)


def _principal_name(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.name if principal is not None else None


_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>newsrag: log in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:12vh auto;padding:0 1rem}}
input{{width:100%;padding:.5rem;margin:.4rem 0 1rem;box-sizing:border-box}}
button{{padding:.5rem 1.2rem}}.err{{color:#b91c1c}}</style></head><body>
<h1>newsrag</h1><p>This server needs an access token. An admin creates one with
<code>rag tokens create NAME --role reader</code>.</p>{message}
<form method="post" action="/login"><label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form></body></html>"""


def _add_login(app: FastAPI, security: Security) -> None:
    """`/login` (a form for the token; a session cookie on success) and `/logout`."""
    from fastapi.responses import HTMLResponse

    @app.get("/login", include_in_schema=False)
    def login_page() -> HTMLResponse:
        return HTMLResponse(_LOGIN_PAGE.format(message=""))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("token") or "")
        principal = security.store.verify(token) if security.store is not None else None
        if principal is None or security.sessions is None:
            log.warning("failed login from %s", request.client.host if request.client else "?")
            refused = '<p class="err" role="alert">Unknown or revoked token.</p>'
            page = _LOGIN_PAGE.format(message=refused)
            return HTMLResponse(page, status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            security.sessions.open(principal),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        session = request.cookies.get(SESSION_COOKIE)
        if session and security.sessions is not None:
            security.sessions.close(session)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response


async def _read_limited(upload: UploadFile, service: Service) -> bytes:
    """The file's bytes, reading at most one byte over the limit (the service names the error)."""
    return await upload.read(service.max_upload_bytes + 1)


def _sse(
    first: AnswerDelta | Answer,
    rest: Generator[AnswerDelta | Answer, None, None],
    *,
    full: bool = False,
) -> Generator[str, None, None]:
    try:
        yield _event(first, full)
        for item in rest:
            yield _event(item, full)
    except Exception as exc:
        log.warning("streamed answer failed: %s", exc, exc_info=not isinstance(exc, PROJECT_ERRORS))
        yield _sse_line("error", _error_body(exc))
    finally:
        rest.close()  # stops the worker early when the client went away


def _event(item: AnswerDelta | Answer, full: bool = False) -> str:
    if isinstance(item, AnswerDelta):
        return _sse_line("delta", {"text": item.text})
    return _sse_line("answer", answer_record(item) if full else item.to_json())


def _sse_line(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _attachment(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


# ---------------------------------------------------------------------------------- errors
def _status(exc: BaseException) -> int:
    return next((_STATUS[c] for c in type(exc).__mro__ if c in _STATUS), 500)


def _error_body(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, PROJECT_ERRORS):
        return {"error": {"type": type(exc).__name__, "message": str(exc)}}
    return {"error": {"type": "InternalError", "message": "internal error; see the server log"}}


def _add_error_handlers(app: FastAPI) -> None:
    async def project_error(request: Request, exc: Exception) -> JSONResponse:
        status = _status(exc)
        log.log(logging.ERROR if status >= 500 else logging.INFO, "%s: %s", request.url.path, exc)
        headers = {"Retry-After": "5"} if status == 503 else None
        return JSONResponse(_error_body(exc), status_code=status, headers=headers)

    for base in PROJECT_ERRORS:
        app.add_exception_handler(base, project_error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        body = {"error": {"type": "ValidationError", "message": message, "details": details}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {"error": {"type": "HTTPError", "message": str(exc.detail)}}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # The ASGI server logs the traceback (Starlette re-raises after this response).
        return JSONResponse(_error_body(exc), status_code=500)


class _BodyTooLarge(Exception):
    """Raised into the app by `_BodyLimit` when a body grows past its limit while read."""


class _BodyLimit:
    """Refuses an API request whose body is over its limit: uploads up to the service's total
    upload limit, JSON requests up to `MAX_JSON_BYTES`. A declared `Content-Length` over it is
    refused before reading; a body without one (chunked) is counted while it is read and cut
    off at the limit, so no more than the limit is ever spooled or held."""

    def __init__(self, app: ASGIApp, upload_limit: int) -> None:
        self.app = app
        # Multipart framing adds a little per file on top of the files themselves.
        self.upload_limit = upload_limit + MiB

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        limit = self.upload_limit if path == UPLOAD_PATH else MAX_JSON_BYTES
        if length.isdigit() and int(length) > limit:
            await self._refuse(scope, receive, send, path, int(length), limit)
            return
        seen = 0
        started = exceeded = False

        async def counted() -> Any:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def sending(message: Any) -> None:
            nonlocal started
            if exceeded:  # the app answers its failed read (FastAPI: 400): answer 413 instead
                if not started and message["type"] == "http.response.start":
                    started = True
                    await self._refuse(scope, receive, send, path, seen, limit, counted=True)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except _BodyTooLarge:
            if not started:
                started = True
                await self._refuse(scope, receive, send, path, seen, limit, counted=True)
        if exceeded:
            log.warning("refused %s: the body passed %d bytes while being read", path, limit)

    @staticmethod
    async def _refuse(
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str,
        size: int,
        limit: int,
        counted: bool = False,
    ) -> None:
        what = "upload" if path == UPLOAD_PATH else "request"
        size_text = f"more than {limit:,}" if counted else f"{size:,}"
        body = {
            "error": {
                "type": "UploadTooLargeError" if path == UPLOAD_PATH else "RequestTooLarge",
                "message": f"the {what} is {size_text} bytes, over the limit of {limit:,} "
                "bytes; send less at a time",
            }
        }
        # A body cut off while streaming cannot be drained: the connection ends with the answer.
        # One refused by its declared length is left to the server to discard, so the client
        # can finish sending and read the 413 instead of a reset connection.
        headers = {"Connection": "close"} if counted else None
        await JSONResponse(body, status_code=413, headers=headers)(scope, receive, send)
