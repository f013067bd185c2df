"""The outbox is woken, not polled: a wake that comes while the delivery loop claims is kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import sigwatch.worker.runner as runner
from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.live.bus import MemoryBus
from sigwatch.worker.runner import Worker
from worker.outboxsetup import add_webhook_deliveries

#: Far longer than the test waits: a delivery sent at all was sent because of its wake.
IDLE_TICK_S = 60.0


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
    """Settings whose SSRF guard lets the worker reach this test's receiver on 127.0.0.1."""
    return settings.model_copy(update={"allowed_private_networks": ["127.0.0.1/32"]})


@pytest.fixture
async def sessions(
    worker_settings: Settings, migrated_database: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(worker_settings)
    yield session_factory(engine)
    await engine.dispose()


async def test_an_alert_committed_while_the_loop_claims_is_sent_at_once(
    worker_settings, sessions, server, monkeypatch
):
    hook = server.serve("/hook", b"ok")
    bus = MemoryBus()
    claims = 0
    claim = runner.claim_due_deliveries

    async def claim_missing_a_commit(session, **options):
        # The first claim behaves as one whose read came just before another process committed
        # an alert and published its event: it finds nothing, and the wake arrives meanwhile.
        nonlocal claims
        claims += 1
        if claims == 1:
            await add_webhook_deliveries(sessions, worker_settings, hook, 1)
            await bus.publish({"type": "alert.created", "id": 1})
            await asyncio.sleep(0.05)  # the loop's bus reader takes the event and wakes it
            return []
        return await claim(session, **options)

    monkeypatch.setattr(runner, "claim_due_deliveries", claim_missing_a_commit)
    worker = Worker(worker_settings, sessions, idle_tick_s=IDLE_TICK_S, bus=bus)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    started = time.monotonic()
    try:
        async with asyncio.timeout(10):
            while not [r for r in server.requests if r.method == "POST"]:
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)

    assert claims >= 2
    assert time.monotonic() - started < 10 < IDLE_TICK_S
