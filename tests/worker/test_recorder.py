"""Group commit: outcomes share commits, a failed commit is retried, and nothing raises."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from sigwatch.db.engine import create_engine, session_factory
from sigwatch.worker.recorder import GroupRecorder


async def test_outcomes_handed_over_together_share_one_commit(sqlite_settings):
    engine = create_engine(sqlite_settings)
    sessions = session_factory(engine)
    groups: list[list[int]] = []

    async def write(session, outcomes):
        await session.execute(text("select 1"))
        groups.append(list(outcomes))

    try:
        async with GroupRecorder(sessions, write, what="test", within_s=0.05) as recorder:
            for _ in range(5):
                recorder.expect()
            assert await asyncio.gather(*(recorder.record(n) for n in range(5))) == [True] * 5
    finally:
        await engine.dispose()
    assert groups == [[0, 1, 2, 3, 4]]


async def test_a_failed_commit_is_retried_then_given_up_without_raising(sqlite_settings):
    engine = create_engine(sqlite_settings)
    sessions = session_factory(engine)
    calls = 0

    async def flaky(session, outcomes):
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("database restarting")

    async def broken(session, outcomes):
        raise ConnectionError("database gone")

    try:
        async with GroupRecorder(sessions, flaky, what="test", retry_s=0.01) as recorder:
            assert await recorder.record("sent") is True
        assert calls == 3
        async with GroupRecorder(sessions, broken, what="test", retry_s=0.01) as recorder:
            assert await recorder.record("sent") is False
    finally:
        await engine.dispose()
