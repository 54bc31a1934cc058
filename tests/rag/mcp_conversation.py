"""One conversation with the newsrag MCP server through the SDK's own `Client`, and the checks
on what it returned: shared by the stdio test (`rag mcp`, tests/rag/test_mcp.py) and the
streamable-HTTP test (`rag serve` at /mcp, tests/ui/test_mcp_http.py), so both transports
pass the same test."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp import Client
from mcp_types import CallToolResult, Tool

from rag.mcp_server import READ_TOOLS

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
SEARCH_QUERY = "Welches Artilleriesystem liefern die USA an die Ukraine?"
AID_QUESTION = "Wie hoch ist das neue militärische Hilfspaket für die Ukraine?"
AID_SOURCE = f"{SEEDS.as_posix()}/001_9706a68281888026.txt"
UNANSWERABLE = "Wie viele Tore schoss Bayern München in der Saison 2023?"
TIMELINE_QUERY = "Verhandlungen zwischen der Ukraine und Russland"
HIT_KEYS = {
    "rank", "score", "chunk_id", "doc_id", "source", "title", "date", "date_source", "text",
    "start", "end", "duplicates",
}  # fmt: skip
ANSWER_KEYS = {
    "question", "answer", "answerable", "mode", "model", "language", "sentences", "citations",
    "passages", "retrieval", "standalone_question", "phrase",
}  # fmt: skip


@dataclass
class Conversation:
    """What the server answered, call by call."""

    tools: list[Tool]
    templates: list[str]
    search: CallToolResult
    ask: CallToolResult
    refused: CallToolResult
    timeline: CallToolResult
    documents: CallToolResult
    passage: CallToolResult
    unknown_passage: CallToolResult
    bad_date: CallToolResult
    texts: dict[str, str] = field(default_factory=dict)
    """doc_id -> the document's text, read through its resource."""


async def converse(client: Client) -> Conversation:
    """List the tools and templates, search, ask (quote mode), ask what the seeds do not
    answer, list the documents, read every document's resource, look a passage up."""
    tools = (await client.list_tools()).tools
    listed = await client.list_resource_templates()
    templates = [t.uri_template for t in listed.resource_templates]
    search = await client.call_tool("search", {"query": SEARCH_QUERY, "k": 3})
    ask = await client.call_tool("ask", {"question": AID_QUESTION, "mode": "quote"})
    refused = await client.call_tool("ask", {"question": UNANSWERABLE, "mode": "quote"})
    timeline = await client.call_tool("timeline", {"query": TIMELINE_QUERY, "by": "month"})
    documents = await client.call_tool("list_documents", {})
    texts = {}
    for d in (documents.structured_content or {}).get("documents", []):
        contents = (await client.read_resource(d["uri"])).contents
        texts[d["doc_id"]] = contents[0].text  # type: ignore[union-attr]
    first_hit = (search.structured_content or {})["hits"][0]
    passage = await client.call_tool("get_passage", {"chunk_id": first_hit["chunk_id"]})
    unknown = await client.call_tool("get_passage", {"chunk_id": "no-such-passage"})
    bad_date = await client.call_tool("search", {"query": "HIMARS", "date_from": "Juni 2022"})
    return Conversation(
        tools,
        templates,
        search,
        ask,
        refused,
        timeline,
        documents,
        passage,
        unknown,
        bad_date,
        texts,
    )


def text_of(result: CallToolResult) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def check_conversation(conv: Conversation) -> None:
    """Everything a read-only server must have answered (each check names what failed)."""
    check_tools(conv.tools)
    assert conv.templates == ["newsrag://documents/{doc_id}"]
    check_documents(conv)
    check_search(conv)
    check_answer(conv)
    check_refusal(conv)
    check_timeline(conv)
    check_passage(conv)
    check_errors(conv)


def check_tools(tools: list[Tool]) -> None:
    by_name = {t.name: t for t in tools}
    assert set(by_name) == set(READ_TOOLS), sorted(by_name)
    for tool in tools:
        assert tool.description and len(tool.description) > 80, tool.name
        assert tool.output_schema and tool.output_schema.get("properties"), tool.name
        assert tool.annotations is not None and tool.annotations.read_only_hint, tool.name
    answer_schema = by_name["ask"].output_schema or {}
    assert ANSWER_KEYS <= set(answer_schema["properties"])
    citation = answer_schema["$defs"]["CitationOut"]["properties"]
    assert "exact words" in citation["quote"]["description"]


def check_documents(conv: Conversation) -> None:
    data = _data(conv.documents)
    assert data["total"] == 5 and data["offset"] == 0
    sources = {d["source"] for d in data["documents"]}
    assert sources == {p.as_posix() for p in SEEDS.glob("*.txt")}
    for d in data["documents"]:
        assert d["uri"] == f"newsrag://documents/{d['doc_id']}"
        body = conv.texts[d["doc_id"]]
        assert len(body) > 500 and body in Path(d["source"]).read_text(encoding="utf-8")
    assert "Documents 1-5 of 5" in text_of(conv.documents)


def check_search(conv: Conversation) -> None:
    data = _data(conv.search)
    assert data["query"] == SEARCH_QUERY and data["stages"][-1] == "dedupe"
    hits = data["hits"]
    assert len(hits) == 3 and [h["rank"] for h in hits] == [1, 2, 3]
    assert "HIMARS" in hits[0]["text"] or "Mehrfachraketenwerfer" in hits[0]["text"]
    for h in hits:
        assert set(h) == HIT_KEYS
        assert conv.texts[h["doc_id"]][h["start"] : h["end"]] == h["text"]
    text = text_of(conv.search)
    assert text.startswith("3 passages") and hits[0]["chunk_id"] in text


def check_answer(conv: Conversation) -> None:
    answer = _data(conv.ask)
    assert set(answer) == ANSWER_KEYS
    assert answer["answerable"] is True and answer["mode"] == "quote"
    assert "700 Millionen Dollar" in answer["answer"]
    assert answer["sentences"] and all(s["supported"] for s in answer["sentences"])
    assert answer["citations"], answer
    for c in answer["citations"]:
        seed_text = Path(c["source"]).read_text(encoding="utf-8")
        assert c["quote"] in seed_text, c["quote"]  # verbatim in the seed file
        assert conv.texts[c["doc_id"]][c["start"] : c["end"]] == c["quote"]
        assert c["passage"][c["start"] - c["passage_start"] :].startswith(c["quote"])
    first = answer["citations"][0]
    assert first["source"] == AID_SOURCE and first["date"] == "2022-06"
    text = text_of(conv.ask)
    assert "[1]" in text and first["quote"].strip() in text and "2022-06" in text
    assert "Sources:" in text and AID_SOURCE in text


def check_refusal(conv: Conversation) -> None:
    answer = _data(conv.refused)
    assert answer["answerable"] is False and answer["citations"] == []
    assert answer["passages"], "the nearest passages are still given"
    assert "Nearest passages (they do not answer it)" in text_of(conv.refused)


def check_timeline(conv: Conversation) -> None:
    timeline = _data(conv.timeline)
    assert timeline["query"] == TIMELINE_QUERY and timeline["by"] == "month"
    periods = [g["period"] for g in timeline["groups"]]
    assert periods == sorted(periods) and "2022-06" in periods
    entries = [e for g in [*timeline["groups"], timeline["undated"]] for e in g["entries"]]
    assert len(entries) == timeline["n_entries"] >= 2
    for e in entries:
        c = e["citation"]
        assert e["sentence"] == c["quote"] == conv.texts[c["doc_id"]][c["start"] : c["end"]]
    text = text_of(conv.timeline)
    assert text.startswith(f"Timeline of {TIMELINE_QUERY!r} by month") and "2022-06 (" in text
    assert entries[0]["citation"]["quote"].strip() in text


def check_passage(conv: Conversation) -> None:
    hit = _data(conv.search)["hits"][0]
    passage = _data(conv.passage)
    for key in ("chunk_id", "doc_id", "source", "title", "date", "text", "start", "end"):
        assert passage[key] == hit[key], key
    assert passage["uri"] == f"newsrag://documents/{hit['doc_id']}"
    assert f"chars {hit['start']}-{hit['end']}" in text_of(conv.passage)


def check_errors(conv: Conversation) -> None:
    assert conv.unknown_passage.is_error
    assert "no passage with chunk_id 'no-such-passage'" in text_of(conv.unknown_passage)
    assert conv.bad_date.is_error and "date_from" in text_of(conv.bad_date)


def _data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content
