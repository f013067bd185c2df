"""Fixtures for repository tests: a migrated database and one source to store posts under."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.models import Source


@pytest.fixture
async def sessions(
    migrated_database: Settings,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory over a database of its own at head (SQLite and PostgreSQL)."""
    engine = create_engine(migrated_database)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def source_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    """The id of one RSS source."""
    async with sessions.begin() as session:
        source = Source(kind="rss", name="news", config={"url": "https://news.example/feed"})
        session.add(source)
        await session.flush()
        return source.id
