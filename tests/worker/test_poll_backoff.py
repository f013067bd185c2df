"""What a failed poll's error does to the source's next poll and health, over real HTTP.

Each test serves a feed answer on 127.0.0.1 (or points a source at a closed port), polls once
through the worker and reads the source row: next_poll_at, consecutive_failures, last_error.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from localserver import Handler, Static
from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.jobs import queue_poll
from sigwatch.db.models import Source
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.errors import HTTPStatusError, TransportError
from sigwatch.net.retry_after import MAX_HONOURED_WAIT_S
from sigwatch.worker.poll_backoff import plan_retry
from sigwatch.worker.runner import Worker, collect_once

INTERVAL_S = 60
MAX_BACKOFF_S = 6 * 3600


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "allowed_private_networks": ["127.0.0.1/32"],
            "fetch_timeout_s": 5.0,
            "max_backoff_s": MAX_BACKOFF_S,
        }
    )


@pytest.fixture
async def sessions(
    worker_settings: Settings, migrated_database: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(worker_settings)
    yield session_factory(engine)
    await engine.dispose()


async def add_source(sessions: async_sessionmaker[AsyncSession], url: str) -> int:
    async with sessions.begin() as session:
        source = await create_source(
            session,
            owner_id=None,
            kind="rss",
            name=url,
            config={"url": url},
            poll_interval_s=INTERVAL_S,
        )
        return source.id


async def poll_once(settings, sessions, source_id: int) -> tuple[Source, float]:
    """Poll the source once; return its row and the seconds from the poll to its next poll."""
    await collect_once(settings, sessions, [source_id])
    async with sessions() as session:
        source = await session.get(Source, source_id)
        assert source is not None
    return source, (source.next_poll_at - utcnow()).total_seconds()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed.xml"


async def test_429_with_retry_after_is_not_polled_before_the_server_asked(
    worker_settings, sessions, server
):
    url = server.serve("/feed.xml", b"", status=429, headers={"Retry-After": "3600"})
    source_id = await add_source(sessions, url)

    source, wait_s = await poll_once(worker_settings, sessions, source_id)

    # The ordinary first backoff would be the 60 s interval; the server asked for an hour.
    assert 3590 <= wait_s <= 3600
    assert source.consecutive_failures == 1
    assert "HTTP 429" in source.last_error and "asked to wait 60 min" in source.last_error


async def test_retry_after_longer_than_a_day_is_capped_at_a_day(worker_settings, sessions, server):
    url = server.serve("/feed.xml", b"", status=503, headers={"Retry-After": str(30 * 86400)})
    source_id = await add_source(sessions, url)

    source, wait_s = await poll_once(worker_settings, sessions, source_id)

    assert MAX_HONOURED_WAIT_S - 10 <= wait_s <= MAX_HONOURED_WAIT_S
    assert "sigwatch waits at most 24 h" in source.last_error


async def test_retry_after_shorter_than_the_backoff_does_not_shorten_it(
    worker_settings, sessions, server
):
    url = server.serve("/feed.xml", b"", status=503, headers={"Retry-After": "1"})
    source_id = await add_source(sessions, url)

    _, wait_s = await poll_once(worker_settings, sessions, source_id)

    assert INTERVAL_S * 0.9 - 2 <= wait_s <= INTERVAL_S * 1.1


async def test_exhausted_rate_limit_reset_is_honoured(worker_settings, sessions, server):
    reset = str(int(time.time()) + 1800)
    url = server.serve(
        "/feed.xml",
        b"",
        status=403,
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
    )
    source_id = await add_source(sessions, url)

    source, wait_s = await poll_once(worker_settings, sessions, source_id)

    assert 1780 <= wait_s <= 1800
    assert "rate-limiting" in source.last_error


async def test_503_without_retry_after_backs_off_exponentially(worker_settings, sessions, server):
    url = server.serve("/feed.xml", b"", status=503)
    source_id = await add_source(sessions, url)

    _, first_s = await poll_once(worker_settings, sessions, source_id)
    source, second_s = await poll_once(worker_settings, sessions, source_id)

    assert INTERVAL_S * 0.9 - 2 <= first_s <= INTERVAL_S * 1.1
    assert 2 * INTERVAL_S * 0.9 - 2 <= second_s <= 2 * INTERVAL_S * 1.1
    assert source.consecutive_failures == 2 and "tries again later" in source.last_error


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "set a credential"),
        (403, "refused access"),
        (404, "check the URL"),
        (410, "gone for good"),
    ],
)
async def test_a_4xx_no_retry_can_fix_backs_off_hard_and_says_how_to_fix_it(
    worker_settings, sessions, server, status, says
):
    url = server.serve("/feed.xml", b"", status=status)
    source_id = await add_source(sessions, url)

    source, wait_s = await poll_once(worker_settings, sessions, source_id)

    # Straight to the longest backoff on the first failure, not the 60 s interval.
    assert MAX_BACKOFF_S * 0.9 - 2 <= wait_s <= MAX_BACKOFF_S * 1.1
    assert f"HTTP {status}" in source.last_error and says in source.last_error
    assert "polls this source only every" in source.last_error
    assert "poll it now" in source.last_error


async def test_closed_port_uses_the_ordinary_backoff(worker_settings, sessions):
    source_id = await add_source(sessions, closed_port_url())

    _, first_s = await poll_once(worker_settings, sessions, source_id)
    source, second_s = await poll_once(worker_settings, sessions, source_id)

    assert INTERVAL_S * 0.9 - 2 <= first_s <= INTERVAL_S * 1.1
    assert 2 * INTERVAL_S * 0.9 - 2 <= second_s <= 2 * INTERVAL_S * 1.1
    assert "could not connect to 127.0.0.1" in source.last_error


async def test_a_poll_now_during_a_rate_limited_poll_waits_for_the_server(
    worker_settings, sessions, server
):
    arrived = threading.Event()

    def refuse_slowly(handler: Handler) -> None:
        arrived.set()
        server.stopping.wait(0.5)
        handler.send_static(Static(b"", 429, {"Retry-After": "600"}))

    server.routes["/feed.xml"] = refuse_slowly
    source_id = await add_source(sessions, server.url("/feed.xml"))
    worker = Worker(worker_settings, sessions, idle_tick_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(10):
            while not arrived.is_set():
                await asyncio.sleep(0.02)
        async with sessions.begin() as session:
            await queue_poll(session, source_id, requested_by=None)
        async with asyncio.timeout(10):
            while True:
                async with sessions() as session:
                    source = await session.get(Source, source_id)
                    if source is not None and source.consecutive_failures:
                        break
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    # The queued request is answered by a poll after the server's 10 minutes, not at once.
    assert source.next_poll_at - utcnow() >= timedelta(seconds=590)
    assert len([r for r in server.requests if r.path == "/feed.xml"]) == 1


def test_a_server_that_succeeded_before_is_backed_off_by_its_failure_count():
    error = HTTPStatusError("HTTP 503", status=503, retry_after_s=100.0)
    plan = plan_retry(error, interval_s=60, failures=4, max_backoff_s=MAX_BACKOFF_S)

    # 60 s doubled three times is 480 s, more than the 100 s asked: the backoff wins.
    assert 480 * 0.9 <= plan.delay_s <= 480 * 1.1
    assert plan.earliest_s == 100.0


def test_a_transport_error_and_a_bug_back_off_the_same_ordinary_way():
    for error in (TransportError("could not connect"), None):
        plan = plan_retry(error, interval_s=60, failures=3, max_backoff_s=MAX_BACKOFF_S)
        assert 240 * 0.9 <= plan.delay_s <= 240 * 1.1
        assert plan.earliest_s == 0 and plan.note is None


def test_a_hard_backoff_is_never_shorter_than_the_poll_interval():
    error = HTTPStatusError("HTTP 404", status=404)
    plan = plan_retry(error, interval_s=86400, failures=1, max_backoff_s=3600)

    assert plan.delay_s >= 86400 * 0.9
    assert plan.note is not None and " h until it is fixed" in plan.note  # about a day


def test_a_refusal_that_asks_for_a_longer_wait_than_the_hard_backoff_gets_it():
    error = HTTPStatusError("HTTP 403", status=403, retry_after_s=12 * 3600.0)
    plan = plan_retry(error, interval_s=60, failures=1, max_backoff_s=MAX_BACKOFF_S)

    assert plan.delay_s >= 12 * 3600 and plan.earliest_s == 12 * 3600
