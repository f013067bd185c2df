"""``sigwatch watchlist``: the entities to watch and the rule overrides, as YAML."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sigwatch.cli.common import (
    cli_settings,
    console,
    errors,
    fail,
    friendly_errors,
    open_database,
    run,
)
from sigwatch.config import Settings

watchlist_app = typer.Typer(
    help="The watchlist: entities and rule overrides.", no_args_is_help=True
)


@watchlist_app.command("import")
@friendly_errors
def watchlist_import(
    file: Annotated[Path, typer.Argument(help="Watchlist YAML: entities and optional rules.")],
) -> None:
    """Add or update entities by name and replace the rule overrides; all or nothing."""
    from sigwatch.detect import load_watchlist_yaml

    if not file.exists():
        raise fail(f"{file} does not exist")
    parsed = load_watchlist_yaml(file.read_text(encoding="utf-8"))
    settings = cli_settings()
    added, updated, rules = run(_watchlist_import(settings, parsed))
    console.print(f"watchlist imported: {added} entities added, {updated} updated, {rules} rules")


async def _watchlist_import(settings: Settings, parsed: Any) -> tuple[int, int, int]:
    from sigwatch.alerts.watchlist import import_watchlist

    async with open_database(settings) as sessions, sessions.begin() as session:
        return await import_watchlist(session, parsed, actor="cli")


@watchlist_app.command("export")
@friendly_errors
def watchlist_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
) -> None:
    """Write the watchlist as YAML, in the format watchlist import reads."""
    settings = cli_settings()
    document = run(_watchlist_export(settings))
    if output is None:
        sys.stdout.write(document)
    else:
        output.write_text(document, encoding="utf-8")
        errors.print(f"wrote the watchlist to {output}")


async def _watchlist_export(settings: Settings) -> str:
    from sigwatch.alerts.watchlist import load_watchlist
    from sigwatch.detect import dump_watchlist_yaml

    async with open_database(settings) as sessions, sessions() as session:
        return dump_watchlist_yaml((await load_watchlist(session)).watchlist)
