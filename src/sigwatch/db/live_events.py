"""The rows behind live alert events: alert changes with their alerts, for publish and replay.

A live event is one ``alert_history`` row (its id is the event id) with its alert and the views
of the users it reaches, so the fan-out can tell each user what they may see without asking
the database again. A new post's change reaches the owner of its source (and admins); a status
change reaches everyone who sees the alert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.alerts import history_visible_to
from sigwatch.db.models import Alert, AlertHistory, AlertView
from sigwatch.db.pagination import MAX_BIGINT_ID

#: Most changes one replay query returns; callers page on.
MAX_REPLAY_PAGE = 1000


@dataclass(frozen=True, slots=True)
class AlertEventRow:
    """One alert change with its alert and the views of the users it reaches."""

    change: AlertHistory
    alert: Alert
    views: tuple[AlertView, ...]


async def alert_event_rows(
    session: AsyncSession, history_ids: Collection[int]
) -> list[AlertEventRow]:
    """The given alert changes with their alerts, in id order, read in two queries."""
    wanted = sorted({i for i in history_ids if 0 < i <= MAX_BIGINT_ID})
    if not wanted:
        return []
    return await _rows(session, wanted)


async def replay_alert_event_rows(
    session: AsyncSession, *, after_id: int, viewer_id: int | None, limit: int = MAX_REPLAY_PAGE
) -> list[AlertEventRow]:
    """Changes with an id above ``after_id`` that reach the viewer, oldest first.

    ``viewer_id`` None means every change (an admin); otherwise the changes of alerts the
    viewer sees that reach them, as the live stream sends them. At most ``limit`` changes.
    """
    chosen = (
        select(AlertHistory.id)
        .where(AlertHistory.id > max(after_id, 0))
        .order_by(AlertHistory.id)
        .limit(max(1, min(limit, MAX_REPLAY_PAGE)))
    )
    if viewer_id is not None:
        chosen = chosen.where(
            history_visible_to(viewer_id),
            exists(
                select(AlertView.alert_id).where(
                    AlertView.alert_id == AlertHistory.alert_id, AlertView.owner_id == viewer_id
                )
            ),
        )
    return await _rows(session, chosen)


async def _rows(session: AsyncSession, chosen: Any) -> list[AlertEventRow]:
    """Changes whose id is in ``chosen`` (ids or a subquery), with alert and views."""
    statement: Select[AlertHistory, Alert] = (
        select(AlertHistory, Alert)
        .join(Alert, Alert.id == AlertHistory.alert_id)
        .where(AlertHistory.id.in_(chosen))
        .order_by(AlertHistory.id)
    )
    changes = (await session.execute(statement)).all()
    views: dict[int, list[AlertView]] = defaultdict(list)
    alert_ids = {alert.id for _, alert in changes}
    if alert_ids:
        for view in await session.scalars(
            select(AlertView).where(AlertView.alert_id.in_(alert_ids))
        ):
            views[view.alert_id].append(view)
    rows: list[AlertEventRow] = []
    for change, alert in changes:
        reached = [
            view
            for view in views[alert.id]
            if change.action == "status" or view.owner_id == change.owner_id
        ]
        rows.append(AlertEventRow(change, alert, tuple(reached)))
    return rows
