"""Reader answers: the model's phrase is grounded in the sources or not shown; the answer quotes
the sentence holding it verbatim. Plumbing with a canned model; behaviour with the packaged one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from rag.answer.answerability import p_answers
from rag.answer.quote import ScoredSentence
from rag.answer.reader import (
    CopySpan,
    Excerpt,
    Grounding,
    Reading,
    Signals,
    complete,
    excerpts,
    ground,
    is_amount,
    may_name,
    names_time,
    parse_phrase,
)
from rag.engine import Engine
from rag.retrieval.analysis import Analyzer
from rag.settings import load_settings
from rag.types import Hit

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"

SENTENCES = [
    "Der Stadtrat beschloss am Montag den Bau einer Seilbahn.",
    "Die Bahn soll 2027 fahren und 49,65 Millionen Euro kosten.",
    "Als Option wird die Schaffung einer entmilitarisierten Zone diskutiert.",
]
TEXT = " ".join(SENTENCES)


def _hit(text: str = TEXT, start: int = 100) -> Hit:
    return Hit(
        1, 1.0, "c", "d", "s.txt", "T", "2024-03", text, start, start + len(text), language="de"
    )


def _spans(start: int = 100) -> tuple[tuple[int, int], ...]:
    out, pos = [], start
    for s in SENTENCES:
        out.append((pos, pos + len(s)))
        pos += len(s) + 1
    return tuple(out)


def _excerpt() -> list[Excerpt]:
    return [Excerpt(0, _spans(), TEXT)]


# --- plumbing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "phrase"),
    [
        ("NONE", None),
        ("None.", None),
        ("  „49,65 Millionen Euro“.\n(aus [1])", "49,65 Millionen Euro"),
        ("Answer: 2027", "2027"),
        ("", None),
    ],
)
def test_the_phrase_is_read_from_the_reply(reply, phrase):
    assert parse_phrase(reply) == phrase


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("49.65 Millionen Euro", "49,65 Millionen Euro"),  # a number normalised, not invented
        ("2027", "2027"),
        ("bau einer seilbahn", "Bau einer Seilbahn"),
    ],
)
def test_a_phrase_is_grounded_verbatim_and_shown_in_the_sources_words(phrase, expected):
    hit = _hit()
    found = ground(phrase, _excerpt(), [hit])
    assert found is not None
    assert hit.text[found.phrase[0] - hit.start : found.phrase[1] - hit.start] == expected
    start, end = found.sentence
    assert hit.text[start - hit.start : end - hit.start] in SENTENCES


def test_an_inflected_phrase_is_grounded_through_its_terms_only_with_the_analyzer():
    hit = _hit()
    assert ground("Entmilitarisierte Zone", _excerpt(), [hit]) is None
    found = ground("Entmilitarisierte Zone", _excerpt(), [hit], Analyzer())
    assert found is not None
    shown = hit.text[found.phrase[0] - hit.start : found.phrase[1] - hit.start]
    assert shown == "entmilitarisierten Zone"


@pytest.mark.parametrize("phrase", ["Paris", "49,66 Millionen Euro", "2028", "Millionen Dollar"])
def test_a_phrase_the_sources_do_not_hold_is_not_grounded(phrase):
    assert ground(phrase, _excerpt(), [_hit()], Analyzer()) is None


@pytest.mark.parametrize(
    ("text", "phrase", "when", "expected"),
    [
        ("Die Bahn soll 49,65 Millionen Euro kosten.", "49,65", False, "49,65 Millionen Euro"),
        ("Der Ölpreis fiel auf 72 US-Dollar.", "72", False, "72 US-Dollar"),
        ("Sie hat rund 3 Millionen Artikel.", "3", True, "3 Millionen"),
        ("Die Columbia stürzte am 1. Februar 2003 ab.", "2003", True, "1. Februar 2003"),
        ("Die Columbia stürzte am 1. Februar 2003 ab.", "2003", False, "2003"),
        ("Der Euro stieg um 25 Prozent.", "Euro", False, "Euro"),
        ("Sie kostete 1,24 Milliarden Euro.", "24 Milliarden Euro", False, "1,24 Milliarden Euro"),
        ("Es kamen 12.500 Menschen.", "500", False, "12.500"),
        ("Es kamen 12.500 Menschen.", "12", False, "12.500"),
        ("Am 1.5. kamen 3.000.000 Besucher.", "000", False, "3.000.000"),
        ("Sie gewann 2003. Danach nicht mehr.", "2003", False, "2003"),
    ],
)
def test_a_phrase_is_completed_with_its_unit_and_asked_when_its_whole_date(
    text, phrase, when, expected
):
    """The model stops early ("3" of "3 Millionen"): its answer takes the words beside it that
    are part of it, from the same sentence, so it stays a quote."""
    hit = _hit(text)
    at = 100 + text.index(phrase)
    found = complete(Grounding(0, (100, 100 + len(text)), (at, at + len(phrase))), hit, when=when)
    assert text[found.phrase[0] - 100 : found.phrase[1] - 100] == expected
    assert found.sentence == (100, 100 + len(text))


@pytest.mark.parametrize(
    ("phrase", "amount"),
    [
        ("1,24 Milliarden Euro", True),
        ("25 Prozent", True),
        ("96 US-Dollar", True),
        ("3 %", True),
        ("1. Februar 2003", False),
        ("vor 66 Millionen Jahren", False),
        ("Euro", False),
        ("1849", False),
    ],
)
def test_a_sum_is_never_the_answer_to_when(phrase, amount):
    assert is_amount(phrase) is amount


@pytest.mark.parametrize(
    ("phrase", "says_when"),
    [
        ("1. Februar 2003", True),
        ("Juli 2004", True),
        ("1849", True),
        ("letzten Sonntag", True),
        ("heute", True),
        ("vor dem Ersten Weltkrieg", True),
        ("Mitte des 18. Jahrhunderts", True),
        ("vor 66 Millionen Jahren", True),
        ("15", False),  # of "den 15. deutschen Bundestag"
        ("Argentinien", False),
        ("die Einsturzursache der Eissporthalle ans Tageslicht", False),  # not "Tag"
    ],
)
def test_a_when_answer_says_when(phrase, says_when):
    assert names_time(phrase) is says_when


def test_a_who_answer_in_german_text_has_a_capital():
    assert may_name("Welternährungsprogramm der Vereinten Nationen", "de")
    assert may_name("die Pittsburgh Steelers", "de")
    assert not may_name("norwegische", "de")
    assert may_name("their disciples", "en")  # English nouns are lower case


def test_excerpts_keep_reading_order_and_mark_gaps():
    hits = [_hit()]
    spans = _spans()
    scored = [
        ScoredSentence(0, *spans[2], SENTENCES[2], 2.0, 0.9, 0.5),
        ScoredSentence(0, *spans[0], SENTENCES[0], 1.5, 0.8, 0.2),
    ]
    (ex,) = excerpts(scored, hits, max_passages=3, sentences_per_passage=4)
    assert ex.spans == (spans[0], spans[2])
    assert ex.text == f"{SENTENCES[0]} … {SENTENCES[2]}"


def test_excerpts_fit_a_character_budget_best_sentences_first():
    hits = [_hit()]
    spans = _spans()
    scored = [
        ScoredSentence(0, *spans[i], SENTENCES[i], 3.0 - i, 0.9, 0.5) for i in range(len(spans))
    ]
    budget = len(SENTENCES[0]) + len(SENTENCES[1]) + 2
    (ex,) = excerpts(scored, hits, max_chars=budget)
    assert ex.spans == (spans[0], spans[1])
    (only,) = excerpts(scored, hits, max_chars=5)  # the best sentence, whatever its length
    assert only.spans == (spans[0],)


class CannedReader:
    """A stand-in model that always replies `reply` with the given P(NONE)."""

    id = "fake:reader"

    def __init__(
        self,
        reply: str,
        p_none: float | None = 0.0,
        p_phrase: float | None = None,
        instead: str | None = None,
    ) -> None:
        self.reply, self.p_none, self.p_phrase, self.instead = reply, p_none, p_phrase, instead
        self.calls: list[Sequence[tuple[str, str]]] = []

    def stream(self, messages: Sequence[tuple[str, str]]) -> Iterator[str]:
        yield self.reply

    def read_phrase(self, messages: Sequence[tuple[str, str]], none: str, copy=None) -> Reading:
        self.calls.append(messages)
        return Reading(self.reply, self.p_none, self.p_phrase, self.instead, self.p_phrase)


@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory, settings, embedder) -> Path:
    path = tmp_path_factory.mktemp("reader") / "idx"
    with Engine.open(path, settings, embedder=embedder) as engine:
        assert engine.add([SEEDS]).documents == 5
    return path


def _engine(path: Path, settings, embedder, generator) -> Engine:
    return Engine.open(path, settings, embedder=embedder, generator=generator)


def test_a_grounded_phrase_answers_with_the_sentence_quoted_and_the_phrase_marked(
    seeded_dir, settings, embedder
):
    model = CannedReader("Sergej Rjabkow")
    with _engine(seeded_dir, settings, embedder, model) as engine:
        answer = engine.ask("Wen trifft Wendy Sherman in Genf?", mode="reader")
        doc = engine._readable_index().document(answer.citations[0].doc_id)
    assert answer.answerable and answer.mode == "reader" and answer.model == "fake:reader"
    assert answer.phrase is not None and answer.phrase.text == "Sergej Rjabkow"
    assert doc["text"][answer.phrase.start : answer.phrase.end] == "Sergej Rjabkow"
    c = answer.citations[0]
    assert c.start <= answer.phrase.start < answer.phrase.end <= c.end
    assert doc["text"][c.start : c.end] == c.quote and "Rjabkow" in c.quote
    assert answer.text.startswith("Antwort: Sergej Rjabkow [1]")
    assert all(s.supported for s in answer.sentences)
    # The passages are data in the prompt, and the question is asked after them.
    (system, user) = model.calls[0]
    assert "quoted data" in system[1] and user[1].index("Question:") > user[1].index("[1]")


@pytest.mark.parametrize(
    ("reply", "p_none"),
    [("Paris", 0.0), ("NONE", 0.9), ("Sergej Rjabkow", 0.6)],
    ids=["not-in-sources", "none", "unsure"],
)
def test_an_ungrounded_or_unsure_phrase_is_refused_with_the_nearest_passages(
    seeded_dir, settings, embedder, reply, p_none
):
    with _engine(seeded_dir, settings, embedder, CannedReader(reply, p_none)) as engine:
        answer = engine.ask("Wen trifft Wendy Sherman in Genf?", mode="reader")
    assert not answer.answerable and answer.phrase is None and not answer.citations
    assert answer.text == "Die Quellen beantworten diese Frage nicht."
    assert answer.passages  # the nearest passages are still listed
    assert "Paris" not in answer.text


def _refusal(settings, **generation):
    return settings.model_copy(
        update={"generation": settings.generation.model_copy(update=generation)}
    )


def test_the_calibrated_decision_weighs_a_phrase_given_instead_of_none(
    seeded_dir, settings, embedder
):
    """The model said NONE; the phrase it gives with NONE barred is weighed, not dropped."""
    model = CannedReader("NONE", p_none=0.6, p_phrase=0.5, instead="Sergej Rjabkow")
    question = "Wen trifft Wendy Sherman in Genf?"
    shown = _refusal(settings, reader_refusal="calibrated", reader_answer_threshold=0.0)
    with _engine(seeded_dir, shown, embedder, model) as engine:
        answer = engine.ask(question, mode="reader")
    assert answer.answerable and answer.phrase.text == "Sergej Rjabkow"
    strict = _refusal(settings, reader_refusal="calibrated", reader_answer_threshold=1.0)
    with _engine(seeded_dir, strict, embedder, model) as engine:
        assert not engine.ask(question, mode="reader").answerable
    # The threshold rule refuses whatever the model gave after its NONE.
    rule = _refusal(settings, reader_refusal="thresholds")
    with _engine(seeded_dir, rule, embedder, model) as engine:
        assert not engine.ask(question, mode="reader").answerable


def test_without_the_models_probabilities_the_thresholds_decide(seeded_dir, settings, embedder):
    """An HTTP endpoint gives no probabilities: P(NONE) and the evidence threshold decide."""
    model = CannedReader("Sergej Rjabkow", p_none=None)
    strict = _refusal(settings, reader_refusal="calibrated", reader_answer_threshold=1.0)
    with _engine(seeded_dir, strict, embedder, model) as engine:
        assert engine.ask("Wen trifft Wendy Sherman in Genf?", mode="reader").answerable


def test_an_english_question_over_german_news_is_weighed_by_the_crosslingual_fit(
    seeded_dir, settings, embedder
):
    """The question's language is not the passage's: the cross-lingual fit and its own
    threshold decide (reader_answer_threshold is the same-language one)."""
    question = "Whom does Wendy Sherman meet in Geneva?"
    model = CannedReader("Sergej Rjabkow", p_phrase=0.5)
    shown = _refusal(
        settings, reader_answer_threshold=1.0, reader_answer_threshold_crosslingual=0.0
    )
    with _engine(seeded_dir, shown, embedder, model) as engine:
        answer = engine.ask(question, mode="reader")
    assert answer.answerable and answer.phrase.text == "Sergej Rjabkow", answer.text
    assert answer.text.startswith("Answer: Sergej Rjabkow [1]")
    strict = _refusal(
        settings, reader_answer_threshold=0.0, reader_answer_threshold_crosslingual=1.0
    )
    with _engine(seeded_dir, strict, embedder, model) as engine:
        assert not engine.ask(question, mode="reader").answerable


def test_the_asked_office_holders_name_is_answered_on_less_certainty(
    seeded_dir, settings, embedder
):
    """Asked who held an office at a time, a phrase that is the name its sentence gives after
    the office ("NATO-Generalsekretär Jens Stoltenberg") is shown at reader_form_threshold;
    another phrase of the same passage still needs reader_answer_threshold."""
    question = "Wer war im Juni 2023 NATO-Generalsekretär?"
    lenient = _refusal(settings, reader_answer_threshold=1.0, reader_form_threshold=0.0)
    named = CannedReader("Jens Stoltenberg", p_phrase=0.5)
    with _engine(seeded_dir, lenient, embedder, named) as engine:
        answer = engine.ask(question, mode="reader")
    assert answer.answerable and answer.phrase.text == "Jens Stoltenberg", answer.text
    assert answer.citations[0].date == "2023-06"
    other = CannedReader("Gegenoffensive", p_phrase=0.5)
    with _engine(seeded_dir, lenient, embedder, other) as engine:
        assert not engine.ask(question, mode="reader").answerable
    strict = _refusal(settings, reader_answer_threshold=1.0, reader_form_threshold=1.0)
    with _engine(seeded_dir, strict, embedder, named) as engine:
        assert not engine.ask(question, mode="reader").answerable


def test_a_sure_phrase_not_of_the_asked_form_gives_the_quote_answer(
    seeded_dir, settings, embedder
):
    """Asked "when", an amount of money; asked "who" over German text, a phrase without a
    capital (no name, no noun): not shown, however sure the model; the best sentences are
    quoted instead, as quote mode does. The same phrases answer questions of their form."""
    shown = _refusal(settings, reader_answer_threshold=0.0)
    sum_ = CannedReader("700 Millionen Dollar", p_phrase=0.9)
    adjective = CannedReader("stellvertretenden russischen", p_phrase=0.9)
    with _engine(seeded_dir, shown, embedder, sum_) as engine:
        when = engine.ask("Wann kündigte Biden das neue Hilfspaket an?", mode="reader")
        much = engine.ask("Wie viel ist das neue Hilfspaket von Biden wert?", mode="reader")
    with _engine(seeded_dir, shown, embedder, adjective) as engine:
        who = engine.ask("Wen trifft Wendy Sherman in Genf?", mode="reader")
        whom = engine.ask("Wer trifft Wendy Sherman in Genf?", mode="reader")
    assert when.phrase is None and when.mode == "quote" and not when.text.startswith("Antwort")
    assert much.answerable and much.phrase.text == "700 Millionen Dollar", much.text
    assert whom.phrase is None and whom.mode == "quote", whom.text
    assert who.phrase is not None  # "Wen" is not "Wer": no name is asked for by form


def test_a_question_naming_two_times_is_read_per_time(seeded_dir, settings, embedder):
    """Per asked time, the model reads a passage of that time; where its phrase is not there,
    that time's line quotes the best sentence instead. (Stoltenberg stands in every June 2023
    passage that names the office, and in no December 2024 article: which of them ranks first
    differs between int8 and fp32 vectors.)"""
    model = CannedReader("Stoltenberg", p_phrase=0.5)
    shown = _refusal(settings, reader_answer_threshold=0.0)
    with _engine(seeded_dir, shown, embedder, model) as engine:
        answer = engine.ask(
            "Wer war im Juni 2023 und im Dezember 2024 NATO-Generalsekretär?", mode="reader"
        )
    assert answer.mode == "reader" and answer.answerable, answer.text
    assert len(model.calls) == 2  # one reading per time
    june, december = answer.text.split("\nStand 2023-06: ")[1].split("\nStand 2024-12: ")
    assert june.startswith(f"{answer.phrase.text} – „") and june.endswith("[1]"), june
    assert answer.phrase.text.endswith("Stoltenberg") and answer.phrase.n == 1
    assert " – „" not in december and december.rstrip().endswith("[2]")  # a quote, no phrase
    assert [c.date for c in answer.citations] == ["2023-06", "2024-12"]
    assert "/004_" in answer.citations[1].source


def test_reader_mode_without_a_model_answers_in_quote_mode(seeded_dir, settings, embedder):
    with Engine.open(seeded_dir, settings, embedder=embedder) as engine:
        assert engine.answer_modes() == ["quote"]
        answer = engine.ask("Wen trifft Wendy Sherman in Genf?", mode="reader")
    assert answer.mode == "quote" and answer.answerable


# --- the packaged model, for real ----------------------------------------------------------------
@pytest.fixture(scope="module")
def packaged(seeded_dir, settings, embedder) -> Iterator[Engine]:
    from rag.answer import local_model

    generation = settings.generation.model_copy(update={"backend": "packaged"})
    if not generation.configured():
        reason = local_model.unavailable_reason(generation.model_cache_dir())
        pytest.skip(f"the packaged model is not here: {reason}")
    real = settings.model_copy(update={"generation": generation})
    with Engine.open(seeded_dir, real, embedder=embedder) as engine:
        yield engine


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "gold"),
    [
        ("Wen trifft Wendy Sherman in Genf?", "Rjabkow"),
        ("Welches Artilleriesystem liefern die USA an die Ukraine?", "HIMARS"),
    ],
)
def test_the_packaged_reader_finds_the_phrase_in_its_source(packaged, question, gold):
    answer = packaged.ask(question)
    assert answer.mode == "reader" and answer.model.startswith("packaged:")
    assert answer.answerable, answer.text
    assert gold in answer.phrase.text
    doc = packaged._readable_index().document(answer.citations[0].doc_id)
    assert doc["text"][answer.phrase.start : answer.phrase.end] == answer.phrase.text


@pytest.mark.slow
def test_the_packaged_reader_names_the_current_holder_and_the_earlier_one(packaged):
    """Seed 004 (Rutte, no date header) is dated 2024-12 from its text ("Nach fast drei
    Jahren Ukraine-Krieg"); the newest report leads, Stoltenberg's is shown as earlier."""
    answer = packaged.ask("Wer ist derzeit NATO-Generalsekretär?")
    assert answer.mode == "reader" and answer.answerable, answer.text
    assert "Rutte" in answer.phrase.text
    first, earlier = answer.citations
    assert "/004_" in first.source and first.date == "2024-12"
    assert "Stoltenberg" in earlier.quote and earlier.date < first.date
    assert answer.text.index("Rutte") < answer.text.index("Stoltenberg")


@pytest.mark.slow
def test_the_packaged_reader_refuses_what_the_seeds_do_not_say(packaged):
    answer = packaged.ask("Wie viele Tore schoss Bayern München in der Saison 2023?")
    assert not answer.answerable and answer.passages


@pytest.mark.slow
def test_the_copy_constraint_holds_the_model_to_the_source_words(packaged):
    """Asked to translate, the model writes English; held to the source, it can only copy."""
    generator = packaged._answerer.generator  # loaded by the questions above or here
    if generator is None:
        packaged.ask("Wen trifft Wendy Sherman in Genf?")
        generator = packaged._answerer.generator
    source = "Im Sommer 1521 weitete Luther seine Angriffe auf Doktrinen aus."
    messages = [("user", f"Translate into English and reply with the translation only: {source}")]
    free = generator.read_phrase(messages, "NONE")
    held = generator.read_phrase(messages, "NONE", copy=CopySpan([source], "Wann?"))
    assert "summer" in free.text.casefold()  # what the model does on its own
    assert held.text.strip() and " ".join(held.text.split()) in source
    assert 0.0 < held.p_phrase < 1.0


# --- the copy constraint -------------------------------------------------------------------------
def test_copy_span_extends_only_within_a_source_from_a_word_start():
    copy = CopySpan(["Einige in den 1970ern entwickelte Theorien", "die Botanik und Chemie"])
    assert copy.extends(b"", b"19") and copy.extends(b"", b" Die")  # first letter's case free
    assert copy.extends(b"Die", b" Botanik") and not copy.extends(b"Die", b" botanik")
    assert not copy.extends(b"", b"ntwickelte")  # not from a word start
    assert not copy.extends(b"", b"Summer") and not copy.extends(b"", b"  ")
    assert copy.extends(b"Einige in", b" den") and not copy.extends(b"in den", b"\n")


def test_copy_span_stops_only_at_a_word_end():
    copy = CopySpan(["Einige in den 1970ern entwickelte Theorien"])
    assert not copy.may_stop(b"1970er") and copy.may_stop(b"1970ern")
    assert copy.may_stop(b"Theorien") and not copy.may_stop(b"") and not copy.may_stop(b"Theo")


def test_a_phrase_of_question_terms_repeats_the_question():
    analyzer = Analyzer()
    question = "Wer war der Hauptfeind der Normannen im Byzantinischen Reich?"
    copy = CopySpan(["…"], question, lambda text: analyzer.document_terms(text, "de"))
    assert copy.repeats_question("Normannen") and copy.repeats_question("Byzantinische Reich")
    assert not copy.repeats_question("die Seldschuken") and not copy.repeats_question("")
    plain = CopySpan(["…"], "Wo liegt das Harvard Stadium?")
    assert plain.repeats_question("Harvard Stadium") and not plain.repeats_question("Allston")


# --- answerability ---------------------------------------------------------------------------
def _signals(**changes) -> Signals:
    strong = dict(
        phrase="1817",
        grounded=True,
        said_none=False,
        p_none=0.01,
        p_phrase=0.9,
        evidence=1.95,
        best=1.95,
        cosine=0.92,
        coverage=0.6,
        rank=0,
        passage=0,
        phrase_words=1,
        repeats_question=False,
    )
    return Signals(**{**strong, **changes})


def test_the_fitted_answerability_separates_a_sure_reading_from_a_doubtful_one():
    threshold = load_settings().generation.reader_answer_threshold
    sure = p_answers(_signals())
    doubtful = p_answers(
        _signals(said_none=True, p_none=0.7, p_phrase=0.01, evidence=1.55, cosine=0.76,
                 coverage=0.1, best=1.6, rank=6)
    )  # fmt: skip
    assert sure is not None and doubtful is not None
    assert doubtful < threshold <= sure
    # each signal moves it the way its meaning says
    assert p_answers(_signals(p_none=0.5)) < sure
    assert p_answers(_signals(evidence=1.7, best=1.7)) < sure  # the passages fit less
    assert p_answers(_signals(coverage=0.0)) < sure


def test_a_sure_crosslingual_reading_is_answered_by_its_own_fit():
    """An English question over a German sentence shares few terms with it and scores a lower
    cosine: the same-language fit would refuse a sure reading, the cross-lingual one does not,
    and it still refuses a doubtful one."""
    generation = load_settings().generation
    sure = _signals(p_none=0.15, p_phrase=0.6, evidence=1.7, best=1.7, cosine=0.8,
                    coverage=0.1, phrase_words=3)  # fmt: skip
    doubtful = _signals(said_none=True, p_none=0.7, p_phrase=0.05, evidence=1.55, best=1.62,
                        cosine=0.78, coverage=0.0, rank=3)  # fmt: skip
    assert p_answers(sure) < generation.reader_answer_threshold
    threshold = generation.reader_answer_threshold_crosslingual
    assert p_answers(sure, crosslingual=True) >= threshold
    assert p_answers(doubtful, crosslingual=True) < threshold


def test_without_probabilities_or_a_grounded_phrase_there_is_no_fitted_answer():
    assert p_answers(_signals(p_none=None)) is None
    assert p_answers(_signals(p_phrase=None)) is None
    assert p_answers(_signals(grounded=False)) is None
