"""The `Engine` facade through the real model and the real index: add, search, filters, updates,
removals, mismatched indexes and unreadable files, as a user of the Python API sees them."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.engine import Engine, Filters
from rag.errors import ConfigError, IndexMismatchError, RagError
from rag.types import Document, Hit

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
SEED_NAMES = sorted(p.name for p in SEEDS.glob("*.txt"))

AID = "001_9706a68281888026.txt"  # Biden's 700-million-dollar package, dated 2022-06
CEASEFIRE = "004_7d20457fd89d74f6.txt"  # Bloomberg report, no date header
GENEVA = "003_8f400f1f19299dd9.txt"  # POLITICO, no date header
OFFENSIVE = "000_849880feec34fc6b.txt"  # the only 2023 article
BLINKEN = "002_7087fd7bd1610eb4.txt"


def seed_source(name: str) -> str:
    """The source of a seed file as `Engine.add([SEEDS])` records it: the path as given."""
    return f"{SEEDS.as_posix()}/{name}"


def all_passages(engine: Engine) -> list:
    index = engine._readable_index()
    return index.chunks(index.chunk_row_ids())


def passages_with(engine: Engine, needle: str) -> list:
    return [c for c in all_passages(engine) if needle in c.text]


def document_text(engine: Engine, doc_id: str) -> str:
    doc = engine._readable_index().document(doc_id)
    assert doc is not None, doc_id
    return doc["text"]


def copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("write.lock"))
    return dst


# --- the seeded index, shared by every test that only reads -------------------------------------


@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory, settings, embedder) -> Path:
    """An index of the five seeds, built once and closed (tests that write copy it)."""
    path = tmp_path_factory.mktemp("engine") / "idx"
    with Engine.open(path, settings, embedder=embedder) as engine:
        report = engine.add([SEEDS])
    assert (report.added, report.documents, report.problems) == (5, 5, ())
    return path


@pytest.fixture(scope="module")
def seeded(seeded_dir, settings, embedder) -> Iterator[Engine]:
    with Engine.open(seeded_dir, settings, embedder=embedder) as engine:
        yield engine


@pytest.fixture
def writable(seeded_dir, tmp_path, settings, embedder) -> Iterator[Engine]:
    """A private copy of the seeded index, for tests that change it."""
    with Engine.open(copy_index(seeded_dir, tmp_path / "copy"), settings, embedder=embedder) as e:
        yield e


# --- adding -------------------------------------------------------------------------------------


def test_seeds_become_five_documents_with_titles_dates_and_sources(seeded):
    docs = {Path(d["source"]).name: d for d in seeded.documents()}
    assert sorted(docs) == SEED_NAMES
    assert {d["source"] for d in docs.values()} == {seed_source(n) for n in SEED_NAMES}
    # The ` date YYYY-MM` header becomes the date; of the files without one, the Rutte article
    # is dated from its text ("Nach fast drei Jahren Ukraine-Krieg"), Geneva stays undated.
    assert docs[OFFENSIVE]["date"] == "2023-06"
    assert docs[AID]["date"] == docs[BLINKEN]["date"] == "2022-06"
    assert docs[GENEVA]["date"] is None
    assert docs[CEASEFIRE]["date"] == "2024-12"
    assert (
        docs[GENEVA]["title"]
        == "NATO wird bereit sein, wenn Russland-Gespräche scheitern – POLITICO"
    )
    assert all(d["language"] == "de" and d["n_chunks"] >= 1 for d in docs.values())
    # The header is metadata, not text.
    assert not document_text(seeded, docs[OFFENSIVE]["doc_id"]).lstrip().startswith("date")

    info = seeded.info()
    assert info["counts"] == {
        "documents": 5,
        "chunks": sum(d["n_chunks"] for d in docs.values()),
    }
    assert info["spec"]["embedder"]["id"] == seeded.embedder.id


def test_re_adding_unchanged_seeds_does_no_work(seeded, monkeypatch):
    before = seeded.info()

    def no_embedding(texts):  # pragma: no cover - failing is the point
        raise AssertionError(f"re-adding unchanged documents embedded {len(texts)} passages")

    monkeypatch.setattr(seeded.embedder, "embed_passages", no_embedding)
    report = seeded.add([SEEDS])

    assert (report.files, report.documents) == (5, 5)
    assert (report.added, report.updated, report.unchanged, report.chunks) == (0, 0, 5, 0)
    assert report.ok
    after = seeded.info()
    assert after["generation"] == before["generation"]
    assert after["counts"] == before["counts"]


def test_changed_file_replaces_its_old_version(tmp_path, settings, embedder):
    folder = tmp_path / "articles"
    folder.mkdir()
    for name in (OFFENSIVE, BLINKEN):
        shutil.copy(SEEDS / name, folder / name)
    old_sentence = (
        "Der NATO-Generalsekretär strebt nach dem Auslaufen seines Mandats im Oktober keine "
        "weitere Amtszeit an."
    )
    new_sentence = (
        "Der NATO-Generalsekretär will nach dem Ende seiner Amtszeit Zitronenbäume in Lappland "
        "züchten."
    )
    with Engine.open(tmp_path / "idx", settings, embedder=embedder) as engine:
        first = engine.add([folder])
        assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
        assert passages_with(engine, "Auslaufen seines Mandats")

        edited = folder / OFFENSIVE
        text = edited.read_text(encoding="utf-8")
        assert old_sentence in text
        edited.write_text(text.replace(old_sentence, new_sentence), encoding="utf-8")
        report = engine.add([folder])

        assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
        assert report.chunks >= 1
        assert len(engine.documents()) == 2
        source = (folder / OFFENSIVE).as_posix()
        doc_id = next(d["doc_id"] for d in engine.documents() if d["source"] == source)
        assert new_sentence in document_text(engine, doc_id)
        assert old_sentence not in document_text(engine, doc_id)
        assert not passages_with(engine, "Auslaufen seines Mandats")

        top = engine.search("Was will Stoltenberg nach seiner Amtszeit züchten?", k=1)[0]
        assert "Zitronenbäume in Lappland" in top.text
        assert top.source == source and top.date == "2023-06"
        assert top.text == document_text(engine, doc_id)[top.start : top.end]


def test_folder_with_unreadable_files_indexes_the_good_ones(tmp_path, settings, embedder):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "gut.txt").write_text(
        " date 2021-03 Der Stadtrat von Bielefeld beschloss, im Sommer eine Seilbahn über den "
        "Teutoburger Wald zu bauen.\n",
        encoding="utf-8",
    )
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "notes.xyz").write_text("Was auch immer.", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("Grüße aus Köln".encode("latin-1"))

    with Engine.open(tmp_path / "idx", settings, embedder=embedder) as engine:
        report = engine.add([folder, tmp_path / "missing.txt"])

        assert (report.documents, report.added) == (1, 1)
        assert not report.ok
        problems = {Path(p.source).name: p.message for p in report.problems}
        assert sorted(problems) == [
            "binary.txt",
            "empty.txt",
            "latin1.txt",
            "missing.txt",
            "notes.xyz",
        ]
        assert "binary" in problems["binary.txt"]
        assert "empty" in problems["empty.txt"]
        assert "UTF-8" in problems["latin1.txt"] and "iconv" in problems["latin1.txt"]
        assert "unsupported file type '.xyz'" in problems["notes.xyz"]
        assert ".txt" in problems["notes.xyz"]  # lists what is supported
        assert "no such file" in problems["missing.txt"]
        as_json = report.to_json()["problems"]
        assert {tuple(p) for p in as_json} == {("source", "line", "message")}

        [doc] = engine.documents()
        assert doc["source"] == (folder / "gut.txt").as_posix()
        hit = engine.search("Wo soll eine Seilbahn gebaut werden?", k=1)[0]
        assert "Teutoburger Wald" in hit.text and hit.date == "2021-03"


def test_add_documents_from_code(tmp_path, settings, embedder):
    docs = [
        Document(
            doc_id="wetter-1",
            text="Der Deutsche Wetterdienst warnt vor Glatteis in Bayern. Autofahrer sollen "
            "langsam fahren.",
            source="feeds/wetter.jsonl",
            title="Glatteis in Bayern",
            date="2024-01-15",
            language="de",
        ),
        Document(
            doc_id="sport-1",
            text="The Bundesliga club from Bremen signed a new goalkeeper from Norway.",
            source="feeds/sport.jsonl",
            title="New goalkeeper",
            date="2024-02",
            language="en",
        ),
        Document(doc_id="wetter-1", text="Ein Duplikat.", source="feeds/dupe.jsonl"),
    ]
    with Engine.open(tmp_path / "idx", settings, embedder=embedder) as engine:
        report = engine.add_documents(docs)

        assert (report.files, report.documents, report.added, report.unchanged) == (0, 2, 2, 0)
        [problem] = report.problems
        assert problem.source == "feeds/dupe.jsonl"
        assert "duplicate document id 'wetter-1'" in problem.message

        hit = engine.search("Welcher Verein hat einen Torwart verpflichtet?", k=1)[0]
        assert (hit.doc_id, hit.title, hit.date, hit.source) == (
            "sport-1",
            "New goalkeeper",
            "2024-02",
            "feeds/sport.jsonl",
        )
        assert hit.language == "en"
        assert engine.add_documents(docs[:2]).unchanged == 2


# --- searching ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "needle", "seed"),
    [
        ("Wie viel ist das neue Hilfspaket von Joe Biden wert?", "700 Millionen Dollar", AID),
        (
            "Welche Option für einen Waffenstillstand diskutiert ein Nato-Diplomat?",
            "entmilitarisierten Zone",
            CEASEFIRE,
        ),
        ("How much is Biden's military aid package worth?", "700 Millionen Dollar", AID),
        ("Which NATO article protects allies, and is Ukraine covered?", "Artikel 5", GENEVA),
    ],
)
def test_question_ranks_the_passage_with_the_answer_first(seeded, question, needle, seed):
    holding = passages_with(seeded, needle)
    assert len(holding) == 1, "the answer must be in exactly one passage for this test to mean much"

    hits = seeded.search(question, k=5)

    assert hits[0].chunk_id == holding[0].chunk_id
    assert needle in hits[0].text
    assert hits[0].source == seed_source(seed)


def test_hit_fields_point_into_the_document(seeded):
    hits = seeded.search("Wie viel ist das neue Hilfspaket von Joe Biden wert?", k=5)
    top = hits[0]
    assert isinstance(top, Hit)
    assert top.title == "Nato-Generalsekretär überzeugt: „Krieg wird am Verhandlungstisch beendet“"
    assert top.date == "2022-06"
    assert top.source == seed_source(AID)
    assert top.language == "de"
    assert top.text == document_text(seeded, top.doc_id)[top.start : top.end]
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(math.isfinite(s) for s in scores)
    assert top.to_json()["start"] == top.start and top.to_json()["text"] == top.text


def test_every_passage_is_a_span_of_its_document(seeded):
    n_chunks = seeded.info()["counts"]["chunks"]
    hits = seeded.search("Verhandlungen", k=1000)
    assert len(hits) == n_chunks
    assert len({h.chunk_id for h in hits}) == n_chunks
    texts = {d["doc_id"]: document_text(seeded, d["doc_id"]) for d in seeded.documents()}
    for h in hits:
        assert h.text == texts[h.doc_id][h.start : h.end], h.chunk_id


def test_search_batch_answers_each_question(seeded):
    german, english = seeded.search_batch(
        [
            "Welche Option für einen Waffenstillstand diskutiert ein Nato-Diplomat?",
            "How much is Biden's military aid package worth?",
        ],
        k=3,
    )
    assert "entmilitarisierten Zone" in german[0].text
    assert "700 Millionen Dollar" in english[0].text
    assert len(german) == len(english) == 3


@pytest.mark.parametrize(
    ("filters", "dates"),
    [
        (Filters(date_from="2023"), {"2023-06", "2024-12"}),
        (Filters(date_to="2022-06"), {"2022-06"}),
        (Filters(date_from="2022-06-15", date_to="2022-12"), {"2022-06"}),
    ],
)
def test_date_filters_keep_only_matching_documents(seeded, filters, dates):
    allowed = [d for d in seeded.documents() if d["date"] in dates]
    n_allowed = sum(d["n_chunks"] for d in allowed)

    hits = seeded.search("Verhandlungen mit Russland", k=1000, filters=filters)

    assert len(hits) == n_allowed
    assert {h.date for h in hits} == dates  # undated documents are left out
    assert {h.doc_id for h in hits} == {d["doc_id"] for d in allowed}


def test_filtered_search_still_returns_k_hits(seeded):
    n_2022 = sum(d["n_chunks"] for d in seeded.documents() if d["date"] == "2022-06")
    assert n_2022 > 8
    # The best passages overall are in the undated Geneva article; filtering must not eat into k.
    hits = seeded.search(
        "Wer trifft in Genf den russischen Vizeaußenminister?",
        k=8,
        filters=Filters(date_to="2022-06"),
    )
    assert len(hits) == 8
    assert {h.date for h in hits} == {"2022-06"}
    assert [h.rank for h in hits] == list(range(1, 9))


def test_source_and_language_filters(seeded):
    hits = seeded.search("Verhandlungen", k=3, filters=Filters(sources=(seed_source(GENEVA),)))
    assert len(hits) == 3 and {h.source for h in hits} == {seed_source(GENEVA)}
    assert seeded.search("Verhandlungen", filters=Filters(languages=("en",))) == []
    assert seeded.search("Verhandlungen", filters=Filters(date_from="2030")) == []


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(date_from="2022-13"), "month 13"),
        (Filters(date_to="gestern"), "'gestern' is not an ISO date"),
    ],
)
def test_bad_date_filter_is_a_clear_error(seeded, filters, expected):
    with pytest.raises(ConfigError, match=expected):
        seeded.search("Verhandlungen", filters=filters)


@pytest.mark.parametrize("query", ["", "   \n"])
def test_empty_query_is_an_error(seeded, query):
    with pytest.raises(ConfigError, match="query is empty"):
        seeded.search(query)
    with pytest.raises(ConfigError, match="query is empty"):
        seeded.search_batch(["Verhandlungen", query])


def test_negative_k_is_an_error(seeded):
    with pytest.raises(ConfigError, match="k must be at least 1, got -1"):
        seeded.search("Verhandlungen", k=-1)


def test_k_zero_is_an_error(seeded):
    with pytest.raises(ConfigError, match="k must be at least 1"):
        seeded.search("Verhandlungen", k=0)


def test_search_without_an_index_names_the_path_and_the_fix(tmp_path, settings, embedder):
    engine = Engine.open(tmp_path / "nothing", settings, embedder=embedder)
    with pytest.raises(ConfigError) as excinfo:
        engine.search("Verhandlungen")
    message = str(excinfo.value)
    assert str(tmp_path / "nothing") in message and "rag index" in message
    assert not (tmp_path / "nothing").exists()  # searching does not create an index


# --- removing -----------------------------------------------------------------------------------


def test_remove_by_source(writable):
    n_geneva = next(
        d["n_chunks"] for d in writable.documents() if d["source"] == seed_source(GENEVA)
    )

    result = writable.remove(sources=[seed_source(GENEVA)])

    assert (result.removed, result.chunks_removed) == (1, n_geneva)
    assert seed_source(GENEVA) not in {d["source"] for d in writable.documents()}
    assert writable.info()["counts"]["documents"] == 4
    hits = writable.search("Wer trifft in Genf den russischen Vizeaußenminister?", k=1000)
    assert hits and all(h.source != seed_source(GENEVA) for h in hits)
    assert not any("Wendy Sherman" in h.text for h in hits)


def test_remove_by_doc_id_and_unknown_ids_are_ignored(writable):
    doc_id = next(d["doc_id"] for d in writable.documents() if d["source"] == seed_source(AID))

    result = writable.remove(doc_ids=[doc_id, "no-such-doc"], sources=["nowhere.txt"])

    assert result.removed == 1
    assert doc_id not in {d["doc_id"] for d in writable.documents()}
    top = writable.search("Wie viel ist das neue Hilfspaket von Joe Biden wert?", k=5)
    assert all("700 Millionen Dollar" not in h.text for h in top)
    assert writable.remove(doc_ids=[doc_id]).removed == 0


# --- opening and closing ------------------------------------------------------------------------


def test_index_of_another_embedder_is_refused_naming_both(
    tmp_path, settings, embedder, fake_embedder
):
    path = tmp_path / "fake-idx"
    with Engine.open(path, settings, embedder=fake_embedder) as engine:
        engine.add_documents([Document(doc_id="a", text="Ein kurzer Text.", source="a.txt")])

    with pytest.raises(IndexMismatchError) as excinfo:
        Engine.open(path, settings, embedder=embedder)
    message = str(excinfo.value)
    assert "'fake-embedder'" in message and repr(embedder.id) in message
    assert "--index NEW_DIR" in message


def test_real_index_opened_with_another_model_id_is_refused(
    seeded_dir, settings, embedder, fake_embedder
):
    other = type(fake_embedder)(dim=embedder.dim, model_id="some-other-model")
    with pytest.raises(IndexMismatchError) as excinfo:
        Engine.open(seeded_dir, settings, embedder=other)
    assert "'some-other-model'" in str(excinfo.value)
    assert repr(embedder.id) in str(excinfo.value)


def test_index_with_other_chunking_is_refused(seeded_dir, settings, embedder):
    other = settings.model_copy(
        update={"chunking": settings.chunking.model_copy(update={"max_tokens": 100})}
    )
    with pytest.raises(IndexMismatchError, match="max_tokens: index 200 vs settings 100"):
        Engine.open(seeded_dir, other, embedder=embedder)


def test_context_manager_persists_and_closes(seeded_dir, tmp_path, settings, embedder):
    path = copy_index(seeded_dir, tmp_path / "idx")
    with Engine.open(path, settings, embedder=embedder) as engine:
        engine.add_documents(
            [
                Document(
                    doc_id="extra",
                    text="Die Bahn streicht alle Züge nach Sylt am Montag.",
                    source="extra.txt",
                    date="2024-05",
                )
            ]
        )
    assert engine._index is None
    engine.close()  # closing twice is harmless

    with Engine.open(path, settings, embedder=embedder) as reopened:
        assert reopened.info()["counts"]["documents"] == 6
        top = reopened.search("Fahren am Montag Züge nach Sylt?", k=1)[0]
        assert top.doc_id == "extra"


def test_search_after_close_says_the_engine_is_closed(seeded_dir, tmp_path, settings, embedder):
    path = copy_index(seeded_dir, tmp_path / "idx")
    engine = Engine.open(path, settings, embedder=embedder)
    engine.close()
    with pytest.raises(RagError, match="was closed; open it again") as info:
        engine.search("Verhandlungen", k=1)
    assert "no index" not in str(info.value)


# --- one read per question; citations carry the document's URL ----------------------------------


class _CountingIndex:
    """Wraps an index and records every row id asked of `chunks`, `evidence` and
    `passage_texts`."""

    def __init__(self, index) -> None:
        self._index = index
        self.chunk_rows: list[int] = []
        self.evidence_rows: list[int] = []
        self.text_rows: list[int] = []

    def chunks(self, row_ids):
        self.chunk_rows.extend(row_ids)
        return self._index.chunks(row_ids)

    def evidence(self, row_ids):
        self.evidence_rows.extend(row_ids)
        return self._index.evidence(row_ids)

    def passage_texts(self, row_ids):
        self.text_rows.extend(row_ids)
        return self._index.passage_texts(row_ids)

    def __getattr__(self, name):
        return getattr(self._index, name)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_one_ask_reads_each_passage_and_its_evidence_once(seeded_dir, settings, embedder, mode):
    retrieval = settings.retrieval.model_copy(update={"mode": mode})
    local = settings.model_copy(update={"retrieval": retrieval})
    with Engine.open(seeded_dir, local, embedder=embedder) as engine:
        counting = _CountingIndex(engine._readable_index())
        engine._index = counting
        answer = engine.ask("Wie viel ist das neue Hilfspaket von Joe Biden wert?")
    assert answer.answerable and answer.passages
    assert counting.chunk_rows and counting.evidence_rows
    assert len(counting.chunk_rows) == len(set(counting.chunk_rows)), counting.chunk_rows
    assert len(counting.evidence_rows) == len(set(counting.evidence_rows)), counting.evidence_rows
    assert len(counting.text_rows) == len(set(counting.text_rows)), counting.text_rows
    if mode != "keyword":  # (keywords match few of the seeds: no more candidates than hits)
        # Candidates are read without their document; only the hits' rows are read whole.
        assert len(counting.chunk_rows) < len(counting.text_rows)
    # Every passage of the answer came with its evidence, read in the same search.
    assert all(h.evidence is not None for h in answer.passages)


@pytest.mark.slow
def test_citations_carry_the_documents_url(tmp_path, settings, embedder):
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        json.dumps(
            {
                "id": "seilbahn-1",
                "title": "Bielefeld baut eine Seilbahn",
                "date": "2024-03-04",
                "url": "https://example.org/bielefeld/seilbahn",
                "text": "Der Stadtrat von Bielefeld beschloss am Montag den Bau einer Seilbahn "
                "vom Hauptbahnhof zur Universität. Die Bahn soll 2027 fahren und 40 Millionen "
                "Euro kosten.",
            },
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    page = tmp_path / "torwart.html"
    page.write_text(
        "<html><head><title>Arminia verpflichtet Torwart</title>"
        '<link rel="canonical" href="https://example.org/sport/arminia-torwart">'
        '<meta property="article:published_time" content="2024-05-02"></head><body><article>'
        "<h1>Arminia verpflichtet Torwart</h1><p>Der Fußballverein Arminia Bielefeld hat den "
        "Torwart Jonas Keller vom SC Paderborn verpflichtet. Er unterschrieb einen Vertrag bis "
        "2026. Keller spielte zuvor acht Jahre in Paderborn und gilt als stark auf der Linie."
        "</p></article></body></html>",
        encoding="utf-8",
    )
    with Engine.open(tmp_path / "idx", settings, embedder=embedder) as engine:
        assert engine.add([feed, page]).added == 2
        cable = engine.ask("Wie viel soll die Seilbahn in Bielefeld kosten?")
        keeper = engine.ask("Von welchem Verein kommt der Torwart Jonas Keller?")
    assert cable.citations[0].url == "https://example.org/bielefeld/seilbahn"
    assert cable.to_json()["citations"][0]["url"] == "https://example.org/bielefeld/seilbahn"
    assert keeper.citations[0].url == "https://example.org/sport/arminia-torwart"


def test_a_document_over_the_size_limit_is_a_problem_and_the_rest_is_indexed(
    tmp_path, settings, fake_embedder
):
    chunking = settings.chunking.model_copy(update={"max_document_chars": 1_000})
    small = settings.model_copy(update={"chunking": chunking})
    with Engine.open(tmp_path / "idx", small, embedder=fake_embedder) as engine:
        report = engine.add_documents(
            [
                Document(doc_id="big", text="Wort " * 400, source="big.txt"),
                Document(doc_id="ok", text="Ein kurzer Text.", source="ok.txt"),
            ]
        )
    assert report.added == 1 and len(report.problems) == 1
    message = report.problems[0].message
    assert "2,000 characters" in message and "chunking.max_document_chars" in message
    assert "RAG_CHUNKING__MAX_DOCUMENT_CHARS" in message


class _GatedEmbedder:
    """The fake embedder, but embedding passages waits until the test opens the gate."""

    def __init__(self, inner) -> None:
        import threading

        self.inner, self.entered, self.gate = inner, threading.Event(), threading.Event()
        self.id, self.dim, self.prompts = inner.id, inner.dim, inner.prompts
        self.max_tokens, self.count_tokens = inner.max_tokens, inner.count_tokens
        self.embed_queries = inner.embed_queries

    def embed_passages(self, texts):
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.embed_passages(texts)


def test_searches_and_quote_answers_go_on_while_an_upload_embeds(tmp_path, settings, fake_embedder):
    """Reads never wait for writes: the upload embeds outside the Engine's lock, and readers
    see the last committed state until its short write."""
    import threading

    gated = _GatedEmbedder(fake_embedder)
    with Engine.open(tmp_path / "idx", settings, embedder=gated) as engine:
        gated.gate.set()
        engine.add_documents([Document(doc_id="alt", text="Die Seilbahn kostet viel.", source="a")])
        gated.gate.clear()
        gated.entered.clear()
        report: list = []
        upload = threading.Thread(
            target=lambda: report.append(
                engine.add_documents([Document(doc_id="neu", text="Ein neuer Text.", source="n")])
            )
        )
        upload.start()
        try:
            assert gated.entered.wait(10)  # the upload is embedding now, and stays there
            seen: dict = {}

            def read() -> None:
                seen["hits"] = engine.search("Seilbahn", k=5)
                seen["answer"] = engine.ask("Was kostet die Seilbahn?", mode="quote")
                seen["docs"] = [d["doc_id"] for d in engine.documents()]

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            reader.join(20)
            assert not reader.is_alive(), "a read waited for the upload's embedding"
            assert [h.doc_id for h in seen["hits"]] == ["alt"] and seen["answer"].passages
            assert seen["docs"] == ["alt"]  # the upload is not committed yet
        finally:
            gated.gate.set()
            upload.join(30)
        assert report and report[0].added == 1
        assert sorted(d["doc_id"] for d in engine.documents()) == ["alt", "neu"]


def test_an_engine_closed_while_embedding_writes_nothing_and_says_so(
    tmp_path, settings, fake_embedder
):
    import threading

    gated = _GatedEmbedder(fake_embedder)
    engine = Engine.open(tmp_path / "idx", settings, embedder=gated)
    gated.gate.set()
    engine.add_documents([Document(doc_id="alt", text="Ein Text.", source="a")])
    gated.gate.clear()
    gated.entered.clear()
    errors: list = []

    def upload():
        try:
            engine.add_documents([Document(doc_id="neu", text="Noch ein Text.", source="n")])
        except RagError as exc:
            errors.append(exc)

    worker = threading.Thread(target=upload)
    worker.start()
    assert gated.entered.wait(10)
    engine.close()
    gated.gate.set()
    worker.join(30)
    assert errors and "closed while documents were being embedded" in str(errors[0])
    with Engine.open(tmp_path / "idx", settings, embedder=fake_embedder) as again:
        assert [d["doc_id"] for d in again.documents()] == ["alt"]


def test_an_undated_article_gets_the_date_its_text_shows_marked_inferred(
    tmp_path, settings, fake_embedder
):
    dated_by_text = Document(
        doc_id="stand",
        text="Stand: 12.03.2024\nDie Stadt Minden baut eine neue Brücke über die Weser.",
        source="stand.txt",
    )
    with_metadata = Document(
        doc_id="meta",
        text="Stand: 12.03.2024\nIn Porta Westfalica eröffnet ein Fährhafen an der Weser.",
        source="meta.txt",
        date="2024-05",
    )
    with Engine.open(tmp_path / "idx", settings, embedder=fake_embedder) as engine:
        engine.add_documents([dated_by_text, with_metadata])
        hits = {h.doc_id: h for h in engine.search("Weser", k=5, mode="keyword")}
    assert (hits["stand"].date, hits["stand"].date_source) == ("2024-03-12", "inferred")
    assert hits["stand"].to_json()["date_source"] == "inferred"
    assert (hits["meta"].date, hits["meta"].date_source) == ("2024-05", None)  # never overridden
    # Wherever the date is shown, it says it was inferred.
    from rag.answer.pipeline import _citation, _quote_line

    line = _quote_line("Die Stadt Minden baut eine Brücke.", 1, hits["stand"], "de")
    assert line.endswith("[1] (2024-03-12, Datum aus dem Text erschlossen)")
    assert _quote_line("Satz.", 2, hits["meta"], "en").endswith("[2] (2024-05)")
    cite = _citation(1, hits["stand"], hits["stand"].start, hits["stand"].end)
    assert cite.to_json()["date_source"] == "inferred"
    from ui import render

    assert "2024-03-12 (inferred)" in render._citation_card(cite)
