"""Channels: the rows of where a user's notifications go. Queries only.

A config arrives here already validated by its kind and sealed by :mod:`sigwatch.manage.channels`,
and is stored as given; that module's ``shown_config`` is how a config leaves for display.
Every lookup takes ``owner_id``: None means any owner (an admin), a user id limits the lookup to
that user's channels, and a channel of someone else is NotFound, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Channel
from sigwatch.db.pagination import (
    Page,
    check_limit,
    decode_id_cursor,
    fetch_id_page,
    get_visible,
)
from sigwatch.db.subscriptions import forget_channel
from sigwatch.errors import InvalidInput

MIN_RATE_LIMIT_PER_MIN = 1
MAX_RATE_LIMIT_PER_MIN = 10_000
_UPDATABLE = frozenset({"name", "enabled", "config", "rate_limit_per_min"})


async def create_channel(
    session: AsyncSession,
    *,
    owner_id: int,
    kind: str,
    name: str,
    config: Mapping[str, Any],
    enabled: bool = True,
    rate_limit_per_min: int | None = None,
) -> Channel:
    """Store a channel; ``config`` is stored as given (validated and sealed by the caller)."""
    channel = Channel(
        owner_id=owner_id,
        kind=kind,
        name=_clean_name(name),
        config=dict(config),
        enabled=enabled,
        rate_limit_per_min=_check_rate_limit(rate_limit_per_min),
    )
    session.add(channel)
    await session.flush()
    return channel


async def get_channel(session: AsyncSession, channel_id: int, *, owner_id: int | None) -> Channel:
    """The channel with this id, if ``owner_id`` may see it; NotFound otherwise."""
    return await get_visible(session, Channel, channel_id, "channel", owner_id=owner_id)


async def list_channels(
    session: AsyncSession,
    *,
    owner_id: int | None,
    kind: str | None = None,
    enabled: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Channel]:
    """Channels ``owner_id`` may see, in creation order, optionally of one kind or state."""
    check_limit(limit)
    stmt = select(Channel).order_by(Channel.id).limit(limit + 1)
    if owner_id is not None:
        stmt = stmt.where(Channel.owner_id == owner_id)
    if kind is not None:
        stmt = stmt.where(Channel.kind == kind)
    if enabled is not None:
        stmt = stmt.where(Channel.enabled.is_(enabled))
    if cursor is not None:
        stmt = stmt.where(Channel.id > decode_id_cursor(cursor))
    return await fetch_id_page(session, stmt, limit)


async def update_channel(
    session: AsyncSession,
    channel_id: int,
    changes: Mapping[str, Any],
    *,
    owner_id: int | None,
) -> Channel:
    """Change name, enabled, config (stored as given) or rate_limit_per_min (None: no limit)."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be changed")
    channel = await get_channel(session, channel_id, owner_id=owner_id)
    if "name" in changes:
        channel.name = _clean_name(changes["name"])
    if "config" in changes:
        channel.config = dict(changes["config"])
    if "rate_limit_per_min" in changes:
        channel.rate_limit_per_min = _check_rate_limit(changes["rate_limit_per_min"])
    if "enabled" in changes:
        channel.enabled = bool(changes["enabled"])
    await session.flush()
    return channel


async def delete_channel(
    session: AsyncSession, channel_id: int, *, owner_id: int | None
) -> Channel:
    """Remove a channel and its deliveries, and take it out of its owner's subscriptions."""
    channel = await get_channel(session, channel_id, owner_id=owner_id)
    await forget_channel(session, channel.owner_id, channel.id)
    await session.delete(channel)
    await session.flush()
    return channel


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("name", "must not be blank")
    if len(name) > 200:
        raise InvalidInput("name", "must be at most 200 characters")
    return name


def _check_rate_limit(rate_limit_per_min: int | None) -> int | None:
    if rate_limit_per_min is not None and not (
        MIN_RATE_LIMIT_PER_MIN <= rate_limit_per_min <= MAX_RATE_LIMIT_PER_MIN
    ):
        raise InvalidInput(
            "rate_limit_per_min",
            f"must be between {MIN_RATE_LIMIT_PER_MIN} and {MAX_RATE_LIMIT_PER_MIN}, "
            "or null for no limit",
        )
    return rate_limit_per_min
