"""A receiver that answers 429 or 503 with Retry-After is not sent to again before it asked.

A real webhook receiver on 127.0.0.1 refuses; the delivery worker runs in process until the
delivery has its first failed attempt; the outbox row's next_attempt_at is then checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.models import Delivery
from sigwatch.db.types import utcnow
from sigwatch.worker.runner import Worker
from worker.outboxsetup import add_webhook_deliveries


@pytest.fixture
def allowed(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"allowed_private_networks": ["127.0.0.1/32"], "delivery_retry_base_s": 0.2}
    )


@pytest.fixture
async def sessions(
    allowed: Settings, migrated_database: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(allowed)
    yield session_factory(engine)
    await engine.dispose()


async def first_failed_attempt(settings, sessions) -> Delivery:
    """Run a worker until the only delivery has failed once; return its row."""
    worker = Worker(settings, sessions, idle_tick_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(15):
            while True:
                async with sessions() as session:
                    delivery = await session.scalar(select(Delivery))
                if delivery is not None and delivery.attempts >= 1:
                    return delivery
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_429_with_retry_after_delays_the_next_attempt_as_asked(allowed, sessions, server):
    url = server.serve("/hook", b"slow down", status=429, headers={"Retry-After": "600"})
    await add_webhook_deliveries(sessions, allowed, url, 1)

    delivery = await first_failed_attempt(allowed, sessions)

    assert delivery.status == "pending" and "HTTP 429" in (delivery.last_error or "")
    assert (delivery.next_attempt_at - utcnow()).total_seconds() >= 590
    assert len([r for r in server.requests if r.path == "/hook"]) == 1


async def test_503_with_an_http_date_retry_after_waits_until_that_date(allowed, sessions, server):
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 900))
    url = server.serve("/hook", b"", status=503, headers={"Retry-After": stamp})
    await add_webhook_deliveries(sessions, allowed, url, 1)

    delivery = await first_failed_attempt(allowed, sessions)

    assert delivery.status == "pending" and "HTTP 503" in (delivery.last_error or "")
    assert 880 <= (delivery.next_attempt_at - utcnow()).total_seconds() <= 900


async def test_503_without_retry_after_is_retried_on_the_ordinary_backoff(
    allowed, sessions, server
):
    url = server.serve("/hook", b"", status=503)
    await add_webhook_deliveries(sessions, allowed, url, 1)

    delivery = await first_failed_attempt(allowed, sessions)

    # The first retry waits at most delivery_retry_base_s (0.2 s), with full jitter.
    assert (delivery.next_attempt_at - utcnow()).total_seconds() <= 1


async def test_429_with_only_a_rate_limit_reset_waits_for_the_reset(allowed, sessions, server):
    url = server.serve(
        "/hook", b"", status=429, headers={"X-RateLimit-Reset-After": "300"}
    )  # as Discord says it
    await add_webhook_deliveries(sessions, allowed, url, 1)

    delivery = await first_failed_attempt(allowed, sessions)

    assert 290 <= (delivery.next_attempt_at - utcnow()).total_seconds() <= 300


async def test_a_reset_header_on_a_503_is_not_a_wait(allowed, sessions, server):
    url = server.serve("/hook", b"", status=503, headers={"X-RateLimit-Reset-After": "300"})
    await add_webhook_deliveries(sessions, allowed, url, 1)

    delivery = await first_failed_attempt(allowed, sessions)

    assert (delivery.next_attempt_at - utcnow()).total_seconds() <= 1
