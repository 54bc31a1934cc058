"""`rag serve` over a Qdrant index (qdrant-edge and qdrant-client's local mode): the service
asks the engine, not a directory, whether there is an index; search, ask, upload, the
document list, removal and export work through the HTTP API as over the local index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from rag.cli import main
from rag.engine import Engine
from rag.settings import load_settings
from ui.service import Service

from .test_server import AID_QUESTION, SEEDS, error_of, serving, sse_events

AID_FILE = "001_9706a68281888026.txt"


def _qdrant(settings: Any, url: str) -> Any:
    return settings.model_copy(
        update={"index": load_settings(index={"backend": "qdrant", "url": url}).index}
    )


@pytest.fixture(scope="module", params=["edge", "local-mode"])
def url(request, tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp(f"serve-{request.param}")
    return f"edge:{root / 'q'}" if request.param == "edge" else str(root / "q")


@pytest.fixture(scope="module")
def api(url, settings, embedder, tmp_path_factory) -> Iterator[httpx.Client]:
    """The API over an empty Qdrant location (`--index` points at an unused directory)."""
    unused = tmp_path_factory.mktemp("unused") / "idx"
    service = Service(Engine.open(unused, _qdrant(settings, url), embedder=embedder))
    with service, serving(service) as client:
        yield client


def test_an_empty_collection_is_an_empty_index_not_a_directory(api, url) -> None:
    info = api.get("/api/info")
    assert info.status_code == 200
    assert info.json()["index"]["exists"] is False and info.json()["index"]["path"] == url
    assert api.get("/api/documents").json() == {"documents": []}
    response = api.post("/api/search", json={"query": AID_QUESTION})
    assert response.status_code == 409
    message = error_of(response)["message"]
    assert f"rag index PATH --backend qdrant --url {url}" in message


def test_upload_then_search_ask_export_and_remove(api, url) -> None:
    files = [("files", (p.name, p.read_bytes())) for p in sorted(SEEDS.iterdir())]
    up = api.post("/api/documents", files=files)
    assert up.status_code == 200, up.text
    assert (up.json()["added"], up.json()["problems"]) == (5, [])

    info = api.get("/api/info").json()["index"]
    assert (info["backend"], info["path"]) == ("qdrant", url)
    assert info["counts"]["documents"] == 5
    documents = api.get("/api/documents").json()["documents"]
    assert sorted(d["source"] for d in documents) == sorted(p.name for p in SEEDS.iterdir())

    hits = api.post("/api/search", json={"query": AID_QUESTION, "k": 3}).json()["hits"]
    assert hits[0]["source"] == AID_FILE

    answer = api.post("/api/ask", json={"question": AID_QUESTION, "mode": "quote"}).json()
    assert answer["answerable"] is True
    assert answer["citations"][0]["source"] == AID_FILE
    assert "700 Millionen" in answer["answer"]
    streamed = sse_events(
        api.post("/api/ask/stream", json={"question": AID_QUESTION, "mode": "quote"}).text
    )
    assert streamed[-1][0] == "answer" and streamed[-1][1]["answer"] == answer["answer"]

    exported = api.post("/api/export", json={"format": "json", "answers": [answer]})
    assert exported.status_code == 200
    assert json.loads(exported.content)["index"]["path"] == url

    doc_id = next(d["doc_id"] for d in documents if d["source"] == AID_FILE)
    removed = api.delete(f"/api/documents/{doc_id}")
    assert removed.status_code == 200 and removed.json()["removed"] == 1
    assert len(api.get("/api/documents").json()["documents"]) == 4
    hits = api.post("/api/search", json={"query": AID_QUESTION, "k": 5}).json()["hits"]
    assert AID_FILE not in {h["source"] for h in hits}


# --- rag serve with RAG_INDEX__BACKEND=qdrant ---------------------------------------------------


@pytest.fixture
def cli_embedder(monkeypatch, embedder):
    monkeypatch.setattr("rag.engine.create_embedder", lambda settings: embedder)
    return embedder


def test_rag_serve_over_qdrant_edge_from_the_environment(
    tmp_path: Path, monkeypatch, cli_embedder
) -> None:
    edge = f"edge:{tmp_path / 'q'}"
    monkeypatch.setenv("RAG_INDEX__BACKEND", "qdrant")
    monkeypatch.setenv("RAG_INDEX__URL", edge)
    served: dict[str, Any] = {}

    def run(service: Service, **options: Any) -> None:
        served.update(has_index=service.has_index(), documents=len(service.documents()),
                      info=service.info()["index"])  # fmt: skip

    monkeypatch.setattr("ui.cli.run", run)
    result = CliRunner().invoke(main, ["serve", "--index", str(tmp_path / "unused")])
    assert result.exit_code == 1
    assert f"no index at {edge}; create one with `rag index PATH --backend qdrant --url {edge}`" \
        in result.stderr  # fmt: skip
    assert not served

    result = CliRunner().invoke(main, ["serve", "--index", str(tmp_path / "unused"),
                                       "--seed", str(SEEDS)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{edge}: 5 added" in result.stdout
    assert served["has_index"] and served["documents"] == 5
    assert served["info"]["backend"] == "qdrant"
    assert not (tmp_path / "unused").exists()  # nothing was written beside the settings' URL

    served.clear()
    result = CliRunner().invoke(main, ["serve", "--index", str(tmp_path / "unused")])
    assert result.exit_code == 0, result.output  # the collection is found: no --seed needed
    assert served["has_index"] and served["documents"] == 5
