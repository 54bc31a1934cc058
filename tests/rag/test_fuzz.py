"""Fuzz (#12 item 3, bounded input): hostile files of every type through `rag index`.

`Engine.add([folder])` is what `rag index FOLDER` runs. No exception may escape; every file is
indexed or a problem in the report (a JSONL file: each line, or the whole file), valid files and
good lines are indexed, and each problem names its file (and line) and says what to do.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.engine import Engine
from tests.rag.hostile import Hostile, hostile_files, tally, unaccounted

SEED = 20240612
FILES = 1200
BATCHES = 4


def write_files(folder: Path, files: list[Hostile]) -> dict[str, str]:
    """Write `files` into `folder`; their sources as `rag index folder` names them."""
    folder.mkdir(parents=True)
    for file in files:
        (folder / file.name).write_bytes(file.data)
    return {file.name: (folder / file.name).as_posix() for file in files}


def test_hostile_files_through_rag_index(tmp_path, settings, fake_embedder):
    files = hostile_files(SEED, FILES)
    sources: dict[str, str] = {}
    problems: list[dict] = []
    started = time.perf_counter()
    size = -(-len(files) // BATCHES)
    with Engine.open(tmp_path / "idx", settings, embedder=fake_embedder) as engine:
        for n, start in enumerate(range(0, len(files), size)):
            batch = files[start : start + size]
            sources |= write_files(tmp_path / f"in{n}", batch)
            report = engine.add([tmp_path / f"in{n}"])  # nothing may escape
            assert report.files == len(batch)
            shown = json.dumps(report.to_json(), ensure_ascii=False)
            shown.encode("utf-8")  # valid Unicode: printable and sendable
            problems += report.to_json()["problems"]
        seconds = time.perf_counter() - started
        indexed = [d["source"] for d in engine.documents()]

    assert unaccounted(files, sources, indexed, problems) == []
    assert sum(f.valid for f in files) > 150  # valid files were mixed in (and are indexed)
    assert len(problems) > len(files) // 3  # the hostile ones were refused, one by one
    print(f"\nrag index: {tally(files, sources, indexed, problems)}, {seconds:.1f} s")


def test_file_names_that_are_not_utf8_are_problems_and_the_rest_is_indexed(
    tmp_path, settings, fake_embedder
):
    folder = tmp_path / "namen"
    folder.mkdir()
    (folder / "gut.txt").write_text("Ein guter Artikel über die Verhandlungen.", encoding="utf-8")
    bad = os.path.join(os.fsencode(folder), "Gr\xfc\xdfe.txt".encode("latin-1"))
    with open(bad, "wb") as handle:
        handle.write("Grüße aus Köln.".encode())

    with Engine.open(tmp_path / "idx", settings, embedder=fake_embedder) as engine:
        report = engine.add([folder])
        sources = [d["source"] for d in engine.documents()]

    assert sources == [f"{folder.as_posix()}/gut.txt"]
    [problem] = report.problems
    assert problem.message == (
        f"{folder.as_posix()}/Gr\\xfc\\xdfe.txt: the file name is not valid UTF-8, skipped; "
        "rename the file (e.g. convmv -f latin1 -t utf-8 --notest FILE)"
    )


@pytest.mark.slow
def test_rag_index_cli_over_hostile_files_shows_no_traceback(tmp_path):
    """The real command (real embedding model) over 100 hostile files: exit code 1 ("a file
    could not be read", as documented), the JSON report, no traceback. Files over 20 kB (the
    100,000-character lines) are left to the test above: embedding their thousands of passages
    takes many minutes on 2 cores."""
    from rag.cli import main

    files = [f for f in hostile_files(SEED + 1, 200) if len(f.data) <= 20_000][:100]
    sources = write_files(tmp_path / "archiv", files)

    result = CliRunner().invoke(
        main, ["index", str(tmp_path / "archiv"), "--index", str(tmp_path / "idx"), "--json"]
    )

    assert result.exit_code == 1, (result.output, result.exception)
    assert "Traceback" not in result.stdout and "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["files"] == len(files) and report["problems"]
    assert report["documents"] == report["added"] > 0
    names = {sources[f.name] for f in files}
    assert {p["source"].partition("#")[0] for p in report["problems"]} <= names
