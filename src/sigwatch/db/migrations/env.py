"""Alembic environment: runs migrations over the async engine handed in by sigwatch.db.migrate."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sigwatch.db.models import Base

config = context.config
target_metadata = Base.metadata


def _include_name(name: str | None, type_: str, _parents: object) -> bool:
    # The FTS5 table and its shadow tables are made by hand in a migration, not by the models.
    return not (type_ == "table" and name is not None and name.startswith("posts_fts"))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = config.attributes.get("engine")
    owned = engine is None
    if owned:
        engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    assert isinstance(engine, AsyncEngine)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    if owned:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("sigwatch migrations run online only: use `sigwatch db upgrade`")
connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_async())
