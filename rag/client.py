"""`Client`: the `Engine`'s reading methods, answered by a running `rag serve` over HTTP.

    engine = Engine.open("my-index")                      # in-process, or:
    engine = Client("http://127.0.0.1:7860", token=TOKEN)  # a running server
    hits = engine.search("Was sagte Stoltenberg?", 5)

The methods take the `Engine`'s arguments and return its frozen dataclasses (`Hit`, `Answer`,
`AnswerDelta`, `Timeline`, `Export`), equal to what the `Engine` returns over the server's index
and settings (timeline scores rounded to 6 decimals, as the API gives them). A server's error
becomes the error the `Engine` raises (`ConfigError`, `IndexNotFoundError`, `GeneratorError`,
`IndexLockedError`, ...) with the server's message; what has no in-process counterpart is a
`ServerError`: `AccessDeniedError` (no token, or one without the role),
`ServerUnavailableError` (nothing listening, no answer in time).

Importing this module loads no model and no UI: it needs httpx and the dataclasses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote

import httpx

from rag.answer.types import Answer, AnswerDelta, Turn
from rag.errors import (
    ConfigError,
    GeneratorError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexStoreError,
    IndexUsageError,
    IngestError,
    ModelError,
    RagError,
)
from rag.export.answer_json import (
    answer_from_json,
    answer_record,
    citation_from_json,
    duplicate_from_json,
    hit_from_json,
)
from rag.export.types import Export
from rag.types import Filters, Hit
from rag.vocabulary import AnswerMode, ExportFormat, RetrievalMode

if TYPE_CHECKING:
    from rag.answer.timeline import Timeline, TimelineBy, TimelineEntry, TimelineGroup

__all__ = ["AccessDeniedError", "Client", "ServerError", "ServerUnavailableError"]

DEFAULT_TIMEOUT = 300.0
"""Seconds to wait for the server (an answer by a language model on a CPU can take minutes)."""

TOKEN_HINT = "an admin creates one with `rag tokens create NAME --role reader`"


class ServerError(RagError):
    """The server refused or failed a request in a way no in-process error matches. `status`
    and `kind` are the HTTP status and the server's error type, when the server answered."""

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None):
        super().__init__(message)
        self.status, self.kind = status, kind


class AccessDeniedError(ServerError):
    """401 or 403: no access token, an unknown or revoked one, or one without the role."""


class ServerUnavailableError(ServerError):
    """No server listens at the address, or it did not answer in time."""


_SAME_CLASS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        RagError,
        ConfigError,
        IngestError,
        ModelError,
        GeneratorError,
        IndexStoreError,
        IndexUsageError,
        IndexNotFoundError,
        IndexMismatchError,
        IndexCorruptError,
        IndexLockedError,
    )
}
"""The server's error types that are the in-process classes themselves."""

_BY_STATUS: dict[int, type[Exception]] = {
    400: ConfigError,
    404: ConfigError,  # an unknown document (the server's DocumentNotFoundError)
    409: IndexNotFoundError,
    413: ConfigError,
    415: ConfigError,
    422: ConfigError,  # an argument outside the API's bounds
    502: GeneratorError,
    503: IndexLockedError,
}
"""The in-process class of the server's own errors (subclasses of these), by status."""

_HTTP_KINDS = frozenset({"NotFound", "HTTPError", "InternalError", "RateLimited"})
"""The server's error types about the request's path, its rate or the server itself."""


def _error_class(status: int | None, kind: str) -> type[Exception]:
    if kind in _HTTP_KINDS:
        return ServerError
    if kind in _SAME_CLASS:
        return _SAME_CLASS[kind]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    # The server names only project errors' types; a subclass this side does not know:
    return RagError if kind and status in (None, 500) else ServerError


class Client:
    """The `Engine`'s search, ask, ask_stream, timeline, export, documents and info, served
    by a running `rag serve`.

    >>> with Client("http://127.0.0.1:7860", token="nr_...") as engine:
    ...     answer = engine.ask("Was sagte Stoltenberg?", mode="quote")
    """

    def __init__(
        self, url: str, token: str | None = None, timeout: float | None = DEFAULT_TIMEOUT
    ) -> None:
        """`url`: where `rag serve` listens (e.g. http://127.0.0.1:7860); `token`: an access
        token, when the server requires them; `timeout`: seconds per request (None: no limit)."""
        self.url = _base_url(url)
        self.token = token
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout)
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r}, token={'...' if self.token else None})"

    # ----------------------------------------------------------------------- read
    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        *,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
    ) -> list[Hit]:
        """The `k` passages that best answer `query`, best first (`Engine.search`)."""
        body = _body(query=query, k=k, filters=_filters(filters), mode=mode, rerank=rerank)
        data = self._request("POST", "/api/search", json={**body, "full": True})
        return [self._decode(hit_from_json, h, "hit") for h in _field(data, "hits", list)]

    def answer_modes(self) -> list[AnswerMode]:
        """The answer modes the server offers (`Engine.answer_modes`)."""
        return list(_field(self._request("GET", "/api/info"), "answer_modes", list))

    def ask(
        self,
        question: str,
        filters: Filters | None = None,
        history: Sequence[Turn] | None = None,
        *,
        mode: AnswerMode | None = None,
    ) -> Answer:
        """Answer from the sources, cited and support-checked (`Engine.ask`)."""
        body = _ask_body(question, filters, history, mode)
        return self._decode(answer_from_json, self._request("POST", "/api/ask", json=body))

    def ask_stream(
        self,
        question: str,
        filters: Filters | None = None,
        history: Sequence[Turn] | None = None,
        *,
        mode: AnswerMode | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
        """`ask`, streaming `AnswerDelta`s, then the `Answer` (`Engine.ask_stream`). Closing
        the iterator early closes the connection, which stops the server's answer."""
        body = _ask_body(question, filters, history, mode)
        try:
            with self._http.stream("POST", "/api/ask/stream", json=body) as response:
                if response.is_error:
                    response.read()
                    self._raise_for(response)
                yield from self._stream_items(_sse_events(response.iter_lines()))
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc

    def timeline(
        self,
        query: str,
        filters: Filters | None = None,
        *,
        by: TimelineBy = "month",
        k: int | None = None,
        min_score: float | None = None,
    ) -> Timeline:
        """The articles matching `query`, grouped by date, each with its key sentence cited
        (`Engine.timeline`). As `GET /api/timeline` gives them, entries' scores are rounded to
        6 decimals and collapsed copies come without their chunk ids."""
        f = filters or Filters()
        params = _body(
            q=query, by=by, k=k, min_score=min_score, date_from=f.date_from, date_to=f.date_to
        )
        params.update(source=list(f.sources), language=list(f.languages))
        data = self._request("GET", "/api/timeline", params=params)
        return self._decode(timeline_from_json, data, "timeline")

    # ---------------------------------------------------------------------- export
    def export(self, answers: Answer | Sequence[Answer], fmt: ExportFormat | str) -> Export:
        """An answer (or a conversation's answers) as markdown, json, pdf, bibtex or csl
        (`Engine.export`); the server records its index and embedder in the file."""
        items = [answers] if isinstance(answers, Answer) else list(answers)
        body = {"format": fmt, "answers": [answer_record(a) for a in items]}
        response = self._send("POST", "/api/export", json=body)
        return Export(
            data=response.content,
            media_type=response.headers.get("content-type", "application/octet-stream"),
            filename=_filename(response.headers.get("content-disposition", "")),
        )

    def info(self) -> dict[str, Any]:
        """The index's summary: counts, embedder, chunking, size on disk (`Engine.info`)."""
        return dict(_field(self._request("GET", "/api/info"), "index", Mapping))

    def documents(self) -> list[dict[str, Any]]:
        """Every document: doc_id, source, title, date, language, n_chunks (`Engine.documents`)."""
        return list(_field(self._request("GET", "/api/documents"), "documents", list))

    # ---------------------------------------------------------------------- HTTP
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ServerError(
                f"{method} {self.url}{path} answered {response.status_code} with something "
                f"other than JSON ({_preview(response.text)}); is this a newsrag server?",
                status=response.status_code,
            ) from None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc
        if response.is_error:
            self._raise_for(response)
        return response

    def _stream_items(self, events: Iterator[tuple[str, Any]]) -> Iterator[AnswerDelta | Answer]:
        for event, data in events:
            if event == "delta":
                yield AnswerDelta(str(_field(data, "text", str)))
            elif event == "answer":
                yield self._decode(answer_from_json, data)
                return
            elif event == "error":
                raise self._error(None, _field(data, "error", Mapping))
        raise ServerError(f"the answer stream from {self.url} ended without an answer")

    def _decode(self, decode: Any, data: Any, where: str = "answer") -> Any:
        try:
            return decode(data, where)
        except ConfigError as exc:
            raise ServerError(
                f"the server at {self.url} sent a {where} this client cannot read ({exc}); "
                "are the client's and the server's newsrag versions the same?"
            ) from None

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        if not isinstance(error, Mapping):
            error = {"type": "HTTPError", "message": _preview(response.text) or "no message"}
        raise self._error(response.status_code, error)

    def _error(self, status: int | None, error: Mapping[str, Any]) -> Exception:
        """The in-process error for the server's `{"type", "message"}` (and HTTP status)."""
        kind, message = str(error.get("type", "")), str(error.get("message", ""))
        if status in (401, 403):
            return AccessDeniedError(self._access_message(status, kind, message), status=status)
        if kind == "ValidationError" and "body.full" in message:
            message = (
                f"the server at {self.url} is older than this client (it does not take "
                f"'full'): upgrade newsrag on the server ({message})"
            )
            return ServerError(message, status=status, kind=kind)
        cls = _error_class(status, kind)
        if cls is ServerError:
            return ServerError(message or f"the server answered {status}", status=status, kind=kind)
        return cls(message)

    def _access_message(self, status: int, kind: str, message: str) -> str:
        if status == 403:
            if kind != "Forbidden":  # a refused Host or Origin: the server's message says why
                return message
            return f"{message}; pass Client({self.url!r}, token=...) a token with that role"
        if self.token is None:
            return (
                f"the server at {self.url} needs an access token: pass Client({self.url!r}, "
                f"token=...) ({TOKEN_HINT})"
            )
        return (
            f"the server at {self.url} refused the token (unknown or revoked): pass a valid "
            f"one ({TOKEN_HINT})"
        )

    def _unavailable(self, exc: httpx.TransportError) -> ServerError:
        if isinstance(exc, httpx.TimeoutException):
            return ServerUnavailableError(
                f"the server at {self.url} did not answer within {self.timeout} s; pass a "
                "larger timeout= to Client (answers by a language model can take minutes)"
            )
        if isinstance(exc, httpx.ConnectError):
            return ServerUnavailableError(
                f"cannot reach a newsrag server at {self.url} ({exc}); start one with "
                "`rag serve --index DIR`, or check the address and port"
            )
        return ServerUnavailableError(f"the connection to {self.url} failed: {exc}")


# ------------------------------------------------------------------------ requests
def _base_url(url: str) -> str:
    text = url.strip().rstrip("/")
    if text.endswith("/api"):
        text = text[: -len("/api")]
    if not text.startswith(("http://", "https://")):
        raise ConfigError(
            f"server URL {url!r} must start with http:// or https://, e.g. "
            "http://127.0.0.1:7860 (where `rag serve` listens)"
        )
    return text


def _body(**fields: Any) -> dict[str, Any]:
    """The request's fields that are set (the server's defaults are the Engine's)."""
    return {name: value for name, value in fields.items() if value is not None}


def _filters(filters: Filters | None) -> dict[str, Any] | None:
    return filters.to_json() if filters is not None else None


def _ask_body(
    question: str,
    filters: Filters | None,
    history: Sequence[Turn] | None,
    mode: str | None,
) -> dict[str, Any]:
    turns = [{"question": t.question, "answer": t.answer} for t in history or ()]
    body = _body(question=question, filters=_filters(filters), history=turns or None, mode=mode)
    return {**body, "full": True}


# ----------------------------------------------------------------------- responses
def _field(data: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(value, kind):
        raise ServerError(
            f"the server's response has no {key!r} of the expected type ({_preview(data)}); "
            "is this a newsrag server of the client's version?"
        )
    return value


def timeline_from_json(data: Any, where: str = "timeline") -> Timeline:
    """Rebuild a `Timeline` from `Timeline.to_json()` (counts are recomputed, not read)."""
    from rag.answer.timeline import Timeline, TimelineGroup

    undated = data.get("undated") if isinstance(data, Mapping) else None
    groups = _field(data, "groups", list)
    return Timeline(
        query=_field(data, "query", str),
        by=_field(data, "by", str),
        groups=tuple(_timeline_group(g, f"{where}.groups[{i}]") for i, g in enumerate(groups)),
        undated=TimelineGroup(None) if undated is None else _timeline_group(undated, where),
        retrieval=dict(data.get("retrieval") or {}),
    )


def _timeline_group(data: Any, where: str) -> TimelineGroup:
    from rag.answer.timeline import TimelineGroup

    period = data.get("period") if isinstance(data, Mapping) else None
    entries = _field(data, "entries", list)
    return TimelineGroup(
        period if isinstance(period, str) else None,
        tuple(_timeline_entry(e, f"{where}.entries[{i}]") for i, e in enumerate(entries)),
    )


def _timeline_entry(data: Any, where: str) -> TimelineEntry:
    from rag.answer.timeline import TimelineEntry

    duplicates = data.get("duplicates", []) if isinstance(data, Mapping) else []
    return TimelineEntry(
        citation=citation_from_json(_field(data, "citation", Mapping), f"{where}.citation"),
        score=float(_field(data, "score", (int, float))),
        duplicates=tuple(
            duplicate_from_json(d, f"{where}.duplicates[{i}]") for i, d in enumerate(duplicates)
        ),
    )


def _sse_events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """(event, parsed data) of each Server-Sent Event."""
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, json.loads("\n".join(data))


def _filename(disposition: str) -> str:
    """The file name of a `Content-Disposition` header (RFC 5987 `filename*` first)."""
    plain = None
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename*" and value.lower().startswith("utf-8''"):
            return unquote(value[len("utf-8''") :])
        if key.lower() == "filename":
            plain = value.strip('"')
    return plain or "newsrag-export"


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
