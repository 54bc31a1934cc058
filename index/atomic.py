"""Atomic file writes: temp file in the same directory, fsync, `os.replace`, fsync the directory."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
_CHUNK = 1 << 20


def fsync_file(path: Path) -> None:
    """Flush a file's contents to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file below `root` (a directory built aside, before it is renamed into place)."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            fsync_file(path)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename or a new file) to stable storage. No-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path_for(target: Path) -> Path:
    """A fresh, unused temp file next to `target` (same filesystem, so `os.replace` is atomic)."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """Yield a temp path to write; on normal exit fsync it and atomically move it onto `target`.

    On an exception the temp file is removed and `target` is untouched.
    """
    tmp = temp_path_for(target)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def write_bytes(target: Path, data: bytes) -> None:
    """Atomically replace `target` with `data`."""
    with replacing(target) as tmp:
        tmp.write_bytes(data)


def write_json(target: Path, obj: Any) -> None:
    """Atomically replace `target` with `obj` as pretty-printed UTF-8 JSON."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    write_bytes(target, text.encode("utf-8"))


def write_with(target: Path, writer: Callable[[Path], None]) -> str:
    """Atomically replace `target` with what `writer(tmp_path)` writes; return the file's sha256."""
    with replacing(target) as tmp:
        writer(tmp)
        digest = sha256_file(tmp)
    return digest


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's contents."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def is_temp_file(path: Path) -> bool:
    """True for the temp files `replacing` creates, and SQLite's side files of a temp database."""
    return path.name.startswith(".") and TEMP_SUFFIX in path.name


def remove_stale_temp_files(directory: Path) -> None:
    """Delete temp files a crashed writer left behind. Call only while holding the write lock."""
    for path in directory.iterdir():
        if not is_temp_file(path):
            continue
        logger.info("removing %s left behind by an interrupted write", path)
        with contextlib.suppress(OSError):
            path.unlink()
