"""BM25 keyword search that scales: a tantivy index of the passages' analysed terms.

The terms stay in `chunks.sqlite` (the FTS5 table `keywords`, written in the same transaction
as the passages): SQLite is the authority and FTS5 answers whenever the tantivy index is not
current. The tantivy index lives in `keywords.<token>.tantivy/`, named by `keywords.json`, and
is derived from SQLite like `vectors.faiss`:

- each write applies its removals and additions to it in one tantivy commit, right after the
  SQLite commit, under `write.lock`;
- one document of the index (row 0; passages start at 1) records the SQLite generation and the
  analyzer of its last commit, so a reader can tell, atomically with the data, whether it is
  current: it is searched only when that generation is SQLite's;
- behind after a crash or an older writer: `catch_up` deletes what SQLite no longer holds and
  adds the rows past the highest one it has (row ids only grow); another analyzer, a damaged or
  missing index: a new one is built aside (`build`) and `keywords.json` switched to it, with
  the old one serving until then.

Queries are disjunctions of term queries (any term may match) scored by tantivy's BM25 (k1 1.2,
b 0.75, as FTS5): block-max WAND keeps a query fast however common its terms are.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, crashpoints, upkeep
from .store import Store

logger = logging.getLogger(__name__)

POINTER_NAME = "keywords.json"
DIR_PREFIX = "keywords."
DIR_SUFFIX = ".tantivy"
BUILDING = ".building-"
FORMAT = 1
ENGINE = "tantivy"
TOKENIZER = "newsrag_terms"
_META_ROW = 0
_MAX_TERM_BYTES = 255
_WRITER_HEAP = 32_000_000
_BUILD_HEAP = 128_000_000
_POST_FILTER_SHARE = 0.25  # filters keeping at least this share: search, then drop the rest


@dataclass(frozen=True)
class KeywordState:
    """What the tantivy index holds: the SQLite generation and analyzer of its last commit."""

    generation: int
    analyzer: str | None


@functools.cache
def available() -> bool:
    """True if the tantivy binding can be imported (else keyword search stays on FTS5)."""
    try:
        import tantivy  # noqa: F401
    except ImportError:
        return False
    return True


def _tantivy() -> Any:
    import tantivy

    return tantivy


def _schema() -> Any:
    t = _tantivy()
    builder = t.SchemaBuilder()
    builder.add_text_field("terms", tokenizer_name=TOKENIZER, index_option="freq")
    builder.add_unsigned_field("row", indexed=True, fast=True)
    builder.add_unsigned_field("generation", stored=True)
    builder.add_text_field("analyzer", stored=True, tokenizer_name="raw")
    return builder.build()


def _register(index: Any) -> None:
    t = _tantivy()
    # Terms come analysed (lowercase letters and digits, space-separated); FTS5's unicode61
    # would fold case too, so this does, and queries are lowercased alike.
    analyzer = (
        t.TextAnalyzerBuilder(t.Tokenizer.whitespace())
        .filter(t.Filter.lowercase())
        .filter(t.Filter.remove_long(_MAX_TERM_BYTES))
        .build()
    )
    index.register_tokenizer(TOKENIZER, analyzer)


def read_pointer(directory: Path) -> str | None:
    """The current tantivy directory's name, or None (missing or unusable: logged)."""
    path = directory / POINTER_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring %s (%s); the keyword index will be rebuilt", path, exc)
        return None
    name = data.get("dir") if isinstance(data, dict) else None
    if (
        not isinstance(name, str)
        or not (name.startswith(DIR_PREFIX) and name.endswith(DIR_SUFFIX))
        or "/" in name
        or data.get("engine") != ENGINE
        or not isinstance(data.get("format"), int)
        or data["format"] > FORMAT
    ):
        logger.warning("ignoring %s (unexpected content); the keyword index will be rebuilt", path)
        return None
    return name


def write_pointer(directory: Path, name: str) -> None:
    """Atomically make `name` the current tantivy directory (under write.lock)."""
    atomic.write_json(directory / POINTER_NAME, {"format": FORMAT, "engine": ENGINE, "dir": name})


def remove_unreferenced(directory: Path) -> None:
    """Delete tantivy directories `keywords.json` does not name, and builds that a dead
    process left (under write.lock)."""
    keep = read_pointer(directory)
    for path in directory.glob(f"{DIR_PREFIX}*"):
        if not path.is_dir() or path.name == keep:
            continue
        if BUILDING in path.name and upkeep.pid_alive(path.name.rsplit(BUILDING, 1)[1]):
            continue
        shutil.rmtree(path, ignore_errors=True)


class TantivyKeywords:
    """One tantivy keyword index directory: search, apply a write, catch up, build."""

    def __init__(self, directory: Path, name: str, index: Any) -> None:
        self.directory = directory
        self.name = name
        self._index = index
        self._schema = index.schema
        self.state: KeywordState | None = self._read_state()

    # -- opening and building -------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path) -> TantivyKeywords | None:
        """The index `keywords.json` names; None if there is none or it cannot be opened."""
        name = read_pointer(directory)
        if name is None:
            return None
        path = directory / name
        if not path.is_dir():
            logger.warning("%s names %s, which is missing; it will be rebuilt", POINTER_NAME, path)
            return None
        try:
            index = _tantivy().Index.open(str(path))
            _register(index)
            index.config_reader(reload_policy="Manual")
            return cls(directory, name, index)
        except (OSError, ValueError) as exc:
            logger.warning("cannot open the keyword index %s (%s); it will be rebuilt", path, exc)
            return None

    @classmethod
    def create_empty(cls, directory: Path, generation: int, analyzer: str | None) -> None:
        """Create an empty current index and point `keywords.json` at it (a new index)."""
        built = cls.build(directory, generation, analyzer, [], lambda: False)
        if built is not None:
            built.publish()

    @classmethod
    def build(
        cls,
        directory: Path,
        generation: int,
        analyzer: str | None,
        rows: Iterable[tuple[int, str]],
        cancelled: Callable[[], bool],
    ) -> TantivyKeywords | None:
        """A new index of `rows` ((row id, terms text)) in a directory of its own, marked as
        being built by this process; `publish` (under write.lock) makes it the current one.
        None if `cancelled()` turned true."""
        name = f"{DIR_PREFIX}{secrets.token_hex(6)}{DIR_SUFFIX}{BUILDING}{os.getpid()}"
        path = directory / name
        path.mkdir()
        try:
            t = _tantivy()
            index = t.Index(_schema(), path=str(path))
            _register(index)
            writer = index.writer(heap_size=_BUILD_HEAP, num_threads=1)
            for n, (row, text) in enumerate(rows):
                if n % 10_000 == 0 and cancelled():
                    writer.rollback()
                    del writer, index
                    shutil.rmtree(path, ignore_errors=True)
                    return None
                writer.add_document(_document(row, text))
            writer.add_document(_meta_document(generation, analyzer))
            writer.commit()
            writer.wait_merging_threads()
            del writer
            index.config_reader(reload_policy="Manual")
            return cls(directory, name, index)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    def publish(self) -> TantivyKeywords:
        """Make this built index the current one: rename it to its final name, point
        `keywords.json` at it, delete the others. Returns it opened there (write.lock held)."""
        final = self.name.split(BUILDING, 1)[0]
        if final != self.name:
            os.replace(self.directory / self.name, self.directory / final)
            atomic.fsync_dir(self.directory)
        write_pointer(self.directory, final)
        remove_unreferenced(self.directory)
        index = _tantivy().Index.open(str(self.directory / final))
        _register(index)
        index.config_reader(reload_policy="Manual")
        return TantivyKeywords(self.directory, final, index)

    def discard(self) -> None:
        """Delete a built index that will not be published."""
        shutil.rmtree(self.directory / self.name, ignore_errors=True)

    # -- state --------------------------------------------------------------------------------

    def reload(self) -> KeywordState | None:
        """See the latest commit (another process's or a background one's)."""
        self._index.reload()
        self.state = self._read_state()
        return self.state

    def current(self, generation: int, analyzer: str | None) -> bool:
        """True if the index holds exactly SQLite's `generation` made by `analyzer`."""
        return self.state == KeywordState(generation, analyzer)

    def _read_state(self) -> KeywordState | None:
        searcher = self._index.searcher()
        found = searcher.search(self._meta_query(), 1, count=False)
        if not found.hits:
            return None
        meta = searcher.doc(found.hits[0][1]).to_dict()
        analyzer = meta.get("analyzer") or [None]
        return KeywordState(int(meta["generation"][0]), analyzer[0] or None)

    def documents(self) -> int:
        """Passages in the index (the state record excluded)."""
        return int(self._index.searcher().num_docs) - (self.state is not None)

    # -- search -------------------------------------------------------------------------------

    def search(
        self, terms: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Up to k (row id, BM25) pairs of passages holding any of `terms`, best first;
        `allowed` (sorted unique row ids) restricts to those rows."""
        t = _tantivy()
        unique = list(dict.fromkeys(term.lower() for term in terms if term))
        if not unique or k < 1:
            return []
        query = t.Query.boolean_query([(t.Occur.Should, self._term(term)) for term in unique])
        searcher = self._index.searcher()
        if allowed is None:
            return self._top(searcher, query, k)
        total = max(1, self.documents())
        if len(allowed) == 0:
            return []
        if len(allowed) >= _POST_FILTER_SHARE * total:
            return self._post_filtered(searcher, query, k, allowed, total)
        restrict = t.Query.const_score_query(
            t.Query.term_set_query(self._schema, "row", allowed.tolist()), 0.0
        )
        query = t.Query.boolean_query([(t.Occur.Must, query), (t.Occur.Must, restrict)])
        return self._top(searcher, query, k)

    def _meta_query(self) -> Any:
        # (delete_documents_by_term does not match unsigned fields in the binding: a query does)
        return _tantivy().Query.term_query(self._schema, "row", _META_ROW)

    def _term(self, term: str) -> Any:
        return _tantivy().Query.term_query(self._schema, "terms", term, index_option="freq")

    def _top(self, searcher: Any, query: Any, limit: int) -> list[tuple[int, float]]:
        found = searcher.search(query, limit, count=False)
        if not found.hits:
            return []
        rows = searcher.fast_field_values("row", [address for _, address in found.hits])
        return [(int(r), float(score)) for r, (score, _) in zip(rows, found.hits)]

    def _post_filtered(
        self, searcher: Any, query: Any, k: int, allowed: np.ndarray, total: int
    ) -> list[tuple[int, float]]:
        limit = math.ceil(2 * k * total / len(allowed))
        while True:
            hits = self._top(searcher, query, limit)
            rows = np.fromiter((r for r, _ in hits), dtype=np.int64, count=len(hits))
            keep = np.isin(rows, allowed)
            if keep.sum() >= k or len(hits) < limit:
                return [hit for hit, ok in zip(hits, keep) if ok][:k]
            limit *= 4

    # -- writing (the caller holds write.lock) ---------------------------------------------

    def apply(
        self,
        removed: np.ndarray,
        added: Iterable[tuple[int, str]],
        generation: int,
        analyzer: str | None,
    ) -> None:
        """One commit: drop `removed` row ids, add `added`, record `generation`/`analyzer`."""
        t = _tantivy()
        writer = self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        try:
            if len(removed):
                writer.delete_documents_by_query(
                    t.Query.term_set_query(self._schema, "row", [int(r) for r in removed])
                )
            for row, text in added:
                writer.add_document(_document(row, text))
            writer.delete_documents_by_query(self._meta_query())
            writer.add_document(_meta_document(generation, analyzer))
            writer.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.rollback()
            raise
        writer.wait_merging_threads()
        self.reload()

    def highest_row(self) -> int:
        """The highest passage row id in the index (0 when empty)."""
        t = _tantivy()
        searcher = self._index.searcher()
        found = searcher.search(
            t.Query.all_query(), 1, count=False, order_by_field="row", order=t.Order.Desc
        )
        if not found.hits:
            return 0
        return int(searcher.fast_field_values("row", [found.hits[0][1]])[0])

    def catch_up(
        self,
        live: np.ndarray,
        rows_after: Callable[[int], Iterable[tuple[int, str]]],
        generation: int,
        analyzer: str | None,
    ) -> bool:
        """Bring an index that is behind SQLite up to it: delete rows not in `live` (every
        keyword row id SQLite holds), add `rows_after(highest row held)`. True if the result
        holds as many passages as `live`; False: the caller should build a new one."""
        t = _tantivy()
        highest = self.highest_row()
        stale = t.Query.boolean_query(
            [
                (t.Occur.Must, t.Query.all_query()),
                (t.Occur.MustNot, t.Query.term_set_query(self._schema, "row", live.tolist())),
                (t.Occur.MustNot, self._meta_query()),
            ]
        )
        writer = self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        try:
            writer.delete_documents_by_query(stale)
            for row, text in rows_after(highest):
                writer.add_document(_document(row, text))
            writer.delete_documents_by_query(self._meta_query())
            writer.add_document(_meta_document(generation, analyzer))
            writer.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.rollback()
            raise
        writer.wait_merging_threads()
        self.reload()
        return self.documents() == len(live)


def _document(row: int, text: str) -> Any:
    doc = _tantivy().Document()
    doc.add_text("terms", text)
    doc.add_unsigned("row", int(row))
    return doc


def _meta_document(generation: int, analyzer: str | None) -> Any:
    doc = _tantivy().Document()
    doc.add_unsigned("row", _META_ROW)
    doc.add_unsigned("generation", int(generation))
    doc.add_text("analyzer", analyzer or "")
    return doc


# -- the background task -----------------------------------------------------------------------


def bring_up_to_date(
    directory: Path, lock_path: Path, cancelled: Callable[[], bool]
) -> TantivyKeywords | None:
    """Make the keyword index current with SQLite; return it (opened here) for the caller to
    use, or None when cancelled or impossible now (the caller keeps FTS5).

    Only behind: caught up under write.lock. Missing, damaged or made by another analyzer: a
    new one is built from a snapshot without the lock (the old one serves meanwhile), then
    caught up to the latest commit and published under the lock.
    """
    found = TantivyKeywords.open(directory)
    store = Store.open(directory)
    try:
        with store.snapshot():
            generation, analyzer = store.generation(), store.keyword_analyzer()
            if found is not None and found.current(generation, analyzer):
                return found
            built = None
            if found is None or found.state is None or found.state.analyzer != analyzer:
                rows = store.keyword_rows()
                built = TantivyKeywords.build(directory, generation, analyzer, rows, cancelled)
                if built is None:
                    return None
        with upkeep.write_lock(lock_path, cancelled) as held:
            if not held:
                if built is not None:
                    built.discard()
                return None
            return _finish(directory, store, built)
    finally:
        store.close()


def _finish(directory: Path, store: Store, built: TantivyKeywords | None) -> TantivyKeywords | None:
    """Under write.lock: catch `built` (or the current index) up to SQLite and publish it."""
    generation, analyzer = store.generation(), store.keyword_analyzer()
    target = built if built is not None else TantivyKeywords.open(directory)
    if target is None:
        return None
    if target.state is None or target.state.analyzer != analyzer:
        if built is not None:  # the analyzer changed while this was built: theirs is current
            built.discard()
            return TantivyKeywords.open(directory)
        return None
    if not target.current(generation, analyzer):
        if not target.catch_up(store.keyword_row_ids(), store.keyword_rows, generation, analyzer):
            logger.warning(
                "the keyword index %s disagrees with %s after catching up; it will be rebuilt",
                target.name, store.path,
            )  # fmt: skip
            if built is not None:
                built.discard()
            else:
                (directory / POINTER_NAME).unlink(missing_ok=True)
            return None
        crashpoints.reached("keywords_caught_up")
    return target.publish() if built is not None else target
