"""Crash safety: a writer killed at any moment leaves an index that opens with exactly the
state before the write (A) or after it (B), never a mix.

A child process (crash_child.py) opens an index in state A and writes state B in one call
(~6,800 new chunks, 60 updated and 60 removed documents); the parent SIGKILLs it
  * at stratified random delays spread over the write's measured duration, and
  * frozen at each named step of the write (index.crashpoints), including mid-FAISS-rewrite;
    there a reader also opens the index while the writer holds the lock.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from index import Index
from index.crashpoints import PAUSE_AT_ENV, PAUSE_FILE_ENV, POINTS

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

logger = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("crash_child.py")
REPO = Path(__file__).resolve().parents[2]
RANDOM_KILLS = 10


@dataclass(frozen=True)
class Observation:
    """What a user of the index can see: documents with their versions, and search results."""

    documents: tuple[tuple[str, str], ...]
    results: tuple[tuple[tuple[str, float], ...], ...]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_child(command: str, directory: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(CHILD), command, str(directory)],
        env=child_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def observe(path: Path) -> Observation:
    """Open the index (this must succeed), check it is self-consistent, and look at it."""
    with Index.open(path) as ix:
        info = ix.info()
        docs = [d["doc_id"] for d in ix.documents()]
        hashes = ix.content_hashes(docs)
        queries = np.random.default_rng(7).standard_normal((3, ix.spec.dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        everything = ix.search(queries[0], 10**6)[0]
        assert len(everything) == info["counts"]["chunks"], "FAISS and SQLite disagree"
        german = ix.chunk_row_ids(languages=["de"])
        results = []
        for hits in ix.search(queries, 10) + ix.search(queries[:1], 5, allowed=german):
            chunks = ix.chunks([row_id for row_id, _ in hits])
            assert len(chunks) == len(hits), "a search hit has no chunk in SQLite"
            results.append(tuple((c.chunk_id, round(s, 4)) for c, (_, s) in zip(chunks, hits)))
    return Observation(tuple(sorted(hashes.items())), tuple(results))


@dataclass(frozen=True)
class States:
    template: Path  # an index in state A, never opened after creation
    a: Observation
    b: Observation
    write_seconds: float


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> States:
    root = tmp_path_factory.mktemp("crash")
    template = root / "template"
    run_child("init", template)
    a_dir, b_dir = root / "a", root / "b"
    shutil.copytree(template, a_dir)
    shutil.copytree(template, b_dir)
    out = run_child("write", b_dir)
    seconds = float(out.split("done")[1])
    a, b = observe(a_dir), observe(b_dir)
    assert a != b and len(a.documents) == 300 and len(b.documents) == 640
    return States(template, a, b, seconds)


def start_writer(directory: Path, **env: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), "write", str(directory)],
        env=child_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"crash child failed before writing:\n{err}")
    return proc


def kill(proc: subprocess.Popen[str]) -> bool:
    """SIGKILL the child; True if it had already finished the write."""
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return "done" in out


def which_state(states: States, directory: Path) -> str:
    seen = observe(directory)
    if seen == states.a:
        return "A"
    if seen == states.b:
        return "B"
    pytest.fail(f"index at {directory} is neither state A nor state B after a kill")


def test_kill_at_random_moments_leaves_a_or_b(
    states: States, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(20240601)
    span = states.write_seconds * 1.3
    # Stratified: one random delay in each of RANDOM_KILLS equal slices of the write.
    delays = [(i + rng.random()) * span / RANDOM_KILLS for i in range(RANDOM_KILLS)]
    seen = []
    for n, delay in enumerate(delays):
        run_dir = tmp_path / f"run{n}"
        shutil.copytree(states.template, run_dir)
        proc = start_writer(run_dir)
        time.sleep(delay)
        finished = kill(proc)
        state = which_state(states, run_dir)
        if finished:
            assert state == "B"
        seen.append(f"{delay * 1000:.0f}ms->{state}{' (finished)' if finished else ''}")
    logger.warning("write took %.0f ms; kills: %s", states.write_seconds * 1000, ", ".join(seen))


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_each_step_of_the_write(states: States, tmp_path: Path, point: str) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(states.template, run_dir)
    marker = tmp_path / "reached"
    proc = start_writer(run_dir, **{PAUSE_AT_ENV: point, PAUSE_FILE_ENV: str(marker)})
    deadline = time.monotonic() + 30
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"child never reached {point}: {proc.communicate()[1]}")
        time.sleep(0.005)
    leftovers = sorted(p.name for p in run_dir.iterdir() if p.name.endswith(".tmp"))
    expected = "A" if point == "before_commit" else "B"
    # Readers need no lock: while the writer is frozen mid-write, a reader sees A or B too.
    assert which_state(states, run_dir) == expected
    assert not kill(proc)
    if point == "faiss_tmp_written":  # killed in the middle of rewriting vectors.faiss
        assert any(name.startswith(".vectors.faiss.") for name in leftovers)
    assert which_state(states, run_dir) == expected
    # The dead writer's lock is gone and the next write completes the job.
    run_child("write", run_dir)
    assert which_state(states, run_dir) == "B"
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
