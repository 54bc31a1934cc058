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
import sys
import threading

log = logging.getLogger(__name__)

ARENAS = 2
"""Arenas the process keeps: one per embedding lane (`turns.Lanes` has at most two)."""
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
_lock = threading.Lock()
_done = False


def cap_arenas(arenas: int = ARENAS) -> bool:
    """Cap the glibc malloc arenas of this process at `arenas` (arenas made before stay).
    Does nothing where the C library is not glibc, or where `MALLOC_ARENA_MAX` is set in the
    environment (the operator's choice wins). True where the cap was set, by this call or an
    earlier one."""
    global _done
    with _lock:
        if _done:
            return True
        if not sys.platform.startswith("linux") or os.environ.get("MALLOC_ARENA_MAX"):
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # no C library to load, or one without mallopt
            return False
        if not _glibc(libc):
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _done = mallopt(_M_ARENA_MAX, arenas) == 1
        if _done:
            log.debug("malloc arenas capped at %d", arenas)
        return _done


def _glibc(libc: ctypes.CDLL) -> bool:
    """Whether `libc` is glibc (musl has a `mallopt` that accepts and ignores everything)."""
    try:
        version = libc.gnu_get_libc_version
    except AttributeError:
        return False
    version.restype = ctypes.c_char_p
    return bool(version())
