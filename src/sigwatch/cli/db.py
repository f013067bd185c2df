"""``sigwatch db``: the database schema."""

from __future__ import annotations

import typer

from sigwatch.cli.common import cli_settings, console, friendly_errors, run
from sigwatch.config import Settings
from sigwatch.db.engine import create_engine
from sigwatch.db.migrate import Upgrade, upgrade

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Bring the database schema to the newest revision, saying from which it came."""
    settings = cli_settings()
    done = run(_db_upgrade(settings))
    if done.migrated:
        console.print(
            f"database migrated from {done.from_revision or '(empty)'} to {done.to_revision}",
            highlight=False,
        )
    else:
        console.print(f"database is up to date (revision {done.to_revision})", highlight=False)


async def _db_upgrade(settings: Settings) -> Upgrade:
    engine = create_engine(settings)
    try:
        return await upgrade(engine)
    finally:
        await engine.dispose()
