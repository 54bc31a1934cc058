"""`rag migrate` moves the seed index into Qdrant (qdrant-client's local mode) without
re-embedding, and the same questions get the same answers and hits on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli import main
from rag.engine import Engine
from rag.settings import load_settings
from rag.types import Filters
from tests.seeds import SEED_QUESTIONS, SEEDS

QUESTIONS = SEED_QUESTIONS


@pytest.fixture(scope="module")
def local_dir(tmp_path_factory, settings, embedder) -> Path:
    root = tmp_path_factory.mktemp("migrate")
    with Engine.open(root / "local", settings, embedder=embedder) as engine:
        assert engine.add([SEEDS]).added == 5
    return root / "local"


@pytest.fixture(scope="module", params=["local-mode", "edge"])
def both(request, local_dir, settings, embedder) -> Iterator[tuple[Engine, Engine, Path]]:
    """The seed index migrated to qdrant-client's local mode or to qdrant-edge; both opened."""
    root = local_dir.parent
    url = str(root / request.param) if request.param != "edge" else f"edge:{root / 'edge'}"
    result = CliRunner().invoke(main, ["migrate", "--from", str(local_dir), "--to", url])
    assert result.exit_code == 0, result.output
    assert "5 documents copied, 0 unchanged" in result.output
    qdrant = settings.model_copy(
        update={"index": load_settings(index={"backend": "qdrant", "url": url}).index}
    )
    with (
        Engine.open(root / "local", settings, embedder=embedder) as local,
        Engine.open(root / "unused", qdrant, embedder=embedder) as remote,
    ):
        yield local, remote, root


@pytest.mark.parametrize("item", QUESTIONS, ids=[q["id"] for q in QUESTIONS])
def test_ask_gives_the_same_answer_on_both_backends(both, item) -> None:
    local, remote, _ = both
    a, b = local.ask(item["question"], mode="quote"), remote.ask(item["question"], mode="quote")
    assert (b.text, b.answerable) == (a.text, a.answerable)
    assert [(c.chunk_id, c.start, c.end, c.quote) for c in b.citations] == [
        (c.chunk_id, c.start, c.end, c.quote) for c in a.citations
    ]


@pytest.mark.parametrize("filters", [None, Filters(date_from="2022-06", date_to="2023")])
def test_search_gives_the_same_hits_on_both_backends(both, filters) -> None:
    local, remote, _ = both
    questions = [q["question"] for q in QUESTIONS]
    for mode in ("hybrid", "dense"):
        hits_a = local.search_batch(questions, 5, filters, mode=mode)
        hits_b = remote.search_batch(questions, 5, filters, mode=mode)
        for a, b in zip(hits_a, hits_b):
            assert [h.chunk_id for h in b] == [h.chunk_id for h in a]
            assert [h.score for h in b] == pytest.approx([h.score for h in a], abs=1e-4)
            assert [(h.title, h.date, h.source, h.start, h.end) for h in b] == [
                (h.title, h.date, h.source, h.start, h.end) for h in a
            ]


def test_a_second_migrate_and_a_reindex_find_everything_unchanged(
    both, settings, embedder, tmp_path
) -> None:
    local, _, root = both
    target = str(tmp_path / "again")  # the fixture's is open (local mode: one client at a time)
    args = ["migrate", "--from", str(root / "local"), "--to", target, "--json"]
    first, again = CliRunner().invoke(main, args), CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert (json.loads(first.output)["copied"], json.loads(first.output)["unchanged"]) == (5, 0)
    report = json.loads(again.output)
    assert (report["copied"], report["unchanged"]) == (0, 5)
    assert report["counts"] == local.info()["counts"]
    qdrant = settings.model_copy(
        update={"index": load_settings(index={"backend": "qdrant", "url": target}).index}
    )
    with Engine.open(root / "unused", qdrant, embedder=embedder) as remote:
        added = remote.add([SEEDS])  # content hashes travelled: nothing is embedded again
        assert (added.added, added.updated, added.unchanged) == (0, 0, 5)
        assert remote.info()["spec"] == local.info()["spec"]
