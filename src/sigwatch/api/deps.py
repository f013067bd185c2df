"""What routes depend on: the runtime, a database session per request, and the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal, cast

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sigwatch import auth
from sigwatch.alerts.detectors import DetectorCache
from sigwatch.api.ratelimit import ApiRateLimiter
from sigwatch.config import Settings
from sigwatch.db import api_keys, users
from sigwatch.db.models import ApiKey, User
from sigwatch.errors import AuthError, Forbidden, NotFound
from sigwatch.live.bus import LiveBus, MemoryBus

API_KEY_HEADER = "X-API-Key"
NOT_AUTHENTICATED = (
    "not authenticated: send `Authorization: Bearer <access token>` (get one from "
    "POST /api/v1/auth/token) or an `X-API-Key: sw_...` header (create one with "
    "POST /api/v1/api-keys or `sigwatch apikey create`)"
)


@dataclass(slots=True)
class Runtime:
    """What the app holds while it runs: settings, database, signing key and Redis client."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    secret_key: str
    redis: Redis | None = None
    #: False when the database was unreachable at startup: readiness checks the schema later.
    schema_checked: bool = False
    #: The compiled watchlist, for POST /api/v1/detect.
    detectors: DetectorCache = field(default_factory=DetectorCache)
    #: The live bus alert events travel on (see sigwatch.live); in process unless Redis is set.
    bus: LiveBus = field(default_factory=MemoryBus)
    #: API request budgets (see sigwatch.api.ratelimit); None when rate limiting is off.
    rate_limiter: ApiRateLimiter | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a user, and the API key used if any."""

    user: User
    api_key: ApiKey | None = None
    expires_at: datetime | None = None  # when the access token used expires

    @property
    def is_admin(self) -> bool:
        """True for the admin role, which sees and changes everything."""
        return self.user.role == "admin"

    @property
    def owner_filter(self) -> int | None:
        """The owner to restrict lookups to: None for admins, the user's own id otherwise."""
        return None if self.is_admin else self.user.id

    @property
    def method(self) -> Literal["token", "api_key"]:
        """How the caller authenticated."""
        return "token" if self.api_key is None else "api_key"


def get_runtime(request: Request) -> Runtime:
    """The runtime the lifespan put on the app."""
    return cast(Runtime, request.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session for this request; routes commit what they change, the rest is rolled back."""
    async with runtime.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

bearer_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    refreshUrl="/api/v1/auth/refresh",
    auto_error=False,
    description="An access token from POST /api/v1/auth/token.",
)
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="An API key (sw_...) from POST /api/v1/api-keys or `sigwatch apikey create`.",
)


async def get_principal(
    runtime: RuntimeDep,
    session: SessionDep,
    bearer: Annotated[str | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """Authenticate by API key header or bearer token (an API key also works as bearer)."""
    return await authenticate(runtime, session, bearer=bearer, api_key=api_key)


async def authenticate(
    runtime: Runtime, session: AsyncSession, *, bearer: str | None, api_key: str | None
) -> Principal:
    """The caller an API key or a bearer token names (shared by HTTP and WebSocket routes)."""
    if api_key:
        return await _from_api_key(session, api_key)
    if bearer:
        if auth.looks_like_api_key(bearer):
            return await _from_api_key(session, bearer)
        claims = auth.decode_token(runtime.secret_key, bearer, expected_type="access")
        return Principal(await token_user(session, claims), expires_at=claims.expires_at)
    raise AuthError(NOT_AUTHENTICATED)


async def active_user(session: AsyncSession, user_id: int) -> User:
    """The user a valid token names, or AuthError when it is gone or deactivated."""
    try:
        user = await users.get_user(session, user_id)
    except NotFound:
        raise AuthError("the user of this token no longer exists: sign in again") from None
    if not user.is_active:
        raise AuthError("this user is deactivated: ask an admin to reactivate it")
    return user


async def token_user(session: AsyncSession, claims: auth.TokenClaims) -> User:
    """The active user a verified token names, unless a password change since retired it."""
    user = await active_user(session, claims.user_id)
    if claims.token_version != user.token_version:
        raise AuthError(
            f"the password was changed after this {claims.type} token was issued: sign in "
            "again at POST /api/v1/auth/token with the new password"
        )
    return user


async def _from_api_key(session: AsyncSession, key: str) -> Principal:
    if not auth.looks_like_api_key(key):
        raise AuthError(
            "this is not a sigwatch API key (they start with sw_): " + NOT_AUTHENTICATED
        )
    found = await api_keys.find_api_key(session, auth.hash_api_key(key))
    if found is None:
        raise AuthError("unknown API key: check it was copied whole, or create a new one")
    stored, user = found
    if stored.revoked_at is not None:
        raise AuthError(
            f"API key {stored.prefix}... was revoked on {stored.revoked_at:%Y-%m-%d}: "
            "create a new one"
        )
    if not user.is_active:
        raise AuthError("the user of this API key is deactivated: ask an admin to reactivate it")
    if await api_keys.touch_api_key(session, stored):
        # Committed at once, so the route's own transaction does not carry this write.
        await session.commit()
    return Principal(user, stored)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: CurrentPrincipal) -> Principal:
    """The caller, if an admin; Forbidden otherwise."""
    if not principal.is_admin:
        raise Forbidden("this needs the admin role: ask an admin")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]
