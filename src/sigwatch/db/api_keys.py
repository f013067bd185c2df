"""API keys: stored as SHA-256 hashes, listed by their display prefix, revoked rather than lost.

The key itself is made by :func:`sigwatch.auth.generate_api_key` in the caller (the CLI or the
API), which shows it once; storage only ever sees its hash and display prefix.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from sigwatch.db.models import ApiKey, User
from sigwatch.db.pagination import (
    Page,
    check_limit,
    decode_id_cursor,
    fetch_id_page,
    get_visible,
)
from sigwatch.db.types import utcnow
from sigwatch.errors import InvalidInput

#: ``last_used_at`` is written at most this often per key, so a busy key costs no write per call.
TOUCH_INTERVAL_S = 60


async def create_api_key(
    session: AsyncSession, *, user_id: int, prefix: str, key_hash: str, name: str = ""
) -> ApiKey:
    """Store a new key of ``user_id`` by its hash and display prefix."""
    if len(name) > 128:
        raise InvalidInput("name", "must be at most 128 characters")
    key = ApiKey(user_id=user_id, name=name, prefix=prefix, key_hash=key_hash)
    session.add(key)
    await session.flush()
    return key


async def get_api_key(session: AsyncSession, key_id: int, *, owner_id: int | None) -> ApiKey:
    """The key with this id; with ``owner_id``, only if that user owns it. NotFound otherwise."""
    return await get_visible(
        session, ApiKey, key_id, "API key", owner_id=owner_id, owner_column="user_id"
    )


async def find_api_key(session: AsyncSession, key_hash: str) -> tuple[ApiKey, User] | None:
    """The key stored under ``key_hash`` and its user, revoked or not; None when unknown."""
    stmt = (
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == key_hash)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def list_api_keys(
    session: AsyncSession, *, owner_id: int | None, cursor: str | None = None, limit: int = 50
) -> Page[ApiKey]:
    """Keys in creation order, revoked ones included; with ``owner_id``, only that user's."""
    check_limit(limit)
    stmt = select(ApiKey).order_by(ApiKey.id).limit(limit + 1)
    if owner_id is not None:
        stmt = stmt.where(ApiKey.user_id == owner_id)
    if cursor is not None:
        stmt = stmt.where(ApiKey.id > decode_id_cursor(cursor))
    return await fetch_id_page(session, stmt, limit)


async def revoke_api_key(session: AsyncSession, key_id: int, *, owner_id: int | None) -> ApiKey:
    """Mark a key revoked so it no longer authenticates; revoking twice keeps the first time."""
    key = await get_api_key(session, key_id, owner_id=owner_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


async def delete_api_key(session: AsyncSession, key_id: int, *, owner_id: int | None) -> ApiKey:
    """Remove a key for good; returns the removed key."""
    key = await get_api_key(session, key_id, owner_id=owner_id)
    await session.delete(key)
    await session.flush()
    return key


async def touch_api_key(session: AsyncSession, key: ApiKey, *, now: datetime | None = None) -> bool:
    """Record that ``key`` was used, unless done in the last minute; True when written."""
    now = now or utcnow()
    stale = now - timedelta(seconds=TOUCH_INTERVAL_S)
    if key.last_used_at is not None and key.last_used_at > stale:
        return False
    stmt = (
        update(ApiKey)
        .where(
            ApiKey.id == key.id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= stale)
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(stmt)
    # Mirror the write without marking the object dirty, which would write it a second time.
    set_committed_value(key, "last_used_at", now)
    return True
