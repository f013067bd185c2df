"""The rows behind live alert events: alert changes with their alerts, for publish and replay.

A live event is one ``alert_history`` row (its id is the event id) with its alert, the sources
of the alert's evidence and the owners of those sources, so the fan-out can tell who may see it
without asking the database again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Alert, AlertEvidence, AlertHistory, Source
from sigwatch.db.pagination import MAX_BIGINT_ID

#: Most changes one replay query returns; callers page on.
MAX_REPLAY_PAGE = 1000


@dataclass(frozen=True, slots=True)
class AlertEventRow:
    """One alert change with its alert, its evidence's sources and those sources' owners."""

    change: AlertHistory
    alert: Alert
    source_ids: tuple[int, ...]
    owner_ids: tuple[int, ...]


async def alert_event_rows(
    session: AsyncSession, history_ids: Collection[int]
) -> list[AlertEventRow]:
    """The given alert changes with their alerts, in id order, read in one query."""
    wanted = sorted({i for i in history_ids if 0 < i <= MAX_BIGINT_ID})
    if not wanted:
        return []
    return await _rows(session, wanted)


async def replay_alert_event_rows(
    session: AsyncSession, *, after_id: int, viewer_id: int | None, limit: int = MAX_REPLAY_PAGE
) -> list[AlertEventRow]:
    """Changes with an id above ``after_id`` of alerts the viewer may see, oldest first.

    ``viewer_id`` None means every alert (an admin); otherwise only alerts with evidence from
    the viewer's own sources, as the alert list shows them. At most ``limit`` changes.
    """
    chosen = (
        select(AlertHistory.id)
        .where(AlertHistory.id > max(after_id, 0))
        .order_by(AlertHistory.id)
        .limit(max(1, min(limit, MAX_REPLAY_PAGE)))
    )
    if viewer_id is not None:
        chosen = chosen.where(
            exists(
                select(AlertEvidence.id)
                .join(Source, Source.id == AlertEvidence.source_id)
                .where(
                    AlertEvidence.alert_id == AlertHistory.alert_id, Source.owner_id == viewer_id
                )
            )
        )
    return await _rows(session, chosen)


async def _rows(session: AsyncSession, chosen: Any) -> list[AlertEventRow]:
    """Changes whose id is in ``chosen`` (ids or a subquery), with alert and sources."""
    change = AlertHistory
    alert_ids = select(change.alert_id).where(change.id.in_(chosen))
    # Distinct (alert, source) pairs of just these alerts, so a story with many posts from one
    # source adds one row, not one per post.
    sources = (
        select(AlertEvidence.alert_id, AlertEvidence.source_id)
        .where(AlertEvidence.alert_id.in_(alert_ids))
        .distinct()
        .subquery()
    )
    statement: Select[Any] = (
        select(change, Alert, sources.c.source_id, Source.owner_id)
        .join(Alert, Alert.id == change.alert_id)
        .outerjoin(sources, sources.c.alert_id == change.alert_id)
        .outerjoin(Source, Source.id == sources.c.source_id)
        .where(change.id.in_(chosen))
        .order_by(change.id, sources.c.source_id)
    )
    rows: list[AlertEventRow] = []
    current: tuple[AlertHistory, Alert] | None = None
    source_ids: list[int] = []
    owner_ids: set[int] = set()
    for history, alert, source_id, owner_id in (await session.execute(statement)).all():
        if current is None or current[0].id != history.id:
            if current is not None:
                rows.append(_row(current, source_ids, owner_ids))
            current, source_ids, owner_ids = (history, alert), [], set()
        if source_id is not None:
            source_ids.append(source_id)
        if owner_id is not None:
            owner_ids.add(owner_id)
    if current is not None:
        rows.append(_row(current, source_ids, owner_ids))
    return rows


def _row(
    current: tuple[AlertHistory, Alert], source_ids: list[int], owner_ids: set[int]
) -> AlertEventRow:
    return AlertEventRow(current[0], current[1], tuple(source_ids), tuple(sorted(owner_ids)))
