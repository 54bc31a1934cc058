"""The MCP endpoint of `rag serve` (/mcp, streamable HTTP) on a real server (uvicorn on a
loopback port, `ui.server.create_app` as `rag serve` builds it, the real model, an index of the
seeds), driven by the MCP SDK's own client: the same conversation as `rag mcp` over stdio
(tests/rag/mcp_conversation.py), behind the API's auth: 401 without a token, reader tokens
read, write tools only with the flag and only for editors, asks rate-limited per token."""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from rag.engine import Engine
from rag.mcp_server import READ_TOOLS, WRITE_TOOLS
from tests.rag.mcp_conversation import (
    AID_QUESTION,
    SEEDS,
    check_conversation,
    converse,
    text_of,
)
from tests.ui.test_server import LiveServer
from ui.auth import AuditLog, RateLimiter, Security, TokenStore
from ui.server import create_app
from ui.service import Service

T = TypeVar("T")
ASKS_PER_MINUTE = 8
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def with_client(url: str, token: str, talk: Callable[[Client], Awaitable[T]]) -> T:
    """`talk` with a `Client` connected to `url` with `token` as its bearer token."""

    async def run() -> T:
        headers = {"Authorization": f"Bearer {token}"}
        timeout = httpx2.Timeout(30, read=300)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                return await talk(client)

    return anyio.run(run)


async def tool_names(client: Client) -> list[str]:
    return [t.name for t in (await client.list_tools()).tools]


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory, settings, embedder) -> Path:
    path = tmp_path_factory.mktemp("mcp-http") / "idx"
    with Engine.open(path, settings, embedder=embedder) as engine:
        assert engine.add([SEEDS]).added == 5
    return path


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> dict[str, str]:
    store = TokenStore(tmp_path_factory.mktemp("tokens") / "tokens.json")
    return {role: store.create(role, role) for role in ("reader", "editor")} | {
        "burst": store.create("burst", "reader"),
        "path": str(store.path),
    }


@pytest.fixture(scope="module")
def security(tokens, tmp_path_factory) -> Security:
    return Security(
        store=TokenStore(Path(tokens["path"])),
        limiter=RateLimiter({"ask": ASKS_PER_MINUTE}),
        audit=AuditLog(tmp_path_factory.mktemp("audit") / "audit.jsonl"),
    )


def serve(index: Path, settings, embedder, security: Security, **options: Any) -> Iterator[str]:
    with (
        Service(Engine.open(index, settings, embedder=embedder)) as service,
        LiveServer(create_app(service, with_ui=False, security=security, **options)) as live,
    ):
        yield live.url


@pytest.fixture(scope="module")
def server(seeded_dir, settings, embedder, security) -> Iterator[str]:
    """`rag serve` as it starts by default: MCP read-only."""
    yield from serve(seeded_dir, settings, embedder, security)


@pytest.fixture(scope="module")
def writable_server(seeded_dir, tmp_path_factory, settings, embedder, security) -> Iterator[str]:
    """`rag serve --mcp-allow-writes` over a copy of the index."""
    copy = tmp_path_factory.mktemp("mcp-rw") / "idx"
    shutil.copytree(seeded_dir, copy, ignore=shutil.ignore_patterns("write.lock"))
    yield from serve(copy, settings, embedder, security, mcp_writes=True)


# --- the conversation ---------------------------------------------------------------------------
def test_http_endpoint_answers_the_shared_conversation_with_a_reader_token(server, tokens):
    check_conversation(with_client(f"{server}/mcp", tokens["reader"], converse))


def test_the_mcp_answer_is_the_api_answer(server, tokens):
    async def ask(client: Client) -> Any:
        return await client.call_tool("ask", {"question": AID_QUESTION, "mode": "quote"})

    result = with_client(f"{server}/mcp", tokens["reader"], ask)
    api = httpx.post(
        f"{server}/api/ask",
        json={"question": AID_QUESTION, "mode": "quote"},
        headers={"Authorization": f"Bearer {tokens['reader']}"},
        timeout=120,
    )
    assert api.status_code == 200, api.text
    assert result.structured_content == api.json()


# --- auth ---------------------------------------------------------------------------------------
def test_without_a_valid_token_the_endpoint_answers_401(server):
    for headers in ({}, {"Authorization": "Bearer nr_0000_wrong"}):
        posted = httpx.post(f"{server}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
        assert posted.status_code == 401, posted.text
        assert posted.headers["www-authenticate"] == "Bearer"
        assert posted.json()["error"]["type"] == "Unauthorized"
    fetched = httpx.get(f"{server}/mcp", headers=MCP_HEADERS, follow_redirects=False)
    assert fetched.status_code == 401  # an API client, not a browser: no redirect to /login


def test_host_and_origin_are_checked_as_for_the_api(server, tokens):
    bearer = {**MCP_HEADERS, "Authorization": f"Bearer {tokens['reader']}"}
    foreign_host = httpx.post(
        f"{server}/mcp", json=INITIALIZE, headers={**bearer, "Host": "evil.example"}
    )
    assert foreign_host.status_code == 403
    assert foreign_host.json()["error"]["type"] == "ForbiddenHost"
    cross_site = httpx.post(
        f"{server}/mcp", json=INITIALIZE, headers={**bearer, "Origin": "http://evil.example"}
    )
    assert cross_site.status_code == 403
    assert cross_site.json()["error"]["type"] == "CrossOriginRequest"
    same = httpx.post(f"{server}/mcp", json=INITIALIZE, headers=bearer)
    assert same.status_code == 200 and same.json()["result"]["serverInfo"]["name"] == "newsrag"


def test_asks_count_against_the_tokens_rate_limit(server, tokens):
    async def ask_often(client: Client) -> list[Any]:
        arguments = {"question": AID_QUESTION, "mode": "quote"}
        return [await client.call_tool("ask", arguments) for _ in range(ASKS_PER_MINUTE + 1)]

    results = with_client(f"{server}/mcp", tokens["burst"], ask_often)
    assert not any(r.is_error for r in results[:ASKS_PER_MINUTE])
    assert results[-1].is_error and "server.ask_per_minute" in text_of(results[-1])


# --- writes -------------------------------------------------------------------------------------
def test_write_tools_are_absent_without_the_flag(server, tokens):
    async def talk(client: Client) -> tuple[list[str], Any]:
        refused = await client.call_tool("remove_document", {"doc_id": "x"})
        return await tool_names(client), refused

    names, refused = with_client(f"{server}/mcp", tokens["editor"], talk)
    assert set(names) == set(READ_TOOLS)
    assert refused.is_error and "remove_document" in text_of(refused)


def test_with_the_flag_readers_still_cannot_write(writable_server, tokens):
    async def talk(client: Client) -> tuple[list[str], Any]:
        article = {"text": "Ein Satz über Bielefeld.", "source": "reader-try"}
        return await tool_names(client), await client.call_tool(
            "add_documents", {"articles": [article]}
        )

    names, refused = with_client(f"{writable_server}/mcp", tokens["reader"], talk)
    assert set(names) == set(READ_TOOLS)
    assert refused.is_error
    assert "role 'reader'; this needs 'editor'" in text_of(refused)


def test_with_the_flag_editors_add_and_remove_articles(writable_server, tokens, security):
    article = {
        "text": "Der Stadtrat von Bielefeld beschloss am Montag den Bau einer Seilbahn vom "
        "Hauptbahnhof zur Universität. Sie soll 40 Millionen Euro kosten.",
        "source": "https://example.org/seilbahn",
        "title": "Bielefeld baut eine Seilbahn",
        "date": "2024-05",
    }

    async def talk(client: Client) -> dict[str, Any]:
        seen: dict[str, Any] = {"tools": await tool_names(client)}
        seen["added"] = await client.call_tool("add_documents", {"articles": [article]})
        seen["paths"] = await client.call_tool("add_documents", {"paths": ["/etc/hostname"]})
        seen["search"] = await client.call_tool("search", {"query": "Seilbahn Bielefeld", "k": 1})
        doc_id = seen["search"].structured_content["hits"][0]["doc_id"]
        seen["removed"] = await client.call_tool("remove_document", {"doc_id": doc_id})
        return seen

    seen = with_client(f"{writable_server}/mcp", tokens["editor"], talk)
    assert set(seen["tools"]) == {*READ_TOOLS, *WRITE_TOOLS}
    assert seen["added"].structured_content["added"] == 1
    assert seen["paths"].is_error and "server's disk" in text_of(seen["paths"])
    hit = seen["search"].structured_content["hits"][0]
    assert hit["title"] == "Bielefeld baut eine Seilbahn" and hit["date"] == "2024-05"
    assert seen["removed"].structured_content == {"removed": 1, "chunks_removed": 1}
    assert security.audit is not None and security.audit.path is not None
    records = [json.loads(line) for line in security.audit.path.read_text().splitlines()]
    writes = [(r["who"], r["action"], r["via"]) for r in records]
    assert writes == [("editor", "add", "mcp"), ("editor", "remove", "mcp")]
