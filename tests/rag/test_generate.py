"""The generative answer path for real: llama.cpp's OpenAI-compatible server running the packaged
Gemma 3 270M over an index of the seeds, the in-process llama.cpp backend, models that are down
or answer garbage, and the citation and support checks of written answers.

Gemma 3 270M (base) is far too weak to answer well (see MODELS.md), so the tests through it check
the machinery (streaming, the protocol, every `[n]` parsed back) rather than answer quality;
the support check's verdicts are tested with canned answers from a fake generator.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rag.answer import prompts
from rag.answer.citations import parse_answer
from rag.answer.pipeline import Answerer, carry_subject
from rag.answer.types import Answer, AnswerDelta, Turn
from rag.engine import Engine
from rag.errors import GeneratorError
from rag.settings import load_settings

from .llm_server import Reply, bad_server, free_port, gguf_path, llama_server

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"

MAX_TOKENS = 64  # a short answer: Gemma writes ~43 tokens/s on a free core, ~5 on a busy one
STOLTENBERG = "Was sagte Stoltenberg über Verhandlungen mit Russland?"
HIMARS = "Was hat die Ukraine beim Einsatz von HIMARS zugesichert?"
HIMARS_FACT = "keine Ziele auf russischem Territorium"  # in seeds/002 (Blinken, 2022-06)
MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def generation_settings(**generation: Any):
    return load_settings(
        embedding={"show_progress": False},
        generation={"temperature": 0.0, "max_tokens": MAX_TOKENS, **generation},
    )


def openai_settings(base_url: str, model: str = "gemma-3-270m", **extra: Any):
    return generation_settings(
        **{"mode": "generate", "backend": "openai", "base_url": base_url, "model": model, **extra}
    )


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory, settings, embedder) -> Path:
    path = tmp_path_factory.mktemp("generate") / "idx"
    with Engine.open(path, settings, embedder=embedder) as engine:
        report = engine.add([SEEDS])
    assert (report.added, report.problems) == (5, ())
    return path


@pytest.fixture(scope="module")
def gguf() -> Path:
    return gguf_path()


@pytest.fixture(scope="module")
def server(gguf, tmp_path_factory):
    """llama.cpp's OpenAI-compatible server on a free loopback port, for this module."""
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with llama_server(gguf, log, n_ctx=4096) as srv:
        yield srv


@pytest.fixture(scope="module")
def served(server, seeded_dir, embedder) -> Iterator[Engine]:
    """The seeded index with the generate mode on the llama.cpp server, from settings alone."""
    with Engine.open(
        seeded_dir, openai_settings(server.base_url, server.model), embedder=embedder
    ) as engine:
        yield engine


@pytest.fixture(scope="module")
def quote_engine(seeded_dir, settings, embedder) -> Iterator[Engine]:
    """The seeded index without any language model."""
    assert not settings.generation.configured(), "the test environment configures a model"
    with Engine.open(seeded_dir, settings, embedder=embedder) as engine:
        yield engine


def timed_events(events: Iterator[AnswerDelta | Answer]) -> list[tuple[float, Any]]:
    started = time.perf_counter()
    return [(time.perf_counter() - started, e) for e in events]


def split_stream(timed: list[tuple[float, Any]]) -> tuple[list[tuple[float, str]], Answer]:
    deltas = [(t, e.text) for t, e in timed if isinstance(e, AnswerDelta)]
    answers = [e for _, e in timed if isinstance(e, Answer)]
    assert len(answers) == 1 and isinstance(timed[-1][1], Answer), "the Answer must come last"
    return deltas, answers[0]


@pytest.fixture(scope="module")
def streamed(served) -> tuple[list[tuple[float, str]], Answer, float]:
    """One streamed answer from the server: (timed deltas, the answer, seconds to the answer)."""
    timed = timed_events(served.ask_stream(STOLTENBERG))
    deltas, answer = split_stream(timed)
    return deltas, answer, timed[-1][0]


# --- fake generators ----------------------------------------------------------------------------


class CannedGenerator:
    """A deterministic stand-in for a language model: `write(messages)` is the whole reply,
    streamed in small pieces, as a server would."""

    def __init__(self, write: Callable[[Sequence[tuple[str, str]]], str]) -> None:
        self.id = "fake:canned"
        self.write = write
        self.calls: list[list[tuple[str, str]]] = []

    def stream(self, messages: Sequence[tuple[str, str]]) -> Iterator[str]:
        self.calls.append(list(messages))
        text = self.write(messages)
        for i in range(0, len(text), 5):
            yield text[i : i + 5]


class Recording:
    """Wraps a real generator and keeps each call's messages and reply."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.id = inner, inner.id
        self.calls: list[tuple[list[tuple[str, str]], str]] = []

    def stream(self, messages: Sequence[tuple[str, str]]) -> Iterator[str]:
        pieces: list[str] = []
        for piece in self.inner.stream(messages):
            pieces.append(piece)
            yield piece
        self.calls.append((list(messages), "".join(pieces)))


def passage_numbers(messages: Sequence[tuple[str, str]]) -> dict[int, str]:
    """The numbered passages of an answer prompt, as the model sees them."""
    user = messages[-1][1]
    block = user.split("Passages:", 1)[1].rsplit("\n\nQuestion:", 1)[0]
    heads = list(re.finditer(r"(?m)^\[(\d+)\] ", block))
    return {
        int(h.group(1)): block[h.end() : nxt.start() if nxt else len(block)]
        for h, nxt in zip(heads, heads[1:] + [None])
    }


def passage_with(messages: Sequence[tuple[str, str]], needle: str) -> int:
    found = [n for n, text in passage_numbers(messages).items() if needle in text]
    assert found, f"no passage of the prompt holds {needle!r}"
    return found[0]


# --- citation mechanics, for any answer ---------------------------------------------------------


def marker_numbers(text: str) -> set[int]:
    return {int(n) for m in MARKER.finditer(text) for n in re.split(r"\s*[,;]\s*", m.group(1))}


def check_citations(engine: Engine, answer: Answer) -> None:
    """Every `[n]` of the written text is a Citation of passage n's chunk, or (n out of range)
    its sentence says so; every sentence without a citation is unsupported and says why."""
    if not answer.sentences:
        assert not answer.answerable and not answer.citations
        return
    numbers = marker_numbers(answer.text)
    n_passages = len(answer.passages)
    problems = [p for s in answer.sentences for p in s.problems]
    for n in sorted(numbers):
        citation = answer.citation(n)
        if not 1 <= n <= n_passages:
            assert citation is None
            assert any(p.startswith(f"cites [{n}], but there are only") for p in problems), n
            continue
        assert citation is not None, f"[{n}] in {answer.text!r} has no Citation"
        hit = answer.passages[n - 1]
        assert (citation.chunk_id, citation.doc_id, citation.source) == (
            hit.chunk_id,
            hit.doc_id,
            hit.source,
        )
        assert citation.passage == hit.text and citation.passage_start == hit.start
        assert hit.start <= citation.start < citation.end <= hit.end
        doc = engine._readable_index().document(hit.doc_id)
        assert doc is not None and doc["text"][citation.start : citation.end] == citation.quote
    assert {c.n for c in answer.citations} == {n for s in answer.sentences for n in s.citations}
    for s in answer.sentences:
        assert set(s.citations) <= numbers
        assert s.supported == (not s.problems)
        if not s.citations:
            assert not s.supported and "cites no source" in s.problems, s


# --- the llama.cpp server -----------------------------------------------------------------------


def test_server_is_an_answer_mode(served, server):
    assert served.answer_modes() == ["reader", "quote", "generate"]
    assert server.model == "gemma-3-270m"


def test_answer_streams_in_pieces_that_add_up_to_the_text(streamed, server):
    deltas, answer, total = streamed
    print(f"\n{len(deltas)} deltas, first after {deltas[0][0]:.2f} s, answer after {total:.2f} s")
    print(f"text: {answer.text!r}")
    assert answer.mode == "generate"
    assert answer.model == f"openai:{server.model}@{server.base_url}"
    assert len(deltas) > 1, "the answer did not stream"
    assert "".join(text for _, text in deltas) == answer.text
    # The pieces arrive while the model writes (64 tokens take over a second), not all at once
    # at the end as a buffered reply would.
    assert deltas[-1][0] - deltas[0][0] > 0.1


def test_written_answer_cites_passages_mechanically(streamed, served):
    _, answer, _ = streamed
    assert len(answer.passages) == 5
    assert answer.answerable, answer.text  # Gemma writes something, even if it is wrong
    check_citations(served, answer)
    for s in answer.sentences:
        print(f"{s.supported!s:5} {s.citations} {s.similarity} {s.text[:70]!r} {s.problems}")


def test_followup_is_rewritten_by_the_model(server, seeded_dir, embedder):
    from rag.answer.generators import create_generator

    cfg = openai_settings(server.base_url, server.model, mode="quote")
    model = Recording(create_generator(cfg.generation))
    history = [Turn("Was sagte Stoltenberg über Russland?", "Er erwartet Verhandlungen.")]
    question = "Und was sagte er über die Ukraine?"
    with Engine.open(seeded_dir, cfg, embedder=embedder, generator=model) as engine:
        answer = engine.ask(question, history=history)
    assert len(model.calls) == 1
    messages, reply = model.calls[0]
    assert messages[0] == ("system", prompts.REWRITE_SYSTEM)
    assert "Stoltenberg über Russland" in messages[1][1] and question in messages[1][1]
    print(f"\nrewrite: {reply!r} -> {answer.standalone_question!r}")
    assert answer.standalone_question
    assert answer.standalone_question != question
    first_line = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
    # The model's first line, unless it was unusable: then the subject carried over.
    assert answer.standalone_question in (
        first_line.strip("\"'„“ "),
        carry_subject(question, history, "de"),
    )


# --- the in-process llama.cpp backend -----------------------------------------------------------


@pytest.mark.slow
def test_llamacpp_backend_answers_with_streaming(gguf, seeded_dir, embedder):
    cfg = generation_settings(mode="generate", backend="llamacpp", gguf_path=gguf)
    with Engine.open(seeded_dir, cfg, embedder=embedder) as engine:
        assert engine.answer_modes() == ["reader", "quote", "generate"]
        timed = timed_events(engine.ask_stream(STOLTENBERG))
        deltas, answer = split_stream(timed)
        print(f"\n{len(deltas)} deltas, first after {deltas[0][0]:.2f} s, "
              f"answer after {timed[-1][0]:.2f} s: {answer.text!r}")  # fmt: skip
        assert answer.model == f"llamacpp:{gguf.name}"
        assert len(deltas) > 1
        assert "".join(text for _, text in deltas) == answer.text
        check_citations(engine, answer)


# --- the support check on canned answers --------------------------------------------------------

# The sentence of seeds/002 that the canned answer draws on:
# "Aus dem Weißen Haus hieß es, die Ukraine habe zugesichert, mit dem in den USA hergestellten
#  Artilleriesystem HIMARS keine Ziele auf russischem Territorium anzugreifen."
CANNED = [
    # 0: a paraphrase of the passage, citing it: supported
    (
        "Die Ukraine sicherte zu, mit dem Artilleriesystem HIMARS keine Ziele auf russischem "
        "Territorium anzugreifen [{k}]."
    ),
    # 1: a number that is not in the passage
    (
        "Die Ukraine habe zugesichert, mit 40 HIMARS keine Ziele auf russischem Territorium "
        "anzugreifen [{k}]."
    ),
    # 2: a passage that does not exist
    "Russland warnte, die USA gössen Öl ins Feuer [9].",
    # 3: a name that is not in the passage
    "Das sagte auch der japanische Premierminister Fumio Kishida [{k}].",
    # 4: the passage's sentence in English: close in meaning across languages
    (
        "Ukraine has assured that it will not attack targets on the territory of its enemy "
        "with the HIMARS artillery system made in the USA [{k}]."
    ),
    # 5: unrelated, with a valid citation
    "Das Wetter war am Wochenende sonnig und warm [{k}].",
    # 6: no citation at all
    "Das ist eine gute Nachricht.",
]


@pytest.fixture(scope="module")
def canned(seeded_dir, embedder) -> tuple[Engine, Answer, list[str], int]:
    """A written answer with one sentence of each kind above, through the real index."""

    def write(messages: Sequence[tuple[str, str]]) -> str:
        k = passage_with(messages, HIMARS_FACT)
        return "\n" + " ".join(s.format(k=k) for s in CANNED) + "\n"

    model = CannedGenerator(write)
    engine = Engine.open(seeded_dir, generation_settings(mode="generate"), embedder=embedder,
                         generator=model)  # fmt: skip
    deltas: list[str] = []
    answer = None
    for event in engine.ask_stream(HIMARS):
        if isinstance(event, AnswerDelta):
            deltas.append(event.text)
        else:
            answer = event
    assert answer is not None
    k = passage_with(model.calls[0], HIMARS_FACT)
    yield engine, answer, deltas, k
    engine.close()


def test_canned_answer_streams_and_parses(canned):
    engine, answer, deltas, k = canned
    assert "".join(deltas) == answer.text == answer.text.strip()
    assert answer.answerable and answer.model == "fake:canned"
    assert [s.text[:20] for s in answer.sentences] == [
        re.sub(r" \[.*\]", "", s)[:20] for s in CANNED
    ]
    assert [s.citations for s in answer.sentences] == [(k,), (k,), (), (k,), (k,), (k,), ()]
    check_citations(engine, answer)
    # One citation, of passage k: its quote is the passage sentence the answer draws on.
    assert [c.n for c in answer.citations] == [k]
    assert HIMARS_FACT in answer.citations[0].quote
    assert answer.citations[0].chunk_id == answer.passages[k - 1].chunk_id


def test_support_verdicts(canned):
    _, answer, _, k = canned
    s = answer.sentences
    for i, sentence in enumerate(s):
        print(f"\n{i} {sentence.supported!s:5} sim={sentence.similarity} {sentence.problems}")
    assert s[0].supported, s[0].problems
    assert s[1].problems == (f"the number 40 is not in [{k}]",)
    assert s[2].problems == ("cites [9], but there are only 5 passages (dropped)",
                             "cites no source")  # fmt: skip
    assert answer.citation(9) is None
    assert not s[3].supported and f"the name 'Kishida' is not in [{k}]" in s[3].problems
    assert s[4].supported, s[4].problems  # English against the German source
    assert not s[5].supported
    assert [p for p in s[5].problems if p.startswith(f"not close in meaning to [{k}]")]
    assert s[6].problems == ("cites no source",) and not s[6].supported
    assert not answer.supported


def test_markers_around_sentences_are_parsed_back():
    parsed = parse_answer("[2]\n\nPutin muss verhandeln.\n[3] Satz zwei [1, 7].", 5, "de")
    assert [(p.text, p.citations, p.invalid) for p in parsed] == [
        ("Putin muss verhandeln.", (2, 3), ()),  # [3] after the period belongs to it
        ("Satz zwei.", (1,), (7,)),
    ]


def test_a_paragraphs_closing_markers_apply_to_its_sentences():
    text = "Der Bau beginnt 2027. Er kostet viel. [1]\nDas ist gut.\n\nDritter [2]. Vierter."
    parsed = parse_answer(text, 5, "de")
    assert [(p.text, p.citations, p.inherited) for p in parsed] == [
        ("Der Bau beginnt 2027.", (1,), True),
        ("Er kostet viel.", (1,), False),
        ("Das ist gut.", (), False),  # its own paragraph (a line break), no markers
        ("Dritter.", (2,), False),
        ("Vierter.", (), False),  # its paragraph does not end with markers
    ]
    assert [text[p.start : p.end].strip() for p in parsed][1] == "Er kostet viel. [1]"


def test_a_citation_to_the_wrong_passage_is_repaired_and_marked(seeded_dir, embedder):
    sentence = (
        "Die Ukraine hat zugesichert, mit HIMARS keine Ziele auf russischem Territorium anzugreifen"
    )
    seen: dict[str, int] = {}

    def write(messages: Sequence[tuple[str, str]]) -> str:
        k = passage_with(messages, HIMARS_FACT)
        numbered = passage_numbers(messages)
        seen["right"] = [n for n, text in numbered.items() if HIMARS_FACT in text]
        seen["wrong"] = next(n for n in numbered if n not in seen["right"])
        return f"{sentence} [{seen['wrong']}]. Das Wetter war sonnig [{k}]."

    model = CannedGenerator(write)
    cfg = generation_settings(mode="generate")
    with Engine.open(seeded_dir, cfg, embedder=embedder, generator=model) as engine:
        answer = engine.ask(HIMARS)
    wrong = seen["wrong"]
    first, second = answer.sentences
    assert first.supported and first.repaired_from == (wrong,)
    (k,) = first.citations
    assert k in seen["right"]  # a passage that says it (the seed says it twice)
    assert first.to_json()["repaired_from"] == [wrong]
    assert answer.text.startswith(f"{sentence} [{k}].")  # the text's marker follows
    assert not second.supported and second.repaired_from == ()  # nothing supports the weather
    assert HIMARS_FACT in answer.citation(k).quote


@pytest.mark.parametrize(
    "reply",
    [prompts.CANNOT_ANSWER, f"  {prompts.CANNOT_ANSWER}.\n", f"\n\n{prompts.CANNOT_ANSWER}"],
    ids=["bare", "period", "blank-lines"],
)
def test_sentinel_reply_is_unanswerable(reply, seeded_dir, embedder):
    model = CannedGenerator(lambda messages: reply)
    cfg = generation_settings(mode="generate")
    with Engine.open(seeded_dir, cfg, embedder=embedder, generator=model) as engine:
        events = list(engine.ask_stream("Wer gewann die Fußball-WM 1954?"))
    deltas, answer = split_stream([(0.0, e) for e in events])
    assert answer.answerable is False
    assert answer.text == prompts.NO_ANSWER["de"]
    assert "".join(text for _, text in deltas) == answer.text  # the sentinel is never shown
    assert (answer.sentences, answer.citations) == ((), ())
    assert answer.passages, "the nearest passages are still given"


# --- models that are down or broken -------------------------------------------------------------


def ask_generate(seeded_dir, embedder, base_url: str, **extra: Any) -> Answer:
    cfg = openai_settings(base_url, "some-model", **extra)
    with Engine.open(seeded_dir, cfg, embedder=embedder) as engine:
        return engine.ask(STOLTENBERG)


def test_server_down_is_a_clear_error(seeded_dir, embedder):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(GeneratorError) as caught:
        ask_generate(seeded_dir, embedder, url)
    message = str(caught.value)
    assert f"cannot reach the language model 'some-model' at {url}" in message
    assert "Connection refused" in message and "generation.base_url" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


BAD_REPLIES = {
    "binary": Reply(200, b"\x00\xff\xfe not json, not SSE {{{", "application/octet-stream"),
    "html-as-sse": Reply(200, b"<html><body>It works!</body></html>\n\n", "text/event-stream"),
    "broken-sse": Reply(200, b'data: {"choices": [\n\n', "text/event-stream"),
    "json-not-a-completion": Reply(200, b'{"hello": "world"}', "application/json"),
}


@pytest.mark.parametrize("name", BAD_REPLIES)
def test_garbage_reply_is_a_clear_error(name, seeded_dir, embedder):
    with bad_server(BAD_REPLIES[name]) as url, pytest.raises(GeneratorError) as caught:
        ask_generate(seeded_dir, embedder, url)
    message = str(caught.value)
    assert f"'some-model' at {url} sent a response that is not an OpenAI-compatible" in message
    assert "check that base_url points at an OpenAI-compatible /v1 endpoint" in message


def test_server_error_is_a_clear_error(seeded_dir, embedder):
    with (
        bad_server(Reply(500, b"model crashed: out of memory")) as url,
        pytest.raises(GeneratorError) as caught,
    ):
        ask_generate(seeded_dir, embedder, url)
    message = str(caught.value)
    assert f"'some-model' at {url} answered HTTP 500" in message
    assert "model crashed: out of memory" in message and "server's log" in message


def test_slow_server_is_a_timeout_error(seeded_dir, embedder):
    with bad_server(Reply(200, b"", delay=3.0)) as url, pytest.raises(GeneratorError) as caught:
        ask_generate(seeded_dir, embedder, url, timeout=0.5)
    assert f"at {url} did not answer in time; raise generation.timeout" in str(caught.value)


def test_cli_server_down_prints_one_error_line(seeded_dir, embedder, monkeypatch):
    from rag.cli import main

    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("RAG_GENERATION__BACKEND", "openai")
    monkeypatch.setenv("RAG_GENERATION__BASE_URL", url)
    monkeypatch.setenv("RAG_GENERATION__MODEL", "some-model")
    # The command builds its own embedder; hand it the session's to save loading it again.
    monkeypatch.setattr("rag.engine.create_embedder", lambda cfg: embedder)
    result = CliRunner().invoke(
        main, ["ask", STOLTENBERG, "--index", str(seeded_dir), "--mode", "generate"]
    )
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach"), result.stderr
    assert url in lines[0]
    assert "Traceback" not in result.output + result.stderr


# --- follow-ups without a model -----------------------------------------------------------------


FOLLOWUP = "Und was sagte er über die Ukraine?"
CARRIED = "Und was sagte er über die Ukraine? (Stoltenberg Russland)"


def test_followup_without_a_model_carries_the_subject(quote_engine):
    history = [Turn("Was sagte Stoltenberg über Russland?")]
    answer = quote_engine.ask(FOLLOWUP, history=history)
    assert answer.mode == "quote"
    assert answer.standalone_question == CARRIED
    assert any("Stoltenberg" in h.text for h in answer.passages)


@pytest.mark.parametrize(
    ("reply", "standalone"),
    [
        (
            "Was sagte Stoltenberg über die Ukraine?\nmore",
            "Was sagte Stoltenberg über die Ukraine?",
        ),
        ("\n „Was sagte Stoltenberg über die Ukraine?“", "Was sagte Stoltenberg über die Ukraine?"),
        ("Conversation:\nUser: Was sagte Stoltenberg über Russland?", CARRIED),  # prompt echoed
        (FOLLOWUP, CARRIED),  # unchanged
        ("Wie wird das Wetter morgen?", CARRIED),  # another question
        (prompts.CANNOT_ANSWER, CARRIED),
        ("", CARRIED),
    ],
    ids=["rewritten", "quoted", "echo", "unchanged", "drifted", "sentinel", "empty"],
)
def test_followup_rewrite_is_used_only_when_usable(reply, standalone, settings):
    model = CannedGenerator(lambda messages: reply)
    answerer = Answerer(settings.generation, embedder=None, analyzer=None, generator=model)
    history = [Turn("Was sagte Stoltenberg über Russland?")]
    assert answerer.standalone(FOLLOWUP, history, "de") == standalone
    assert model.calls[0][0] == ("system", prompts.REWRITE_SYSTEM)
