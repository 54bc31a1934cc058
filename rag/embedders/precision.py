"""Chooses the precision for CPU inference: fp32, bf16, or (OpenVINO only) static int8."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rag.settings import EmbeddingSettings

log = logging.getLogger(__name__)

Setting = Literal["auto", "fp32", "bf16", "int8"]
Precision = Literal["fp32", "bf16", "int8"]
Int8Use = Literal["never", "asked", "auto"]
"""What a caller can do with int8: `never` (the runtime runs floats only: torch), `asked` (runs
it when the setting says int8), `auto` (`auto` picks it too on CPUs with int8 dot products:
the packaged model in OpenVINO, where it was measured to keep XQuAD recall; README)."""

# bf16 pays off only with native bf16 instructions; elsewhere torch and OpenVINO emulate it
# slowly (OpenVINO: 0.5 passages/s against 20 in fp32 on a 2-core Xeon with VNNI, no BF16).
_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
# int8 dot products (VNNI, 512- or 256-bit, or AMX tiles): where static int8 is fast.
_INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


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


def native_int8() -> bool:
    """Whether the CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX-INT8)."""
    return bool(cpu_flags() & _INT8_FLAGS)


def float_precision() -> Literal["fp32", "bf16"]:
    """bf16 where the CPU has AMX or AVX512-BF16, else fp32 (also what int8 runs its
    unquantized operations in)."""
    return "bf16" if native_bf16() else "fp32"


def resolve(setting: Setting, *, int8: Int8Use = "never") -> Precision:
    """The precision to run at. `auto` -> int8 where `int8` is "auto" and the CPU has VNNI,
    else bf16 where the CPU has native bf16, else fp32. "int8" in a runtime that cannot run it
    (`int8="never"`: torch) is the float precision; the embedder logs what it loaded."""
    if setting == "bf16" and not native_bf16():
        _warn_emulated_bf16()
    if setting == "int8":
        return "int8" if int8 != "never" else float_precision()
    if setting != "auto":
        return setting
    if int8 == "auto" and native_int8():
        return "int8"
    return float_precision()


def for_runtime(settings: EmbeddingSettings, runtime: str) -> Precision:
    """The precision an embedder of `runtime` (resolved: "openvino" or "torch") runs at.
    `auto` picks int8 only for the packaged model in OpenVINO, the one measured to keep its
    recall; an int8 model that cannot be made falls back to float when the model loads."""
    if runtime != "openvino":
        return resolve(settings.precision)
    from rag.settings import DEFAULT_MODEL

    vetted = settings.model == DEFAULT_MODEL
    return resolve(settings.precision, int8="auto" if vetted else "asked")


@lru_cache(maxsize=1)
def _warn_emulated_bf16() -> None:
    log.warning(
        "embedding.precision is bf16, but this CPU has no native bf16 (AVX512-BF16 or AMX): "
        "it is emulated, about 20x slower than fp32 here. Set embedding.precision = \"auto\" "
        "(or RAG_EMBEDDING__PRECISION=auto) to use the precision this CPU runs fast."
    )
