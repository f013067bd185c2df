"""Adding, changing and showing sources: options validated and sealed by the kind's registry.

A source's secret options (an RSS feed's Authorization header, a future X bearer token) are
sealed before they reach the database and come back masked from :func:`shown_source_config`;
only the worker opens them (``sigwatch.sources.registry.open_source``). The kind also says what
the source's address is (its ``origin``), so one owner cannot add the same feed twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.alerts.freshness import clean_freshness
from sigwatch.config import Settings
from sigwatch.db import sources as rows
from sigwatch.db.models import Source as SourceRow
from sigwatch.errors import ConfigError, InvalidInput
from sigwatch.kinds import dump_clear
from sigwatch.net.breaker import HostHealth
from sigwatch.net.hosts import fetch_host, read_breakers
from sigwatch.sources.base import Platforms
from sigwatch.sources.registry import SOURCE_REGISTRY, options_origin

#: The settings' defaults, for callers that pass no settings (built without reading the
#: environment).
_DEFAULT_SETTINGS = Settings.model_construct()


async def create_source(
    session: AsyncSession,
    *,
    owner_id: int | None,
    kind: str,
    name: str,
    config: Mapping[str, Any],
    secret_key: str,
    enabled: bool = True,
    poll_interval_s: int | None = None,
    settings: Settings | None = None,
) -> SourceRow:
    """Add a source, due for polling now, its secrets sealed.

    InvalidInput for an unknown kind or an interval below the kind's minimum, InvalidOptions
    naming each bad option, Conflict naming the source when the owner already has this kind and
    address. Without ``poll_interval_s`` the settings' default is used, raised to the kind's
    minimum; ``settings`` None means the settings' defaults.
    """
    _check_kind(kind)
    settings = settings or _DEFAULT_SETTINGS
    if poll_interval_s is None:
        poll_interval_s = max(settings.poll_interval_s, settings.min_poll_interval_of(kind))
    check_poll_interval(kind, poll_interval_s, settings)
    options = SOURCE_REGISTRY.validate(kind, config)
    clear = dump_clear(options)
    return await rows.create_source(
        session,
        owner_id=owner_id,
        kind=kind,
        name=name,
        config=SOURCE_REGISTRY.seal(kind, clear, secret_key),
        origin=options_origin(options),
        enabled=enabled,
        poll_interval_s=poll_interval_s,
    )


async def update_source(
    session: AsyncSession,
    source_id: int,
    changes: Mapping[str, Any],
    *,
    owner_id: int | None,
    secret_key: str,
    settings: Settings | None = None,
) -> SourceRow:
    """Change name, config, enabled, poll_interval_s or freshness; a new config is polled afresh.

    ``freshness`` replaces the source's own thresholds ({} or None: the settings' again). A
    config given replaces the stored one, except that a secret option left out, or sent back
    masked as it was shown, keeps its stored value (null removes an optional secret).
    """
    changes = dict(changes)
    if "poll_interval_s" in changes:
        source = await rows.get_source(session, source_id, owner_id=owner_id)
        check_poll_interval(source.kind, changes["poll_interval_s"], settings)
    if "freshness" in changes:
        changes["freshness"] = clean_freshness(changes["freshness"])
    if "config" in changes:
        source = await rows.get_source(session, source_id, owner_id=owner_id)
        given = SOURCE_REGISTRY.keep_stored_secrets(
            source.kind, dict(changes.pop("config")), source.config, secret_key
        )
        options = SOURCE_REGISTRY.validate(source.kind, given)
        clear = dump_clear(options)
        if clear != _stored_clear(source, secret_key):
            changes["config"] = SOURCE_REGISTRY.seal(source.kind, clear, secret_key)
            changes["origin"] = options_origin(options)
    return await rows.update_source(session, source_id, changes, owner_id=owner_id)


def check_poll_interval(kind: str, poll_interval_s: int, settings: Settings | None) -> None:
    """InvalidInput naming ``poll_interval_s`` and the minimum when the interval is below the
    kind's (``settings`` None: the settings' defaults)."""
    minimum = (settings or _DEFAULT_SETTINGS).min_poll_interval_of(kind)
    if isinstance(poll_interval_s, int) and poll_interval_s < minimum:
        setting = f"min_poll_interval_{kind}_s"
        if setting not in Settings.model_fields:
            setting = "min_poll_interval_s"
        raise InvalidInput(
            "poll_interval_s",
            f"must be at least {minimum} seconds for {kind} sources, the shortest interval "
            f"their platform allows (SIGWATCH_{setting.upper()})",
        )


def shown_source_config(source: SourceRow, secret_key: str) -> dict[str, Any]:
    """The source's config as people may see it: every secret option masked."""
    return SOURCE_REGISTRY.shown(source.kind, source.config, secret_key)


async def source_breakers(
    settings: Settings, sources: Sequence[SourceRow], secret_key: str, redis: Redis | None
) -> dict[int, tuple[str | None, HostHealth | None]]:
    """Each source's host and that host's fetch breaker (None where not known), by source id."""
    platform_urls = {
        name: value
        for name, value in asdict(Platforms.from_settings(settings)).items()
        if name.endswith("_url") and isinstance(value, str)
    }
    hosts: dict[int, str | None] = {}
    for source in sources:
        try:
            config = shown_source_config(source, secret_key)
        except Exception:  # a config this version cannot read: its host is unknown
            config = {}
        hosts[source.id] = fetch_host(source.kind, config, platform_urls)
    known = await read_breakers(
        settings, {host for host in hosts.values() if host is not None}, redis=redis
    )
    return {
        source_id: (host, known.get(host) if host is not None else None)
        for source_id, host in hosts.items()
    }


def _stored_clear(source: SourceRow, secret_key: str) -> dict[str, Any] | None:
    """The stored config opened and normalised as a new one would be, or None when it cannot
    be (a changed key, a kind no longer registered, options no longer valid): then any config
    given counts as a change."""
    try:
        opened = SOURCE_REGISTRY.open(source.kind, source.config, secret_key)
        return SOURCE_REGISTRY.clear_config(source.kind, opened)
    except (ConfigError, InvalidInput):
        return None


def _check_kind(kind: str) -> None:
    if kind not in SOURCE_REGISTRY.kinds:
        raise InvalidInput("kind", SOURCE_REGISTRY.unknown_kind_message(kind))
