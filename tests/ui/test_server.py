"""The HTTP API over a real socket (uvicorn in a thread), the real model and a real index of the
seeds: search, answers (whole and streamed), uploads and their refusals, removal, exports,
error responses, and the `Service`'s locking."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from rag.answer.types import Answer, AnswerDelta
from rag.cli import main
from rag.engine import Engine
from rag.errors import ConfigError, GeneratorError, IndexLockedError
from ui.server import create_app
from ui.service import Service, display_name

if TYPE_CHECKING:
    from typing_extensions import Self

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"

AID_QUESTION = "Wie viel ist das neue Hilfspaket von Joe Biden wert?"
AID_SOURCE = f"{SEEDS.as_posix()}/001_9706a68281888026.txt"
OFFENSIVE_SOURCE = f"{SEEDS.as_posix()}/000_849880feec34fc6b.txt"  # the only 2023 article
# The Rutte article: no date header, dated 2024-12 from its text.
CEASEFIRE_SOURCE = f"{SEEDS.as_posix()}/004_7d20457fd89d74f6.txt"
HIT_KEYS = {
    "rank", "score", "chunk_id", "doc_id", "source", "title", "date", "date_source", "text",
    "start", "end", "duplicates",
}  # fmt: skip
ANSWER_KEYS = {
    "question", "answer", "answerable", "mode", "model", "language", "sentences", "citations",
    "passages", "retrieval", "standalone_question", "phrase",
}  # fmt: skip
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
EXPORT_FORMATS = ["markdown", "json", "pdf", "bibtex", "csl"]

SEILBAHN = (
    "Der Stadtrat von Bielefeld beschloss am Montag den Bau einer Seilbahn vom Hauptbahnhof "
    "zur Universität. Die Bahn soll 2027 fahren und 40 Millionen Euro kosten.\n"
)
TORWART = (
    "# Arminia verpflichtet Torwart\n\nDer Fußballverein Arminia Bielefeld hat den Torwart "
    "Jonas Keller vom SC Paderborn verpflichtet. Er unterschrieb einen Vertrag bis 2026.\n"
)


# --- a live server ------------------------------------------------------------------------------


class LiveServer:
    """uvicorn serving `app` on a free loopback port, in a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@contextmanager
def serving(service: Service, *, with_ui: bool = False) -> Iterator[httpx.Client]:
    with (
        LiveServer(create_app(service, with_ui=with_ui)) as live,
        httpx.Client(base_url=live.url, timeout=120) as client,
    ):
        yield client


def copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("write.lock"))
    return dst


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return body["error"]


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of each Server-Sent Event in a response body."""
    events = []
    for block in text.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            events.append((fields["event"], json.loads(fields["data"])))
    return events


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_settings(settings):
    """The session's settings with a low quote-mode evidence threshold: these tests check that
    the API carries the engine's answers, not where the threshold is calibrated."""
    generation = settings.generation.model_copy(update={"answerable_threshold": 0.5})
    return settings.model_copy(update={"generation": generation})


@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory, server_settings, embedder) -> Path:
    path = tmp_path_factory.mktemp("server") / "idx"
    with Engine.open(path, server_settings, embedder=embedder) as engine:
        assert engine.add([SEEDS]).added == 5
    return path


@pytest.fixture(scope="module")
def service(seeded_dir, server_settings, embedder) -> Iterator[Service]:
    """Read-only tests share this one."""
    with Service(Engine.open(seeded_dir, server_settings, embedder=embedder)) as s:
        yield s


@pytest.fixture(scope="module")
def api(service) -> Iterator[httpx.Client]:
    with serving(service) as client:
        yield client


@pytest.fixture
def writable(seeded_dir, tmp_path, server_settings, embedder) -> Iterator[Service]:
    """A private copy of the seeded index, with small upload limits to test them."""
    engine = Engine.open(
        copy_index(seeded_dir, tmp_path / "idx"), server_settings, embedder=embedder
    )
    with Service(
        engine,
        max_upload_bytes=64 * 1024,
        max_total_bytes=160 * 1024,
        uploads_dir=tmp_path / "uploads",
    ) as s:
        yield s


@pytest.fixture
def wapi(writable) -> Iterator[httpx.Client]:
    with serving(writable) as client:
        yield client


# --- health, info, docs -------------------------------------------------------------------------


def test_health_and_info(api):
    assert api.get("/api/health").json() == {"status": "ok"}
    info = api.get("/api/info").json()
    assert info["index"]["counts"]["documents"] == 5
    assert info["index"]["spec"]["embedder"]["dim"] == 384
    assert "quote" in info["answer_modes"]
    assert info["uploads"]["types"] == [
        ".htm",
        ".html",
        ".jsonl",
        ".markdown",
        ".md",
        ".pdf",
        ".txt",
    ]
    assert info["retrieval"]["mode"] == "hybrid"


def test_openapi_schema_and_docs_are_served(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert {
        "/api/search", "/api/ask", "/api/ask/stream", "/api/documents",
        "/api/documents/{doc_id}", "/api/export", "/api/info", "/api/health",
    } <= set(paths)  # fmt: skip
    assert api.get("/docs").status_code == 200


def test_root_serves_the_ui_or_leads_to_the_docs(service):
    """With the Gradio UI (ui.app) present, `/` is the UI; without it, a redirect to /docs."""
    try:
        import ui.app  # noqa: F401
    except ModuleNotFoundError:
        has_ui = False
    else:
        has_ui = True
    with serving(service, with_ui=True) as client:
        root = client.get("/", follow_redirects=False)
        if has_ui:
            assert root.status_code == 200 and "text/html" in root.headers["content-type"]
            assert "gradio" in root.text.lower()
        else:
            assert root.status_code in (302, 307) and root.headers["location"] == "/docs"
        # The API still answers beside the UI.
        assert client.get("/api/health").json() == {"status": "ok"}
        assert client.post("/api/search", json={"query": AID_QUESTION}).status_code == 200


# --- search -------------------------------------------------------------------------------------


def test_search_returns_the_json_of_rag_search(api, service):
    response = api.post("/api/search", json={"query": AID_QUESTION, "k": 3})
    assert response.status_code == 200
    payload = response.json()
    assert set(payload) == {"query", "stages", "hits"}
    assert payload["query"] == AID_QUESTION
    assert payload["stages"] == ["dense", "keyword", "fusion", "rerank", "dedupe"]
    assert [h["rank"] for h in payload["hits"]] == [1, 2, 3]
    assert all(set(h) == HIT_KEYS for h in payload["hits"])
    top = payload["hits"][0]
    assert "700 Millionen Dollar" in top["text"] and top["source"] == AID_SOURCE
    # Exactly what `rag search --json` prints for the same query (it calls the same engine).
    expected = [h.to_json() for h in service.engine.search(AID_QUESTION, 3)]
    assert payload["hits"] == expected


def test_search_options_and_filters(api):
    keyword = api.post(
        "/api/search", json={"query": "Verhandlungen", "mode": "keyword", "rerank": False}
    ).json()
    assert keyword["stages"] == ["keyword", "dedupe"]
    dated = api.post(
        "/api/search",
        json={"query": "Verhandlungen mit Russland", "k": 50, "filters": {"date_from": "2023"}},
    ).json()
    assert dated["hits"] and {h["source"] for h in dated["hits"]} == {
        OFFENSIVE_SOURCE,
        CEASEFIRE_SOURCE,
    }
    assert {h["date_source"] for h in dated["hits"] if h["source"] == CEASEFIRE_SOURCE} == {
        "inferred"
    }
    english = api.post(
        "/api/search", json={"query": "Verhandlungen", "filters": {"languages": ["en"]}}
    ).json()
    assert english["hits"] == []


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"query": ""}, 422, "query"),
        ({"query": "   "}, 400, "the query is empty"),
        ({"query": "Nato", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ({"query": "Nato", "mode": "fuzzy"}, 422, "'dense', 'keyword' or 'hybrid'"),
        ({"query": "Nato", "filters": {"date_from": "Juni 2022"}}, 422, "date_from"),
        ({"query": "Nato", "top_k": 3}, 422, "top_k: Extra inputs are not permitted"),
        ({}, 422, "query: Field required"),
    ],
)
def test_bad_search_requests_say_what_is_wrong(api, body, status, needle):
    response = api.post("/api/search", json=body)
    assert response.status_code == status, response.text
    assert needle in error_of(response)["message"]


def test_malformed_json_is_a_readable_422(api):
    response = api.post(
        "/api/search", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in error_of(response)["message"]


# --- answers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aid_answer(api) -> dict[str, Any]:
    response = api.post("/api/ask", json={"question": AID_QUESTION})
    assert response.status_code == 200, response.text
    return response.json()


def test_ask_answers_with_citations_into_the_source(aid_answer):
    assert set(aid_answer) == ANSWER_KEYS
    assert aid_answer["answerable"] is True and aid_answer["mode"] == "quote"
    assert "700 Millionen" in aid_answer["answer"]
    cited = [c for c in aid_answer["citations"] if "700 Millionen" in c["quote"]]
    assert cited and cited[0]["source"] == AID_SOURCE
    c = cited[0]
    assert (
        c["passage"][c["start"] - c["passage_start"] : c["end"] - c["passage_start"]]
        == (c["quote"])
    )


def test_ask_with_history_and_filters(api):
    response = api.post(
        "/api/ask",
        json={
            "question": "Und wer soll am Verhandlungstisch sitzen?",
            "history": [{"question": AID_QUESTION, "answer": "700 Millionen Dollar [1]"}],
            "filters": {"date_from": "2022-06", "date_to": "2022-06"},
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["retrieval"]["filters"]["date_from"] == "2022-06"
    assert all(p["date"] == "2022-06" for p in answer["passages"])


def test_ask_bad_requests(api):
    unknown = api.post("/api/ask", json={"question": AID_QUESTION, "mode": "poem"})
    assert unknown.status_code == 400
    assert "poem" in error_of(unknown)["message"] and "quote" in error_of(unknown)["message"]
    blank = api.post("/api/ask", json={"question": "  "})
    assert blank.status_code == 400 and "empty" in error_of(blank)["message"]
    assert api.post("/api/ask", json={"question": ""}).status_code == 422


def test_ask_stream_sends_deltas_then_the_answer(api, aid_answer):
    with api.stream("POST", "/api/ask/stream", json={"question": AID_QUESTION}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    events = sse_events(body)
    names = [name for name, _ in events]
    assert names[-1] == "answer" and set(names[:-1]) == {"delta"} and len(names) >= 2
    answer = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "delta") == answer["answer"]
    assert answer == aid_answer


def test_ask_stream_refuses_bad_input_before_streaming(api):
    response = api.post("/api/ask/stream", json={"question": "   "})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "empty" in error_of(response)["message"]


class _BrokenGenerator:
    """A language model that writes a few words, then fails (as a server going away would)."""

    id = "broken-test-model"

    def stream(self, messages):
        yield "Die Nato "
        raise GeneratorError("the language model 'broken' at http://127.0.0.1:9/v1 went away")


def test_a_failing_language_model_is_502_and_an_error_event(seeded_dir, server_settings, embedder):
    engine = Engine.open(
        seeded_dir, server_settings, embedder=embedder, generator=_BrokenGenerator()
    )
    with Service(engine) as service, serving(service) as client:
        assert client.get("/api/info").json()["answer_modes"] == ["reader", "quote", "generate"]
        body = {"question": AID_QUESTION, "mode": "generate"}
        whole = client.post("/api/ask", json=body)
        assert whole.status_code == 502
        assert error_of(whole) == {
            "type": "GeneratorError",
            "message": "the language model 'broken' at http://127.0.0.1:9/v1 went away",
        }
        streamed = client.post("/api/ask/stream", json=body)
        assert streamed.status_code == 200  # the first words were already on their way
        events = sse_events(streamed.text)
        assert events[0][0] == "delta" and events[0][1]["text"].startswith("Die Nato")
        assert events[-1][0] == "error"
        assert events[-1][1]["error"]["type"] == "GeneratorError"


# --- uploads ------------------------------------------------------------------------------------


def test_upload_txt_and_md_then_they_are_searchable(wapi):
    files = [
        ("files", ("seilbahn.txt", SEILBAHN.encode(), "text/plain")),
        ("files", ("arminia.md", TORWART.encode(), "text/markdown")),
    ]
    response = wapi.post("/api/documents", files=files)
    assert response.status_code == 200, response.text
    report = response.json()
    assert set(report) == REPORT_KEYS
    assert (report["files"], report["added"], report["problems"]) == (2, 2, [])

    hit = wapi.post("/api/search", json={"query": "Wo soll eine Seilbahn gebaut werden?"})
    assert hit.json()["hits"][0]["source"] == "seilbahn.txt"
    hit = wapi.post("/api/search", json={"query": "Welcher Verein hat einen Torwart verpflichtet?"})
    top = hit.json()["hits"][0]
    assert (top["source"], top["title"]) == ("arminia.md", "Arminia verpflichtet Torwart")

    documents = wapi.get("/api/documents").json()["documents"]
    assert len(documents) == 7
    assert {"seilbahn.txt", "arminia.md"} <= {d["source"] for d in documents}

    again = wapi.post("/api/documents", files=files[:1]).json()
    assert (again["added"], again["unchanged"]) == (0, 1)


def test_an_uploaded_file_name_is_never_a_path(wapi, writable, tmp_path):
    names = ["../../etc/passwd.txt", "..\\..\\Windows\\evil.md", "/abs/olut.html"]
    bodies = [SEILBAHN, TORWART, f"<html><body><p>{SEILBAHN}</p></body></html>"]
    files = [("files", (n, b.encode())) for n, b in zip(names, bodies)]
    response = wapi.post("/api/documents", files=files)
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 3
    sources = {d["source"] for d in wapi.get("/api/documents").json()["documents"]}
    assert {"passwd.txt", "evil.md", "olut.html"} <= sources
    assert not any("/" in s or "\\" in s for s in sources - {d for d in sources if "seeds" in d})
    # Stored under content hashes only, inside the uploads folder.
    stored = sorted(p.name for p in writable.uploads_dir.iterdir())
    assert len(stored) == 3 and all(re.fullmatch(r"[0-9a-f]{32}\.(txt|md|html)", n) for n in stored)
    assert not (tmp_path / "etc").exists() and not (tmp_path.parent / "etc").exists()
    # The hash never leaks into a title: the one that falls back to the file name uses the name.
    titles = {d["source"]: d["title"] for d in wapi.get("/api/documents").json()["documents"]}
    assert all(not re.fullmatch(r"[0-9a-f]{32}", t or "") for t in titles.values())


def test_display_names():
    assert display_name("../../etc/passwd.txt") == "passwd.txt"
    assert display_name("C:\\Users\\x\\Bericht 2022.PDF") == "Bericht 2022.PDF"
    assert display_name("a\x00b\nc.txt") == "abc.txt"
    assert display_name("\u202eevil.txt") == "evil.txt"  # no right-to-left override tricks
    assert display_name('a<b>|"c".md') == "a_b___c_.md"
    assert (display_name(".md"), display_name("...txt"), display_name("")) == (
        "upload.md",
        "upload.txt",
        "upload",
    )
    assert display_name(".hidden.txt") == "hidden.txt"
    long = display_name("x" * 500 + ".md")
    assert len(long) == 120 and long.endswith(".md")


def test_upload_refusals(wapi):
    def upload(*files: tuple[str, bytes]) -> httpx.Response:
        return wapi.post("/api/documents", files=[("files", f) for f in files])

    too_big = upload(("gross.txt", b"Nato " * 20_000))  # 100 kB > 64 KiB per file
    assert too_big.status_code == 413
    err = error_of(too_big)
    assert err["type"] == "UploadTooLargeError" and "gross.txt" in err["message"]
    assert "64.0 KiB" in err["message"]

    together = upload(*[(f"teil{i}.txt", b"Nato " * 12_000) for i in range(3)])  # 3 x 60 kB
    assert together.status_code == 413 and "in all" in error_of(together)["message"]

    declared = wapi.post(  # over the limit by its Content-Length: refused before it is read
        "/api/documents", files=[("files", ("riesig.txt", b"x" * (1300 * 1024)))]
    )
    assert declared.status_code == 413

    exe = upload(("setup.exe", b"MZ\x90\x00"))
    assert exe.status_code == 415
    err = error_of(exe)
    assert err["type"] == "UnsupportedUploadError"
    assert "'.exe'" in err["message"] and ".pdf" in err["message"] and ".txt" in err["message"]
    assert upload(("README", b"Nato")).status_code == 415

    assert wapi.post("/api/documents").status_code == 422  # no files at all
    assert len(wapi.get("/api/documents").json()["documents"]) == 5  # nothing was added


def test_unreadable_uploads_are_problems_in_the_report(wapi):
    response = wapi.post(
        "/api/documents",
        files=[
            ("files", ("gut.txt", SEILBAHN.encode())),
            ("files", ("leer.txt", b"")),
            ("files", ("binaer.txt", b"\x00\x01\x02Nato")),
            ("files", ("kaputt.pdf", b"%PDF-1.4 not really")),
        ],
    )
    assert response.status_code == 200
    report = response.json()
    assert report["added"] == 1
    problems = {p["source"]: p["message"] for p in report["problems"]}
    assert set(problems) == {"leer.txt", "binaer.txt", "kaputt.pdf"}
    assert "empty" in problems["leer.txt"] and "binary" in problems["binaer.txt"]


def test_an_empty_index_says_how_to_fill_it_and_takes_uploads(tmp_path, server_settings, embedder):
    engine = Engine.open(tmp_path / "new", server_settings, embedder=embedder)
    with Service(engine) as service, serving(service) as client:
        assert client.get("/api/documents").json() == {"documents": []}
        assert client.get("/api/info").json()["index"]["counts"] == {"documents": 0, "chunks": 0}
        search = client.post("/api/search", json={"query": "Seilbahn"})
        assert search.status_code == 409
        assert "POST /api/documents" in error_of(search)["message"]
        assert client.post("/api/ask", json={"question": "Seilbahn?"}).status_code == 409
        up = client.post("/api/documents", files=[("files", ("seilbahn.txt", SEILBAHN.encode()))])
        assert up.json()["added"] == 1
        hits = client.post("/api/search", json={"query": "Seilbahn"}).json()["hits"]
        assert hits[0]["source"] == "seilbahn.txt"


# --- removal ------------------------------------------------------------------------------------


def test_remove_a_document(wapi):
    documents = wapi.get("/api/documents").json()["documents"]
    aid = next(d for d in documents if d["source"] == AID_SOURCE)
    response = wapi.delete(f"/api/documents/{aid['doc_id']}")
    assert response.status_code == 200
    assert response.json() == {"removed": 1, "chunks_removed": aid["n_chunks"]}
    assert aid["doc_id"] not in {
        d["doc_id"] for d in wapi.get("/api/documents").json()["documents"]
    }
    hits = wapi.post("/api/search", json={"query": AID_QUESTION, "k": 20}).json()["hits"]
    assert AID_SOURCE not in {h["source"] for h in hits}

    again = wapi.delete(f"/api/documents/{aid['doc_id']}")
    assert again.status_code == 404
    assert error_of(again)["type"] == "DocumentNotFoundError"
    assert aid["doc_id"] in error_of(again)["message"]


# --- export -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_answers_in_every_format(api, aid_answer, fmt):
    response = api.post("/api/export", json={"answers": [aid_answer], "format": fmt})
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    filename = re.search(r'filename="([^"]+)"', disposition).group(1)
    data = response.content
    if fmt == "pdf":
        assert data.startswith(b"%PDF-") and filename.endswith(".pdf")
        return
    text = data.decode("utf-8")
    if fmt == "json":
        document = json.loads(text)
        assert document["answers"][0]["answer"] == aid_answer["answer"]
    elif fmt == "markdown":
        assert "700 Millionen" in text and AID_QUESTION in text
    elif fmt == "bibtex":
        assert text.lstrip().startswith("@") and "Verhandlungstisch" in text
    else:
        assert isinstance(json.loads(text), list)


def test_export_asks_first_when_given_a_question(api):
    response = api.post("/api/export", json={"question": AID_QUESTION, "format": "markdown"})
    assert response.status_code == 200
    assert "700 Millionen" in response.text
    assert response.headers["content-type"].startswith("text/markdown")


def test_bad_export_requests(api, aid_answer):
    unknown = api.post("/api/export", json={"answers": [aid_answer], "format": "docx"})
    assert unknown.status_code == 400 and "markdown" in error_of(unknown)["message"]
    both = api.post(
        "/api/export", json={"answers": [aid_answer], "question": "x", "format": "json"}
    )
    assert both.status_code == 422 and "either" in error_of(both)["message"]
    broken = api.post("/api/export", json={"answers": [{"question": "x"}], "format": "json"})
    assert broken.status_code == 400 and "answers[0]" in error_of(broken)["message"]


# --- error mapping and locking, with a stand-in engine ------------------------------------------


class _StubEngine:
    """Stands in for `Engine` where a test needs an exact failure or timing; like the Engine,
    it holds one lock while it searches or answers."""

    def __init__(self, path: Path, error: BaseException | None = None) -> None:
        self.path = path
        self.error = error
        self.resume = threading.Event()
        self.closed_early = threading.Event()
        self._lock = threading.RLock()

    def search(self, query, k=None, filters=None, *, mode=None, rerank=None):
        with self._lock:
            if self.error is not None:
                raise self.error
            return []

    def plan(self, mode=None, rerank=None):
        return type("Plan", (), {"stages": lambda self: ["dense"]})()

    def ask_stream(self, question, filters=None, history=None, *, mode=None):
        with self._lock:
            try:
                yield AnswerDelta("eins ")
                self.resume.wait(10)  # a slow model
                yield AnswerDelta("zwei")
                yield Answer(question, "eins zwei", True, "quote", (), ())
            except GeneratorExit:
                self.closed_early.set()
                raise

    def close(self) -> None:
        pass


def stub_service(tmp_path: Path, error: BaseException | None = None) -> Service:
    service = Service(_StubEngine(tmp_path, error))  # type: ignore[arg-type]
    service.has_index = lambda: True  # type: ignore[method-assign]
    return service


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (ConfigError("k must be at least 1"), 400, "ConfigError"),
        (IndexLockedError("another process writes the index"), 503, "IndexLockedError"),
        (GeneratorError("model down"), 502, "GeneratorError"),
        (RuntimeError("secret /etc/path detail"), 500, "InternalError"),
    ],
)
def test_errors_map_to_statuses_without_leaking_internals(tmp_path, error, status, kind):
    with serving(stub_service(tmp_path, error)) as client:
        response = client.post("/api/search", json={"query": "Nato"})
    assert response.status_code == status
    err = error_of(response)
    assert err["type"] == kind
    if kind == "InternalError":
        assert "secret" not in response.text and "Traceback" not in response.text
    else:
        assert err["message"] == str(error)
    if status == 503:
        assert response.headers["retry-after"] == "5"


def test_a_slow_stream_reader_does_not_hold_the_lock(tmp_path):
    service = stub_service(tmp_path)
    stream = service.ask_stream("Frage?")
    assert next(stream) == AnswerDelta("eins ")
    # The engine is still generating (waiting on `resume`): the lock is held meanwhile.
    blocked = threading.Thread(target=service.search, args=("Nato",))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()
    service.engine.resume.set()
    blocked.join(5)
    assert not blocked.is_alive()
    # Generation is done; the reader has not read on, and the lock is free: a search runs now.
    done = threading.Event()
    threading.Thread(target=lambda: (service.search("Nato"), done.set())).start()
    assert done.wait(5)
    assert [type(x) for x in stream] == [AnswerDelta, Answer]


def test_closing_a_stream_early_stops_the_engine(tmp_path):
    service = stub_service(tmp_path)
    stream = service.ask_stream("Frage?")
    next(stream)
    stream.close()
    service.engine.resume.set()
    assert service.engine.closed_early.wait(5)


def test_concurrent_searches_and_an_upload_all_succeed(wapi):
    questions = [AID_QUESTION, "Was sagte Blinken?", "Verhandlungen mit Russland"] * 4
    results: list[int] = []

    def search(q: str) -> None:
        results.append(wapi.post("/api/search", json={"query": q}).status_code)

    threads = [threading.Thread(target=search, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    up = wapi.post("/api/documents", files=[("files", ("seilbahn.txt", SEILBAHN.encode()))])
    for t in threads:
        t.join()
    assert up.status_code == 200 and up.json()["added"] == 1
    assert results == [200] * len(questions)
    assert len(wapi.get("/api/documents").json()["documents"]) == 6


# --- rag serve ----------------------------------------------------------------------------------


@pytest.fixture
def cli_embedder(monkeypatch, embedder):
    """`rag serve` builds its own embedder; hand it the session's instead of loading another."""
    monkeypatch.setattr("rag.engine.create_embedder", lambda settings: embedder)
    return embedder


def test_rag_serve_without_an_index_says_how_to_make_one(tmp_path, cli_embedder):
    missing = tmp_path / "none"
    result = CliRunner().invoke(main, ["serve", "--index", str(missing)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    assert f"`rag index PATH --index {missing}`" in result.stderr
    assert "--seed PATH" in result.stderr and "--empty" in result.stderr


def test_rag_serve_indexes_seeds_then_serves(tmp_path, monkeypatch, cli_embedder):
    served: dict[str, Any] = {}

    def run(service: Service, *, host: str, port: int, with_ui: bool, **options: Any) -> None:
        served.update(host=host, port=port, with_ui=with_ui, documents=len(service.documents()))

    monkeypatch.setattr("ui.cli.run", run)
    args = ["serve", "--index", str(tmp_path / "idx"), "--seed", str(SEEDS), "--no-ui"]
    result = CliRunner().invoke(main, [*args, "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "5 added" in result.stdout
    assert served == {"host": "127.0.0.1", "port": 8123, "with_ui": False, "documents": 5}


def test_rag_serve_takes_its_defaults_from_the_server_settings(tmp_path, monkeypatch, cli_embedder):
    served: dict[str, Any] = {}

    def run(service: Service, *, host: str, port: int, with_ui: bool, **options: Any) -> None:
        served.update(
            host=host, port=port, upload=service.max_upload_bytes, files=service.max_files
        )

    monkeypatch.setattr("ui.cli.run", run)
    monkeypatch.setenv("RAG_SERVER__PORT", "8124")
    monkeypatch.setenv("RAG_SERVER__MAX_UPLOAD_BYTES", "1024")
    monkeypatch.setenv("RAG_SERVER__MAX_FILES", "3")
    args = ["serve", "--index", str(tmp_path / "idx"), "--empty"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert served == {"host": "127.0.0.1", "port": 8124, "upload": 1024, "files": 3}

    result = CliRunner().invoke(main, [*args, "--port", "8125", "--max-upload-mb", "2"])
    assert result.exit_code == 0, result.output
    assert served == {"host": "127.0.0.1", "port": 8125, "upload": 2 * 1024 * 1024, "files": 3}
