"""Per-host and per-credential rate limits in the outbound client, against a real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from localserver import Handler, LocalServer, Static
from sigwatch.config import load_settings
from sigwatch.errors import HostRateLimited
from sigwatch.net.breaker import BreakerPolicy
from sigwatch.net.client import OutboundClient
from sigwatch.net.host_limits import HostLimiter, credential_id
from sigwatch.net.hosts import HostGate


@pytest.fixture
async def limited() -> AsyncIterator[Callable[..., OutboundClient]]:
    """Clients behind a rate-limited host gate; all close after the test."""
    made: list[OutboundClient] = []

    def make(limiter: HostLimiter) -> OutboundClient:
        options: dict[str, Any] = {
            "timeout_s": 5.0,
            "max_response_bytes": 1_000_000,
            "max_redirects": 3,
            "user_agent": "sigwatch-test/1",
            "allowed_networks": ["127.0.0.1/32"],
            "hosts": HostGate(policy=BreakerPolicy(), limiter=limiter),
        }
        made.append(OutboundClient(**options))
        return made[-1]

    yield make
    for opened in made:
        await opened.aclose()


def timed(server: LocalServer, path: str, arrivals: list[float]) -> str:
    """Serve ``path`` and note in ``arrivals`` when each request arrived (monotonic seconds)."""

    def write(handler: Handler) -> None:
        arrivals.append(time.monotonic())
        handler.send_static(Static(b"ok"))

    server.routes[path] = write
    return server.url(path)


def most_in_any_second(arrivals: list[float]) -> int:
    ordered = sorted(arrivals)
    return max(
        sum(1 for later in ordered[i:] if later - start < 1.0) for i, start in enumerate(ordered)
    )


async def test_many_sources_on_one_host_never_exceed_the_per_host_rate(
    server: LocalServer, limited: Callable[..., OutboundClient]
) -> None:
    client = limited(HostLimiter.from_rules("5/second", None))
    arrivals: list[float] = []
    # Fifteen "sources", each its own feed on one host, all due at once.
    urls = [timed(server, f"/feed/{number}", arrivals) for number in range(15)]
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(client.get(url) for url in urls)), timeout=10)

    assert len(arrivals) == 15  # every one went through, none was refused
    assert most_in_any_second(arrivals) <= 5
    assert time.monotonic() - started >= 2.0  # 15 at 5 a second: three windows


async def test_a_spent_limit_far_from_its_reset_fails_at_once_with_the_wait(
    server: LocalServer, limited: Callable[..., OutboundClient]
) -> None:
    client = limited(HostLimiter.from_rules("2/minute", None))
    url = server.serve("/feed", b"ok")
    await client.get(url)
    await client.get(url)
    started = time.monotonic()

    with pytest.raises(HostRateLimited) as caught:
        await client.get(url)

    assert time.monotonic() - started < 1.0
    assert len(server.requests) == 2
    assert 55 <= caught.value.wait_s <= 61
    assert "2 requests per minute per host" in str(caught.value)
    assert "SIGWATCH_HOST_RATE_LIMIT" in str(caught.value)
    assert caught.value.retryable


async def test_the_credential_limit_counts_one_token_across_hosts_by_its_hash(
    start_server: Callable[..., LocalServer], limited: Callable[..., OutboundClient]
) -> None:
    one, two = start_server(), start_server()
    client = limited(HostLimiter.from_rules(None, "2/minute"))
    token = {"Authorization": "Bearer s3cretTOKENvalue123456"}
    await client.get(one.serve("/a", b"ok"), headers=token)
    await client.get(two.serve("/b", b"ok"), headers=token)

    with pytest.raises(HostRateLimited, match="SIGWATCH_CREDENTIAL_RATE_LIMIT") as caught:
        await client.get(one.url("/a"), headers=token)
    assert "s3cret" not in str(caught.value)
    # Another credential, or none, has its own budget.
    await client.get(one.url("/a"), headers={"Authorization": "Bearer other"})
    await client.get(one.url("/a"))


def test_credentials_are_counted_by_a_hash_never_the_value() -> None:
    name = credential_id("Bearer s3cret")
    assert "s3cret" not in name and len(name) == 32
    assert name == credential_id("Bearer s3cret") != credential_id("Bearer other")


@pytest.mark.parametrize("value", ["0/second", "ten/second", "5/fortnight", "-1/minute"])
def test_rate_limit_settings_are_validated(value: str) -> None:
    with pytest.raises(Exception, match="SIGWATCH_HOST_RATE_LIMIT"):
        load_settings(host_rate_limit=value)


def test_an_empty_host_rate_limit_switches_it_off() -> None:
    assert load_settings(host_rate_limit="").host_rate_limit is None
    assert not HostLimiter.from_rules(None, None).active
