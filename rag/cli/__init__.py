"""The `rag` command line: a thin layer over `rag.Engine`. Project errors become one clean line.

One module per command group (index, search, ask, export, models, evaluate), imported only when
its command runs (`BUILT_IN`): `rag search` loads neither the other commands' imports nor,
when a `rag serve` answers it (`rag.cli.warm`), the index and the models. Other packages add
commands through the `newsrag.commands` entry-point group: each entry point is a function that
is called with the `main` group (`ui.cli:register` adds `rag serve` and `rag start`). They are
loaded only for a command name that is not built in, or to list the commands, so `rag search`
never imports the web stack.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rag.engine import Engine

log = logging.getLogger("rag")

COMMANDS_ENTRY_POINTS = "newsrag.commands"
"""Entry-point group of functions `register(main: click.Group) -> None` that add commands."""

BUILT_IN: dict[str, str] = {
    "index": "index:index_cmd",
    "search": "search:search_cmd",
    "ask": "ask:ask_cmd",
    "timeline": "timeline:timeline_cmd",
    "remove": "index:remove_cmd",
    "info": "index:info_cmd",
    "models": "models:models_group",
    "eval": "evaluate:eval_cmd",
    "eval-answers": "evaluate:eval_answers_cmd",
    "export": "export:export_cmd",
    "verify": "verify:verify_cmd",
    "migrate": "migrate:migrate_cmd",
    "mcp": "mcp:mcp_cmd",
}
"""The built-in commands: name -> `module:attribute` in `rag.cli`, imported on first use."""

# Never reach for a model hub from the CLI; models come from packages or local directories.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class _Group(click.Group):
    """Turns a project error (`rag.errors.PROJECT_ERRORS`) into `error: message` on stderr and
    exit code 1, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            # Imported only now: rag.errors loads the index package (numpy, FAISS), which a
            # command answered by a server never needs.
            from rag.errors import PROJECT_ERRORS

            if not isinstance(exc, PROJECT_ERRORS):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


class _MainGroup(_Group):
    """The `rag` group: the built-in commands, plus those registered under
    `COMMANDS_ENTRY_POINTS`, loaded on first need."""

    _plugins_loaded = False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in BUILT_IN:
            module, _, name = BUILT_IN[cmd_name].partition(":")
            command = getattr(importlib.import_module(f"rag.cli.{module}"), name)
            self.add_command(command, cmd_name)
        if command is None and self._load_plugins():
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugins()
        return sorted({*super().list_commands(ctx), *BUILT_IN})

    def _load_plugins(self) -> bool:
        """Register the entry points' commands once; False when they were already loaded."""
        if self._plugins_loaded:
            return False
        self._plugins_loaded = True
        from importlib.metadata import entry_points  # about 30 modules: only when needed

        for entry_point in entry_points(group=COMMANDS_ENTRY_POINTS):
            try:
                register = entry_point.load()
            except (ImportError, AttributeError) as exc:
                # Stale metadata (a package removed or renamed without reinstalling) must not
                # take the built-in commands down; its commands are simply absent.
                log.warning("skipping the commands of %s: %s", entry_point.value, exc)
                continue
            register(self)
        return True


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


def _engine(index_dir: Path | None, index_settings: dict[str, Any] | None = None) -> Engine:
    """The Engine of `--index`; `index_settings` override the settings' index section
    (`--backend`, `--url`)."""
    from rag.engine import Engine

    if not index_settings:
        return Engine.open(index_dir)
    from rag.settings import load_settings

    return Engine.open(index_dir, load_settings(index=index_settings))


def progress_bar() -> Callable[[str, int, int], None]:
    """An `on_progress` callback that shows a bar on stderr while a long embedding job runs
    (a terminal only; also used by the `rag start` of `ui.cli`)."""
    state: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage != "embed" or total < 512 or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(
                total=total, unit="passage", desc="embedding", file=sys.stderr
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _read_batch(path: Path, field: str) -> list[tuple[Any, str]]:
    """JSONL lines {"id": ..., FIELD: "..."}; any bad line is one clear error (path:line)."""
    from rag.errors import ConfigError

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not UTF-8 text; convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    items = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        value = item.get(field) if isinstance(item, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{path}:{n}: expected a JSON object with a non-empty text {field!r} (and "
                f'optionally "id"), e.g. {{"id": 1, "{field}": "..."}}'
            )
        items.append((item.get("id"), value))
    return items


@click.group(cls=_MainGroup)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Question answering over news archives, with citations. Runs offline."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")

