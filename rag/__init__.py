"""newsrag: question answering over news archives with verifiable citations.

`rag.Engine` is the facade. Importing this package loads no model and touches no network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.engine import AddReport, Engine, Filters
    from rag.settings import Settings, load_settings
    from rag.types import Document, Hit

__all__ = ["AddReport", "Document", "Engine", "Filters", "Hit", "Settings", "load_settings"]

_LAZY = {
    "Engine": "rag.engine",
    "AddReport": "rag.engine",
    "Filters": "rag.engine",
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
