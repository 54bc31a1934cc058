"""newsrag for AI assistants: an MCP (Model Context Protocol) server over an `Engine`.

`create_server(engine)` builds it (tools: search, ask, timeline, list_documents,
get_passage; with writes allowed also add_documents, remove_document; resources:
newsrag://documents/{doc_id}); `rag mcp` serves it over stdio, `rag serve` at /mcp over
streamable HTTP.
"""

from __future__ import annotations

from rag.mcp_server.server import (
    DOCUMENT_URI,
    READ_TOOLS,
    WRITE_TOOLS,
    Access,
    AccessDenied,
    LocalAccess,
    create_server,
    document_uri,
)

__all__ = [
    "DOCUMENT_URI",
    "READ_TOOLS",
    "WRITE_TOOLS",
    "Access",
    "AccessDenied",
    "LocalAccess",
    "create_server",
    "document_uri",
]
