"""The malloc arena cap that keeps an ingest's peak memory down (`rag.embedders.heap`)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from rag.embedders import heap

glibc_only = pytest.mark.skipif(not heap._glibc(), reason="the cap is glibc's")

# Eight threads allocate at once, then glibc reports its arenas (`malloc_info`, one <heap> each).
_ARENAS_AFTER_THREADS = textwrap.dedent(
    """
    import ctypes, ctypes.util, re, sys, tempfile, threading
    from rag.embedders import heap
    if sys.argv[1] == "cap":
        print("capped", heap.cap_arenas())
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    barrier = threading.Barrier(8)
    def work():
        barrier.wait()  # all eight alive at once: each one's first malloc takes a new arena
        for _ in range(2000):
            libc.malloc(200)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        out = libc.fopen(f.name.encode(), b"w")
        libc.malloc_info(0, out)
        libc.fclose(out)
        print("arenas", len(re.findall(r"<heap nr=", open(f.name).read())))
    """
)


def _arenas(mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    run = subprocess.run(
        [sys.executable, "-c", _ARENAS_AFTER_THREADS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | (env or {}),
    )
    lines = run.stdout.split("\n")
    arenas = int(next(ln for ln in lines if ln.startswith("arenas")).split()[1])
    return run.stdout, arenas


@glibc_only
def test_cap_keeps_threads_to_two_arenas() -> None:
    out, capped = _arenas("cap")
    assert "capped True" in out
    assert capped <= 2
    _, free = _arenas("free")  # the same threads without the cap: the test can tell the two
    assert free > 2


@glibc_only
def test_the_environment_wins() -> None:
    """An operator's MALLOC_ARENA_MAX is left as it is (glibc reads it itself)."""
    out, arenas = _arenas("cap", {"MALLOC_ARENA_MAX": "4"})
    assert "capped False" in out
    assert arenas <= 4
