"""Shared fixtures: the real packaged embedder (built once per machine into the user cache)
and a deterministic fake for plumbing tests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# No language model unless a test asks for one: the packaged 1.1 GB reader would otherwise be
# loaded by every follow-up question (and by `rag` subprocesses, which inherit this).
os.environ.setdefault("RAG_GENERATION__BACKEND", "none")

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"


MODEL_FIXTURES = frozenset({"embedder", "embedder_fp32"})
"""Fixtures that load a real model: a test that uses one (directly or through another
fixture) is marked `slow` here, so `pytest -m "not slow"` never loads a model."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # A test module may name its own model-loading fixtures (MODEL_FIXTURES there).
        local = getattr(getattr(item, "module", None), "MODEL_FIXTURES", frozenset())
        if (MODEL_FIXTURES | local) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def settings():
    from rag.settings import load_settings

    return load_settings(embedding={"show_progress": False})


@pytest.fixture(scope="session")
def embedder(settings):
    """The real multilingual-e5-small, through sentence-transformers (auto precision)."""
    from rag.embedders import create_embedder

    emb = create_embedder(settings.embedding)
    emb.model  # load now, so the first test does not pay for it
    return emb


@pytest.fixture(scope="session")
def embedder_fp32(settings):
    from rag.embedders import create_embedder

    # The reference: torch in fp32 (the default runtime is OpenVINO, checked against this).
    emb = create_embedder(
        settings.embedding.model_copy(update={"precision": "fp32"}), backend="torch"
    )
    emb.model
    return emb


class FakeEmbedder:
    """Hash-seeded vectors: deterministic, no model. For plumbing tests only."""

    def __init__(self, dim: int = 16, model_id: str = "fake-embedder") -> None:
        self._dim, self._id = dim, model_id

    id = property(lambda self: self._id)
    dim = property(lambda self: self._dim)
    prompts = property(lambda self: {"query": "", "passage": ""})
    max_tokens = property(lambda self: 512)

    def _vec(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(self._dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return (
            np.stack([self._vec(t) for t in texts])
            if texts
            else np.zeros((0, self._dim), np.float32)
        )

    embed_passages = embed_queries

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()
