"""From a polled post to a signed webhook: routing, the outbox, retries and dead letters."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbuilder import rss_feed
from localserver import Handler, Static
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.entities import create_entity
from sigwatch.db.models import Channel, Delivery, Silence, Subscription
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.db.users import create_user
from sigwatch.delivery.channels.registry import seal_channel_config
from sigwatch.delivery.channels.webhook import generate_webhook_secret
from sigwatch.worker.runner import Worker

AIRDROP = "Helix Network airdrop claim is now open: check eligibility for the $HLX airdrop"
AIRDROP_AGAIN = "The Helix Network airdrop claim is now open, eligibility checker live"
SECRET = generate_webhook_secret()


def verify(headers: dict[str, str], body: bytes) -> bool:
    """The receiver's own Standard Webhooks check, independent of sigwatch's code."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        part.split(",", 1)[1] == expected for part in headers["webhook-signature"].split(" ")
    )


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


async def prepare(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    feed_urls: list[str],
    hook_url: str,
    **subscription: Any,
) -> int:
    """A user, her sources, the Helix entity, a webhook channel and a subscription to it."""
    async with sessions.begin() as session:
        user = await create_user(session, username="alice", password_hash="x", role="user")
        await create_entity(session, name="Helix Network", aliases=["Helix"], symbols=["HLX"])
        for url in feed_urls:
            await create_source(
                session, owner_id=user.id, kind="rss", name=url, config={"url": url}
            )
        config = seal_channel_config(
            "webhook", {"url": hook_url, "secret": SECRET}, ensure_secret_key(settings)
        )
        channel = Channel(owner_id=user.id, kind="webhook", name="hook", config=config)
        session.add(channel)
        await session.flush()
        session.add(
            Subscription(
                owner_id=user.id,
                name="everything",
                channel_ids=[channel.id],
                **subscription,
            )
        )
        return user.id


async def run_until(settings, sessions, done, timeout_s: float = 20.0) -> None:
    worker = Worker(settings, sessions, idle_tick_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(timeout_s):
            while not await done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def deliveries(sessions) -> list[Delivery]:
    async with sessions() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


def posts_received(server) -> list[Any]:
    return [r for r in server.requests if r.method == "POST"]


async def test_story_on_two_sources_is_delivered_once_signed(allowed, sessions, server):
    feeds = [
        server.serve("/a.xml", rss_feed([AIRDROP])),
        server.serve("/b.xml", rss_feed([AIRDROP_AGAIN], link="https://other.example")),
    ]
    hook = server.serve("/hook", b"ok")
    await prepare(sessions, allowed, feeds, hook)

    async def delivered() -> bool:
        rows = await deliveries(sessions)
        return bool(rows) and all(row.status == "sent" for row in rows)

    await run_until(allowed, sessions, delivered)
    await asyncio.sleep(0.3)  # a second delivery, if any were wrongly made, would show now
    received = posts_received(server)
    assert len(received) == 1
    request = received[0]
    assert verify(request.headers, request.body)
    payload = json.loads(request.body)
    assert payload["type"] == "alert.created"
    assert payload["data"]["entity"] == "Helix Network" and payload["data"]["event"] == "airdrop"
    rows = await deliveries(sessions)
    assert request.headers["webhook-id"] == rows[0].idempotency_key
    assert rows[0].response_status == 200 and rows[0].attempts == 1


async def test_receiver_down_for_a_while_is_retried_until_it_answers(allowed, sessions, server):
    answers = iter([503, 503])

    def flaky(handler: Handler) -> None:
        handler.send_static(
            Static(b"busy" if (status := next(answers, 200)) != 200 else b"ok", status)
        )

    server.routes["/hook"] = flaky
    feed = server.serve("/a.xml", rss_feed([AIRDROP]))
    await prepare(sessions, allowed, [feed], server.url("/hook"))

    async def sent() -> bool:
        rows = await deliveries(sessions)
        return bool(rows) and rows[0].status == "sent"

    await run_until(allowed, sessions, sent, timeout_s=30)
    rows = await deliveries(sessions)
    assert rows[0].attempts == 3
    ids = {r.headers["webhook-id"] for r in posts_received(server)}
    assert len(posts_received(server)) == 3 and len(ids) == 1  # same id: receivers can dedupe


async def test_permanent_refusal_goes_to_the_dead_letters_with_the_reason(
    allowed, sessions, server
):
    feed = server.serve("/a.xml", rss_feed([AIRDROP]))
    hook = server.serve("/hook", b'{"error": "unknown endpoint"}', status=410)
    await prepare(sessions, allowed, [feed], hook)

    async def dead() -> bool:
        rows = await deliveries(sessions)
        return bool(rows) and rows[0].status == "dead"

    await run_until(allowed, sessions, dead)
    rows = await deliveries(sessions)
    assert rows[0].attempts == 1 and "410" in (rows[0].last_error or "")


async def test_filters_silences_and_quiet_hours_route_deliveries(allowed, sessions, server):
    feed = server.serve("/a.xml", rss_feed([AIRDROP]))
    hook = server.serve("/hook", b"ok")
    user_id = await prepare(sessions, allowed, [feed], hook, filters={"events": ["listing"]})
    async with sessions.begin() as session:
        session.add(
            Subscription(
                owner_id=user_id,
                name="quiet",
                channel_ids=[1],
                quiet_hours={"start": "00:00", "end": "23:59"},
            )
        )
        session.add(
            Silence(owner_id=user_id, entity="Somebody Else", until=utcnow().replace(year=2099))
        )

    async def routed() -> bool:
        async with sessions() as session:
            return (await session.scalar(select(Delivery.id).limit(1))) is not None

    await run_until(allowed, sessions, routed)
    rows = await deliveries(sessions)
    # The events filter kept the first subscription quiet; the second waits out quiet hours.
    assert len(rows) == 1 and rows[0].status == "pending"
    assert rows[0].next_attempt_at > utcnow()
    assert posts_received(server) == []


async def test_silenced_entity_is_not_delivered(allowed, sessions, server):
    feed = server.serve("/a.xml", rss_feed([AIRDROP]))
    hook = server.serve("/hook", b"ok")
    user_id = await prepare(sessions, allowed, [feed], hook)
    async with sessions.begin() as session:
        session.add(
            Silence(owner_id=user_id, entity="helix network", until=utcnow().replace(year=2099))
        )

    async def polled() -> bool:
        async with sessions() as session:
            from sigwatch.db.models import Alert

            return (await session.scalar(select(Alert.id).limit(1))) is not None

    await run_until(allowed, sessions, polled)
    assert await deliveries(sessions) == []


async def test_hourly_digest_waits_for_the_hour_then_sends_one_message(allowed, sessions, server):
    mainnet = "Helix Network mainnet launch is live: the Helix Network mainnet is now open"
    feed = server.serve("/a.xml", rss_feed([AIRDROP, mainnet]))
    hook = server.serve("/hook", b"ok")
    await prepare(sessions, allowed, [feed], hook, mode="hourly")

    async def queued() -> bool:
        return len(await deliveries(sessions)) == 2

    await run_until(allowed, sessions, queued)
    rows = await deliveries(sessions)
    assert {row.kind for row in rows} == {"digest"}
    assert all(row.next_attempt_at.minute == 0 and row.next_attempt_at > utcnow() for row in rows)
    assert posts_received(server) == []

    async with sessions.begin() as session:  # the hour has come
        for row in await session.scalars(select(Delivery)):
            row.next_attempt_at = utcnow()

    async def sent() -> bool:
        return all(row.status == "sent" for row in await deliveries(sessions))

    await run_until(allowed, sessions, sent)
    received = posts_received(server)
    assert len(received) == 1
    payload = json.loads(received[0].body)
    assert payload["type"] == "alert.digest" and "2 alerts" in payload["data"]["title"]
