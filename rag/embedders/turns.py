"""Queries first: one embedding model serves the questions of readers and the documents of an
upload; a question must not wait behind the upload's queue of batches.

Measured with `benchmarks/serve.py --mixed` (47 readers, a 1.9 MB upload of 480 batches): with
a plain lock per batch, asks overlapping the upload had p95 6.7 s. Python's lock is not fair:
the uploading thread released and re-took it batch after batch while questions waited. Here a
waiting question goes before the next batch, so it waits for at most the one batch running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


QUIET_SECONDS = 2.0
"""How long after the last question an upload may take the questions' lane too."""


class Lanes:
    """Inference lanes for a model compiled with one stream per lane (OpenVINO `NUM_STREAMS`):
    each lane is a core's worth of the model, so work on one lane does not wait for another's.

    Lane 0 is the uploads' and lane 1 the questions'. A question takes a free lane at once,
    its own first; it waits only when both are busy. A passage batch takes lane 0, and lane 1
    too while no question has come for `quiet` seconds, so an index run on a quiet machine
    uses every core, and a server answering questions keeps one lane free for them: a question
    never waits for an upload's batch (measured in `benchmarks/serve.py --mixed`).
    """

    def __init__(self, lanes: int, quiet: float = QUIET_SECONDS, clock: Any = time.monotonic):
        if lanes < 1:
            raise ValueError("at least one lane")
        self.count = lanes
        self._free = set(range(lanes))
        self._cond = threading.Condition()
        self._waiting = 0
        self._quiet, self._clock = quiet, clock
        self._last_question = float("-inf")

    @contextmanager
    def query(self) -> Iterator[int]:
        """A lane for a question (the questions' lane when free)."""
        with self._cond:
            self._waiting += 1
            self._last_question = self._clock()
            try:
                self._cond.wait_for(lambda: bool(self._free))
            finally:
                self._waiting -= 1
            lane = max(self._free)
            self._free.discard(lane)
        try:
            yield lane
        finally:
            self._release(lane, question=True)

    @contextmanager
    def query_whole(self) -> Iterator[int | None]:
        """For a question: every lane when all are free this moment (yields None: the caller
        may use all cores), else one lane as `query` gives it. A batch arriving meanwhile
        waits for the question, which takes milliseconds."""
        with self._cond:
            whole = len(self._free) == self.count and not self._waiting
            if whole:
                self._free.clear()
                self._last_question = self._clock()
        if not whole:
            with self.query() as lane:
                yield lane
            return
        try:
            yield None
        finally:
            with self._cond:
                self._last_question = self._clock()
                self._free.update(range(self.count))
                self._cond.notify_all()

    @contextmanager
    def batch(self) -> Iterator[int]:
        """A lane for a passage batch: the uploads' lane, or the questions' lane while quiet;
        after `PATIENCE_SECONDS` of questions going first, the uploads' lane regardless."""
        with self._cond:
            since = self._clock()
            while True:
                lane = self._batch_lane(patient=self._clock() - since < PATIENCE_SECONDS)
                if lane is not None:
                    break
                self._cond.wait(timeout=min(self._quiet, PATIENCE_SECONDS))
            self._free.discard(lane)
        try:
            yield lane
        finally:
            self._release(lane, question=False)

    def _batch_lane(self, *, patient: bool) -> int | None:
        if self._waiting and patient:
            return None  # a waiting question takes the next free lane
        if 0 in self._free:
            return 0
        quiet = self._clock() - self._last_question >= self._quiet
        spare = [lane for lane in self._free if lane > 0]
        return spare[0] if spare and quiet else None

    def _release(self, lane: int, *, question: bool) -> None:
        with self._cond:
            if question:
                self._last_question = self._clock()
            self._free.add(lane)
            self._cond.notify_all()
