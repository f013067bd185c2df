"""Subscriptions (which alerts a user wants, where and how often) and silences (what to mute).

A subscription's ``filters`` is stored as one JSON object with every key present, an empty list
or null meaning "any"; its ``channel_ids`` always name channels of the subscription's owner.
Lookups take ``owner_id`` as in :mod:`sigwatch.db.sources`: None for an admin, a user id to
limit the lookup to that user's rows, so someone else's row is NotFound.

Event and urgency names arrive already checked against the detector's (the API's schemas do it:
``EventType`` and ``Urgency``); storage knows its own fields, not the detector's vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Channel, Silence, Source, Subscription, User
from sigwatch.db.pagination import (
    MAX_INT_ID,
    Page,
    check_limit,
    decode_id_cursor,
    fetch_id_page,
    get_visible,
)
from sigwatch.db.types import utcnow
from sigwatch.errors import InvalidInput, NotFound

MODES = ("instant", "hourly", "daily")
NOTIFY_ON = ("new", "changes")
#: The filter keys of a subscription, each meaning "any" when empty.
FILTER_LISTS = ("entities", "tags", "events", "urgencies", "source_ids")
MAX_SILENCE_S = 366 * 86400
_UPDATABLE = frozenset(
    {
        "name",
        "enabled",
        "filters",
        "channel_ids",
        "mode",
        "notify_on",
        "quiet_hours",
        "system_alerts",
    }
)
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")

T = TypeVar("T")


# --- subscriptions -------------------------------------------------------------------------------


async def create_subscription(
    session: AsyncSession,
    *,
    owner_id: int,
    name: str,
    filters: Mapping[str, Any] | None = None,
    channel_ids: Sequence[int] = (),
    mode: str = "instant",
    notify_on: str = "new",
    quiet_hours: Mapping[str, str] | None = None,
    enabled: bool = True,
    system_alerts: bool = False,
    sources_of: int | None,
) -> Subscription:
    """Add a subscription; ``sources_of`` is whose sources its filters may name (None: any)."""
    subscription = Subscription(
        owner_id=owner_id,
        name=_clean_name(name),
        enabled=enabled,
        filters=await _clean_filters(session, filters or {}, sources_of),
        channel_ids=await _own_channels(session, owner_id, channel_ids),
        mode=_one_of("mode", mode, MODES),
        notify_on=_one_of("notify_on", notify_on, NOTIFY_ON),
        quiet_hours=_clean_quiet_hours(quiet_hours),
        system_alerts=bool(system_alerts),
    )
    session.add(subscription)
    await session.flush()
    return subscription


async def get_subscription(
    session: AsyncSession, subscription_id: int, *, owner_id: int | None
) -> Subscription:
    """The subscription with this id, if ``owner_id`` may see it; NotFound otherwise."""
    found = (
        await session.get(Subscription, subscription_id)
        if 0 < subscription_id <= MAX_INT_ID
        else None
    )
    if found is None or (owner_id is not None and found.owner_id != owner_id):
        raise NotFound(f"no subscription with id {subscription_id}")
    return found


async def list_subscriptions(
    session: AsyncSession,
    *,
    owner_id: int | None,
    enabled: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Subscription]:
    """Subscriptions ``owner_id`` may see, in creation order."""
    check_limit(limit)
    stmt = select(Subscription).order_by(Subscription.id).limit(limit + 1)
    if owner_id is not None:
        stmt = stmt.where(Subscription.owner_id == owner_id)
    if enabled is not None:
        stmt = stmt.where(Subscription.enabled.is_(enabled))
    if cursor is not None:
        stmt = stmt.where(Subscription.id > decode_id_cursor(cursor))
    return await fetch_id_page(session, stmt, limit)


async def update_subscription(
    session: AsyncSession,
    subscription_id: int,
    changes: Mapping[str, Any],
    *,
    owner_id: int | None,
    sources_of: int | None,
) -> Subscription:
    """Change any field; ``filters`` replaces all stored filters, ``quiet_hours`` None ends them."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be changed")
    subscription = await get_subscription(session, subscription_id, owner_id=owner_id)
    if "name" in changes:
        subscription.name = _clean_name(changes["name"])
    if "enabled" in changes:
        subscription.enabled = bool(changes["enabled"])
    if "filters" in changes:
        subscription.filters = await _clean_filters(session, changes["filters"], sources_of)
    if "channel_ids" in changes:
        subscription.channel_ids = await _own_channels(
            session, subscription.owner_id, changes["channel_ids"]
        )
    if "mode" in changes:
        subscription.mode = _one_of("mode", changes["mode"], MODES)
    if "notify_on" in changes:
        subscription.notify_on = _one_of("notify_on", changes["notify_on"], NOTIFY_ON)
    if "quiet_hours" in changes:
        subscription.quiet_hours = _clean_quiet_hours(changes["quiet_hours"])
    if "system_alerts" in changes:
        subscription.system_alerts = bool(changes["system_alerts"])
    await session.flush()
    return subscription


async def delete_subscription(
    session: AsyncSession, subscription_id: int, *, owner_id: int | None
) -> Subscription:
    """Remove a subscription; deliveries already queued for it stay and are sent."""
    subscription = await get_subscription(session, subscription_id, owner_id=owner_id)
    await session.delete(subscription)
    await session.flush()
    return subscription


@dataclass(frozen=True, slots=True)
class ActiveSubscription:
    """An enabled subscription of an active user, with those of its channels that are enabled."""

    subscription: Subscription
    owner: User
    channel_ids: tuple[int, ...]


async def active_subscriptions(session: AsyncSession) -> list[ActiveSubscription]:
    """Every subscription that may earn a delivery now: enabled, of an active user."""
    rows = await session.execute(
        select(Subscription, User)
        .join(User, User.id == Subscription.owner_id)
        .where(Subscription.enabled.is_(True), User.is_active.is_(True))
        .order_by(Subscription.id)
    )
    channels = await session.execute(
        select(Channel.id, Channel.owner_id).where(Channel.enabled.is_(True))
    )
    enabled_channels = {(channel_id, owner_id) for channel_id, owner_id in channels.all()}
    return [
        ActiveSubscription(
            subscription,
            owner,
            tuple(
                channel_id
                for channel_id in subscription.channel_ids
                if (channel_id, owner.id) in enabled_channels
            ),
        )
        for subscription, owner in rows.all()
    ]


async def forget_channel(session: AsyncSession, owner_id: int, channel_id: int) -> None:
    """Take ``channel_id`` out of every subscription of ``owner_id``, as the channel goes away."""
    stmt = select(Subscription).where(Subscription.owner_id == owner_id)
    for subscription in await session.scalars(stmt):
        if channel_id in subscription.channel_ids:
            # A new list, not an in-place change: JSON columns only notice assignment.
            subscription.channel_ids = [i for i in subscription.channel_ids if i != channel_id]
    await session.flush()


async def _own_channels(
    session: AsyncSession, owner_id: int, channel_ids: Iterable[int]
) -> list[int]:
    wanted = _unique(channel_ids)
    if not wanted:
        return []
    stmt = select(Channel.id).where(Channel.id.in_(wanted), Channel.owner_id == owner_id)
    owned = set(await session.scalars(stmt))
    missing = [channel_id for channel_id in wanted if channel_id not in owned]
    if missing:
        raise InvalidInput(
            "channel_ids",
            f"no channel with id {missing[0]} among the subscription owner's channels: "
            "list them with GET /api/v1/channels",
        )
    return wanted


async def _clean_filters(
    session: AsyncSession, filters: Mapping[str, Any], sources_of: int | None
) -> dict[str, Any]:
    unknown = set(filters) - {*FILTER_LISTS, "min_confidence"}
    if unknown:
        raise InvalidInput(f"filters.{sorted(unknown)[0]}", "is not a subscription filter")
    cleaned: dict[str, Any] = {key: _unique(filters.get(key) or ()) for key in FILTER_LISTS}
    for key in ("entities", "tags"):
        cleaned[key] = _unique(_clean_text(f"filters.{key}", value) for value in cleaned[key])
    cleaned["source_ids"] = await _visible_sources(session, cleaned["source_ids"], sources_of)
    min_confidence = filters.get("min_confidence")
    if min_confidence is not None and not (
        isinstance(min_confidence, int | float) and 0 <= min_confidence <= 1
    ):
        raise InvalidInput("filters.min_confidence", "must be a number from 0 to 1")
    cleaned["min_confidence"] = None if min_confidence is None else float(min_confidence)
    return cleaned


async def _visible_sources(
    session: AsyncSession, source_ids: list[int], sources_of: int | None
) -> list[int]:
    if not source_ids:
        return []
    stmt = select(Source.id).where(Source.id.in_(source_ids))
    if sources_of is not None:
        stmt = stmt.where(Source.owner_id == sources_of)
    known = set(await session.scalars(stmt))
    missing = [source_id for source_id in source_ids if source_id not in known]
    if missing:
        raise InvalidInput(
            "filters.source_ids",
            f"no source with id {missing[0]} among your sources: list them with "
            "GET /api/v1/sources",
        )
    return source_ids


def _clean_quiet_hours(quiet_hours: Mapping[str, str] | None) -> dict[str, str] | None:
    if quiet_hours is None:
        return None
    unknown = set(quiet_hours) - {"start", "end"}
    if unknown:
        raise InvalidInput(f"quiet_hours.{sorted(unknown)[0]}", "is not a field of quiet hours")
    for key in ("start", "end"):
        value = quiet_hours.get(key)
        if not isinstance(value, str) or not _CLOCK.fullmatch(value):
            raise InvalidInput(f"quiet_hours.{key}", "must be a UTC time as HH:MM, e.g. 22:30")
    if quiet_hours["start"] == quiet_hours["end"]:
        raise InvalidInput("quiet_hours.end", "must differ from start")
    return {"start": quiet_hours["start"], "end": quiet_hours["end"]}


# --- silences ------------------------------------------------------------------------------------


async def create_silence(
    session: AsyncSession,
    *,
    owner_id: int,
    entity: str | None = None,
    event: str | None = None,
    until: datetime | None = None,
    duration_s: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Silence:
    """Mute ``entity``, ``event`` or both until ``until`` or for ``duration_s`` (one of the two)."""
    now = now or utcnow()
    entity = _clean_text("entity", entity) if entity is not None else None
    if entity is None and event is None:
        raise InvalidInput("entity", "give an entity, an event or both to silence")
    if (until is None) == (duration_s is None):
        raise InvalidInput("until", "give either until (a time) or duration_s, not both")
    if duration_s is not None:
        if not 1 <= duration_s <= MAX_SILENCE_S:
            raise InvalidInput("duration_s", f"must be between 1 and {MAX_SILENCE_S} seconds")
        until = now + timedelta(seconds=duration_s)
    assert until is not None
    if until <= now:
        raise InvalidInput("until", "must be in the future")
    silence = Silence(owner_id=owner_id, entity=entity, event=event, until=until, reason=reason)
    session.add(silence)
    await session.flush()
    return silence


async def get_silence(session: AsyncSession, silence_id: int, *, owner_id: int | None) -> Silence:
    """The silence with this id, if ``owner_id`` may see it; NotFound otherwise."""
    return await get_visible(session, Silence, silence_id, "silence", owner_id=owner_id)


async def list_silences(
    session: AsyncSession,
    *,
    owner_id: int | None,
    include_expired: bool = False,
    cursor: str | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> Page[Silence]:
    """Silences ``owner_id`` may see, in creation order; only those still running by default."""
    check_limit(limit)
    stmt = select(Silence).order_by(Silence.id).limit(limit + 1)
    if owner_id is not None:
        stmt = stmt.where(Silence.owner_id == owner_id)
    if not include_expired:
        stmt = stmt.where(Silence.until > (now or utcnow()))
    if cursor is not None:
        stmt = stmt.where(Silence.id > decode_id_cursor(cursor))
    return await fetch_id_page(session, stmt, limit)


async def running_silences(session: AsyncSession, now: datetime) -> list[Silence]:
    """Every user's silences that have not ended by ``now``."""
    return list((await session.scalars(select(Silence).where(Silence.until > now))).all())


async def delete_silence(
    session: AsyncSession, silence_id: int, *, owner_id: int | None
) -> Silence:
    """Remove a silence, ending it now."""
    silence = await get_silence(session, silence_id, owner_id=owner_id)
    await session.delete(silence)
    await session.flush()
    return silence


# --- checks --------------------------------------------------------------------------------------


def _unique(values: Iterable[T]) -> list[T]:
    """``values`` without repeats, in their first order."""
    return list(dict.fromkeys(values))


def _one_of(field: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise InvalidInput(field, f"must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _clean_text(field: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput(field, "must not be blank")
    if len(value) > 200:
        raise InvalidInput(field, "must be at most 200 characters")
    return value


def _clean_name(name: str) -> str:
    return _clean_text("name", name)
