"""sigwatch's own rate limits on outbound requests: per host and per credential.

However many sources share a host (or a credential), the requests sent to it stay within
``SIGWATCH_HOST_RATE_LIMIT`` (and ``SIGWATCH_CREDENTIAL_RATE_LIMIT``). The `limits` library's
moving window counts them, so no second (or minute) of wall-clock time ever holds more than the
limit, unlike a fixed window that allows a double burst across a window's edge.

A request with no budget left waits for the next free slot when that is near (at most
:data:`MAX_TOKEN_WAIT_S`), and otherwise fails at once with :class:`HostRateLimited`, whose
``wait_s`` the scheduler honours. Credentials are counted by a hash of the Authorization value,
never the value itself.

Counters live in Redis when one is given, so every worker shares them, and in process otherwise.
When Redis fails, this process counts on its own until Redis answers again: requests are never
refused because the limiter's storage is down.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from typing import Any, cast

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis

from sigwatch.errors import HostRateLimited
from sigwatch.net.retry_after import describe_wait

log = structlog.get_logger(__name__)

#: The longest a request waits for a free slot before failing with a wait instead.
MAX_TOKEN_WAIT_S = 5.0
#: After a Redis failure, how long this process counts in memory before trying Redis again.
REDIS_RETRY_S = 10.0
#: Keys in Redis start with this, apart from anything else kept in the same database.
REDIS_KEY_PREFIX = "sigwatch:hostlimit"
#: Added to every wait for a slot. The window counts requests as they leave; connection set-up
#: varies by milliseconds, so without slack two requests a window apart could reach the
#: server a hair less than a window apart.
SLACK_S = 0.05


def credential_id(authorization: str) -> str:
    """A short, stable name for a credential: a hash of its Authorization value."""
    return hashlib.sha256(authorization.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class HostLimiter:
    """Spends one request per host (and per credential) from moving-window budgets."""

    def __init__(
        self,
        *,
        per_host: Sequence[RateLimitItem] = (),
        per_credential: Sequence[RateLimitItem] = (),
        memory: MemoryStorage | None = None,
        redis: Redis | None = None,
        redis_url: str = "",
        max_wait_s: float = MAX_TOKEN_WAIT_S,
    ) -> None:
        self.per_host = list(per_host)
        self.per_credential = list(per_credential)
        self.max_wait_s = max_wait_s
        self._memory = MovingWindowRateLimiter(memory or MemoryStorage())
        self._redis: MovingWindowRateLimiter | None = None
        if redis is not None:
            # The caller's connection pool: its timeouts apply, and closing it closes this.
            storage = RedisStorage(
                "async+" + redis_url.split("async+", 1)[-1],
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=REDIS_KEY_PREFIX,
                connection_pool=cast(Any, redis.connection_pool),
            )
            self._redis = MovingWindowRateLimiter(storage)
        self._redis_down_until = 0.0

    @classmethod
    def from_rules(
        cls, per_host: str | None, per_credential: str | None, **kwargs: Any
    ) -> HostLimiter:
        """The limiter for two ``limits`` rate strings (``10/second;300/minute``; None: none)."""
        return cls(
            per_host=parse_many(per_host) if per_host else (),
            per_credential=parse_many(per_credential) if per_credential else (),
            **kwargs,
        )

    @property
    def active(self) -> bool:
        """True when there is any limit to spend from."""
        return bool(self.per_host or self.per_credential)

    async def acquire(self, host: str, credential: str | None = None) -> None:
        """Spend one request to ``host`` (with ``credential``, a :func:`credential_id`).

        Waits up to ``max_wait_s`` for a free slot; raises HostRateLimited with the wait
        when the next slot is further away.
        """
        budgets = [("host", host, item) for item in self.per_host]
        if credential is not None:
            budgets += [("credential", credential, item) for item in self.per_credential]
        if not budgets:
            return
        deadline = time.monotonic() + self.max_wait_s
        while True:
            wait_s = await self._spend(budgets)
            if wait_s is None:
                return
            if time.monotonic() + wait_s > deadline:
                raise self._refusal(host, budgets, wait_s)
            await asyncio.sleep(wait_s)

    async def _spend(self, budgets: list[tuple[str, str, RateLimitItem]]) -> float | None:
        """Spend from every budget: None when all had room, else the wait for the fullest."""
        limiter = self._limiter()
        try:
            return await self._spend_from(limiter, budgets)
        except (StorageError, OSError) as exc:
            if limiter is self._memory:
                raise
            self._redis_down_until = time.monotonic() + REDIS_RETRY_S
            log.warning(
                "host rate limit storage unavailable; counting in process for now",
                retry_in_s=REDIS_RETRY_S,
                error=type(getattr(exc, "storage_error", exc)).__name__,
            )
            return await self._spend_from(self._memory, budgets)

    async def _spend_from(
        self, limiter: MovingWindowRateLimiter, budgets: list[tuple[str, str, RateLimitItem]]
    ) -> float | None:
        # Test every budget before spending from any, so a request refused by its credential's
        # budget does not use up a slot of its host's.
        for scope, name, item in budgets:
            if not await limiter.test(item, scope, name):
                return await self._wait_s(limiter, scope, name, item)
        for scope, name, item in budgets:
            if not await limiter.hit(item, scope, name):
                # Another worker took the last slot between the test and the hit.
                return await self._wait_s(limiter, scope, name, item)
        return None

    @staticmethod
    async def _wait_s(
        limiter: MovingWindowRateLimiter, scope: str, name: str, item: RateLimitItem
    ) -> float:
        stats = await limiter.get_window_stats(item, scope, name)
        # The slack is also a floor: a reset time in the past (clock step) must not spin.
        return min(float(item.get_expiry()), max(0.0, stats.reset_time - time.time())) + SLACK_S

    def _limiter(self) -> MovingWindowRateLimiter:
        if self._redis is not None and time.monotonic() >= self._redis_down_until:
            return self._redis
        return self._memory

    def _refusal(
        self, host: str, budgets: list[tuple[str, str, RateLimitItem]], wait_s: float
    ) -> HostRateLimited:
        rules = []
        for scope, setting in (
            ("host", "SIGWATCH_HOST_RATE_LIMIT"),
            ("credential", "SIGWATCH_CREDENTIAL_RATE_LIMIT"),
        ):
            items = [_describe(item) for kind, _, item in budgets if kind == scope]
            if items:
                rules.append(f"{' and '.join(items)} per {scope}, {setting}")
        return HostRateLimited(
            f"sigwatch's own rate limit for {host} is spent ({'; '.join(rules)}); the next "
            f"request may go in {describe_wait(wait_s)}: give the sources on this host longer "
            "poll intervals, or raise the limit if the host allows more",
            host=host,
            wait_s=wait_s,
        )


def _describe(item: RateLimitItem) -> str:
    period = item.GRANULARITY.name
    if item.multiples == 1:
        return f"{item.amount} requests per {period}"
    return f"{item.amount} requests per {item.multiples} {period}s"
