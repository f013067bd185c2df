"""Adaptive polling through the worker: feeds served on 127.0.0.1 that post often or seldom.

Each feed's items carry their published times, so the first poll already learns how often the
source posts; what the worker chose, and why, is read back from the source's health.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.models import Source
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.worker.runner import collect_once


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
    """The shared settings, letting the worker reach 127.0.0.1, with an rss minimum of 20 s."""
    return settings.model_copy(
        update={"allowed_private_networks": ["127.0.0.1/32"], "min_poll_interval_rss_s": 20}
    )


@pytest.fixture
async def sessions(
    worker_settings: Settings, migrated_database: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(worker_settings)
    yield session_factory(engine)
    await engine.dispose()


async def get_source(sessions: async_sessionmaker[AsyncSession], source_id: int) -> Source:
    async with sessions() as session:
        source = await session.get(Source, source_id)
        assert source is not None
        return source


def dated_feed(published: list[datetime]) -> bytes:
    """An RSS feed with one item per moment, newest first."""
    items = "".join(
        f"<item><title>post {n}</title><guid>https://news.example/{n}</guid>"
        f"<pubDate>{format_datetime(moment)}</pubDate><description>post {n}</description></item>"
        for n, moment in sorted(enumerate(published), key=lambda item: item[1], reverse=True)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://news.example</link><description>d</description>{items}</channel></rss>"
    ).encode()


async def add_feed(sessions, url: str, poll_interval_s: int) -> int:
    async with sessions.begin() as session:
        source = await create_source(
            session,
            owner_id=None,
            kind="rss",
            name=url,
            config={"url": url},
            poll_interval_s=poll_interval_s,
        )
        return source.id


async def test_a_feed_posting_every_minute_is_polled_at_the_rss_minimum_and_says_why(
    worker_settings, sessions, server
):
    now = utcnow()
    url = server.serve("/busy.xml", dated_feed([now - timedelta(minutes=m) for m in range(6)]))
    source_id = await add_feed(sessions, url, poll_interval_s=600)

    await collect_once(worker_settings, sessions, [source_id])

    source = await get_source(sessions, source_id)
    assert source.post_gap_s == pytest.approx(60, abs=1)
    assert source.post_gap_samples == 5
    assert abs((source.last_new_post_at - now).total_seconds()) < 1
    assert source.interval_reason == "adaptive: new posts every ~1 min → 20 s (the rss minimum)"
    assert 20 <= source.effective_interval_s <= 22
    wait = (source.next_poll_at - source.last_success_at).total_seconds()
    assert wait == pytest.approx(source.effective_interval_s, abs=0.01)


async def test_a_feed_posting_every_other_day_is_polled_at_its_own_interval(
    worker_settings, sessions, server
):
    now = utcnow()
    published = [now - timedelta(days=1 + 2 * n) for n in range(5)]
    url = server.serve("/quiet.xml", dated_feed(published))
    source_id = await add_feed(sessions, url, poll_interval_s=600)

    await collect_once(worker_settings, sessions, [source_id])

    source = await get_source(sessions, source_id)
    assert source.post_gap_s == pytest.approx(2 * 86400, abs=1)
    assert source.interval_reason == (
        "adaptive: new posts every ~2 d → 10 min (the source's poll_interval_s)"
    )
    assert 540 <= source.effective_interval_s <= 600


async def test_a_new_post_between_two_polls_adds_one_gap_to_what_was_learnt(
    worker_settings, sessions, server
):
    now = utcnow()
    published = [now - timedelta(minutes=10 + 4 * n) for n in range(4)]
    url = server.serve("/feed.xml", dated_feed(published))
    source_id = await add_feed(sessions, url, poll_interval_s=600)
    await collect_once(worker_settings, sessions, [source_id])
    first = await get_source(sessions, source_id)

    server.serve("/feed.xml", dated_feed([*published, now]))
    await collect_once(worker_settings, sessions, [source_id])

    second = await get_source(sessions, source_id)
    assert (first.post_gap_samples, second.post_gap_samples) == (3, 4)
    assert first.post_gap_s == pytest.approx(240, abs=1)
    assert second.post_gap_s == pytest.approx(240 + 0.3 * (600 - 240), abs=1)
    assert second.last_new_post_at > first.last_new_post_at
    assert second.interval_reason.startswith("adaptive: new posts every ~6 min → 87 s")


async def test_a_failing_source_stored_below_its_kinds_minimum_retries_no_sooner_than_it(
    worker_settings, sessions, server
):
    url = server.serve("/down.xml", b"unavailable", status=503)
    source_id = await add_feed(sessions, url, poll_interval_s=5)  # stored before the minimum

    await collect_once(worker_settings, sessions, [source_id])

    source = await get_source(sessions, source_id)
    assert source.consecutive_failures == 1
    wait = (source.next_poll_at - source.last_error_at).total_seconds()
    assert wait >= worker_settings.min_poll_interval_rss_s * 0.9
