"""System alerts: a source's freshness alarms, raised once, cleared once, seen as sources are.

A system alert is one row per alarm (source, condition). At most one per source and condition
is open: :func:`open_system_alert` inserts with ON CONFLICT DO NOTHING against the partial
unique index, and :func:`clear_system_alert` changes only a row still open, so of several
workers checking at once exactly one raises (or clears) and routes the notices. Who may see an
alarm is who may see its source (:func:`sigwatch.db.visibility.source_visible_to`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Source, SystemAlert
from sigwatch.db.pagination import MAX_INT_ID, Page, check_limit, decode_id_cursor, fetch_id_page
from sigwatch.db.visibility import source_visible_to
from sigwatch.errors import NotFound

CONDITIONS = ("silent", "stale", "failing")
STATES = ("open", "cleared")


@dataclass(frozen=True, slots=True)
class SourceFreshness:
    """What a source's freshness is judged from, read in one query for every source."""

    id: int
    owner_id: int | None
    name: str
    kind: str
    enabled: bool
    deleted: bool
    created_at: datetime
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    post_gap_s: float | None
    post_gap_samples: int
    last_new_post_at: datetime | None
    newest_changed_at: datetime | None
    unchanged_polls: int
    freshness: Mapping[str, Any] | None


async def freshness_of_sources(session: AsyncSession) -> list[SourceFreshness]:
    """Every source not removed, and every removed one that still has an open alarm."""
    has_open = (
        select(SystemAlert.id)
        .where(SystemAlert.source_id == Source.id, SystemAlert.state == "open")
        .exists()
    )
    rows = await session.execute(
        select(
            Source.id,
            Source.owner_id,
            Source.name,
            Source.kind,
            Source.enabled,
            Source.deleted_at.is_not(None),
            Source.created_at,
            Source.last_success_at,
            Source.last_error,
            Source.consecutive_failures,
            Source.post_gap_s,
            Source.post_gap_samples,
            Source.last_new_post_at,
            Source.newest_changed_at,
            Source.unchanged_polls,
            Source.freshness,
        )
        .where((Source.deleted_at.is_(None)) | has_open)
        .order_by(Source.id)
    )
    return [SourceFreshness(*tuple(row)) for row in rows.all()]


async def record_newest_item(
    session: AsyncSession, source_id: int, fingerprint: str, *, now: datetime
) -> None:
    """Note the fingerprint of the newest item a poll with content served: count one more poll
    unchanged, or note when it changed."""
    same = Source.newest_fingerprint == fingerprint
    await session.execute(
        update(Source)
        .where(Source.id == source_id)
        .values(
            unchanged_polls=case((same, Source.unchanged_polls + 1), else_=0),
            newest_changed_at=case(
                (same, Source.newest_changed_at),
                else_=literal(now, Source.newest_changed_at.type),
            ),
            newest_fingerprint=fingerprint,
        )
        .execution_options(synchronize_session=False)
    )


async def open_alerts(session: AsyncSession) -> dict[tuple[int, str], SystemAlert]:
    """Every open alarm, by (source id, condition)."""
    rows = await session.scalars(select(SystemAlert).where(SystemAlert.state == "open"))
    return {(alert.source_id, alert.condition): alert for alert in rows.all()}


async def open_system_alert(
    session: AsyncSession,
    *,
    source_id: int,
    owner_id: int | None,
    condition: str,
    reason: str,
    detail: Mapping[str, Any],
    now: datetime,
) -> SystemAlert | None:
    """Raise an alarm unless one is open for this source and condition; the new row or None."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(SystemAlert)
        .values(
            source_id=source_id,
            owner_id=owner_id,
            condition=condition,
            state="open",
            reason=reason,
            detail=dict(detail),
            opened_at=now,
            last_seen_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=[SystemAlert.source_id, SystemAlert.condition],
            index_where=text("state = 'open'"),
        )
        .returning(SystemAlert.id)
    )
    added = (await session.execute(statement)).scalar_one_or_none()
    if added is None:
        return None
    return await session.get(SystemAlert, added)


async def see_open_alerts(session: AsyncSession, alert_ids: Iterable[int], now: datetime) -> None:
    """Note that the conditions of these open alarms still hold at ``now``."""
    wanted = sorted(set(alert_ids))
    if wanted:
        await session.execute(
            update(SystemAlert)
            .where(SystemAlert.id.in_(wanted), SystemAlert.state == "open")
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )


async def clear_system_alert(
    session: AsyncSession, alert_id: int, *, reason: str, now: datetime
) -> SystemAlert | None:
    """Clear an open alarm; the cleared row, or None when it was no longer open."""
    cleared = await session.scalar(
        update(SystemAlert)
        .where(SystemAlert.id == alert_id, SystemAlert.state == "open")
        .values(state="cleared", cleared_at=now, clear_reason=reason)
        .returning(SystemAlert.id)
        .execution_options(synchronize_session=False)
    )
    if cleared is None:
        return None
    alert = await session.get(SystemAlert, cleared)
    if alert is not None:
        await session.refresh(alert)
    return alert


async def source_seen_by(
    session: AsyncSession, source_id: int, viewers: Iterable[int | None]
) -> set[int | None]:
    """Which of ``viewers`` (None: an admin) may see the source, by the one visibility rule."""
    seen: set[int | None] = set()
    for viewer in set(viewers):
        found = await session.scalar(
            select(Source.id).where(Source.id == source_id, source_visible_to(viewer))
        )
        if found is not None:
            seen.add(viewer)
    return seen


@dataclass(frozen=True, slots=True)
class SystemAlertShown:
    """An alarm with the name and kind of its source, as the API and notifications show it."""

    alert: SystemAlert
    source_name: str
    source_kind: str


async def get_system_alert(
    session: AsyncSession, alert_id: int, *, viewer_id: int | None
) -> SystemAlertShown:
    """The alarm with this id, if ``viewer_id`` may see its source; NotFound otherwise."""
    if 0 < alert_id <= MAX_INT_ID:
        row = (
            await session.execute(
                select(SystemAlert, Source.name, Source.kind)
                .join(Source, Source.id == SystemAlert.source_id)
                .where(SystemAlert.id == alert_id, source_visible_to(viewer_id))
            )
        ).first()
        if row is not None:
            return SystemAlertShown(*row)
    raise NotFound(f"no system alert with id {alert_id}")


async def system_alerts_as_seen(
    session: AsyncSession, wanted: Iterable[tuple[int, int | None]]
) -> dict[tuple[int, int | None], SystemAlertShown]:
    """Each (alarm, viewer) pair the viewer may see, with the alarm; the others left out."""
    found: dict[tuple[int, int | None], SystemAlertShown] = {}
    for alert_id, viewer in set(wanted):
        try:
            found[alert_id, viewer] = await get_system_alert(session, alert_id, viewer_id=viewer)
        except NotFound:
            continue
    return found


async def list_system_alerts(
    session: AsyncSession,
    *,
    viewer_id: int | None,
    state: str | None = None,
    condition: str | None = None,
    source_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[SystemAlertShown]:
    """Alarms of the sources ``viewer_id`` may see, newest first."""
    check_limit(limit)
    stmt = (
        select(SystemAlert)
        .join(Source, Source.id == SystemAlert.source_id)
        .where(source_visible_to(viewer_id))
        .order_by(SystemAlert.id.desc())
        .limit(limit + 1)
    )
    if state is not None:
        stmt = stmt.where(SystemAlert.state == state)
    if condition is not None:
        stmt = stmt.where(SystemAlert.condition == condition)
    if source_id is not None:
        stmt = stmt.where(SystemAlert.source_id == source_id)
    if cursor is not None:
        stmt = stmt.where(SystemAlert.id < decode_id_cursor(cursor))
    page = await fetch_id_page(session, stmt, limit)
    source_ids = {alert.source_id for alert in page.items}
    names: dict[int, tuple[str, str]] = {}
    if source_ids:
        rows = await session.execute(
            select(Source.id, Source.name, Source.kind).where(Source.id.in_(source_ids))
        )
        names = {row_id: (name, kind) for row_id, name, kind in rows.all()}
    return Page(
        [SystemAlertShown(alert, *names.get(alert.source_id, ("", ""))) for alert in page.items],
        page.next_cursor,
    )
