"""Queries first: a question's embedding goes before the next batch of an upload's."""

from __future__ import annotations

import threading
import time

from rag.embedders.turns import QueriesFirst


def test_a_waiting_query_goes_before_the_next_batch():
    turns = QueriesFirst()
    order: list[str] = []
    in_batch = threading.Event()

    def upload() -> None:
        for i in range(20):
            with turns.batch():
                order.append(f"batch {i}")
                in_batch.set()
                time.sleep(0.02)

    worker = threading.Thread(target=upload)
    worker.start()
    assert in_batch.wait(5)
    with turns.query():
        order.append("query")
    worker.join(10)
    # The query waited for the batch that was running, and at most one more that had
    # already passed its wait; not for the rest of the upload.
    assert order.index("query") <= 3, order
    assert len(order) == 21


def test_batches_go_on_under_a_stream_of_queries(monkeypatch):
    import rag.embedders.turns as module

    monkeypatch.setattr(module, "PATIENCE_SECONDS", 0.05)
    turns = QueriesFirst()
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            with turns.query():
                time.sleep(0.001)

    askers = [threading.Thread(target=ask) for _ in range(4)]
    for t in askers:
        t.start()
    try:
        started = time.perf_counter()
        for _ in range(3):
            with turns.batch():
                pass
        assert time.perf_counter() - started < 5  # the upload is never starved
    finally:
        stop.set()
        for t in askers:
            t.join(5)
