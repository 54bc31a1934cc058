"""The C heap of a process that embeds on several threads.

glibc's malloc gives each thread that allocates its own arena, up to 8 per core, and memory
freed in one arena is not reused by another. An ingest embeds on two lanes (`turns.Lanes`) whose
batches change shape from one to the next, so the arenas fill with free but unreusable memory.
Measured on 2 cores (AVX2, fp32), 998 Wikinews articles (`benchmarks/ingest.py`): peak RSS
2,074 MB with glibc's default against 1,673-1,675 MB with two arenas, no slower (413.7 s, then
368-370 s); the LangChain recipe beside it peaked at 1,695-1,733 MB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

ARENAS = 2
"""Arenas the process keeps: one per embedding lane (`turns.Lanes` has at most two)."""
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def cap_arenas(arenas: int = ARENAS) -> bool:
    """Cap the glibc malloc arenas of this process at `arenas` (arenas made before stay; a
    second call sets the same cap again). Does nothing where the C library is not glibc (musl's
    `mallopt` accepts and ignores everything), or where `MALLOC_ARENA_MAX` is set in the
    environment (the operator's choice wins). True where the cap is set."""
    if os.environ.get("MALLOC_ARENA_MAX") or not _glibc():
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no C library to load, or one without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(_M_ARENA_MAX, arenas) != 1:
        return False
    log.debug("malloc arenas capped at %d", arenas)
    return True


def _glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):  # no confstr (Windows) or no such name
        return False
