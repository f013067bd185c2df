"""The per-host circuit breaker through the worker's poll path, over real HTTP.

Five feeds on one failing host open its breaker; later polls fail at once without reaching
it, with the wait until half-open as their retry; one trial goes through once the open period
is over, and its success closes the breaker. A feed on another host never notices.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbuilder import rss_feed
from localserver import Handler, LocalServer, Static
from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.models import Source
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.errors import CircuitOpen, HostRateLimited
from sigwatch.net.hosts import host_key
from sigwatch.worker.poll_backoff import plan_retry
from sigwatch.worker.runner import collect_once

FEEDS = 5


@pytest.fixture
def breaker_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "allowed_private_networks": ["127.0.0.1/32"],
            "fetch_timeout_s": 2.0,
            "breaker_failures": 5,
            "breaker_open_s": 1.0,
            "host_rate_limit": None,
        }
    )


@pytest.fixture
async def sessions(
    breaker_settings: Settings, migrated_database: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(breaker_settings)
    yield session_factory(engine)
    await engine.dispose()


async def add_feed(sessions: async_sessionmaker[AsyncSession], url: str) -> int:
    async with sessions.begin() as session:
        source = await create_source(
            session, owner_id=None, kind="rss", name=url, config={"url": url}
        )
        return source.id


async def get_source(sessions: async_sessionmaker[AsyncSession], source_id: int) -> Source:
    async with sessions() as session:
        source = await session.get(Source, source_id)
        assert source is not None
        return source


async def test_five_feeds_on_a_failing_host_open_its_breaker_until_a_trial_succeeds(
    breaker_settings: Settings, sessions: async_sessionmaker[AsyncSession], start_server
) -> None:
    failing: LocalServer = start_server()
    other: LocalServer = start_server()
    down = [True]

    def feed(handler: Handler) -> None:
        if down[0]:
            handler.send_static(Static(b"upstream down", 503))
        else:
            handler.send_static(Static(rss_feed(["Example Protocol mainnet is live"])))

    ids = []
    for number in range(FEEDS):
        failing.routes[f"/feed/{number}.xml"] = feed
        ids.append(await add_feed(sessions, failing.url(f"/feed/{number}.xml")))
    healthy = await add_feed(
        sessions, other.serve("/good.xml", rss_feed(["Example Protocol lists on an exchange"]))
    )

    async with asyncio.timeout(20):
        # Five transient failures in a row: the breaker opens.
        outcomes = await collect_once(breaker_settings, sessions, [*ids, healthy])
        assert [o.ok for o in outcomes if o.source_id == healthy] == [True]
        assert len(failing.requests) == FEEDS

        # While it is open, polls fail at once without a request, retried after the wait.
        before = utcnow()
        outcomes = await collect_once(breaker_settings, sessions, ids)
        assert not any(outcome.ok for outcome in outcomes)
        assert len(failing.requests) == FEEDS
        source = await get_source(sessions, ids[0])
        host = host_key(failing.url())
        assert f"circuit open for {host} after 5 failures in a row; next try at" in (
            source.last_error or ""
        )
        assert source.next_poll_at > before
        assert (await get_source(sessions, healthy)).consecutive_failures == 0

        # The open period ends; the host is back: one trial goes through and closes it.
        down[0] = False
        await asyncio.sleep(breaker_settings.breaker_open_s + 0.1)
        outcomes = await collect_once(breaker_settings, sessions, ids)
        succeeded = sum(outcome.ok for outcome in outcomes)
        # The polls that ran beside the trial were refused; any after it went through.
        assert len(failing.requests) == FEEDS + succeeded
        others = [outcome.error or "" for outcome in outcomes if not outcome.ok]
        assert others, "no poll ran beside the trial"
        assert all(f"circuit half-open for {host}" in error for error in others)

        # Closed again: every feed is polled, and the other host was never held back.
        outcomes = await collect_once(breaker_settings, sessions, ids)
        assert all(outcome.ok for outcome in outcomes)
        assert len(failing.requests) == 2 * FEEDS + succeeded
        assert all(request.path != "/good.xml" for request in failing.requests)


async def test_an_open_breaker_reschedules_the_source_at_least_until_half_open(
    breaker_settings: Settings, sessions: async_sessionmaker[AsyncSession], server: LocalServer
) -> None:
    settings = breaker_settings.model_copy(update={"breaker_failures": 1, "breaker_open_s": 600})
    server.serve("/down.xml", b"down", status=500)
    first = await add_feed(sessions, server.url("/down.xml"))
    second = await add_feed(sessions, server.url("/down.xml?again"))
    await collect_once(settings, sessions, [first])
    before = utcnow()

    await collect_once(settings, sessions, [second])

    source = await get_source(sessions, second)
    assert "circuit open" in (source.last_error or "")
    assert source.next_poll_at >= before + timedelta(seconds=590)
    assert len(server.requests) == 1


def test_the_retry_plan_honours_the_wait_until_half_open() -> None:
    error = CircuitOpen("circuit open for news.example", host="news.example", wait_s=3000.0)

    plan = plan_retry(error, interval_s=60, failures=1, max_backoff_s=6 * 3600)

    assert 3000.0 <= plan.delay_s <= 3000.0 * 1.1
    assert plan.earliest_s == 3000.0 and plan.note is None


def test_a_spent_host_limit_is_retried_after_its_wait_not_at_once() -> None:
    error = HostRateLimited("limit spent for news.example", host="news.example", wait_s=45.0)

    plan = plan_retry(error, interval_s=10, failures=1, max_backoff_s=3600)

    assert plan.delay_s >= 45.0 and plan.earliest_s == 45.0
