"""`rag mcp` as a real subprocess, driven over stdio by the MCP SDK's own client, over an index
of the seeds built with the real model: the tools, search and cited answers with structured
results whose quotes stand verbatim in the seed files (tests/rag/mcp_conversation.py, which
the HTTP endpoint passes too), and the write tools only with --allow-writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from rag.engine import Engine
from rag.mcp_server import READ_TOOLS, WRITE_TOOLS, LocalAccess, create_server
from rag.types import Document
from tests.rag.mcp_conversation import (
    SEEDS,
    Conversation,
    check_conversation,
    converse,
    text_of,
)

T = TypeVar("T")

SEILBAHN = (
    "Der Stadtrat von Bielefeld beschloss am Montag den Bau einer Seilbahn vom Hauptbahnhof "
    "zur Universität. Die Bahn soll 2027 fahren und 40 Millionen Euro kosten."
)


def server_env() -> dict[str, str]:
    """What `rag mcp` needs from this environment: the model cache, offline switches, no
    language model (tests/conftest.py). The SDK starts servers with a minimal environment."""
    keep = ("RAG_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "XDG_", "OMP_")
    env = {k: v for k, v in os.environ.items() if k.startswith(keep)}
    env.pop("RAG_INDEX_DIR", None)
    env.pop("RAG_CONFIG", None)
    return env


def rag_mcp(index: Path, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "rag.cli", "mcp", "--index", str(index), *extra],
        env=server_env(),
        cwd=str(index.parent),  # no rag.toml of the working tree
    )


def with_client(params: StdioServerParameters, talk: Callable[[Client], Awaitable[T]]) -> T:
    async def run() -> T:
        async with Client(params, read_timeout_seconds=300) as client:
            return await talk(client)

    return anyio.run(run)


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory, settings, embedder) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "idx"
    with Engine.open(path, settings, embedder=embedder) as engine:
        assert engine.add([SEEDS]).added == 5
    return path


@pytest.fixture(scope="module")
def conversation(seed_index) -> Conversation:
    return with_client(rag_mcp(seed_index), converse)


# --- read-only ----------------------------------------------------------------------------------
def test_stdio_server_answers_the_shared_conversation(conversation):
    check_conversation(conversation)


def test_read_only_server_has_no_write_tools(seed_index):
    async def talk(client: Client) -> tuple[list[str], Any]:
        names = [t.name for t in (await client.list_tools()).tools]
        refused = await client.call_tool(
            "add_documents", {"articles": [{"text": SEILBAHN, "source": "x"}]}
        )
        return names, refused

    names, refused = with_client(rag_mcp(seed_index), talk)
    assert set(names) == set(READ_TOOLS)
    assert refused.is_error and "add_documents" in text_of(refused)


def test_rag_mcp_without_an_index_says_how_to_make_one(tmp_path):
    missing = tmp_path / "none"
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "mcp", "--index", str(missing)],
        env={**os.environ, **server_env()},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: no index at") and "Traceback" not in result.stderr
    assert f"rag index PATH --index {missing}" in result.stderr


# --- writes -------------------------------------------------------------------------------------
def test_allow_writes_adds_articles_and_files_and_removes_them(seed_index, tmp_path):
    index = tmp_path / "idx"
    shutil.copytree(seed_index, index, ignore=shutil.ignore_patterns("write.lock"))
    article_file = tmp_path / "torwart.md"
    article_file.write_text(
        "# Arminia verpflichtet Torwart\n\nDer Fußballverein Arminia Bielefeld hat den Torwart "
        "Jonas Keller vom SC Paderborn verpflichtet.\n",
        encoding="utf-8",
    )
    article = {"text": SEILBAHN, "source": "https://example.org/seilbahn", "date": "2024-05-06"}

    async def talk(client: Client) -> dict[str, Any]:
        seen: dict[str, Any] = {"tools": [t.name for t in (await client.list_tools()).tools]}
        seen["added"] = await client.call_tool("add_documents", {"articles": [article]})
        seen["again"] = await client.call_tool("add_documents", {"articles": [article]})
        seen["file"] = await client.call_tool("add_documents", {"paths": [str(article_file)]})
        seen["bad_date"] = await client.call_tool(
            "add_documents", {"articles": [{**article, "date": "nächsten Montag"}]}
        )
        seen["search"] = await client.call_tool("search", {"query": "Seilbahn Bielefeld", "k": 1})
        doc_id = seen["search"].structured_content["hits"][0]["doc_id"]
        seen["removed"] = await client.call_tool("remove_document", {"doc_id": doc_id})
        seen["gone"] = await client.call_tool("remove_document", {"doc_id": doc_id})
        seen["documents"] = await client.call_tool("list_documents", {})
        return seen

    seen = with_client(rag_mcp(index, "--allow-writes"), talk)
    assert set(seen["tools"]) == {*READ_TOOLS, *WRITE_TOOLS}
    added = seen["added"].structured_content
    assert added["added"] == 1 and added["problems"] == [] and added["chunks"] >= 1
    assert seen["again"].structured_content["unchanged"] == 1  # unchanged: no work
    assert seen["file"].structured_content["added"] == 1
    assert seen["bad_date"].is_error and "unreadable date" in text_of(seen["bad_date"])
    hit = seen["search"].structured_content["hits"][0]
    assert hit["source"] == "https://example.org/seilbahn" and hit["date"] == "2024-05-06"
    assert seen["removed"].structured_content["removed"] == 1
    assert seen["gone"].is_error and "no document with id" in text_of(seen["gone"])
    sources = {d["source"] for d in seen["documents"].structured_content["documents"]}
    assert str(article_file) in sources and "https://example.org/seilbahn" not in sources
    assert len(sources) == 6


# --- plumbing, in-process (a deterministic fake embedder, no model) -----------------------------
@pytest.fixture
def fake_engine(tmp_path, settings, fake_embedder) -> Iterator[Engine]:
    with Engine.open(tmp_path / "idx", settings, embedder=fake_embedder) as engine:
        engine.add_documents(
            [
                Document(
                    doc_id="feeds/2024/../a b",  # ids may hold `/`, `..` and spaces
                    text="Erster Satz über Bielefeld. " * 3,
                    source="feed.jsonl#1",
                    title="Bielefeld",
                    date="2024-05",
                    language="de",
                )
            ]
        )
        yield engine


def in_process(server: Any, talk: Callable[[Client], Awaitable[T]]) -> T:
    async def run() -> T:
        async with Client(server) as client:
            return await talk(client)

    return anyio.run(run)


def test_documents_are_resources_by_percent_encoded_id(fake_engine):
    async def talk(client: Client) -> tuple[Any, str, Any, Any]:
        documents = await client.call_tool("list_documents", {})
        uri = documents.structured_content["documents"][0]["uri"]
        text = (await client.read_resource(uri)).contents[0].text
        hits = await client.call_tool("search", {"query": "Bielefeld", "k": 1})
        chunk_id = hits.structured_content["hits"][0]["chunk_id"]
        return documents, text, await client.call_tool("get_passage", {"chunk_id": chunk_id}), uri

    documents, text, passage, uri = in_process(create_server(fake_engine), talk)
    assert uri == "newsrag://documents/feeds%2F2024%2F..%2Fa%20b"
    assert documents.structured_content["total"] == 1
    assert text == "Erster Satz über Bielefeld. " * 3
    data = passage.structured_content
    assert data["doc_id"] == "feeds/2024/../a b" and data["uri"] == uri
    assert text[data["start"] : data["end"]] == data["text"]


def test_an_unknown_document_is_a_clear_resource_error(fake_engine):
    async def talk(client: Client) -> MCPError | None:
        try:
            await client.read_resource("newsrag://documents/nope")
        except MCPError as exc:
            return exc
        return None

    error = in_process(create_server(fake_engine), talk)
    assert error is not None
    assert str(error) == "no document with id 'nope'; list_documents shows the ids"


class ReadersOnly(LocalAccess):
    """An `Access` whose callers may not write (as a reader token over HTTP)."""

    def may_write(self, request: Any) -> bool:
        return False


def test_write_tools_are_listed_and_callable_only_for_callers_who_may_write(fake_engine):
    async def talk(client: Client) -> tuple[list[str], Any]:
        names = [t.name for t in (await client.list_tools()).tools]
        return names, await client.call_tool("remove_document", {"doc_id": "feeds/2024/../a b"})

    server = create_server(fake_engine, allow_writes=True, access=ReadersOnly())
    names, refused = in_process(server, talk)
    assert set(names) == set(READ_TOOLS)
    assert refused.is_error and "remove_document changes the archive" in text_of(refused)
    assert len(fake_engine.documents()) == 1

    names, removed = in_process(create_server(fake_engine, allow_writes=True), talk)
    assert set(names) == {*READ_TOOLS, *WRITE_TOOLS}
    assert removed.structured_content == {"removed": 1, "chunks_removed": 1}
