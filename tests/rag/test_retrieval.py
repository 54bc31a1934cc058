"""Hybrid retrieval: German keyword analysis, fusion, reranking, duplicates and filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.engine import Engine, Filters
from rag.retrieval.analysis import Analyzer, compound_parts
from rag.retrieval.fusion import Candidate, collapse, rrf, shared_ranks
from rag.types import Document

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


# --------------------------------------------------------------------------- analysis
@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


def shared(analyzer: Analyzer, query: str, passage: str, language: str = "de") -> set[str]:
    return set(analyzer.query_terms(query)) & set(analyzer.document_terms(passage, language))


def test_compound_matches_its_parts(analyzer):
    assert compound_parts("Waffenlieferungen") == ("waffen", "lieferungen")
    assert compound_parts("Mehrfachraketenwerfer") == ("mehrfach", "raketen", "werfer")
    assert {"waff", "liefer"} <= shared(analyzer, "Waffenlieferungen", "die Lieferung von Waffen")
    assert {"waff", "liefer"} <= shared(analyzer, "Lieferung von Waffen", "neue Waffenlieferungen")


def test_names_and_ordinary_words_are_not_split():
    for word in ("Stoltenberg", "Präsident", "Russland", "Deutschland", "überzeugt"):
        assert compound_parts(word) == (), word


def test_umlaut_and_sharp_s_spellings_match(analyzer):
    assert shared(analyzer, "Aussenminister", "der Außenminister sagte")
    assert shared(analyzer, "Mueller", "Herr Müller")
    assert shared(analyzer, "Generalsekretaer", "NATO-Generalsekretär")


def test_inflections_match(analyzer):
    assert shared(analyzer, "Verhandlung", "die Verhandlungen begannen")
    assert shared(analyzer, "Häuser", "ein Haus")
    assert shared(analyzer, "negotiations", "negotiating", "en")  # English articles too


def test_stopwords_do_not_become_terms(analyzer):
    assert analyzer.query_terms("Was ist der die das und oder?") == []


# ----------------------------------------------------------------------------- fusion
def test_rrf_rewards_agreement_and_keeps_evidence():
    fused = rrf({"dense": [(1, 0.9), (2, 0.8)], "keyword": [(2, 12.0), (3, 5.0)]}, {}, k=60)
    assert [c.row_id for c in fused] == [2, 1, 3]
    assert fused[0].dense == 0.8 and fused[0].keyword == 12.0 and fused[0].keyword_rank == 1


def test_tied_scores_share_a_rank_so_storage_order_does_not_decide():
    assert shared_ranks([9.0, 7.0, 7.0, 5.0, 5.0, 5.0, 1.0]) == [1, 2, 2, 4, 4, 4, 7]
    assert shared_ranks([]) == []
    # rows 3 and 4 tie on keywords; the dense list prefers 4: listed either way, 4 is first
    for keyword in ([(3, 2.0), (4, 2.0)], [(4, 2.0), (3, 2.0)]):
        fused = rrf({"dense": [(9, 0.9), (4, 0.5)], "keyword": keyword}, {}, k=60)
        assert [c.row_id for c in fused] == [4, 9, 3] and fused[0].keyword_rank == 1


def test_equal_fused_scores_go_to_the_closer_meaning_not_the_row_id():
    # 5 is first in dense and second in keywords, 2 the other way round: equal fused scores
    fused = rrf({"dense": [(5, 0.9), (2, 0.7)], "keyword": [(2, 9.0), (5, 8.0)]}, {}, k=60)
    assert fused[0].score == fused[1].score and [c.row_id for c in fused] == [5, 2]


def test_collapse_merges_near_duplicates_only():
    story = (
        "Die NATO will ihre Ostflanke mit zusätzlichen Truppen stärken, sagte Generalsekretär "
        "Stoltenberg am Freitag in Brüssel. Das Bündnis sei auf jedes Szenario vorbereitet."
    )
    texts = {
        1: story,
        2: "Brüssel (dpa) - " + story.replace("am Freitag", "am Freitag vor Journalisten"),
        3: "Ein ganz anderer Text über Wetter und Sport in München.",
    }
    out = collapse([Candidate(1, 3.0), Candidate(2, 2.0), Candidate(3, 1.0)], texts, 0.6)
    assert [c.row_id for c in out] == [1, 3] and out[0].duplicates == (2,)


# ------------------------------------------------------------- through the real model
@pytest.fixture(scope="module")
def seed_engine(tmp_path_factory, settings, embedder):
    engine = Engine.open(tmp_path_factory.mktemp("hybrid") / "idx", settings, embedder=embedder)
    report = engine.add([str(SEEDS)])
    assert report.added == 5
    yield engine
    engine.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_every_mode_finds_the_passage(seed_engine, mode):
    hits = seed_engine.search("Wendy Sherman Rjabkow Genf", k=3, mode=mode, rerank=False)
    assert "Wendy Sherman" in hits[0].text


@pytest.mark.slow
def test_keyword_mode_finds_rare_names_and_numbers(seed_engine):
    hit = seed_engine.search("HIMARS", k=1, mode="keyword")[0]
    assert "HIMARS" in hit.text
    hit = seed_engine.search("Rjabkow", k=1, mode="keyword")[0]
    assert "Rjabkow" in hit.text


@pytest.mark.slow
def test_reranked_hybrid_answers_german_and_english(seed_engine):
    assert seed_engine.plan().stages() == ["dense", "keyword", "fusion", "rerank", "dedupe"]
    de = seed_engine.search("Was soll die Lieferung der Raketenwerfer laut Blinken stärken?", k=1)
    assert "Verhandlungsposition" in de[0].text
    en = seed_engine.search("Who meets the Russian deputy foreign minister in Geneva?", k=1)
    assert "Wendy Sherman" in en[0].text


@pytest.mark.slow
def test_date_range_returns_only_that_range_and_still_k_hits(seed_engine):
    docs = {d["doc_id"]: d["date"] for d in seed_engine.documents()}
    in_2022 = [d for d, date in docs.items() if date and date.startswith("2022")]
    assert len(in_2022) == 2
    hits = seed_engine.search(
        "NATO Verhandlungen", k=5, filters=Filters(date_from="2022-01", date_to="2022-12")
    )
    assert len(hits) == 5
    assert {h.doc_id for h in hits} <= set(in_2022)
    assert all(h.date.startswith("2022") for h in hits)
    later = seed_engine.search("NATO", k=3, filters=Filters(date_from="2023"))
    assert later and all(h.date >= "2023" for h in later)
    for mode in ("dense", "keyword"):
        hits = seed_engine.search("Stoltenberg", k=3, mode=mode, filters=Filters(date_to="2022-06"))
        assert hits and all(h.date == "2022-06" for h in hits)


@pytest.mark.slow
def test_source_filter(seed_engine):
    source = next(
        d["source"]
        for d in seed_engine.documents()
        if d["source"].endswith("003_8f400f1f19299dd9.txt")
    )
    hits = seed_engine.search("Verhandlungen", k=4, filters=Filters(sources=(source,)))
    assert len(hits) == 4 and {h.source for h in hits} == {source}


@pytest.mark.slow
def test_same_wire_story_in_two_outlets_is_one_hit(tmp_path, settings, embedder):
    story = (
        "Die NATO stärkt ihre Ostflanke mit zusätzlichen Truppen. Generalsekretär Jens Stoltenberg "
        "sagte am Freitag in Brüssel, das Bündnis sei auf jedes Szenario vorbereitet. Die Außenminister "
        "der Mitgliedstaaten hatten zuvor per Videokonferenz beraten."
    )
    docs = [
        Document("a", story, "outlet-a.txt", title="Agentur A", date="2022-01-07"),
        Document(
            "b", "Brüssel (dpa) – " + story, "outlet-b.txt", title="Zeitung B", date="2022-01-08"
        ),
        Document("c", "Der FC Bayern gewann das Spiel in München mit drei zu eins.", "sport.txt"),
    ]
    with Engine.open(tmp_path / "idx", settings, embedder=embedder) as engine:
        engine.add_documents(docs)
        hits = engine.search("Was sagte Stoltenberg zur Ostflanke?", k=3)
        assert [h.doc_id for h in hits][:1] in (["a"], ["b"])
        assert {h.doc_id for h in hits} == {hits[0].doc_id, "c"}
        assert [d.source for d in hits[0].duplicates] == [
            "outlet-b.txt" if hits[0].doc_id == "a" else "outlet-a.txt"
        ]
        assert hits[0].to_json()["duplicates"][0]["title"] in ("Agentur A", "Zeitung B")
        plain = engine.search(
            "Was sagte Stoltenberg zur Ostflanke?", k=3, mode="hybrid", rerank=True
        )
        assert len(plain) == 2  # only two distinct stories exist
        undeduped = engine.search_batch(["Stoltenberg Ostflanke"], k=3, dedupe=False)[0]
        assert {h.doc_id for h in undeduped} == {"a", "b", "c"}


@pytest.mark.slow
def test_cross_encoder_from_disk_is_used(tmp_path, settings, embedder):
    """Plumbing only: a CrossEncoder with an untrained head, saved to disk, reranks."""
    from sentence_transformers import CrossEncoder

    from rag.embedders.sentence_transformers import default_model_dir

    ce_dir = tmp_path / "ce"
    CrossEncoder(
        str(default_model_dir(settings.embedding.cache_dir)), num_labels=1, device="cpu"
    ).save(str(ce_dir))
    ce_settings = settings.model_copy(
        update={"retrieval": settings.retrieval.model_copy(update={"cross_encoder": str(ce_dir)})}
    )
    with Engine.open(tmp_path / "idx", ce_settings, embedder=embedder) as engine:
        engine.add([str(SEEDS)])
        hits = engine.search("Stoltenberg", k=3)
        assert len(hits) == 3
        assert engine._retrieval().reranker().id == f"cross-encoder:{ce_dir}"


def test_cross_encoder_path_that_is_not_a_directory_is_a_clear_error(tmp_path, settings):
    from rag.errors import ConfigError
    from rag.retrieval.rerank import create_reranker

    bad = settings.retrieval.model_copy(update={"cross_encoder": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="is not a directory"):
        create_reranker(bad)


def test_sentence_evidence_reranker_prefers_the_best_sentence_and_optional_keyword_bonus():
    import numpy as np

    from index import PassageEvidence
    from rag.retrieval.rerank import SentenceEvidenceReranker

    q = np.array([1.0, 0.0], dtype=np.float32)
    unit = lambda a: np.array([np.cos(a), np.sin(a)], dtype=np.float32)  # noqa: E731
    evidence = {
        # passage 1: closer as a whole, but no sentence answers
        1: PassageEvidence(1, unit(0.5), ((0, 5), (6, 9)), np.stack([unit(0.6), unit(0.7)])),
        # passage 2: further as a whole, one sentence matches the question closely
        2: PassageEvidence(2, unit(0.7), ((0, 5), (6, 9)), np.stack([unit(1.2), unit(0.05)])),
    }
    cands = [Candidate(1, 0.0, keyword_rank=1), Candidate(2, 0.0, keyword_rank=40)]
    assert [c.row_id for c in SentenceEvidenceReranker().rerank("", q, cands, evidence, {})] == [2, 1]
    strong_keyword = SentenceEvidenceReranker(keyword_weight=1.0)
    assert [c.row_id for c in strong_keyword.rerank("", q, cands, evidence, {})] == [1, 2]


def test_langchain_retriever_returns_passages_with_citation_metadata(tmp_path, settings, embedder):
    from rag.engine import Engine, Filters
    from rag.retrieval.langchain import EngineRetriever

    with Engine.open(tmp_path / "idx", settings, embedder=embedder) as engine:
        engine.add([Path(__file__).resolve().parents[2] / "seeds"])
        retriever = EngineRetriever(engine=engine, k=3)
        docs = retriever.invoke("Wen trifft Wendy Sherman in Genf?")
        dated = EngineRetriever(engine=engine, k=3, filters=Filters(date_from="2023"))
        later = dated.invoke("Was sagte Stoltenberg?")

    assert len(docs) == 3 and "Rjabkow" in docs[0].page_content
    meta = docs[0].metadata
    assert {"chunk_id", "doc_id", "source", "title", "date", "start", "end", "score"} <= set(meta)
    assert meta["end"] - meta["start"] == len(docs[0].page_content)
    assert later and all(d.metadata["date"] >= "2023" for d in later)
