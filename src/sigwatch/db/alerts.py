"""Alerts, their evidence, views and history: the rows, the queries, the story locks.

Which story a detection joins and which status moves are allowed is policy, in
:mod:`sigwatch.alerts.lifecycle`; this module stores what it decides and reads alerts back as
each viewer may see them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    exists,
    func,
    insert,
    null,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import (
    Alert,
    AlertEvidence,
    AlertHistory,
    AlertView,
    Entity,
    Post,
    Source,
)
from sigwatch.db.pagination import MAX_BIGINT_ID, Page, decode_cursor, encode_cursor
from sigwatch.db.types import utcnow
from sigwatch.db.visibility import source_visible_to
from sigwatch.errors import InvalidInput, NotFound


@dataclass(frozen=True, slots=True)
class AlertShown:
    """An alert as one viewer sees it: the whole story for admins, their own view for a user."""

    id: int
    entity: str
    entity_id: int | None
    event: str
    status: str
    confidence: float
    urgency: str
    event_time: datetime | None
    title: str
    trade: dict[str, Any] | None
    first_seen_at: datetime
    last_evidence_at: datetime
    first_source_id: int | None
    lead_time_s: float | None
    source_count: int
    evidence_count: int
    created_at: datetime
    updated_at: datetime


def shown(alert: Alert, view: AlertView | None) -> AlertShown:
    """``alert`` as the owner of ``view`` sees it; with no view, the whole story (admins)."""
    told: Alert | AlertView = view if view is not None else alert
    return AlertShown(
        id=alert.id,
        entity=alert.entity,
        entity_id=alert.entity_id,
        event=alert.event,
        status=alert.status,
        confidence=told.confidence,
        urgency=told.urgency,
        event_time=told.event_time,
        title=told.title,
        trade=told.trade,
        first_seen_at=told.first_seen_at,
        last_evidence_at=told.last_evidence_at,
        first_source_id=told.first_source_id,
        lead_time_s=told.lead_time_s,
        source_count=told.source_count,
        evidence_count=told.evidence_count,
        created_at=told.created_at,
        updated_at=max(alert.updated_at, told.updated_at),
    )


async def lock_stories(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> None:
    """Hold, until the transaction ends, a lock on each (entity, event) story about to be written.

    Without it two transactions could both find no alert for a story and both create one. On
    PostgreSQL these are transaction-scoped advisory locks, taken in sorted order so two polls
    never deadlock; SQLite needs none, since the posts just inserted already hold its one write
    lock, so a second writer only reads stories after the first has committed.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    await lock_alert_events(session)
    for entity, event in sorted(set(keys)):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"sigwatch-story:{entity}\x1f{event}"},
        )


async def lock_alert_events(session: AsyncSession) -> None:
    """Serialise the transactions that write alert history, so history ids commit in order.

    Live clients resume from the last history id they saw; if a later id could commit before an
    earlier one, a client reconnecting in between would miss the earlier event for good. Alert
    writes are rare and short, so one transaction-scoped lock costs nothing measurable. SQLite's
    single writer already gives this order.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": "sigwatch-alert-events"},
        )


async def source_owner_ids(
    session: AsyncSession, source_ids: Iterable[int]
) -> dict[int, int | None]:
    """The owner of each source (None: a shared source); a source that is gone is left out."""
    rows = await session.execute(
        select(Source.id, Source.owner_id).where(Source.id.in_(set(source_ids)))
    )
    return dict(rows.all())


async def recent_stories(
    session: AsyncSession,
    spans: Mapping[tuple[str, str], tuple[datetime, datetime]],
    *,
    within: timedelta,
) -> dict[tuple[str, str], list[Alert]]:
    """For each (entity, event) with its (earliest, latest) detection time, its alerts whose
    evidence comes within ``within`` of that span, latest evidence first, in one query: the
    stories the detections of a batch may join."""
    found: dict[tuple[str, str], list[Alert]] = {key: [] for key in spans}
    if not spans:
        return found
    statement = select(Alert).where(
        or_(
            *(
                and_(
                    Alert.entity == entity,
                    Alert.event == event,
                    Alert.last_evidence_at >= earliest - within,
                    Alert.first_seen_at <= latest + within,
                )
                for (entity, event), (earliest, latest) in spans.items()
            )
        )
    )
    for alert in (await session.scalars(statement.order_by(Alert.last_evidence_at.desc()))).all():
        found[alert.entity, alert.event].append(alert)
    return found


async def evidence_fingerprints(session: AsyncSession, alert_id: int) -> list[str]:
    """The SimHash of each piece of the alert's evidence."""
    rows = await session.scalars(
        select(AlertEvidence.simhash).where(AlertEvidence.alert_id == alert_id)
    )
    return list(rows.all())


async def has_evidence_from_post(session: AsyncSession, alert_id: int, post_id: int) -> bool:
    """True when the post is already evidence of the alert."""
    found = await session.scalar(
        select(AlertEvidence.id).where(
            AlertEvidence.alert_id == alert_id, AlertEvidence.post_id == post_id
        )
    )
    return found is not None


async def evidence_facts(
    session: AsyncSession, alert_id: int, *, seen_by: int | None
) -> list[tuple[tuple[int, str, datetime, float, str, datetime | None], bool]]:
    """(source id, source origin, published at, confidence, urgency, event time) of each piece
    of the alert's evidence, earliest first, each with whether ``seen_by`` may see it (None:
    an admin, who sees all). A source without an origin is its own.

    One query serves the whole story and one user's view of it: a detection that corroborates
    a story brings both up to date."""
    rows = await session.execute(
        select(
            AlertEvidence.source_id,
            func.coalesce(Source.origin, "source:" + cast(Source.id, String)),
            AlertEvidence.published_at,
            AlertEvidence.confidence,
            AlertEvidence.urgency,
            AlertEvidence.event_time,
            source_visible_to(seen_by),
        )
        .join(Source, Source.id == AlertEvidence.source_id)
        .where(AlertEvidence.alert_id == alert_id)
        .order_by(AlertEvidence.published_at, AlertEvidence.id)
    )
    return [((row[0], row[1], row[2], row[3], row[4], row[5]), bool(row[6])) for row in rows.all()]


def add_rows(session: AsyncSession, new: Iterable[Alert | AlertView | AlertHistory]) -> None:
    """Store new alerts, views or history rows, in this order: written together by the next
    query or :func:`write_added`, before anything reads them."""
    session.add_all(new)


async def add_evidence(session: AsyncSession, evidence: list[dict[str, Any]]) -> None:
    """Store pieces of evidence (their columns) in one statement, now: their alerts are stored.

    A Core executemany, since nothing reads the rows back in this session; the session's own
    pending rows are not written first (the next query writes them).
    """
    if evidence:
        connection = await session.connection()
        await connection.execute(insert(AlertEvidence), evidence)


async def write_added(session: AsyncSession) -> None:
    """Write the rows added and the changes made so far; new rows have their ids on return."""
    await session.flush()


async def get_view(session: AsyncSession, alert_id: int, owner_id: int) -> AlertView | None:
    """``owner_id``'s view of the alert, if the story has reached them."""
    return await session.get(AlertView, (alert_id, owner_id))


async def add_history(session: AsyncSession, change: AlertHistory) -> AlertHistory:
    """Store a change of an alert, writing the changes made to the alert and its views with it.

    The row has its id on return: the live event id of the change.
    """
    session.add(change)
    await session.flush()
    return change


async def record_status_change(
    session: AsyncSession,
    alert: Alert,
    status: str,
    *,
    actor_id: int | None,
    actor: str,
    note: str | None,
) -> AlertHistory:
    """Set the alert's status and keep the move, by whom and why, in its history."""
    change = AlertHistory(
        alert_id=alert.id,
        actor_id=actor_id,
        actor=actor,
        action="status",
        from_status=alert.status,
        to_status=status,
        detail={"note": note} if note else {},
    )
    alert.status = status
    alert.updated_at = utcnow()
    return await add_history(session, change)


def _told(viewer_id: int | None) -> type[Alert] | type[AlertView]:
    """The table whose columns tell the story to ``viewer_id``: a user's views, or the alerts."""
    return Alert if viewer_id is None else AlertView


def _seen_by(viewer_id: int | None) -> Select[Any, Any]:
    """Alerts with what ``viewer_id`` sees of them: (Alert, AlertView) rows, or (Alert, None)."""
    if viewer_id is None:
        return select(Alert, null())
    return select(Alert, AlertView).join(
        AlertView, and_(AlertView.alert_id == Alert.id, AlertView.owner_id == viewer_id)
    )


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_alerts(
    session: AsyncSession,
    *,
    viewer_id: int | None,
    entity: str | None = None,
    tag: str | None = None,
    event: str | None = None,
    min_confidence: float | None = None,
    urgency: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[AlertShown]:
    """Alerts newest first as ``viewer_id`` sees them, filtered on what they see (None: all)."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit", "must be between 1 and 1000")
    told = _told(viewer_id)
    statement = _seen_by(viewer_id)
    if entity is not None:
        statement = statement.where(func.lower(Alert.entity) == entity.casefold())
    if tag is not None:
        names = [
            row.name
            for row in (await session.scalars(select(Entity))).all()
            if tag.casefold() in (t.casefold() for t in row.tags)
        ]
        statement = statement.where(Alert.entity.in_(names))
    if event is not None:
        statement = statement.where(Alert.event == event)
    if min_confidence is not None:
        statement = statement.where(told.confidence >= min_confidence)
    if urgency is not None:
        statement = statement.where(told.urgency == urgency)
    if status is not None:
        statement = statement.where(Alert.status == status)
    if since is not None:
        statement = statement.where(told.created_at >= since)
    if q is not None:
        from sigwatch.db.posts import matching_post_ids

        statement = statement.where(
            or_(
                told.title.ilike(f"%{_escape_like(q)}%", escape="\\"),
                exists(
                    select(AlertEvidence.id)
                    .join(Source, Source.id == AlertEvidence.source_id)
                    .where(
                        AlertEvidence.alert_id == Alert.id,
                        AlertEvidence.post_id.in_(matching_post_ids(session, q)),
                        source_visible_to(viewer_id),
                    )
                ),
            )
        )
    if cursor is not None:
        (after_id,) = decode_cursor(cursor, 1)
        if type(after_id) is not int or not 0 <= after_id <= MAX_BIGINT_ID:
            raise InvalidInput("cursor", "not a cursor returned by this API")
        statement = statement.where(Alert.id < after_id)
    statement = statement.order_by(Alert.id.desc()).limit(limit + 1)
    rows = (await session.execute(statement)).all()
    next_cursor = encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    return Page(items=[shown(row[0], row[1]) for row in rows[:limit]], next_cursor=next_cursor)


async def alert_row(
    session: AsyncSession, alert_id: int, viewer_id: int | None
) -> tuple[Alert, AlertView | None]:
    """The alert and ``viewer_id``'s view of it (None: admins); NotFound if not theirs to see."""
    if not 0 < alert_id <= MAX_BIGINT_ID:
        raise NotFound(f"alert {alert_id} does not exist")
    row = (await session.execute(_seen_by(viewer_id).where(Alert.id == alert_id))).first()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return row[0], row[1]


async def get_alert(session: AsyncSession, alert_id: int, *, viewer_id: int | None) -> AlertShown:
    """One alert as the viewer sees it, if they may see it at all."""
    return shown(*await alert_row(session, alert_id, viewer_id))


async def alert_evidence(
    session: AsyncSession, alert_id: int, *, viewer_id: int | None
) -> list[tuple[AlertEvidence, Post]]:
    """The alert's evidence with its posts, earliest first, from sources the viewer may see."""
    statement = (
        select(AlertEvidence, Post)
        .join(Post, Post.id == AlertEvidence.post_id)
        .join(Source, Source.id == AlertEvidence.source_id)
        .where(AlertEvidence.alert_id == alert_id, source_visible_to(viewer_id))
        .order_by(AlertEvidence.published_at, AlertEvidence.id)
    )
    return [(row[0], row[1]) for row in (await session.execute(statement)).all()]


@dataclass(frozen=True, slots=True)
class AlertAsSeen:
    """An alert as one viewer sees it, with its first evidence posts and their source names."""

    alert: AlertShown
    evidence: list[tuple[Post, str]]


async def alerts_as_seen(
    session: AsyncSession, wanted: Iterable[tuple[int, int | None]], *, per_alert: int = 5
) -> dict[tuple[int, int | None], AlertAsSeen]:
    """Each (alert id, viewer id) pair's alert and first ``per_alert`` visible evidence posts.

    A pair the viewer may not see (no evidence of theirs) is left out. Serves notifications:
    what a channel says is what its owner may see.
    """
    found: dict[tuple[int, int | None], AlertAsSeen] = {}
    by_viewer: dict[int | None, set[int]] = {}
    for alert_id, viewer_id in wanted:
        by_viewer.setdefault(viewer_id, set()).add(alert_id)
    for viewer_id, alert_ids in by_viewer.items():
        rows = await session.execute(_seen_by(viewer_id).where(Alert.id.in_(alert_ids)))
        for alert, view in rows.all():
            found[alert.id, viewer_id] = AlertAsSeen(shown(alert, view), [])
        evidence = await session.execute(
            select(AlertEvidence.alert_id, Post, Source.name)
            .join(Post, Post.id == AlertEvidence.post_id)
            .join(Source, Source.id == AlertEvidence.source_id)
            .where(AlertEvidence.alert_id.in_(alert_ids), source_visible_to(viewer_id))
            .order_by(AlertEvidence.alert_id, AlertEvidence.published_at, AlertEvidence.id)
        )
        for alert_id, post, source_name in evidence.all():
            seen = found.get((alert_id, viewer_id))
            if seen is not None and len(seen.evidence) < per_alert:
                seen.evidence.append((post, source_name))
    return found


async def visible_source_ids(
    session: AsyncSession, alert_id: int, viewer_id: int | None
) -> set[int]:
    """The sources behind the alert's evidence that ``viewer_id`` may see."""
    rows = await session.scalars(
        select(AlertEvidence.source_id)
        .join(Source, Source.id == AlertEvidence.source_id)
        .where(AlertEvidence.alert_id == alert_id, source_visible_to(viewer_id))
        .distinct()
    )
    return set(rows.all())


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of an alert as a viewer is told it."""

    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    detail: dict[str, Any]


def history_as_seen(change: AlertHistory, viewer_id: int | None) -> HistoryEntry:
    """A change as ``viewer_id`` is told it (None: as it happened, for admins).

    A user sees their own posts' changes with their view's confidence, and the change that
    brought the story to them as its creation.
    """
    detail = dict(change.detail or {})
    action = change.action
    if viewer_id is not None and change.action != "status":
        if detail.pop("new_to_owner", False):
            action = "created"
        detail.pop("confidence", None)
        if "view_confidence" in detail:
            detail["confidence"] = detail.pop("view_confidence")
    elif viewer_id is not None:
        detail.pop("new_to_owner", None)
        detail.pop("view_confidence", None)
    return HistoryEntry(
        at=change.at,
        actor=change.actor,
        action=action,
        from_status=change.from_status,
        to_status=change.to_status,
        detail=detail,
    )


def history_visible_to(viewer_id: int | None) -> ColumnElement[bool]:
    """A condition on ``AlertHistory``: the changes ``viewer_id`` is told of (None: all).

    Everyone who sees an alert sees its status changes; a new post's change only reaches the
    owner of its source.
    """
    if viewer_id is None:
        return true()
    return or_(AlertHistory.action == "status", AlertHistory.owner_id == viewer_id)


async def alert_history(
    session: AsyncSession, alert_id: int, *, viewer_id: int | None
) -> list[HistoryEntry]:
    """The alert's changes the viewer is told of, oldest first."""
    rows = await session.scalars(
        select(AlertHistory)
        .where(AlertHistory.alert_id == alert_id, history_visible_to(viewer_id))
        .order_by(AlertHistory.id)
    )
    return [history_as_seen(change, viewer_id) for change in rows.all()]
