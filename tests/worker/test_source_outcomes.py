"""What a source kind's answer asks of the scheduler: a pause, or a wait before the next poll."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.jobs import request_backfill
from sigwatch.db.models import Source
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.errors import SourcePaused
from sigwatch.net.client import OutboundClient
from sigwatch.sources.base import CollectedPost, FetchResult, Platforms
from sigwatch.sources.registry import SOURCE_KINDS
from sigwatch.worker.runner import collect_once


class ScriptedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str


class ScriptedSource:
    """Answers as its options say: ``pause`` refuses for good, ``wait`` asks for an hour, any
    other answer is one post."""

    kind: ClassVar[str] = "scripted"
    Options: ClassVar[type[BaseModel]] = ScriptedOptions

    def __init__(self, options: ScriptedOptions, client: OutboundClient, platforms: Platforms):
        self.answer = options.answer

    async def fetch(self, state: dict[str, Any]) -> FetchResult:
        if self.answer == "pause":
            raise SourcePaused("the platform refused the token (401); set a new one, then resume")
        post = CollectedPost(external_id="1", text="rate limited, but here is a post")
        wait_s = 3600.0 if self.answer == "wait" else None
        return FetchResult(posts=[post], state={"seen": 1}, wait_s=wait_s)


@pytest.fixture
async def sessions(
    migrated_database: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    monkeypatch.setitem(SOURCE_KINDS, ScriptedSource.kind, ScriptedSource)  # type: ignore[arg-type]
    engine = create_engine(migrated_database)
    yield session_factory(engine)
    await engine.dispose()


async def poll(settings: Settings, sessions, answer: str, *, backfill: bool = False) -> Source:
    async with sessions.begin() as session:
        source = await create_source(
            session,
            owner_id=None,
            kind="scripted",
            name=answer,
            config={"answer": answer},
            poll_interval_s=60,
        )
        if backfill:
            await request_backfill(session, source.id, limit=100, requested_by=None)
    await collect_once(settings, sessions, [source.id])
    async with sessions() as session:
        stored = await session.get(Source, source.id)
        assert stored is not None
        return stored


async def test_a_source_whose_platform_refuses_for_good_is_paused_with_the_reason(
    migrated_database, sessions
):
    source = await poll(migrated_database, sessions, "pause")
    assert source.enabled is False
    assert source.last_error is not None and "refused the token" in source.last_error
    assert source.consecutive_failures == 1


async def test_a_rate_limited_answer_delays_the_next_poll_past_the_interval(
    migrated_database, sessions
):
    before = utcnow()
    source = await poll(migrated_database, sessions, "wait")
    assert source.enabled is True and source.last_error is None
    assert source.next_poll_at >= before + timedelta(seconds=3590)


async def test_a_queued_backfill_does_not_make_the_source_due_again(migrated_database, sessions):
    before = utcnow()
    source = await poll(migrated_database, sessions, "plain", backfill=True)
    # A queued poll job would have made it due at once; a backfill waits for a worker instead.
    assert source.next_poll_at >= before + timedelta(seconds=50)
