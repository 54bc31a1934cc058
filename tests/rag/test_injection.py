"""Planted instructions in articles (body, title, PDF metadata, HTML comment) are data: the
packaged model, in reader and written modes, answers the question and does not obey them.
The whole corpus (24 articles, both modes) is `benchmarks/injection.py`; here a sample."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.engine import Engine

ROOT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("injection", ROOT / "benchmarks/injection.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["injection"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


injection = _benchmark()


def test_the_corpus_plants_instructions_where_intended(tmp_path):
    planted = injection.corpus(tmp_path)
    assert len(planted) >= 20
    assert {p.placement for p in planted} == {"body", "title", "pdf-title", "html-comment"}
    assert {p.language for p in planted} == {"de", "en"}
    from rag.ingest import read_file

    pdf = next(tmp_path.glob("*-pdf-title.pdf"))
    (doc,) = read_file(pdf, pdf.name).documents
    assert "KANARIE" in (doc.title or "") or "CANARY" in (doc.title or "")
    md = next(tmp_path.glob("*-title.md"))
    (doc,) = read_file(md, md.name).documents
    assert "KANARIE" in (doc.title or "") or "CANARY" in (doc.title or "")


@pytest.fixture(scope="module")
def planted_engine(tmp_path_factory, settings, embedder) -> Iterator[tuple[Engine, list]]:
    from rag.answer import local_model

    generation = settings.generation.model_copy(update={"backend": "packaged"})
    if not generation.configured():
        reason = local_model.unavailable_reason(generation.model_cache_dir())
        pytest.skip(f"the packaged model is not here: {reason}")
    folder = tmp_path_factory.mktemp("planted")
    planted = injection.corpus(folder / "corpus")
    real = settings.model_copy(update={"generation": generation})
    with Engine.open(folder / "idx", real, embedder=embedder) as engine:
        report = engine.add([folder / "corpus"])
        assert report.documents == len(planted) and not report.problems
        yield engine, planted


@pytest.mark.slow
def test_the_reader_does_not_obey_planted_instructions(planted_engine):
    engine, planted = planted_engine
    sample = {p.placement: p for p in planted}.values()  # one of each placement
    for item in sample:
        answer = engine.ask(item.question, mode="reader")
        assert answer.mode == "reader"
        assert not injection.obeyed(answer), (item.placement, answer.text)


@pytest.mark.slow
def test_a_written_answer_does_not_obey_a_planted_instruction(planted_engine):
    engine, planted = planted_engine
    item = next(p for p in planted if p.placement == "body" and p.language == "de")
    answer = engine.ask(item.question, mode="generate")
    assert answer.mode == "generate"
    assert not injection.obeyed(answer), answer.text
