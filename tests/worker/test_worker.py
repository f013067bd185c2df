"""The worker loop in process: claim, fetch over real HTTP, store, record health, back off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbuilder import rss_feed
from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.jobs import get_job, queue_poll
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Post, Source
from sigwatch.db.posts import list_posts, merge_pending_search_entries
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.worker.runner import Worker, collect_once


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


async def add_source(sessions: async_sessionmaker[AsyncSession], url: str, **kw: Any) -> int:
    async with sessions.begin() as session:
        source = await create_source(
            session, owner_id=None, kind="rss", name=url, config={"url": url}, **kw
        )
        return source.id


async def get_source(sessions: async_sessionmaker[AsyncSession], source_id: int) -> Source:
    async with sessions() as session:
        source = await session.get(Source, source_id)
        assert source is not None
        return source


async def post_titles(sessions: async_sessionmaker[AsyncSession], source_id: int) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Post.title).where(Post.source_id == source_id).order_by(Post.id)
        )
        return [title or "" for title in rows]


async def run_worker_until(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    done: Callable[[], Any],
    timeout_s: float = 15.0,
) -> Worker:
    """Run a worker in this process until ``done()`` (awaitable) is true, then stop it."""
    worker = Worker(settings, sessions, idle_tick_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(timeout_s):
            while not await done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    return worker


async def test_worker_polls_due_source_stores_posts_and_schedules_next_poll(
    worker_settings, sessions, server
):
    url = server.serve("/feed.xml", rss_feed(["one", "two", "three"]))
    source_id = await add_source(sessions, url, poll_interval_s=600)

    async def stored() -> bool:
        return len(await post_titles(sessions, source_id)) == 3

    before = utcnow()
    await run_worker_until(worker_settings, sessions, stored)

    assert sorted(await post_titles(sessions, source_id)) == ["one", "three", "two"]
    source = await get_source(sessions, source_id)
    assert source.last_success_at is not None and source.last_success_at >= before
    assert source.consecutive_failures == 0 and source.last_error is None
    assert source.lease_owner is None and source.lease_expires_at is None
    # Its interval, less at most the jitter (a tenth): a feed seen once has taught no rate.
    assert source.next_poll_at >= before + timedelta(seconds=600 * 0.9 - 1)
    assert source.next_poll_at <= utcnow() + timedelta(seconds=600)


async def test_second_poll_is_conditional_and_a_304_stores_nothing(
    worker_settings, sessions, server
):
    url = server.serve(
        "/feed.xml",
        rss_feed(["one", "two"]),
        headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"},
    )
    source_id = await add_source(sessions, url)
    first = await collect_once(worker_settings, sessions, [source_id])
    second = await collect_once(worker_settings, sessions, [source_id])

    assert first[0].new == 2
    assert second[0].ok and second[0].not_modified and second[0].new == 0
    assert server.requests[-1].headers.get("if-none-match") == '"v1"'
    assert (await get_source(sessions, source_id)).state.get("etag") == '"v1"'


async def test_changed_and_new_items_are_reported_on_the_next_poll(
    worker_settings, sessions, server
):
    url = server.serve("/feed.xml", rss_feed(["one", "two"]))
    source_id = await add_source(sessions, url)
    await collect_once(worker_settings, sessions, [source_id])
    server.serve("/feed.xml", rss_feed(["one (corrected)", "two", "three"]))
    outcome = (await collect_once(worker_settings, sessions, [source_id]))[0]
    assert (outcome.new, outcome.updated) == (1, 1)


async def test_failing_source_backs_off_and_records_error_while_others_continue(
    worker_settings, sessions, server
):
    good = await add_source(sessions, server.serve("/good.xml", rss_feed(["fine"])))
    bad = await add_source(
        sessions, server.serve("/bad.xml", b"gone", status=500), poll_interval_s=60
    )

    outcomes = {o.source_id: o for o in await collect_once(worker_settings, sessions, [good, bad])}
    assert outcomes[good].ok and outcomes[good].new == 1
    assert not outcomes[bad].ok and "500" in (outcomes[bad].error or "")

    source = await get_source(sessions, bad)
    assert source.consecutive_failures == 1 and "500" in (source.last_error or "")
    first_delay = source.next_poll_at - utcnow()
    await collect_once(worker_settings, sessions, [bad])
    source = await get_source(sessions, bad)
    second_delay = source.next_poll_at - utcnow()
    assert source.consecutive_failures == 2
    assert second_delay > first_delay * 1.5  # doubling, less jitter


async def test_malformed_feed_keeps_items_that_parse_and_records_the_problem(
    worker_settings, sessions, server
):
    broken = rss_feed(["kept"]).replace(b"</channel></rss>", b"<item><title>cut")
    source_id = await add_source(sessions, server.serve("/broken.xml", broken))
    outcome = (await collect_once(worker_settings, sessions, [source_id]))[0]

    assert outcome.ok
    assert "kept" in await post_titles(sessions, source_id)
    source = await get_source(sessions, source_id)
    assert source.consecutive_failures == 0
    assert source.last_error  # the warning is kept for the user to see


async def test_blocked_address_is_a_source_error_not_a_crash(settings, server):
    # Default settings: the SSRF guard refuses loopback.
    engine = create_engine(settings)
    await upgrade(engine)
    sessions = session_factory(engine)
    try:
        source_id = await add_source(sessions, server.serve("/feed.xml", rss_feed(["x"])))
        outcome = (await collect_once(settings, sessions, [source_id]))[0]
        assert not outcome.ok
        assert "SIGWATCH_ALLOW" in (outcome.error or "")
        assert server.requests == []
    finally:
        await engine.dispose()


async def test_queued_poll_job_is_run_by_the_worker_with_counters(
    worker_settings, sessions, server
):
    url = server.serve("/feed.xml", rss_feed(["a", "b"]))
    source_id = await add_source(sessions, url)
    await collect_once(worker_settings, sessions, [source_id])  # first poll: not due for 300 s
    server.serve("/feed.xml", rss_feed(["a", "b", "c"]))
    async with sessions.begin() as session:
        job_id = (await queue_poll(session, source_id, requested_by=None)).id

    async def finished() -> bool:
        async with sessions() as session:
            return (await get_job(session, job_id)).status == "succeeded"

    await run_worker_until(worker_settings, sessions, finished)
    async with sessions() as session:
        job = await get_job(session, job_id)
    assert job.counters == {"fetched": 3, "new": 1, "updated": 0}
    assert job.progress == 1.0 and job.started_at and job.finished_at


async def test_stopping_worker_releases_its_leases(worker_settings, sessions, server):
    url = server.sleep_then_serve("/slow.xml", 0.5, rss_feed(["late"]))
    source_id = await add_source(sessions, url)
    worker = Worker(worker_settings, sessions, idle_tick_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(10):
        while not server.requests:
            await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 10)
    source = await get_source(sessions, source_id)
    assert source.lease_owner is None
    assert await post_titles(sessions, source_id) == ["late"]  # the in-flight poll finished


async def test_worker_merges_the_search_index_after_storing_posts(
    worker_settings, sessions, server
):
    url = server.serve("/feed.xml", rss_feed(["token unlock one", "token unlock two"]))
    source_id = await add_source(sessions, url, poll_interval_s=600)

    async def stored() -> bool:
        return len(await post_titles(sessions, source_id)) == 2

    await run_worker_until(worker_settings, sessions, stored)

    async with sessions.begin() as session:
        # Nothing left pending: the worker's merger took in what the poll stored.
        assert await merge_pending_search_entries(session) == 0
        page = await list_posts(session, owner_id=None, q="unlock two")
    assert [p.title for p in page.items] == ["token unlock two"]


async def test_worker_claims_nothing_while_every_slot_is_busy(
    worker_settings, sessions, server, monkeypatch
):
    from sigwatch.worker import runner

    limits: list[int] = []
    claim = runner.claim_due_sources

    async def recording_claim(session, **kw):
        limits.append(kw["limit"])
        return await claim(session, **kw)

    monkeypatch.setattr(runner, "claim_due_sources", recording_claim)
    url = server.sleep_then_serve("/slow.xml", 0.5, rss_feed(["late"]))
    source_id = await add_source(sessions, url, poll_interval_s=600)
    settings = worker_settings.model_copy(update={"worker_concurrency": 1})

    async def stored() -> bool:
        return await post_titles(sessions, source_id) == ["late"]

    await run_worker_until(settings, sessions, stored)

    # The idle tick (50 ms) passed about ten times during the poll; none of them claimed.
    assert limits and all(limit == 1 for limit in limits)


async def test_queue_depth_gauge_is_counted_once_per_period_not_at_every_claim(
    worker_settings, sessions, server, monkeypatch
):
    from sigwatch.observability.metrics import REGISTRY
    from sigwatch.worker import runner

    counts: list[int] = []
    count = runner.count_due_sources

    async def recording_count(session, **kw):
        counts.append(await count(session, **kw))
        return counts[-1]

    monkeypatch.setattr(runner, "count_due_sources", recording_count)
    monkeypatch.setattr(runner, "QUEUE_DEPTH_EVERY_S", 60.0)  # one period covers the test
    url = server.serve("/feed.xml", rss_feed(["one"]))
    for n in range(4):
        await add_source(sessions, f"{url}?copy={n}", poll_interval_s=600)
    settings = worker_settings.model_copy(update={"worker_concurrency": 1})

    async def all_polled() -> bool:
        async with sessions() as session:
            rows = await session.scalars(select(Source.last_success_at))
            return sum(row is not None for row in rows) == 4

    await run_worker_until(settings, sessions, all_polled)

    # Four claims of one source each: the gauge was counted at the first only, and saw the
    # three sources still due after it.
    assert counts == [3]
    assert REGISTRY.get_sample_value("sigwatch_queue_depth") == 3


async def test_a_claim_tells_which_sources_have_a_poll_job_waiting(
    worker_settings, sessions, server
):
    from sigwatch.db.jobs import BACKFILL
    from sigwatch.db.models import Job
    from sigwatch.db.schedule import claim_due_sources

    url = server.serve("/feed.xml", rss_feed(["one"]))
    asked, backfilling, plain = [await add_source(sessions, f"{url}?{n}") for n in range(3)]
    async with sessions.begin() as session:
        await queue_poll(session, asked, requested_by=None)
        session.add(Job(source_id=backfilling, kind=BACKFILL, status="queued"))
    async with sessions.begin() as session:
        claimed = await claim_due_sources(
            session, worker_id="w", now=utcnow() + timedelta(seconds=1), lease_s=60, limit=10
        )

    assert {c.id: c.jobs_waiting for c in claimed} == {
        asked: True,
        backfilling: False,  # a backfill is not a poll's to answer
        plain: False,
    }


async def test_a_poll_without_a_job_waiting_does_not_look_for_one(
    worker_settings, sessions, server, monkeypatch
):
    from sigwatch.worker import collect

    looked: list[int] = []
    start = collect.start_queued_jobs

    async def recording_start(session, source_id):
        looked.append(source_id)
        return await start(session, source_id)

    monkeypatch.setattr(collect, "start_queued_jobs", recording_start)
    url = server.serve("/feed.xml", rss_feed(["one"]))
    plain, asked = await add_source(sessions, url), await add_source(sessions, f"{url}?asked")
    async with sessions.begin() as session:
        job_id = (await queue_poll(session, asked, requested_by=None)).id

    outcomes = await collect_once(worker_settings, sessions, [plain, asked])

    assert all(outcome.ok for outcome in outcomes)
    assert looked == [asked]
    async with sessions() as session:
        assert (await get_job(session, job_id)).status == "succeeded"
