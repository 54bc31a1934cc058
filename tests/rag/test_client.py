"""`rag.client` without a server: the JSON records it reads round-trip to equal dataclasses, the
Server-Sent Events parser, the file name of an export, the server URL, the error classes, and
that importing it loads no model. (Against a real server: tests/ui/test_client.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rag.answer.types import Answer, AnswerSentence, Citation, Phrase
from rag.client import (
    AccessDeniedError,
    Client,
    ServerError,
    ServerUnavailableError,
    _filename,
    _sse_events,
)
from rag.errors import (
    ConfigError,
    GeneratorError,
    IndexLockedError,
    IndexNotFoundError,
    IndexUsageError,
    RagError,
)
from rag.export.answer_json import answer_entry, answer_from_json, answer_record, hit_from_json
from rag.export.answer_json import hit_record as encode_hit
from rag.types import DuplicateSource, Hit

TEXT = "Die USA liefern HIMARS an die Ukraine. Das Paket ist 700 Millionen Dollar wert."

HIT = Hit(
    rank=1,
    score=0.8123456789012345,  # more digits than the public shape's 6
    chunk_id="c1",
    doc_id="d1",
    source="archiv/2022-06-01.pdf",
    title="Hilfspaket",
    date="2022-06-01",
    text=TEXT,
    start=10,
    end=10 + len(TEXT),
    page=3,
    language="de",
    duplicates=(DuplicateSource("d2", "andere.txt", None, "2022-06", "c9"),),
    row_id=7,
    url="https://example.org/hilfspaket",
    date_source="inferred",
)
BARE_HIT = Hit(2, 0.5, "c2", "d2", "andere.txt", None, None, "Kurz.", 0, 5)
ANSWER = Answer(
    question="Was liefern die USA?",
    text="Die USA liefern HIMARS an die Ukraine. [1]",
    answerable=True,
    mode="reader",
    sentences=(
        AnswerSentence(
            "Die USA liefern HIMARS an die Ukraine.",
            (1,),
            True,
            (),
            similarity=0.9012345678,
            repaired_from=(2,),
        ),
        AnswerSentence("Mehr weiß man nicht.", (), False, ("no citation",)),
    ),
    citations=(
        Citation(
            1,
            "c1",
            "d1",
            "archiv/2022-06-01.pdf",
            "Hilfspaket",
            "2022-06-01",
            "Die USA liefern HIMARS an die Ukraine.",
            10,
            48,
            TEXT,
            10,
            page=3,
            url="https://example.org/hilfspaket",
            date_source="inferred",
        ),
    ),
    passages=(HIT, BARE_HIT),
    model="qwen2.5-coder-1.5b",
    language="de",
    standalone_question="Was liefern die USA an die Ukraine?",
    retrieval={"k": 5, "stages": ["dense"]},
    evidence=1.8814010109220232,
    phrase=Phrase("HIMARS", 1, 26, 32),
)


def wire(data: object) -> object:
    """What a record looks like after the HTTP body: JSON text, parsed again."""
    return json.loads(json.dumps(data, ensure_ascii=False))


# --- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize("hit", [HIT, BARE_HIT], ids=["every-field", "bare"])
def test_a_hit_record_round_trips(hit):
    record = wire(encode_hit(hit))
    assert hit_from_json(record) == hit
    assert encode_hit(hit_from_json(record)) == record
    assert hit_from_json(record).score == hit.score  # exact, not rounded to 6 digits


@pytest.mark.parametrize(
    "answer",
    [ANSWER, Answer("Wer?", "Dazu steht nichts in den Quellen.", False, "quote", (), ())],
    ids=["every-field", "unanswerable"],
)
def test_an_answer_record_round_trips(answer):
    record = wire(answer_record(answer))
    assert answer_from_json(record) == answer
    assert answer_record(answer_from_json(record)) == record


def test_the_public_shapes_alone_lose_what_the_records_keep():
    """Why the client asks for `"full": true`: without it the dataclasses would differ."""
    assert hit_from_json(wire(HIT.to_json())) != HIT  # page, language, url, exact score
    assert answer_from_json(wire(ANSWER.to_json())) != ANSWER  # evidence, similarity, passages


def test_the_export_entry_is_unchanged_by_the_record():
    entry = answer_entry(ANSWER)
    assert "url" not in entry["passages"][0]
    assert entry["passages"][0]["score"] == round(HIT.score, 6)
    assert answer_record(ANSWER)["passages"][0]["url"] == HIT.url


# --- Server-Sent Events, file names, URLs ---------------------------------------------------------
def test_sse_events_are_parsed_as_the_server_writes_them():
    body = (
        'event: delta\ndata: {"text": "Die "}\n\n'
        ": a comment line\n"
        'event: delta\ndata: {"text": "USA\\n"}\n\n'
        'event: answer\ndata: {"a": 1}\n\n'
    )
    assert list(_sse_events(iter(body.split("\n")))) == [
        ("delta", {"text": "Die "}),
        ("delta", {"text": "USA\n"}),
        ("answer", {"a": 1}),
    ]


def test_an_exports_file_name_is_read_from_its_content_disposition():
    header = "attachment; filename=\"newsrag-_-.md\"; filename*=UTF-8''newsrag-%C3%BCber.md"
    assert _filename(header) == "newsrag-über.md"
    assert _filename('attachment; filename="newsrag-a.json"') == "newsrag-a.json"
    assert _filename("") == "newsrag-export"


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://127.0.0.1:7860", "http://127.0.0.1:7860"),
        ("http://127.0.0.1:7860/", "http://127.0.0.1:7860"),
        (" https://news.example.org/newsrag/api/ ", "https://news.example.org/newsrag"),
    ],
)
def test_the_server_url_is_normalised(given, base):
    with Client(given) as client:
        assert client.url == base


def test_a_url_without_scheme_says_how_to_write_it():
    with pytest.raises(ConfigError, match=r"must start with http:// or https://.*7860"):
        Client("127.0.0.1:7860")


# --- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        (400, "ConfigError", ConfigError),
        (404, "DocumentNotFoundError", ConfigError),  # the server's subclass of ConfigError
        (413, "UploadTooLargeError", ConfigError),
        (422, "ValidationError", ConfigError),
        (409, "IndexNotFoundError", IndexNotFoundError),
        (400, "IndexUsageError", IndexUsageError),
        (502, "GeneratorError", GeneratorError),
        (503, "IndexLockedError", IndexLockedError),
        (500, "RagError", RagError),
        (500, "InternalError", ServerError),
        (404, "NotFound", ServerError),  # an endpoint this server does not have
        (429, "RateLimited", ServerError),
        (None, "GeneratorError", GeneratorError),  # an `error` event in a stream
    ],
)
def test_server_errors_become_the_in_process_classes(status, kind, expected):
    with Client("http://127.0.0.1:1") as client:
        error = client._error(status, {"type": kind, "message": "was falsch war"})
    assert type(error) is expected
    assert str(error) == "was falsch war"


def test_refused_access_says_to_pass_or_change_the_token():
    with Client("http://127.0.0.1:1") as anonymous, Client("http://127.0.0.1:1", "nr_x") as named:
        missing = anonymous._error(401, {"type": "Unauthorized", "message": "needs a token"})
        refused = named._error(401, {"type": "Unauthorized", "message": "needs a token"})
        role = named._error(403, {"type": "Forbidden", "message": "this needs 'editor'"})
    assert isinstance(missing, AccessDeniedError) and missing.status == 401
    assert "token=..." in str(missing) and "rag tokens create" in str(missing)
    assert "refused the token" in str(refused) and "rag tokens create" in str(refused)
    assert isinstance(role, AccessDeniedError) and "needs 'editor'" in str(role)
    assert "a token with that role" in str(role)


def test_a_server_that_is_not_running_says_to_start_rag_serve(unused_port):
    with Client(f"http://127.0.0.1:{unused_port}") as client:
        with pytest.raises(ServerUnavailableError, match=r"start one with `rag serve --index"):
            client.search("Nato")
        with pytest.raises(ServerUnavailableError, match="rag serve"):
            next(client.ask_stream("Nato?"))


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_importing_the_client_loads_no_model_and_no_ui():
    code = (
        "import sys, rag.client; "
        "print([m for m in ('torch', 'transformers', 'sentence_transformers', 'openvino', "
        "'llama_cpp', 'gradio', 'fastapi', 'ui', 'rag.engine') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- timelines -----------------------------------------------------------------------------------
def test_a_timeline_round_trips_through_its_json():
    from rag.answer.timeline import Timeline, TimelineEntry, TimelineGroup
    from rag.client import timeline_from_json

    key = ANSWER.citations[0]
    copy = DuplicateSource("d2", "andere.txt", None, "2022-06", "")  # the shape has no chunk id
    timeline = Timeline(
        query="HIMARS",
        by="month",
        groups=(TimelineGroup("2022-06", (TimelineEntry(key, 1.234567, (copy,)),)),),
        undated=TimelineGroup(None, (TimelineEntry(key, -0.5),)),
        retrieval={"k": 100},
    )
    record = wire(timeline.to_json())
    assert timeline_from_json(record) == timeline
    assert timeline_from_json(record).to_json() == record
    assert timeline_from_json(record).retrieval == {"k": 100}
