"""The resilience layer every outbound request passes: per-host breaker and rate limits.

:class:`HostGate` is what the outbound client calls around each request (each redirect hop):
:meth:`HostGate.admit` before it (the breaker must let it through, then the host's and the
credential's rate limits must have room) and :meth:`HostGate.record` after it (a transient
failure counts toward opening the host's breaker, a sane answer resets the count).

Breakers live in two key spaces: ``source`` (fetches) and ``delivery`` (webhook sends), so a
receiver that fails does not stop the feeds of its host from being polled, nor the other way
round. Rate limits apply to fetches only: an alert should leave at once, and receivers that
want it slower say so with 429 and Retry-After, which the delivery retries honour.

A host is its name, plus the port when it is not the scheme's default: another port is most
often another service. With Redis configured the breakers and the counters are shared by
every process; otherwise they live in this process, in one board that the clients built from
the same settings share (the API and the worker of an embedded ``sigwatch up`` are built from
one settings object), so the API shows what the worker sees.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

import httpx
import structlog
from limits.aio.storage import MemoryStorage
from redis.asyncio import Redis
from redis.exceptions import RedisError

from sigwatch.config import Settings
from sigwatch.errors import CircuitOpen, HostRateLimited
from sigwatch.net.breaker import (
    STATES,
    BreakerPolicy,
    BreakerState,
    BreakerStore,
    HostHealth,
    MemoryBreakers,
    RedisBreakers,
)
from sigwatch.net.host_limits import HostLimiter, credential_id
from sigwatch.observability.metrics import HOST_BREAKERS, HOST_REQUESTS_HELD

log = structlog.get_logger(__name__)

KeySpace = Literal["source", "delivery"]
#: After a Redis failure, how long breakers are kept in process before trying Redis again.
REDIS_RETRY_S = 10.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
_T = TypeVar("_T")


def host_key(url: httpx.URL | str) -> str:
    """The host a URL's requests count against: ``news.example`` or ``127.0.0.1:8080``."""
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    host = parsed.host.lower().rstrip(".")
    if parsed.port is not None and parsed.port != _DEFAULT_PORTS.get(parsed.scheme):
        return f"{host}:{parsed.port}"
    return host


@dataclass(slots=True)
class ProcessBoard:
    """The in-process breakers and counters of the clients built from one settings object."""

    breakers: MemoryBreakers
    counters: MemoryStorage
    #: True once a source fetch went through this board: its breakers are then the truth
    #: for the sources polled in this process (embedded mode), not a blank slate.
    fetched: bool = False


# Boards by the id of the settings they serve, with a weak reference to check the id is still
# that object's: tests build settings by the hundred and each must start with a clean slate.
_BOARDS: dict[int, tuple[weakref.ref[Settings], ProcessBoard]] = {}


def process_board(settings: Settings, *, create: bool = True) -> ProcessBoard | None:
    """The in-process board of clients built from ``settings``; None if none and not ``create``."""
    found = _BOARDS.get(id(settings))
    if found is not None and found[0]() is settings:
        return found[1]
    if not create:
        return None
    board = ProcessBoard(MemoryBreakers(), MemoryStorage())
    key = id(settings)
    _BOARDS[key] = (weakref.ref(settings, lambda _ref: _BOARDS.pop(key, None)), board)
    return board


class HostGate:
    """Admits requests to a host past its breaker and rate limits, and records outcomes."""

    def __init__(
        self,
        *,
        policy: BreakerPolicy,
        limiter: HostLimiter,
        breakers: BreakerStore | None = None,
        redis: Redis | None = None,
        owns_redis: bool = False,
        board: ProcessBoard | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.limiter = limiter
        self._board = board
        self._memory: BreakerStore = breakers or MemoryBreakers()
        self._redis_breakers = RedisBreakers(redis) if redis is not None else None
        self._redis = redis
        self._owns_redis = owns_redis
        self._redis_down_until = 0.0
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, *, trial_s: float) -> HostGate:
        """The gate the settings ask for: in Redis when ``SIGWATCH_REDIS_URL`` is set."""
        policy = BreakerPolicy(
            failures=settings.breaker_failures,
            open_s=settings.breaker_open_s,
            max_open_s=settings.breaker_max_open_s,
            trial_s=trial_s,
        )
        board = process_board(settings)
        assert board is not None
        redis = _redis_client(settings.redis_url) if settings.redis_url else None
        limiter = HostLimiter.from_rules(
            settings.host_rate_limit,
            settings.credential_rate_limit,
            memory=board.counters,
            redis=redis,
            redis_url=settings.redis_url or "",
        )
        return cls(
            policy=policy,
            limiter=limiter,
            breakers=board.breakers,
            redis=redis,
            owns_redis=True,
            board=board,
        )

    async def aclose(self) -> None:
        """Close the Redis connection this gate opened, if any."""
        if self._redis is not None and self._owns_redis:
            await self._redis.aclose()

    async def admit(
        self, host: str, *, space: KeySpace, headers: Mapping[str, str] | None = None
    ) -> None:
        """Let one request to ``host`` go, or raise CircuitOpen / HostRateLimited with a wait.

        The breaker is asked first, so a request it refuses spends no rate-limit slot.
        """
        key = f"{space}:{host}"
        now = self._clock()
        admission = await self._with_store(lambda store: store.admit(key, self.policy, now))
        self._saw(key, admission.health.state)
        if not admission.allowed:
            HOST_REQUESTS_HELD.labels("circuit_open").inc()
            raise circuit_open_error(host, admission.health, admission.wait_s, now=now)
        if space == "source":
            if self._board is not None:
                self._board.fetched = True
            authorization = _header(headers, "authorization")
            credential = credential_id(authorization) if authorization else None
            try:
                await self.limiter.acquire(host, credential)
            except HostRateLimited:
                HOST_REQUESTS_HELD.labels("rate_limited").inc()
                raise

    async def record(self, host: str, *, space: KeySpace, ok: bool) -> None:
        """Record a request's outcome: ``ok`` False only for a transient failure of the host."""
        key = f"{space}:{host}"
        now = self._clock()
        before = _SEEN.get(key, "closed")
        after = await self._with_store(lambda store: store.record(key, self.policy, ok=ok, now=now))
        self._saw(key, after.state)
        if after.state != before:
            log.info(
                "circuit breaker changed",
                host=host,
                space=space,
                state=after.state,
                failures=after.failures,
                open_s=after.open_s if after.state == "open" else None,
            )

    async def health(self, host: str, *, space: KeySpace = "source") -> HostHealth:
        """The breaker's record for ``host`` as this gate's storage holds it."""
        key = f"{space}:{host}"
        return await self._with_store(lambda store: store.read(key))

    async def _with_store(self, call: Callable[[BreakerStore], Awaitable[_T]]) -> _T:
        store = self._redis_breakers
        if store is not None and time.monotonic() >= self._redis_down_until:
            try:
                return await call(store)
            except (RedisError, OSError) as exc:
                self._redis_down_until = time.monotonic() + REDIS_RETRY_S
                log.warning(
                    "circuit breaker storage unavailable; keeping breakers in process for now",
                    retry_in_s=REDIS_RETRY_S,
                    error=type(exc).__name__,
                )
        return await call(self._memory)

    def _saw(self, key: str, state: BreakerState) -> None:
        if state == "closed":
            _SEEN.pop(key, None)
        else:
            _SEEN[key] = state
        _refresh_gauge()


# The last state this process saw per breaker, for the gauge. Hosts back to closed leave it,
# so it holds only the hosts in trouble. The gauge is labelled by state only: host names are
# unbounded (every feed's host), a count per state is not.
_SEEN: dict[str, BreakerState] = {}


def _refresh_gauge() -> None:
    counts = dict.fromkeys(STATES, 0)
    for state in _SEEN.values():
        counts[state] += 1
    for state in ("open", "half_open"):
        HOST_BREAKERS.labels(state).set(counts[state])


def circuit_open_error(host: str, health: HostHealth, wait_s: float, *, now: float) -> CircuitOpen:
    """The error for a request the breaker refused: why, until when, and what to check."""
    at = datetime.fromtimestamp(now + wait_s, UTC).strftime("%H:%M:%S UTC")
    if health.state == "half_open":
        why = f"circuit half-open for {host}: a trial request is under way; next try at {at}"
    else:
        why = f"circuit open for {host} after {health.failures} failures in a row; next try at {at}"
    return CircuitOpen(
        f"{why}. sigwatch sends nothing to this host until then: check that it is up and "
        "reachable from here (SIGWATCH_BREAKER_FAILURES and SIGWATCH_BREAKER_OPEN_S tune this)",
        host=host,
        wait_s=wait_s,
    )


def describe_breaker(health: HostHealth | None) -> str:
    """The breaker state as a person reads it: closed, open until T, half-open or unknown."""
    if health is None:
        return "unknown"
    if health.state == "open" and health.retry_at is not None:
        at = datetime.fromtimestamp(health.retry_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"open until {at}"
    return health.state.replace("_", "-")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _redis_client(url: str) -> Redis:
    # Short timeouts: a Redis that does not answer must not hold a fetch; the gate falls back
    # to this process's breakers instead.
    return Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)


def fetch_host(
    kind: str, config: Mapping[str, object], platform_urls: Mapping[str, str]
) -> str | None:
    """The host a source of ``kind`` with this (masked) config fetches from, or None.

    Read from the options every kind uses to say where it fetches: a bridge (``bridge_url``
    when ``via`` names one), its own ``url``, or else its platform's address among
    ``platform_urls`` (``x_api_url`` for ``x_*`` kinds, ``reddit_url`` for ``reddit`` …).
    """
    bridge = config.get("bridge_url")
    if isinstance(bridge, str) and config.get("via") not in (None, "api"):
        return _host_or_none(bridge)
    url = config.get("url")
    if isinstance(url, str):
        return _host_or_none(url)
    prefix = kind.split("_", 1)[0] + "_"
    for name, value in platform_urls.items():
        if name.startswith(prefix) and name.endswith("_url"):
            return _host_or_none(value)
    return None


async def read_breakers(
    settings: Settings, hosts: set[str], *, redis: Redis | None = None
) -> dict[str, HostHealth | None]:
    """The fetch breaker of each host as known to this process; None where it is not known.

    With Redis (``redis``, or a connection opened from ``SIGWATCH_REDIS_URL``) the shared
    records are read. Without it only a process that polls sources itself (embedded mode) knows
    its breakers; anywhere else, and when Redis does not answer, the state is unknown rather
    than guessed as closed.
    """
    if not hosts:
        return {}
    if redis is None and settings.redis_url:
        opened = _redis_client(settings.redis_url)
        try:
            return await read_breakers(settings, hosts, redis=opened)
        finally:
            await opened.aclose()
    if redis is not None:
        store = RedisBreakers(redis)
        try:
            return {host: await store.read(f"source:{host}") for host in hosts}
        except (RedisError, OSError) as exc:
            log.warning("circuit breakers unreadable", error=type(exc).__name__)
            return dict.fromkeys(hosts)
    board = process_board(settings, create=False)
    if board is None or not board.fetched:
        return dict.fromkeys(hosts)
    return {host: await board.breakers.read(f"source:{host}") for host in hosts}


def _host_or_none(url: str) -> str | None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    return host_key(parsed) if parsed.host else None
