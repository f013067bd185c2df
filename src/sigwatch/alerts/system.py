"""System alerts: raising and clearing a source's freshness alarms, and routing their notices.

An alarm and its outbox rows are written in one transaction, as an event alert and its
deliveries are. A notice goes to every enabled subscription with ``system_alerts`` whose owner
may see the source (its owner; admins for every source, shared ones included), on each of its
enabled channels, once: the key ``system-alert-<id>-channel-<id>-<notice>`` is refused a second
time by the outbox. Of a subscription's filters only ``source_ids`` applies (the others are
about events); system notices are sent at once whatever the subscription's mode, and held by
its quiet hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.alerts.freshness import Finding
from sigwatch.alerts.routing import quiet_until
from sigwatch.db.models import SystemAlert
from sigwatch.db.outbox import enqueue_delivery
from sigwatch.db.subscriptions import active_subscriptions
from sigwatch.db.system_alerts import (
    clear_system_alert,
    open_system_alert,
    source_seen_by,
)

Notice = Literal["opened", "cleared"]


async def raise_system_alert(
    session: AsyncSession,
    *,
    source_id: int,
    owner_id: int | None,
    finding: Finding,
    now: datetime,
) -> SystemAlert | None:
    """Open the alarm ``finding`` names and queue its notices; None when one was open already."""
    alert = await open_system_alert(
        session,
        source_id=source_id,
        owner_id=owner_id,
        condition=finding.condition,
        reason=finding.reason,
        detail=finding.detail,
        now=now,
    )
    if alert is not None:
        await route_system_alert(session, alert, "opened", now=now)
    return alert


async def end_system_alert(
    session: AsyncSession, alert_id: int, *, reason: str, now: datetime
) -> SystemAlert | None:
    """Clear an open alarm and queue its "cleared" notices; None when it was cleared already."""
    alert = await clear_system_alert(session, alert_id, reason=reason, now=now)
    if alert is not None:
        await route_system_alert(session, alert, "cleared", now=now)
    return alert


def _wants(filters: Mapping[str, Any], source_id: int) -> bool:
    source_ids = filters.get("source_ids")
    return not source_ids or source_id in source_ids


async def route_system_alert(
    session: AsyncSession, alert: SystemAlert, notice: Notice, *, now: datetime
) -> int:
    """Queue the deliveries of one notice about ``alert``; returns how many were added."""
    subscribers = [
        subscriber
        for subscriber in await active_subscriptions(session)
        if subscriber.subscription.system_alerts
        and subscriber.channel_ids
        and _wants(subscriber.subscription.filters or {}, alert.source_id)
    ]
    if not subscribers:
        return 0
    viewer_of = {
        subscriber.owner.id: None if subscriber.owner.role == "admin" else subscriber.owner.id
        for subscriber in subscribers
    }
    seeing = await source_seen_by(session, alert.source_id, viewer_of.values())
    added = 0
    for subscriber in subscribers:
        if viewer_of[subscriber.owner.id] not in seeing:
            continue
        due = quiet_until(subscriber.subscription.quiet_hours, now) or now
        for channel_id in subscriber.channel_ids:
            added += await enqueue_delivery(
                session,
                alert_id=None,
                system_alert_id=alert.id,
                channel_id=channel_id,
                subscription_id=subscriber.subscription.id,
                kind=f"system_{notice}",
                idempotency_key=f"system-alert-{alert.id}-channel-{channel_id}-{notice}",
                next_attempt_at=due,
            )
    return added
