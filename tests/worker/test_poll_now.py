"""A "poll now" always gets a poll that starts after it, even while the source is being polled."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbuilder import rss_feed
from localserver import Handler, Static
from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.jobs import get_job, queue_poll
from sigwatch.db.models import Job
from sigwatch.db.sources import create_source
from sigwatch.worker.runner import Worker


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
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


class SlowFeed:
    """A feed that takes ``delay_s`` to answer and notes when each request arrived."""

    def __init__(self, server, delay_s: float) -> None:
        self.started: list[float] = []
        self.arrived = threading.Event()
        self._server = server

        def write(handler: Handler) -> None:
            self.started.append(time.monotonic())
            self.arrived.set()
            server.stopping.wait(delay_s)
            handler.send_static(Static(rss_feed([f"item {len(self.started)}"])))

        server.routes["/slow.xml"] = write
        self.url = server.url("/slow.xml")

    async def wait_for_request(self, count: int) -> None:
        async with asyncio.timeout(15):
            while len(self.started) < count:
                await asyncio.sleep(0.02)


async def run_until_job_done(settings, sessions, job_id: int, timeout_s: float = 15) -> Job:
    """Run a worker (already started elsewhere) until the job has finished; return it."""
    async with asyncio.timeout(timeout_s):
        while True:
            async with sessions() as session:
                job = await get_job(session, job_id)
            if job.status in ("succeeded", "failed"):
                return job
            await asyncio.sleep(0.05)


async def start_worker(settings, sessions) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    worker = Worker(settings, sessions, idle_tick_s=0.05)
    return stop, asyncio.create_task(worker.run(stop))


async def add_source(sessions, url: str) -> int:
    async with sessions.begin() as session:
        source = await create_source(
            session, owner_id=None, kind="rss", name=url, config={"url": url}, poll_interval_s=3600
        )
        return source.id


async def test_poll_now_during_a_scheduled_poll_gets_a_poll_that_starts_after_it(
    worker_settings, sessions, server
):
    feed = SlowFeed(server, delay_s=0.6)
    source_id = await add_source(sessions, feed.url)  # due at once: the scheduled first poll
    stop, task = await start_worker(worker_settings, sessions)
    try:
        await feed.wait_for_request(1)
        asked_at = time.monotonic()
        async with sessions.begin() as session:
            job_id = (await queue_poll(session, source_id, requested_by=None)).id
        job = await run_until_job_done(worker_settings, sessions, job_id)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert job.status == "succeeded"
    assert len(feed.started) == 2 and feed.started[1] > asked_at
    # The second poll saw what the feed said after the request (item 2 in place of item 1).
    assert job.counters["new"] + job.counters["updated"] == 1


async def test_poll_now_while_a_poll_now_runs_is_a_new_job_answered_by_the_next_poll(
    worker_settings, sessions, server
):
    feed = SlowFeed(server, delay_s=0.6)
    source_id = await add_source(sessions, feed.url)
    async with sessions.begin() as session:
        first_id = (await queue_poll(session, source_id, requested_by=None)).id
    stop, task = await start_worker(worker_settings, sessions)
    try:
        await feed.wait_for_request(1)
        async with sessions() as session:
            assert (await get_job(session, first_id)).status == "running"
        asked_at = time.monotonic()
        async with sessions.begin() as session:
            second_id = (await queue_poll(session, source_id, requested_by=None)).id
        async with sessions.begin() as session:  # asking again while it waits adds nothing
            assert (await queue_poll(session, source_id, requested_by=None)).id == second_id
        second = await run_until_job_done(worker_settings, sessions, second_id)
        async with sessions() as session:
            first = await get_job(session, first_id)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert second_id != first_id
    assert first.status == second.status == "succeeded"
    assert len(feed.started) == 2 and feed.started[1] > asked_at
    assert second.started_at is not None and first.finished_at is not None
    assert second.started_at >= first.finished_at
