"""Wire shapes of alerts, detection and the rules: what the alert endpoints take and return."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from sigwatch.api.schemas import RequestModel, ResponseModel, Text, UTCTime

AlertStatus = Literal["new", "acknowledged", "resolved", "dismissed"]
Urgency = Literal["critical", "high", "medium", "low"]
EventType = Literal["tge", "airdrop", "listing", "mainnet", "unlock", "trade_call"]


class AlertOut(ResponseModel):
    """An alert: one story about an entity and an event, with its corroborated confidence."""

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


class EvidenceOut(ResponseModel):
    """One post behind an alert and why it fired: matched spans and each feature's weight."""

    post_id: int
    source_id: int
    published_at: datetime
    confidence: float
    urgency: str
    event_time: datetime | None
    features: dict[str, float]
    spans: list[dict[str, Any]]
    title: str | None
    text: str
    url: str | None
    author: str | None
    sentiment: float | None


class HistoryOut(ResponseModel):
    """One change of an alert."""

    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    detail: dict[str, Any]


class AlertDetail(AlertOut):
    """An alert with its evidence, earliest first, and its history."""

    evidence: list[EvidenceOut]
    history: list[HistoryOut]


class StatusChange(RequestModel):
    """Move alerts to a status; all change or none does."""

    ids: Annotated[
        list[Annotated[int, Field(ge=1, le=2**63 - 1)]], Field(min_length=1, max_length=500)
    ]
    status: AlertStatus
    note: Annotated[Text | None, StringConstraints(max_length=1000)] = None


class DetectRequest(RequestModel):
    """A text to run through the detector with the current watchlist and rules."""

    text: Annotated[
        Text,
        StringConstraints(min_length=1, max_length=10_000),
        Field(description="The post's text, as a source would have collected it."),
    ]
    title: Annotated[
        Text | None, Field(description="The post's title, read before its text, if any.")
    ] = None
    author: Annotated[
        Text | None,
        StringConstraints(max_length=256),
        Field(
            description="Who posted it (a handle or a site); an entity's own account or domain "
            "raises the confidence (feature own_account)."
        ),
    ] = None
    published: Annotated[
        UTCTime | None,
        Field(
            description="When the text was published (ISO 8601; without a zone, UTC). Times "
            'in the text that need a reference ("tomorrow", "in 2 hours", "Dec 3", "14:00 UTC") '
            "are resolved against it into event_time, which also sets the urgency. Without "
            "it the clock is not read: only dates that carry a year resolve, and the urgency "
            'is critical for "live now" wording and medium otherwise.'
        ),
    ] = None
    min_confidence: Annotated[
        float | None,
        Field(
            ge=0,
            le=1,
            description="The confidence a detection needs for would_alert; default: "
            "SIGWATCH_ALERT_MIN_CONFIDENCE, else the detector's default. An event whose rule "
            "sets its own min_confidence is held to that instead.",
        ),
    ] = None


class DetectionOut(RequestModel):
    """What would fire and why."""

    entity: str
    event: str
    confidence: float
    urgency: str
    event_time: datetime | None
    would_alert: bool
    spans: list[dict[str, Any]]
    features: dict[str, float]
    trade: dict[str, Any] | None


class DetectResponse(RequestModel):
    """Every detection of the text, the threshold it was judged against, the text's sentiment."""

    min_confidence: float
    sentiment: float
    detections: list[DetectionOut]


class RuleOverrideIn(RequestModel):
    """An override of one built-in event rule."""

    enabled: bool = True
    keywords: dict[
        Literal["strong", "medium", "weak"],
        Annotated[
            list[Annotated[Text, StringConstraints(min_length=1, max_length=200)]],
            Field(max_length=500),
        ],
    ] = Field(default_factory=dict)
    cancels: Annotated[
        list[Annotated[Text, StringConstraints(min_length=1, max_length=200)]],
        Field(max_length=500),
    ] = Field(default_factory=list)
    min_confidence: Annotated[float | None, Field(ge=0, le=1)] = None


class RuleOverrideOut(RuleOverrideIn):
    """A stored override, with the event it changes."""

    event: str


SystemAlertCondition = Literal["silent", "stale", "failing"]
SystemAlertState = Literal["open", "cleared"]


class SystemAlertOut(ResponseModel):
    """A source's freshness alarm: silent, stale or failing; open until the source recovers."""

    id: int
    source_id: int
    source_name: str = Field(description="The source's name, as it is now.")
    owner_id: int | None = Field(description="The source's owner; null for a shared source.")
    condition: SystemAlertCondition
    state: SystemAlertState
    reason: str = Field(description="Why it was raised, with the numbers that decided it.")
    detail: dict[str, Any]
    opened_at: datetime
    last_seen_at: datetime = Field(description="The last check that found it still holding.")
    cleared_at: datetime | None
    clear_reason: str | None
