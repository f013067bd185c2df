"""The worker loop claims in batches, group-commits the polls that stored nothing, and wakes
for the next due source instead of at its idle tick."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbuilder import rss_feed
from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.models import Source
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.worker import collect, runner
from sigwatch.worker.runner import CLAIM_BATCH, PollPace, Worker

ETAG = {"ETag": '"v1"', "Content-Type": "application/rss+xml"}


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
    """Settings whose SSRF guard lets the worker reach this test's own server on 127.0.0.1."""
    return settings.model_copy(
        update={"allowed_private_networks": ["127.0.0.1/32"], "fetch_timeout_s": 5.0}
    )


@pytest.fixture
async def sessions(
    worker_settings: Settings, migrated_database: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(worker_settings)
    yield session_factory(engine)
    await engine.dispose()


async def add_source(sessions, url: str, *, due_in_s: float = 0.0) -> int:
    async with sessions.begin() as session:
        source = await create_source(
            session, owner_id=None, kind="rss", name=url, config={"url": url}, poll_interval_s=600
        )
        source.next_poll_at = utcnow() + timedelta(seconds=due_in_s)
        return source.id


async def sources(sessions, ids: list[int]) -> list[Source]:
    async with sessions() as session:
        rows = await session.scalars(select(Source).where(Source.id.in_(ids)).order_by(Source.id))
        return list(rows)


async def run_worker(settings, sessions, done, *, idle_tick_s: float = 0.05, timeout_s=15.0):
    """Run a worker in this process until ``await done()`` is true, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(settings, sessions, idle_tick_s=idle_tick_s).run(stop))
    try:
        async with asyncio.timeout(timeout_s):
            while not await done():
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_304s_are_recorded_in_groups_and_free_their_leases(
    worker_settings, sessions, server, monkeypatch
):
    groups: list[int] = []
    record = collect.record_poll_successes

    async def recording(session, successes, **kw):
        groups.append(len(successes))
        return await record(session, successes, **kw)

    monkeypatch.setattr(collect, "record_poll_successes", recording)
    url = server.serve("/feed.xml", rss_feed(["one"]), headers=ETAG)
    ids = [await add_source(sessions, f"{url}?copy={n}") for n in range(6)]

    async def all_polled() -> bool:
        return all(row.last_success_at is not None for row in await sources(sessions, ids))

    await run_worker(worker_settings, sessions, all_polled)  # full feeds: one by one
    assert groups == []
    second = utcnow()
    async with sessions.begin() as session:
        await session.execute(update(Source).where(Source.id.in_(ids)).values(next_poll_at=second))

    async def all_polled_again() -> bool:
        rows = await sources(sessions, ids)
        return all(row.last_success_at and row.last_success_at >= second for row in rows)

    await run_worker(worker_settings, sessions, all_polled_again)

    assert sum(groups) == len(ids) and len(groups) < len(ids)
    assert [r.headers.get("if-none-match") for r in server.requests[-len(ids) :]] == ['"v1"'] * 6
    for row in await sources(sessions, ids):
        assert row.lease_owner is None and row.lease_expires_at is None
        assert row.state.get("etag") == '"v1"' and row.consecutive_failures == 0
        assert row.next_poll_at >= second + timedelta(seconds=300)


async def test_a_stopping_worker_commits_the_304s_it_handed_over_before_freeing_leases(
    worker_settings, sessions, server, monkeypatch
):
    url = server.serve("/feed.xml", rss_feed(["one"]), headers=ETAG)
    source_id = await add_source(sessions, url)

    async def polled() -> bool:
        return (await sources(sessions, [source_id]))[0].last_success_at is not None

    await run_worker(worker_settings, sessions, polled)
    # A group now waits a minute for company: only the worker's stop can commit it in time.
    monkeypatch.setattr(collect, "RECORD_WITHIN_S", 60.0)
    again = utcnow()
    async with sessions.begin() as session:
        await session.execute(update(Source).values(next_poll_at=again))
    requests = len(server.requests)

    async def answered() -> bool:
        return len(server.requests) > requests

    await run_worker(worker_settings, sessions, answered)

    (row,) = await sources(sessions, [source_id])
    assert server.requests[-1].headers.get("if-none-match") == '"v1"'
    assert row.last_success_at is not None and row.last_success_at >= again
    assert row.lease_owner is None and row.next_poll_at >= again + timedelta(seconds=300)


async def test_an_idle_worker_claims_a_source_close_to_its_due_time_not_at_its_tick(
    worker_settings, sessions, server
):
    url = server.serve("/feed.xml", rss_feed(["one"]))
    # The first one lets the worker start and settle; the second is claimed only if the idle
    # worker wakes for its due time: the tick (10 s) is far longer than the test.
    first = await add_source(sessions, f"{url}?first", due_in_s=0.3)
    second = await add_source(sessions, f"{url}?second", due_in_s=1.0)
    due = {row.id: row.next_poll_at for row in await sources(sessions, [first, second])}

    async def both_polled() -> bool:
        rows = await sources(sessions, [first, second])
        return all(row.last_success_at is not None for row in rows)

    await run_worker(worker_settings, sessions, both_polled, idle_tick_s=10.0)

    rows = await sources(sessions, [first, second])
    lateness_s = {row.id: (row.last_polled_at - due[row.id]).total_seconds() for row in rows}
    assert all(late >= 0 for late in lateness_s.values()), lateness_s  # never before due
    # Typically a few milliseconds; the bound leaves room for a loaded machine.
    assert lateness_s[second] < 0.25, lateness_s


def test_a_busy_worker_claims_ahead_only_as_many_as_it_will_soon_start(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(runner.time, "monotonic", lambda: clock[0])
    quick, slow = PollPace(), PollPace()
    for _ in range(100):  # 400 polls a second: the next CLAIM_AHEAD_S (0.1 s) starts 40
        clock[0] += 0.0025
        quick.finished(1)
        slow.finished(0)
    clock[0] += 10.0
    slow.finished(1)  # one poll in ten seconds: claim only for the free slots
    assert 30 <= quick.ahead() <= CLAIM_BATCH
    assert slow.ahead() == 0
    for _ in range(6000):  # after a pause, a window at 10,000 polls a second: at most a batch
        clock[0] += 0.0001
        quick.finished(1)
    assert quick.ahead() == CLAIM_BATCH
