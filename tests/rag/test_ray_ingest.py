"""`rag index --ray` (rag.ingest.ray_ingest) against the plain path: the seed articles plus a
file of problems, indexed on a local Ray of 2 CPUs into a local index and into qdrant-edge,
give the same report, the same documents and passages and the same search results as
`Engine.add`; a second run embeds nothing. Ray is part of the `test` extra: these tests run
in CI, they are not skipped."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray
from click.testing import CliRunner

from rag.cli import main
from rag.engine import Engine, open_index
from rag.errors import ConfigError
from rag.ingest.indexer import AddReport
from rag.ingest.ray_ingest import RayOptions, decode_document, encode_document, ray_add
from rag.settings import load_settings
from rag.types import Document
from tests.seeds import SEED_QUESTIONS, SEEDS

QUESTIONS = [q["question"] for q in SEED_QUESTIONS]
PROBLEMS = [
    {"id": "p1", "title": "Bahnstreik", "date": "2024-03",
     "text": "Die Lokführer streiken am Montag in ganz Bayern. Der Verkehr steht still."},
    {"id": "p1", "text": "Ein zweiter Artikel mit derselben Kennung wird abgewiesen."},
    {"id": "p2", "text": "   "},
    {"id": "p3", "text": "Stand: 12.03.2024. Die Bundesversammlung tagt im Reichstag in Berlin."},
]  # fmt: skip


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A Ray of 2 CPUs in this process (as `rag index --ray` starts on this machine)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """The seed articles; a JSONL file with a duplicate id, an empty text, a broken line and
    an undated article (its date is inferred); a document over `max_document_chars`; a file
    repeating two ids of earlier files (the too-long one's too: the first copy wins, and is
    refused); an empty file."""
    root = tmp_path_factory.mktemp("ray-inputs")
    shutil.copytree(SEEDS, root / "seeds")
    lines = [json.dumps(p, ensure_ascii=False) for p in PROBLEMS]
    lines.insert(3, "{not json")
    (root / "feed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "empty.txt").write_text("", encoding="utf-8")
    long = {"id": "long", "text": "Ein Satz über den Bahnstreik. " * 70_000}  # 2.1 M chars
    (root / "long.jsonl").write_text(json.dumps(long) + "\n", encoding="utf-8")
    repeats = [{"id": "p1", "text": "Noch ein Artikel p1."}, {"id": "long", "text": "Kurz."}]
    (root / "more.jsonl").write_text("\n".join(json.dumps(r) for r in repeats) + "\n",
                                     encoding="utf-8")  # fmt: skip
    return root


def _qdrant_edge(settings, path: Path):  # noqa: ANN001, ANN202 - Settings in, Settings out
    index = load_settings(index={"backend": "qdrant", "url": f"edge:{path}"}).index
    return settings.model_copy(update={"index": index})


@dataclass(frozen=True)
class Runs:
    plain: AddReport
    by_ray: AddReport
    again: AddReport
    """`ray_add` of the same inputs a second time."""
    a: Engine
    """The index `Engine.add` made."""
    b: Engine
    """The index `ray_add` made."""


@pytest.fixture(scope="module", params=["local", "edge"])
def both(request, local_ray, inputs, settings, embedder, tmp_path_factory) -> Iterator[Runs]:
    """The inputs indexed by `Engine.add` and by `ray_add` (twice) into two fresh indexes of
    one backend: the local index or qdrant-edge. Writes of 8 passages: many batches."""
    root = tmp_path_factory.mktemp(f"ray-{request.param}")
    plain_settings, ray_settings = settings, settings
    if request.param == "edge":
        plain_settings = _qdrant_edge(settings, root / "plain-edge")
        ray_settings = _qdrant_edge(settings, root / "ray-edge")
    with Engine.open(root / "plain", plain_settings, embedder=embedder) as engine:
        plain = engine.add([inputs])
    options = RayOptions(write_passages=8)
    by_ray = ray_add([inputs], ray_settings, root / "ray", options=options)
    again = ray_add([inputs], ray_settings, root / "ray", options=options)
    with (
        Engine.open(root / "plain", plain_settings, embedder=embedder) as a,
        Engine.open(root / "ray", ray_settings, embedder=embedder) as b,
    ):
        yield Runs(plain, by_ray, again, a, b)


def _problems(report: AddReport) -> list[tuple[str, int | None, str]]:
    return sorted((p.source, p.line, p.message) for p in report.problems)


def test_the_ray_path_reports_what_the_plain_path_reports(both: Runs) -> None:
    plain, by_ray = both.plain, both.by_ray
    assert plain.added == 7 and plain.chunks > 30  # 5 seeds, p1 and p3
    counts = ("files", "documents", "added", "updated", "unchanged", "chunks")
    assert [getattr(by_ray, c) for c in counts] == [getattr(plain, c) for c in counts]
    assert _problems(by_ray) == _problems(plain)
    messages = " | ".join(p.message for p in by_ray.problems)
    assert "duplicate document id 'p1'" in messages and "duplicate document id 'long'" in messages
    assert "document 'long' has 2,09" in messages and "over the limit of 2,000,000" in messages
    assert 'duplicate id "p1" (first on line 1)' in messages  # within feed.jsonl: the reader
    assert len(by_ray.problems) == 7


def test_the_ray_path_stores_the_same_documents_and_passages(both: Runs) -> None:
    a, b = both.a, both.b
    assert b.documents() == a.documents()
    assert b.info()["counts"] == a.info()["counts"]
    inferred = b.document("p3")
    assert inferred is not None and inferred["date"] == "2024-03-12"
    assert inferred["metadata"]["date_source"] == "inferred"
    for doc in a.documents():
        assert b.document(doc["doc_id"])["text"] == a.document(doc["doc_id"])["text"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_the_ray_path_gives_the_same_search_results(both: Runs, mode: str) -> None:
    a, b = both.a, both.b
    hits_a = a.search_batch(QUESTIONS, 10, mode=mode)
    hits_b = b.search_batch(QUESTIONS, 10, mode=mode)
    for question, x, y in zip(QUESTIONS, hits_a, hits_b):
        assert [h.chunk_id for h in y] == [h.chunk_id for h in x], question
        assert [h.score for h in y] == pytest.approx([h.score for h in x], abs=1e-3)
        assert [(h.start, h.end, h.date) for h in y] == [(h.start, h.end, h.date) for h in x]


def test_a_second_ray_run_finds_everything_unchanged(both: Runs) -> None:
    again = both.again
    assert (again.added, again.updated, again.chunks) == (0, 0, 0)
    assert again.unchanged == both.by_ray.documents == 7
    assert _problems(again) == _problems(both.by_ray)


def test_a_changed_file_is_replaced_and_the_rest_left_alone(
    local_ray, inputs, settings, embedder, tmp_path
) -> None:
    folder = tmp_path / "in"
    shutil.copytree(SEEDS, folder)
    first = ray_add([folder], settings, tmp_path / "idx")
    assert (first.added, first.unchanged) == (5, 0)
    changed = sorted(folder.iterdir())[0]
    changed.write_text(changed.read_text("utf-8") + "\nNachtrag: Die Gespräche gehen weiter.\n",
                       encoding="utf-8")  # fmt: skip
    second = ray_add([folder], settings, tmp_path / "idx")
    assert (second.added, second.updated, second.unchanged) == (0, 1, 4)
    with Engine.open(tmp_path / "idx", settings, embedder=embedder) as engine:
        assert len(engine.documents()) == 5
        (hit,) = engine.search("Nachtrag Gespräche gehen weiter", 1)
        assert hit.source.endswith(changed.name)


def test_nothing_to_add_leaves_no_index_behind(local_ray, tmp_path, settings) -> None:
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    report = ray_add([tmp_path / "empty.txt"], settings, tmp_path / "idx")
    assert (report.documents, report.added, len(report.problems)) == (0, 0, 1)
    assert open_index(settings, tmp_path / "idx") is None


def test_rag_index_ray_on_the_command_line(local_ray, tmp_path, monkeypatch, embedder) -> None:
    monkeypatch.setattr("rag.embedders.create_embedder", lambda *a, **k: embedder)
    args = ["index", str(SEEDS), "--ray", "--index", str(tmp_path / "idx"), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["added"], report["files"], report["problems"]) == (5, 5, [])


def test_ray_before_the_paths_is_explained(tmp_path) -> None:
    result = CliRunner().invoke(main, ["index", "--ray", str(SEEDS), "--index", str(tmp_path)])
    assert result.exit_code == 2
    assert "put --ray after the paths" in result.output


def test_documents_cross_stages_as_json_unchanged() -> None:
    doc = Document(
        doc_id="d", text="Text mit \udcff Ersatz und Umlauten: äöü", source="x.pdf", title="T",
        date="2022-06", language="de", url="https://example.org/a",
        pages=((1, 0, 10), (2, 10, 20)), metadata={"date_source": "inferred", "n": [1, 2]},
    )  # fmt: skip
    assert decode_document(encode_document(doc)) == doc
    assert decode_document(encode_document(doc)).metadata == doc.metadata


def test_without_ray_the_error_names_the_extra(monkeypatch, settings, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ConfigError, match=r'needs Ray Data .*pip install "newsrag\[ray\]"'):
        ray_add([SEEDS], settings, tmp_path / "idx")
    assert not (tmp_path / "idx").exists()
