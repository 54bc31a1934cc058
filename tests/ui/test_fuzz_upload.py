"""Fuzz (#12 item 3, bounded input): hostile files of every type through `POST /api/documents`.

Every response is 200 with the add report, or a 4xx whose body is exactly
`{"error": {"type", "message"}}`; never a 500, never a traceback. Every file is indexed or a
problem in the report (as for `rag index`, see tests/rag/test_fuzz.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rag.engine import Engine
from tests.rag.hostile import Hostile, hostile_files, tally, unaccounted
from ui.server import create_app
from ui.service import Service

SEED = 20240613
FILES = 1000
REPORT_KEYS = {
    "files",
    "documents",
    "added",
    "updated",
    "unchanged",
    "chunks",
    "seconds",
    "problems",
}


@pytest.fixture
def client(tmp_path, settings, fake_embedder) -> Iterator[TestClient]:
    engine = Engine.open(tmp_path / "idx", settings, embedder=fake_embedder)
    with Service(engine) as service:
        app = create_app(service, with_ui=False)
        # The base URL matters: a Host that is neither an IP nor localhost is refused.
        with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as c:
            yield c


def post(client: TestClient, files: list[tuple[str, bytes]]) -> tuple[int, dict]:
    response = client.post(
        "/api/documents",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
    )
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    body = response.json()
    if response.status_code != 200:
        error = body["error"]
        assert set(body) == {"error"} and set(error) - {"details"} == {"type", "message"}, body
        assert "details" not in error or error["type"] == "ValidationError", body  # documented
        assert error["message"], body
    return response.status_code, body


def test_hostile_uploads_are_indexed_or_reported(client):
    files = hostile_files(SEED, FILES)
    rng = random.Random(SEED)
    problems: list[dict] = []
    started = time.perf_counter()
    position = 0
    while position < len(files):
        batch: list[Hostile] = files[position : position + rng.randint(1, 100)]
        position += len(batch)
        status, report = post(client, [(f.name, f.data) for f in batch])
        assert status == 200, report
        assert set(report) == REPORT_KEYS and report["files"] == len(batch)
        problems += report["problems"]
    seconds = time.perf_counter() - started
    indexed = [d["source"] for d in client.get("/api/documents").json()["documents"]]

    names = {f.name: f.name for f in files}  # an upload's source is its file name
    assert unaccounted(files, names, indexed, problems) == []
    assert sum(f.valid for f in files) > 100
    print(f"\nupload: {tally(files, names, indexed, problems)}, {seconds:.1f} s")


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.txt",
        "\u202egnp.txt",
        "\u200b\u200b.md",
        "a" * 300 + ".txt",
        "Grüße\x00\x1b[31m.txt",
        "C:\\Users\\x\\bericht.html",
        ".jsonl",
        "",
    ],
    ids=["traversal", "rtl", "zero-width", "long", "controls", "windows", "extension", "empty"],
)
def test_odd_upload_names_are_shown_cleanly(client, name):
    status, body = post(client, [(name, "Ein Artikel über die Verhandlungen.".encode())])
    if status != 200:
        assert 400 <= status < 500
        return
    documents = client.get("/api/documents").json()["documents"]
    [shown] = [d["source"] for d in documents] + [p["source"] for p in body["problems"]]
    assert shown and "/" not in shown and "\\" not in shown
    assert all(c.isprintable() for c in shown), shown


@pytest.mark.parametrize(
    "files",
    [
        [("bild.png", b"\x89PNG\r\n\x1a\n")],
        [("ok.txt", b"Ein Satz."), ("archiv.zip", b"PK\x03\x04")],
        [(f"f{i}.txt", b"x") for i in range(101)],
        [("noext", b"Ein Satz.")],
    ],
)
def test_refused_uploads_are_one_clean_error(client, files):
    status, body = post(client, files)
    assert 400 <= status < 500, body


def test_the_same_name_twice_in_one_upload_is_one_problem(client):
    status, report = post(client, [("zwei.txt", b"Erster Text."), ("zwei.txt", b"Zweiter Text.")])
    assert status == 200 and report["documents"] == 1
    [problem] = report["problems"]
    assert problem["source"] == "zwei.txt" and "duplicate document id" in problem["message"]
