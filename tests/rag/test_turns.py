"""Queries first: a question's embedding goes before the next batch of an upload's."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pytest

from rag.embedders.turns import Lanes, QueriesFirst


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


# --- lanes: one stream of the model for questions, one for uploads -------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_question_takes_its_own_lane_while_a_batch_runs_on_the_other():
    clock = _Clock()
    lanes = Lanes(2, quiet=2.0, clock=clock)
    with lanes.batch() as batch_lane:
        assert batch_lane == 0
        with lanes.query() as question_lane:  # does not wait for the batch
            assert question_lane == 1


def test_batches_use_the_question_lane_only_when_questions_are_quiet():
    clock = _Clock()
    lanes = Lanes(2, quiet=2.0, clock=clock)
    with lanes.query():
        pass
    taken = threading.Event()

    def second_batch() -> None:
        with lanes.batch():
            taken.set()

    with lanes.batch() as first:
        assert first == 0
        worker = threading.Thread(target=second_batch)
        worker.start()
        assert not taken.wait(0.3)  # a question came a moment ago: lane 1 stays free
        clock.now += 2.5  # quiet now
        assert taken.wait(5)  # the second batch took lane 1 (lane 0 is still held)
        worker.join(5)


def test_on_a_quiet_machine_an_upload_uses_every_lane():
    lanes = Lanes(2, quiet=2.0, clock=_Clock())
    with lanes.batch() as a, lanes.batch() as b:
        assert {a, b} == {0, 1}


def test_a_waiting_question_goes_before_a_waiting_batch():
    lanes = Lanes(1)
    order: list[str] = []
    with lanes.batch():
        batch = threading.Thread(target=lambda: _hold(lanes.batch(), order, "batch"))
        batch.start()
        time.sleep(0.1)  # the batch waits first
        question = threading.Thread(target=lambda: _hold(lanes.query(), order, "question"))
        question.start()
        time.sleep(0.1)
    batch.join(5)
    question.join(5)
    assert order == ["question", "batch"]


def test_a_question_on_an_idle_model_takes_every_lane_and_a_batch_waits_for_it():
    lanes = Lanes(2, quiet=2.0, clock=_Clock())
    started = threading.Event()

    def batch() -> None:
        with lanes.batch():
            started.set()

    with lanes.query_whole() as lane:
        assert lane is None  # all cores for this question
        worker = threading.Thread(target=batch)
        worker.start()
        assert not started.wait(0.2)  # no lane is free until the question is done
    assert started.wait(5)
    worker.join(5)
    with lanes.batch() as busy:  # a batch runs: the question gets one lane, the other one
        with lanes.query_whole() as lane:
            assert lane is not None and lane != busy


def _hold(context, order: list[str], name: str) -> None:
    with context:
        order.append(name)


def test_openvino_embeds_passages_alike_on_one_lane_or_two(settings):
    """Two lanes (two streams, a worker each) give the vectors one lane gives, in order."""
    from rag.embedders import create_embedder

    embedder = create_embedder(settings.embedding, "openvino")
    texts = [
        f"Absatz {i}: " + "Die Nato berät über Waffenlieferungen. " * (1 + i % 7) for i in range(40)
    ]
    two = embedder.embed_passages(texts)  # batches of 32: two batches, two workers
    assert embedder._lanes.count == (2 if (os.cpu_count() or 1) >= 2 else 1)
    embedder._lanes = Lanes(1)
    one = embedder.embed_passages(texts)
    assert float((two * one).sum(axis=1).min()) > 0.9999


def test_openvino_embeds_a_question_alike_on_every_core_or_one_lane(settings, monkeypatch):
    """An idle model embeds a question with its all-threads compile (made in the background
    after the first question, which takes a lane meanwhile): the same vector. On a busy
    machine (load at or over the cores) the question takes a lane, as under an upload."""
    from rag.embedders import create_embedder, openvino

    embedder = create_embedder(settings.embedding, "openvino")
    question = "Wann wurde mit dem Bau des Kölner Doms begonnen?"
    monkeypatch.setattr(openvino, "_cores_spare", lambda: False)
    first = embedder.embed_queries([question])
    if embedder._lanes.count < 2:
        pytest.skip("one core: one lane, no second compile")
    assert not embedder._whole_started  # busy: no second compile either
    monkeypatch.setattr(openvino, "_cores_spare", lambda: True)
    embedder.embed_queries([question])
    deadline = time.monotonic() + 60
    while embedder._whole() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert embedder._whole() is not None
    taken: list[object] = []
    original = Lanes.query_whole

    def spy(lanes):
        with original(lanes) as lane:
            taken.append(lane)
            yield lane

    embedder._lanes.query_whole = contextlib.contextmanager(spy).__get__(embedder._lanes)
    whole = embedder.embed_queries([question])
    assert taken == [None]  # every core: the all-threads compile ran it
    assert float((whole * first).sum()) > 0.9999
