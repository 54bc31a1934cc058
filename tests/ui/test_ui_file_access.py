"""The UI's add handler indexes only files uploaded through the UI.

Regression test for the file-read hole: a client could name any server path in a
`gradio.FileData` and have it indexed, then read its text back through search. This replays
that request against the real app (FastAPI + mounted Gradio) and checks the refusal, and that a
file uploaded the ordinary way is still indexed through the same handler.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rag.engine import Engine
from ui.server import create_app
from ui.service import Service

SECRET = "Geheimnis Kennwort Zugangscode 4711 des Servers."
ARTICLE = "Der Stadtrat beschloss am Montag den Bau einer Seilbahn zur Universität.\n"


@pytest.fixture
def client(tmp_path, settings, fake_embedder) -> Iterator[TestClient]:
    engine = Engine.open(tmp_path / "idx", settings, embedder=fake_embedder)
    seed = tmp_path / "seed.txt"
    seed.write_text("Ein erster Artikel über die Stadt.\n", encoding="utf-8")
    engine.add([seed])
    with (
        Service(engine) as service,
        TestClient(create_app(service), base_url="http://localhost") as c,
    ):
        yield c


def _call_add(client: TestClient, file_data: dict) -> list[tuple[str, str]]:
    """POST /gradio_api/call/add, then read its event stream: [(event, data), ...]."""
    started = client.post("/gradio_api/call/add", json={"data": [[file_data]]})
    assert started.status_code == 200, started.text
    event_id = started.json()["event_id"]
    body = client.get(f"/gradio_api/call/add/{event_id}").text
    events = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], fields.get("data", "")))
    return events


def _documents(client: TestClient) -> list[str]:
    return [d["source"] for d in client.get("/api/documents").json()["documents"]]


def test_a_server_path_named_by_a_client_is_refused(client, tmp_path, capfd):
    secret = tmp_path / "outside" / "s.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET, encoding="utf-8")
    before = _documents(client)
    file_data = {"path": str(secret), "meta": {"_type": "gradio.FileData"}, "orig_name": "s.txt"}
    events = _call_add(client, file_data)
    assert [e for e, _ in events][-1] == "error", events
    assert "not uploaded by a user" in events[-1][1]
    assert _documents(client) == before
    hits = client.post("/api/search", json={"query": "Kennwort Zugangscode 4711"}).json()["hits"]
    assert all("4711" not in h["text"] for h in hits)
    # The refusal is in the server's log output (Gradio reports the failed event there).
    assert f"Cannot move {secret}" in capfd.readouterr().err


def test_the_handler_itself_takes_only_files_in_the_upload_folder(tmp_path, caplog):
    """The second wall, should a Gradio version hand a client's path through unchecked."""
    import gradio as gr

    from ui.app import uploaded_files

    secret = tmp_path / "s.txt"
    secret.write_text(SECRET, encoding="utf-8")
    with caplog.at_level("WARNING", logger="ui.app"), pytest.raises(gr.Error):
        uploaded_files([str(secret)])
    assert any(
        "refused" in r.getMessage() and str(secret) in r.getMessage() for r in caplog.records
    )


def test_a_symlink_in_the_upload_folder_to_an_outside_file_is_refused(client, tmp_path):
    from ui.app import upload_folder

    secret = tmp_path / "s.txt"
    secret.write_text(SECRET, encoding="utf-8")
    link_dir = upload_folder() / "newsrag-test-link"
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / "s.txt"
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    try:
        file_data = {"path": str(link), "meta": {"_type": "gradio.FileData"}, "orig_name": "s.txt"}
        events = _call_add(client, file_data)
        assert [e for e, _ in events][-1] == "error", events
        assert "s.txt" not in _documents(client)
    finally:
        link.unlink(missing_ok=True)
        link_dir.rmdir()


def test_a_file_uploaded_through_the_ui_is_indexed(client):
    uploaded = client.post(
        "/gradio_api/upload", files={"files": ("seilbahn.txt", ARTICLE.encode(), "text/plain")}
    )
    assert uploaded.status_code == 200, uploaded.text
    path = uploaded.json()[0]
    file_data = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "seilbahn.txt"}
    events = _call_add(client, file_data)
    assert [e for e, _ in events][-1] == "complete", events
    assert "Added 1" in json.loads(events[-1][1])[0]
    assert "seilbahn.txt" in _documents(client)
