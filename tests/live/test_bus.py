"""The live bus: in process, and over a real Redis through outages and killed connections."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import structlog
from redis.asyncio import Redis

from live.support import WAIT_S, TcpProxy
from sigwatch.config import load_settings
from sigwatch.live.bus import CHANNEL, GAP, LiveBus, MemoryBus, RedisBus, create_bus


def _event(n: int) -> dict[str, object]:
    return {"id": n, "type": "alert.created", "alert": {"title": f"event {n}"}}


async def _take(
    subscription: AsyncIterator[dict[str, object]], count: int, *, gaps: list[object] | None = None
) -> list[object]:
    """The ids of the next ``count`` events; gap markers go to ``gaps`` (or fail the test)."""
    ids: list[object] = []
    async with asyncio.timeout(WAIT_S):
        while len(ids) < count:
            event = await anext(subscription)
            if event.get("type") == GAP and gaps is not None:
                gaps.append(event)
            else:
                ids.append(event["id"])
    return ids


async def _nothing_within(subscription: AsyncIterator[dict[str, object]], seconds: float) -> None:
    task = asyncio.ensure_future(anext(subscription))
    done, _ = await asyncio.wait({task}, timeout=seconds)
    task.cancel()
    assert not done, f"unexpected {task.result()}"


async def test_memory_bus_gives_every_subscriber_every_event_in_order():
    bus = MemoryBus()
    first, second = bus.subscribe(), bus.subscribe()  # registered now, before any read
    for n in range(1, 4):
        await bus.publish(_event(n))
    assert await _take(first, 3) == [1, 2, 3]
    assert await _take(second, 3) == [1, 2, 3]
    await bus.close()
    assert [e async for e in first] == [] and [e async for e in bus.subscribe()] == []


def test_create_bus_picks_redis_when_a_url_is_set(tmp_path):
    assert isinstance(create_bus(load_settings(data_dir=tmp_path)), MemoryBus)
    chosen = create_bus(load_settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(chosen, RedisBus) and chosen._channel == CHANNEL


@pytest.fixture
def channel() -> str:
    """A channel of this test's own: other tests may share the Redis server."""
    return f"sigwatch:test:{uuid.uuid4().hex}"


@pytest.fixture
async def buses(redis_url, channel):
    """Make RedisBus instances on the test channel; all are closed afterwards."""
    made: list[LiveBus] = []

    def make(url: str = redis_url) -> RedisBus:
        bus = RedisBus(url, channel=channel)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()


async def _subscribed(bus: RedisBus) -> None:
    async with asyncio.timeout(WAIT_S):
        await bus.subscribed.wait()


@pytest.mark.redis
async def test_redis_bus_carries_events_between_processes_and_each_once(buses):
    one, two, publisher = buses(), buses(), buses()
    heard_by_one, heard_by_two, heard_by_publisher = (
        one.subscribe(),
        two.subscribe(),
        publisher.subscribe(),
    )
    for bus in (one, two, publisher):
        await _subscribed(bus)
    await publisher.publish(_event(1))
    await one.publish(_event(2))
    # Each process hears its own events at once and the others' through Redis, so the order
    # across publishers is not fixed.
    assert sorted(await _take(heard_by_one, 2)) == [1, 2]
    assert sorted(await _take(heard_by_two, 2)) == [1, 2]
    assert sorted(await _take(heard_by_publisher, 2)) == [1, 2]
    await _nothing_within(heard_by_one, 0.2)  # its own event came once, not back from Redis


async def _kill_subscriptions(redis_url: str, bus: RedisBus) -> int:
    """CLIENT KILL this bus's pub/sub connection (only it: the server may be shared)."""
    admin = Redis.from_url(redis_url)
    try:
        killed = 0
        for client in await admin.client_list(_type="pubsub"):
            if client.get("name") == bus.client_name:
                killed += await admin.client_kill_filter(_id=client["id"])
        return killed
    finally:
        await admin.aclose()


@pytest.mark.redis
async def test_a_killed_subscription_reconnects_by_itself(buses, redis_url):
    listener, publisher = buses(), buses()
    heard = listener.subscribe()
    await _subscribed(listener)
    await publisher.publish(_event(1))
    assert await _take(heard, 1) == [1]
    with structlog.testing.capture_logs() as logs:
        assert await _kill_subscriptions(redis_url, listener) == 1
        async with asyncio.timeout(WAIT_S):
            while listener.subscribed.is_set():
                await asyncio.sleep(0.01)
        await _subscribed(listener)
    await publisher.publish(_event(2))
    gaps: list[object] = []
    assert await _take(heard, 1, gaps=gaps) == [2]
    assert gaps == [{"type": GAP}]  # subscribers learn they may have missed something
    messages = [entry["event"] for entry in logs]
    assert messages.count("live bus lost Redis; delivering in process until it returns") == 1
    assert "live bus reconnected to Redis" in messages


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_without_redis_events_still_reach_local_subscribers_and_it_logs_once(buses):
    bus = buses(f"redis://127.0.0.1:{_closed_port()}/0")
    heard = bus.subscribe()
    with structlog.testing.capture_logs() as logs:
        for n in range(1, 6):
            await bus.publish(_event(n))
        assert await _take(heard, 5) == [1, 2, 3, 4, 5]
        await asyncio.sleep(0.3)  # the listener retries meanwhile
    lost = [e for e in logs if e["event"].startswith("live bus lost Redis")]
    assert len(lost) == 1 and lost[0]["log_level"] == "warning"


def _through(redis_url: str, port: int) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


@pytest.mark.redis
async def test_redis_outage_falls_back_in_process_and_recovers(buses, redis_url):
    target = urlsplit(redis_url)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    try:
        local = buses(_through(redis_url, proxy.port))  # reaches Redis only via the proxy
        other = buses()
        heard_locally, heard_elsewhere = local.subscribe(), other.subscribe()
        await _subscribed(local)
        await _subscribed(other)
        await local.publish(_event(1))
        assert await _take(heard_elsewhere, 1) == [1]
        assert await _take(heard_locally, 1) == [1]

        await proxy.stop()  # Redis is away for the local process
        async with asyncio.timeout(WAIT_S):
            while local.subscribed.is_set():
                await asyncio.sleep(0.01)
        for n in (2, 3):
            await local.publish(_event(n))
        assert await _take(heard_locally, 2) == [2, 3]

        await proxy.start()
        await _subscribed(local)
        await other.publish(_event(4))
        await local.publish(_event(5))
        gaps: list[object] = []
        assert sorted(await _take(heard_locally, 2, gaps=gaps)) == [4, 5]
        assert gaps == [{"type": GAP}]
        assert sorted(await _take(heard_elsewhere, 2)) == [4, 5]  # 2 and 3 never left the process
    finally:
        await proxy.stop()
