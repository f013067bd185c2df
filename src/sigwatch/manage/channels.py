"""Adding, changing and showing channels: options validated and sealed by the kind's registry.

A channel's secrets (webhook URLs and signing secrets, Apprise URLs with tokens) are sealed
before they reach the database and come back masked from :func:`shown_config`; the sender opens
them (``sigwatch.delivery.send``). Secrets a kind generates because they were left out (a
webhook's signing secret) are returned in clear once, by :func:`create_channel`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db import channels as rows
from sigwatch.db.models import Channel
from sigwatch.delivery.channels.registry import CHANNEL_REGISTRY
from sigwatch.errors import InvalidInput


async def create_channel(
    session: AsyncSession,
    *,
    owner_id: int,
    kind: str,
    name: str,
    config: Mapping[str, Any],
    secret_key: str,
    lease_s: float,
    enabled: bool = True,
    rate_limit_per_min: int | None = None,
) -> tuple[Channel, dict[str, str]]:
    """Add a channel; returns it and the secrets its kind generated because they were left out.

    The generated secrets (such as a webhook's signing secret) are in clear, for showing once.
    InvalidInput for an unknown kind or a send timeout not shorter than the workers' ``lease_s``,
    InvalidOptions naming each bad option.
    """
    _check_kind(kind)
    clear = CHANNEL_REGISTRY.clear_config(kind, config)
    _check_timeout_fits_lease(clear, lease_s)
    generated = {
        name: clear[name]
        for name in CHANNEL_REGISTRY.secret_fields(kind)
        if name not in config and isinstance(clear.get(name), str)
    }
    channel = await rows.create_channel(
        session,
        owner_id=owner_id,
        kind=kind,
        name=name,
        config=CHANNEL_REGISTRY.seal(kind, clear, secret_key),
        enabled=enabled,
        rate_limit_per_min=rate_limit_per_min,
    )
    return channel, generated


async def update_channel(
    session: AsyncSession,
    channel_id: int,
    changes: Mapping[str, Any],
    *,
    owner_id: int | None,
    secret_key: str,
    lease_s: float,
) -> Channel:
    """Change name, enabled, config or rate_limit_per_min (None removes the limit).

    A config given replaces the stored one, except that a secret field left out, or sent back
    masked as it was shown, keeps its stored value: users never see secrets, so they cannot be
    asked to repeat them.
    """
    changes = dict(changes)
    if "config" in changes:
        channel = await rows.get_channel(session, channel_id, owner_id=owner_id)
        given = CHANNEL_REGISTRY.keep_stored_secrets(
            channel.kind, dict(changes["config"]), channel.config, secret_key
        )
        clear = CHANNEL_REGISTRY.clear_config(channel.kind, given)
        _check_timeout_fits_lease(clear, lease_s)
        changes["config"] = CHANNEL_REGISTRY.seal(channel.kind, clear, secret_key)
    return await rows.update_channel(session, channel_id, changes, owner_id=owner_id)


def shown_config(channel: Channel, secret_key: str) -> dict[str, Any]:
    """The channel's config as users may see it: every secret field masked.

    When the secrets cannot be decrypted (the secret key changed) they are shown fully masked,
    so the channel can still be listed and its secrets entered again.
    """
    return CHANNEL_REGISTRY.shown(channel.kind, channel.config, secret_key)


def _check_kind(kind: str) -> None:
    if kind not in CHANNEL_REGISTRY.kinds:
        raise InvalidInput("kind", CHANNEL_REGISTRY.unknown_kind_message(kind))


def _check_timeout_fits_lease(config: Mapping[str, Any], lease_s: float) -> None:
    """Refuse a channel whose own send timeout would outlast the lease on a delivery."""
    timeout_s = config.get("timeout_s")
    if isinstance(timeout_s, int | float) and timeout_s >= lease_s:
        raise InvalidInput(
            "config.timeout_s",
            f"must be shorter than the workers' lease (SIGWATCH_LEASE_S={lease_s:g}s), so a "
            f"slow send never outlasts its claim; give less than {lease_s:g} or raise "
            "SIGWATCH_LEASE_S",
        )
