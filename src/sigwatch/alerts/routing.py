"""Routing alert changes to subscriptions: which channels hear of which alert, and when.

Runs in the transaction that records the alert change, so an alert never exists without its
deliveries. A story seen on many sources notifies each channel once: the first delivery of an
alert to a channel has the key ``alert-<id>-channel-<id>``, and the outbox refuses a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.alerts.lifecycle import AlertChange
from sigwatch.alerts.stories import URGENCY_ORDER
from sigwatch.db.alerts import AlertShown, shown, visible_source_ids
from sigwatch.db.entities import tags_by_entity_id
from sigwatch.db.models import Silence, Subscription
from sigwatch.db.outbox import enqueue_delivery
from sigwatch.db.subscriptions import active_subscriptions, running_silences


def matches(
    filters: dict[str, Any], alert: AlertShown, tags: Sequence[str], sources: set[int]
) -> bool:
    """True when ``alert`` passes a subscription's filters (an empty filter lets all through)."""
    if filters.get("entities") and alert.entity.casefold() not in {
        name.casefold() for name in filters["entities"]
    }:
        return False
    if filters.get("tags") and not {t.casefold() for t in filters["tags"]} & {
        t.casefold() for t in tags
    }:
        return False
    if filters.get("events") and alert.event not in filters["events"]:
        return False
    if filters.get("urgencies") and alert.urgency not in filters["urgencies"]:
        return False
    if filters.get("source_ids") and not set(filters["source_ids"]) & sources:
        return False
    return alert.confidence >= float(filters.get("min_confidence") or 0.0)


def quiet_until(quiet_hours: dict[str, Any] | None, now: datetime) -> datetime | None:
    """The end of the quiet window ``now`` falls in (UTC), or None outside quiet hours."""
    if not quiet_hours:
        return None
    start = time.fromisoformat(quiet_hours["start"])
    end = time.fromisoformat(quiet_hours["end"])
    current = now.timetz().replace(tzinfo=None)
    if start == end:
        return None
    inside = start <= current < end if start < end else current >= start or current < end
    if not inside:
        return None
    end_today = now.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    return end_today if end_today > now else end_today + timedelta(days=1)


def digest_due(mode: str, now: datetime) -> datetime:
    """When a digest subscription's next summary goes out: the next full hour or midnight UTC."""
    if mode == "hourly":
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def _silenced(silences: Sequence[Silence], owner_id: int, alert: AlertShown, now: datetime) -> bool:
    return any(
        silence.owner_id == owner_id
        and silence.until > now
        and (silence.entity is None or silence.entity.casefold() == alert.entity.casefold())
        and (silence.event is None or silence.event == alert.event)
        for silence in silences
    )


@dataclass(frozen=True, slots=True)
class _Seen:
    """One alert change as one subscriber's owner sees it."""

    alert: AlertShown
    kind: str  # created, corroborated
    previous_confidence: float | None
    previous_urgency: str | None
    sources: set[int]


def _notice(seen: _Seen, subscription: Subscription, matched_before: bool) -> str | None:
    """Which notification a change earns from a subscription: new, updated, or none."""
    if seen.kind == "created" or not matched_before:
        return "new"
    if subscription.notify_on != "changes":
        return None
    rose = URGENCY_ORDER.get(seen.alert.urgency, 0) > URGENCY_ORDER.get(
        seen.previous_urgency or "low", 0
    )
    return "updated" if rose else None


async def route_changes(
    session: AsyncSession, changes: Sequence[AlertChange], *, now: datetime
) -> int:
    """Write the deliveries the alert changes earn; returns how many were added."""
    changes = [change for change in changes if change.kind != "repeated"]
    if not changes:
        return 0
    subscribers = await active_subscriptions(session)
    if not subscribers:
        return 0
    silences = await running_silences(session, now)
    tags = await tags_by_entity_id(
        session, {change.alert.entity_id for change in changes if change.alert.entity_id}
    )
    added = 0
    for change in changes:
        alert = change.alert
        alert_tags = tags.get(alert.entity_id or 0, [])
        as_admin: _Seen | None = None
        for subscriber in subscribers:
            owner = subscriber.owner
            seen: _Seen | None
            if owner.role == "admin":
                if as_admin is None:
                    as_admin = _Seen(
                        shown(alert, None),
                        change.kind,
                        change.previous_confidence,
                        change.previous_urgency,
                        await visible_source_ids(session, alert.id, None),
                    )
                seen = as_admin
            else:
                seen = await _seen_by_owner(session, change, owner.id)
            if seen is None:
                continue  # the change is to a post this user cannot see
            filters = subscriber.subscription.filters or {}
            if not matches(filters, seen.alert, alert_tags, seen.sources):
                continue
            if _silenced(silences, owner.id, seen.alert, now):
                continue
            before = seen.previous_confidence
            matched_before = before is not None and before >= float(
                filters.get("min_confidence") or 0.0
            )
            notice = _notice(seen, subscriber.subscription, matched_before)
            if notice is None:
                continue
            mode = subscriber.subscription.mode
            due = digest_due(mode, now) if mode != "instant" else now
            due = quiet_until(subscriber.subscription.quiet_hours, due) or due
            for channel_id in subscriber.channel_ids:
                key = f"alert-{alert.id}-channel-{channel_id}"
                if notice == "updated":
                    key += f"-update-{change.history_id}"
                added += await enqueue_delivery(
                    session,
                    alert_id=alert.id,
                    channel_id=channel_id,
                    subscription_id=subscriber.subscription.id,
                    kind="digest" if mode != "instant" else notice,
                    idempotency_key=key,
                    next_attempt_at=due,
                )
    return added


async def _seen_by_owner(session: AsyncSession, change: AlertChange, owner_id: int) -> _Seen | None:
    """The change as a user sees it: only a post of their own sources changes their view.

    When another user's source saw the story first, the user's own first post makes it new to
    them, so their subscriptions hear of it as new.
    """
    view_change = change.view_change
    if view_change is None or view_change.owner_id != owner_id:
        return None
    return _Seen(
        shown(change.alert, view_change.view),
        view_change.kind,
        view_change.previous_confidence,
        view_change.previous_urgency,
        await visible_source_ids(session, change.alert.id, owner_id),
    )
