"""Chooses the float precision for CPU inference."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

# bf16 pays off only with native bf16 instructions; elsewhere torch emulates it slowly.
_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_bf16() -> bool:
    return bool(cpu_flags() & _BF16_FLAGS)


def resolve(precision: Literal["auto", "fp32", "bf16"]) -> Literal["fp32", "bf16"]:
    """`auto` -> bf16 where the CPU has AMX or AVX512-BF16, else fp32."""
    if precision == "bf16" and not native_bf16():
        _warn_emulated_bf16()
    if precision != "auto":
        return precision
    return "bf16" if native_bf16() else "fp32"


@lru_cache(maxsize=1)
def _warn_emulated_bf16() -> None:
    log.warning(
        "embedding.precision is bf16, but this CPU has no native bf16 (AVX512-BF16 or AMX): "
        "it is emulated, about 20x slower than fp32 here. Set embedding.precision = \"auto\" "
        "(or RAG_EMBEDDING__PRECISION=auto) to use fp32 on this CPU."
    )
