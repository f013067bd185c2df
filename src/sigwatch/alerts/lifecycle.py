"""The alert lifecycle: a detection folded into its story, and the status moves a user makes.

Policy lives here and rows in :mod:`sigwatch.db.alerts`: which story a detection joins, what
the story and each owner's view of it then say, which status changes are allowed. Every
change is kept in the alert's history, whose row id is the live event id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.alerts.stories import (
    NEAR_DUPLICATE_WINDOW,
    STORY_WINDOW,
    EvidenceFacts,
    StorySummary,
    corroborated_confidence,
    is_near_duplicate,
    summarise_story,
)
from sigwatch.db import alerts as rows
from sigwatch.db.alerts import AlertShown, shown
from sigwatch.db.models import Alert, AlertHistory, AlertView
from sigwatch.db.posts import StoredPost
from sigwatch.db.types import utcnow
from sigwatch.errors import Conflict, InvalidInput

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

    post: StoredPost
    #: The owner of the post's source (None: a shared source).
    owner_id: int | None
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
class ViewChange:
    """What a new post did to its source owner's view: created it (new to them) or updated it."""

    owner_id: int
    view: AlertView
    kind: str  # created, corroborated
    previous_confidence: float | None
    previous_urgency: str | None


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What recording a detection did to an alert: created it, corroborated it, or nothing new."""

    alert: Alert
    kind: str  # created, corroborated, repeated
    previous_confidence: float | None
    previous_urgency: str | None
    #: The alert_history row of this change (the live event id); None when nothing changed.
    history_id: int | None = None
    #: The change to the view of the post's source owner; None when repeated or nobody owns it.
    view_change: ViewChange | None = None


#: Most stories of one entity and event a detection is compared with, latest evidence first.
RECENT_STORIES = 20
#: New alerts of a batch, each with its evidence, view and history rows that wait for its id.
_Waiting = list[tuple[Alert, dict[str, Any], list[AlertView | AlertHistory]]]


@dataclass(frozen=True, slots=True)
class _Recorded:
    """What recording one detection did; its history row has its id once the batch is written."""

    alert: Alert
    kind: str
    previous_confidence: float | None
    previous_urgency: str | None
    history: AlertHistory | None
    view_change: ViewChange | None


async def record_detections(
    session: AsyncSession, records: Sequence[DetectionRecord]
) -> list[AlertChange]:
    """Fold each detection, in order, into its story: a new alert, or evidence appended to one.

    The story's alert row and the view of the post's source owner are both brought up to date;
    the other users' views are untouched, since the post is not theirs to see. A detection sees
    what the ones before it did (a story made by the first joins the second). The caller holds
    the stories' locks (:func:`sigwatch.db.alerts.lock_stories`).

    Few statements for a batch: the stories its detections may join are read in one query, and
    the alerts it makes are written together, with their evidence, views and history; a
    corroboration reads the story's evidence once, for the story and its owner's view alike.
    """
    spans: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for record in records:
        seen_at = _seen_at(record)
        earliest, latest = spans.get((record.entity, record.event), (seen_at, seen_at))
        spans[record.entity, record.event] = (min(earliest, seen_at), max(latest, seen_at))
    stories = await rows.recent_stories(session, spans, within=NEAR_DUPLICATE_WINDOW)
    waiting: _Waiting = []
    recorded: list[_Recorded] = []
    for record in records:
        candidates = stories[record.entity, record.event]
        alert = await _find_story(session, record, candidates, waiting)
        if alert is None:
            alert, evidence, dependents, done = _new_story(record)
            rows.add_rows(session, [alert])
            candidates.append(alert)
            waiting.append((alert, evidence, dependents))
        else:
            await _write_waiting(session, waiting)
            done = await _corroborate(session, alert, record)
        recorded.append(done)
    await _write_waiting(session, waiting)
    await rows.write_added(session)
    return [
        AlertChange(
            done.alert,
            done.kind,
            done.previous_confidence,
            done.previous_urgency,
            done.history.id if done.history is not None else None,
            done.view_change,
        )
        for done in recorded
    ]


def _seen_at(record: DetectionRecord) -> datetime:
    return record.post.published_at or record.post.collected_at


def _new_story(
    record: DetectionRecord,
) -> tuple[Alert, dict[str, Any], list[AlertView | AlertHistory], _Recorded]:
    """A new alert made of ``record`` and the rows that go with it, to store once it has an id."""
    post, seen_at, owner_id = record.post, _seen_at(record), record.owner_id
    alert = Alert(
        entity=record.entity,
        entity_id=record.entity_id,
        event=record.event,
        status="new",
        confidence=corroborated_confidence([record.confidence]),
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
    dependents: list[AlertView | AlertHistory] = []
    view_change = _first_view(alert, owner_id, record)
    if view_change is not None:
        dependents.append(view_change.view)
    history = AlertHistory(
        action="created",
        to_status="new",
        owner_id=owner_id,
        detail=_change_detail(post, None, alert.confidence, view_change),
    )
    dependents.append(history)
    done = _Recorded(alert, "created", None, None, history, view_change)
    return alert, _evidence(record, seen_at), dependents, done


async def _write_waiting(session: AsyncSession, waiting: _Waiting) -> None:
    """Give the batch's new alerts their ids and store the rows that waited for them."""
    if not waiting:
        return
    await rows.write_added(session)
    for alert, evidence, dependents in waiting:
        evidence["alert_id"] = alert.id
        for row in dependents:
            row.alert_id = alert.id
    await rows.add_evidence(session, [evidence for _alert, evidence, _rows in waiting])
    rows.add_rows(session, [row for _alert, _evidence, dependents in waiting for row in dependents])
    waiting.clear()


async def _corroborate(session: AsyncSession, alert: Alert, record: DetectionRecord) -> _Recorded:
    """Append ``record`` to a stored story and bring the story and its owner's view up to date."""
    post, owner_id = record.post, record.owner_id
    if await rows.has_evidence_from_post(session, alert.id, post.id):
        return _Recorded(alert, "repeated", alert.confidence, alert.urgency, None, None)
    previous_confidence, previous_urgency = alert.confidence, alert.urgency
    evidence = _evidence(record, _seen_at(record))
    evidence["alert_id"] = alert.id
    await rows.add_evidence(session, [evidence])
    facts = await _evidence_facts(session, alert.id, owner_id)
    _apply(alert, summarise_story([item for item, _seen in facts]))
    alert.trade = alert.trade or record.trade
    alert.updated_at = utcnow()
    view_change = await _update_view(
        session, alert, owner_id, record, [item for item, seen in facts if seen]
    )
    history = AlertHistory(
        alert_id=alert.id,
        action="corroborated",
        owner_id=owner_id,
        detail=_change_detail(post, previous_confidence, alert.confidence, view_change),
    )
    rows.add_rows(session, [history])
    return _Recorded(
        alert, "corroborated", previous_confidence, previous_urgency, history, view_change
    )


async def change_status(
    session: AsyncSession,
    alert_ids: Sequence[int],
    status: str,
    *,
    viewer_id: int | None,
    actor_id: int | None,
    actor: str,
    note: str | None = None,
) -> list[tuple[AlertShown, int | None]]:
    """Move alerts to ``status`` (all or none), keeping each change in their history.

    Returns each alert as the viewer sees it, with the id of its new history row (None when it
    already had ``status``). A move :data:`TRANSITIONS` does not allow is a Conflict naming the
    moves that are, and nothing changes.
    """
    if status not in STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
    await rows.lock_alert_events(session)
    found = [await rows.alert_row(session, alert_id, viewer_id) for alert_id in alert_ids]
    for alert, _view in found:
        if alert.status != status and status not in TRANSITIONS[alert.status]:
            raise Conflict(
                f"alert {alert.id} is {alert.status}; it can become "
                f"{' or '.join(sorted(TRANSITIONS[alert.status]))}, not {status}"
            )
    changed: list[tuple[AlertShown, int | None]] = []
    for alert, view in found:
        if alert.status == status:
            changed.append((shown(alert, view), None))
            continue
        history = await rows.record_status_change(
            session, alert, status, actor_id=actor_id, actor=actor, note=note
        )
        changed.append((shown(alert, view), history.id))
    return changed


def _change_detail(
    post: StoredPost, before: float | None, after: float, view_change: ViewChange | None
) -> dict[str, Any]:
    """What a change's history row keeps: the post, and the confidence before and after.

    ``view_confidence`` is the same for the owner's view, which is all its owner is shown;
    ``new_to_owner`` says the story first reached the owner with this post.
    """
    detail: dict[str, Any] = {"post_id": post.id, "source_id": post.source_id}
    if before is not None:
        detail["confidence"] = [before, after]
    if view_change is not None:
        detail["new_to_owner"] = view_change.kind == "created"
        if view_change.previous_confidence is not None:
            detail["view_confidence"] = [
                view_change.previous_confidence,
                view_change.view.confidence,
            ]
    return detail


async def _evidence_facts(
    session: AsyncSession, alert_id: int, seen_by: int | None
) -> list[tuple[EvidenceFacts, bool]]:
    """The alert's evidence, earliest first, each with whether ``seen_by`` may see it."""
    found = await rows.evidence_facts(session, alert_id, seen_by=seen_by)
    return [(EvidenceFacts(*facts), seen) for facts, seen in found]


def _apply(target: Alert | AlertView, summary: StorySummary) -> None:
    """Write a story summary onto the alert row or a user's view of it."""
    target.confidence = summary.confidence
    target.urgency = summary.urgency
    target.event_time = summary.event_time
    target.first_source_id = summary.first_source_id
    target.first_seen_at = summary.first_seen_at
    target.last_evidence_at = summary.last_evidence_at
    target.lead_time_s = summary.lead_time_s
    target.source_count = summary.source_count
    target.evidence_count = summary.evidence_count


def _first_view(alert: Alert, owner_id: int | None, record: DetectionRecord) -> ViewChange | None:
    """The owner's view of an alert just made from their post: the alert's one evidence is
    theirs, so the view says what the alert says (no query needed to work it out). Stored with
    the alert, once it has its id."""
    if owner_id is None:
        return None
    view = AlertView(owner_id=owner_id, title=record.title)
    view.trade = record.trade
    _apply(
        view,
        StorySummary(
            confidence=alert.confidence,
            urgency=alert.urgency,
            event_time=alert.event_time,
            first_source_id=record.post.source_id,
            first_seen_at=alert.first_seen_at,
            last_evidence_at=alert.last_evidence_at,
            lead_time_s=None,
            source_count=1,
            evidence_count=1,
        ),
    )
    return ViewChange(owner_id, view, "created", None, None)


async def _update_view(
    session: AsyncSession,
    alert: Alert,
    owner_id: int | None,
    record: DetectionRecord,
    visible: list[EvidenceFacts],
) -> ViewChange | None:
    """Recompute the owner's view of ``alert`` from ``visible``, the evidence they may see."""
    if owner_id is None:
        return None
    summary = summarise_story(visible)
    view = await rows.get_view(session, alert.id, owner_id)
    if view is None:
        view = AlertView(alert_id=alert.id, owner_id=owner_id, title=record.title)
        view.trade = record.trade
        _apply(view, summary)
        rows.add_rows(session, [view])
        return ViewChange(owner_id, view, "created", None, None)
    previous_confidence, previous_urgency = view.confidence, view.urgency
    _apply(view, summary)
    view.trade = view.trade or record.trade
    view.updated_at = utcnow()
    return ViewChange(owner_id, view, "corroborated", previous_confidence, previous_urgency)


def _evidence(record: DetectionRecord, seen_at: datetime) -> dict[str, Any]:
    """The evidence row of ``record``; its ``alert_id`` is set by whoever knows the alert."""
    return {
        "post_id": record.post.id,
        "source_id": record.post.source_id,
        "published_at": seen_at,
        "confidence": record.confidence,
        "urgency": record.urgency,
        "event_time": record.event_time,
        "features": record.features,
        "spans": record.spans,
        "simhash": record.simhash,
    }


async def _find_story(
    session: AsyncSession, record: DetectionRecord, candidates: list[Alert], waiting: _Waiting
) -> Alert | None:
    """The story this detection belongs to, if any, of ``candidates`` (same entity and event):
    one close in time.

    Close means within STORY_WINDOW of the story's evidence, or a near-duplicate text of it
    within NEAR_DUPLICATE_WINDOW, among the RECENT_STORIES with the latest evidence.
    """
    seen_at = _seen_at(record)
    recent = sorted(
        (
            alert
            for alert in candidates
            if alert.last_evidence_at >= seen_at - NEAR_DUPLICATE_WINDOW
            and alert.first_seen_at <= seen_at + NEAR_DUPLICATE_WINDOW
        ),
        key=lambda alert: alert.last_evidence_at,
        reverse=True,
    )[:RECENT_STORIES]
    for alert in recent:
        if alert.first_seen_at - STORY_WINDOW <= seen_at <= alert.last_evidence_at + STORY_WINDOW:
            return alert
    if recent:
        await _write_waiting(session, waiting)  # a new story's evidence is read back here
    for alert in recent:
        if is_near_duplicate(record.simhash, await rows.evidence_fingerprints(session, alert.id)):
            return alert
    return None
