"""System alerts end to end: real feeds that fail, go silent or serve stale content, a real
webhook receiver, the worker's freshness checker, and the alarm cleared when the source recovers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbuilder import rss_feed
from sigwatch.alerts.freshness import Thresholds
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.models import Channel, Delivery, Source, Subscription, SystemAlert
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.db.users import create_user
from sigwatch.delivery.channels.registry import seal_channel_config
from sigwatch.delivery.channels.webhook import generate_webhook_secret
from sigwatch.live.bus import MemoryBus
from sigwatch.live.events import event_for
from sigwatch.worker.freshness import FreshnessChecker
from sigwatch.worker.runner import Worker, collect_once


@pytest.fixture
def allowed(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "allowed_private_networks": ["127.0.0.1/32"],
            "freshness_check_s": 0.05,
            "failing_after": 2,
            "stale_after_polls": 3,
            "stale_after_s": 0,
            "silence_min_s": 600,
        }
    )


@pytest.fixture
async def sessions(
    allowed: Settings, migrated_database: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(allowed)
    yield session_factory(engine)
    await engine.dispose()


async def prepare(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    feed_url: str,
    hook_url: str,
    *,
    system_alerts: bool = True,
) -> int:
    """Alice, her feed, her webhook channel and a subscription to it; returns the source id."""
    async with sessions.begin() as session:
        user = await create_user(session, username="alice", password_hash="x", role="user")
        source = await create_source(
            session, owner_id=user.id, kind="rss", name="Alice's feed", config={"url": feed_url}
        )
        config = seal_channel_config(
            "webhook",
            {"url": hook_url, "secret": generate_webhook_secret()},
            ensure_secret_key(settings),
        )
        channel = Channel(owner_id=user.id, kind="webhook", name="hook", config=config)
        session.add(channel)
        await session.flush()
        session.add(
            Subscription(
                owner_id=user.id,
                name="ops",
                channel_ids=[channel.id],
                system_alerts=system_alerts,
            )
        )
        return source.id


def fresh_feed(title: str) -> bytes:
    """A feed whose one item was published a moment ago."""
    published = format_datetime(utcnow())
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://news.example</link><description>d</description><item><title>{title}"
        f"</title><guid>https://news.example/{title}</guid><pubDate>{published}</pubDate>"
        "</item></channel></rss>"
    ).encode()


def received(server) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in server.requests if r.method == "POST"]


async def run_worker_until(settings, sessions, done, timeout_s: float = 20.0) -> None:
    worker = Worker(settings, sessions, idle_tick_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(timeout_s):
            while not done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def alarms(sessions) -> list[SystemAlert]:
    async with sessions() as session:
        return list(await session.scalars(select(SystemAlert).order_by(SystemAlert.id)))


async def test_a_failing_source_raises_failing_once_and_clears_when_it_recovers(
    allowed, sessions, server
):
    feed = server.serve("/feed.xml", b"down for maintenance", status=500)
    hook = server.serve("/hook", b"ok")
    source_id = await prepare(sessions, allowed, feed, hook)

    for _ in range(2):
        (outcome,) = await collect_once(allowed, sessions, [source_id])
        assert not outcome.ok
    await run_worker_until(allowed, sessions, lambda: len(received(server)) >= 1)
    await asyncio.sleep(0.3)  # further checks find it still open: nothing more is sent

    (opened,) = received(server)
    assert opened["type"] == "system_alert.opened"
    data = opened["data"]
    assert data["condition"] == "failing" and data["state"] == "open"
    assert data["source_id"] == source_id and data["source_name"] == "Alice's feed"
    assert "2 failed polls in a row" in data["reason"] and "500" in data["reason"]
    (alarm,) = await alarms(sessions)
    assert alarm.state == "open" and alarm.condition == "failing"

    server.serve("/feed.xml", rss_feed(["Back online"]))
    (outcome,) = await collect_once(allowed, sessions, [source_id])
    assert outcome.ok
    await run_worker_until(allowed, sessions, lambda: len(received(server)) >= 2)
    await asyncio.sleep(0.3)

    first, cleared = received(server)
    assert cleared["type"] == "system_alert.cleared"
    assert cleared["data"]["system_alert_id"] == first["data"]["system_alert_id"]
    assert cleared["data"]["clear_reason"] == "the source polled successfully again"
    (alarm,) = await alarms(sessions)
    assert alarm.state == "cleared" and alarm.cleared_at is not None
    async with sessions() as session:
        kinds = [d.kind for d in await session.scalars(select(Delivery).order_by(Delivery.id))]
    assert kinds == ["system_opened", "system_cleared"]


async def test_a_subscription_without_system_alerts_hears_nothing(allowed, sessions, server):
    feed = server.serve("/feed.xml", b"", status=503)
    hook = server.serve("/hook", b"ok")
    source_id = await prepare(sessions, allowed, feed, hook, system_alerts=False)
    for _ in range(2):
        await collect_once(allowed, sessions, [source_id])
    result = await FreshnessChecker(
        sessions, Thresholds.from_settings(allowed), interval_s=1
    ).check()
    assert [a.condition for a in result.raised] == ["failing"]
    async with sessions() as session:
        assert list(await session.scalars(select(Delivery))) == []


async def test_a_source_silent_against_its_learned_gap_raises_silent_until_a_new_post(
    allowed, sessions, server
):
    feed = server.serve("/feed.xml", rss_feed(["Old news"]))
    hook = server.serve("/hook", b"ok")
    source_id = await prepare(sessions, allowed, feed, hook)
    now = utcnow()
    async with sessions.begin() as session:
        # It has learned that it posts every 5 minutes; its last new post is 2 hours old.
        await session.execute(
            update(Source)
            .where(Source.id == source_id)
            .values(
                post_gap_s=300.0,
                post_gap_samples=10,
                last_new_post_at=now - timedelta(hours=2),
                last_success_at=now,
                created_at=now - timedelta(days=1),
            )
        )
    checker = FreshnessChecker(sessions, Thresholds.from_settings(allowed), interval_s=1)
    result = await checker.check()
    (silent,) = result.raised
    assert silent.condition == "silent"
    assert "no new post for 2.0h" in silent.reason and "every 5m" in silent.reason
    assert (await checker.check()).raised == []  # still silent: raised once

    # A new post (published now) is stored by a real poll: the silence is over.
    server.serve("/feed.xml", fresh_feed("Fresh news"))
    (outcome,) = await collect_once(allowed, sessions, [source_id])
    assert outcome.new == 1
    result = await checker.check()
    (cleared,) = result.cleared
    assert cleared.id == silent.id and cleared.clear_reason == "the source has a new post"
    await run_worker_until(allowed, sessions, lambda: len(received(server)) >= 2)
    # Both notices were due at once, so they may arrive in either order; each says its state.
    by_type = {m["type"]: m["data"] for m in received(server)}
    assert set(by_type) == {"system_alert.opened", "system_alert.cleared"}
    assert by_type["system_alert.opened"]["condition"] == "silent"
    assert by_type["system_alert.cleared"]["state"] == "cleared"


async def test_the_same_newest_item_served_with_200s_is_stale_until_it_changes(
    allowed, sessions, server
):
    feed = server.serve("/feed.xml", rss_feed(["Frozen headline"]))
    hook = server.serve("/hook", b"ok")
    source_id = await prepare(sessions, allowed, feed, hook)
    checker = FreshnessChecker(sessions, Thresholds.from_settings(allowed), interval_s=1)
    # The first poll notes the newest item; three more serve it unchanged.
    for polls in range(4):
        (outcome,) = await collect_once(allowed, sessions, [source_id])
        assert outcome.ok and not outcome.not_modified
        raised = (await checker.check()).raised
        assert [a.condition for a in raised] == (["stale"] if polls == 3 else [])
    (alarm,) = await alarms(sessions)
    assert "has not changed over 3 successful polls" in alarm.reason

    server.serve("/feed.xml", rss_feed(["Frozen headline", "A thaw"]))
    await collect_once(allowed, sessions, [source_id])
    (cleared,) = (await checker.check()).cleared
    assert cleared.clear_reason == "the newest item changed"


async def test_not_modified_answers_are_not_stale_content(allowed, sessions, server):
    feed = server.serve("/feed.xml", rss_feed(["Quiet"]), headers={"ETag": '"v1"'})
    hook = server.serve("/hook", b"ok")
    source_id = await prepare(sessions, allowed, feed, hook)
    for _ in range(6):
        await collect_once(allowed, sessions, [source_id])
    async with sessions() as session:
        source = await session.get(Source, source_id)
        assert source is not None and source.unchanged_polls == 0
    checker = FreshnessChecker(sessions, Thresholds.from_settings(allowed), interval_s=1)
    assert (await checker.check()).raised == []


async def test_workers_checking_at_once_raise_one_alarm_with_one_delivery(
    allowed, sessions, server
):
    feed = server.serve("/feed.xml", b"", status=500)
    hook = server.serve("/hook", b"ok")
    source_id = await prepare(sessions, allowed, feed, hook)
    for _ in range(2):
        await collect_once(allowed, sessions, [source_id])
    thresholds = Thresholds.from_settings(allowed)
    checkers = [FreshnessChecker(sessions, thresholds, interval_s=1) for _ in range(4)]
    results = await asyncio.gather(*(checker.check() for checker in checkers))
    assert sum(len(result.raised) for result in results) == 1
    assert len(await alarms(sessions)) == 1
    async with sessions() as session:
        assert len(list(await session.scalars(select(Delivery)))) == 1


async def test_raised_and_cleared_alarms_are_published_live_to_the_sources_owner(
    allowed, sessions, server
):
    feed = server.serve("/feed.xml", b"", status=500)
    hook = server.serve("/hook", b"ok")
    source_id = await prepare(sessions, allowed, feed, hook)
    for _ in range(2):
        await collect_once(allowed, sessions, [source_id])
    bus = MemoryBus()
    events = bus.subscribe()
    checker = FreshnessChecker(sessions, Thresholds.from_settings(allowed), interval_s=1, bus=bus)
    (raised,) = (await checker.check()).raised
    async with asyncio.timeout(5):
        event = await anext(events)
    assert event["type"] == "system_alert"
    assert event["system_alert"]["id"] == raised.id
    assert event["system_alert"]["state"] == "open"
    assert event["owner"] == raised.owner_id is not None
    assert event_for(event, raised.owner_id) is not None
    assert event_for(event, raised.owner_id + 1) is None


async def test_one_failed_poll_does_not_clear_a_silent_alarm(allowed, sessions, server):
    feed = server.serve("/feed.xml", b"", status=502)
    hook = server.serve("/hook", b"ok")
    source_id = await prepare(sessions, allowed, feed, hook)
    now = utcnow()
    async with sessions.begin() as session:
        await session.execute(
            update(Source)
            .where(Source.id == source_id)
            .values(
                post_gap_s=60.0,
                post_gap_samples=10,
                last_new_post_at=now - timedelta(hours=3),
                last_success_at=now,
                created_at=now - timedelta(days=1),
            )
        )
    checker = FreshnessChecker(sessions, Thresholds.from_settings(allowed), interval_s=1)
    assert [a.condition for a in (await checker.check()).raised] == ["silent"]
    (outcome,) = await collect_once(allowed, sessions, [source_id])  # one failure of two
    assert not outcome.ok
    result = await checker.check()
    assert result.raised == [] and result.cleared == []
    (outcome,) = await collect_once(allowed, sessions, [source_id])  # now it is failing
    result = await checker.check()
    assert [a.condition for a in result.raised] == ["failing"]
    assert [(a.condition, a.clear_reason) for a in result.cleared] == [
        ("silent", "the source is failing instead")
    ]
