"""What every command group shares: consoles, error handling, settings and the database.

Commands parse arguments and call into the packages; these helpers keep each command to that:
sigwatch's own errors become one readable line with an exit status, settings are loaded (and
logging configured) once per command, and the database is opened, checked and closed around it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings, load_settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import require_current, upgrade
from sigwatch.errors import SigwatchError
from sigwatch.observability.logging import configure_logging

#: Results go to standard output, so they can be piped; progress and problems to standard error.
console = Console()
errors = Console(stderr=True)

#: Exit status of a command refused for a bad argument or option, as click uses for usage errors.
USAGE_ERROR = 2

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise with ``code``."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn sigwatch's own errors into one readable line and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SigwatchError as exc:
            raise fail(str(exc)) from None

    return wrapper


def check_choices(option: str, given: Iterable[str] | None, allowed: Sequence[str]) -> None:
    """Exit 2 naming ``option`` and the allowed values when one of ``given`` is not allowed."""
    for value in given or ():
        if value not in allowed:
            raise fail(f"{option} {value!r}: use one of {', '.join(allowed)}", USAGE_ERROR)


def cli_settings(**overrides: Any) -> Settings:
    """The effective settings, with logging configured from them for this command."""
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    return settings


@asynccontextmanager
async def open_database(
    settings: Settings, *, migrate: bool = True
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Open the database (upgrading it first, or checking it is current) for one command."""
    engine = create_engine(settings)
    try:
        await (upgrade(engine) if migrate else require_current(engine))
        yield session_factory(engine)
    finally:
        await engine.dispose()


def run(coroutine: Coroutine[Any, Any, R]) -> R:
    """Run one command's coroutine to completion on a fresh event loop."""
    return asyncio.run(coroutine)


def when(value: datetime | None) -> str:
    """A time as the tables show it (UTC, to the second), or "never"."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "never"
