"""The MCP endpoint of `rag serve`: the server of `rag.mcp_server` over streamable HTTP at
`/mcp`, behind the same `ui.auth.Guard` as the API.

- The Guard checks every request first: Host and Origin, and, once tokens exist, a bearer
  token (401 without one). Any role may call the read tools; the write tools (offered only with
  `rag serve --mcp-allow-writes`) are listed and callable only with an editor or admin token.
- `ask` counts against the token's `server.ask_per_minute`, like `POST /api/ask`; writes go to
  the audit log (`via: mcp`).
- Stateless: every POST stands alone (JSON in, JSON out), so each is authenticated on its own
  and no MCP session outlives a revoked token. The SDK's own Host checks are off: the Guard
  applies the server's (`server.allowed_hosts`), which the SDK does not know.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from rag.mcp_server import WRITE_TOOLS, AccessDenied, create_server
from ui.auth import Principal, Security, allows

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from rag.engine import Engine

MCP_PATH = "/mcp"


class GuardedAccess:
    """`rag.mcp_server.Access` from what the Guard found: the request's principal."""

    local_paths = False  # a remote caller never names files on the server's disk

    def __init__(self, security: Security) -> None:
        self.security = security

    def admit(self, request: Any, tool: str) -> str:
        principal = _principal(request)
        if principal is None:  # the Guard lets no request through without one
            raise AccessDenied("this request carries no authenticated caller; send a token")
        if tool in WRITE_TOOLS and not allows(principal.role, "editor"):
            raise AccessDenied(
                f"{tool} changes the archive: the token {principal.name!r} has the role "
                f"{principal.role!r}; this needs 'editor' (`rag tokens create NAME --role editor`)"
            )
        if tool == "ask":
            self._count_ask(request, principal)
        return principal.name

    def may_write(self, request: Any) -> bool:
        principal = _principal(request)
        return principal is not None and allows(principal.role, "editor")

    def record(self, who: str, action: str, **details: Any) -> None:
        if self.security.audit is not None:
            self.security.audit.record(who, action, via="mcp", **details)

    def _count_ask(self, request: Any, principal: Principal) -> None:
        limiter = self.security.limiter
        if limiter is None:
            return
        who = principal.name if self.security.auth_on else _client(request)
        wait = limiter.wait(who, "ask")
        if wait > 0:
            raise AccessDenied(
                f"too many ask requests for {who!r}; try again in {wait:.0f} s "
                "(server.ask_per_minute sets the limit)"
            )


class McpEndpoint:
    """The ASGI app at `MCP_PATH`. Its session manager lives in the web app's lifespan
    (`lifespan`), a new one each time the app starts (a test may start an app twice)."""

    def __init__(self, server: MCPServer, max_body_bytes: int) -> None:
        self.server, self.max_body_bytes = server, max_body_bytes
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """Run the MCP session manager while the web app runs (FastAPI's `lifespan`)."""
        from mcp.server.transport_security import TransportSecuritySettings

        self.server.streamable_http_app(  # builds a fresh session manager; its app is unused
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            max_request_body_size=self.max_body_bytes,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = self.server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    @property
    def route(self) -> Route:
        return Route(MCP_PATH, endpoint=self, name="mcp")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._manager is None:
            message = "the MCP endpoint is not running: serve the app with its lifespan on"
            body = {"error": {"type": "Unavailable", "message": message}}
            await JSONResponse(body, status_code=503)(scope, receive, send)
            return
        await self._manager.handle_request(scope, receive, send)


def mcp_endpoint(
    engine: Engine, security: Security, *, allow_writes: bool, max_body_bytes: int
) -> McpEndpoint:
    """The MCP server over `engine`, its callers judged by `security`, as an ASGI endpoint."""
    server = create_server(engine, allow_writes=allow_writes, access=GuardedAccess(security))
    return McpEndpoint(server, max_body_bytes)


def _principal(request: Any) -> Principal | None:
    state = getattr(request, "scope", {}).get("state") or {}
    principal = state.get("principal")
    return principal if isinstance(principal, Principal) else None


def _client(request: Any) -> str:
    client = getattr(request, "client", None)
    return str(client.host) if client else "unknown"
