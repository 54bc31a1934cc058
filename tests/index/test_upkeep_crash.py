"""Crash safety of the background upkeep: a process killed while it builds and saves the
approximate graph or catches the keyword index up leaves an index that opens, answers as
before (exact vectors or the old graph, FTS5 or the old keyword index), and whose next
upkeep completes the job, leaving no stray files.

A child process (upkeep_child.py) settles an index of 690 passages whose graph is missing
and whose keyword index missed the last write; the parent SIGKILLs it at each named step
(index.crashpoints.UPKEEP_POINTS) and at random moments.
"""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index import Index, ann, keywords
from index.crashpoints import PAUSE_AT_ENV, PAUSE_FILE_ENV, UPKEEP_POINTS

from .test_index_crash import child_env

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

CHILD = Path(__file__).with_name("upkeep_child.py")
sys.path.insert(0, str(CHILD.parent))
import upkeep_child  # noqa: E402

RANDOM_KILLS = 6
QUERIES = [["seilbahn"], ["streik", "arminia"], ["eigen130x2"], ["eigen3x1"], ["passage"]]


def run(command: str, directory: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), command, str(directory)],
        env=child_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    root = tmp_path_factory.mktemp("upkeep")
    template = root / "template"
    init = run("init", template)
    _, err = init.communicate(timeout=120)
    assert init.returncode == 0, err
    # What the upkeep has to do: no graph yet, a keyword index one write behind SQLite.
    assert ann.read_record(template) is None
    conn = sqlite3.connect(template / "chunks.sqlite")
    generation = int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
    conn.close()
    behind = keywords.TantivyKeywords.open(template)
    assert behind is not None and behind.state.generation == generation - 1
    del behind
    probe = root / "probe"
    shutil.copytree(template, probe)
    proc = run("settle", probe)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return template, float(out.split("done")[1])


def check(directory: Path) -> None:
    """Opens; dense search finds each passage itself; keyword search answers as FTS5 does."""
    with Index.open(directory, upkeep_child.SPEC, ann=upkeep_child.OPTIONS) as ix:
        docs = {d["doc_id"] for d in ix.documents()}
        assert len(docs) == 138 and "d0003" not in docs and "d0139" in docs
        probes = [upkeep_child.document(n).chunks[1] for n in (0, 50, 130, 139)]
        hits = ix.search(np.stack([c.vector for c in probes]), 1)
        assert [ix.chunks([h[0][0]])[0].chunk_id for h in hits] == [c.chunk_id for c in probes]
        store = ix._open_store()
        for terms in QUERIES:
            (got,) = ix.keyword_search([terms], 1000)
            assert {r for r, _ in got} == {r for r, _ in store.keyword_search(terms, 1000)}


def settle_and_check(directory: Path) -> None:
    """The next process's upkeep completes: one graph, a current keyword index; and after the
    next write (which tidies what a killed process left), no leftovers."""
    with Index.open(directory, upkeep_child.SPEC, ann=upkeep_child.OPTIONS) as ix:
        assert ix.settle(timeout=120)
        search = ix.info()["search"]
        assert (search["vectors"], search["keywords"]) == ("approximate", "tantivy")
        assert search["graph_pending"] == 0
        ix.write(removals=["d0139"])
        ix.write([upkeep_child.document(139)])
    record = ann.read_record(directory)
    assert record is not None
    assert sorted(p.name for p in directory.glob("ann.*.faiss")) == [record.file]
    kept = keywords.read_pointer(directory)
    assert sorted(p.name for p in directory.glob("keywords.*") if p.is_dir()) == [kept]
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp") or "-" in p.suffix]
    check(directory)


@pytest.mark.parametrize("point", UPKEEP_POINTS)
def test_kill_at_each_step_of_the_upkeep(template, tmp_path: Path, point: str) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(template[0], run_dir)
    marker = tmp_path / "reached"
    proc = run("settle", run_dir, **{PAUSE_AT_ENV: point, PAUSE_FILE_ENV: str(marker)})
    deadline = time.monotonic() + 60
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"child never reached {point}: {proc.communicate()[1]}")
        time.sleep(0.005)
    check(run_dir)  # a reader while the upkeep is frozen mid-step
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    check(run_dir)
    settle_and_check(run_dir)


def test_kill_at_random_moments_of_the_upkeep(template, tmp_path: Path) -> None:
    rng = random.Random(20251130)
    span = template[1] * 1.3 + 0.5  # plus the child's start-up
    for n in range(RANDOM_KILLS):
        run_dir = tmp_path / f"run{n}"
        shutil.copytree(template[0], run_dir)
        proc = run("settle", run_dir)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep((n + rng.random()) * span / RANDOM_KILLS)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        check(run_dir)
        settle_and_check(run_dir)
