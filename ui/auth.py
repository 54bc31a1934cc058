"""Who may do what on a shared server: access tokens with roles, login sessions for the UI,
Host and Origin checks, rate limits and the audit log of writes.

- A token is `nr_<id>_<secret>`, shown once by `rag tokens create`. The tokens file keeps its
  id, name, role and a salted scrypt hash of the secret, never the secret: it cannot be
  recovered from disk. A verified token is remembered (by its SHA-256) until the file
  changes, so a revocation by `rag tokens revoke` in another process takes effect at the next
  request.
- Roles, each including the ones before it: `reader` (search, ask, export, read the
  documents), `editor` (also upload and remove), `admin` (also manage tokens).
- The UI logs in with a token at `/login`; the session cookie (HttpOnly, SameSite=Strict)
  names a server-side session that ends with the token, after `SESSION_SECONDS`, or on logout.
- `Guard` checks every request: a `Host` that is not an IP address, `localhost` or listed in
  `server.allowed_hosts` is refused (DNS rebinding); a state-changing request from a browser
  page of another origin is refused (CSRF); with auth on, a request without a valid token or
  session gets 401 (the UI's pages redirect to `/login`) and one beyond its role 403; asks and
  uploads are rate-limited per token (429 with `Retry-After`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from rag.errors import ConfigError

log = logging.getLogger(__name__)

Role = Literal["reader", "editor", "admin"]
ROLES: tuple[Role, ...] = ("reader", "editor", "admin")
SESSION_COOKIE = "newsrag_session"
SESSION_SECONDS = 12 * 3600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # ~50 ms per check, 16 MiB


def allows(role: str, needed: Role) -> bool:
    """Whether `role` includes `needed` (admin > editor > reader)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a token's name and role (`anonymous` when auth is off)."""

    name: str
    role: Role
    token_id: str = ""


ANONYMOUS = Principal("anonymous", "admin")


class TokenStore:
    """The tokens file: create, list, revoke, verify. Safe across threads and processes
    (writes are atomic replacements; readers notice a changed file)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._tokens: dict[str, dict[str, Any]] = {}
        self._verified: dict[str, Principal] = {}

    # -------------------------------------------------------------------------- manage
    def create(self, name: str, role: str) -> str:
        """A new token for `name` with `role`; the secret is returned once, never stored."""
        name = name.strip()
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_.@" for c in name):
            raise ConfigError(
                f"token name {name!r} is not usable: use 1-64 letters, digits, - _ . or @"
            )
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
        with self._lock:
            tokens = self._load()
            if any(t["name"] == name for t in tokens.values()):
                raise ConfigError(
                    f"a token named {name!r} exists already; revoke it first "
                    f"(`rag tokens revoke {name}`) or choose another name"
                )
            token_id = secrets.token_hex(6)
            secret = secrets.token_urlsafe(32)
            salt = secrets.token_bytes(16)
            tokens[token_id] = {
                "id": token_id,
                "name": name,
                "role": role,
                "salt": salt.hex(),
                "hash": _hash(secret, salt).hex(),
                "created": _now(),
            }
            self._save(tokens)
        return f"nr_{token_id}_{secret}"

    def revoke(self, name: str) -> bool:
        """Remove the token named `name`; False when there is none."""
        with self._lock:
            tokens = self._load()
            found = [i for i, t in tokens.items() if t["name"] == name]
            for i in found:
                del tokens[i]
            if found:
                self._save(tokens)
            return bool(found)

    def list(self) -> list[dict[str, str]]:
        """Every token's id, name, role and creation time (no hashes)."""
        with self._lock:
            return [
                {k: t[k] for k in ("id", "name", "role", "created")}
                for t in sorted(self._load().values(), key=lambda t: t["created"])
            ]

    def any(self) -> bool:
        with self._lock:
            return bool(self._load())

    # -------------------------------------------------------------------------- verify
    def verify(self, token: str) -> Principal | None:
        """The principal of a valid token; None for a wrong, malformed or revoked one."""
        parts = token.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != "nr" or not parts[1] or not parts[2]:
            return None
        key = hashlib.sha256(token.strip().encode()).hexdigest()
        with self._lock:
            tokens = self._load()  # clears the remembered tokens when the file changed
            known = self._verified.get(key)
            if known is not None:
                return known
            entry = tokens.get(parts[1])
        if entry is None:
            return None
        digest = _hash(parts[2], bytes.fromhex(entry["salt"]))
        if not hmac.compare_digest(digest.hex(), entry["hash"]):
            return None
        principal = Principal(entry["name"], entry["role"], entry["id"])
        with self._lock:
            if self._load().get(entry["id"]) == entry:
                self._verified[key] = principal
        return principal

    def named(self, name: str) -> Principal | None:
        """The principal of the token named `name`, while it exists."""
        with self._lock:
            entry = next((t for t in self._load().values() if t["name"] == name), None)
        return Principal(entry["name"], entry["role"], entry["id"]) if entry else None

    def active(self, token_id: str) -> Principal | None:
        """The principal of the token with this id while it exists (sessions check it)."""
        with self._lock:
            entry = self._load().get(token_id)
        return Principal(entry["name"], entry["role"], entry["id"]) if entry else None

    # -------------------------------------------------------------------------- file
    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._tokens, self._verified = None, {}, {}
            return self._tokens
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                tokens = {t["id"]: t for t in data["tokens"]}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ConfigError(
                    f"the tokens file {self.path} cannot be read ({exc}); restore it from a "
                    "backup, or move it away and create the tokens again"
                ) from None
            self._stamp, self._tokens, self._verified = stamp, tokens, {}
        return self._tokens

    def _save(self, tokens: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"version": 1, "tokens": list(tokens.values())}, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None  # re-read (and forget verified tokens) at the next use
        self._load()


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, maxmem=64 * 1024 * 1024, **_SCRYPT)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Sessions:
    """UI login sessions: a random id in a cookie -> the token it was opened with."""

    def __init__(self, store: TokenStore, seconds: int = SESSION_SECONDS) -> None:
        self.store, self.seconds = store, seconds
        self._open: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def open(self, principal: Principal) -> str:
        session = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._open = {k: v for k, v in self._open.items() if v[1] > now}
            self._open[session] = (principal.token_id, now + self.seconds)
        return session

    def principal(self, session: str) -> Principal | None:
        """The session's principal while the session and its token last."""
        with self._lock:
            found = self._open.get(session)
        if found is None or found[1] <= time.monotonic():
            return None
        return self.store.active(found[0])

    def close(self, session: str) -> None:
        with self._lock:
            self._open.pop(session, None)


class RateLimiter:
    """Token buckets per (principal, action): `per_minute` actions, bursts up to that."""

    def __init__(self, per_minute: dict[str, int]) -> None:
        self.per_minute = per_minute
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, who: str, action: str) -> float:
        """0 when `who` may `action` now (and it is counted); else the seconds to wait."""
        rate = self.per_minute.get(action, 0)
        if rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            level, last = self._buckets.get((who, action), (float(rate), now))
            level = min(float(rate), level + (now - last) * rate / 60.0)
            if level >= 1.0:
                self._buckets[(who, action)] = (level - 1.0, now)
                return 0.0
            self._buckets[(who, action)] = (level, now)
            return (1.0 - level) * 60.0 / rate


class AuditLog:
    """Writes, one JSON line each: when, who, what (`add`, `remove`, `token-create`, ...)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, who: str, action: str, **details: Any) -> None:
        if self.path is None:
            return
        line = json.dumps(
            {"time": _now(), "who": who, "action": action, **details}, ensure_ascii=False
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


# ------------------------------------------------------------------------------ host, origin
def host_allowed(host_header: str, allowed: Iterable[str]) -> bool:
    """An IP address, `localhost`, or a name in `allowed` (`*` allows any): a DNS-rebinding
    page reaches the server under its own domain name, which is none of these."""
    host = _hostname(host_header)
    if not host:
        return False
    names = {a.strip().lower().rstrip(".") for a in allowed}
    if "*" in names or host in names or host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def origin_allowed(origin: str, host_header: str, allowed: Iterable[str]) -> bool:
    """A browser's `Origin` is this server itself (same host and port) or a listed origin."""
    if origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if parts.netloc.lower() == host_header.strip().lower():
        return True
    return origin.rstrip("/").lower() in {a.rstrip("/").lower() for a in allowed}


def _hostname(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:7860
        return host[1 : host.find("]")] if "]" in host else ""
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


# ------------------------------------------------------------------------------ the guard
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC = frozenset({"/login", "/logout", "/api/health"})


@dataclass
class Security:
    """What `Guard` enforces. Without a token store auth is off (Host and Origin are still
    checked: a page on another site must not drive a server on loopback either)."""

    store: TokenStore | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    limiter: RateLimiter | None = None
    audit: AuditLog | None = None
    sessions: Sessions | None = None

    def __post_init__(self) -> None:
        self.limiter = self.limiter or RateLimiter({})
        self.audit = self.audit or AuditLog(None)
        if self.store is not None and self.sessions is None:
            self.sessions = Sessions(self.store)

    @property
    def auth_on(self) -> bool:
        return self.store is not None

    @classmethod
    def from_settings(cls, server: Any, *, auth: bool) -> Security:
        """From `ServerSettings`; `auth` = whether tokens are required."""
        return cls(
            store=TokenStore(server.tokens_path()) if auth else None,
            allowed_hosts=tuple(server.allowed_hosts),
            allowed_origins=tuple(server.allowed_origins),
            limiter=RateLimiter({"ask": server.ask_per_minute, "upload": server.upload_per_minute}),
            audit=AuditLog(server.audit_path()),
        )

    def principal_named(self, name: str | None) -> Principal | None:
        """Who a UI event comes from (Gradio knows the name the Guard let in)."""
        if self.store is None:
            return ANONYMOUS
        return self.store.named(name) if name else None

    def authenticate(self, headers: dict[bytes, bytes]) -> Principal | None:
        """The principal of a request: `Authorization: Bearer <token>` or the session cookie."""
        if self.store is None:
            return ANONYMOUS
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth[:7].lower() == "bearer ":
            return self.store.verify(auth[7:])
        session = _cookie(headers.get(b"cookie", b"").decode("latin-1"), SESSION_COOKIE)
        if session and self.sessions is not None:
            return self.sessions.principal(session)
        return None


def needed_role(method: str, path: str) -> Role:
    """The role a request needs: writes to the documents need `editor`, tokens `admin`."""
    if path.startswith("/api/tokens"):
        return "admin"
    if path.startswith("/api/documents") and method not in _SAFE:
        return "editor"
    return "reader"


def rate_action(method: str, path: str) -> str | None:
    if method == "POST" and path in ("/api/ask", "/api/ask/stream", "/api/export"):
        return "ask"
    if method == "POST" and path == "/api/documents":
        return "upload"
    return None


class Guard:
    """ASGI middleware enforcing `Security` on every HTTP request (API and UI alike)."""

    def __init__(self, app: Any, security: Security) -> None:
        self.app, self.security = app, security

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sec = self.security
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        host = headers.get(b"host", b"").decode("latin-1")
        method = scope.get("method", "GET").upper()
        path = scope.get("path", "")
        if not host_allowed(host, sec.allowed_hosts):
            await _deny(scope, receive, send, 403, "ForbiddenHost", _host_message(host))
            return
        if method not in _SAFE:
            origin = headers.get(b"origin", b"").decode("latin-1")
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1")
            if (origin and not origin_allowed(origin, host, sec.allowed_origins)) or (
                not origin and site == "cross-site"
            ):
                log.warning("refused a cross-origin %s %s from %r", method, path, origin)
                message = (
                    f"a {method} from a page of another origin ({origin or 'cross-site'}) is "
                    "refused; list trusted origins in server.allowed_origins "
                    "(RAG_SERVER__ALLOWED_ORIGINS)"
                )
                await _deny(scope, receive, send, 403, "CrossOriginRequest", message)
                return
        principal = sec.authenticate(headers)
        if sec.auth_on and path not in _PUBLIC:
            if principal is None:
                if method == "GET" and not path.startswith(("/api/", "/gradio_api/", "/mcp")):
                    await _redirect(scope, receive, send, "/login")
                    return
                message = (
                    "this server needs an access token: send 'Authorization: Bearer <token>' "
                    "(an admin creates one with `rag tokens create NAME --role reader`), or "
                    "log in at /login"
                )
                await _deny(scope, receive, send, 401, "Unauthorized", message)
                return
            role = needed_role(method, path)
            if not allows(principal.role, role):
                message = (
                    f"the token {principal.name!r} has the role {principal.role!r}; this needs "
                    f"{role!r} (an admin can create such a token with `rag tokens create`)"
                )
                await _deny(scope, receive, send, 403, "Forbidden", message)
                return
        action = rate_action(method, path)
        if action is not None and principal is not None and sec.limiter is not None:
            who = principal.name if sec.auth_on else _client(scope)
            wait = sec.limiter.wait(who, action)
            if wait > 0:
                message = (
                    f"too many {action} requests for {who!r}; try again in {wait:.0f} s "
                    f"(server.{action}_per_minute sets the limit)"
                )
                await _deny(
                    scope,
                    receive,
                    send,
                    429,
                    "RateLimited",
                    message,
                    {"Retry-After": str(max(1, round(wait)))},
                )
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _host_message(host: str) -> str:
    return (
        f"the Host {host!r} is not allowed (a DNS-rebinding page would come this way); "
        "use an IP address or localhost, or list the name in server.allowed_hosts "
        "(RAG_SERVER__ALLOWED_HOSTS='[\"news.example.org\"]')"
    )


def _client(scope: Any) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


async def _deny(
    scope: Any,
    receive: Any,
    send: Any,
    status: int,
    kind: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    from starlette.responses import JSONResponse

    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    response = JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )
    await response(scope, receive, send)


async def _redirect(scope: Any, receive: Any, send: Any, to: str) -> None:
    from starlette.responses import RedirectResponse

    await RedirectResponse(to, status_code=303)(scope, receive, send)
