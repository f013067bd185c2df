"""What one notification says, before any channel formats it.

An :class:`AlertMessage` is built by the outbox from an alert and handed to a channel. It holds
text only; each channel decides how to lay it out and how to escape it for its target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

MessageKind = Literal["new", "updated", "digest", "test", "system_opened", "system_cleared"]

# The Standard Webhooks payload convention: a dotted event type, a timestamp and the data.
_WEBHOOK_TYPES: dict[str, str] = {
    "new": "alert.created",
    "updated": "alert.updated",
    "digest": "alert.digest",
    "test": "alert.test",
    "system_opened": "system_alert.opened",
    "system_cleared": "system_alert.cleared",
}


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One post that supports an alert: where it was seen, by whom, when, and an excerpt."""

    source: str
    url: str | None
    author: str | None
    published_at: datetime | None
    excerpt: str


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """The wire-neutral content of one notification about one alert."""

    alert_id: int
    idempotency_key: str
    event: str
    entity: str
    title: str
    summary: str
    confidence: float
    urgency: str
    url: str | None
    evidence: list[EvidenceItem]
    created_at: datetime
    kind: MessageKind = "new"
    #: For a system alert's notice: the alarm as the webhook's ``data`` carries it.
    system_alert: dict[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        """The webhook payload as a JSON-ready dict: ``type``, ``timestamp`` and ``data``."""
        if self.system_alert is not None:
            return {
                "type": _WEBHOOK_TYPES[self.kind],
                "timestamp": _iso(self.created_at),
                "data": {"title": self.title, "summary": self.summary, **self.system_alert},
            }
        return {
            "type": _WEBHOOK_TYPES[self.kind],
            "timestamp": _iso(self.created_at),
            "data": {
                "alert_id": self.alert_id,
                "kind": self.kind,
                "event": self.event,
                "entity": self.entity,
                "title": self.title,
                "summary": self.summary,
                "confidence": self.confidence,
                "urgency": self.urgency,
                "url": self.url,
                "created_at": _iso(self.created_at),
                "evidence": [
                    {
                        "source": item.source,
                        "url": item.url,
                        "author": item.author,
                        "published_at": _iso(item.published_at) if item.published_at else None,
                        "excerpt": item.excerpt,
                    }
                    for item in self.evidence
                ],
            },
        }

    def to_json(self) -> str:
        """The webhook body: compact JSON of :meth:`to_payload`, UTF-8 text kept as is."""
        return json.dumps(self.to_payload(), ensure_ascii=False, separators=(",", ":"))


def _iso(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")
