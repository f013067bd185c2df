"""WebSub push end to end: a feed names a local hub, sigwatch subscribes, the hub verifies
against the real app served by uvicorn on 127.0.0.1, then pushes signed content.

The subscriber's rounds are run by the test (``WebSubSubscriber.tick``) and polls by
``collect_once``, so each step happens when the test says; the hub (tests/websubhub.py) talks
to the app over real HTTP from its own threads.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import uvicorn
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbuilder import T0, rss_feed
from localserver import LocalServer
from sigwatch.api import create_app
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.entities import create_entity
from sigwatch.db.models import (
    Alert,
    Channel,
    Delivery,
    Post,
    Source,
    Subscription,
    WebSubSubscription,
)
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.db.users import create_user
from sigwatch.delivery.channels.registry import seal_channel_config
from sigwatch.delivery.channels.webhook import generate_webhook_secret
from sigwatch.net.client import OutboundClient
from sigwatch.worker.runner import collect_once
from sigwatch.worker.websub import PUSH_FALLBACK_POLL_S, WebSubSubscriber
from websubhub import WebSubHub, send

AIRDROP = "Helix Network airdrop claim is now open: check eligibility for the $HLX airdrop"


def feed_naming_hub(hub_url: str, topic: str, titles: list[str], link: str) -> bytes:
    """An RSS feed whose channel names ``hub_url`` and its own ``topic`` with atom:link."""
    links = f'<atom:link rel="hub" href="{hub_url}"/><atom:link rel="self" href="{topic}"/>'
    return (
        rss_feed(titles, link=link)
        .replace(
            b'<rss version="2.0">', b'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
        )
        .replace(b"<channel>", b"<channel>" + links.encode())
    )


@pytest.fixture
def hub() -> Iterator[WebSubHub]:
    running = WebSubHub().start()
    yield running
    running.stop()


@pytest.fixture
def app_socket() -> Iterator[socket.socket]:
    """The socket the app will serve on, bound first so its URL can go into the settings."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture
def push_settings(migrated_database: Settings, app_socket: socket.socket) -> Settings:
    port = app_socket.getsockname()[1]
    return migrated_database.model_copy(
        update={
            "public_url": f"http://127.0.0.1:{port}",
            "allowed_private_networks": ["127.0.0.1/32"],
            "fetch_timeout_s": 5.0,
        }
    )


@pytest.fixture
def served(push_settings: Settings, app_socket: socket.socket) -> Iterator[str]:
    """The real app under uvicorn on 127.0.0.1, in a thread of its own; its base URL."""
    config = uvicorn.Config(create_app(push_settings), log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [app_socket]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.02)
    try:
        assert push_settings.public_url is not None
        yield push_settings.public_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
async def sessions(push_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(push_settings)
    yield session_factory(engine)
    await engine.dispose()


@dataclass
class Feed:
    """The watched feed: its source, its URL (also its topic) and the server serving it."""

    source_id: int
    url: str
    server: LocalServer


@pytest.fixture
async def feed(
    push_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    server: LocalServer,
    hub: WebSubHub,
) -> Feed:
    """Alice's feed that names the hub, the Helix entity, and her webhook subscription."""
    url = server.url("/feed.xml")
    server.serve("/feed.xml", feed_naming_hub(hub.url, url, ["quiet news"], "https://news.example"))
    async with sessions.begin() as session:
        user = await create_user(session, username="alice", password_hash="x", role="user")
        await create_entity(session, name="Helix Network", aliases=["Helix"], symbols=["HLX"])
        source = await create_source(
            session, owner_id=user.id, kind="rss", name="news", config={"url": url}
        )
        config = seal_channel_config(
            "webhook",
            {"url": "http://127.0.0.1:9/hook", "secret": generate_webhook_secret()},
            ensure_secret_key(push_settings),
        )
        channel = Channel(owner_id=user.id, kind="webhook", name="hook", config=config)
        session.add(channel)
        await session.flush()
        session.add(Subscription(owner_id=user.id, name="all", channel_ids=[channel.id]))
    return Feed(source.id, url, server)


@pytest.fixture
async def subscriber(
    push_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[WebSubSubscriber]:
    async with OutboundClient.from_settings(push_settings) as client:
        yield WebSubSubscriber(
            sessions,
            public_url=push_settings.public_url,
            client=client,
            secret_key=ensure_secret_key(push_settings),
        )


async def subscription(sessions: async_sessionmaker[AsyncSession]) -> WebSubSubscription:
    async with sessions() as session:
        row = await session.scalar(select(WebSubSubscription))
        assert row is not None
        return row


async def count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def subscribe(settings, sessions, subscriber, feed, hub) -> WebSubSubscription:
    """Poll once (the poll finds the hub), then one subscriber round, verified by the hub."""
    (outcome,) = await collect_once(settings, sessions, [feed.source_id])
    assert outcome.ok, outcome.error
    expected = len(hub.verifications) + 1  # counted first: the hub may verify during the round
    await subscriber.tick()
    await asyncio.to_thread(hub.wait_for_verifications, expected)
    return await subscription(sessions)


async def test_subscribe_verify_and_a_signed_push_alerts_at_once_without_a_poll(
    push_settings, sessions, served, subscriber, feed, hub
):
    sub = await subscribe(push_settings, sessions, subscriber, feed, hub)

    (request,) = hub.requests
    assert request["hub.mode"] == "subscribe" and request["hub.topic"] == feed.url
    assert (
        request["hub.callback"]
        == f"{served}/websub/{sub.id}/" + request["hub.callback"].rsplit("/", 1)[1]
    )
    assert len(request["hub.secret"]) >= 32 and int(request["hub.lease_seconds"]) > 0
    (verification,) = hub.verifications
    assert verification.status == 200 and verification.body == verification.challenge
    assert sub.state == "active" and sub.lease_expires_at is not None
    assert sub.lease_expires_at > utcnow() + timedelta(seconds=hub.lease_s - 60)
    assert request["hub.secret"] not in sub.secret  # sealed at rest
    posts_before, feed_requests = await count(sessions, Post), len(feed.server.requests)

    pushed = feed_naming_hub(hub.url, feed.url, [AIRDROP], "https://news.example/pushed")
    statuses = await asyncio.to_thread(hub.publish, feed.url, pushed)

    assert statuses == [204]
    assert await count(sessions, Post) == posts_before + 1
    async with sessions() as session:
        alert = await session.scalar(select(Alert))
        assert alert is not None and alert.event == "airdrop" and alert.entity == "Helix Network"
        assert await session.scalar(select(func.count()).select_from(Delivery)) == 1
    assert len(feed.server.requests) == feed_requests  # nobody polled the feed
    sub = await subscription(sessions)
    assert sub.pushes_accepted == 1 and sub.pushes_refused == 0 and sub.last_push_at is not None


async def test_pushed_posts_teach_the_source_how_often_it_posts(
    push_settings, sessions, served, subscriber, feed, hub
):
    await subscribe(push_settings, sessions, subscriber, feed, hub)
    # Items at T0, T0 + 1 min and T0 + 2 min; the poll saw one at T0 already.
    pushed = feed_naming_hub(hub.url, feed.url, ["one", "two", AIRDROP], "https://news.example/p")

    assert await asyncio.to_thread(hub.publish, feed.url, pushed) == [204]

    async with sessions() as session:
        source = await session.get(Source, feed.source_id)
    assert source is not None
    assert (source.post_gap_samples, source.post_gap_s) == (2, 60)
    assert source.last_new_post_at == T0 + timedelta(minutes=2)


async def test_a_forged_signature_is_refused_with_403_recorded_and_nothing_stored(
    push_settings, sessions, served, subscriber, feed, hub
):
    await subscribe(push_settings, sessions, subscriber, feed, hub)
    posts_before = await count(sessions, Post)

    pushed = feed_naming_hub(hub.url, feed.url, [AIRDROP], "https://news.example/forged")
    statuses = await asyncio.to_thread(hub.publish, feed.url, pushed, forge=True)

    assert statuses == [403]
    assert await count(sessions, Post) == posts_before
    assert await count(sessions, Alert) == 0
    sub = await subscription(sessions)
    assert sub.pushes_refused == 1 and sub.pushes_accepted == 0


async def test_an_unsigned_push_is_refused_with_403(
    push_settings, sessions, served, subscriber, feed, hub
):
    await subscribe(push_settings, sessions, subscriber, feed, hub)
    (held,) = hub.subscriptions.values()

    status, _ = await asyncio.to_thread(send, held.callback, b"<rss/>", {})

    assert status == 403


async def test_a_wrong_token_or_an_unknown_subscription_is_404(
    push_settings, sessions, served, subscriber, feed, hub
):
    sub = await subscribe(push_settings, sessions, subscriber, feed, hub)
    verify = f"?hub.mode=subscribe&hub.topic={feed.url}&hub.challenge=abc&hub.lease_seconds=60"

    answers = await asyncio.gather(
        asyncio.to_thread(send, f"{served}/websub/{sub.id}/wrong-token{verify}", None, {}),
        asyncio.to_thread(send, f"{served}/websub/{sub.id}/wrong-token", b"<rss/>", {}),
        asyncio.to_thread(send, f"{served}/websub/{sub.id + 1000}/x", b"<rss/>", {}),
    )

    assert [status for status, _ in answers] == [404, 404, 404]
    assert "abc" not in "".join(body for _, body in answers)


async def test_a_verification_for_another_topic_is_404(
    push_settings, sessions, served, subscriber, feed, hub
):
    await subscribe(push_settings, sessions, subscriber, feed, hub)
    (held,) = hub.subscriptions.values()
    query = "hub.mode=subscribe&hub.topic=https://elsewhere.example/feed&hub.challenge=abc"

    status, body = await asyncio.to_thread(send, f"{held.callback}?{query}", None, {})

    assert status == 404 and "abc" not in body


async def test_a_lease_near_its_end_is_renewed_with_the_same_callback_and_secret(
    push_settings, sessions, served, subscriber, feed, hub
):
    first = await subscribe(push_settings, sessions, subscriber, feed, hub)
    await subscriber.tick()
    assert len(hub.requests) == 1  # the lease has long to run: nothing to renew
    async with sessions.begin() as session:  # as if most of the lease had passed
        await session.execute(
            update(WebSubSubscription).values(lease_expires_at=utcnow() + timedelta(seconds=30))
        )

    await subscriber.tick()
    await asyncio.to_thread(hub.wait_for_verifications, 2)

    renewal = hub.requests[1]
    assert renewal["hub.mode"] == "subscribe"
    assert renewal["hub.callback"] == hub.requests[0]["hub.callback"]
    assert renewal["hub.secret"] == hub.requests[0]["hub.secret"]
    renewed = await subscription(sessions)
    assert renewed.id == first.id and renewed.state == "active"
    assert renewed.lease_expires_at is not None
    assert renewed.lease_expires_at > utcnow() + timedelta(seconds=hub.lease_s - 60)


async def test_an_active_subscription_slows_the_polls_to_the_fallback(
    push_settings, sessions, served, subscriber, feed, hub
):
    await subscribe(push_settings, sessions, subscriber, feed, hub)

    before = utcnow()
    (outcome,) = await collect_once(push_settings, sessions, [feed.source_id])

    assert outcome.ok
    async with sessions() as session:
        source = await session.get(Source, feed.source_id)
        assert source is not None
        assert source.next_poll_at >= before + timedelta(seconds=PUSH_FALLBACK_POLL_S - 5)


async def test_a_hub_denial_is_recorded_and_the_source_is_polled_as_usual(
    push_settings, sessions, served, subscriber, feed, hub
):
    hub.deny = True

    sub = await subscribe(push_settings, sessions, subscriber, feed, hub)

    (denial,) = hub.verifications
    assert denial.mode == "denied" and denial.status == 200
    assert sub.state == "denied" and "not allowed here" in (sub.last_error or "")
    async with sessions() as session:
        source = await session.get(Source, feed.source_id)
        assert source is not None and source.next_poll_at <= utcnow()
    await subscriber.tick()
    assert len(hub.requests) == 1  # a denial is not asked again at once


async def test_a_hub_refusing_the_request_is_recorded_and_asked_again_later(
    push_settings, sessions, served, subscriber, feed, hub
):
    hub.refuse_with = 400
    await collect_once(push_settings, sessions, [feed.source_id])

    await subscriber.tick()
    await subscriber.tick()

    assert len(hub.requests) == 1
    sub = await subscription(sessions)
    assert sub.state == "pending" and "HTTP 400" in (sub.last_error or "")


async def test_pausing_the_source_unsubscribes_at_the_hub(
    push_settings, sessions, served, subscriber, feed, hub
):
    await subscribe(push_settings, sessions, subscriber, feed, hub)
    async with sessions.begin() as session:
        await session.execute(update(Source).values(enabled=False))

    await subscriber.tick()
    (_, unsubscribed) = await asyncio.to_thread(hub.wait_for_verifications, 2)

    assert hub.requests[1]["hub.mode"] == "unsubscribe"
    assert unsubscribed.mode == "unsubscribe" and unsubscribed.status == 200
    assert hub.subscriptions == {}
    assert (await subscription(sessions)).state == "unsubscribed"


async def test_without_a_public_url_nothing_subscribes(push_settings, sessions, feed, hub):
    settings = push_settings.model_copy(update={"public_url": None})
    await collect_once(settings, sessions, [feed.source_id])
    async with OutboundClient.from_settings(settings) as client:
        idle = WebSubSubscriber(
            sessions, public_url=None, client=client, secret_key=ensure_secret_key(settings)
        )
        await idle.tick()
        await asyncio.wait_for(idle.run(asyncio.Event()), 1)  # returns at once

    assert hub.requests == []
    assert await count(sessions, WebSubSubscription) == 0


async def test_a_denied_subscription_is_asked_again_a_day_later_and_can_become_active(
    push_settings, sessions, served, subscriber, feed, hub
):
    hub.deny = True
    await subscribe(push_settings, sessions, subscriber, feed, hub)
    hub.deny = False
    async with sessions.begin() as session:  # as if the day had passed
        await session.execute(
            update(WebSubSubscription).values(requested_at=utcnow() - timedelta(days=1, minutes=1))
        )

    await subscriber.tick()
    await asyncio.to_thread(hub.wait_for_verifications, 2)

    assert len(hub.requests) == 2 and hub.verifications[1].status == 200
    assert (await subscription(sessions)).state == "active"


async def test_two_subscribers_at_once_send_one_request(
    push_settings, sessions, served, subscriber, feed, hub
):
    await collect_once(push_settings, sessions, [feed.source_id])
    async with OutboundClient.from_settings(push_settings) as client:
        other = WebSubSubscriber(
            sessions,
            public_url=push_settings.public_url,
            client=client,
            secret_key=ensure_secret_key(push_settings),
        )
        await asyncio.gather(subscriber.tick(), other.tick())
        await asyncio.to_thread(hub.wait_for_verifications, 1)

    assert len(hub.requests) == 1
    assert await count(sessions, WebSubSubscription) == 1
