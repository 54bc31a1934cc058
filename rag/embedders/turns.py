"""Queries first: one embedding model serves the questions of readers and the documents of an
upload; a question must not wait behind the upload's queue of batches.

Measured with `benchmarks/serve.py --mixed` (47 readers, a 1.9 MB upload of 480 batches): with
a plain lock per batch, asks overlapping the upload had p95 6.7 s. Python's lock is not fair:
the uploading thread released and re-took it batch after batch while questions waited. Here a
waiting question goes before the next batch, so it waits for at most the one batch running.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

PATIENCE_SECONDS = 5.0
"""Longest a batch waits for questions to pass (then it goes: uploads cannot starve)."""


class QueriesFirst:
    """Mutual exclusion for a model, with questions served before the next passage batch."""

    def __init__(self) -> None:
        self._model = threading.Lock()
        self._turns = threading.Condition()
        self._queries = 0

    @contextmanager
    def query(self) -> Iterator[None]:
        with self._turns:
            self._queries += 1
        try:
            with self._model:
                yield
        finally:
            with self._turns:
                self._queries -= 1
                self._turns.notify_all()

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._turns:
            self._turns.wait_for(lambda: self._queries == 0, timeout=PATIENCE_SECONDS)
        with self._model:
            yield
