"""Wire shapes of delivery: channels, subscriptions, silences and the deliveries of the outbox.

A channel's config goes in with its secrets in clear and always comes out masked; the only
secret ever returned is one sigwatch generated, once, in the create response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from sigwatch.api.alert_schemas import EventType, Urgency
from sigwatch.api.schemas import (
    MAX_INT64,
    Id32,
    JSONObject,
    ListItem,
    Name,
    PatchModel,
    RequestModel,
    ResponseModel,
    Text,
    UTCTime,
)
from sigwatch.db.channels import MAX_RATE_LIMIT_PER_MIN, MIN_RATE_LIMIT_PER_MIN
from sigwatch.db.deliveries import MAX_REQUEUE
from sigwatch.db.subscriptions import MAX_SILENCE_S

#: The name of a channel kind, such as ``webhook``.
ChannelKind = Annotated[str, StringConstraints(min_length=1, max_length=32)]
RateLimit = Annotated[int, Field(ge=MIN_RATE_LIMIT_PER_MIN, le=MAX_RATE_LIMIT_PER_MIN)]
Mode = Literal["instant", "hourly", "daily"]
NotifyOn = Literal["new", "changes"]
DeliveryStatus = Literal["pending", "sent", "dead"]
#: A time of day in UTC, as HH:MM on a 24-hour clock.
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Id64 = Annotated[int, Field(ge=1, le=MAX_INT64)]
_Names = Annotated[list[ListItem], Field(max_length=500)]


class _NullablePatch(PatchModel):
    """A partial update in which the fields named in ``nullable`` may be set to null."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Here null is a value of its own ("no limit", "no quiet hours"), not a missing field.
        if value is None and info.field_name in cls.nullable:
            return value
        return super()._refuse_null(value, info)


# --- channels ------------------------------------------------------------------------------------


class ChannelCreate(RequestModel):
    """A new channel; ``config`` is checked against the options of ``kind``.

    ``webhook``: ``{"url": ..., "secret": "whsec_..."}``, the secret generated when left out.
    ``apprise``: ``{"url": "tgram://bot-token/chat-id"}`` or any other Apprise URL.
    """

    kind: ChannelKind
    name: Name
    config: JSONObject = Field(default_factory=dict)
    enabled: bool = True
    rate_limit_per_min: RateLimit | None = None


class ChannelUpdate(_NullablePatch):
    """Changes to a channel; its kind is fixed, and ``rate_limit_per_min`` null removes the limit.

    A config given replaces the stored one, but secret fields left out, or sent back masked as
    shown, keep their stored values.
    """

    nullable: ClassVar[frozenset[str]] = frozenset({"rate_limit_per_min"})

    name: Name | None = None
    enabled: bool | None = None
    config: JSONObject | None = None
    rate_limit_per_min: RateLimit | None = None


class ChannelOut(ResponseModel):
    """A channel, its config with every secret masked."""

    id: int
    owner_id: int
    kind: str
    name: str
    config: dict[str, Any]
    enabled: bool
    rate_limit_per_min: int | None
    created_at: datetime
    updated_at: datetime


class ChannelCreated(ChannelOut):
    """A channel just made, with the secrets sigwatch generated for it in clear, shown this once."""

    generated_secrets: dict[str, str]


class ChannelTestOut(ResponseModel):
    """What the receiver answered a test message: ``ok`` false carries the reason in ``detail``."""

    ok: bool
    status_code: int | None
    detail: str


# --- subscriptions -------------------------------------------------------------------------------


class SubscriptionFilters(RequestModel):
    """Which alerts match; every filter left empty matches any alert."""

    entities: _Names = Field(default_factory=list)
    tags: _Names = Field(default_factory=list)
    events: Annotated[list[EventType], Field(max_length=20)] = Field(default_factory=list)
    min_confidence: Annotated[float | None, Field(ge=0, le=1)] = None
    urgencies: Annotated[list[Urgency], Field(max_length=20)] = Field(default_factory=list)
    source_ids: Annotated[list[Id32], Field(max_length=500)] = Field(default_factory=list)


class QuietHours(RequestModel):
    """A daily window in UTC without instant notifications; it may span midnight (22:00-07:00)."""

    start: ClockTime
    end: ClockTime


class SubscriptionCreate(RequestModel):
    """A new subscription: which alerts, to which of your channels, how often, and when not."""

    name: Name
    enabled: bool = True
    filters: SubscriptionFilters = Field(default_factory=SubscriptionFilters)
    channel_ids: Annotated[list[Id32], Field(max_length=100)] = Field(default_factory=list)
    mode: Mode = "instant"
    notify_on: NotifyOn = "new"
    quiet_hours: QuietHours | None = None
    system_alerts: bool = Field(
        False, description="Also send system alerts: one of your sources silent, stale or failing."
    )


class SubscriptionUpdate(_NullablePatch):
    """Changes to a subscription; ``filters`` replaces them all, null ``quiet_hours`` ends them."""

    nullable: ClassVar[frozenset[str]] = frozenset({"quiet_hours"})

    name: Name | None = None
    enabled: bool | None = None
    filters: SubscriptionFilters | None = None
    channel_ids: Annotated[list[Id32], Field(max_length=100)] | None = None
    mode: Mode | None = None
    notify_on: NotifyOn | None = None
    quiet_hours: QuietHours | None = None
    system_alerts: bool | None = None


class FiltersOut(ResponseModel):
    """A subscription's filters as stored; a key missing from the row reads as "any"."""

    entities: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    min_confidence: float | None = None
    urgencies: list[str] = Field(default_factory=list)
    source_ids: list[int] = Field(default_factory=list)


class QuietHoursOut(ResponseModel):
    """A subscription's quiet hours, in UTC."""

    start: str
    end: str


class SubscriptionOut(ResponseModel):
    """A subscription."""

    id: int
    owner_id: int
    name: str
    enabled: bool
    filters: FiltersOut
    channel_ids: list[int]
    mode: str
    notify_on: str
    quiet_hours: QuietHoursOut | None
    system_alerts: bool = False
    created_at: datetime
    updated_at: datetime


# --- silences ------------------------------------------------------------------------------------


class SilenceCreate(RequestModel):
    """Mute an entity, an event or both, until a time or for ``duration_s`` seconds."""

    entity: Name | None = None
    event: EventType | None = None
    until: UTCTime | None = None
    duration_s: Annotated[int, Field(ge=1, le=MAX_SILENCE_S)] | None = None
    reason: Text = ""


class SilenceOut(ResponseModel):
    """A silence; it ends at ``until``."""

    id: int
    owner_id: int
    entity: str | None
    event: str | None
    until: datetime
    reason: str
    created_at: datetime


# --- deliveries ----------------------------------------------------------------------------------


class DeliveryOut(ResponseModel):
    """One notification of the outbox: where it goes, its state and the receiver's last answer."""

    id: int
    alert_id: int | None
    system_alert_id: int | None = Field(None, description="Set for a system alert's notice.")
    channel_id: int
    subscription_id: int | None
    kind: str
    idempotency_key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    response_status: int | None
    created_at: datetime
    sent_at: datetime | None


class RequeueRequest(RequestModel):
    """Dead letters to send again: by ``ids``, or every one with ``status`` "dead".

    With ``status``, ``channel_id`` limits it to one channel; at most 1,000 go per call.
    """

    ids: Annotated[list[Id64], Field(min_length=1, max_length=MAX_REQUEUE)] | None = None
    status: Literal["dead"] | None = None
    channel_id: Id32 | None = None


class RequeueOut(ResponseModel):
    """The deliveries put back in the outbox."""

    requeued: int
    ids: list[int]
