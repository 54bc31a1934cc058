"""Ingest: finding files, reading every format, metadata, and clear problems for bad input."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.chunking import chunk_text, count_words
from rag.ingest import SUPPORTED_SUFFIXES, FileBatch, discover, read_file
from tests.rag.hostile import make_pdf

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
SEED_NAMES = sorted(p.name for p in SEEDS.glob("*.txt"))


def sha16(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_one(path: Path, source: str | None = None, **kwargs: object) -> FileBatch:
    return read_file(path, source or path.name, **kwargs)  # type: ignore[arg-type]


def only_problem(batch: FileBatch) -> str:
    assert batch.documents == ()
    assert len(batch.problems) == 1
    return batch.problems[0].message


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def rewrite_pdf(
    data: bytes,
    *,
    metadata: dict[str, str] | None = None,
    password: str | None = None,
    algorithm: str = "RC4-128",
) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    if metadata:
        writer.add_metadata(metadata)
    if password:
        writer.encrypt(password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


PAGE_1 = "Erste Seite über die Verhandlungen.\nDer Minister sprach am 3. Juni in Berlin."
PAGE_2 = "Zweite Seite mit dem Ergebnis.\nAlle Seiten stimmten zu."


# --- discover -----------------------------------------------------------------------------------


def test_supported_suffixes() -> None:
    assert SUPPORTED_SUFFIXES == frozenset(
        {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl"}
    )


def test_discover_a_folder_names_files_relative_to_how_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    monkeypatch.chdir(tmp_path)
    files, problems = discover(["seeds/"])
    assert problems == []
    assert [source for _, source in files] == [f"seeds/{name}" for name in SEED_NAMES]
    assert all(path.is_file() for path, _ in files)


def test_discover_recurses_sorted_skips_hidden_and_reports_unsupported(tmp_path: Path) -> None:
    write(tmp_path / "news" / "b.txt", "B.")
    write(tmp_path / "news" / "a" / "z.md", "# Z")
    write(tmp_path / "news" / "a" / "y.HTML", "<p>Y</p>")
    write(tmp_path / "news" / ".hidden.txt", "hidden")
    write(tmp_path / "news" / ".git" / "c.txt", "hidden folder")
    write(tmp_path / "news" / "photo.jpg", b"\xff\xd8")
    files, problems = discover([tmp_path / "news"])
    base = (tmp_path / "news").as_posix()
    assert [source for _, source in files] == [
        f"{base}/a/y.HTML",
        f"{base}/a/z.md",
        f"{base}/b.txt",
    ]
    assert len(problems) == 1
    assert problems[0].source == f"{base}/photo.jpg"
    assert "photo.jpg: unsupported file type '.jpg'" in problems[0].message
    assert ".pdf" in problems[0].message and ".jsonl" in problems[0].message


def test_discover_reports_missing_paths_unknown_extensions_and_empty_folders(
    tmp_path: Path,
) -> None:
    named = write(tmp_path / "notes.docx", b"PK")
    (tmp_path / "empty").mkdir()
    files, problems = discover([tmp_path / "missing.txt", named, tmp_path / "empty"])
    assert files == []
    messages = [p.message for p in problems]
    assert "missing.txt: no such file or folder" in messages[0]
    assert "notes.docx: unsupported file type '.docx'" in messages[1]
    assert "supported: .htm, .html, .jsonl, .markdown, .md, .pdf, .txt" in messages[1]
    assert "empty: folder has no files to read" in messages[2]


def test_discover_lists_a_file_reached_twice_once(tmp_path: Path) -> None:
    one = write(tmp_path / "d" / "one.txt", "Eins.")
    files, _ = discover([tmp_path / "d", one])
    assert [path for path, _ in files] == [one]


# --- plain text: the seeds ----------------------------------------------------------------------


def test_seed_date_header_is_metadata_not_body() -> None:
    raw = (SEEDS / SEED_NAMES[0]).read_text(encoding="utf-8")
    assert raw.startswith(" date 2023-06 Mit Spannung")
    doc = read_one(SEEDS / SEED_NAMES[0], f"seeds/{SEED_NAMES[0]}").documents[0]
    assert doc.date == "2023-06"
    assert doc.text.startswith("Mit Spannung blickt der NATO-Generalsekretär an die Front.")
    assert "date 2023-06" not in doc.text
    assert doc.doc_id == sha16(f"seeds/{SEED_NAMES[0]}")
    assert doc.source == f"seeds/{SEED_NAMES[0]}"
    assert doc.language == "de"
    # The first line is a long paragraph: its first sentence is the title.
    assert doc.title == "Mit Spannung blickt der NATO-Generalsekretär an die Front"


def test_seed_titles_dates_and_languages() -> None:
    docs = [read_one(SEEDS / name).documents[0] for name in SEED_NAMES]
    assert [d.date for d in docs] == ["2023-06", "2022-06", "2022-06", None, None]
    assert (
        docs[1].title == "Nato-Generalsekretär überzeugt: „Krieg wird am Verhandlungstisch beendet“"
    )
    assert docs[3].title == "NATO wird bereit sein, wenn Russland-Gespräche scheitern – POLITICO"
    assert all(d.language == "de" for d in docs)
    assert all(not d.text.lstrip().startswith("date ") for d in docs)
    assert len({d.doc_id for d in docs}) == 5


def test_every_passage_of_every_seed_has_exact_offsets() -> None:
    for name in SEED_NAMES:
        doc = read_one(SEEDS / name).documents[0]
        passages = chunk_text(doc.text, count_words, max_tokens=80, language=doc.language)
        assert len(passages) >= 2
        for p in passages:
            assert doc.text[p.start : p.end] == p.text


@pytest.mark.parametrize(
    ("header", "date"),
    [
        (" date 2022 ", "2022"),
        (" date 2022-06 ", "2022-06"),
        ("date 2022-06-01\n", "2022-06-01"),
        ("date: 2021-11-30 ", "2021-11-30"),
    ],
)
def test_partial_dates_in_the_header(tmp_path: Path, header: str, date: str) -> None:
    doc = read_one(write(tmp_path / "a.txt", header + "Der Text beginnt hier.")).documents[0]
    assert (doc.date, doc.text) == (date, "Der Text beginnt hier.")


def test_a_word_date_at_the_start_is_body_text_when_no_date_follows(tmp_path: Path) -> None:
    doc = read_one(write(tmp_path / "a.txt", "date night is fun.")).documents[0]
    assert (doc.date, doc.text) == (None, "date night is fun.")


def test_title_falls_back_to_the_file_stem(tmp_path: Path) -> None:
    long_sentence = " ".join(["wort"] * 60) + "."
    doc = read_one(write(tmp_path / "bericht-2023.txt", long_sentence)).documents[0]
    assert doc.title == "bericht-2023"


def test_english_text_is_detected(tmp_path: Path) -> None:
    text = "The secretary general said on Friday that the alliance is ready for talks."
    assert read_one(write(tmp_path / "en.txt", text)).documents[0].language == "en"


def test_utf8_bom_and_windows_newlines_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.txt", b"\xef\xbb\xbfTitel\r\n\r\nK\xc3\xb6rper des Textes.\r\n")
    doc = read_one(path).documents[0]
    assert doc.text == "Titel\n\nKörper des Textes."
    assert doc.title == "Titel"


# --- markdown -----------------------------------------------------------------------------------


def test_markdown_front_matter_gives_title_and_date(tmp_path: Path) -> None:
    text = '---\ntitle: "Gipfel in Vilnius"\ndate: 2023-07\n---\n# Überschrift\n\nDer **Text**.\n'
    doc = read_one(write(tmp_path / "a.md", text)).documents[0]
    assert (doc.title, doc.date) == ("Gipfel in Vilnius", "2023-07")
    assert doc.text == "# Überschrift\n\nDer **Text**."


def test_markdown_first_heading_is_the_title(tmp_path: Path) -> None:
    text = "Vorspann ohne Titel.\n\n# Die *echte* Überschrift\n\nText."
    doc = read_one(write(tmp_path / "a.markdown", text)).documents[0]
    assert doc.title == "Die echte Überschrift"
    assert doc.text == text


# --- HTML ---------------------------------------------------------------------------------------

NEWS_PAGE = """<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8">
<title>Stoltenberg erwartet Verhandlungen | Beispiel-Zeitung</title>
<meta property="og:title" content="Stoltenberg erwartet Verhandlungen mit Russland">
<meta property="og:site_name" content="Beispiel-Zeitung">
<meta property="article:published_time" content="2023-06-14T08:30:00+02:00">
<link rel="canonical" href="https://example.org/politik/stoltenberg">
</head><body>
<header><nav><ul><li><a href="/">Startseite</a></li><li><a href="/sport">Sport</a></li></ul>
</nav></header>
<div class="cookie">Wir verwenden Cookies. <button>Akzeptieren</button></div>
<main><article>
<h1>Stoltenberg erwartet Verhandlungen mit Russland</h1>
<p>NATO-Generalsekretär Jens Stoltenberg hofft darauf, dass die ukrainische Gegenoffensive
Russland an den Verhandlungstisch zwingen wird. Das sagte er am 14. Juni in Brüssel.</p>
<p>"Je mehr Land die Ukrainer gewinnen, desto wahrscheinlicher ist es, dass Präsident Wladimir
Putin verstehen wird, dass er sich an den Verhandlungstisch setzen muss", sagte Stoltenberg.</p>
<p>Auch US-Außenminister Antony Blinken sieht den Frieden näher rücken.</p>
</article>
<aside><h3>Mehr zum Thema</h3><ul><li><a href="/a">Ukraine: Neue Angriffe</a></li></ul></aside>
</main>
<footer><p>© 2023 Beispiel-Zeitung. Impressum. Datenschutz.</p></footer>
</body></html>"""


def test_html_news_page_main_text_and_metadata(tmp_path: Path) -> None:
    doc = read_one(write(tmp_path / "artikel.html", NEWS_PAGE)).documents[0]
    assert doc.title == "Stoltenberg erwartet Verhandlungen mit Russland"
    assert doc.date == "2023-06-14"
    assert doc.url == "https://example.org/politik/stoltenberg"
    assert doc.language == "de"
    assert doc.metadata["site_name"] == "Beispiel-Zeitung"
    assert "Das sagte er am 14. Juni in Brüssel." in doc.text
    assert "Antony Blinken sieht den Frieden" in doc.text
    for boilerplate in ("Startseite", "Cookies", "Impressum", "Neue Angriffe", "<p>"):
        assert boilerplate not in doc.text
    # Paragraphs are separated by blank lines, which the chunker prefers as breaks.
    assert 'Brüssel.\n\n"Je mehr Land' in doc.text


def test_html_tiny_page_uses_title_tag_and_meta_date(tmp_path: Path) -> None:
    page = (
        '<html><head><title>Kurzmeldung</title><meta name="date" content="2021-03-04">'
        "</head><body><p>Ein sehr kurzer Text.</p></body></html>"
    )
    doc = read_one(write(tmp_path / "kurz.htm", page)).documents[0]
    assert (doc.title, doc.date, doc.text) == ("Kurzmeldung", "2021-03-04", "Ein sehr kurzer Text.")


def test_html_in_a_declared_latin1_charset_is_read(tmp_path: Path) -> None:
    page = (
        '<html><head><meta charset="iso-8859-1"><title>Grüße</title></head>'
        "<body><p>Schöne Grüße aus München.</p></body></html>"
    )
    doc = read_one(write(tmp_path / "alt.html", page.encode("latin-1"))).documents[0]
    assert doc.text == "Schöne Grüße aus München."


def test_html_without_text_is_a_problem(tmp_path: Path) -> None:
    page = "<html><head><script>var x = 1;</script></head><body></body></html>"
    message = only_problem(read_one(write(tmp_path / "leer.html", page)))
    assert message.startswith("leer.html: no text left after extraction")


# --- PDF ----------------------------------------------------------------------------------------


def test_pdf_pages_title_and_date(tmp_path: Path) -> None:
    data = rewrite_pdf(
        make_pdf([PAGE_1, PAGE_2]),
        metadata={"/Title": "Bericht aus Berlin", "/CreationDate": "D:20220601093000+02'00'"},
    )
    doc = read_one(write(tmp_path / "bericht.pdf", data)).documents[0]
    assert (doc.title, doc.date, doc.language) == ("Bericht aus Berlin", "2022-06-01", "de")
    assert [(page, doc.text[s:e]) for page, s, e in doc.pages] == [(1, PAGE_1), (2, PAGE_2)]
    passages = chunk_text(doc.text, count_words, max_tokens=8, overlap_sentences=0, pages=doc.pages)
    assert [(p.text, p.page) for p in passages] == [
        ("Erste Seite über die Verhandlungen.", 1),
        ("Der Minister sprach am 3. Juni in Berlin.", 1),
        ("Zweite Seite mit dem Ergebnis.", 2),
        ("Alle Seiten stimmten zu.", 2),
    ]


def test_pdf_without_title_is_named_after_its_file(tmp_path: Path) -> None:
    doc = read_one(write(tmp_path / "protokoll-12.pdf", make_pdf([PAGE_1]))).documents[0]
    assert (doc.title, doc.date) == ("protokoll-12", None)


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128"])
def test_encrypted_pdf_needs_its_password(tmp_path: Path, algorithm: str) -> None:
    if algorithm.startswith("AES"):
        pytest.importorskip("cryptography")
    data = rewrite_pdf(make_pdf([PAGE_1]), password="geheim", algorithm=algorithm)
    path = write(tmp_path / "geheim.pdf", data)
    message = only_problem(read_one(path))
    assert message == (
        "geheim.pdf: is encrypted; index it with its open password (`rag index --password`), "
        "or upload a decrypted copy (an upload cannot carry a password)"
    )
    wrong = only_problem(read_one(path, password="falsch"))
    assert wrong == (
        "geheim.pdf: the password does not open this encrypted PDF; check `rag index --password`"
    )
    doc = read_one(path, password="geheim").documents[0]
    assert doc.text == PAGE_1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (lambda pdf: pdf[: len(pdf) // 2], "truncated.pdf: cannot be read as a PDF"),
        (lambda pdf: b"Dies ist kein PDF.", "truncated.pdf: is not a PDF (no %PDF- header)"),
    ],
)
def test_damaged_pdf_is_a_problem(
    tmp_path: Path, content: Callable[[bytes], bytes], expected: str
) -> None:
    path = write(tmp_path / "truncated.pdf", content(make_pdf([PAGE_1, PAGE_2])))
    assert only_problem(read_one(path)).startswith(expected)


def test_pdf_without_text_is_a_problem_suggesting_ocr(tmp_path: Path) -> None:
    message = only_problem(read_one(write(tmp_path / "scan.pdf", make_pdf([""]))))
    assert message.startswith("scan.pdf: no text left after extraction")
    assert "OCR" in message


# --- JSONL --------------------------------------------------------------------------------------


def test_jsonl_reads_good_lines_and_reports_each_bad_line(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a1", "title": "Erster", "date": "2022-06", "text": "Erster Artikel."}),
        "{not json",
        json.dumps({"id": 42, "text": "The second article is in English.", "language": "EN"}),
        json.dumps({"title": "Ohne Text"}),
        "",
        json.dumps(["eine", "Liste"]),
        json.dumps({"text": "Dritter Artikel ohne id.", "source": "tagesschau.de", "split": "dev"}),
        json.dumps({"id": "a1", "text": "Doppelte id."}),
    ]
    path = write(tmp_path / "archiv.jsonl", "\n".join(lines) + "\n")
    batch = read_one(path)
    docs = batch.documents
    assert [d.doc_id for d in docs] == ["a1", "42", sha16("archiv.jsonl#7")]
    assert [(d.title, d.date) for d in docs] == [
        ("Erster", "2022-06"),
        ("The second article is in English.", None),
        ("Dritter Artikel ohne id.", None),
    ]
    assert docs[1].language == "en"
    assert [d.source for d in docs] == ["archiv.jsonl#1", "archiv.jsonl#3", "tagesschau.de"]
    assert docs[2].metadata == {
        "format": "jsonl",
        "split": "dev",
        "file": "archiv.jsonl",
        "line": 7,
    }
    assert [p.line for p in batch.problems] == [2, 4, 6, 8]
    problems = {p.line: p.message for p in batch.problems}
    assert problems[2].startswith("archiv.jsonl line 2: not valid JSON")
    assert problems[4].startswith('archiv.jsonl line 4: no "text"')
    assert problems[6].startswith("archiv.jsonl line 6: a JSON list, not an object")
    assert problems[8].startswith('archiv.jsonl line 8: duplicate id "a1" (first on line 1)')
    assert all(p.source == "archiv.jsonl" for p in batch.problems)


@pytest.mark.parametrize(
    ("value", "date"),
    [
        ("2022", "2022"),
        ("2022-06", "2022-06"),
        ("2022-06-01T10:00:00Z", "2022-06-01"),
        (2019, "2019"),
        ("01.06.2022", "2022-06-01"),
        ("", None),
        (None, None),
    ],
)
def test_jsonl_dates_are_iso_and_may_be_partial(
    tmp_path: Path, value: object, date: str | None
) -> None:
    path = write(tmp_path / "d.jsonl", json.dumps({"text": "Ein Text.", "date": value}))
    assert read_one(path).documents[0].date == date


@pytest.mark.parametrize("value", ["bald", "2022-13", "31.02.2022"])
def test_an_unreadable_jsonl_date_is_a_problem_and_the_other_lines_are_read(
    tmp_path: Path, value: str
) -> None:
    lines = [{"text": "Gut.", "date": "2022"}, {"text": "Schlecht.", "date": value}]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(x) for x in lines))
    batch = read_one(path)
    assert [d.text for d in batch.documents] == ["Gut."]
    (problem,) = batch.problems
    assert problem.line == 2 and f'unreadable "date" {value!r}' in problem.message
    assert "YYYY-MM-DD" in problem.message


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["leer.txt", "leer.md", "leer.html", "leer.pdf", "leer.jsonl"])
def test_empty_files_are_problems(tmp_path: Path, name: str) -> None:
    message = only_problem(read_one(write(tmp_path / name, b"  \n")))
    assert message == f"{name}: the file is empty; nothing to index, remove it or fill it"


@pytest.mark.parametrize("name", ["bild.txt", "bild.md", "bild.html", "bild.jsonl"])
def test_binary_files_are_problems(tmp_path: Path, name: str) -> None:
    message = only_problem(read_one(write(tmp_path / name, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")))
    assert message.startswith(f"{name}: looks binary (contains NUL bytes)")


def test_latin1_text_is_a_problem_that_suggests_iconv(tmp_path: Path) -> None:
    path = write(tmp_path / "alt.txt", "Grüße aus München.".encode("latin-1"))
    message = only_problem(read_one(path))
    assert message.startswith("alt.txt: is not valid UTF-8 (byte 0xfc at offset 2)")
    assert "iconv -f latin1 -t utf-8" in message


def test_file_over_max_bytes_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "gross.txt", "Ein Satz. " * 200)
    message = only_problem(read_one(path, max_bytes=1000))
    assert message == (
        "gross.txt: is 0.0 MB, over the 0.0 MB limit; split it into smaller files or raise "
        "chunking.max_file_bytes (RAG_CHUNKING__MAX_FILE_BYTES)"
    )


def test_missing_and_unsupported_files_are_problems_from_read_file(tmp_path: Path) -> None:
    assert only_problem(read_one(tmp_path / "weg.txt")) == "weg.txt: file not found; check the path"
    message = only_problem(read_one(write(tmp_path / "tabelle.xlsx", b"PK")))
    assert message.startswith("tabelle.xlsx: unsupported file type '.xlsx'; supported:")


def test_text_of_only_a_date_header_is_a_problem(tmp_path: Path) -> None:
    message = only_problem(read_one(write(tmp_path / "nur-datum.txt", " date 2023-06 ")))
    assert message.startswith("nur-datum.txt: no text left after extraction")


def test_jsonl_bad_types_and_lone_surrogates_are_one_problem_each(tmp_path):
    """A line whose known field is a list, or whose text holds a lone surrogate (valid JSON,
    not Unicode), is one problem naming the field; the other lines are read."""
    from rag.ingest.jsonl import parse_jsonl

    raw = (
        b'{"text": "Erster Artikel."}\n'
        b'{"text": "Kaputt \\ud800 hier."}\n'
        b'{"text": "Zweiter.", "title": ["a", "b"]}\n'
        b'{"text": "Dritter.", "id": 7, "date": 2022}\n'
        b'{"text": "Vierter.", "id": "\\udfff"}\n'
    )
    documents, problems = parse_jsonl(raw, "feed.jsonl")
    assert [d.text for d in documents] == ["Erster Artikel.", "Dritter."]
    assert documents[1].doc_id == "7" and documents[1].date == "2022"
    assert [(p.line, p.message.split(": ", 1)[1][:24]) for p in problems] == [
        (2, '"text" holds an invalid '),
        (3, '"title" must be a string'),
        (5, '"id" holds an invalid ch'),
    ]


# --- PDF time limit -------------------------------------------------------------------------


def slow_pdf() -> bytes:
    """A valid PDF whose text takes pypdf about 14 s to extract (200,000 text lines)."""
    return make_pdf(["\n".join(["ab"] * 200_000)])


def test_a_pdf_slower_than_pdf_seconds_is_a_problem_and_the_next_pdf_reads(
    tmp_path: Path,
) -> None:
    import time

    slow = write(tmp_path / "langsam.pdf", slow_pdf())
    started = time.perf_counter()
    message = only_problem(read_one(slow, pdf_seconds=2.0))
    assert time.perf_counter() - started < 10  # stopped, not waited for (~14 s)
    assert message == (
        "langsam.pdf: took longer than 2 s to read; raise chunking.pdf_seconds "
        "(RAG_CHUNKING__PDF_SECONDS) or split/repair the PDF (e.g. with qpdf, or print it to a "
        "new PDF)"
    )
    # The stopped worker is replaced: a normal PDF reads, as it does in-process (None).
    normal = write(tmp_path / "normal.pdf", make_pdf([PAGE_1, PAGE_2]))
    assert read_one(normal, pdf_seconds=2.0).documents[0].text == f"{PAGE_1}\n\n{PAGE_2}"
    assert read_one(normal, pdf_seconds=None).documents[0].pages == ((1, 0, 77), (2, 79, 134))


def test_a_slow_pdf_is_one_problem_in_rag_index_and_the_rest_is_indexed(
    tmp_path: Path, settings, fake_embedder
) -> None:
    from rag.engine import Engine

    folder = tmp_path / "archiv"
    write(folder / "a_langsam.pdf", slow_pdf())
    write(folder / "b_bericht.pdf", make_pdf([PAGE_1]))
    write(folder / "c_notiz.txt", "Eine kurze Notiz über die Verhandlungen.")
    fast = settings.model_copy(
        update={"chunking": settings.chunking.model_copy(update={"pdf_seconds": 2.0})}
    )
    with Engine.open(tmp_path / "idx", fast, embedder=fake_embedder) as engine:
        report = engine.add([folder])
        sources = sorted(d["source"] for d in engine.documents())
    assert [(p.source, p.message.split(";")[0]) for p in report.problems] == [
        (f"{folder.as_posix()}/a_langsam.pdf", f"{folder.as_posix()}/a_langsam.pdf: took longer "
         "than 2 s to read"),
    ]  # fmt: skip
    assert sources == [f"{folder.as_posix()}/b_bericht.pdf", f"{folder.as_posix()}/c_notiz.txt"]


def test_pdf_seconds_is_a_bounded_setting(settings, monkeypatch) -> None:
    from rag.errors import ConfigError
    from rag.settings import load_settings

    assert settings.chunking.pdf_seconds == 30.0
    monkeypatch.setenv("RAG_CHUNKING__PDF_SECONDS", "2.5")
    assert load_settings().chunking.pdf_seconds == 2.5
    with pytest.raises(ConfigError, match="chunking.pdf_seconds"):
        load_settings(chunking={"pdf_seconds": 0})


def test_a_crashed_pdf_worker_is_one_problem_and_is_replaced(tmp_path: Path) -> None:
    from rag.errors import IngestError
    from rag.ingest.pdf_worker import _Worker

    worker = _Worker()
    worker.process.kill()  # as the out-of-memory killer would
    worker.process.wait()
    with pytest.raises(IngestError, match=r"^kaputt\.pdf: the PDF reader crashed on this file"):
        worker.run(make_pdf([PAGE_1]), "kaputt.pdf", None, 5.0)
    assert not worker.alive()


def test_pdf_worker_warnings_reach_the_callers_log(tmp_path: Path, caplog) -> None:
    path = write(tmp_path / "angehängt.pdf", make_pdf([PAGE_1]) + b"%%EOF\n" * 3)
    with caplog.at_level("WARNING"):
        assert read_one(path).documents[0].text == PAGE_1
    assert any(r.name.startswith("pypdf") for r in caplog.records), caplog.records


# --- hostile input the fuzz found (tests/rag/test_fuzz.py) -----------------------------------


def test_jsonl_lines_that_crashed_the_reader_are_one_problem_each() -> None:
    """Thousands of nesting levels (RecursionError), a 5,000-digit number (ValueError), and
    extra fields that could not be stored (NaN, a lone surrogate, deep nesting) failed the
    whole write before; now each is its line's problem."""
    from rag.ingest.jsonl import parse_jsonl

    raw = b"\n".join(
        [
            b'{"text": "Erster Artikel."}',
            b"[" * 100_000,
            b'{"text": "x", "extra": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            b'{"text": "x", "id": ' + b"9" * 5000 + b"}",
            b'{"text": "x", "score": NaN}',
            b'{"text": "x", "note": "\\udc00"}',
            b'{"text": "x", "\\ud800": 1}',
            b'{"text": "x", "tree": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",
            b'{"text": "Letzter Artikel.", "split": {"a": [1, 2.5, null]}}',
            b"\x00",
        ]
    )
    documents, problems = parse_jsonl(raw, "feed.jsonl")
    assert [d.text for d in documents] == ["Erster Artikel.", "Letzter Artikel."]
    assert documents[1].metadata["split"] == {"a": [1, 2.5, None]}
    assert [(p.line, p.message.split(": ", 1)[1][:36]) for p in problems] == [
        (2, "JSON nested too deeply to read (abou"),
        (3, "JSON nested too deeply to read (abou"),
        (4, "holds a number too long to read (Exc"),
        (5, '"score" holds nan (not a finite numb'),
        (6, '"note" holds an invalid character (a'),
        (7, '"\\ud800" holds an invalid character '),
        (8, '"tree" is nested more than 32 levels'),
        (10, "not valid JSON (Expecting value at c"),
    ]


@pytest.mark.parametrize("charset", ["rot13", "zlib", "base64", "undefined", "utf-7"])
def test_html_declaring_a_charset_that_is_no_text_codec_is_a_problem(
    tmp_path: Path, charset: str
) -> None:
    page = f"<html><head><meta charset='{charset}'></head><body><p>Text +2AA-</p></body></html>"
    path = write(tmp_path / "seite.html", page.encode() + b"\xff")
    message = only_problem(read_one(path))
    assert message.startswith("seite.html: is neither UTF-8 nor the declared charset")


def test_lone_surrogates_a_parser_lets_through_become_replacement_characters() -> None:
    """The last net before the index (which stores UTF-8): whatever a parser (pypdf, lxml, a
    declared codec such as utf-7) returns, every string of a Document is valid Unicode."""
    from rag.ingest.metadata import Extracted, to_document

    extracted = Extracted(
        text="Die Verhandlungen in Genf \ud800 dauerten bis in die Nacht.",
        title="Gipfel \udc00",
        metadata={"author": "Anna \udfff", "page_count": 1},
    )
    doc = to_document(extracted, doc_id="x", source="x.pdf", fallback_title="x")
    assert doc.text == "Die Verhandlungen in Genf \ufffd dauerten bis in die Nacht."
    assert (doc.title, doc.metadata) == (
        "Gipfel \ufffd",
        {"author": "Anna \ufffd", "page_count": 1},
    )


def test_an_rfc2822_date_with_an_absurd_year_is_unreadable_not_a_crash() -> None:
    from rag.ingest.metadata import normalise_date

    assert normalise_date("Mon, 01 Jan 99999999999 00:00:00 +0000") is None
    assert normalise_date("२०२२-०६-०१") == "2022-06-01"  # any digits, written as ASCII


@pytest.mark.parametrize(
    "content",
    [
        "a" + "." * 100_000 + "b",  # sentence splitting was quadratic in a run of periods
        "# " + "#" * 100_000 + "a\n\nText.",  # the Markdown heading pattern too
        "---\nnote: x" + " " * 100_000 + "y\n---\nText.",  # and a front matter field
    ],
)
def test_pathological_lines_are_read_in_linear_time(tmp_path: Path, content: str) -> None:
    import time

    path = write(tmp_path / "zeile.md", content)
    started = time.perf_counter()
    batch = read_one(path)
    chunk_text(batch.documents[0].text, count_words)
    assert time.perf_counter() - started < 3  # minutes before


def test_a_100k_letter_word_is_cut_into_bounded_passages(
    tmp_path: Path, settings, fake_embedder
) -> None:
    """A word counter sees one token in 100,000 letters; German compound splitting of such a
    passage exhausted the recursion limit and failed the whole add."""
    from rag.chunking import MAX_WORD_CHARS
    from rag.engine import Engine

    text = "Vorwort. " + "hausboot" * 12_500 + " Nachwort."
    passages = chunk_text(text, count_words)
    assert max(len(p.text) for p in passages) <= MAX_WORD_CHARS
    assert "".join(p.text for p in passages[1:-1]) == "hausboot" * 12_500

    write(tmp_path / "in" / "wort.txt", text)
    with Engine.open(tmp_path / "idx", settings, embedder=fake_embedder) as engine:
        report = engine.add([tmp_path / "in"])
    assert (report.added, report.problems) == (1, ())
