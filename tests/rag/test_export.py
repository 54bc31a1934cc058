"""Exports as a user gets them: Markdown footnotes with the quotes, JSON that validates
against the shipped schema and reads back, a PDF whose text `pdftotext` extracts, BibTeX that
pybtex parses back, CSL-JSON with date-parts; and `rag export` on saved answer JSON.

The answers are built by hand (German news, no model), so these tests are fast.
"""

from __future__ import annotations

import codecs
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.answer.types import Answer, AnswerSentence, Citation
from rag.errors import ConfigError
from rag.export import (
    FORMATS,
    Export,
    ExportContext,
    answer_from_json,
    answers_from_json,
    export_answers,
    schema_path,
)
from rag.types import DuplicateSource, Hit

# ------------------------------------------------------------------------------ data
HEIZOEL = {
    "doc_id": "a1b2c3d4e5f60718",
    "source": "archiv/tagesschau/2022-06_energiepreise.txt",
    "title": "Energiepreise: Heizöl 35 % teurer – „Entlastung“ für Mieter & Pendler",
    "date": "2022-06",
    "url": "https://www.tagesschau.de/wirtschaft/energiepreise-heizoel-101.html",
    "text": (
        "Der Preis für Heizöl ist im Juni um 35 Prozent gestiegen. „Wir müssen die "
        "Bürgerinnen und Bürger schnell entlasten“, sagte Finanzminister Christian Lindner "
        "in Berlin. Der Tankrabatt gilt seit dem 1. Juni."
    ),
}
WAERMERAUM = {
    "doc_id": "ffee0011aabb2233",
    "source": "archiv/pdf/sz_2022-06-14.pdf",
    "title": "Gaspreise: Städte planen *Wärmeräume* [Eilmeldung]",
    "date": "2022-06-14",
    "url": None,
    "page": 3,
    "text": (
        "Mehrere Städte wollen im Winter Wärmeräume für Bedürftige öffnen. In der "
        "Goethestraße soll der erste Raum im Oktober eröffnen."
    ),
}
OELPREIS = {
    "doc_id": "0c0ffee0c0ffee00",
    "source": "archiv/spiegel/oelpreis.html",
    "title": "Ölpreis über 120 $ je Barrel: Stadtwerke & Co. erhöhen #Strom_Tarife um 50 %",
    "date": "2022-06-08",
    "url": "https://www.spiegel.de/wirtschaft/oelpreis_120_dollar-a-123.html?utm=x&y=1",
    "text": "Ein Barrel der Sorte Brent kostete am Mittwoch mehr als 120 Dollar.",
}


def cite(n: int, doc: dict, quote: str) -> Citation:
    start = doc["text"].index(quote)
    return Citation(
        n=n,
        chunk_id=f"{doc['doc_id']}:0",
        doc_id=doc["doc_id"],
        source=doc["source"],
        title=doc["title"],
        date=doc["date"],
        quote=quote,
        start=start,
        end=start + len(quote),
        passage=doc["text"],
        passage_start=0,
        page=doc.get("page"),
        url=doc["url"],
    )


def hit(rank: int, doc: dict, score: float) -> Hit:
    return Hit(
        rank=rank,
        score=score,
        chunk_id=f"{doc['doc_id']}:0",
        doc_id=doc["doc_id"],
        source=doc["source"],
        title=doc["title"],
        date=doc["date"],
        text=doc["text"],
        start=0,
        end=len(doc["text"]),
    )


QUOTE_LINDNER = (
    "Der Preis für Heizöl ist im Juni um 35 Prozent gestiegen. „Wir müssen die Bürgerinnen "
    "und Bürger schnell entlasten“, sagte Finanzminister Christian Lindner in Berlin."
)
QUOTE_STRASSE = "In der Goethestraße soll der erste Raum im Oktober eröffnen."
UNSUPPORTED = "Die Preise sollen bis Dezember wieder fallen."

HEATING = Answer(
    question="Wie stark ist der Heizölpreis im Juni 2022 gestiegen?",
    text=(
        "Der Preis für Heizöl stieg im Juni um 35 Prozent [1]. Finanzminister Lindner will die "
        "Bürger „schnell entlasten“ [1]. In der Goethestraße öffnet im Oktober ein Wärmeraum "
        f"[2]. {UNSUPPORTED}"
    ),
    answerable=True,
    mode="generate",
    sentences=(
        AnswerSentence("Der Preis für Heizöl stieg im Juni um 35 Prozent [1].", (1,), True),
        AnswerSentence(
            "Finanzminister Lindner will die Bürger „schnell entlasten“ [1].", (1,), True
        ),
        AnswerSentence("In der Goethestraße öffnet im Oktober ein Wärmeraum [2].", (2,), True),
        AnswerSentence(UNSUPPORTED, (), False, ("no citation",)),
    ),
    citations=(cite(1, HEIZOEL, QUOTE_LINDNER), cite(2, WAERMERAUM, QUOTE_STRASSE)),
    passages=(
        hit(1, HEIZOEL, 0.8123),
        Hit(
            **{
                **hit(2, WAERMERAUM, 0.7).__dict__,
                "duplicates": (
                    DuplicateSource(
                        "d0d0", "archiv/dpa/waerme.txt", "Wärmeräume", "2022-06", "d0d0:0"
                    ),
                ),
            }
        ),
    ),
    model="gemma3-270m",
    language="de",
    retrieval={"k": 5, "stages": ["dense", "keyword", "fusion"], "filters": None},
    evidence=0.74,
)

FOLLOW_UP = Answer(
    question="Und was kostet Öl an der Börse?",
    text="Ein Barrel der Sorte Brent kostete am Mittwoch mehr als 120 Dollar. [1] "
    "Der Tankrabatt gilt seit dem 1. Juni. [2]",
    answerable=True,
    mode="quote",
    sentences=(
        AnswerSentence(OELPREIS["text"], (1,), True, similarity=0.91),
        AnswerSentence("Der Tankrabatt gilt seit dem 1. Juni.", (2,), True, similarity=0.66),
    ),
    citations=(
        cite(1, OELPREIS, OELPREIS["text"]),
        cite(2, HEIZOEL, "Der Tankrabatt gilt seit dem 1. Juni."),  # same document as above
    ),
    language="de",
    standalone_question="Was kostet Öl im Juni 2022 an der Börse?",
    retrieval={"k": 5, "stages": ["dense"], "filters": {"date_from": "2022-06"}},
    evidence=0.81,
)

NO_ANSWER = Answer(
    question="Wer gewann die Fußball-WM 2030?",
    text="Die Quellen beantworten diese Frage nicht.",
    answerable=False,
    mode="quote",
    sentences=(),
    citations=(),
    passages=(hit(1, OELPREIS, 0.31), hit(2, WAERMERAUM, 0.29)),
    language="de",
    evidence=0.12,
)

CONVERSATION = [HEATING, FOLLOW_UP, NO_ANSWER]
CONTEXT = ExportContext(
    index_manifest_sha256="ab" * 32,
    embedder="intfloat/multilingual-e5-small",
    created_at="2024-05-01T12:00:00Z",
    index_path="/data/newsrag-index",
)


def text_of(export: Export) -> str:
    return export.data.decode("utf-8")


# ----------------------------------------------------------------------------- common
def test_unknown_format_names_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        export_answers([HEATING], "docx", CONTEXT)
    assert "'docx'" in str(err.value)
    for name in ("markdown", "json", "pdf", "bibtex", "csl"):
        assert name in str(err.value)


def test_nothing_to_export_and_bad_timestamp_are_clear_errors():
    with pytest.raises(ConfigError, match="at least one answer"):
        export_answers([], "markdown", CONTEXT)
    with pytest.raises(ConfigError, match="ISO 8601"):
        export_answers([HEATING], "json", ExportContext(created_at="gestern"))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_has_a_safe_ascii_file_name_and_media_type(fmt):
    one = export_answers([HEATING], fmt, CONTEXT)
    assert one.filename.startswith("newsrag-wie-stark-ist-der-heizoelpreis")
    assert one.filename.isascii() and "/" not in one.filename and " " not in one.filename
    several = export_answers(CONVERSATION, fmt, CONTEXT)
    assert several.filename.startswith("newsrag-conversation-20240501-120000")
    assert one.media_type and one.data


def test_context_defaults_to_now_in_utc():
    created = ExportContext().created_at
    assert created.endswith("Z") and created[:2] == "20"


# ---------------------------------------------------------------------------- markdown
def test_markdown_footnotes_carry_the_quotes_and_their_sources():
    md = text_of(export_answers([HEATING], "markdown", CONTEXT))
    assert md.startswith("# Wie stark ist der Heizölpreis im Juni 2022 gestiegen?\n")
    body = next(line for line in md.splitlines() if line.startswith("Der Preis"))
    assert "Der Preis für Heizöl stieg im Juni um 35 Prozent.[^1]" in body
    assert "[1]" not in body.replace("[^1]", "")  # the model's markers became footnotes
    assert "Goethestraße öffnet im Oktober ein Wärmeraum.[^2]" in body
    note1 = next(line for line in md.splitlines() if line.startswith("[^1]: "))
    assert f"„{QUOTE_LINDNER}“" in note1
    assert "*Energiepreise: Heizöl 35 % teurer – „Entlastung“ für Mieter & Pendler*" in note1
    assert "2022-06" in note1 and "`archiv/tagesschau/2022-06_energiepreise.txt`" in note1
    assert "<https://www.tagesschau.de/wirtschaft/energiepreise-heizoel-101.html>" in note1
    note2 = next(line for line in md.splitlines() if line.startswith("[^2]: "))
    assert f"„{QUOTE_STRASSE}“" in note2 and "S. 3" in note2 and "2022-06-14" in note2


def test_markdown_marks_unsupported_sentences_visibly():
    md = text_of(export_answers([HEATING], "markdown", CONTEXT))
    assert f"⚠ *{UNSUPPORTED}* **(nicht durch die Quellen belegt: no citation)**" in md
    english = Answer(**{**HEATING.__dict__, "language": "en"})
    assert "not supported by its sources: no citation" in text_of(
        export_answers([english], "markdown", CONTEXT)
    )


def test_markdown_escapes_article_text():
    md = text_of(export_answers([HEATING], "markdown", CONTEXT))
    # the headline's *stars* and [brackets] stay literal instead of becoming markup
    assert r"*Gaspreise: Städte planen \*Wärmeräume\* \[Eilmeldung\]*" in md
    tricky = Answer(**{**HEATING.__dict__, "question": "# 1. <b>Frage</b> mit `Code`?"})
    md = text_of(export_answers([tricky], "markdown", CONTEXT))
    assert md.startswith(r"# \# 1. \<b\>Frage\</b\> mit \`Code\`?")


def test_markdown_unanswerable_says_so_and_lists_the_nearest_passages():
    md = text_of(export_answers([NO_ANSWER], "markdown", CONTEXT))
    assert "⚠ Die Quellen beantworten diese Frage nicht." in md
    assert "Am nächsten kommen diese Passagen:" in md
    assert "1. *Ölpreis über 120 \\$ je Barrel" in md
    assert "„Ein Barrel der Sorte Brent kostete am Mittwoch mehr als 120 Dollar.“" in md


def test_markdown_conversation_numbers_footnotes_across_answers():
    md = text_of(export_answers(CONVERSATION, "markdown", CONTEXT))
    assert md.startswith("# Fragen und Antworten\n")
    assert "## Und was kostet Öl an der Börse?" in md
    definitions = [line.split(":")[0] for line in md.splitlines() if line.startswith("[^")]
    assert definitions == ["[^1]", "[^2]", "[^3]", "[^4]"]
    assert "mehr als 120 Dollar.[^3]" in md and "seit dem 1. Juni.[^4]" in md
    assert "ab" * 8 in md and "intfloat/multilingual-e5-small" in md  # provenance footer


# -------------------------------------------------------------------------------- json
def test_json_export_validates_against_the_shipped_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    doc = json.loads(export_answers(CONVERSATION, "json", CONTEXT).data)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    assert doc["schema"] == "newsrag.answer-export" and doc["version"] == 1
    assert doc["index"] == {"manifest_sha256": "ab" * 32, "path": "/data/newsrag-index"}
    assert doc["models"] == {
        "embedder": "intfloat/multilingual-e5-small",
        "generator": "gemma3-270m",
    }
    first = doc["answers"][0]
    assert first["supported"] is False and first["sentences"][3]["supported"] is False
    assert first["sentences"][3]["problems"] == ["no citation"]
    c = first["citations"][0]
    assert c["quote"] == HEIZOEL["text"][c["start"] : c["end"]] == QUOTE_LINDNER
    assert first["retrieval"]["stages"] == ["dense", "keyword", "fusion"]
    # a broken document does not validate: the schema is not a rubber stamp
    del doc["answers"][0]["citations"][0]["quote"]
    assert not validator.is_valid(doc)


def test_json_export_round_trips_through_answer_from_json():
    data = json.loads(export_answers(CONVERSATION, "json", CONTEXT).data)
    back = answers_from_json(data)
    assert back == CONVERSATION
    assert [a.retrieval for a in back] == [a.retrieval for a in CONVERSATION]
    assert back[1].sentences[0].similarity == 0.91 and back[0].evidence == 0.74
    assert back[0].passages[1].duplicates[0].source == "archiv/dpa/waerme.txt"


def test_answer_from_json_reads_ask_output_and_batch_lines():
    assert answer_from_json(HEATING.to_json()).citations == HEATING.citations
    line = {"id": 7, **FOLLOW_UP.to_json()}
    assert answer_from_json(line).question == FOLLOW_UP.question
    # dicts go straight into export_answers too
    assert (
        export_answers([HEATING.to_json()], "markdown", CONTEXT).data
        == export_answers(
            [Answer(**{**HEATING.__dict__, "evidence": None})], "markdown", CONTEXT
        ).data
    )


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d.pop("question"), "answer.question is missing"),
        (lambda d: d.update(answerable="ja"), "answer.answerable must be true or false"),
        (
            lambda d: d["citations"][0].update(start="abc"),
            "answer.citations[0].start must be an integer, got 'abc'",
        ),
        (lambda d: d.update(sentences={}), "answer.sentences must be a list of objects"),
    ],
)
def test_malformed_answer_json_is_a_clear_error(change, expected):
    data = HEATING.to_json()
    change(data)
    with pytest.raises(ConfigError) as err:
        answer_from_json(data)
    assert expected in str(err.value)
    assert "rag ask --json" in str(err.value)


def test_not_an_answer_at_all_is_a_clear_error():
    with pytest.raises(ConfigError, match="expected an object, got str"):
        answer_from_json("Heizöl")
    with pytest.raises(ConfigError, match="version 2 is not supported"):
        answers_from_json({"schema": "newsrag.answer-export", "version": 2, "answers": []})


# --------------------------------------------------------------------------------- pdf
def pdftotext(data: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: apt-get install poppler-utils")
    pdf = tmp_path / "answer.pdf"
    pdf.write_bytes(data)
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True
    )
    return " ".join(out.stdout.decode("utf-8").split())


def test_pdf_text_reads_back_with_question_quotes_and_sources(tmp_path):
    export = export_answers([HEATING], "pdf", CONTEXT)
    assert export.data.startswith(b"%PDF-") and export.media_type == "application/pdf"
    text = pdftotext(export.data, tmp_path)
    assert HEATING.question in text
    assert " ".join(f"[1] „{QUOTE_LINDNER}“".split()) in text  # umlauts and „…“ survive
    assert f"„{QUOTE_STRASSE}“" in text  # ß too
    assert "Energiepreise: Heizöl 35 % teurer – „Entlastung“ für Mieter & Pendler" in text
    assert "archiv/tagesschau/2022-06_energiepreise.txt" in text
    assert "Der Preis für Heizöl stieg im Juni um 35 Prozent.[1]" in text
    assert f"⚠ {UNSUPPORTED} (nicht durch die Quellen belegt: no citation)" in text


def test_pdf_conversation_with_an_unanswerable_question(tmp_path):
    text = pdftotext(export_answers(CONVERSATION, "pdf", CONTEXT).data, tmp_path)
    assert text.startswith("Fragen und Antworten")
    for answer in CONVERSATION:
        assert answer.question in text
    assert "⚠ Die Quellen beantworten diese Frage nicht." in text
    assert "Am nächsten kommen diese Passagen:" in text
    assert "Ölpreis über 120 $ je Barrel" in text


def test_pdf_text_layer_and_metadata_read_back_with_pypdf():
    """The same check without poppler, so it runs everywhere."""
    from io import BytesIO

    from pypdf import PdfReader

    reader = PdfReader(BytesIO(export_answers([HEATING], "pdf", CONTEXT).data))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert HEATING.question in text
    assert " ".join(f"„{QUOTE_LINDNER}“".split()) in text
    assert f"„{QUOTE_STRASSE}“" in text
    assert f"⚠ {UNSUPPORTED}" in text
    assert reader.metadata.title == HEATING.question
    assert reader.metadata["/CreationDate"].startswith("D:20240501120000")


# ------------------------------------------------------------------------ bibliography
def latex_to_text(value: str) -> str:
    """A BibTeX field back to plain text (latexcodec leaves \\$ alone)."""
    return codecs.decode(value, "ulatex").replace("\\$", "$")


def test_bibtex_parses_back_with_one_escaped_entry_per_document():
    from pybtex.database import parse_string

    bib = text_of(export_answers(CONVERSATION, "bibtex", CONTEXT))
    db = parse_string(bib, "bibtex")
    assert list(db.entries) == [
        "tagesschau2022energiepreise",
        "gaspreise2022",
        "spiegel2022oelpreis",
    ]  # the Heizöl article is cited by both answers: one entry
    oel = db.entries["spiegel2022oelpreis"]
    assert oel.type == "article"
    title = oel.fields["title"]
    assert r"\$" in title and r"\&" in title and r"\%" in title and r"\#Strom\_Tarife" in title
    assert latex_to_text(title) == "{" + OELPREIS["title"] + "}"
    assert oel.fields["journal"] == "spiegel.de"
    assert (oel.fields["year"], oel.fields["month"]) == ("2022", "6")
    assert oel.fields["url"] == OELPREIS["url"]  # verbatim: no \_ in a URL
    assert oel.fields["note"] == r"newsrag source: archiv/spiegel/oelpreis.html"
    heating = db.entries["tagesschau2022energiepreise"]
    assert latex_to_text(heating.fields["title"]) == "{" + HEIZOEL["title"] + "}"
    assert "journal" not in db.entries["gaspreise2022"].fields  # no URL, no known outlet
    assert db.entries["gaspreise2022"].fields["note"] == (
        r"newsrag source: archiv/pdf/sz\_2022-06-14.pdf"
    )


def test_bibtex_keys_are_stable_and_unique():
    twin = {**HEIZOEL, "doc_id": "99887766", "text": "Heizöl wird teurer."}
    other = Answer(**{**FOLLOW_UP.__dict__, "citations": (cite(1, twin, "Heizöl wird teurer."),)})
    from pybtex.database import parse_string

    keys = list(parse_string(text_of(export_answers([HEATING, other], "bibtex")), "bibtex").entries)
    assert keys == [
        "tagesschau2022energiepreise-a1b2c3d4",
        "gaspreise2022",
        "tagesschau2022energiepreise-99887766",
    ]
    again = list(
        parse_string(text_of(export_answers([HEATING, other], "bibtex")), "bibtex").entries
    )
    assert again == keys


def test_bibtex_of_answers_without_citations_is_an_empty_database():
    from pybtex.database import parse_string

    assert len(parse_string(text_of(export_answers([NO_ANSWER], "bibtex")), "bibtex").entries) == 0


def test_csl_json_has_date_parts_and_one_item_per_document():
    items = json.loads(export_answers(CONVERSATION, "csl", CONTEXT).data)
    assert [i["id"] for i in items] == [
        "tagesschau2022energiepreise",
        "gaspreise2022",
        "spiegel2022oelpreis",
    ]
    heating, pdf_item, oel = items
    assert heating["type"] == "article-newspaper"
    assert heating["title"] == HEIZOEL["title"]
    assert heating["issued"] == {"date-parts": [[2022, 6]]}
    assert heating["container-title"] == "tagesschau.de"
    assert heating["URL"] == HEIZOEL["url"]
    assert heating["note"] == "newsrag source: archiv/tagesschau/2022-06_energiepreise.txt"
    assert pdf_item["issued"] == {"date-parts": [[2022, 6, 14]]}
    assert "URL" not in pdf_item and "container-title" not in pdf_item
    assert oel["issued"] == {"date-parts": [[2022, 6, 8]]}


# --------------------------------------------------------------------------------- cli
def run(*args: str, input: str | None = None):
    from rag.cli import main

    return CliRunner().invoke(main, ["export", *args], input=input)


def test_cli_exports_saved_answer_json(tmp_path):
    saved = tmp_path / "answer.json"
    saved.write_text(json.dumps(HEATING.to_json(), ensure_ascii=False), encoding="utf-8")
    result = run("--from-json", str(saved), "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Wie stark ist der Heizölpreis")
    assert f"„{QUOTE_LINDNER}“" in result.stdout


def test_cli_exports_batch_jsonl_to_a_file(tmp_path):
    saved = tmp_path / "answers.jsonl"
    lines = [
        json.dumps({"id": i, **a.to_json()}, ensure_ascii=False) for i, a in enumerate(CONVERSATION)
    ]
    saved.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "quellen.bib"
    result = run("--from-json", str(saved), "-f", "bibtex", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stderr
    assert out.read_text(encoding="utf-8").count("@article{") == 3


def test_cli_writes_the_default_file_name_into_a_folder(tmp_path):
    saved = tmp_path / "export.json"
    saved.write_bytes(export_answers(CONVERSATION, "json", CONTEXT).data)
    result = run("--from-json", str(saved), "-f", "pdf", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    written = list(tmp_path.glob("newsrag-conversation-*.pdf"))
    assert len(written) == 1 and written[0].read_bytes().startswith(b"%PDF-")


def test_cli_reads_standard_input():
    result = run("--from-json", "-", "-f", "csl", input=json.dumps(FOLLOW_UP.to_json()))
    assert result.exit_code == 0, result.output
    assert [i["id"] for i in json.loads(result.stdout)] == [
        "spiegel2022oelpreis",
        "tagesschau2022energiepreise",
    ]


def test_cli_asks_and_exports_with_the_index_context(tmp_path, monkeypatch):
    """`rag export QUESTION` asks the engine, then records its context (no model: a stand-in
    engine; the real `Engine.ask` is tested with the real models elsewhere)."""
    import rag.engine

    asked = []

    class StandIn:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def ask(self, question, filters=None, history=None, *, mode=None):
            asked.append((question, mode))
            return HEATING

        def export(self, answers, fmt):
            return export_answers(answers, fmt, CONTEXT)

    monkeypatch.setattr(rag.engine.Engine, "open", classmethod(lambda cls, path=None: StandIn()))
    out = tmp_path / "antwort.json"
    result = run(
        HEATING.question, "--index", str(tmp_path), "--mode", "quote", "-f", "json", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    assert asked == [(HEATING.question, "quote")]
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["index"]["manifest_sha256"] == "ab" * 32
    assert doc["answers"][0]["question"] == HEATING.question


def test_cli_errors_are_one_clean_line(tmp_path):
    bad = tmp_path / "answers.jsonl"
    bad.write_text(json.dumps(HEATING.to_json()) + "\n{kaputt\n", encoding="utf-8")
    result = run("--from-json", str(bad), "-f", "markdown")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {bad}:2: not JSON")
    assert "Traceback" not in result.output

    incomplete = tmp_path / "answer.json"
    incomplete.write_text(json.dumps({"question": "Was?"}), encoding="utf-8")
    result = run("--from-json", str(incomplete), "-f", "json")
    assert result.exit_code == 1
    assert "answer.answer is missing" in result.stderr

    result = run("--from-json", str(incomplete), "-f", "docx")
    assert result.exit_code == 2 and "'docx' is not one of" in result.output

    result = run("Frage?", "--from-json", str(incomplete), "-f", "json")
    assert result.exit_code == 1 and "not both" in result.stderr


def test_the_export_formats_are_the_vocabulary():
    from rag.export import FORMATS
    from rag.vocabulary import EXPORT_FORMATS

    assert tuple(FORMATS) == EXPORT_FORMATS
