"""The JSON export (schema "newsrag.answer-export", version 1) and the way back: answer JSON
(what `rag ask --json` prints, or an export's `answers` items) rebuilt into `Answer`s.

The export document, described field by field in `answer-export.schema.json` beside this file:

    {"schema": "newsrag.answer-export", "version": 1, "answer_version": 1,
     "created_at": "2024-05-01T12:00:00Z",
     "index": {"manifest_sha256", "path"}, "models": {"embedder", "generator"},
     "answers": [Answer.to_json() + {"supported", "evidence"}, ...]}

Each sentence also carries its "similarity" when it has one, each passage its "page" and
"language", each duplicate its "chunk_id". `models.generator` is the one answer model the
answers name (null when none does, or several do: each answer keeps its own "model").
Readers must ignore keys they do not know; a change that breaks readers bumps "version".

`hit_record` and `answer_record` go one step further, for a remote `rag.client.Client`: every
field the dataclasses compare on (a hit's exact score and url too), so that `hit_from_json`
and `answer_from_json` rebuild dataclasses equal to the ones encoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.answer.types import SCHEMA_VERSION, Answer, AnswerSentence, Citation, Phrase
from rag.errors import ConfigError
from rag.export.types import ExportContext
from rag.types import DuplicateSource, Hit

SCHEMA_NAME = "newsrag.answer-export"
EXPORT_VERSION = 1
"""Version of the export document (bumped on any change that breaks its readers)."""

SHAPE_HINT = (
    "expected one answer object as `rag ask --json` prints it (keys question, answer, "
    "answerable, mode, sentences, citations), a list of them, or a newsrag JSON export"
)


def schema_path() -> Path:
    """The JSON Schema (draft 2020-12) of the export document."""
    return Path(__file__).with_name("answer-export.schema.json")


def export_document(answers: Sequence[Answer], context: ExportContext) -> dict[str, Any]:
    """The export document for `answers` (in order) as plain JSON data."""
    models = {a.model for a in answers if a.model}
    return {
        "schema": SCHEMA_NAME,
        "version": EXPORT_VERSION,
        "answer_version": SCHEMA_VERSION,
        "created_at": context.created_at,
        "index": {"manifest_sha256": context.index_manifest_sha256, "path": context.index_path},
        "models": {
            "embedder": context.embedder,
            "generator": models.pop() if len(models) == 1 else None,
        },
        "answers": [answer_entry(a) for a in answers],
    }


def answer_entry(answer: Answer) -> dict[str, Any]:
    """`Answer.to_json()` plus what the export keeps beyond it (overall verdict, evidence,
    sentence similarities, passages' page and language, duplicates' chunk ids)."""
    entry = answer.to_json()
    entry["supported"] = answer.supported
    entry["evidence"] = answer.evidence
    for item, sentence in zip(entry["sentences"], answer.sentences):
        if sentence.similarity is not None:
            item["similarity"] = sentence.similarity
    for item, hit in zip(entry["passages"], answer.passages):
        item.update({k: v for k, v in (("page", hit.page), ("language", hit.language)) if v})
        for dup_item, dup in zip(item.get("duplicates", []), hit.duplicates):
            dup_item["chunk_id"] = dup.chunk_id
    return entry


def hit_record(hit: Hit) -> dict[str, Any]:
    """`Hit.to_json()` plus the rest of what a `Hit` compares on: its exact score, page,
    language and url (when set), duplicates' chunk ids. `hit_from_json` reads it back."""
    entry = hit.to_json()
    entry["score"] = float(hit.score)
    extra = (("page", hit.page), ("language", hit.language), ("url", hit.url))
    entry.update({k: v for k, v in extra if v is not None})
    for dup_item, dup in zip(entry["duplicates"], hit.duplicates):
        dup_item["chunk_id"] = dup.chunk_id
    return entry


def answer_record(answer: Answer) -> dict[str, Any]:
    """`answer_entry` with each passage as `hit_record`: all an `Answer` compares on, so that
    `answer_from_json` rebuilds an equal `Answer` (the HTTP API's `"full": true`)."""
    entry = answer_entry(answer)
    entry["passages"] = [hit_record(h) for h in answer.passages]
    return entry


def answers_from_json(data: Any) -> list[Answer]:
    """Answers from parsed JSON: one answer object, a list of them, or an export document."""
    if isinstance(data, Mapping) and "schema" in data:
        return _from_export(data)
    if isinstance(data, list):
        return [answer_from_json(item, where=f"[{i}]") for i, item in enumerate(data)]
    return [answer_from_json(data)]


def answer_from_json(data: Any, where: str = "answer") -> Answer:
    """Rebuild an `Answer` (with its sentences, citations and passages) from its JSON shape.

    Unknown keys are ignored (a batch line's "id", fields of newer versions); a missing or
    mistyped field is a `ConfigError` that names it.
    """
    if isinstance(data, Mapping) and isinstance(data.get("answer"), Mapping):
        data = data["answer"]  # a wrapper like {"id": ..., "answer": {...}}
    r = _Reader(data, where)
    return Answer(
        question=r.text("question"),
        text=r.text("answer"),
        answerable=r.flag("answerable"),
        mode=r.text("mode"),
        sentences=tuple(_sentence(s) for s in r.objects("sentences")),
        citations=tuple(_citation(c) for c in r.objects("citations")),
        passages=tuple(hit_from_json(h.data, h.where) for h in r.objects("passages", [])),
        model=r.text("model", None),
        language=r.text("language", "de"),
        standalone_question=r.text("standalone_question", None),
        retrieval=dict(r.record("retrieval", {})),
        evidence=r.number("evidence", None),
        phrase=_phrase(data.get("phrase") if isinstance(data, Mapping) else None),
    )


def _phrase(data: Any) -> Phrase | None:
    if not isinstance(data, Mapping):
        return None
    try:
        return Phrase(str(data["text"]), int(data["n"]), int(data["start"]), int(data["end"]))
    except (KeyError, TypeError, ValueError):
        return None


def hit_from_json(data: Any, where: str = "hit") -> Hit:
    """Rebuild a `Hit` from `Hit.to_json()` (page, language and url when present)."""
    r = _Reader(data, where)
    return Hit(
        rank=r.integer("rank"),
        score=r.number("score"),
        chunk_id=r.text("chunk_id"),
        doc_id=r.text("doc_id"),
        source=r.text("source"),
        title=r.text("title", None),
        date=r.text("date", None),
        text=r.text("text"),
        start=r.integer("start"),
        end=r.integer("end"),
        page=r.integer("page", None),
        language=r.text("language", None),
        duplicates=tuple(_duplicate(d) for d in r.objects("duplicates", [])),
        url=r.text("url", None),
        date_source=r.text("date_source", None),
    )


def citation_from_json(data: Any, where: str = "citation") -> Citation:
    """Rebuild a `Citation` from `Citation.to_json()`."""
    return _citation(_Reader(data, where))


def duplicate_from_json(data: Any, where: str = "duplicate") -> DuplicateSource:
    """Rebuild a `DuplicateSource` from its JSON (its chunk id "" when the shape has none)."""
    return _duplicate(_Reader(data, where))


def _from_export(data: Mapping[str, Any]) -> list[Answer]:
    if data.get("schema") != SCHEMA_NAME:
        raise ConfigError(
            f"JSON with schema {data.get('schema')!r} is not a newsrag answer export "
            f"(schema {SCHEMA_NAME!r}); {SHAPE_HINT}"
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > EXPORT_VERSION:
        raise ConfigError(
            f"newsrag export version {version!r} is not supported (this newsrag reads versions "
            f"up to {EXPORT_VERSION}); upgrade newsrag to read it"
        )
    r = _Reader(data, "export")
    return [answer_from_json(a.data, a.where) for a in r.objects("answers")]


def _sentence(r: _Reader) -> AnswerSentence:
    return AnswerSentence(
        text=r.text("text"),
        citations=tuple(r.integers("citations")),
        supported=r.flag("supported"),
        problems=tuple(r.texts("problems", [])),
        similarity=r.number("similarity", None),
        repaired_from=tuple(r.integers("repaired_from", [])),
    )


def _citation(r: _Reader) -> Citation:
    return Citation(
        n=r.integer("n"),
        chunk_id=r.text("chunk_id"),
        doc_id=r.text("doc_id"),
        source=r.text("source"),
        title=r.text("title", None),
        date=r.text("date", None),
        quote=r.text("quote"),
        start=r.integer("start"),
        end=r.integer("end"),
        passage=r.text("passage", ""),
        passage_start=r.integer("passage_start", 0),
        page=r.integer("page", None),
        url=r.text("url", None),
        date_source=r.text("date_source", None),
    )


def _duplicate(r: _Reader) -> DuplicateSource:
    return DuplicateSource(
        doc_id=r.text("doc_id"),
        source=r.text("source"),
        title=r.text("title", None),
        date=r.text("date", None),
        chunk_id=r.text("chunk_id", ""),
    )


_REQUIRED: Any = object()


class _Reader:
    """Typed access to one JSON object; every failure names the field's path."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"malformed answer JSON at {where}: expected an object, got "
                f"{type(data).__name__}; {SHAPE_HINT}"
            )
        self.data, self.where = data, where

    def _get(self, key: str, default: Any, ok: Any, kind: str) -> Any:
        value = self.data.get(key, _REQUIRED)
        if value is _REQUIRED or (value is None and default is not _REQUIRED):
            if default is _REQUIRED:
                raise ConfigError(
                    f"malformed answer JSON: {self.where}.{key} is missing; {SHAPE_HINT}"
                )
            return default
        if not ok(value):
            raise ConfigError(
                f"malformed answer JSON: {self.where}.{key} must be {kind}, got "
                f"{_preview(value)}; {SHAPE_HINT}"
            )
        return value

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        return self._get(key, default, lambda v: isinstance(v, str), "a string")

    def flag(self, key: str, default: Any = _REQUIRED) -> Any:
        return self._get(key, default, lambda v: isinstance(v, bool), "true or false")

    def integer(self, key: str, default: Any = _REQUIRED) -> Any:
        return self._get(key, default, _is_int, "an integer")

    def number(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._get(key, default, _is_number, "a number")
        return float(value) if _is_number(value) else value

    def record(self, key: str, default: Any = _REQUIRED) -> Any:
        return self._get(key, default, lambda v: isinstance(v, Mapping), "an object")

    def integers(self, key: str, default: Any = _REQUIRED) -> list[int]:
        ok = lambda v: isinstance(v, list) and all(_is_int(x) for x in v)
        return self._get(key, default, ok, "a list of integers")

    def texts(self, key: str, default: Any = _REQUIRED) -> list[str]:
        ok = lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)
        return self._get(key, default, ok, "a list of strings")

    def objects(self, key: str, default: Any = _REQUIRED) -> list[_Reader]:
        items = self._get(key, default, lambda v: isinstance(v, list), "a list of objects")
        return [_Reader(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(items)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
