"""Bounded requests (#12 item 3): a body without Content-Length (chunked) is cut off at its
limit while it is read, and unknown API routes answer in the documented error shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rag.engine import Engine
from ui.server import MAX_JSON_BYTES, create_app
from ui.service import MiB, Service

CHUNK = 64 * 1024


@pytest.fixture
def service(tmp_path, settings, fake_embedder) -> Iterator[Service]:
    engine = Engine.open(tmp_path / "idx", settings, embedder=fake_embedder)
    with Service(engine, max_upload_bytes=MiB, max_total_bytes=MiB) as service:
        yield service


def _post_endless(app, path: str, content_type: bytes, head: bytes = b"") -> tuple[int, dict, int]:
    """POST an endless chunked body (no Content-Length) straight into the ASGI app: the
    status, the JSON body, and how many bytes the app pulled before answering."""
    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        if sent:  # answered: the client is gone
            return {"type": "http.disconnect"}
        body = head if not pulled and head else b"x" * CHUNK
        pulled += len(body)
        if pulled > 1024 * MiB:
            raise AssertionError("the app read a whole gigabyte")
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:7860"),
            (b"content-type", content_type),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 7860),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def test_a_chunked_upload_is_cut_off_at_the_limit(service):
    app = create_app(service, with_ui=False)
    head = (
        b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
    )
    status, body, pulled = _post_endless(
        app, "/api/documents", b"multipart/form-data; boundary=xyz", head
    )
    assert status == 413 and body["error"]["type"] == "UploadTooLargeError"
    assert pulled <= service.max_total_bytes + MiB + CHUNK  # the limit, plus framing, not more
    assert not service.has_index()


def test_a_chunked_json_body_is_cut_off_at_the_limit(service):
    app = create_app(service, with_ui=False)
    status, body, pulled = _post_endless(app, "/api/search", b"application/json")
    assert status == 413 and body["error"]["type"] == "RequestTooLarge"
    assert pulled <= MAX_JSON_BYTES + CHUNK


def test_unknown_api_routes_answer_in_the_error_shape(service):
    with TestClient(create_app(service), base_url="http://localhost") as client:
        for method in ("GET", "POST", "DELETE"):
            response = client.request(method, "/api/nothing/here")
            assert response.status_code == 404
            error = response.json()["error"]
            assert error["type"] == "NotFound" and "/docs" in error["message"]
