"""`rag.client.Client` against a real `rag serve` app (uvicorn on a loopback port) over the
seed index, with the real embedder: for every seed question its hits, answers, streamed answers,
exports and document list equal the in-process `Engine`'s over the same index and settings;
errors arrive as the Engine's classes; a server with tokens refuses a client without one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.answer.types import Answer, AnswerDelta, Turn
from rag.client import AccessDeniedError, Client, ServerError
from rag.engine import Engine
from rag.errors import ConfigError, GeneratorError, IndexLockedError, IndexNotFoundError, RagError
from rag.settings import ServerSettings
from rag.types import Filters, Hit
from tests.seeds import SEED_QUESTIONS, SEEDS
from tests.ui.test_server import LiveServer
from ui.auth import RateLimiter, Security, TokenStore
from ui.cli import security_for
from ui.server import create_app
from ui.service import Service

QUESTIONS = [q["question"] for q in SEED_QUESTIONS]
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory, settings, embedder) -> Path:
    path = tmp_path_factory.mktemp("client") / "idx"
    with Engine.open(path, settings, embedder=embedder) as engine:
        assert engine.add([SEEDS]).added == 5
    return path


@pytest.fixture(scope="module")
def engine(seed_index, settings, embedder) -> Iterator[Engine]:
    """The in-process side: what a script would open instead of a `Client`."""
    with Engine.open(seed_index, settings, embedder=embedder) as engine:
        yield engine


@pytest.fixture(scope="module")
def server_url(seed_index, settings, embedder, tmp_path_factory) -> Iterator[str]:
    """The app `rag serve` runs (API and UI, its security from the server settings: no token
    file, loopback) over its own Engine on the same index. No ask rate limit: these tests ask
    every seed question several times, which is not what they check."""
    server = ServerSettings(
        tokens_file=tmp_path_factory.mktemp("auth") / "tokens.json", ask_per_minute=0
    )
    security = security_for(server, "127.0.0.1", insecure=False)
    assert not security.auth_on
    with (
        Service(Engine.open(seed_index, settings, embedder=embedder)) as service,
        LiveServer(create_app(service, security=security)) as live,
    ):
        yield live.url


@pytest.fixture(scope="module")
def client(server_url) -> Iterator[Client]:
    with Client(server_url) as client:
        yield client


# --- search --------------------------------------------------------------------------------------
def test_search_hits_equal_the_engines_for_every_seed_question(client, engine):
    for question in QUESTIONS:
        remote, local = client.search(question), engine.search(question)
        assert [h.chunk_id for h in remote] == [h.chunk_id for h in local], question
        assert [h.score for h in remote] == pytest.approx([h.score for h in local], abs=1e-9)
        for r, h in zip(remote, local):
            assert (r.doc_id, r.source, r.title, r.date, r.start, r.end, r.text) == (
                h.doc_id, h.source, h.title, h.date, h.start, h.end, h.text,
            )  # fmt: skip
            assert (r.language, r.page, r.url, r.date_source) == (
                h.language, h.page, h.url, h.date_source,
            )  # fmt: skip
        assert remote == local, question  # the whole frozen dataclasses
        assert all(type(h) is Hit for h in remote)
    assert {h.language for h in remote} == {"de"}  # fields the public JSON shape leaves out


@pytest.mark.parametrize(
    ("k", "filters", "mode", "rerank"),
    [
        (3, None, "keyword", None),
        (8, Filters(date_from="2023"), None, False),
        (5, Filters(sources=(f"{SEEDS.as_posix()}/001_9706a68281888026.txt",)), "dense", None),
    ],
)
def test_search_options_are_passed_as_the_engine_takes_them(
    client, engine, k, filters, mode, rerank
):
    question = "Was sagte Stoltenberg?"
    remote = client.search(question, k, filters, mode=mode, rerank=rerank)
    assert remote == engine.search(question, k, filters, mode=mode, rerank=rerank)
    assert 0 < len(remote) <= k
    if filters is not None and filters.date_from:
        assert all(h.date and h.date >= "2023" for h in remote)
    if filters is not None and filters.sources:
        assert {h.source for h in remote} == set(filters.sources)


# --- answers -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def answers(client, engine) -> list[tuple[Answer, Answer]]:
    """(client, engine) answers to every seed question, in quote mode."""
    return [(client.ask(q, mode="quote"), engine.ask(q, mode="quote")) for q in QUESTIONS]


def test_answers_equal_the_engines_for_every_seed_question(answers):
    for remote, local in answers:
        assert remote == local, local.question  # sentences, citations, passages, phrase, ...
        assert remote.evidence == local.evidence and remote.supported == local.supported
        assert remote.retrieval == local.retrieval  # not part of equality; carried all the same
    cited = [local for _, local in answers if local.answerable and local.citations]
    assert len(cited) >= len(answers) // 2  # the comparison covers real, cited answers
    assert all(c.quote for a in cited for c in a.citations)


def test_streamed_answers_reassemble_to_the_engines(client, engine):
    for question in QUESTIONS:
        remote = list(client.ask_stream(question, mode="quote"))
        local = list(engine.ask_stream(question, mode="quote"))
        assert remote == local, question  # the same deltas, then the same Answer
        *deltas, final = remote
        assert deltas and all(type(d) is AnswerDelta for d in deltas)
        assert type(final) is Answer and final == engine.ask(question, mode="quote")
        assert "".join(d.text for d in deltas).strip() == final.text.strip()


def test_closing_a_stream_early_is_clean(client):
    stream = client.ask_stream(QUESTIONS[0], mode="quote")
    assert type(next(stream)) is AnswerDelta
    stream.close()
    assert client.search(QUESTIONS[1])  # the client is still usable


def test_a_follow_up_with_history_equals_the_engines(client, engine, answers):
    first = answers[0][1]
    history = [Turn(first.question, first.text)]
    question = "Und wie hoch ist das Hilfspaket?"
    remote = client.ask(question, Filters(date_to="2022-12"), history, mode="quote")
    assert remote == engine.ask(question, Filters(date_to="2022-12"), history, mode="quote")


def test_timelines_equal_the_engines_as_the_api_carries_them(client, engine):
    for question in [*QUESTIONS[:10], "Stoltenberg"]:
        for filters, by in ((None, "month"), (Filters(date_from="2022"), "year")):
            remote = client.timeline(question, filters, by=by, k=30)
            local = engine.timeline(question, filters, by=by, k=30)
            # (retrieval.filters: the server passes empty filters where the Engine had None)
            assert {**remote.to_json(), "retrieval": None} == {**local.to_json(), "retrieval": None}
            assert [e.citation for e in remote.entries] == [e.citation for e in local.entries]
            assert [e.score for e in remote.entries] == pytest.approx(
                [e.score for e in local.entries], abs=1e-6
            )  # the API rounds them to 6 decimals
    stoltenberg = client.timeline("Stoltenberg", by="month", k=30)
    assert stoltenberg.n_articles >= 2 and stoltenberg.groups  # not a vacuous comparison
    assert client.timeline("Stoltenberg", min_score=3.0).entries == ()


# --- exports, documents, info --------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["markdown", "json", "bibtex", "csl"])
def test_exports_equal_the_engines(client, engine, answers, fmt):
    conversation = [local for _, local in answers[:3]]
    for chosen in (conversation[0], conversation):
        remote, local = client.export(chosen, fmt), engine.export(chosen, fmt)
        assert remote.media_type == local.media_type
        assert _file_stem(remote.filename) == _file_stem(local.filename)
        assert same_but_the_time(remote.data, local.data), fmt
    if fmt == "json":
        document = json.loads(remote.data)
        assert [a["question"] for a in document["answers"]] == [a.question for a in conversation]
        assert document["index"]["path"] == str(engine.path)


def test_a_pdf_export_comes_back_as_the_engines_file(client, engine, answers):
    remote, local = client.export(answers[0][1], "pdf"), engine.export(answers[0][1], "pdf")
    assert remote.data.startswith(b"%PDF-") and remote.data.rstrip().endswith(b"%%EOF")
    assert remote.media_type == local.media_type
    assert _file_stem(remote.filename) == _file_stem(local.filename)


def _file_stem(filename: str) -> str:
    """A file name without its export time (two calls may straddle a second)."""
    return re.sub(r"\d{8}-\d{6}", "<time>", filename)


def same_but_the_time(remote: bytes, local: bytes) -> bool:
    """Equal once the export time (the one thing a second call may change) is taken out."""
    return TIMESTAMP.sub("<time>", remote.decode()) == TIMESTAMP.sub("<time>", local.decode())


def test_documents_info_and_answer_modes_equal_the_engines(client, engine):
    assert client.documents() == engine.documents()
    assert len(client.documents()) == 5
    info, local = client.info(), engine.info()
    assert info["counts"] == local["counts"] and info["spec"] == local["spec"]
    assert client.answer_modes() == engine.answer_modes() == ["quote"]


# --- errors --------------------------------------------------------------------------------------
def test_a_bad_argument_is_the_engines_error_with_its_message(client, engine):
    with pytest.raises(ConfigError) as local:
        engine.ask(QUESTIONS[0], mode="poem")  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as remote:
        client.ask(QUESTIONS[0], mode="poem")  # type: ignore[arg-type]
    assert str(remote.value) == str(local.value)
    with pytest.raises(ConfigError, match=r"k: .*greater than or equal to 1"):
        client.search("Nato", k=0)  # outside the API's bounds


class _FailingEngine:
    """Stands in for the Engine behind a server: every search raises `error`."""

    def __init__(self, tmp_path: Path, error: BaseException) -> None:
        self.path, self.error = tmp_path, error

    def plan(self, mode: Any = None, rerank: Any = None) -> Any:
        return type("Plan", (), {"stages": lambda self: ["dense"]})()

    def search(self, *args: Any, **kwargs: Any) -> list[Hit]:
        raise self.error

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (IndexLockedError("another process writes the index; try again"), IndexLockedError),
        (GeneratorError("the model at http://llm:8080 is down"), GeneratorError),
        (RagError("something the pipeline refused"), RagError),
        (RuntimeError("a bug with a secret /etc/path"), ServerError),
    ],
)
def test_server_errors_arrive_as_the_engines_classes(tmp_path, error, expected):
    service = Service(_FailingEngine(tmp_path, error))  # type: ignore[arg-type]
    service.has_index = lambda: True  # type: ignore[method-assign]
    with LiveServer(create_app(service, with_ui=False)) as live, Client(live.url) as client:
        with pytest.raises(expected) as raised:
            client.search("Nato")
    assert type(raised.value) is expected
    if expected is ServerError:
        assert raised.value.status == 500 and "secret" not in str(raised.value)
    else:
        assert str(raised.value) == str(error)


def test_a_server_without_documents_says_how_to_add_some(tmp_path, settings, fake_embedder):
    empty = Engine.open(tmp_path / "none", settings, embedder=fake_embedder)
    with (
        Service(empty) as service,
        LiveServer(create_app(service, with_ui=False)) as live,
        Client(live.url) as client,
    ):
        assert client.documents() == []
        with pytest.raises(IndexNotFoundError, match=r"holds no documents yet.*rag index PATH"):
            client.ask("Was sagte Stoltenberg?")


# --- tokens --------------------------------------------------------------------------------------
def test_a_server_with_tokens_needs_one(tmp_path, seed_index, settings, embedder, engine):
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("script", "reader")
    security = Security(store=store, limiter=RateLimiter({"ask": 1}))
    with (
        Service(Engine.open(seed_index, settings, embedder=embedder)) as service,
        LiveServer(create_app(service, with_ui=False, security=security)) as live,
    ):
        with Client(live.url) as anonymous:
            with pytest.raises(AccessDeniedError, match=r"needs an access token") as refused:
                anonymous.search("Nato")
            assert refused.value.status == 401 and "rag tokens create" in str(refused.value)
        with Client(live.url, token=token[:-2] + "xx") as wrong:
            with pytest.raises(AccessDeniedError, match=r"refused the token"):
                wrong.documents()
        with Client(live.url, token=token) as reader:
            assert reader.search(QUESTIONS[0]) == engine.search(QUESTIONS[0])
            assert reader.ask(QUESTIONS[0], mode="quote") == engine.ask(QUESTIONS[0], mode="quote")
            with pytest.raises(ServerError, match=r"too many ask requests") as limited:
                reader.ask(QUESTIONS[1], mode="quote")
            assert limited.value.status == 429
