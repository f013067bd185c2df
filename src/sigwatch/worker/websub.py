"""WebSub (W3C Recommendation): subscribing feeds that name a hub, renewing, and the slow poll.

An ``rss`` fetch records the hub and topic a feed names in the source's state (see
:func:`sigwatch.sources.rss.with_websub_links`). When ``SIGWATCH_PUBLIC_URL`` is set, a
:class:`WebSubSubscriber` beside the worker's polls asks each such hub to push the feed to
``<public URL>/websub/<subscription id>/<token>``, with a lease and an HMAC secret; it renews a
lease before it ends (within a tenth of its length, at most a day ahead), asks again after a
failure or a denial, and unsubscribes (best effort) when the source is paused, removed or its
feed stops naming a hub. The hub's verification and its pushes are answered by the API
(:mod:`sigwatch.api.routes.websub`), which ingests a push at once through the poll's own path.

While a subscription is active the source is still polled, slowly, as a fallback
(:data:`PUSH_FALLBACK_POLL_S`); when the lease lapses or the hub denies, it is due at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlencode

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.db import websub as rows
from sigwatch.db.models import WebSubSubscription
from sigwatch.db.types import utcnow
from sigwatch.db.websub import WebSubWork
from sigwatch.errors import SigwatchError
from sigwatch.live.bus import GAP, LiveBus
from sigwatch.net.client import OutboundClient, redact_url
from sigwatch.secrets import decrypt_secret, encrypt_secret
from sigwatch.sources.rss import WEBSUB_HUB_KEY, WEBSUB_TOPIC_KEY

log = structlog.get_logger(__name__)

#: The lease asked of hubs (ten days, as common hubs grant); the hub decides the real one.
REQUESTED_LEASE_S = 10 * 86400
#: A lease is renewed once this share of it is left, but never more than a day ahead.
RENEW_SHARE = 0.1
RENEW_AHEAD_MAX_S = 86400
#: How long a request the hub has not verified (or that failed) waits before it is sent again.
RETRY_S = 600
#: How long after a denial the hub is asked again.
DENIED_RETRY_S = 86400
#: While a hub pushes a feed, the feed is still polled, but at most this often (or at its own
#: interval when that is longer): a fallback should the hub fail silently.
PUSH_FALLBACK_POLL_S = 1800
#: How often the subscriber looks for subscriptions to make, renew or end.
TICK_S = 30.0
#: The HMAC algorithms of ``X-Hub-Signature`` (WebSub section 8).
SIGNATURE_METHODS = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
#: Most of a hub's answer kept in an error message.
_SNIPPET_CHARS = 200


def callback_url(public_url: str, subscription_id: int, token: str) -> str:
    """Where the hub verifies and pushes: unguessable, since hubs carry no credentials."""
    return f"{public_url}/websub/{subscription_id}/{token}"


def token_matches(subscription: WebSubSubscription, token: str, secret_key: str) -> bool:
    """Whether ``token`` (from the callback's path) is the subscription's, compared in
    constant time."""
    expected = decrypt_secret(secret_key, subscription.callback_token)
    return hmac.compare_digest(expected.encode(), token.encode())


def signature_valid(
    subscription: WebSubSubscription, body: bytes, header: str | None, secret_key: str
) -> bool:
    """Whether ``X-Hub-Signature`` (``sha256=<hex>``, or sha1/sha384/sha512) is the HMAC of
    ``body`` under the subscription's secret, compared in constant time."""
    if not header:
        return False
    method, _, signature = header.strip().partition("=")
    digest = SIGNATURE_METHODS.get(method.strip().lower())
    if digest is None or not signature:
        return False
    key = decrypt_secret(secret_key, subscription.secret).encode()
    expected = hmac.new(key, body, digest).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


async def push_fallback_interval_s(
    session: AsyncSession, source_id: int, interval_s: float
) -> float:
    """The source's next poll interval: slowed to :data:`PUSH_FALLBACK_POLL_S` while a hub
    pushes it (an active subscription), ``interval_s`` otherwise."""
    if await rows.has_active_subscription(session, source_id, now=utcnow()):
        return max(interval_s, PUSH_FALLBACK_POLL_S)
    return interval_s


async def wake_on_live_events(
    bus: LiveBus | None, wake: Callable[[], None], stop: asyncio.Event
) -> None:
    """Call ``wake`` for every alert event on ``bus`` until ``stop`` is set.

    Pushes are ingested by the API process that received them; the alert events they publish
    are how a worker (in the same process or, over Redis, in another) learns at once that
    deliveries are due, instead of at its next idle tick.
    """
    if bus is None:
        return
    events = bus.subscribe()  # registered now, so no event published from here on is missed

    async def consume() -> None:
        async for event in events:
            if event.get("type") != GAP:
                wake()

    consumer = asyncio.create_task(consume())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({consumer, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        consumer.cancel()
        stopping.cancel()
        await asyncio.gather(consumer, stopping, return_exceptions=True)


class WebSubSubscriber:
    """Keeps a subscription at its hub for every feed that names one, until stopped."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        public_url: str | None,
        client: OutboundClient,
        secret_key: str,
        tick_s: float = TICK_S,
    ) -> None:
        self._sessions = sessions
        self._public_url = public_url
        self._client = client
        self._secret_key = secret_key
        self._tick_s = tick_s

    async def run(self, stop: asyncio.Event) -> None:
        """Subscribe, renew and unsubscribe every ``tick_s`` until ``stop`` is set; with no
        public URL (``SIGWATCH_PUBLIC_URL`` unset) do nothing."""
        if self._public_url is None:
            return
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception as exc:  # the database may be restarting; try at the next tick
                    log.warning("websub round failed", error=str(exc))
                await asyncio.wait({stopping}, timeout=self._tick_s)
        finally:
            stopping.cancel()

    async def tick(self) -> None:
        """One round: expire lapsed leases, then make, renew or end each subscription due."""
        if self._public_url is None:
            return
        now = utcnow()
        async with self._sessions.begin() as session:
            lapsed = await rows.expire_lapsed(session, now=now)
            await rows.poll_sooner(session, lapsed, now=now)
            work = await rows.list_websub_work(session, kind="rss", hub_key=WEBSUB_HUB_KEY)
        for source_id in lapsed:
            log.info("websub lease expired", source_id=source_id)
        for item in work:
            try:
                await self._keep(item, now)
            except Exception:  # one broken row must not stop the others
                log.exception("websub subscription failed", source_id=item.source_id)

    async def _keep(self, item: WebSubWork, now: datetime) -> None:
        sub = item.subscription
        hub, topic = item.state.get(WEBSUB_HUB_KEY), item.state.get(WEBSUB_TOPIC_KEY)
        if not (item.wanted and isinstance(hub, str) and isinstance(topic, str)):
            if sub is not None and sub.state in (rows.PENDING, rows.ACTIVE):
                await self._unsubscribe(sub)
            elif sub is not None and sub.state == rows.UNSUBSCRIBING and _waited(sub, now, RETRY_S):
                async with self._sessions.begin() as session:  # the hub never confirmed
                    await rows.set_state(session, sub.id, rows.UNSUBSCRIBED)
            return
        if (
            sub is None
            or (sub.hub_url, sub.topic_url) != (hub, topic)
            or sub.state in (rows.UNSUBSCRIBING, rows.UNSUBSCRIBED)
        ):
            async with self._sessions.begin() as session:
                started = await rows.start_subscription(
                    session,
                    source_id=item.source_id,
                    hub_url=hub,
                    topic_url=topic,
                    callback_token=encrypt_secret(self._secret_key, secrets.token_urlsafe(32)),
                    secret=encrypt_secret(self._secret_key, secrets.token_hex(32)),
                    now=now,
                    replacing=sub,
                )
            # Committed before the request: a hub may verify before it even answers.
            if started is not None:
                await self._request(started, "subscribe")
        elif _due(sub, now):
            if sub.state == rows.DENIED:  # asking again: the hub's verification must be wanted
                async with self._sessions.begin() as session:
                    await rows.set_state(session, sub.id, rows.PENDING)
            await self._request(sub, "subscribe")

    async def _unsubscribe(self, sub: WebSubSubscription) -> None:
        async with self._sessions.begin() as session:
            await rows.set_state(session, sub.id, rows.UNSUBSCRIBING)
        await self._request(sub, "unsubscribe")

    async def _request(self, sub: WebSubSubscription, mode: str) -> None:
        """Send a subscribe or unsubscribe request to the hub and note how it went."""
        assert self._public_url is not None
        token = decrypt_secret(self._secret_key, sub.callback_token)
        form = {
            "hub.mode": mode,
            "hub.topic": sub.topic_url,
            "hub.callback": callback_url(self._public_url, sub.id, token),
        }
        if mode == "subscribe":
            form["hub.lease_seconds"] = str(REQUESTED_LEASE_S)
            form["hub.secret"] = decrypt_secret(self._secret_key, sub.secret)
        hub = redact_url(sub.hub_url)
        async with self._sessions.begin() as session:
            # Noted before sending, as the hub may verify before it answers; and only one
            # worker of several wins the claim and sends.
            claimed = await rows.claim_request(session, sub.id, seen=sub.requested_at, now=utcnow())
        if not claimed:
            return
        error: str | None = None
        try:
            answer = await self._client.post(
                sub.hub_url,
                content=urlencode(form).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            if not 200 <= answer.status < 300:
                snippet = answer.body[:_SNIPPET_CHARS].decode("utf-8", "replace").strip()
                error = (
                    f"the hub {hub} refused the {mode} request with HTTP {answer.status}"
                    f"{': ' + snippet if snippet else ''}; sigwatch asks again in "
                    f"{RETRY_S // 60} minutes (check the feed's hub, or pause the source)"
                )
        except SigwatchError as exc:
            error = (
                f"the {mode} request to the hub {hub} failed: {exc}; sigwatch asks again in "
                f"{RETRY_S // 60} minutes"
            )
        async with self._sessions.begin() as session:
            await rows.record_request_error(session, sub.id, error=error)
        if error is None:
            log.info("websub request sent", source_id=sub.source_id, mode=mode, hub=hub)
        else:
            log.warning("websub request failed", source_id=sub.source_id, mode=mode, error=error)


def _waited(sub: WebSubSubscription, now: datetime, delay_s: float) -> bool:
    """Whether ``delay_s`` has passed since the last request (or none was sent)."""
    return sub.requested_at is None or now - sub.requested_at >= timedelta(seconds=delay_s)


def _due(sub: WebSubSubscription, now: datetime) -> bool:
    """Whether the subscription's request must be sent (again) now."""
    if sub.state == rows.DENIED:
        return _waited(sub, now, DENIED_RETRY_S)
    if sub.state in (rows.PENDING, rows.EXPIRED):
        return _waited(sub, now, RETRY_S)
    if sub.state != rows.ACTIVE or sub.lease_expires_at is None or sub.lease_s is None:
        return False
    ahead = timedelta(seconds=min(sub.lease_s * RENEW_SHARE, RENEW_AHEAD_MAX_S))
    if sub.lease_expires_at - now > ahead:
        return False
    # A renewal sent since the last verification is still waiting for the hub's answer.
    outstanding = (
        sub.requested_at is not None
        and sub.verified_at is not None
        and sub.requested_at > sub.verified_at
    )
    return not outstanding or _waited(sub, now, RETRY_S)
