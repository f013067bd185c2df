"""Alerts and their evidence: recording detections into stories, listing, status changes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.alerts.stories import (
    NEAR_DUPLICATE_WINDOW,
    STORY_WINDOW,
    corroborated_confidence,
    is_near_duplicate,
    most_urgent,
)
from sigwatch.db.models import Alert, AlertEvidence, AlertHistory, Entity, Post, Source
from sigwatch.db.pagination import MAX_BIGINT_ID, Page, decode_cursor, encode_cursor
from sigwatch.db.types import utcnow
from sigwatch.errors import Conflict, InvalidInput, NotFound

STATUSES = ("new", "acknowledged", "resolved", "dismissed")
#: Allowed status changes; resolved and dismissed alerts may be reopened as acknowledged.
TRANSITIONS = {
    "new": {"acknowledged", "resolved", "dismissed"},
    "acknowledged": {"resolved", "dismissed", "new"},
    "resolved": {"acknowledged"},
    "dismissed": {"acknowledged"},
}


@dataclass(frozen=True, slots=True)
class DetectionRecord:
    """One detection to record, with the post it came from (already stored)."""

    post: Post
    entity: str
    entity_id: int | None
    event: str
    confidence: float
    urgency: str
    event_time: datetime | None
    title: str
    features: dict[str, Any]
    spans: list[dict[str, Any]]
    trade: dict[str, Any] | None
    simhash: str


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What recording a detection did to an alert: created it, corroborated it, or nothing new."""

    alert: Alert
    kind: str  # created, corroborated, repeated
    previous_confidence: float | None
    previous_urgency: str | None
    #: The alert_history row of this change (the live event id); None when nothing changed.
    history_id: int | None = None


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


async def record_detection(session: AsyncSession, record: DetectionRecord) -> AlertChange:
    """Fold a detection into its story: a new alert, or evidence appended to an existing one."""
    post = record.post
    seen_at = post.published_at or post.collected_at
    alert = await _find_story(session, record, seen_at)
    if alert is None:
        alert = Alert(
            entity=record.entity,
            entity_id=record.entity_id,
            event=record.event,
            status="new",
            confidence=corroborated_confidence({post.source_id: record.confidence}),
            urgency=record.urgency,
            event_time=record.event_time,
            title=record.title,
            trade=record.trade,
            first_seen_at=seen_at,
            last_evidence_at=seen_at,
            first_source_id=post.source_id,
            source_count=1,
            evidence_count=1,
        )
        session.add(alert)
        await session.flush()
        session.add(_evidence(alert.id, record, seen_at))
        history = AlertHistory(
            alert_id=alert.id,
            action="created",
            to_status="new",
            detail={"post_id": post.id, "source_id": post.source_id},
        )
        session.add(history)
        await session.flush()
        return AlertChange(alert, "created", None, None, history.id)

    duplicate = await session.scalar(
        select(AlertEvidence.id).where(
            AlertEvidence.alert_id == alert.id, AlertEvidence.post_id == post.id
        )
    )
    if duplicate is not None:
        return AlertChange(alert, "repeated", alert.confidence, alert.urgency)
    previous_confidence, previous_urgency = alert.confidence, alert.urgency
    session.add(_evidence(alert.id, record, seen_at))
    await session.flush()
    await _refresh_story(session, alert, record)
    history = AlertHistory(
        alert_id=alert.id,
        action="corroborated",
        detail={
            "post_id": post.id,
            "source_id": post.source_id,
            "confidence": [previous_confidence, alert.confidence],
        },
    )
    session.add(history)
    await session.flush()
    return AlertChange(alert, "corroborated", previous_confidence, previous_urgency, history.id)


def _evidence(alert_id: int, record: DetectionRecord, seen_at: datetime) -> AlertEvidence:
    return AlertEvidence(
        alert_id=alert_id,
        post_id=record.post.id,
        source_id=record.post.source_id,
        published_at=seen_at,
        confidence=record.confidence,
        urgency=record.urgency,
        event_time=record.event_time,
        features=record.features,
        spans=record.spans,
        simhash=record.simhash,
    )


async def _find_story(
    session: AsyncSession, record: DetectionRecord, seen_at: datetime
) -> Alert | None:
    """The story this detection belongs to, if any: same entity and event, close in time."""
    recent = (
        await session.scalars(
            select(Alert)
            .where(
                Alert.entity == record.entity,
                Alert.event == record.event,
                Alert.last_evidence_at >= seen_at - NEAR_DUPLICATE_WINDOW,
                Alert.first_seen_at <= seen_at + NEAR_DUPLICATE_WINDOW,
            )
            .order_by(Alert.last_evidence_at.desc())
            .limit(20)
        )
    ).all()
    for alert in recent:
        if alert.first_seen_at - STORY_WINDOW <= seen_at <= alert.last_evidence_at + STORY_WINDOW:
            return alert
    for alert in recent:
        fingerprints = await session.scalars(
            select(AlertEvidence.simhash).where(AlertEvidence.alert_id == alert.id)
        )
        if is_near_duplicate(record.simhash, fingerprints):
            return alert
    return None


async def _refresh_story(session: AsyncSession, alert: Alert, record: DetectionRecord) -> None:
    """Recompute a story's confidence, sources, first source and lead time from its evidence."""
    rows = (
        await session.execute(
            select(AlertEvidence.source_id, AlertEvidence.published_at, AlertEvidence.confidence)
            .where(AlertEvidence.alert_id == alert.id)
            .order_by(AlertEvidence.published_at, AlertEvidence.id)
        )
    ).all()
    best: dict[int, float] = {}
    first_seen: dict[int, datetime] = {}
    for source_id, published_at, confidence in rows:
        best[source_id] = max(best.get(source_id, 0.0), confidence)
        first_seen.setdefault(source_id, published_at)
    order = sorted(first_seen.items(), key=lambda item: item[1])
    alert.confidence = corroborated_confidence(best)
    alert.urgency = most_urgent(alert.urgency, record.urgency)
    alert.event_time = alert.event_time or record.event_time
    alert.trade = alert.trade or record.trade
    alert.first_source_id, alert.first_seen_at = order[0]
    alert.lead_time_s = (order[1][1] - order[0][1]).total_seconds() if len(order) > 1 else None
    alert.last_evidence_at = max(alert.last_evidence_at, rows[-1].published_at)
    alert.source_count = len(best)
    alert.evidence_count = len(rows)
    alert.updated_at = utcnow()


def _visible(statement: Select[Any], viewer_id: int | None) -> Select[Any]:
    """Limit to alerts with evidence from the viewer's own sources (None: every alert)."""
    if viewer_id is None:
        return statement
    return statement.where(
        exists(
            select(AlertEvidence.id)
            .join(Source, Source.id == AlertEvidence.source_id)
            .where(AlertEvidence.alert_id == Alert.id, Source.owner_id == viewer_id)
        )
    )


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
) -> Page[Alert]:
    """Alerts newest first, filtered; ``viewer_id`` limits them to the viewer's sources."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit", "must be between 1 and 1000")
    statement = _visible(select(Alert), viewer_id)
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
        statement = statement.where(Alert.confidence >= min_confidence)
    if urgency is not None:
        statement = statement.where(Alert.urgency == urgency)
    if status is not None:
        statement = statement.where(Alert.status == status)
    if since is not None:
        statement = statement.where(Alert.created_at >= since)
    if q is not None:
        from sigwatch.db.posts import matching_post_ids

        statement = statement.where(
            or_(
                Alert.title.ilike(f"%{q}%"),
                exists(
                    select(AlertEvidence.id).where(
                        AlertEvidence.alert_id == Alert.id,
                        AlertEvidence.post_id.in_(matching_post_ids(session, q)),
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
    items = list((await session.scalars(statement)).all())
    next_cursor = encode_cursor(items[limit - 1].id) if len(items) > limit else None
    return Page(items=items[:limit], next_cursor=next_cursor)


async def get_alert(session: AsyncSession, alert_id: int, *, viewer_id: int | None) -> Alert:
    """One alert, if the viewer may see it."""
    if not 0 < alert_id <= MAX_BIGINT_ID:
        raise NotFound(f"alert {alert_id} does not exist")
    alert: Alert | None = (
        await session.scalars(_visible(select(Alert).where(Alert.id == alert_id), viewer_id))
    ).first()
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return alert


async def alert_evidence(
    session: AsyncSession, alert_id: int, *, viewer_id: int | None
) -> list[tuple[AlertEvidence, Post]]:
    """The alert's evidence with its posts, earliest first, from sources the viewer may see."""
    statement = (
        select(AlertEvidence, Post)
        .join(Post, Post.id == AlertEvidence.post_id)
        .where(AlertEvidence.alert_id == alert_id)
        .order_by(AlertEvidence.published_at, AlertEvidence.id)
    )
    if viewer_id is not None:
        statement = statement.join(Source, Source.id == AlertEvidence.source_id).where(
            Source.owner_id == viewer_id
        )
    return [(row[0], row[1]) for row in (await session.execute(statement)).all()]


async def evidence_for_alerts(
    session: AsyncSession, alert_ids: Iterable[int], *, per_alert: int = 5
) -> dict[int, list[tuple[Post, str]]]:
    """Each alert's first ``per_alert`` evidence posts with their source names, in one query."""
    ids = set(alert_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(AlertEvidence.alert_id, Post, Source.name)
        .join(Post, Post.id == AlertEvidence.post_id)
        .join(Source, Source.id == AlertEvidence.source_id)
        .where(AlertEvidence.alert_id.in_(ids))
        .order_by(AlertEvidence.alert_id, AlertEvidence.published_at, AlertEvidence.id)
    )
    found: dict[int, list[tuple[Post, str]]] = {alert_id: [] for alert_id in ids}
    for alert_id, post, source_name in rows.all():
        if len(found[alert_id]) < per_alert:
            found[alert_id].append((post, source_name))
    return found


async def alert_source_owners(session: AsyncSession, alert_id: int) -> tuple[set[int], set[int]]:
    """The ids of the sources behind an alert's evidence, and of those sources' owners."""
    rows = await session.execute(
        select(Source.id, Source.owner_id)
        .join(AlertEvidence, AlertEvidence.source_id == Source.id)
        .where(AlertEvidence.alert_id == alert_id)
        .distinct()
    )
    pairs = rows.all()
    return {row[0] for row in pairs}, {row[1] for row in pairs if row[1] is not None}


async def alert_history(session: AsyncSession, alert_id: int) -> list[AlertHistory]:
    """The alert's changes, oldest first."""
    rows = await session.scalars(
        select(AlertHistory).where(AlertHistory.alert_id == alert_id).order_by(AlertHistory.id)
    )
    return list(rows.all())


async def change_status(
    session: AsyncSession,
    alert_ids: Sequence[int],
    status: str,
    *,
    viewer_id: int | None,
    actor_id: int | None,
    actor: str,
    note: str | None = None,
) -> list[tuple[Alert, int | None]]:
    """Move alerts to ``status`` (all or none), keeping each change in their history.

    Returns each alert with the id of its new history row (None when it already had ``status``).
    """
    if status not in STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
    await lock_alert_events(session)
    alerts = [await get_alert(session, alert_id, viewer_id=viewer_id) for alert_id in alert_ids]
    changed: list[tuple[Alert, AlertHistory | None]] = []
    for alert in alerts:
        if alert.status == status:
            changed.append((alert, None))
            continue
        if status not in TRANSITIONS[alert.status]:
            raise Conflict(
                f"alert {alert.id} is {alert.status}; it can become "
                f"{' or '.join(sorted(TRANSITIONS[alert.status]))}, not {status}"
            )
        history = AlertHistory(
            alert_id=alert.id,
            actor_id=actor_id,
            actor=actor,
            action="status",
            from_status=alert.status,
            to_status=status,
            detail={"note": note} if note else {},
        )
        session.add(history)
        changed.append((alert, history))
        alert.status = status
        alert.updated_at = utcnow()
    await session.flush()
    return [(alert, history.id if history else None) for alert, history in changed]


def alerts_since_statement(after_id: int) -> Select[Any]:
    """Alerts created after ``after_id``, oldest first (replay for live clients)."""
    return select(Alert).where(Alert.id > after_id).order_by(Alert.id)
