"""Temporal questions: the public question set's format, the scoring of answers against gold
values and dates, the evidence check, and `rag eval-answers --questions FILE.jsonl` on a tiny
index of synthetic dated articles (no ../shared data needed)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rag.errors import ConfigError
from rag.evaluation import (
    TEMPORAL_KINDS,
    DatedValue,
    TemporalQuestion,
    answer_body,
    check_evidence,
    evaluate_temporal,
    load_temporal_questions,
    score_temporal,
)
from rag.types import Document

ROOT = Path(__file__).resolve().parents[2]
QUESTION_SET = ROOT / "benchmarks" / "temporal_questions.jsonl"


# --------------------------------------------------------------------------- the question set
def test_the_public_question_set_is_well_formed():
    questions = load_temporal_questions(QUESTION_SET)  # raises on any format problem

    assert len(questions) >= 40
    assert {q.kind for q in questions} == set(TEMPORAL_KINDS)
    assert {q.language for q in questions} == {"de", "en"}
    assert sum(q.language == "en" for q in questions) >= 5
    for q in questions:
        if q.kind in ("as_of", "latest"):
            assert q.distractor_doc_ids, q.qid
        if q.kind == "when":
            assert len(q.gold_date) == 10, f"{q.qid}: a when question's gold is a day"
        if q.kind == "change":
            assert len(q.values) >= 2, q.qid
        for part in q.parts():
            # The gold value stands in the sentence quoted as its evidence (a "when" question's
            # date may have to be resolved from "am Mittwoch": its evidence need not spell it).
            if q.kind != "when":
                evidence = part.evidence.casefold()
                assert any(a.casefold() in evidence for a in part.answers), q.qid


def write_questions(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def row(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "q1",
        "kind": "as_of",
        "language": "de",
        "question": "Wer war im Juli 2005 Bundesinnenminister?",
        "answers": ["Schily"],
        "gold_date": "2005-07-05",
        "gold_doc_ids": ["a1"],
        "evidence": "Bundesinnenminister Otto Schily stellte die Pässe vor.",
        "distractor_doc_ids": ["a2"],
    }
    return {**base, **fields}


def test_the_loader_reports_every_problem_with_its_line(tmp_path):
    path = write_questions(
        tmp_path / "q.jsonl",
        [
            row(),
            row(id="q2", kind="someday"),
            row(id="q3", distractor_doc_ids=[]),
            row(id="q4", gold_date="July 2005"),
            row(id="q5", kind="change"),
            row(),  # the id of line 1 again
        ],
    )

    with pytest.raises(ConfigError) as caught:
        load_temporal_questions(path)

    message = str(caught.value)
    assert "5 problem(s)" in message
    assert "line 2: kind 'someday' is not one of as_of, latest, change, when, in_year" in message
    assert "line 3: a as_of question needs a distractor" in message
    assert "line 4: gold_date 'July 2005' is not YYYY-MM-DD or YYYY-MM" in message
    assert "line 5: a change question needs values" in message
    assert "line 6: duplicate id 'q1'" in message


def test_a_change_question_keeps_its_dated_values_in_order(tmp_path):
    values = [
        {"answers": ["Innenminister"], "gold_date": "2008-11-23", "gold_doc_ids": ["a1"],
         "evidence": "Bundesinnenminister Wolfgang Schäuble sagte."},
        {"answers": ["Finanzminister"], "gold_date": "2010-11-19", "gold_doc_ids": ["a2"],
         "evidence": "Bundesfinanzminister Wolfgang Schäuble sagte."},
    ]  # fmt: skip
    good = row(
        kind="change",
        answers=["Innenminister", "Finanzminister"],
        gold_date="2010-11-19",
        gold_doc_ids=["a1", "a2"],
        distractor_doc_ids=[],
        values=values,
    )
    path = write_questions(tmp_path / "q.jsonl", [good])
    (question,) = load_temporal_questions(path)
    assert [p.answers for p in question.parts()] == [("Innenminister",), ("Finanzminister",)]

    backwards = {**good, "values": values[::-1], "gold_date": "2008-11-23"}
    with pytest.raises(ConfigError, match="earliest first"):
        load_temporal_questions(write_questions(tmp_path / "bad.jsonl", [backwards]))


# --------------------------------------------------------------------------- scoring
def cite(n: int, doc_id: str, date: str | None) -> SimpleNamespace:
    return SimpleNamespace(n=n, doc_id=doc_id, date=date)


def answer(text: str, *citations: SimpleNamespace, answerable: bool = True) -> SimpleNamespace:
    return SimpleNamespace(text=text, citations=citations, answerable=answerable)


def question(kind: str = "as_of", **fields: Any) -> TemporalQuestion:
    base: dict[str, Any] = {
        "qid": "q",
        "kind": kind,
        "language": "de",
        "text": "?",
        "answers": ("Schily",),
        "gold_date": "2005-07-05",
        "gold_doc_ids": ("a1",),
        "evidence": "",
    }
    return TemporalQuestion(**{**base, **fields})


def test_the_right_value_from_the_wrong_time_is_not_correct():
    q = question()
    from_gold = answer(
        "„Bundesinnenminister Schily sagte ...“ [1] (2005-07-05)", cite(1, "a1", "2005-07-05")
    )
    same_month = answer("„Schily sagte ...“ [1] (2005-07-20)", cite(1, "other", "2005-07-20"))
    later = answer(
        "„Der frühere Minister Schily ...“ [1] (2007-04-12)", cite(1, "a3", "2007-04-12")
    )
    wrong_value = answer("„Schäuble sagte ...“ [1] (2005-07-05)", cite(1, "a1", "2005-07-05"))
    refused = answer("Die Quellen beantworten das nicht. Schily", cite(1, "a1", "2005-07-05"),
                     answerable=False)  # fmt: skip

    assert score_temporal(q, from_gold).correct
    assert score_temporal(q, same_month).correct  # another report of the gold month
    verdict = score_temporal(q, later)
    assert verdict.contains_gold and not verdict.right_time and not verdict.correct
    assert not score_temporal(q, wrong_value).contains_gold
    assert not score_temporal(q, refused).cited and not score_temporal(q, refused).correct


def test_a_question_about_a_year_accepts_any_report_of_that_year():
    in_year = question("in_year", answers=("Finanzminister",), gold_date="2010-11-19")
    as_of = question("as_of", answers=("Finanzminister",), gold_date="2010-11-19")
    june = answer("„Finanzminister Wolfgang Schäuble ...“ [1]", cite(1, "other", "2010-06-05"))

    assert score_temporal(in_year, june).correct
    assert not score_temporal(as_of, june).right_time


def test_the_first_citation_decides_the_time():
    q = question()
    second_is_gold = answer(
        "„Schily ...“ [2] „...“ [1]", cite(2, "a1", "2005-07-05"), cite(1, "a3", "2007-04-12")
    )
    assert not score_temporal(q, second_is_gold).right_time


def test_a_when_answer_must_state_the_date_not_only_its_source_date():
    q = question("when", answers=("27. April 2005",), gold_date="2005-04-27", gold_doc_ids=("a",))
    source = cite(1, "a", "2005-04-27")

    weekday_only = answer("„Der A380 startet am Mittwoch.“ [1] (2005-04-27)", source)
    resolved = answer("am Mittwoch (= 27.04.2005) [1]\n„Der A380 startet am Mittwoch.“ [1]", source)
    english = answer("On April 27, 2005 [1]", source)

    assert answer_body(weekday_only.text) == "„Der A380 startet am Mittwoch.“ [1]"
    assert not score_temporal(q, weekday_only).contains_gold
    assert score_temporal(q, resolved).correct  # any written form of the gold day counts
    assert score_temporal(q, english).correct
    inferred = "„...“ [1] (2005-04, Datum aus dem Text erschlossen)"
    assert answer_body(inferred) == "„...“ [1]"


def test_labels_that_date_the_sources_are_not_the_answers_date():
    q = question("when", answers=("31. Januar 2007",), gold_date="2007-01-31")
    source = cite(1, "a", "2007-01-31")
    labelled = answer(
        "Die Quellen sagen dazu (wörtlich zitiert, neueste zuerst):\n"
        "Stand 2007-01-31: „Der FC Bayern hat sich von Magath getrennt.“ [1]\n"
        "Früher, 2006-03-09 (Datum erschlossen): „...“ [2]\n"
        "as of 2006: „...“ [3] (As of 2007-01-31)",
        source,
    )
    resolved = answer(
        "Stand 2007-01-31: „Dies gab der Rekordmeister am Mittwoch bekannt.“ [1] "
        "(am Mittwoch = 2007-01-31, aus dem Artikeldatum erschlossen)",
        source,
    )

    assert "2007-01-31" not in answer_body(labelled.text)
    assert "2006" not in answer_body(labelled.text)
    assert not score_temporal(q, labelled).contains_gold
    assert score_temporal(q, resolved).correct  # the resolution is the answer's own statement


def test_a_change_answer_gives_both_values_each_cited_for_its_time():
    q = question(
        "change",
        answers=("Innenminister", "Finanzminister"),
        gold_date="2010-11-19",
        gold_doc_ids=("a1", "a2"),
        values=(
            DatedValue(("Innenminister",), "2008-11-23", ("a1",), ""),
            DatedValue(("Finanzminister",), "2010-11-19", ("a2",), ""),
        ),
    )
    both = answer(
        "Stand 2010-11: Bundesfinanzminister Schäuble [1]; 2008-11: Bundesinnenminister [2]",
        cite(1, "a2", "2010-11-19"),
        cite(2, "a1", "2008-11-23"),
    )
    one = answer("„Bundesfinanzminister Schäuble ...“ [1]", cite(1, "a2", "2010-11-19"))
    both_values_one_source = answer(
        "Bundesinnenminister, dann Bundesfinanzminister [1]", cite(1, "a2", "2010-11-19")
    )

    assert score_temporal(q, both).correct
    assert not score_temporal(q, one).contains_gold
    verdict = score_temporal(q, both_values_one_source)
    assert verdict.contains_gold and not verdict.right_time


def test_check_evidence_finds_what_does_not_stand_in_the_articles():
    docs = [
        Document("a1", "Bundesinnenminister Otto Schily stellte die Pässe vor. Mehr.", "x",
                 date="2005-07-05"),
        Document("a2", "Thomas de Maizière legte einen Entwurf vor.", "x", date="2010-12-01"),
    ]  # fmt: skip
    good = question(evidence="Bundesinnenminister Otto Schily stellte die Pässe vor.",
                    distractor_doc_ids=("a2",))  # fmt: skip
    paraphrased = question(qid="p", evidence="Otto Schily, Bundesinnenminister, stellte vor.")
    wrong_month = question(qid="m", evidence=good.evidence, gold_date="2005-08-01")
    unknown = question(qid="u", evidence=good.evidence, distractor_doc_ids=("a9",))

    assert check_evidence([good], docs) == []
    problems = check_evidence([paraphrased, wrong_month, unknown], docs)
    assert len(problems) == 3
    assert problems[0].startswith("p: evidence not verbatim in a1")
    assert problems[1] == "m: gold_date 2005-08-01 is not the month of a1 (2005-07-05)"
    assert problems[2] == "u: unknown document id(s) a9"


# --------------------------------------------------------------------------- on an index
ARTICLES = [
    {"id": "a1", "date": "2005-07-05", "title": "Biometrische Pässe",
     "text": "Bundesinnenminister Otto Schily stellte am Dienstag in Berlin die neuen "
             "biometrischen Reisepässe vor. Die Pässe sollen ab November ausgegeben werden."},
    {"id": "a2", "date": "2010-12-01", "title": "Datenschutz im Internet",
     "text": "Bundesinnenminister Thomas de Maizière legte am Mittwoch einen Gesetzentwurf zum "
             "Datenschutz im Internet vor. Der Entwurf soll Nutzer vor Bildern schützen."},
    {"id": "a3", "date": "2006-01-30", "title": "Australian Open",
     "text": "Der Schweizer Tennisspieler Roger Federer gewann am Sonntag das Finale der "
             "Australian Open in Melbourne. Er besiegte Marcos Baghdatis in vier Sätzen."},
]  # fmt: skip
QUESTIONS = [
    row(),
    row(id="q2", kind="latest", question="Wer ist derzeit Bundesinnenminister?",
        answers=["de Maizière"], gold_date="2010-12-01", gold_doc_ids=["a2"],
        evidence=ARTICLES[1]["text"].split(". ")[0] + ".", distractor_doc_ids=["a1"]),
    row(id="q3", kind="in_year", question="Wer gewann im Jahr 2006 die Australian Open?",
        answers=["Roger Federer"], gold_date="2006-01-30", gold_doc_ids=["a3"],
        evidence=ARTICLES[2]["text"].split(". ")[0] + ".", distractor_doc_ids=[]),
]  # fmt: skip
QUESTIONS[0]["evidence"] = ARTICLES[0]["text"].split(". ")[0] + "."


def rescore(r: dict[str, Any], q: TemporalQuestion) -> Any:
    """The verdict recomputed from what an --out row recorded of the answer."""
    cites = [cite(c["n"], c["doc_id"], c["date"]) for c in r["citations"]]
    return score_temporal(q, answer(r["answer"], *cites, answerable=r["answerable"]))


@pytest.mark.slow
def test_eval_answers_scores_jsonl_questions_on_a_kept_index(tmp_path, monkeypatch):
    from tests.rag.test_cli import run

    monkeypatch.chdir(tmp_path)
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in ARTICLES))
    questions_file = write_questions(tmp_path / "q.jsonl", QUESTIONS)
    index = tmp_path / "idx"
    assert check_evidence(load_temporal_questions(questions_file), [
        Document(a["id"], a["text"], "x", date=a["date"]) for a in ARTICLES
    ]) == []  # fmt: skip

    no_index = run(["eval-answers", "--questions", questions_file, "--index", index, "--json"])
    assert no_index.exit_code == 1 and "rag index" in no_index.output
    result = run(
        ["eval-answers", "--questions", questions_file, "--index", index, "--index-from",
         articles, "--mode", "quote", "--json", "--out", tmp_path / "rows.jsonl"]
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_questions"] == 3 and report["kinds"] == {"as_of": 1, "latest": 1, "in_year": 1}
    assert report["index"]["documents"] == 3 and report["index"]["missing_gold_documents"] == []
    block = report["by_mode"]["quote"]
    assert block["mode_used"] == "quote"
    assert set(block["by_kind"]) == {"as_of", "latest", "in_year"}
    assert block["by_language"]["de"]["n"] == 3
    # One tennis article: the question about 2006 is answered from it, with Federer, cited.
    assert block["by_kind"]["in_year"]["correct"] == 1.0
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"]
    by_id = {q.qid: q for q in load_temporal_questions(questions_file)}
    for r in rows:
        verdict = rescore(r, by_id[r["id"]])
        assert (r["contains_gold"], r["right_time"], r["correct"]) == (
            verdict.contains_gold, verdict.right_time, verdict.correct
        )  # fmt: skip
        assert r["first_citation"]["doc_id"] == r["citations"][0]["doc_id"]
    assert block["overall"]["correct"] == round(sum(r["correct"] for r in rows) / 3, 4)

    usage = run(["eval-answers", "--questions", questions_file, "--json"])
    assert usage.exit_code == 2 and "--index" in usage.output


@pytest.mark.slow
def test_evaluate_temporal_asks_each_mode_through_the_engine(tmp_path, settings, embedder):
    from rag.engine import Engine

    questions = load_temporal_questions(write_questions(tmp_path / "q.jsonl", QUESTIONS))
    docs = [Document(a["id"], a["text"], f"{a['id']}.txt", a["title"], a["date"]) for a in ARTICLES]
    with Engine.open(tmp_path / "idx", settings, embedder=embedder) as engine:
        engine.add_documents(docs)
        report = evaluate_temporal(engine, questions, ["reader", "quote"])

    # No language model in the tests: reader mode answers in quote mode, and says so.
    assert list(report["by_mode"]) == ["reader", "quote"]
    assert report["by_mode"]["reader"]["mode_used"] == "quote"
    assert report["by_mode"]["reader"]["overall"] == report["by_mode"]["quote"]["overall"]
    overall = report["by_mode"]["quote"]["overall"]
    assert overall["n"] == 3 and overall["answered"] == 1.0
    assert overall["correct"] <= min(overall["contains_gold"], overall["right_time"])
