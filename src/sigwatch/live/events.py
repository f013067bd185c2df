"""Alert events: the shape live clients receive, and how publishers put them on the bus.

An event is one alert change (an ``alert_history`` row) with the alert as it now stands::

    {"id": 42, "type": "alert.created", "at": "2025-01-01T12:00:00Z", "alert": {...AlertOut...},
     "views": {"7": {"type": "alert.created", "alert": {...}}}}

``id`` is the SSE event id that ``Last-Event-ID`` refers to. ``alert`` is the whole story (what
admins see); ``views`` is internal: for each user the change reaches, the event type and alert as
that user sees them (from their own sources' evidence). :func:`event_for` picks what one viewer
is sent; nothing internal ever reaches a client.

A source's freshness alarm raised or cleared is a ``system_alert`` event, without an id (it is
not replayed: ``GET /api/v1/system-alerts`` has every alarm), sent to admins and to the owner
of the source (``owner``, internal)::

    {"type": "system_alert", "at": "…", "system_alert": {...SystemAlertOut...}}
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import structlog
from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.db.alerts import AlertShown, shown
from sigwatch.db.live_events import AlertEventRow, alert_event_rows
from sigwatch.db.models import AlertHistory
from sigwatch.live.bus import Event, LiveBus

#: Event type of each alert history action; an action not listed becomes ``alert.<action>``.
EVENT_TYPES = {
    "created": "alert.created",
    "corroborated": "alert.corroborated",
    "status": "alert.status",
}
#: The type of a system alert's event (raised or cleared: its ``state`` says which).
SYSTEM_ALERT = "system_alert"
#: Fields only the server uses; never sent to clients.
INTERNAL_FIELDS = frozenset({"views", "owner"})
#: The alert fields an event carries: those of ``sigwatch.api.alert_schemas.AlertOut`` (kept equal
#: by tests/live/test_events.py; not imported, since the API imports this package).
ALERT_FIELDS = (
    "id",
    "entity",
    "entity_id",
    "event",
    "status",
    "confidence",
    "urgency",
    "event_time",
    "title",
    "trade",
    "first_seen_at",
    "last_evidence_at",
    "first_source_id",
    "lead_time_s",
    "source_count",
    "evidence_count",
    "created_at",
    "updated_at",
)

log = structlog.get_logger(__name__)


def alert_json(alert: AlertShown) -> dict[str, Any]:
    """The alert as the alert API returns it, JSON-ready."""
    shown_json: dict[str, Any] = to_jsonable_python(
        {name: getattr(alert, name) for name in ALERT_FIELDS}
    )
    return shown_json


def _type(change: AlertHistory) -> str:
    return EVENT_TYPES.get(change.action, f"alert.{change.action}")


def _type_for_owner(change: AlertHistory) -> str:
    """The change's type for the user whose view it changed: new to them, it is a creation."""
    if change.action != "status" and (change.detail or {}).get("new_to_owner"):
        return EVENT_TYPES["created"]
    return _type(change)


def alert_event(row: AlertEventRow) -> Event:
    """The live event of one alert change, internal fields included."""
    return {
        "id": row.change.id,
        "type": _type(row.change),
        "at": to_jsonable_python(row.change.at),
        "alert": alert_json(shown(row.alert, None)),
        "views": {
            str(view.owner_id): {
                "type": _type_for_owner(row.change),
                "alert": alert_json(shown(row.alert, view)),
            }
            for view in row.views
        },
    }


def wire_event(event: Event) -> Event:
    """What an admin receives of ``event``: everything but the internal fields."""
    return {name: value for name, value in event.items() if name not in INTERNAL_FIELDS}


def event_for(event: Event, user_id: int | None) -> Event | None:
    """What ``user_id`` is sent of ``event`` (None: an admin); None when it does not reach them.

    A user gets their own view of the alert, never the whole story, so an event tells them no
    more than their own sources' evidence does.
    """
    if user_id is None:
        return wire_event(event)
    if event.get("type") == SYSTEM_ALERT:  # the owner of the source sees its alarms
        return wire_event(event) if event.get("owner") == user_id else None
    views = event.get("views")
    seen = views.get(str(user_id)) if isinstance(views, dict) else None
    if not isinstance(seen, dict):
        return None
    return {"id": event["id"], "type": seen["type"], "at": event.get("at"), "alert": seen["alert"]}


async def load_alert_events(
    sessions: async_sessionmaker[AsyncSession], history_ids: Collection[int]
) -> list[Event]:
    """The events of the given alert changes, in id order, read in one query."""
    async with sessions() as session:
        rows = await alert_event_rows(session, history_ids)
    return [alert_event(row) for row in rows]


async def publish_alert_events(
    bus: LiveBus, sessions: async_sessionmaker[AsyncSession], history_ids: Collection[int]
) -> int:
    """Publish the events of committed alert changes, in id order; return how many went out.

    Call it after the transaction that wrote the changes commits. It never raises: live delivery
    is best effort (SSE clients catch up from the database), so a failure here is logged and
    must not fail the caller's committed work.
    """
    if not history_ids:
        return 0
    try:
        events = await load_alert_events(sessions, history_ids)
        for event in events:
            await bus.publish(event)
    except Exception as exc:
        log.warning(
            "live publish failed",
            history_ids=sorted(history_ids)[:20],
            error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        return 0
    return len(events)


def system_alert_event(alert: dict[str, Any], *, owner_id: int | None, at: Any) -> Event:
    """The live event of a system alert raised or cleared, ``alert`` JSON-ready."""
    return {
        "type": SYSTEM_ALERT,
        "at": to_jsonable_python(at),
        "system_alert": alert,
        "owner": owner_id,
    }


async def publish_system_alert_events(bus: LiveBus, events: list[Event]) -> int:
    """Publish system alert events after their transaction commits; never raises."""
    try:
        for event in events:
            await bus.publish(event)
    except Exception as exc:
        log.warning("live publish failed", error=str(exc).splitlines()[0] if str(exc) else "")
        return 0
    return len(events)
