"""Writers exclude each other through write.lock; readers need no lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from index import DocumentRecord, Index, IndexSpec
from index.errors import IndexLockedError

HOLD_LOCK = """
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def lock_holder() -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    """Start another process that takes a directory's write.lock and keeps it."""
    started: list[subprocess.Popen[str]] = []

    def _hold(directory: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(directory / "write.lock")],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        return proc

    yield _hold
    for proc in started:
        proc.kill()
        proc.wait()


def test_second_writer_gets_index_locked_error(
    index_dir: Path,
    spec: IndexSpec,
    doc: Callable[..., DocumentRecord],
    vec: Callable[[str], np.ndarray],
    lock_holder: Callable[[Path], subprocess.Popen[str]],
) -> None:
    with Index.open(index_dir, spec, create=True) as ix:
        ix.write([doc("a", ["eins"])])
    holder = lock_holder(index_dir)
    with Index.open(index_dir, spec, lock_timeout=0.3) as ix:
        assert ix.search(vec("eins"), 1)[0]  # reading needs no lock
        started = time.monotonic()
        with pytest.raises(IndexLockedError) as err:
            ix.write([doc("b", ["zwei"])])
        assert time.monotonic() - started < 5
        message = str(err.value)
        assert "Another process is writing to the index" in message
        assert str(index_dir / "write.lock") in message and "0.3 s" in message
        assert "retry" in message
        assert [d["doc_id"] for d in ix.documents()] == ["a"]
        holder.kill()
        holder.wait()
        assert ix.write([doc("b", ["zwei"])]).added == 1  # the lock died with its holder


def test_creating_while_locked(
    tmp_path: Path, spec: IndexSpec, lock_holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    target = tmp_path / "new"
    target.mkdir()
    lock_holder(target)
    with pytest.raises(IndexLockedError, match="Another process is writing"):
        Index.open(target, spec, create=True, lock_timeout=0.2)
    assert os.listdir(target) == ["write.lock"]
