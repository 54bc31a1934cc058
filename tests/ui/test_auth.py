"""Accounts and roles on a shared server (#12 item 2): tokens, login, Host and Origin checks,
rate limits, the audit log, and `rag serve` refusing to listen beyond loopback unguarded.

Runs the real app (FastAPI + mounted Gradio) over a real index with the fake embedder."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from rag.engine import Engine
from rag.errors import ConfigError
from rag.settings import ServerSettings
from ui.auth import AuditLog, RateLimiter, Security, TokenStore, host_allowed, origin_allowed
from ui.cli import security_for
from ui.server import create_app
from ui.service import Service

ARTICLE = "Der Stadtrat beschloss am Montag den Bau einer Seilbahn zur Universität.\n"


@pytest.fixture
def store(tmp_path) -> TokenStore:
    return TokenStore(tmp_path / "auth" / "tokens.json")


@pytest.fixture
def tokens(store) -> dict[str, str]:
    return {role: store.create(f"{role}-1", role) for role in ("reader", "editor", "admin")}


@pytest.fixture
def secured(tmp_path, settings, fake_embedder, store) -> Iterator[tuple[TestClient, Security]]:
    engine = Engine.open(tmp_path / "idx", settings, embedder=fake_embedder)
    seed = tmp_path / "seed.txt"
    seed.write_text(ARTICLE, encoding="utf-8")
    engine.add([seed])
    security = Security(
        store=store,
        limiter=RateLimiter({"ask": 3, "upload": 100}),
        audit=AuditLog(tmp_path / "auth" / "audit.jsonl"),
    )
    with (
        Service(engine) as service,
        TestClient(create_app(service, security=security), base_url="http://localhost") as c,
    ):
        yield c, security


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upload(client: TestClient, token: str | None, name: str = "neu.txt"):
    headers = bearer(token) if token else {}
    files = [("files", (name, b"Ein neuer Artikel \xc3\xbcber den Hafen.\n", "text/plain"))]
    return client.post("/api/documents", files=files, headers=headers)


# --- tokens ---------------------------------------------------------------------------------------
def test_a_token_is_verified_and_cannot_be_recovered_from_disk(store):
    token = store.create("ada", "editor")
    principal = store.verify(token)
    assert principal is not None and (principal.name, principal.role) == ("ada", "editor")
    text = store.path.read_text(encoding="utf-8")
    secret = token.split("_", 2)[2]
    assert secret not in text and token not in text
    assert "scrypt" not in text and json.loads(text)["tokens"][0]["hash"]
    assert store.path.stat().st_mode & 0o077 == 0  # only the owner can read it
    assert store.verify(token[:-1] + ("x" if token[-1] != "x" else "y")) is None
    assert store.verify("nr_x") is None and store.verify("") is None


def test_revoking_in_another_process_takes_effect_at_once(store):
    token = store.create("ada", "reader")
    assert store.verify(token) is not None  # remembered now
    other = TokenStore(store.path)  # e.g. `rag tokens revoke` in a shell
    assert other.revoke("ada") and not other.revoke("ada")
    assert store.verify(token) is None


def test_bad_names_and_roles_are_refused_with_the_fix(store):
    with pytest.raises(ConfigError, match="letters, digits"):
        store.create("a b", "reader")
    with pytest.raises(ConfigError, match="valid: reader, editor, admin"):
        store.create("ada", "owner")
    store.create("ada", "reader")
    with pytest.raises(ConfigError, match="revoke it first"):
        store.create("ada", "editor")


# --- the guard ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/info"),
        ("GET", "/api/documents"),
        ("POST", "/api/search"),
        ("POST", "/api/ask"),
        ("POST", "/api/ask/stream"),
        ("POST", "/api/export"),
        ("DELETE", "/api/documents/x"),
        ("POST", "/gradio_api/call/add"),
        ("GET", "/gradio_api/info"),
    ],
)
def test_no_token_gets_401_everywhere(secured, method, path):
    client, _ = secured
    response = client.request(method, path, json={"query": "Seilbahn", "question": "Was?"})
    assert response.status_code == 401, response.text
    assert response.json()["error"]["type"] == "Unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_ui_page_sends_a_visitor_to_the_login(secured):
    client, _ = secured
    for page in ("/", "/config", "/docs"):
        response = client.get(page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/api/health").status_code == 200  # liveness stays open


def test_a_reader_reads_but_cannot_write(secured, tokens):
    client, _ = secured
    reader = bearer(tokens["reader"])
    assert client.post("/api/search", json={"query": "Seilbahn"}, headers=reader).status_code == 200
    assert client.post("/api/ask", json={"question": "Was baut der Stadtrat?"}, headers=reader)
    refused = upload(client, tokens["reader"])
    assert refused.status_code == 403 and "'editor'" in refused.json()["error"]["message"]
    doc_id = client.get("/api/documents", headers=reader).json()["documents"][0]["doc_id"]
    assert client.delete(f"/api/documents/{doc_id}", headers=reader).status_code == 403
    assert len(client.get("/api/documents", headers=reader).json()["documents"]) == 1


def test_an_editor_writes_and_the_audit_log_says_who(secured, tokens, tmp_path):
    client, security = secured
    added = upload(client, tokens["editor"], "hafen.txt")
    assert added.status_code == 200 and added.json()["added"] == 1
    docs = client.get("/api/documents", headers=bearer(tokens["editor"])).json()["documents"]
    doc_id = next(d["doc_id"] for d in docs if d["source"] == "hafen.txt")
    removed = client.delete(f"/api/documents/{doc_id}", headers=bearer(tokens["editor"]))
    assert removed.status_code == 200
    lines = [json.loads(x) for x in (tmp_path / "auth" / "audit.jsonl").read_text().splitlines()]
    assert [(x["who"], x["action"]) for x in lines] == [
        ("editor-1", "upload"),
        ("editor-1", "remove"),
    ]
    assert lines[0]["files"] == ["hafen.txt"] and lines[1]["doc_ids"] == [doc_id]
    assert all(tokens["editor"] not in json.dumps(x) for x in lines)


def test_a_revoked_token_is_refused_at_the_next_request(secured, tokens, store):
    client, _ = secured
    headers = bearer(tokens["reader"])
    assert client.get("/api/info", headers=headers).status_code == 200
    TokenStore(store.path).revoke("reader-1")
    assert client.get("/api/info", headers=headers).status_code == 401


def test_login_opens_a_session_that_ends_with_its_token(secured, tokens, store):
    client, _ = secured
    wrong = client.post("/login", data={"token": "nr_0_nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "Unknown or revoked token" in wrong.text
    ok = client.post("/login", data={"token": tokens["reader"]}, follow_redirects=False)
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert client.get("/api/info").status_code == 200  # the session cookie carries it
    assert client.get("/", follow_redirects=False).status_code == 200
    TokenStore(store.path).revoke("reader-1")
    assert client.get("/api/info").status_code == 401


def test_the_ui_refuses_a_readers_upload(secured, tokens, tmp_path):
    client, _ = secured
    client.post("/login", data={"token": tokens["reader"]})
    page = tmp_path / "x.txt"
    page.write_text(ARTICLE)
    started = client.post("/gradio_api/call/add", json={"data": [None]})
    assert started.status_code == 200, started.text
    body = client.get(f"/gradio_api/call/add/{started.json()['event_id']}").text
    assert "event: error" in body and "needs editor" in body


def test_asks_are_rate_limited_per_token(secured, tokens):
    client, _ = secured
    headers = bearer(tokens["reader"])
    codes = [
        client.post("/api/ask", json={"question": "Was baut der Stadtrat?"}, headers=headers)
        for _ in range(4)
    ]
    assert [c.status_code for c in codes[:3]] == [200, 200, 200]
    assert codes[3].status_code == 429 and int(codes[3].headers["retry-after"]) >= 1
    assert "server.ask_per_minute" in codes[3].json()["error"]["message"]
    other = bearer(tokens["editor"])  # another token has its own budget
    assert client.post("/api/ask", json={"question": "Was?"}, headers=other).status_code == 200


# --- host and origin --------------------------------------------------------------------------
def test_a_foreign_host_is_refused_even_without_auth(tmp_path, settings, fake_embedder):
    engine = Engine.open(tmp_path / "idx", settings, embedder=fake_embedder)
    with Service(engine) as service:
        app = create_app(service, with_ui=False)
        with TestClient(app, base_url="http://evil.example") as c:
            refused = c.get("/api/health")
            assert refused.status_code == 403 and refused.json()["error"]["type"] == "ForbiddenHost"
        with TestClient(app, base_url="http://127.0.0.1:7860") as c:
            assert c.get("/api/health").status_code == 200
            cross = c.post(
                "/api/documents",
                files=[("files", ("a.txt", b"Text.\n", "text/plain"))],
                headers={"Origin": "http://evil.example"},
            )
            assert cross.status_code == 403
            assert cross.json()["error"]["type"] == "CrossOriginRequest"
            assert "server.allowed_origins" in cross.json()["error"]["message"]
            fetched = c.post(
                "/api/search", json={"query": "x"}, headers={"Sec-Fetch-Site": "cross-site"}
            )
            assert fetched.status_code == 403
            assert not service.has_index()  # the cross-origin upload wrote nothing


def test_host_and_origin_rules():
    assert host_allowed("127.0.0.1:7860", ()) and host_allowed("[::1]:7860", ())
    assert host_allowed("localhost:7860", ()) and host_allowed("10.0.0.5", ())
    assert not host_allowed("evil.example", ()) and not host_allowed("", ())
    assert host_allowed("News.Example.org:443", ["news.example.org"])
    assert host_allowed("anything.example", ["*"])
    assert origin_allowed("http://127.0.0.1:7860", "127.0.0.1:7860", ())
    assert not origin_allowed("http://127.0.0.1:9999", "127.0.0.1:7860", ())
    assert not origin_allowed("null", "127.0.0.1:7860", ())
    assert origin_allowed("https://intranet.example/", "10.0.0.5", ["https://intranet.example"])


# --- rag serve ------------------------------------------------------------------------------------
def test_serve_refuses_a_public_address_without_tokens(tmp_path):
    server = ServerSettings(tokens_file=tmp_path / "tokens.json")
    with pytest.raises(ConfigError, match="--insecure"):
        security_for(server, "0.0.0.0", insecure=False)
    assert not security_for(server, "0.0.0.0", insecure=True).auth_on
    assert not security_for(server, "127.0.0.1", insecure=False).auth_on
    with pytest.raises(ConfigError, match="rag tokens create"):
        security_for(server.model_copy(update={"auth": "on"}), "127.0.0.1", insecure=False)
    TokenStore(server.tokens_path()).create("ada", "admin")
    guarded = security_for(server, "0.0.0.0", insecure=False)  # auth = auto: tokens exist now
    assert guarded.auth_on
    assert not security_for(server.model_copy(update={"auth": "off"}), "::1", False).auth_on


def test_rate_limiter_refills():
    limiter = RateLimiter({"ask": 60})
    assert all(limiter.wait("a", "ask") == 0 for _ in range(60))
    assert 0 < limiter.wait("a", "ask") <= 1.0
    assert limiter.wait("a", "other") == 0  # no limit set
