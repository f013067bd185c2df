"""``sigwatch config``: the effective settings."""

from __future__ import annotations

import typer
from rich.table import Table

from sigwatch.cli.common import console, friendly_errors
from sigwatch.config import load_settings

config_app = typer.Typer(help="Settings.", no_args_is_help=True)


@config_app.command("show")
@friendly_errors
def config_show() -> None:
    """Print the effective settings, secrets masked."""
    settings = load_settings()
    table = Table("setting", "value", "environment variable")
    for name, value in settings.masked().items():
        table.add_row(name, "" if value is None else str(value), f"SIGWATCH_{name.upper()}")
    console.print(table)
