"""Circuit breakers per host in the outbound client: against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from localserver import Handler, LocalServer, Static
from sigwatch.errors import CircuitOpen, HTTPStatusError, NetworkError, TransportError
from sigwatch.net.breaker import BreakerPolicy, HostHealth, MemoryBreakers, admit, record
from sigwatch.net.client import OutboundClient
from sigwatch.net.host_limits import HostLimiter
from sigwatch.net.hosts import HostGate, describe_breaker, host_key

POLICY = BreakerPolicy(failures=3, open_s=10.0, max_open_s=40.0, trial_s=5.0)


class Clock:
    """Wall-clock seconds a test moves forward by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def gated(clock: Clock) -> AsyncIterator[Callable[..., OutboundClient]]:
    """Clients behind one host gate (in memory), with a short timeout; all close afterwards."""
    made: list[OutboundClient] = []

    def make(gate: HostGate | None = None, **overrides: Any) -> OutboundClient:
        options: dict[str, Any] = {
            "timeout_s": 2.0,
            "max_response_bytes": 1_000_000,
            "max_redirects": 3,
            "user_agent": "sigwatch-test/1",
            "allowed_networks": ["127.0.0.1/32"],
            "hosts": gate or HostGate(policy=POLICY, limiter=HostLimiter(), clock=clock),
        }
        options.update(overrides)
        made.append(OutboundClient(**options))
        return made[-1]

    yield make
    for opened in made:
        await opened.aclose()


def fail_then_serve(server: LocalServer, path: str, failures: int, status: int = 503) -> str:
    """Answer ``path`` with ``status`` ``failures`` times, then with a small body."""
    left = [failures]

    def write(handler: Handler) -> None:
        if left[0] > 0:
            left[0] -= 1
            handler.send_static(Static(b"down", status))
        else:
            handler.send_static(Static(b"ok"))

    server.routes[path] = write
    return server.url(path)


async def test_transient_failures_in_a_row_open_the_breaker_and_later_requests_fail_fast(
    server: LocalServer, gated: Callable[..., OutboundClient]
) -> None:
    url = fail_then_serve(server, "/feed", failures=100)
    client = gated()
    for _ in range(POLICY.failures):
        with pytest.raises(HTTPStatusError):
            await client.get(url)
    sent = len(server.requests)

    with pytest.raises(CircuitOpen) as caught:
        await client.get(url)

    assert len(server.requests) == sent  # refused without a request
    message = str(caught.value)
    assert f"circuit open for {host_key(url)} after 3 failures in a row; next try at" in message
    assert "UTC" in message
    assert isinstance(caught.value, NetworkError) and caught.value.retryable
    assert caught.value.wait_s == pytest.approx(POLICY.open_s)


async def test_a_request_to_another_host_is_unaffected_by_an_open_breaker(
    start_server: Callable[..., LocalServer], gated: Callable[..., OutboundClient]
) -> None:
    failing, healthy = start_server(), start_server()
    bad = fail_then_serve(failing, "/feed", failures=100)
    good = healthy.serve("/feed", b"fine")
    client = gated()
    for _ in range(POLICY.failures):
        with pytest.raises(HTTPStatusError):
            await client.get(bad)

    assert (await client.get(good)).body == b"fine"
    with pytest.raises(CircuitOpen):
        await client.get(bad)


async def test_permanent_answers_do_not_count_toward_the_breaker(
    server: LocalServer, gated: Callable[..., OutboundClient]
) -> None:
    for path, status in (("/gone", 410), ("/missing", 404), ("/auth", 401), ("/no", 403)):
        server.serve(path, b"no", status=status)
    client = gated()
    for _ in range(2):
        for path in ("/gone", "/missing", "/auth", "/no"):
            with pytest.raises(HTTPStatusError):
                await client.get(server.url(path))

    assert describe_breaker(await client.hosts.health(host_key(server.url()))) == "closed"
    assert (await client.get(server.serve("/ok", b"ok"))).body == b"ok"


async def test_rate_limit_answers_do_not_open_the_breaker(
    server: LocalServer, gated: Callable[..., OutboundClient]
) -> None:
    # A 429 is a host that works and asks for patience: the source waits for its Retry-After,
    # and the other sources on the host go on.
    server.serve("/busy", b"slow down", status=429, headers={"Retry-After": "120"})
    client = gated()
    for _ in range(POLICY.failures + 2):
        with pytest.raises(HTTPStatusError):
            await client.get(server.url("/busy"))

    assert describe_breaker(await client.hosts.health(host_key(server.url()))) == "closed"
    assert (await client.get(server.serve("/ok", b"ok"))).body == b"ok"


async def test_a_healthy_answer_resets_the_failures_in_a_row(
    server: LocalServer, gated: Callable[..., OutboundClient]
) -> None:
    bad = fail_then_serve(server, "/bad", failures=100, status=500)
    good = server.serve("/good", b"ok")
    client = gated()
    for _ in range(3):
        for _ in range(POLICY.failures - 1):
            with pytest.raises(HTTPStatusError):
                await client.get(bad)
        await client.get(good)

    assert (await client.hosts.health(host_key(bad))).state == "closed"


async def test_timeouts_and_refused_connections_count_as_transient_failures(
    server: LocalServer, gated: Callable[..., OutboundClient], clock: Clock
) -> None:
    slow = server.sleep_then_serve("/slow", 3.0)
    client = gated(timeout_s=0.3)
    for _ in range(POLICY.failures):
        with pytest.raises(TransportError):
            await client.get(slow)
    with pytest.raises(CircuitOpen):
        await client.get(slow)

    # A port nothing listens on: connection refused, three times, opens that host's breaker.
    closed = LocalServer().start()
    closed.stop()
    for _ in range(POLICY.failures):
        with pytest.raises(TransportError):
            await client.get(closed.url("/feed"))
    with pytest.raises(CircuitOpen):
        await client.get(closed.url("/feed"))


async def test_half_open_lets_one_trial_through_and_its_success_closes_the_breaker(
    server: LocalServer, gated: Callable[..., OutboundClient], clock: Clock
) -> None:
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    answers = [0]

    def write(handler: Handler) -> None:
        answers[0] += 1
        if answers[0] <= POLICY.failures:
            handler.send_static(Static(b"down", 502))
            return
        # The trial: held until the test has tried a second request meanwhile.
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=5)
        handler.send_static(Static(b"back"))

    server.routes["/feed"] = write
    url = server.url("/feed")
    client = gated()
    for _ in range(POLICY.failures):
        with pytest.raises(HTTPStatusError):
            await client.get(url)

    clock.now += POLICY.open_s
    trial = asyncio.create_task(client.get(url))
    while answers[0] <= POLICY.failures:
        await asyncio.sleep(0.01)
    with pytest.raises(CircuitOpen, match="half-open"):
        await client.get(url)  # a second request while the trial is out
    release.set()

    assert (await trial).body == b"back"
    assert (await client.hosts.health(host_key(url))).state == "closed"
    assert (await client.get(url)).body == b"back"
    assert answers[0] == POLICY.failures + 2


async def test_a_failed_trial_reopens_the_breaker_for_longer_up_to_the_maximum(
    server: LocalServer, gated: Callable[..., OutboundClient], clock: Clock
) -> None:
    url = fail_then_serve(server, "/feed", failures=100)
    client = gated()
    for _ in range(POLICY.failures):
        with pytest.raises(HTTPStatusError):
            await client.get(url)
    waits = []
    for _ in range(4):
        with pytest.raises(CircuitOpen) as caught:
            await client.get(url)
        waits.append(caught.value.wait_s)
        clock.now += caught.value.wait_s
        with pytest.raises(HTTPStatusError):
            await client.get(url)  # the trial, which fails

    assert waits == [10.0, 20.0, 40.0, 40.0]


async def test_deliveries_have_their_own_breakers_apart_from_fetches(
    server: LocalServer, gated: Callable[..., OutboundClient]
) -> None:
    server.serve("/hook", b"down", status=503)
    feed = server.serve("/feed", b"feed")
    client = gated()
    for _ in range(POLICY.failures):
        assert (await client.post(server.url("/hook"), content=b"{}")).status == 503

    with pytest.raises(CircuitOpen):
        await client.post(server.url("/hook"), content=b"{}")
    assert (await client.get(feed)).body == b"feed"
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == POLICY.failures


async def test_a_client_without_a_gate_never_refuses(
    server: LocalServer, make_client: Callable[..., OutboundClient]
) -> None:
    url = fail_then_serve(server, "/feed", failures=10)
    client = make_client(allowed_networks=["127.0.0.1/32"])
    for _ in range(10):
        with pytest.raises(HTTPStatusError):
            await client.get(url)
    assert (await client.get(url)).body == b"ok"


def test_breaker_rules_by_themselves() -> None:
    health = HostHealth()
    for _ in range(POLICY.failures - 1):
        health = record(health, POLICY, ok=False, now=0.0)
    assert health.state == "closed"
    health = record(health, POLICY, ok=False, now=100.0)
    assert (health.state, health.retry_at) == ("open", 110.0)
    # A success reported by a request sent before the breaker opened proves nothing.
    assert record(health, POLICY, ok=True, now=101.0) == health
    refused, _ = admit(health, POLICY, 105.0)
    assert (refused.allowed, refused.wait_s) == (False, 5.0)
    allowed, trial = admit(health, POLICY, 110.0)
    assert allowed.allowed and trial.state == "half_open"
    # A trial that never reports lets another request try after trial_s.
    assert not admit(trial, POLICY, 114.0)[0].allowed
    assert admit(trial, POLICY, 115.0)[0].allowed


async def test_memory_breakers_forget_hosts_once_closed() -> None:
    store = MemoryBreakers()
    await store.record("source:a", POLICY, ok=False, now=0.0)
    assert (await store.read("source:a")).failures == 1
    await store.record("source:a", POLICY, ok=True, now=1.0)
    assert store._records == {}


def test_describe_breaker_says_unknown_rather_than_guess() -> None:
    assert describe_breaker(None) == "unknown"
    assert describe_breaker(HostHealth()) == "closed"
    assert describe_breaker(HostHealth("half_open")) == "half-open"
    opened = HostHealth("open", 5, opened_at=1_800_000_000.0, open_s=60.0)
    assert describe_breaker(opened) == "open until 2027-01-15 08:01:00 UTC"


def test_host_key_names_the_port_only_when_it_is_not_the_default() -> None:
    assert host_key("https://News.Example./feed") == "news.example"
    assert host_key("http://news.example:80/") == "news.example"
    assert host_key("http://127.0.0.1:8080/x") == "127.0.0.1:8080"


async def test_the_gauge_counts_hosts_by_state_not_by_name(
    start_server: Callable[..., LocalServer], gated: Callable[..., OutboundClient]
) -> None:
    from sigwatch.observability.metrics import HOST_BREAKERS, REGISTRY

    def hosts_open() -> float:
        return REGISTRY.get_sample_value("sigwatch_host_breakers", {"state": "open"}) or 0.0

    before = hosts_open()
    client = gated()
    for failing in (start_server(), start_server()):
        url = fail_then_serve(failing, "/feed", failures=100)
        for _ in range(POLICY.failures):
            with pytest.raises(HTTPStatusError):
                await client.get(url)

    assert hosts_open() == before + 2
    labels = {sample.labels.get("state") for sample in HOST_BREAKERS.collect()[0].samples}
    assert labels <= {"open", "half_open"}
