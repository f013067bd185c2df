"""The async engine and session factory, tuned per database.

SQL parameters (password hashes, API key hashes, sealed secrets) never reach a log line or an
error message: every engine hides them, and result rows are never logged, whatever ``echo`` says.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from sigwatch.config import Settings
from sigwatch.db.sqlite_driver import one_trip_dbapi


def create_engine(settings: Settings, **kwargs: Any) -> AsyncEngine:
    """Create the engine for the configured database (SQLite in WAL mode, or PostgreSQL)."""
    url = settings.effective_database_url
    # Hidden from echo, debug logging and the text of DBAPI errors alike.
    kwargs["hide_parameters"] = True
    _ENGINE_LOGGER.addFilter(_NO_RESULT_ROWS)  # addFilter skips a filter already there
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, module=one_trip_dbapi(), **kwargs
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


class _NoResultRows(logging.Filter):
    """Drop SQLAlchemy's debug lines that print result rows and their columns."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(("Row ", "Col ")))


#: The logger SQLAlchemy's engines write to (``echo`` included).
_ENGINE_LOGGER = logging.getLogger("sqlalchemy.engine.Engine")
_NO_RESULT_ROWS = _NoResultRows()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


async def ping_database(engine: AsyncEngine) -> None:
    """Run the cheapest query there is; raises whatever the driver raises when it cannot."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory whose objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
