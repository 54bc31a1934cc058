"""Answering, whole: question -> language and standalone question -> retrieval -> a
quote-exact or written answer -> support check -> `Answer`.

`Answerer.stream` yields `AnswerDelta`s while the answer is produced and ends with the `Answer`.
The Engine keeps one Answerer; the configured language model is loaded on the first question
that needs it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from index import PassageEvidence
from rag.answer import answerability, prompts, reader, timing
from rag.answer.citations import parse_answer, recite
from rag.answer.quote import QuoteWeights, ScoredSentence, score_sentences, select_sentences
from rag.answer.support import SourceFacts, collapse_ws, fact_problems
from rag.answer.types import Answer, AnswerDelta, AnswerSentence, Citation, Phrase, Turn
from rag.errors import ConfigError
from rag.ingest.language import identifier
from rag.retrieval.when import TimeReading, TimeSpan, date_bounds, read_time
from rag.types import Filters, Hit
from rag.vocabulary import ANSWER_MODES, AnswerMode

if TYPE_CHECKING:
    from rag.answer.generators import Generator
    from rag.embedders import Embedder
    from rag.retrieval.analysis import Analyzer
    from rag.retrieval.pipeline import Retriever
    from rag.settings import GenerationSettings


log = logging.getLogger(__name__)

# "was" is English too ("What was ..."); these cue words are not.
_GERMAN_HINTS = re.compile(
    r"[äöüß]|\b(wer|wie|wann|welche[rsnm]?|warum|wieso|weshalb|wieviele?)\b", re.IGNORECASE
)


def _german_or_english(text: str) -> str:
    language, _ = identifier(("de", "en")).classify(text)
    return "en" if language == "en" else "de"


def _passage_language(hit: Hit) -> str:
    """The language of a hit's passage ("de" or "en"): stored at ingest, else detected."""
    if hit.language in ("de", "en"):
        return hit.language
    return _german_or_english(hit.text[:1000])


def question_language(text: str) -> str:
    """'de' or 'en': the language an answer is written in."""
    if _GERMAN_HINTS.search(text):
        return "de"
    return _german_or_english(text)


# --------------------------------------------------------------------------- follow-ups
_REFERENCES = {
    "de": set(
        "er sie es ihm ihn ihr ihnen sein seine seiner seinen ihre ihrer ihren dies diese "
        "dieser dieses diesem diesen dort damals dazu davon darüber daran dabei deren dessen "
        "dieselbe derselbe dasselbe".split()
    ),
    "en": set(
        "he she it they him her them his its their this that these those there then such".split()
    ),
}
_CONTINUATIONS = re.compile(
    r"^\s*(und|aber|auch|sowie|and|but|also|what about|how about|was ist mit|wie steht es|"
    r"und was|und wie|und wer|und wann)\b",
    re.I,
)
_QUESTION_WORDS = set(
    "wer wie was wann wo warum wieso weshalb welche welcher welches welchen welchem wieviel "
    "wie viele who what when where why which how many much does did do is are was were".split()
)


def is_followup(question: str, language: str) -> bool:
    words = re.findall(r"\w+", question.lower())
    content = [w for w in words if w not in _QUESTION_WORDS and len(w) > 2]
    return (
        bool(_CONTINUATIONS.match(question))
        or any(w in _REFERENCES[language] for w in words)
        or len(content) <= 2
    )


def carry_subject(question: str, history: Sequence[Turn], language: str) -> str:
    """Without a language model: add the previous question's subject words to a follow-up."""
    if not history or not is_followup(question, language):
        return question
    previous = history[-1].question
    own = {w.lower() for w in re.findall(r"\w+", question)}
    stop = _REFERENCES["de"] | _REFERENCES["en"] | _QUESTION_WORDS
    words = [
        w
        for w in re.findall(r"[^\W\d_][\w\-]+|\d+", previous)
        if w.lower() not in own and w.lower() not in stop and (w[0].isupper() or w.isdigit())
    ]
    subject = " ".join(dict.fromkeys(words))
    return f"{question.strip()} ({subject})" if subject else question


def _usable_rewrite(line: str, question: str) -> bool:
    """Whether a model's rewrite of `question` can replace it. Weak models echo the prompt
    ("Conversation:"), return the question unchanged or drift off it; then the subject of the
    previous question is carried over instead."""
    if not 3 <= len(line) <= 4 * len(question) + 200 or prompts.CANNOT_ANSWER in line:
        return False
    if line.endswith(":") or line == question.strip():
        return False
    own = {w for w in re.findall(r"\w+", question.lower()) if len(w) > 3} - _QUESTION_WORDS
    return not own or bool(own & set(re.findall(r"\w+", line.lower())))


# --------------------------------------------------------------------------- answering
def final_answer(stream: Iterator[AnswerDelta | Answer]) -> Answer:
    """The `Answer` at the end of an answer stream (the deltas before it are dropped)."""
    for event in stream:
        if isinstance(event, Answer):
            return event
    raise AssertionError("the answer stream ended without an answer")  # pragma: no cover


@dataclass
class Context:
    """What one question retrieved: the hits, each with its stored evidence."""

    question: str
    standalone: str
    language: str
    hits: list[Hit]
    query_vector: np.ndarray
    retrieval: dict[str, Any]
    reading: TimeReading = TimeReading()
    """What the question says about time (anchors, "latest"): see `rag.answer.timing`."""
    topic: str = ""
    """The question without its time words, when they were taken out for searching and
    scoring (`query_vector` is then its vector); empty otherwise."""

    @property
    def scored_question(self) -> str:
        """The text sentences are scored against: the topic, else the standalone question."""
        return self.topic or self.standalone

    @property
    def evidence(self) -> dict[int, PassageEvidence]:
        """Row id -> evidence of the hits that carry it."""
        return {h.row_id: h.evidence for h in self.hits if h.evidence is not None}

    def answer(
        self,
        text: str,
        mode: str,
        sentences: Sequence[AnswerSentence] = (),
        citations: Sequence[Citation] = (),
        *,
        model: str | None = None,
        evidence: float | None = None,
        phrase: Phrase | None = None,
    ) -> Answer:
        """The `Answer` to this question; answerable when it has sentences."""
        return Answer(
            question=self.question,
            text=text,
            answerable=bool(sentences),
            mode=mode,
            sentences=tuple(sentences),
            citations=tuple(citations),
            passages=tuple(self.hits),
            model=model,
            language=self.language,
            standalone_question=self.standalone if self.standalone != self.question else None,
            retrieval=self.retrieval,
            evidence=evidence,
            phrase=phrase,
        )


_QUOTE_INSTEAD_SAID = False


def _after(filters: Filters | None, day: str) -> Filters | None:
    """`filters` narrowed to the days after `day` (None when they end before)."""
    first = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    base = filters or Filters()
    if base.date_from and date_bounds(base.date_from)[0] > first:
        first = date_bounds(base.date_from)[0]
    if base.date_to and date_bounds(base.date_to)[1] < first:
        return None
    return replace(base, date_from=first)


def _answer_form(ctx: Context) -> Callable[[str], bool] | None:
    """For a question about a time: what an answering sentence holds (an amount, an office
    holder's name), to prefer such sentences among those that answer alike; None otherwise."""
    if not ctx.reading.active():
        return None
    if timing.asks_amount(ctx.scored_question):
        return timing.states_amount
    return timing.holder_of(ctx.scored_question)


def _of_the_asked_form(ctx: Context, phrase: str, passage_language: str) -> bool:
    """Whether a phrase can be the answer its question's form asks for: asked "when", it says
    when and is no sum ("15" of "den 15. deutschen Bundestag", "1,24 Milliarden Euro" are
    not); asked "who" over German text, it has a capitalised word, a name or a noun
    ("norwegische" for the year's Nobel Peace Prize laureate is not)."""
    if ctx.reading.asks_when and (reader.is_amount(phrase) or not reader.names_time(phrase)):
        return False
    return not timing.asks_who(ctx.standalone) or reader.may_name(phrase, passage_language)


def _names_the_holder(ctx: Context, found: reader.Grounding) -> bool:
    """Asked who held an office at a time: the phrase is the name its sentence gives after
    that office ("Finanzminister Peer Steinbrück"), or the one it says was made it."""
    holders = timing.holder_spans(ctx.scored_question) if ctx.reading.active() else None
    if holders is None:
        return False
    start = found.sentence[0]
    a, b = found.phrase[0] - start, found.phrase[1] - start
    return any(s <= a and b <= e for s, e in holders(_at(ctx.hits[found.hit], found.sentence)))


def _say_once_quote_instead() -> None:
    """The reader mode without a language model: say once how to add one, then quote."""
    global _QUOTE_INSTEAD_SAID
    if not _QUOTE_INSTEAD_SAID:
        _QUOTE_INSTEAD_SAID = True
        log.warning(
            "reader answers need a language model and none is available: answering in quote "
            "mode. Install the packaged one (pip install -e . with the README's CMAKE_ARGS) "
            "or set generation.backend; `rag models info` says what is missing."
        )


class Answerer:
    """Answers questions from what `retriever` finds: reader, quote or generate mode."""

    def __init__(
        self,
        settings: GenerationSettings,
        embedder: Embedder,
        analyzer: Analyzer,
        generator: Generator | None = None,
        weights: QuoteWeights | None = None,
        *,
        retriever: Retriever | None = None,
    ) -> None:
        self.settings, self.embedder, self.analyzer = settings, embedder, analyzer
        self.generator = generator
        self.weights = weights or QuoteWeights()
        self.retriever = retriever
        self._loading = threading.Lock()

    def stream(
        self,
        question: str,
        filters: Filters | None = None,
        history: Sequence[Turn] | None = None,
        mode: AnswerMode | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
        """`AnswerDelta`s of text while the answer is produced, then the `Answer`."""
        if not question or not question.strip():
            raise ConfigError("the question is empty; ask something about your documents")
        mode = mode or self.settings.mode
        if mode not in ANSWER_MODES:
            raise ConfigError(f"unknown answer mode {mode!r}; valid: {', '.join(ANSWER_MODES)}")
        if self.retriever is None:
            raise ConfigError("this Answerer has no retriever; build it with retriever=...")
        if (
            self.generator is None
            and self.settings.configured()
            and (mode in ("generate", "reader") or history)
        ):
            from rag.answer.generators import create_generator

            with self._loading:  # two first questions at once load the model once
                if self.generator is None:
                    self.generator = create_generator(self.settings)
        language = question_language(question)
        standalone = self.standalone(question, list(history or ()), language)
        plan = self.retriever.plan()
        # One embedding of the question serves retrieval and sentence scoring.
        reading = read_time(standalone)
        # Once its time is a filter, the question is searched and its sentences scored
        # without the time words: "Wer war im März 2008 US-Präsident?" must not find "Die
        # Streiks dauern bis zum 14. März 2008" for the month.
        topic = reading.topic if reading.active() else ""
        query_vectors = self.embedder.embed_queries([topic or standalone])
        hits, missing = self._retrieve(topic or standalone, query_vectors, filters, plan, reading)
        if topic and reading.anchors and len(missing) == len(reading.anchors):
            # Nothing is dated in the asked time, so it filters nothing: its words are content
            # then ("Was geschah 1521 in Worms?" over undated articles).
            topic = ""
            query_vectors = self.embedder.embed_queries([standalone])
            hits, missing = self._retrieve(standalone, query_vectors, filters, plan, reading)
        retrieval: dict[str, Any] = {
            "k": self.settings.passages,
            "stages": plan.stages(),
            "filters": filters.to_json() if filters is not None else None,
            "embedder": self.embedder.id,
        }
        if reading.active() or reading.asks_when:
            retrieval["time"] = {
                **reading.to_json(language),
                "no_sources_in": [a.to_json() for a in missing],
                "searched_as": topic or None,
            }
        ctx = Context(
            question, standalone, language, hits, query_vectors[0], retrieval, reading, topic
        )
        if mode == "generate":
            yield from self.generate(ctx)
        elif mode == "reader" and self.generator is not None:
            yield from self.read(ctx)
        else:
            if mode == "reader":
                _say_once_quote_instead()
            yield from self.quote(ctx)

    def _retrieve(
        self,
        question: str,
        query_vectors: np.ndarray,
        filters: Filters | None,
        plan: Any,
        reading: TimeReading,
    ) -> tuple[list[Hit], list[TimeSpan]]:
        """The passages to answer from, and the asked times no passage is dated in.

        A time the question names is a soft constraint: the passages dated in it come first,
        then the best of all dates (an event is often reported after its month, and an undated
        article may hold the answer). Asked for the latest state, twice the passages are read,
        so that reports of several dates compete (see `rag.answer.timing`)."""
        assert self.retriever is not None
        k = self.settings.passages
        wide = k * 2 if reading.latest else k

        def search(narrowed: Filters | None, n: int) -> list[Hit]:
            assert self.retriever is not None
            return self.retriever.search(
                [question], n, narrowed, plan, query_vectors=query_vectors, with_evidence=True
            )[0]

        everywhere = search(filters, wide)
        if not reading.anchors:
            if reading.latest:
                everywhere = self._later_reports(
                    question, query_vectors, everywhere, filters, search
                )
            return everywhere, []
        found: list[Hit] = []
        missing: list[TimeSpan] = []
        for span in reading.anchors:
            narrowed = span.within(filters)
            in_span = search(narrowed, k) if narrowed is not None else []
            if not in_span:
                missing.append(span)
            found += in_span
        seen: set[str] = set()
        hits = []
        for hit in found + everywhere:
            if hit.chunk_id not in seen:
                seen.add(hit.chunk_id)
                hits.append(replace(hit, rank=len(hits) + 1))
        return hits, missing

    def _later_reports(
        self,
        question: str,
        query_vectors: np.ndarray,
        hits: list[Hit],
        filters: Filters | None,
        search: Callable[[Filters | None, int], list[Hit]],
        steps: int = 3,
    ) -> list[Hit]:
        """Asked for the latest state: `hits` plus reports dated after the newest one that
        answers (up to `steps` searches, each after the newest answering date so far). A
        similarity search alone favours whichever report is worded most like the question,
        and the newest report of an office holder or a figure is often not the closest."""
        k = self.settings.passages
        seen = {h.chunk_id for h in hits}
        for _ in range(steps):
            scored = score_sentences(
                question,
                query_vectors[0],
                hits,
                {h.row_id: h.evidence for h in hits if h.evidence is not None},
                self.analyzer,
                self.weights,
            )
            newest = timing.newest_answering(
                scored, hits, self.settings.time_margin, self.weights.keyword
            )
            if newest is None:
                break
            after = _after(filters, newest)
            later = [] if after is None else search(after, k)
            later = [h for h in later if h.chunk_id not in seen]
            if not later:
                break
            seen.update(h.chunk_id for h in later)
            hits = [replace(h, rank=i + 1) for i, h in enumerate(hits + later)]
        return hits

    def standalone(self, question: str, history: Sequence[Turn], language: str) -> str:
        """The question rewritten to stand alone (unchanged without history)."""
        if not history or not self.settings.rewrite_followups:
            return question
        if self.generator is not None:
            recent = [(t.question, t.answer) for t in history[-3:]]
            text = "".join(self.generator.stream(prompts.rewrite_messages(question, recent)))
            line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
            line = line.strip("\"'„“ ")
            if _usable_rewrite(line, question):
                return line
        return carry_subject(question, history, language)

    # ----------------------------------------------------------------------- quote
    def quote(self, ctx: Context) -> Iterator[AnswerDelta | Answer]:
        cfg = self.settings
        scored = score_sentences(
            ctx.scored_question,
            ctx.query_vector,
            ctx.hits,
            ctx.evidence,
            self.analyzer,
            self.weights,
        )
        evidence = scored[0].score if scored else None
        threshold = self._quote_threshold(ctx, scored) if scored else 0.0
        if evidence is None or evidence < threshold:
            yield from self._unanswerable(ctx, "quote", None, evidence)
            return
        if len(ctx.reading.anchors) > 1:
            yield from self._per_time(ctx, scored, "quote", threshold, evidence)
            return
        scored = self._in_time(ctx, scored)
        chosen = select_sentences(scored, self.weights, cfg.max_sentences)
        if ctx.reading.latest:
            chosen = timing.with_earlier(
                chosen,
                scored,
                ctx.hits,
                threshold,
                cfg.time_margin,
                self.weights.keyword,
                cfg.max_sentences,
                _answer_form(ctx),
            )
        timed = ctx.reading.active() or timing.dated_differently(chosen, ctx.hits)
        if timed:
            chosen = timing.arrange(chosen, ctx.hits, ctx.reading)
        intro = _quote_intro(ctx, timed)
        yield AnswerDelta(intro)
        citations: list[Citation] = []
        sentences: list[AnswerSentence] = []
        lines = [intro]
        lead = ctx.hits[chosen[0].hit].date
        for n, s in enumerate(chosen, 1):
            hit = ctx.hits[s.hit]
            citations.append(_citation(n, hit, s.start, s.end))
            text = s.text.strip()
            if timed:
                line = f"{timing.label(hit, lead, ctx.language)}: {_quoted(text)} [{n}]"
            else:
                line = _quote_line(text, n, hit, ctx.language)
            line = _with_resolved(line, text, hit, ctx)
            lines.append(line)
            yield AnswerDelta("\n" + line)
            sentences.append(self._check(text, (n,), (), [hit], ctx, None))
        yield ctx.answer("\n".join(lines), "quote", sentences, citations, evidence=evidence)

    def _quote_threshold(self, ctx: Context, scored: Sequence[ScoredSentence]) -> float:
        """The evidence a quote needs: `answerable_threshold`, or across languages (cosines run
        lower; calibrated separately on XQuAD en -> de) `answerable_threshold_crosslingual`."""
        cfg = self.settings
        if _passage_language(ctx.hits[scored[0].hit]) != ctx.language:
            return cfg.answerable_threshold_crosslingual
        return cfg.answerable_threshold

    def _in_time(self, ctx: Context, scored: Sequence[ScoredSentence]) -> list[ScoredSentence]:
        """`scored` in the order a quote or the reader takes them, for a question in time:
        the asked time or the newest report first among those that answer alike
        (`timing.prefer`), then those of the answer's form (an amount, an office holder), and
        for "Wann" a sentence naming the day."""
        cfg, keyword = self.settings, self.weights.keyword
        ordered = timing.prefer(
            scored, ctx.hits, ctx.reading, cfg.time_margin, keyword, cfg.time_anchor_margin
        )
        answers = _answer_form(ctx)
        if answers is not None:
            ordered = timing.answers_ahead(
                ordered,
                ctx.hits,
                ctx.reading,
                cfg.time_margin,
                keyword,
                cfg.time_anchor_margin,
                answers,
            )
        if ctx.reading.asks_day:
            ordered = timing.day_first(ordered, ctx.hits, cfg.time_margin, keyword)
        return ordered

    def _per_time(
        self,
        ctx: Context,
        scored: Sequence[ScoredSentence],
        mode: str,
        threshold: float,
        evidence: float,
    ) -> Iterator[AnswerDelta | Answer]:
        """A question naming several times ("im Juli 2005, im November 2010 und Ende März
        2012") is answered per time, from an article dated in it. In reader mode the model
        reads that time's best passage, and its phrase leads the line with the sentence that
        holds it; otherwise (quote mode, or no phrase that answers) the line quotes the best
        sentence of that time, and a second of the same article when it answers nearly as
        well. A time whose best sentence scores under `threshold` has no answer."""
        cfg = self.settings
        model = self.generator.id if mode == "reader" and self.generator is not None else None
        intro = _quote_intro(ctx, True)
        yield AnswerDelta(intro)
        lines = [intro]
        citations: list[Citation] = []
        sentences: list[AnswerSentence] = []
        phrase: Phrase | None = None
        amount = timing.asks_amount(ctx.scored_question)
        for span in ctx.reading.anchors:
            found = timing.in_span(scored, ctx.hits, span)
            if amount:
                found = timing.amount_first(found, cfg.time_anchor_margin, self.weights.keyword)
            if not found or found[0].score < threshold:
                line = timing.nothing_for(span, ctx.language)
                lines.append(line)
                yield AnswerDelta("\n" + line)
                continue
            where = self._reading(ctx, found, 1)[0] if model is not None else None
            if where is not None:
                lead, (start, end) = ctx.hits[where.hit], where.sentence
                text, exact = _at(lead, where.sentence).strip(), _at(lead, where.phrase)
                n = len(citations) + 1
                phrase = phrase or Phrase(exact, n, *where.phrase)
                picked = [(lead, start, end, text)]
                head = f"{span.phrase(ctx.language)}: {exact} – "
            else:
                lead = ctx.hits[found[0].hit]
                same = [x for x in found if ctx.hits[x.hit].doc_id == lead.doc_id]
                chosen = [found[0]] + [
                    x for x in select_sentences(same, self.weights, 2) if x is not found[0]
                ][:1]
                chosen.sort(key=lambda x: (x.hit, x.start))
                picked = [(ctx.hits[x.hit], x.start, x.end, x.text.strip()) for x in chosen]
                head = f"{span.phrase(ctx.language)}: "
            quotes = []
            for hit, start, end, text in picked:
                n = len(citations) + 1
                citations.append(_citation(n, hit, start, end))
                quotes.append(f"{_quoted(text)} [{n}]")
                sentences.append(self._check(text, (n,), (), [hit], ctx, None))
            line = head + " ".join(quotes)
            if lead.date != span.label():  # the article's own date, when it says more
                line += f" ({timing.label(lead, lead.date, ctx.language)})"
            line = _with_resolved(line, " ".join(p[3] for p in picked), lead, ctx)
            lines.append(line)
            yield AnswerDelta("\n" + line)
        answered = mode if model is not None else "quote"
        if not sentences:
            text = prompts.NO_ANSWER[ctx.language]
            yield ctx.answer(text, answered, model=model, evidence=evidence)
            return
        yield ctx.answer(
            "\n".join(lines),
            answered,
            sentences,
            citations,
            model=model,
            evidence=evidence,
            phrase=phrase,
        )

    # ----------------------------------------------------------------------- reader
    def read(self, ctx: Context) -> Iterator[AnswerDelta | Answer]:
        """The model names the answering phrase; shown only when it stands in a passage and
        the model was sure the passages say it (see `rag.answer.reader`)."""
        cfg = self.settings
        model = self.generator.id if self.generator is not None else None
        scored = score_sentences(
            ctx.scored_question,
            ctx.query_vector,
            ctx.hits,
            ctx.evidence,
            self.analyzer,
            self.weights,
        )
        if not scored or self.generator is None:
            yield from self._unanswerable(ctx, "reader", model, None)
            return
        if len(ctx.reading.anchors) > 1:
            threshold = self._quote_threshold(ctx, scored)
            yield from self._per_time(ctx, scored, "reader", threshold, scored[0].score)
            return
        scored = self._in_time(ctx, scored)
        # A question read in time: the passage the time logic leads with, alone, so that the
        # model's phrase is of the asked time or the newest report ("Wann": the one naming a day).
        one = ctx.reading.active() or ctx.reading.asks_day
        found, evidence, misformed = self._reading(
            ctx, scored, 1 if one else cfg.reader_passages
        )
        if found is None and misformed:
            # The model was sure the passages answer, but its phrase is not of the asked form:
            # the best sentences are quoted instead, as quote mode (and a time's line) does.
            yield from self.quote(ctx)
            return
        if found is None:
            yield from self._unanswerable(ctx, "reader", model, evidence)
            return
        hit = ctx.hits[found.hit]
        start, end = found.sentence
        exact = _at(hit, found.phrase)
        first = prompts.READER_ANSWER[ctx.language].format(phrase=exact, n=1)
        sentence_text = _at(hit, found.sentence).strip()
        timed = ctx.reading.active()
        if timed:
            line = f"{timing.label(hit, hit.date, ctx.language)}: {_quoted(sentence_text)} [1]"
        else:
            line = _quote_line(sentence_text, 1, hit, ctx.language)
        line = _with_resolved(line, sentence_text, hit, ctx)
        yield AnswerDelta(first)
        yield AnswerDelta("\n" + line)
        lines = [first, line]
        sentences = [self._check(sentence_text, (1,), (), [hit], ctx, None)]
        citations = [_citation(1, hit, start, end)]
        if ctx.reading.latest:
            # What older reports said, shown as earlier (the answer is the newest's).
            answered = [s for s in scored if (s.hit, s.start, s.end) == (found.hit, start, end)]
            threshold = cfg.answerable_threshold
            shown_too = timing.with_earlier(
                answered,
                scored,
                ctx.hits,
                threshold,
                cfg.time_margin,
                self.weights.keyword,
                2,
                _answer_form(ctx),
            )
            for s in shown_too[1:]:
                older, text = ctx.hits[s.hit], s.text.strip()
                more = f"{timing.label(older, hit.date, ctx.language)}: {_quoted(text)} [2]"
                citations.append(_citation(2, older, s.start, s.end))
                sentences.append(self._check(text, (2,), (), [older], ctx, None))
                lines.append(more)
                yield AnswerDelta("\n" + more)
        if timed and ctx.reading.understood(ctx.language):
            note = f"({ctx.reading.understood(ctx.language)})"
            lines.append(note)
            yield AnswerDelta("\n" + note)
        yield ctx.answer(
            "\n".join(lines),
            "reader",
            sentences,
            citations,
            model=model,
            evidence=evidence,
            phrase=Phrase(exact, 1, *found.phrase),
        )

    def _reading(
        self, ctx: Context, scored: Sequence[ScoredSentence], passages: int
    ) -> tuple[reader.Grounding | None, float, bool]:
        """The model reads the best `passages` of `scored` (not empty): where its phrase stands,
        if it answers (see `_reader_answers`), the evidence of its sentence, and whether a
        phrase that would answer was set aside as not of the asked form (`_of_the_asked_form`).
        """
        cfg = self.settings
        assert self.generator is not None
        shown = reader.excerpts(
            scored,
            ctx.hits,
            max_passages=passages,
            sentences_per_passage=cfg.reader_sentences,
            max_chars=cfg.reader_chars,
        )
        texts = [(ctx.hits[e.hit].date or "undated", e.text) for e in shown]
        messages = prompts.reader_messages(ctx.standalone, texts, reader.NONE_WORD)
        copy = reader.CopySpan(
            [e.text for e in shown],
            ctx.standalone,
            lambda text: self.analyzer.document_terms(text, ctx.language),
        )
        reading = reader.read(self.generator, messages, copy)
        phrase = reader.parse_phrase(reading.text)
        said_none = phrase is None and reading.instead is not None
        if said_none:
            phrase = reader.parse_phrase(reading.instead or "")
        found = reader.ground(phrase, shown, ctx.hits, self.analyzer) if phrase else None
        signals = reader.signals(reading, phrase, found, scored, copy, said_none=said_none)
        log.debug("reader: %s", signals.to_json())
        if found is None:
            return None, signals.evidence, False
        hit = ctx.hits[found.hit]
        language = _passage_language(hit)
        if not self._reader_answers(
            signals,
            language != ctx.language,
            in_form=not said_none and _names_the_holder(ctx, found),
        ):
            return None, signals.evidence, False
        completed = reader.complete(found, hit, when=ctx.reading.asks_when)
        if not _of_the_asked_form(ctx, _at(hit, completed.phrase), language):
            return None, signals.evidence, True
        return completed, signals.evidence, False

    def _reader_answers(
        self, signals: reader.Signals, crosslingual: bool, *, in_form: bool = False
    ) -> bool:
        """Whether a grounded reading is shown as the answer: the fitted probability that
        the passages answer at least `reader_answer_threshold` (`reader_form_threshold` when
        the phrase has the asked form, `in_form`); without the model's probabilities (or with
        `reader_refusal = "thresholds"`), its NONE probability and the sentence's evidence
        against their thresholds. Across languages (a question's terms are not the passage's,
        cosines run lower, the model is less sure of copying German for an English question)
        the probability is the cross-lingual fit's, against its own threshold."""
        cfg = self.settings
        p = None
        if cfg.reader_refusal == "calibrated":
            p = answerability.p_answers(signals, crosslingual=crosslingual)
        if p is not None:
            if in_form:
                return p >= cfg.reader_form_threshold
            if crosslingual:
                return p >= cfg.reader_answer_threshold_crosslingual
            return p >= cfg.reader_answer_threshold
        unsure = signals.p_none is not None and signals.p_none >= cfg.reader_none_threshold
        return not (signals.said_none or unsure or signals.evidence < cfg.reader_evidence_threshold)

    def _unanswerable(
        self, ctx: Context, mode: str, model: str | None, evidence: float | None
    ) -> Iterator[AnswerDelta | Answer]:
        text = prompts.NO_ANSWER[ctx.language]
        yield AnswerDelta(text)
        yield ctx.answer(text, mode, model=model, evidence=evidence)

    # ----------------------------------------------------------------------- generate
    def generate(self, ctx: Context) -> Iterator[AnswerDelta | Answer]:
        if self.generator is None:
            raise ConfigError(
                "no language model is configured for the generate mode; the default "
                "(generation.backend = 'packaged') needs llama-cpp-python and the model's part "
                "packages (`rag models info` says what is missing); or set generation.backend "
                "to 'llamacpp' (gguf_path) or 'openai' (base_url, model); 'none' = quote answers"
            )
        model = self.generator.id
        if not ctx.hits:
            yield from self._unanswerable(ctx, "generate", model, None)
            return
        messages = prompts.answer_messages(
            ctx.standalone, ctx.hits, ctx.language, self.settings.max_sentences
        )
        # The deltas add up to the answer's `text` (the model's text, stripped): leading and
        # trailing whitespace is not streamed, and neither is a beginning that may still turn
        # out to be the sentinel (the no-answer text replaces it).
        written, sent = "", 0
        for piece in self.generator.stream(messages):
            written += piece
            shown = written.strip()
            if not sent and prompts.CANNOT_ANSWER.startswith(shown.strip(" .\"'`*")):
                continue
            if len(shown) > sent:
                yield AnswerDelta(shown[sent:])
                sent = len(shown)
        raw = written.strip()
        if not raw or raw.strip(" .\"'`*") == prompts.CANNOT_ANSWER:
            yield from self._unanswerable(ctx, "generate", model, None)
            return
        if len(raw) > sent:
            yield AnswerDelta(raw[sent:])
        text = raw.replace(prompts.CANNOT_ANSWER, "")
        parsed = parse_answer(text, len(ctx.hits), ctx.language)
        vectors = (
            self.embedder.embed_passages([p.text for p in parsed])
            if parsed
            else np.zeros((0, 0), dtype=np.float32)
        )
        sentences = [
            self._check(
                p.text,
                p.citations,
                p.invalid,
                [ctx.hits[n - 1] for n in p.citations],
                ctx,
                vectors[i],
            )
            for i, p in enumerate(parsed)
        ]
        sentences = [
            self._repair(s, p, ctx, vectors[i]) if not s.supported and p.citations else s
            for i, (s, p) in enumerate(zip(sentences, parsed, strict=True))
        ]
        if any(s.repaired_from for s in sentences):
            new = {p.start: s.citations for p, s in zip(parsed, sentences) if s.repaired_from}
            raw = recite(text, parsed, new).strip()
        # One citation per cited passage; its quote is the passage sentence closest to the
        # answer sentences that cite it.
        cited = sorted({n for s in sentences for n in s.citations})
        citations = [self._generated_citation(n, ctx, sentences, vectors) for n in cited]
        yield ctx.answer(raw, "generate", sentences, citations, model=model)

    def _repair(
        self, sentence: AnswerSentence, parsed: Any, ctx: Context, vector: np.ndarray
    ) -> AnswerSentence:
        """A sentence its citations do not support, cited instead to the one other retrieved
        passage that supports it best (marked `repaired_from`); unchanged when none does."""
        best: AnswerSentence | None = None
        for n in range(1, len(ctx.hits) + 1):
            if n in parsed.citations:
                continue
            check = self._check(parsed.text, (n,), (), [ctx.hits[n - 1]], ctx, vector)
            better = best is None or (check.similarity or 0) > (best.similarity or 0)
            if check.supported and better:
                best = check
        if best is None:
            return sentence
        return replace(best, repaired_from=parsed.citations)

    def _generated_citation(
        self, n: int, ctx: Context, sentences: Sequence[AnswerSentence], vectors: np.ndarray
    ) -> Citation:
        hit = ctx.hits[n - 1]
        ev = hit.evidence
        users = [i for i, p in enumerate(sentences) if n in p.citations]
        start, end = hit.start, hit.end
        if ev is not None and ev.sentence_spans and users:
            if ev.sentence_vectors is not None and len(ev.sentence_vectors) == len(
                ev.sentence_spans
            ):
                sims = ev.sentence_vectors @ vectors[users].T
                best = int(np.argmax(sims.max(axis=1)))
            else:
                best = 0
            start, end = ev.sentence_spans[best]
        return _citation(n, hit, start, end)

    # ----------------------------------------------------------------------- support
    def _check(
        self,
        text: str,
        numbers: tuple[int, ...],
        invalid: tuple[int, ...],
        hits: Sequence[Hit],
        ctx: Context,
        vector: np.ndarray | None,
    ) -> AnswerSentence:
        """The support check of one sentence against the passages it cites (`hits`)."""
        problems = [
            f"cites [{n}], but there are only {len(ctx.hits)} passages (dropped)" for n in invalid
        ]
        if not numbers:
            problems.append("cites no source")
            return AnswerSentence(text, (), False, tuple(problems), None)
        label = " ".join(f"[{n}]" for n in numbers)
        passages = [h.text for h in hits]
        problems += fact_problems(text, ctx.language, SourceFacts(passages), label)
        flat = collapse_ws(text)
        if any(flat in collapse_ws(p) for p in passages):
            similarity = 1.0  # a verbatim quote
        else:
            if vector is None:
                vector = self.embedder.embed_passages([text])[0]
            similarity = 0.0
            for h in hits:
                ev = h.evidence
                if ev is None:
                    continue
                # Sentence against sentences (calibrated that way); the passage vector only
                # for an index stored without sentence vectors.
                rows = ev.sentence_vectors
                if rows is None or not len(rows):
                    rows = ev.vector[None, :]
                similarity = max(similarity, float(np.max(rows @ vector)))
            if similarity < self.settings.support_threshold:
                problems.append(
                    f"not close in meaning to {label} (similarity {similarity:.2f} < "
                    f"{self.settings.support_threshold:.2f})"
                )
        return AnswerSentence(text, numbers, not problems, tuple(problems), round(similarity, 4))


def _quoted(sentence: str) -> str:
    """A source sentence in quotation marks (unless it is a quotation already)."""
    if not sentence.startswith(("„", '"', "“", "»", "«", "'")):
        return f"„{sentence}“"
    return sentence


def _quote_intro(ctx: Context, timed: bool) -> str:
    """The quote answer's first line; a timed answer says how it is ordered and what time
    the question was read as."""
    if not timed:
        return prompts.QUOTE_INTRO[ctx.language]
    if not ctx.reading.anchors:
        notes = [timing.newest_first_note(ctx.language)]
    else:
        notes = [ctx.reading.understood(ctx.language)]
    return prompts.QUOTE_INTRO_TIMED[ctx.language].format(notes="; ".join(notes))


def _with_resolved(line: str, sentence: str, hit: Hit, ctx: Context) -> str:
    """A "when" question's line, with its relative days ("am Mittwoch") resolved."""
    if not ctx.reading.asks_when:
        return line
    note = timing.resolution_note(timing.resolve_relative(sentence, hit.date), ctx.language)
    return f"{line} {note}" if note else line


def _quote_line(sentence: str, n: int, hit: Hit, language: str) -> str:
    """A source sentence as the answer quotes it: in quotation marks (unless it is a quotation
    already), its citation number and its article's date."""
    sentence = _quoted(sentence)
    when = hit.date or prompts.UNDATED[language]
    if hit.date and hit.date_source == "inferred":
        when = f"{hit.date}, {prompts.INFERRED[language]}"
    return f"{sentence} [{n}] ({when})"


def _at(hit: Hit, span: tuple[int, int]) -> str:
    """The words of `hit` at `span` (document offsets)."""
    return hit.text[span[0] - hit.start : span[1] - hit.start]


def _citation(n: int, hit: Hit, start: int, end: int) -> Citation:
    quote = _at(hit, (start, end))
    return Citation(
        url=hit.url,
        n=n,
        chunk_id=hit.chunk_id,
        doc_id=hit.doc_id,
        source=hit.source,
        title=hit.title,
        date=hit.date,
        date_source=hit.date_source,
        quote=quote,
        start=start,
        end=end,
        passage=hit.text,
        passage_start=hit.start,
        page=hit.page,
    )
