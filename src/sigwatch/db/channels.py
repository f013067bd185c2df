"""Channels: where a user's notifications go, with the kind's config stored sealed.

The config is validated by its kind and its secret fields are encrypted under the app's secret
key before they are stored; :func:`shown_config` is the only way a config leaves for display.
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
from sigwatch.delivery.channels.registry import (
    CHANNEL_KINDS,
    channel_secret_fields,
    mask_channel_config,
    open_channel_config,
    seal_channel_config,
    validate_channel_config,
)
from sigwatch.errors import ConfigError, InvalidInput
from sigwatch.secrets import MASK

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
    secret_key: str,
    enabled: bool = True,
    rate_limit_per_min: int | None = None,
) -> tuple[Channel, dict[str, str]]:
    """Add a channel; returns it and the secrets its kind generated because they were left out.

    The generated secrets (such as a webhook's signing secret) are in clear, for showing once.
    ConfigError when ``config`` does not fit ``kind``.
    """
    _check_kind(kind)
    clear = validate_channel_config(kind, dict(config))
    generated = {
        field: clear[field]
        for field in channel_secret_fields(kind)
        if field not in config and isinstance(clear.get(field), str)
    }
    channel = Channel(
        owner_id=owner_id,
        kind=kind,
        name=_clean_name(name),
        config=seal_channel_config(kind, clear, secret_key),
        enabled=enabled,
        rate_limit_per_min=_check_rate_limit(rate_limit_per_min),
    )
    session.add(channel)
    await session.flush()
    return channel, generated


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
    secret_key: str,
) -> Channel:
    """Change name, enabled, config or rate_limit_per_min (None removes the limit).

    A config given replaces the stored one, except that a secret field left out, or sent back
    masked as it was shown, keeps its stored value: users never see secrets, so they cannot be
    asked to repeat them.
    """
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be changed")
    channel = await get_channel(session, channel_id, owner_id=owner_id)
    if "name" in changes:
        channel.name = _clean_name(changes["name"])
    if "config" in changes:
        merged = _keep_stored_secrets(channel, dict(changes["config"]), secret_key)
        clear = validate_channel_config(channel.kind, merged)
        channel.config = seal_channel_config(channel.kind, clear, secret_key)
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


def shown_config(channel: Channel, secret_key: str) -> dict[str, Any]:
    """The channel's config as users may see it: every secret field masked.

    When the secrets cannot be decrypted (the secret key changed) they are shown fully masked,
    so the channel can still be listed and its secrets entered again.
    """
    try:
        secret = set(channel_secret_fields(channel.kind))
    except ConfigError:
        # A kind no longer registered: which fields are secret is unknown, so all text is hidden.
        return {
            name: MASK if isinstance(value, str) else value
            for name, value in channel.config.items()
        }
    try:
        clear = open_channel_config(channel.kind, dict(channel.config), secret_key)
    except ConfigError:
        return {
            name: MASK if name in secret and isinstance(value, str) else value
            for name, value in channel.config.items()
        }
    return mask_channel_config(channel.kind, clear)


def _keep_stored_secrets(
    channel: Channel, config: dict[str, Any], secret_key: str
) -> dict[str, Any]:
    shown = shown_config(channel, secret_key)
    kept = [
        field
        for field in channel_secret_fields(channel.kind)
        if field in channel.config and (field not in config or config[field] == shown.get(field))
    ]
    if not kept:
        return config
    # Raises ConfigError (a 422 asking to enter the secrets again) when the key has changed.
    stored = open_channel_config(channel.kind, dict(channel.config), secret_key)
    return {**config, **{field: stored[field] for field in kept}}


def _check_kind(kind: str) -> None:
    if kind not in CHANNEL_KINDS:
        known = ", ".join(sorted(CHANNEL_KINDS))
        raise InvalidInput("kind", f"unknown channel kind {kind!r}; known kinds: {known}")


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
