"""Upload payloads for `serve.py --mixed`: a large JSON Lines slice of news articles (about
1.9 MB) and small text files, each with ids and names no other upload of the run shares."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ARTICLES = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "data"
    / "wikinews-de"
    / "articles.jsonl"
)


@dataclass(frozen=True)
class Payload:
    """One file to upload: its name (the documents' source), bytes, and the ids of the
    documents the server will make of it."""

    name: str
    data: bytes
    doc_ids: tuple[str, ...]


def read_articles(path: Path) -> list[dict[str, object]]:
    """The articles of a JSON Lines file (objects with a non-empty "text")."""
    articles = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if isinstance(record, dict) and str(record.get("text") or "").strip():
                articles.append(record)
    if not articles:
        raise SystemExit(f"{path}: no articles in it")
    return articles


def large_jsonl(
    articles: list[dict[str, object]], target_bytes: int, tag: str, folder: Path
) -> Payload:
    """Articles in order, each with the id `<tag>-<its id>`, until the file reaches
    `target_bytes` (or the articles run out); written to `folder` and returned."""
    lines: list[bytes] = []
    ids: list[str] = []
    size = 0
    for number, article in enumerate(articles):
        doc_id = f"{tag}-{article.get('id') or number}"
        line = json.dumps({**article, "id": doc_id}, ensure_ascii=False).encode("utf-8") + b"\n"
        lines.append(line)
        ids.append(doc_id)
        size += len(line)
        if size >= target_bytes:
            break
    name = f"{tag}.jsonl"
    data = b"".join(lines)
    (folder / name).write_bytes(data)
    return Payload(name, (folder / name).read_bytes(), tuple(ids))


def small_text(articles: list[dict[str, object]], name: str, rng: random.Random) -> Payload:
    """One article as a .txt file (title line, blank line, text); the document id is the one
    the server gives a file's document (from its name)."""
    from rag.ingest.metadata import file_doc_id  # the server's own rule

    article = rng.choice(articles)
    text = f"{article.get('title') or name}\n\n{article['text']}\n"
    return Payload(name, text.encode("utf-8"), (file_doc_id(name),))
