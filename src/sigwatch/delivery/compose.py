"""What a notification says about an alert: built from the alert and its first evidence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sigwatch.db.alerts import AlertShown
from sigwatch.db.models import Post
from sigwatch.db.system_alerts import SystemAlertShown
from sigwatch.db.types import utcnow
from sigwatch.delivery.message import AlertMessage, EvidenceItem, MessageKind

#: Evidence items carried in one notification; the alert's page in the API has them all.
MAX_EVIDENCE = 5
EXCERPT_CHARS = 280

EVENT_NAMES = {
    "tge": "token generation event",
    "airdrop": "airdrop",
    "listing": "exchange listing",
    "mainnet": "mainnet launch",
    "unlock": "token unlock",
    "trade_call": "trade call",
}


def _excerpt(post: Post) -> str:
    text = " ".join((post.text or post.title or "").split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def compose_message(
    alert: AlertShown,
    evidence: Sequence[tuple[Post, str]],
    *,
    kind: MessageKind,
    idempotency_key: str,
) -> AlertMessage:
    """The message announcing ``alert``; ``evidence`` is (post, source name), earliest first."""
    event_name = EVENT_NAMES.get(alert.event, alert.event)
    sources = f"{alert.source_count} source" + ("s" if alert.source_count != 1 else "")
    summary = (
        f"{alert.entity}: {event_name}. Confidence {alert.confidence:.0%}, urgency "
        f"{alert.urgency}, seen on {sources}"
    )
    if alert.event_time is not None:
        summary += f"; expected {alert.event_time:%Y-%m-%d %H:%M} UTC"
    if kind == "updated":
        summary = "Update: " + summary
    return AlertMessage(
        alert_id=alert.id,
        idempotency_key=idempotency_key,
        event=alert.event,
        entity=alert.entity,
        title=alert.title,
        summary=summary + ".",
        confidence=alert.confidence,
        urgency=alert.urgency,
        url=next((post.url for post, _ in evidence if post.url), None),
        evidence=[
            EvidenceItem(
                source=source,
                url=post.url,
                author=post.author,
                published_at=post.published_at,
                excerpt=_excerpt(post),
            )
            for post, source in evidence[:MAX_EVIDENCE]
        ],
        created_at=alert.created_at,
        kind=kind,
    )


def channel_test_message(channel_id: int, now: datetime | None = None) -> AlertMessage:
    """A harmless message for a channel's "send test" action."""
    now = now or utcnow()
    return AlertMessage(
        alert_id=0,
        idempotency_key=f"test-channel-{channel_id}-{int(now.timestamp() * 1000)}",
        event="test",
        entity="sigwatch",
        title="sigwatch test notification",
        summary="This channel works: sigwatch alerts will arrive here.",
        confidence=1.0,
        urgency="low",
        url=None,
        evidence=[],
        created_at=now,
        kind="test",
    )


def compose_digest(
    alerts: Sequence[tuple[AlertShown, Sequence[tuple[Post, str]]]], *, idempotency_key: str
) -> AlertMessage:
    """One summary message for a digest subscription's alerts of the period."""
    lines = [
        f"{alert.entity}: {EVENT_NAMES.get(alert.event, alert.event)} "
        f"({alert.confidence:.0%}, {alert.urgency})"
        for alert, _ in alerts
    ]
    first, first_evidence = alerts[0]
    count = len(alerts)
    return AlertMessage(
        alert_id=first.id,
        idempotency_key=idempotency_key,
        event="digest",
        entity=", ".join(sorted({alert.entity for alert, _ in alerts})),
        title=f"sigwatch digest: {count} alert" + ("s" if count != 1 else ""),
        summary="; ".join(lines) + ".",
        confidence=max(alert.confidence for alert, _ in alerts),
        urgency=first.urgency,
        url=next((post.url for post, _ in first_evidence if post.url), None),
        evidence=[
            EvidenceItem(
                source=source,
                url=post.url,
                author=post.author,
                published_at=post.published_at,
                excerpt=_excerpt(post),
            )
            for _, evidence in alerts[:MAX_EVIDENCE]
            for post, source in evidence[:1]
        ],
        created_at=utcnow(),
        kind="digest",
    )


#: How a system alert's condition reads in a notification's title.
CONDITION_NAMES = {"silent": "gone silent", "stale": "serving stale content", "failing": "failing"}


def compose_system_message(
    shown: SystemAlertShown, *, cleared: bool, idempotency_key: str
) -> AlertMessage:
    """The notice that a source's freshness alarm was raised, or (``cleared``) that it ended."""
    alert = shown.alert
    name = shown.source_name or f"source {alert.source_id}"
    condition = CONDITION_NAMES.get(alert.condition, alert.condition)
    if cleared:
        title = f"Recovered: {name} is no longer {condition}"
        summary = f"{alert.clear_reason or 'the condition no longer holds'}; it was: {alert.reason}"
    else:
        title = f"Source {name} is {condition}"
        summary = alert.reason
    moment = (alert.cleared_at if cleared else None) or alert.opened_at
    return AlertMessage(
        alert_id=0,
        idempotency_key=idempotency_key,
        event=f"system.{alert.condition}",
        entity=name,
        title=title,
        summary=summary[:1].upper() + summary[1:] + ("" if summary.endswith(".") else "."),
        confidence=1.0,
        urgency="low" if cleared else "high",
        url=None,
        evidence=[],
        created_at=moment,
        kind="system_cleared" if cleared else "system_opened",
        system_alert={
            "system_alert_id": alert.id,
            "state": "cleared" if cleared else "open",
            "condition": alert.condition,
            "source_id": alert.source_id,
            "source_name": shown.source_name,
            "source_kind": shown.source_kind,
            "reason": alert.reason,
            "detail": alert.detail,
            "opened_at": _iso(alert.opened_at),
            "cleared_at": _iso(alert.cleared_at) if alert.cleared_at else None,
            "clear_reason": alert.clear_reason,
        },
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
