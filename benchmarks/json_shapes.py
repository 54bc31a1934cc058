"""Capture the public JSON of the CLI and the HTTP API on the seed questions, to compare two
versions of the code byte for byte.

    python benchmarks/json_shapes.py OUT.json [--index DIR] [--seeds seeds/]
    diff <(python -m json.tool before.json) <(python -m json.tool after.json)

Two checkouts give identical files (sources are recorded as the relative path `seeds/...`, and
document ids derive from them). Indexes the seeds (into `--index DIR`, reused when unchanged; else a temporary directory), then
records, for every question of `benchmarks/seed_questions.jsonl`: `rag search --json`,
`rag ask --json` (both through the CLI in a subprocess) and `POST /api/search`,
`POST /api/ask` (through the FastAPI app in-process). Fields that differ from run to run by
nature (`seconds` of the index report) are zeroed; nothing else is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _cli(*args: str) -> dict:
    # The CLI of the code beside this script (not whatever `rag` is on PATH).
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    out = subprocess.run(
        [sys.executable, "-c", "from rag.cli import main; main()", *args],
        check=True,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=HERE.parent,  # sources are recorded as given: the same relative path in any checkout
    ).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--index", type=Path)
    parser.add_argument(
        "--seeds", type=Path, default=Path("seeds"), help="Relative to the repository root."
    )
    parser.add_argument("--questions", type=Path, default=HERE / "seed_questions.jsonl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = str(args.index or Path(tmp) / "idx")
        report = _cli("index", str(args.seeds), "--index", index, "--json")
        report["seconds"] = 0
        questions = [
            json.loads(line)
            for line in args.questions.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        record: dict = {"index": report, "cli": [], "api": []}
        for q in questions:
            text = q["question"]
            record["cli"].append(
                {
                    "id": q["id"],
                    "search": _cli("search", text, "--index", index, "--json"),
                    "ask": _cli("ask", text, "--index", index, "--json"),
                }
            )
        from rag.settings import load_settings

        settings = load_settings(index_dir=index)
        client, close = _api(settings)
        try:
            for q in questions:
                text = q["question"]
                search = client.post("/api/search", json={"query": text})
                ask = client.post("/api/ask", json={"question": text})
                record["api"].append(
                    {"id": q["id"], "search": search.json(), "ask": ask.json()}
                )
            info = client.get("/api/info").json()
            info["index"].pop("size_bytes", None)
            record["api_info_keys"] = sorted(info)
        finally:
            close()
    args.out.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {args.out}: {len(questions)} questions")


def _api(settings):
    """A test client over the app as `rag serve` builds it (API only)."""
    from fastapi.testclient import TestClient

    from ui.service import Service

    service = Service.open(settings.index_dir, settings)
    from ui.server import create_app

    client = TestClient(create_app(service, with_ui=False), base_url="http://localhost")
    return client, service.close


if __name__ == "__main__":
    sys.exit(main())
