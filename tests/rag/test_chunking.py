"""Sentence splitting (German/English rules) and packing into token-bounded passages."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from langchain_text_splitters import TextSplitter

from rag.chunking import SentenceTextSplitter, chunk_text, count_words, split_sentences
from rag.errors import ConfigError
from rag.ingest import read_file

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def sentences(text: str, language: str | None = None) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text, language)]


# --- sentence splitting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "Das gilt z. B. für Berlin und u. a. für Hamburg.",
        "Das gilt z.B. für Berlin und u.a. für Hamburg.",
        "Dr. Müller und Prof. Schmidt sprachen bzw. stritten ca. zwei Stunden.",
        "Er wohnt in der Hauptstr. Nr. 5 in St. Gallen.",
        "Am 01. Juni kam er an.",
        "Er kam am 3. Oktober 2023 zurück.",
        "Der 2. Weltkrieg endete, Ludwig XIV. war da längst tot.",
        "Die Inflation stieg auf 3.5 Prozent.",
        "J. R. R. Tolkien schrieb den Herrn der Ringe.",
        "Mr. Smith read them, e.g. the Hobbit, i.e. a novel.",
        "Washington D.C. – Der Minister sprach.",
        "Siehe https://www.example.com/a.b.html für Details.",
        "Das war ... gut.",
        "Er zitierte Art. 5 GG und Jones et al. 1998 im Wortlaut.",
    ],
)
def test_abbreviations_ordinals_numbers_and_urls_do_not_end_a_sentence(sentence: str) -> None:
    assert sentences(sentence) == [sentence]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Er sagte: „Das ist gut.“ Dann ging er.",
            ["Er sagte: „Das ist gut.“", "Dann ging er."],
        ),
        ('Sie sagte: "Nein." Dann kam sie.', ['Sie sagte: "Nein."', "Dann kam sie."]),
        ("Warte... Und dann? Niemand kam!", ["Warte...", "Und dann?", "Niemand kam!"]),
        (
            "Siehe https://example.com/a.html. Das war es.",
            ["Siehe https://example.com/a.html.", "Das war es."],
        ),
        ("Die Zahl stieg auf 25. Die Polizei kam.", ["Die Zahl stieg auf 25.", "Die Polizei kam."]),
        ("Das war 2022. Danach nicht mehr.", ["Das war 2022.", "Danach nicht mehr."]),
        ("It rose to 25. The police came.", ["It rose to 25.", "The police came."]),
        ("Äpfel, Birnen usw. Danach kam Obst.", ["Äpfel, Birnen usw.", "Danach kam Obst."]),
    ],
)
def test_real_sentence_ends_split(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_spans_are_exact_and_exclude_whitespace_between_sentences() -> None:
    text = "  Erster Satz.   Zweiter Satz!\n\nDritter Absatz ohne Punkt  "
    spans = split_sentences(text)
    assert spans == [(2, 14), (17, 30), (32, 57)]
    assert [text[s:e] for s, e in spans] == [
        "Erster Satz.",
        "Zweiter Satz!",
        "Dritter Absatz ohne Punkt",
    ]


def test_blank_lines_bullets_and_headings_end_sentences() -> None:
    text = "Titel ohne Punkt\n\nText hier\n- Punkt eins\n- Punkt zwei\n# Kapitel\nMehr Text."
    assert sentences(text) == [
        "Titel ohne Punkt",
        "Text hier",
        "- Punkt eins",
        "- Punkt zwei",
        "# Kapitel",
        "Mehr Text.",
    ]


def test_single_newline_inside_a_sentence_does_not_split_it() -> None:
    text = "Die Regierung hat am\nMontag beschlossen, dass es weitergeht. Gut."
    assert sentences(text) == [
        "Die Regierung hat am\nMontag beschlossen, dass es weitergeht.",
        "Gut.",
    ]


def test_english_turns_off_the_german_ordinal_rule() -> None:
    text = "I am 25. My brother is 30."  # German "am 25." would be a date
    assert sentences(text, "de") == [text]
    assert sentences(text, "en") == ["I am 25.", "My brother is 30."]


def test_every_word_of_every_seed_is_in_exactly_one_sentence() -> None:
    for path in sorted(SEEDS.glob("*.txt")):
        text = read_file(path, path.name).documents[0].text
        spans = split_sentences(text, "de")
        assert all(s < e for s, e in spans)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
        covered = "".join(text[s:e] for s, e in spans)
        assert "".join(covered.split()) == "".join(text.split())
        assert len(spans) > 5


# --- chunking -----------------------------------------------------------------------------------


def seed_documents():
    return [read_file(p, p.name).documents[0] for p in sorted(SEEDS.glob("*.txt"))]


@pytest.mark.parametrize("max_tokens", [40, 120, 200])
def test_every_passage_of_every_seed_is_an_exact_slice_within_the_limit(max_tokens: int) -> None:
    for doc in seed_documents():
        passages = chunk_text(doc.text, count_words, max_tokens=max_tokens, language="de")
        assert passages
        for p in passages:
            assert doc.text[p.start : p.end] == p.text
            assert len(p.text.split()) <= max_tokens
            assert p.page is None
        # Passages cover the document from its first to its last word, in order, skipping none.
        assert passages[0].start == 0 and passages[-1].end == len(doc.text)
        for a, b in itertools.pairwise(passages):
            assert a.start < b.start
            assert doc.text[a.end : b.start].strip() == ""


def test_last_sentence_of_a_passage_opens_the_next() -> None:
    words = ["eins", "zwei", "drei", "vier", "fünf"]
    text = " ".join(f"Satz {word} hat vier Wörter." for word in words)
    passages = chunk_text(text, count_words, max_tokens=10, overlap_sentences=1)
    assert [p.text for p in passages] == [
        "Satz eins hat vier Wörter. Satz zwei hat vier Wörter.",
        "Satz zwei hat vier Wörter. Satz drei hat vier Wörter.",
        "Satz drei hat vier Wörter. Satz vier hat vier Wörter.",
        "Satz vier hat vier Wörter. Satz fünf hat vier Wörter.",
    ]


def test_no_overlap_when_asked_for_none() -> None:
    text = " ".join(f"Satz {word} hat vier Wörter." for word in "eins zwei drei vier".split())
    passages = chunk_text(text, count_words, max_tokens=10, overlap_sentences=0)
    assert [p.text for p in passages] == [
        "Satz eins hat vier Wörter. Satz zwei hat vier Wörter.",
        "Satz drei hat vier Wörter. Satz vier hat vier Wörter.",
    ]


def test_overlap_is_dropped_when_it_would_exceed_max_tokens() -> None:
    text = "Eins zwei drei vier fünf sechs. Sieben acht neun zehn elf zwölf. Kurz."
    passages = chunk_text(text, count_words, max_tokens=8, overlap_sentences=1)
    assert [p.text for p in passages] == [
        "Eins zwei drei vier fünf sechs.",
        "Sieben acht neun zehn elf zwölf. Kurz.",
    ]


def test_a_sentence_longer_than_max_tokens_is_split_between_words() -> None:
    words = [f"wort{i}" for i in range(25)]
    text = " ".join(words) + ". Kurz."
    passages = chunk_text(text, count_words, max_tokens=10, overlap_sentences=1)
    assert [p.text for p in passages] == [
        " ".join(words[:10]),
        " ".join(words[10:20]),
        " ".join(words[20:]) + ". Kurz.",
    ]
    assert all(text[p.start : p.end] == p.text for p in passages)


def test_a_single_word_longer_than_max_tokens_is_cut_to_fit() -> None:
    def count_chars(texts: list[str]) -> list[int]:
        return [len(t) for t in texts]

    text = "Link: " + "x" * 50 + " Ende."
    passages = chunk_text(text, count_chars, max_tokens=16, overlap_sentences=0)
    assert all(len(p.text) <= 16 for p in passages)
    assert "".join(p.text for p in passages).replace(" ", "") == text.replace(" ", "")


def test_a_paragraph_break_is_preferred_over_filling_the_passage() -> None:
    text = "A a a a. B b b b.\n\nC c c c. D d d d. E e e e."
    passages = chunk_text(text, count_words, max_tokens=12, overlap_sentences=0)
    assert [p.text for p in passages] == ["A a a a. B b b b.", "C c c c. D d d d. E e e e."]


def test_passage_page_is_the_page_where_it_starts() -> None:
    page1, page2 = "Erste Seite hat Text. Noch mehr Text hier.", "Zweite Seite beginnt. Ende."
    text = page1 + "\n\n" + page2
    pages = ((1, 0, len(page1)), (2, len(page1) + 2, len(text)))
    passages = chunk_text(text, count_words, max_tokens=5, overlap_sentences=0, pages=pages)
    assert [(p.text, p.page) for p in passages] == [
        ("Erste Seite hat Text.", 1),
        ("Noch mehr Text hier.", 1),
        ("Zweite Seite beginnt. Ende.", 2),
    ]


def test_count_tokens_is_called_in_batches() -> None:
    calls: list[int] = []

    def counting(texts: list[str]) -> list[int]:
        calls.append(len(texts))
        return count_words(texts)

    doc = seed_documents()[0]
    passages = chunk_text(doc.text, counting, max_tokens=60)
    assert len(calls) == 2  # all sentences at once, then all passages to verify
    assert calls[1] == len(passages)


def test_special_tokens_of_a_tokenizer_are_counted_once_per_passage() -> None:
    def with_cls_sep(texts: list[str]) -> list[int]:
        return [len(t.split()) + 2 for t in texts]

    text = " ".join(f"Satz {word} hat vier Wörter." for word in "eins zwei drei vier".split())
    # Two sentences: 5 + 5 words + [CLS] + [SEP] = 12, not (5 + 2) + (5 + 2) = 14.
    passages = chunk_text(text, with_cls_sep, max_tokens=12, overlap_sentences=0)
    assert [p.text for p in passages] == [
        "Satz eins hat vier Wörter. Satz zwei hat vier Wörter.",
        "Satz drei hat vier Wörter. Satz vier hat vier Wörter.",
    ]


def test_a_counter_that_is_not_additive_still_gets_passages_within_the_limit() -> None:
    def joined_costs_more(texts: list[str]) -> list[int]:
        # Pretends every sentence end inside a passage costs one extra token.
        return [len(t.split()) + t.count(". ") for t in texts]

    text = " ".join(f"Satz {n} ist hier." for n in range(30))
    passages = chunk_text(text, joined_costs_more, max_tokens=20, overlap_sentences=1)
    assert all(n <= 20 for n in joined_costs_more([p.text for p in passages]))
    assert all(text[p.start : p.end] == p.text for p in passages)


def test_empty_text_gives_no_passages() -> None:
    assert chunk_text("  \n\n ", count_words) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tokens": 0}, "max_tokens must be at least 1"),
        ({"overlap_sentences": -1}, "0 or more"),
    ],
)
def test_invalid_arguments_say_what_to_use(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        chunk_text("Ein Satz.", count_words, **kwargs)


def test_a_counter_returning_the_wrong_number_of_counts_is_reported() -> None:
    with pytest.raises(ConfigError, match="one count per text"):
        chunk_text("Ein Satz. Noch einer.", lambda texts: [1])


# --- LangChain adapter --------------------------------------------------------------------------


def test_langchain_splitter_returns_the_passage_texts() -> None:
    doc = seed_documents()[0]
    splitter = SentenceTextSplitter(max_tokens=60, overlap_sentences=1, language="de")
    assert isinstance(splitter, TextSplitter)
    expected = chunk_text(doc.text, count_words, max_tokens=60, language="de")
    assert splitter.split_text(doc.text) == [p.text for p in expected]


def test_langchain_documents_carry_exact_start_indexes() -> None:
    from langchain_core.documents import Document as LangChainDocument

    doc = seed_documents()[1]
    splitter = SentenceTextSplitter(max_tokens=50, add_start_index=True)
    chunks = splitter.split_documents([LangChainDocument(doc.text, metadata={"source": "x"})])
    assert len(chunks) > 1
    for chunk in chunks:
        start = chunk.metadata["start_index"]
        assert chunk.metadata["source"] == "x"
        assert doc.text[start : start + len(chunk.page_content)] == chunk.page_content


def test_an_overlong_one_line_sentence_is_split_a_window_at_a_time():
    """A one-line text of 30,000 words is one "sentence": it is cut between words into pieces
    within the budget, counting words a window at a time (not all at once)."""
    from rag.chunking import _WORD_WINDOW

    calls: list[int] = []

    def count(texts):
        calls.append(len(texts))
        return [len(t.split()) + 2 for t in texts]

    text = " ".join(f"wort{i}" for i in range(30_000))
    passages = chunk_text(text, count, max_tokens=200, overlap_sentences=0, language="de")
    assert max(calls) <= max(_WORD_WINDOW, len(passages) + 1)
    assert all(len(p.text.split()) <= 198 for p in passages)
    assert " ".join(p.text for p in passages).split() == text.split()
