"""Breakers and host limits shared through Redis: two clients stand in for two workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from localserver import Handler, LocalServer, Static
from sigwatch.config import load_settings
from sigwatch.errors import CircuitOpen, HTTPStatusError
from sigwatch.net.breaker import BreakerPolicy, RedisBreakers
from sigwatch.net.client import OutboundClient
from sigwatch.net.host_limits import HostLimiter
from sigwatch.net.hosts import HostGate, host_key

POLICY = BreakerPolicy(failures=3, open_s=30.0, max_open_s=120.0, trial_s=5.0)


@pytest.fixture
async def worker_client(
    redis_url: str,
) -> AsyncIterator[Callable[..., OutboundClient]]:
    """Clients that each have their own Redis connection, as separate workers would."""
    made: list[OutboundClient] = []

    def make(rate: str | None = None, url: str | None = None) -> OutboundClient:
        target = url or redis_url
        redis = Redis.from_url(target, socket_connect_timeout=1.0, socket_timeout=1.0)
        gate = HostGate(
            policy=POLICY,
            limiter=HostLimiter.from_rules(rate, None, redis=redis, redis_url=target),
            redis=redis,
            owns_redis=True,
        )
        options: dict[str, Any] = {
            "timeout_s": 5.0,
            "max_response_bytes": 1_000_000,
            "max_redirects": 3,
            "user_agent": "sigwatch-test/1",
            "allowed_networks": ["127.0.0.1/32"],
            "hosts": gate,
        }
        made.append(OutboundClient(**options))
        return made[-1]

    yield make
    for opened in made:
        await opened.aclose()


def failing(server: LocalServer, path: str = "/feed") -> str:
    server.serve(path, b"down", status=503)
    return server.url(path)


async def test_a_breaker_opened_by_one_worker_refuses_the_other_workers_requests(
    server: LocalServer, worker_client: Callable[..., OutboundClient]
) -> None:
    url = failing(server)
    first, second = worker_client(), worker_client()
    for client in (first, second, first):  # failures from both count toward one breaker
        with pytest.raises(HTTPStatusError):
            await client.get(url)
    sent = len(server.requests)

    with pytest.raises(CircuitOpen, match="after 3 failures in a row"):
        await second.get(url)
    with pytest.raises(CircuitOpen):
        await first.get(url)
    assert len(server.requests) == sent


async def test_only_one_worker_gets_the_half_open_trial(
    redis_url: str, server: LocalServer
) -> None:
    redis = Redis.from_url(redis_url)
    try:
        breakers = RedisBreakers(redis)
        key = f"source:{host_key(server.url())}"
        for _ in range(POLICY.failures):
            await breakers.record(key, POLICY, ok=False, now=1000.0)
        assert (await breakers.read(key)).state == "open"

        answers = await asyncio.gather(
            *(breakers.admit(key, POLICY, 1000.0 + POLICY.open_s) for _ in range(10))
        )

        assert sum(answer.allowed for answer in answers) == 1
        assert (await breakers.read(key)).state == "half_open"
        after = await breakers.record(key, POLICY, ok=False, now=1031.0)
        assert (after.state, after.open_s) == ("open", 60.0)
        assert (await breakers.record(key, POLICY, ok=True, now=1032.0)).state == "open"
        await breakers.admit(key, POLICY, 1031.0 + 60.0)
        assert (await breakers.record(key, POLICY, ok=True, now=1092.0)).state == "closed"
        assert await redis.exists(f"sigwatch:breaker:{key}") == 0  # closed: nothing kept
    finally:
        await redis.aclose()


async def test_two_workers_together_stay_within_the_per_host_rate(
    server: LocalServer, worker_client: Callable[..., OutboundClient]
) -> None:
    arrivals: list[float] = []

    def write(handler: Handler) -> None:
        arrivals.append(time.monotonic())
        handler.send_static(Static(b"ok"))

    server.routes["/feed"] = write
    url = server.url("/feed")
    first, second = worker_client("3/second"), worker_client("3/second")

    await asyncio.wait_for(
        asyncio.gather(*(client.get(url) for client in (first, second) for _ in range(4))),
        timeout=10,
    )

    ordered = sorted(arrivals)
    assert len(ordered) == 8
    busiest = max(
        sum(1 for later in ordered[i:] if later - start < 1.0) for i, start in enumerate(ordered)
    )
    assert busiest <= 3


async def test_with_redis_down_the_breaker_keeps_working_in_process(
    server: LocalServer, worker_client: Callable[..., OutboundClient]
) -> None:
    closed = LocalServer().start()
    closed.stop()  # a port nothing listens on stands for a Redis that went away
    client = worker_client("100/second", url=f"redis://127.0.0.1:{closed.port}/0")
    url = failing(server)
    for _ in range(POLICY.failures):
        with pytest.raises(HTTPStatusError):
            await client.get(url)

    with pytest.raises(CircuitOpen):
        await client.get(url)


async def test_the_gate_built_from_settings_uses_redis(redis_url: str, server: LocalServer) -> None:
    settings = load_settings(redis_url=redis_url, breaker_failures=2, allow_private_urls=True)
    one = OutboundClient.from_settings(settings)
    two = OutboundClient.from_settings(settings)
    try:
        url = failing(server)
        for client in (one, two):
            with pytest.raises(HTTPStatusError):
                await client.get(url)
        with pytest.raises(CircuitOpen):
            await two.get(url)
        assert one.hosts is not None
        assert (await one.hosts.health(host_key(url))).state == "open"
    finally:
        await one.aclose()
        await two.aclose()
        redis = Redis.from_url(redis_url)
        await redis.delete(f"sigwatch:breaker:source:{host_key(server.url())}")
        await redis.aclose()
