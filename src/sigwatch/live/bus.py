"""The live bus: how alert events travel from publishers to every API process.

In process by default (:class:`MemoryBus`); across processes over Redis pub/sub when
``SIGWATCH_REDIS_URL`` is set (:class:`RedisBus`). Redis is never needed for correctness: while
it is away, events still reach the subscribers of the publishing process, and the bus
reconnects by itself.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sigwatch.config import Settings
from sigwatch.errors import ConfigError

#: The Redis pub/sub channel every sigwatch process publishes alert events on.
CHANNEL = "sigwatch:alerts"
#: Connect and command timeouts of the publishing connection, so a hung Redis cannot hang a
#: publisher for long.
REDIS_TIMEOUT_S = 2.0
#: First and longest delay between reconnection attempts.
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 5.0
#: How often an idle subscription pings Redis, so a dead connection is noticed.
HEALTH_CHECK_S = 15

Event = dict[str, Any]
#: Type of the marker a bus hands its subscribers after a lapse in which it may have missed
#: other processes' events (its Redis subscription was down). It carries no id.
GAP = "bus.gap"

log = structlog.get_logger(__name__)


class LiveBus(Protocol):
    """Carries JSON-serialisable events from publishers to subscribers."""

    async def publish(self, event: Event) -> None:
        """Send ``event`` to every subscriber; never raises for a transport failure."""
        ...

    def subscribe(self) -> AsyncIterator[Event]:
        """Events published from now on (registered at the call), until the bus closes."""
        ...

    async def close(self) -> None:
        """End every subscription and release connections."""
        ...


class MemoryBus:
    """A bus inside one process: each subscriber has its own unbounded queue."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Event | None]] = set()
        self._closed = False

    async def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber of this process."""
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        """Hand ``event`` to every subscriber now, without waiting."""
        for queue in self._queues:
            queue.put_nowait(event)

    def subscribe(self) -> AsyncIterator[Event]:
        """Events delivered from this call on; the iterator ends when the bus closes."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        if self._closed:
            queue.put_nowait(None)
        else:
            self._queues.add(queue)
        return self._drain(queue)

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._queues)

    async def _drain(self, queue: asyncio.Queue[Event | None]) -> AsyncIterator[Event]:
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._queues.discard(queue)

    async def close(self) -> None:
        """End every subscription."""
        self._closed = True
        for queue in self._queues:
            queue.put_nowait(None)


class RedisBus:
    """A bus over Redis pub/sub that falls back to in-process delivery while Redis is away.

    Subscribers of this process get its own events directly, never through Redis, so they keep
    receiving them through a Redis outage; Redis carries events to the other processes, each
    tagged with the publishing bus's origin so no process hears itself twice. A background task
    holds the subscription and reconnects with exponential backoff; events other processes
    publish while the subscription is down are not replayed (SSE clients recover them from the
    database with ``Last-Event-ID``); after such a lapse local subscribers get a ``bus.gap``
    marker, so the hub can tell its clients.
    """

    def __init__(self, url: str, *, channel: str = CHANNEL) -> None:
        self._url = url
        self._channel = channel
        self._local = MemoryBus()
        self.origin = uuid.uuid4().hex
        # Envelopes start with the origin, so a process skips its own without parsing them.
        self._own_prefix = f'{{"origin":"{self.origin}",'.encode()
        self._publisher = _redis_client(
            url,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
            # One retry reconnects a connection Redis dropped (a restart); more would stall
            # the publisher while Redis is down.
            retry=Retry(NoBackoff(), 1),
        )
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._publish_paused_until = 0.0
        self._publish_backoff_s = RECONNECT_MIN_S
        self._away = False
        self._ever_subscribed = False
        self._closed = False

    @property
    def client_name(self) -> str:
        """The name of this bus's subscription connection in Redis's CLIENT LIST."""
        return f"sigwatch-live-{self.origin}"

    @property
    def subscribed(self) -> asyncio.Event:
        """Set while the Redis subscription is up (tests and readiness wait on it)."""
        return self._subscribed

    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to this process's subscribers, then to the others through Redis."""
        self._ensure_listening()
        self._local.deliver(event)
        if self._closed or time.monotonic() < self._publish_paused_until:
            return
        envelope = b'%s"event":%s}' % (self._own_prefix, json.dumps(event).encode())
        try:
            await self._publisher.publish(self._channel, envelope)
        except (RedisError, OSError) as exc:
            # Try again after a growing pause rather than on every event while Redis is down.
            self._publish_paused_until = time.monotonic() + self._publish_backoff_s
            self._publish_backoff_s = min(self._publish_backoff_s * 2, RECONNECT_MAX_S)
            self._went_away(exc)
        else:
            self._publish_backoff_s = RECONNECT_MIN_S

    def subscribe(self) -> AsyncIterator[Event]:
        """Events of this process and, while Redis is up, of every other process."""
        self._ensure_listening()
        return self._local.subscribe()

    async def close(self) -> None:
        """End the subscriptions, stop listening and close the Redis connections."""
        self._closed = True
        await self._local.close()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._publisher.aclose()

    def _ensure_listening(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = asyncio.create_task(self._listen(), name="sigwatch-live-redis")

    async def _listen(self) -> None:
        delay = RECONNECT_MIN_S
        while not self._closed:
            client = _redis_client(
                self._url,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                health_check_interval=HEALTH_CHECK_S,
                # Named, so CLIENT LIST tells operators (and tests) which connection is whose.
                client_name=self.client_name,
                # Reconnection is this loop's job, so it can tell the outage and log it.
                retry=Retry(NoBackoff(), 0),
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._came_back()
                delay = RECONNECT_MIN_S
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._receive(message["data"])
            except (RedisError, OSError) as exc:
                self._went_away(exc)
            finally:
                self._subscribed.clear()
                await _quietly_close(pubsub, client)
            if not self._closed:
                # Jitter keeps many processes from reconnecting in lockstep after a restart.
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, RECONNECT_MAX_S)

    def _receive(self, data: bytes) -> None:
        if data.startswith(self._own_prefix) or not self._local.subscribers:
            return
        try:
            envelope = json.loads(data)
            event = envelope["event"]
        except (ValueError, KeyError, TypeError):
            log.warning("live bus skipped a malformed message", channel=self._channel)
            return
        if isinstance(event, dict):
            self._local.deliver(event)

    def _went_away(self, exc: BaseException) -> None:
        if self._closed or self._away:
            return
        self._away = True
        log.warning(
            "live bus lost Redis; delivering in process until it returns",
            error=str(exc) or type(exc).__name__,
        )

    def _came_back(self) -> None:
        self._subscribed.set()
        self._publish_paused_until = 0.0
        self._publish_backoff_s = RECONNECT_MIN_S
        if self._ever_subscribed:
            self._local.deliver({"type": GAP})
        self._ever_subscribed = True
        if self._away:
            self._away = False
            log.info("live bus reconnected to Redis")


def create_bus(settings: Settings) -> LiveBus:
    """The bus the settings call for: Redis when ``redis_url`` is set, in process otherwise."""
    if settings.redis_url:
        return RedisBus(settings.redis_url)
    return MemoryBus()


def _redis_client(url: str, **options: Any) -> Redis:
    try:
        return Redis.from_url(url, **options)
    except ValueError as exc:
        raise ConfigError(
            f"SIGWATCH_REDIS_URL is not a Redis URL ({exc}): use redis://host:6379/0"
        ) from exc


async def _quietly_close(pubsub: Any, client: Redis) -> None:
    # The connection may already be gone; closing what is left must not raise.
    try:
        await pubsub.aclose()
    except (RedisError, OSError):
        pass
    try:
        await client.aclose()
    except (RedisError, OSError):
        pass
