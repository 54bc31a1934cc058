"""Expand the paths a user gives into the files to read, each named as the user would."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rag.ingest.batch import IngestProblem
from rag.ingest.read import SUPPORTED_SUFFIXES, supported_list


def discover(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, str]], list[IngestProblem]]:
    """`(path, source)` for every supported file under `paths`, and problems for the rest.

    Folders are searched recursively, in sorted order, skipping hidden files and folders. A
    file's `source` is the path as given joined with its part below that path ("seeds/" gives
    "seeds/000_x.txt"), not made absolute. Missing paths and unsupported files are problems.
    A file reached twice is listed once.
    """
    found: list[tuple[Path, str]] = []
    problems: list[IngestProblem] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            candidates, folder_problems = _folder(path)
        elif path.is_file():
            candidates, folder_problems = _single(path)
        else:
            candidates, folder_problems = [], [_missing(path)]
        problems += folder_problems
        for file, source in candidates:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append((file, source))
    return found, problems


def _single(path: Path) -> tuple[list[tuple[Path, str]], list[IngestProblem]]:
    source = path.as_posix()
    if not _utf8(source):
        return [], [_not_utf8_name(source)]
    if path.suffix.lower() in SUPPORTED_SUFFIXES:
        return [(path, source)], []
    return [], [_unsupported(path, source)]


def _folder(folder: Path) -> tuple[list[tuple[Path, str]], list[IngestProblem]]:
    files = sorted(_walk(folder), key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        message = (
            f"{folder.as_posix()}: folder has no files to read (supported: {supported_list()})"
        )
        return [], [IngestProblem(source=folder.as_posix(), message=message)]
    found: list[tuple[Path, str]] = []
    problems: list[IngestProblem] = []
    for file in files:
        source = file.as_posix()
        if not _utf8(source):
            problems.append(_not_utf8_name(source))
        elif file.suffix.lower() in SUPPORTED_SUFFIXES:
            found.append((file, source))
        else:
            problems.append(_unsupported(file, source))
    return found, problems


def _walk(folder: Path) -> list[Path]:
    """Regular files below `folder`, hidden files and folders left out."""
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(root, n) for n in names if not n.startswith(".") and Path(root, n).is_file()]
    return files


def _unsupported(path: Path, source: str) -> IngestProblem:
    suffix = path.suffix.lower() or "(no extension)"
    return IngestProblem(
        source=source,
        message=(
            f"{source}: unsupported file type '{suffix}', skipped; supported: {supported_list()}"
        ),
    )


def _missing(path: Path) -> IngestProblem:
    source = path.as_posix()
    if path.exists():
        message = f"{source}: not a regular file or folder, skipped"
    else:
        message = f"{source}: no such file or folder; check the path"
    return IngestProblem(source=source, message=message)


def _utf8(source: str) -> bool:
    """False for a name with bytes that are not UTF-8 (Python holds them as lone surrogates,
    which cannot be stored or printed)."""
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_utf8_name(source: str) -> IngestProblem:
    shown = source.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return IngestProblem(
        source=shown,
        message=f"{shown}: the file name is not valid UTF-8, skipped; rename the file (e.g. "
        "convmv -f latin1 -t utf-8 --notest FILE)",
    )
