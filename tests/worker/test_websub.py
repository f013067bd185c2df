"""The WebSub pieces on their own: hub discovery in a fetch, signatures, renewal timing, and
alert events waking the outbox. The whole exchange with a hub is in tests/api/test_websub.py."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import timedelta

import pytest

from localserver import LocalServer
from sigwatch.db.models import WebSubSubscription
from sigwatch.db.types import utcnow
from sigwatch.live.bus import GAP, MemoryBus
from sigwatch.net.client import OutboundClient
from sigwatch.secrets import encrypt_secret
from sigwatch.sources.rss import RssOptions, RssSource
from sigwatch.worker.websub import _due, signature_valid, wake_on_live_events

KEY = "test-secret-key-that-is-long-enough-0123456789"
RSS_WITH_HUB = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>t</title>
<atom:link rel="hub" href="https://hub.example/"/>
<atom:link rel="self" href="/feed.xml" type="application/rss+xml"/>
<item><title>one</title><guid>1</guid></item></channel></rss>"""
ATOM_WITH_HUB = b"""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:t</id>
<link rel="hub" href="https://hub.example/atom"/><link rel="self" href="https://news.example/atom"/>
<entry><title>one</title><id>urn:1</id></entry></feed>"""
PLAIN_RSS = (
    b'<rss version="2.0"><channel><title>t</title><item><title>one</title></item></channel></rss>'
)


async def fetch(server: LocalServer, body: bytes, state=None, headers=None) -> dict:
    url = server.serve("/feed.xml", body, headers=headers)
    client = OutboundClient(
        timeout_s=5,
        max_response_bytes=1_000_000,
        max_redirects=2,
        user_agent="t",
        allowed_networks=["127.0.0.1/32"],
    )
    async with client:
        result = await RssSource(RssOptions(url=url), client).fetch(state or {})
    return result.state


async def test_an_rss_feed_names_its_hub_and_self_topic_in_the_state(server):
    state = await fetch(server, RSS_WITH_HUB)

    assert state["websub_hub"] == "https://hub.example/"
    assert state["websub_topic"] == server.url("/feed.xml")  # relative self, resolved


async def test_an_atom_feed_names_its_hub_and_self_topic_in_the_state(server):
    state = await fetch(server, ATOM_WITH_HUB)

    assert state["websub_hub"] == "https://hub.example/atom"
    assert state["websub_topic"] == "https://news.example/atom"


async def test_the_link_header_comes_before_the_feeds_own_links(server):
    link = '<https://header-hub.example/>; rel="hub", <https://news.example/t>; rel="self"'

    state = await fetch(server, RSS_WITH_HUB, headers={"Link": link})

    assert state["websub_hub"] == "https://header-hub.example/"
    assert state["websub_topic"] == "https://news.example/t"


async def test_a_feed_that_no_longer_names_a_hub_drops_it_from_the_state(server):
    before = {"websub_hub": "https://hub.example/", "websub_topic": "https://t.example/"}

    state = await fetch(server, PLAIN_RSS, state=before)

    assert "websub_hub" not in state and "websub_topic" not in state


def subscription(**values) -> WebSubSubscription:
    row = WebSubSubscription(
        id=1,
        source_id=1,
        hub_url="https://hub.example/",
        topic_url="https://t.example/",
        callback_token=encrypt_secret(KEY, "token"),
        secret=encrypt_secret(KEY, "s3cret"),
    )
    for name, value in values.items():
        setattr(row, name, value)
    return row


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_each_signature_method_of_websub_is_checked(method):
    body = b"<rss/>"
    digest = hmac.new(b"s3cret", body, getattr(hashlib, method)).hexdigest()

    assert signature_valid(subscription(), body, f"{method}={digest}", KEY)
    assert not signature_valid(subscription(), body + b" ", f"{method}={digest}", KEY)


@pytest.mark.parametrize("header", [None, "", "sha256=", "md5=abc", "sha256"])
def test_a_missing_or_unknown_signature_is_invalid(header):
    assert not signature_valid(subscription(), b"<rss/>", header, KEY)


def test_renewal_is_due_within_a_tenth_of_the_lease_and_at_most_a_day_ahead():
    now = utcnow()
    hour = subscription(state="active", lease_s=3600, verified_at=now, requested_at=now)
    hour.lease_expires_at = now + timedelta(seconds=400)
    assert not _due(hour, now)
    hour.lease_expires_at = now + timedelta(seconds=300)
    assert _due(hour, now)
    month = subscription(state="active", lease_s=30 * 86400, verified_at=now, requested_at=now)
    month.lease_expires_at = now + timedelta(days=2)
    assert not _due(month, now)  # a tenth would be three days; a day ahead is enough
    month.lease_expires_at = now + timedelta(hours=23)
    assert _due(month, now)


def test_a_renewal_waiting_for_the_hub_is_not_sent_twice():
    now = utcnow()
    sub = subscription(state="active", lease_s=3600, verified_at=now - timedelta(minutes=5))
    sub.requested_at = now - timedelta(minutes=1)
    sub.lease_expires_at = now + timedelta(seconds=60)

    assert not _due(sub, now)


async def test_alert_events_on_the_bus_wake_the_outbox_at_once():
    bus, woken, stop = MemoryBus(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(wake_on_live_events(bus, woken.set, stop))
    await asyncio.sleep(0)  # subscribed

    await bus.publish({"type": GAP})
    await asyncio.sleep(0.01)
    assert not woken.is_set()  # a gap is no alert
    await bus.publish({"id": 1, "type": "alert.created"})
    await asyncio.wait_for(woken.wait(), 1)

    stop.set()
    await asyncio.wait_for(task, 1)
