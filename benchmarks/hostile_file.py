"""Peak memory of `rag index` on a 50 MB text file that is one single line (#12 item 3).

    python benchmarks/hostile_file.py OUT_DIR [--bytes 50000000] [--spaces/--no-spaces]

Writes `OUT_DIR/one-line.txt` (German sentences, or with `--no-spaces` letters only, and no
newline anywhere), runs `rag index` on it in a child process with a fresh temporary index, and
prints the child's peak RSS (`getrusage(RUSAGE_CHILDREN)`), its exit code, the time, and the
outcome: the report's problems, or what was indexed. The target: peak RSS <= 2 GB, or a clear
refusal. The default size is the largest file `chunking.max_file_bytes` accepts, so the file is
read; its 50 million characters are over `chunking.max_document_chars` (2 million), which
refuses it before any chunking or embedding.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENTENCE = "Die Verhandlungen in Genf dauerten bis in die Nacht, sagte eine Sprecherin am Montag. "


def write_one_line(path: Path, size: int, spaces: bool) -> None:
    """`size` bytes of ASCII text without a single newline, written a megabyte at a time."""
    unit = (SENTENCE if spaces else "abcdefghij").encode("ascii")
    block = unit * (1_000_000 // len(unit) + 1)
    with path.open("wb") as out:
        left = size
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where to write the file")
    parser.add_argument("--bytes", type=int, default=50_000_000, help="file size (50,000,000)")
    parser.add_argument(
        "--spaces", action=argparse.BooleanOptionalAction, default=True,
        help="sentences with spaces (default), or one 50 MB 'word'",
    )  # fmt: skip
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / "one-line.txt"
    write_one_line(path, args.bytes, args.spaces)
    newlines = path.read_bytes().count(b"\n")
    print(f"file: {path} ({path.stat().st_size:,} bytes, {newlines} newlines)")

    env = {k: v for k, v in os.environ.items() if k not in ("RAG_INDEX_DIR", "RAG_CONFIG")}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("RAG_GENERATION__BACKEND", "none")
    with tempfile.TemporaryDirectory(prefix="hostile-index-") as index_dir:
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-m", "rag.cli", "index", str(path), "--index", index_dir, "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(f"rag index: exit code {child.returncode}, {seconds:.1f} s, peak RSS {peak_mb:,.0f} MB")
    print(f"traceback: {'yes' if 'Traceback' in child.stdout + child.stderr else 'no'}")
    try:
        report = json.loads(child.stdout)
    except json.JSONDecodeError:
        print(f"no JSON report; stderr:\n{child.stderr[-2000:]}")
        return
    for problem in report["problems"]:
        print(f"refused: {problem['message']}")
    print(f"indexed: {report['documents']} documents, {report['chunks']} passages")
    verdict = "ok" if peak_mb <= 2048 else "OVER the 2 GB target"
    print(f"peak RSS {peak_mb:,.0f} MB: {verdict}")


if __name__ == "__main__":
    main()
