"""The approximate graph of a large local index (index.ann): switch-over at the threshold,
background builds that no write waits for, rebuilds, removals, filters, a damaged graph.

A small threshold stands in for the real one (20,000 passages by default)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from index import Index, IndexSpec, ann
from index.ann import AnnOptions

from .conftest import make_doc

DIM = 16
THRESHOLD = 300
OPTIONS = AnnOptions(threshold=THRESHOLD, ef_search=64, rebuild_share=0.1, m=16)


def docs(first: int, n: int, per_doc: int = 5) -> list:
    """Documents d{first}..d{first+n-1}, `per_doc` distinct passages each."""
    return [
        make_doc(f"d{i:05d}", [f"passage {j} of document {i}" for j in range(per_doc)])
        for i in range(first, first + n)
    ]


def queries(n: int = 20, seed: int = 3) -> np.ndarray:
    q = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def recall(ix: Index, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> float:
    got = ix.search(q, k, allowed=allowed)
    exact = ix.exact_search(q, k, allowed=allowed)
    return float(
        np.mean([len({r for r, _ in a} & {r for r, _ in b}) / len(b) for a, b in zip(got, exact)])
    )


def graph_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.glob("ann.*.faiss"))


@pytest.fixture
def open_index(index_dir: Path, spec: IndexSpec) -> Iterator[Callable[..., Index]]:
    opened: list[Index] = []

    def _open(options: AnnOptions = OPTIONS) -> Index:
        ix = Index.open(index_dir, spec, create=True, lock_timeout=5.0, ann=options)
        opened.append(ix)
        return ix

    yield _open
    for ix in opened:
        ix.close()


def test_below_the_threshold_search_stays_exact(open_index, index_dir: Path) -> None:
    ix = open_index()
    ix.write(docs(0, 50))  # 250 passages
    assert ix.settle(timeout=30)
    assert ix.info()["search"]["vectors"] == "exact"
    assert graph_files(index_dir) == [] and not (index_dir / ann.POINTER_NAME).exists()


def test_past_the_threshold_a_graph_is_built_saved_and_used(open_index, index_dir: Path) -> None:
    ix = open_index()
    ix.write(docs(0, 100))  # 500 passages
    assert ix.settle(timeout=60)
    search = ix.info()["search"]
    assert (search["vectors"], search["graph_vectors"], search["graph_pending"]) == (
        "approximate", 500, 0
    )  # fmt: skip
    assert len(graph_files(index_dir)) == 1
    assert ann.read_record(index_dir).file == graph_files(index_dir)[0]
    assert recall(ix, queries(), 10) >= 0.95
    ix.close()
    # The next process loads the saved graph: nothing to build.
    again = open_index()
    assert again.info()["search"]["vectors"] == "approximate"
    assert again.info()["search"]["upkeep"] == []
    assert recall(again, queries(), 10) >= 0.95


def test_writes_never_wait_for_a_build(
    open_index, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build is held at its start: writes go through, and their passages are searched
    (exactly) beside the graph as soon as it is in use."""
    started, release = threading.Event(), threading.Event()
    real_build = ann.HnswGraph.build

    def held_build(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(ann.HnswGraph, "build", held_build)
    ix = open_index()
    ix.write(docs(0, 70))  # 350 passages: a build starts in the background
    assert started.wait(30)
    late = docs(500, 3)
    result = ix.write(late)  # the build is blocked, the write is not
    assert result.chunks_added == 15
    release.set()
    assert ix.settle(timeout=60)
    info = ix.info()["search"]
    assert info["vectors"] == "approximate"
    assert info["graph_vectors"] == 350 and info["graph_pending"] == 15  # 4 %: no rebuild
    passage = late[1].chunks[2]
    (hits,) = ix.search(passage.vector, 1)
    assert ix.chunks([hits[0][0]])[0].chunk_id == passage.chunk_id


def test_growth_past_rebuild_share_rebuilds_in_the_background(open_index, index_dir) -> None:
    ix = open_index()
    ix.write(docs(0, 80))  # 400
    assert ix.settle(timeout=60)
    first = graph_files(index_dir)
    ix.write(docs(100, 4))  # +20 = 5 % of the graph: searched exactly beside it, no rebuild
    assert ix.settle(timeout=60)
    assert ix.info()["search"]["graph_pending"] == 20 and graph_files(index_dir) == first
    ix.write(docs(200, 10))  # +50 more: 17.5 % > 10 %
    assert ix.settle(timeout=60)
    search = ix.info()["search"]
    assert search["graph_vectors"] == 470 and search["graph_pending"] == 0
    assert len(graph_files(index_dir)) == 1 and graph_files(index_dir) != first
    assert recall(ix, queries(), 10) >= 0.95


class HeldBuilds:
    """Lets the first graph build through; holds the later ones at their start."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.builds = 0
        self.started, self.release = threading.Event(), threading.Event()
        self.cancelled_seen: list[bool] = []
        real_build = ann.HnswGraph.build

        def build(ids, vectors, options, cancelled):
            self.builds += 1
            if self.builds > 1:
                self.started.set()
                assert self.release.wait(30)
                self.cancelled_seen.append(cancelled())
            return real_build(ids, vectors, options, cancelled)

        monkeypatch.setattr(ann.HnswGraph, "build", build)


def test_removed_passages_are_never_returned(open_index, monkeypatch) -> None:
    held = HeldBuilds(monkeypatch)
    ix = open_index()
    all_docs = docs(0, 100)
    ix.write(all_docs)  # 500 passages
    assert ix.settle(timeout=60)
    gone = [d.doc_id for d in all_docs[:20]]
    ix.write(removals=gone)  # 100 of the graph's 500: a rebuild starts, and is held
    assert held.started.wait(30)
    assert ix.info()["search"]["graph_pending"] == 100
    removed_vectors = np.stack([c.vector for d in all_docs[:20] for c in d.chunks])
    hits = ix.search(removed_vectors[:30], 10)
    rows = sorted({r for row in hits for r, _ in row})
    assert {c.doc_id for c in ix.chunks(rows)}.isdisjoint(gone)
    assert all(len(row) == 10 for row in hits)
    held.release.set()
    assert ix.settle(timeout=60)
    assert ix.info()["search"]["graph_vectors"] == 400


def test_filtered_searches_return_k_hits(open_index) -> None:
    ix = open_index()
    ix.write(docs(0, 100))
    assert ix.settle(timeout=60)
    everything = ix.chunk_row_ids()
    q = queries(10)
    broad = everything[::3]  # a third: searched in the graph with a selector
    narrow = everything[:5]  # 1 %: searched exactly
    for allowed in (broad, narrow, everything[-40:]):
        hits = ix.search(q, 10, allowed=allowed)
        assert all(len(row) == min(10, len(allowed)) for row in hits)
        assert {r for row in hits for r, _ in row} <= set(allowed.tolist())
    assert recall(ix, q, 10, allowed=broad) >= 0.9
    assert ix.search(q, 10, allowed=narrow) == ix.exact_search(q, 10, allowed=narrow)


def test_a_damaged_graph_is_ignored_and_rebuilt(open_index, index_dir: Path, caplog) -> None:
    ix = open_index()
    ix.write(docs(0, 80))
    assert ix.settle(timeout=60)
    ix.close()
    (name,) = graph_files(index_dir)
    data = (index_dir / name).read_bytes()
    (index_dir / name).write_bytes(data[: len(data) // 2])
    again = open_index()
    assert "does not match the checksum" in caplog.text
    q = queries()
    assert again.search(q, 10) is not None  # exact meanwhile, or the rebuilt graph
    assert again.settle(timeout=60)
    assert again.info()["search"]["vectors"] == "approximate"
    assert graph_files(index_dir) != [name] and len(graph_files(index_dir)) == 1
    assert recall(again, q, 10) >= 0.95


def test_closing_cancels_a_running_build(open_index, index_dir: Path, monkeypatch) -> None:
    held = HeldBuilds(monkeypatch)
    held.builds = 1  # hold the first build too
    ix = open_index()
    ix.write(docs(0, 80))
    assert held.started.wait(30)
    closing = threading.Thread(target=ix.close)
    closing.start()
    held.release.set()
    closing.join(30)
    assert not closing.is_alive()
    assert held.cancelled_seen == [True]  # the build saw it and stopped: nothing saved
    assert graph_files(index_dir) == []


def test_the_settings_threshold_reaches_the_local_index(tmp_path: Path, spec: IndexSpec) -> None:
    from rag.engine import open_index as engine_open_index
    from rag.settings import Settings

    settings = Settings(index={"ann_threshold": 42, "ann_ef_search": 33})
    ix = engine_open_index(settings, tmp_path / "idx", spec, create=True)
    try:
        assert ix._ann_options.threshold == 42 and ix._ann_options.ef_search == 33
    finally:
        ix.close()
    assert Settings(index={"ann_threshold": 0}).index.ann_options().threshold is None


def test_an_id_filter_holds_exactly_its_ids() -> None:
    from index.vectors import IdFilter

    ids = np.array([1000, 3, 9, 8, 1, 64, 3])
    only = IdFilter(ids)
    assert [i for i in range(1100) if only.selector.is_member(i)] == [1, 3, 8, 9, 64, 1000]
    assert len(only) == 6
    assert not any(IdFilter(np.array([], dtype=np.int64)).selector.is_member(i) for i in range(9))


def test_a_large_graph_searches_with_a_beam_that_grows_with_it(
    open_index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ef_search is a floor: past ef_search * 1,000 vectors the beam is one per 1,000 (here
    one per 5, so that 500 passages stand in for a million)."""
    ix = open_index()
    ix.write(docs(0, 100))  # 500 passages
    assert ix.settle(timeout=60)
    graph = ix._graph
    assert graph is not None
    assert graph._beam() == 64  # 500 // 1,000 is under ef_search
    monkeypatch.setattr(ann, "_VECTORS_PER_EF", 5)
    assert graph._beam() == 100
    seen: list[int] = []
    search = graph.graph.search
    monkeypatch.setattr(
        graph.graph, "search", lambda q, k, ef, sel: seen.append(ef) or search(q, k, ef, sel)
    )
    ix.search(queries(2), 10)
    assert seen == [100]
