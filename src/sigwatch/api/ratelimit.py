"""API rate limits: a budget of requests per API key, per user and per client address.

Every request under ``/api/`` spends from the budget of its client address and, when it carries
credentials, from that of its API key or of the user its access token names. Health checks,
``/metrics`` and the OpenAPI pages are not limited. Answers carry ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds) for the tightest budget; a request over
budget gets 429 with ``Retry-After`` and ``{"detail": "..."}``.

Counters live in Redis when ``SIGWATCH_REDIS_URL`` is set, so every API process shares them, and
in process otherwise. When Redis fails, this process counts on its own until Redis answers again:
requests are never refused because the limiter's storage is down.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sigwatch import auth
from sigwatch.config import Settings
from sigwatch.errors import AuthError, SigwatchError

if TYPE_CHECKING:
    from sigwatch.api.deps import Runtime

log = structlog.get_logger(__name__)

#: Only the API is limited; health, metrics and docs stay reachable for probes and people.
LIMITED_PREFIX = "/api/"
#: After a Redis failure, how long this process counts in memory before trying Redis again.
REDIS_RETRY_S = 10.0
#: Keys in Redis start with this, apart from anything else kept in the same database.
REDIS_KEY_PREFIX = "sigwatch:ratelimit"

SCOPE_SETTINGS = {
    "ip": "SIGWATCH_RATE_LIMIT_PER_IP",
    "user": "SIGWATCH_RATE_LIMIT_PER_USER",
    "api_key": "SIGWATCH_RATE_LIMIT_PER_API_KEY",
}
_SCOPE_WORDS = {"ip": "client address", "user": "user", "api_key": "API key"}


class TooManyRequests(SigwatchError):
    """The caller must wait ``retry_after_s`` seconds before trying again (HTTP 429)."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def retry_after_header(seconds: float) -> str:
    """Whole seconds for ``Retry-After``, rounded up and at least 1."""
    return str(max(1, math.ceil(seconds)))


def too_many_requests_response(exc: TooManyRequests) -> JSONResponse:
    """The 429 answer for ``exc``, in the project's ``{"detail": ...}`` shape."""
    return JSONResponse(
        {"detail": str(exc)},
        status_code=429,
        headers={"Retry-After": retry_after_header(exc.retry_after_s)},
    )


async def _too_many_requests(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TooManyRequests)
    return too_many_requests_response(exc)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One budget a request spends from: its scope (ip, user, api_key) and whose it is."""

    scope: str
    identity: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of spending one request: allowed or not, and the tightest budget's numbers."""

    allowed: bool
    limit: int
    remaining: int
    reset_after_s: float
    scope: str
    rule: str

    def headers(self) -> dict[str, str]:
        """The ``RateLimit-*`` headers describing this budget."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": retry_after_header(self.reset_after_s),
        }

    def error(self) -> TooManyRequests:
        """The error a refused request answers with, saying which budget ran out."""
        word = _SCOPE_WORDS.get(self.scope, self.scope)
        return TooManyRequests(
            f"rate limit exceeded: at most {self.rule} per {word}. Retry after "
            f"{retry_after_header(self.reset_after_s)} s (see the Retry-After header), or ask "
            f"the operator to raise {SCOPE_SETTINGS.get(self.scope, 'the limit')}",
            retry_after_s=self.reset_after_s,
        )


class ApiRateLimiter:
    """Spends requests from per-scope budgets, in Redis when given one, else in process."""

    def __init__(
        self, rules: dict[str, list[RateLimitItem]], *, redis: Redis | None = None, url: str = ""
    ) -> None:
        self.rules = rules
        self._memory = FixedWindowRateLimiter(MemoryStorage())
        self._redis: FixedWindowRateLimiter | None = None
        if redis is not None:
            # The app's own connection pool: its timeouts apply, and closing the app closes it.
            storage = RedisStorage(
                "async+" + url.split("async+", 1)[-1],
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=REDIS_KEY_PREFIX,
                connection_pool=cast(Any, redis.connection_pool),
            )
            self._redis = FixedWindowRateLimiter(storage)
        self._redis_down_until = 0.0

    @property
    def uses_redis(self) -> bool:
        """True while counters go to Redis (configured and not in a fallback period)."""
        return self._redis is not None and time.monotonic() >= self._redis_down_until

    async def spend(self, buckets: Sequence[Bucket]) -> Verdict | None:
        """Spend one request from each bucket; None when no bucket has a rule."""
        if self.uses_redis:
            assert self._redis is not None
            try:
                return await self._spend(self._redis, buckets)
            except (StorageError, OSError) as exc:
                self._redis_down_until = time.monotonic() + REDIS_RETRY_S
                log.warning(
                    "rate limit storage unavailable; counting in process for now",
                    retry_in_s=REDIS_RETRY_S,
                    error=type(getattr(exc, "storage_error", exc)).__name__,
                )
        return await self._spend(self._memory, buckets)

    async def _spend(
        self, limiter: FixedWindowRateLimiter, buckets: Sequence[Bucket]
    ) -> Verdict | None:
        tightest: Verdict | None = None
        for bucket in buckets:
            for item in self.rules.get(bucket.scope, []):
                allowed = await limiter.hit(item, bucket.scope, bucket.identity)
                stats = await limiter.get_window_stats(item, bucket.scope, bucket.identity)
                reset_after_s = min(float(item.get_expiry()), stats.reset_time - time.time())
                verdict = Verdict(
                    allowed=allowed,
                    limit=item.amount,
                    remaining=stats.remaining,
                    reset_after_s=max(0.0, reset_after_s),
                    scope=bucket.scope,
                    rule=_describe(item),
                )
                if not allowed:
                    return verdict
                if tightest is None or verdict.remaining < tightest.remaining:
                    tightest = verdict
        return tightest


def _describe(item: RateLimitItem) -> str:
    period = item.GRANULARITY.name
    if item.multiples == 1:
        return f"{item.amount} requests per {period}"
    return f"{item.amount} requests per {item.multiples} {period}s"


def create_rate_limiter(settings: Settings, redis: Redis | None) -> ApiRateLimiter | None:
    """The limiter the settings ask for, or None when rate limiting is off."""
    if not settings.rate_limit_enabled:
        return None
    rules = {
        "ip": parse_many(settings.rate_limit_per_ip),
        "user": parse_many(settings.rate_limit_per_user),
        "api_key": parse_many(settings.rate_limit_per_api_key),
    }
    return ApiRateLimiter(rules, redis=redis, url=settings.redis_url or "")


def buckets_for(scope: Scope, secret_key: str) -> list[Bucket]:
    """The budgets a request spends from: its client address, then its key or its user.

    Credentials are only read here, never checked against the database: an API key is counted
    by its hash, a token by the user it names once its signature is verified. A request with
    credentials that turn out wrong is still counted against its address.
    """
    client = scope.get("client")
    buckets = [Bucket("ip", client[0] if client else "unknown")]
    headers = Headers(scope=scope)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    api_key = headers.get("x-api-key") or _first(query.get("api_key"))
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    bearer = credentials.strip() if scheme.lower() == "bearer" else _first(query.get("token"))
    if not api_key and bearer and auth.looks_like_api_key(bearer):
        api_key = bearer
    if api_key:
        buckets.append(Bucket("api_key", auth.hash_api_key(api_key)[:32]))
    elif bearer:
        try:
            claims = auth.decode_token(secret_key, bearer, expected_type="access")
        except AuthError:
            return buckets
        buckets.append(Bucket("user", str(claims.user_id)))
    return buckets


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


class RateLimitMiddleware:
    """ASGI middleware that spends each API request from its budgets and adds the headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LIMITED_PREFIX):
            await self.app(scope, receive, send)
            return
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
        limiter = runtime.rate_limiter if runtime is not None else None
        if runtime is None or limiter is None:
            await self.app(scope, receive, send)
            return
        verdict = await limiter.spend(buckets_for(scope, runtime.secret_key))
        if verdict is None:
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            response = too_many_requests_response(verdict.error())
            response.headers.update(verdict.headers())
            await response(scope, receive, send)
            return
        extra = verdict.headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_rate_limits(app: FastAPI) -> None:
    """Add the rate-limit middleware and the handler that turns TooManyRequests into a 429."""
    app.add_exception_handler(TooManyRequests, _too_many_requests)
    app.add_middleware(RateLimitMiddleware)
