"""Embedders: the `Embedder` protocol and a name -> factory registry of backends."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from rag.errors import ConfigError

if TYPE_CHECKING:
    from rag.settings import EmbeddingSettings

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors of a fixed dimension."""

    @property
    def id(self) -> str:
        """Identifies the model (and so the vector space); recorded in an index's manifest."""

    @property
    def dim(self) -> int: ...

    @property
    def prompts(self) -> dict[str, str]:
        """Prefixes for "query" and "passage" texts (empty when the model uses none)."""

    @property
    def max_tokens(self) -> int:
        """Longest input in tokens (special tokens included) before truncation."""

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalized."""

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalized."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts without prompt and special tokens (used to size passages)."""


EmbedderFactory = Callable[["EmbeddingSettings"], Embedder]


def _torch(settings: EmbeddingSettings) -> Embedder:
    from rag.embedders.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings)


def _openvino(settings: EmbeddingSettings) -> Embedder:
    from rag.embedders import openvino

    if not openvino.available():
        raise ConfigError(
            "embedding.runtime is 'openvino' but the openvino package does not import; "
            "reinstall it (pip install openvino) or set embedding.runtime = 'torch'"
        )
    return openvino.OpenVINOEmbedder(settings)


BACKENDS: dict[str, EmbedderFactory] = {"openvino": _openvino, "torch": _torch}
"""Runtimes for the sentence-transformers model: both give the same vectors (one index)."""


def resolve_runtime(runtime: str) -> str:
    """`auto` -> openvino where it imports (1.4x faster on CPU), else torch."""
    if runtime != "auto":
        return runtime
    from rag.embedders import openvino

    if openvino.available():
        return "openvino"
    log.warning("openvino does not import: embedding with torch (slower); pip install openvino")
    return "torch"


def create_embedder(settings: EmbeddingSettings, backend: str | None = None) -> Embedder:
    """Build the embedder for `backend` (default: the settings' runtime); the model loads
    lazily on first use."""
    name = resolve_runtime(backend or settings.runtime)
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown embedding backend {name!r}; valid backends: {', '.join(sorted(BACKENDS))}"
        ) from None
    return factory(settings)
