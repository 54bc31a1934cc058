"""newsrag: question answering over news archives with verifiable citations.

`rag.Engine` is the facade. Importing this package loads no model and touches no network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.engine import Engine
    from rag.ingest.indexer import AddReport
    from rag.settings import Settings, load_settings
    from rag.types import Document, Filters, Hit

__all__ = ["AddReport", "Document", "Engine", "Filters", "Hit", "Settings", "load_settings"]

_LAZY = {
    "Engine": "rag.engine",
    "AddReport": "rag.ingest.indexer",
    "Filters": "rag.types",
    "Settings": "rag.settings",
    "load_settings": "rag.settings",
    "Document": "rag.types",
    "Hit": "rag.types",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
