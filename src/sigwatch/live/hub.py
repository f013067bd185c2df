"""The per-process fan-out of live events to connected clients.

One :class:`LiveHub` per API process reads the bus and offers each event to every
:class:`LiveClient` that may see it and wants it. Each event is serialised once, whatever the
number of clients. A client has a bounded queue; one that falls behind by a full queue is
dropped at once, so a slow reader never slows the hub, the publisher or the other clients.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from sigwatch.detect.events import EVENT_TYPES, URGENCIES
from sigwatch.live.bus import GAP, Event, LiveBus
from sigwatch.live.events import SYSTEM_ALERT, event_for

#: Events a client may have queued, unsent, before it is dropped as too slow.
MAX_QUEUE = 1000
#: Seconds between heartbeats on an idle connection.
HEARTBEAT_S = 15.0
#: Why a slow client was dropped (fits a WebSocket close reason, at most 123 bytes).
TOO_SLOW = "too slow: {count} events queued unsent; reconnect (SSE resumes with Last-Event-ID)"
SHUTTING_DOWN = "server shutting down; reconnect"
#: Why a resumable client is closed after the bus may have missed events.
MAY_HAVE_MISSED = "live bus reconnected, events may have been missed; resume with Last-Event-ID"
#: What other clients are told then: they cannot resume, so they may re-read the alert list.
GAP_MESSAGE = {
    "type": "gap",
    "message": "the live bus reconnected and events may have been missed: "
    "GET /api/v1/alerts for the current state",
}

EventTypeName = Literal["alert.created", "alert.corroborated", "alert.status", "system_alert"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a client is, as far as visibility goes: admins see every alert."""

    user_id: int
    is_admin: bool


class LiveFilters(BaseModel):
    """What a client wants; a filter left out (null) lets everything through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: list[Name] | None = Field(None, max_length=500, description="Entity names.")
    events: list[str] | None = Field(None, max_length=20, description="Event kinds, e.g. tge.")
    types: list[EventTypeName] | None = Field(
        None, max_length=4, description="Change types; system_alert: sources' freshness alarms."
    )
    min_confidence: float | None = Field(None, ge=0, le=1, description="Lowest confidence.")
    urgency: list[str] | None = Field(None, max_length=4, description="Urgency levels.")

    @field_validator("entities", "events", "types", "urgency", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # {"events": "tge"} is read as ["tge"].
        return [value] if isinstance(value, str) else value

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str] | None) -> list[str] | None:
        return _known(value, EVENT_TYPES, "event")

    @field_validator("urgency")
    @classmethod
    def _known_urgencies(cls, value: list[str] | None) -> list[str] | None:
        return _known(value, URGENCIES, "urgency")


def _known(value: list[str] | None, allowed: tuple[str, ...], what: str) -> list[str] | None:
    if value is None:
        return None
    for item in value:
        if item not in allowed:
            raise ValueError(f"unknown {what} {item!r}: use one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True, slots=True)
class _Facts:
    """What filtering looks at in one event as one viewer sees it, extracted once."""

    type: str
    entity: str
    event: str
    confidence: float
    urgency: str


def event_facts(event: Event) -> _Facts:
    """What filters look at in ``event``; KeyError, TypeError or ValueError if malformed."""
    if event["type"] == SYSTEM_ALERT:  # about a source, not an event: only `types` applies
        return _Facts(type=SYSTEM_ALERT, entity="", event="", confidence=1.0, urgency="")
    alert = event["alert"]
    return _Facts(
        type=str(event["type"]),
        entity=str(alert["entity"]).casefold(),
        event=str(alert["event"]),
        confidence=float(alert["confidence"]),
        urgency=str(alert["urgency"]),
    )


class _Match:
    """A client's filters compiled to sets, for a cheap test per event."""

    __slots__ = ("entities", "events", "types", "min_confidence", "urgency")

    def __init__(self, filters: LiveFilters) -> None:
        self.entities = _set(filters.entities, casefold=True)
        self.events = _set(filters.events)
        self.types = _set(filters.types)
        self.min_confidence = filters.min_confidence
        self.urgency = _set(filters.urgency)

    def __call__(self, facts: _Facts) -> bool:
        if facts.type == SYSTEM_ALERT:
            return self.types is None or SYSTEM_ALERT in self.types
        return (
            (self.entities is None or facts.entity in self.entities)
            and (self.events is None or facts.event in self.events)
            and (self.types is None or facts.type in self.types)
            and (self.min_confidence is None or facts.confidence >= self.min_confidence)
            and (self.urgency is None or facts.urgency in self.urgency)
        )


def _set(values: Sequence[str] | None, *, casefold: bool = False) -> frozenset[str] | None:
    if values is None:
        return None
    return frozenset(v.casefold() for v in values) if casefold else frozenset(values)


class Delivery:
    """One message for clients: an event (with its id) or a control message, serialised once."""

    __slots__ = ("id", "text", "_sse")

    def __init__(self, event_id: int | None, text: str) -> None:
        self.id = event_id
        self.text = text
        self._sse: bytes | None = None

    def sse(self) -> bytes:
        """The message as one Server-Sent Event (``id`` and ``data`` lines), built once."""
        if self._sse is None:
            # json.dumps never emits a raw newline, so the text is one valid data line.
            head = f"id: {self.id}\r\n" if self.id is not None else ""
            self._sse = f"{head}data: {self.text}\r\n\r\n".encode()
        return self._sse


def _version(event: Event, audience: int | None) -> tuple[_Facts, Event] | None:
    """The event as ``audience`` sees it with its facts; None when it does not reach them."""
    viewed = event_for(event, audience)
    if viewed is None:
        return None
    try:
        return event_facts(viewed), viewed
    except (KeyError, TypeError, ValueError):
        log.warning("live hub skipped a malformed event", event_id=event.get("id"))
        return None


class LiveClient:
    """One connected client: who it is, what it wants, and its bounded queue."""

    __slots__ = (
        "viewer",
        "filters",
        "max_queue",
        "resumable",
        "closed_reason",
        "too_slow",
        "signed_out",
        "_match",
        "_pending",
        "_wakeup",
    )

    def __init__(
        self, viewer: Viewer, filters: LiveFilters, max_queue: int, *, resumable: bool = False
    ) -> None:
        self.viewer = viewer
        self.max_queue = max_queue
        #: True for clients that resume by event id (SSE): closed, not told, after a gap.
        self.resumable = resumable
        #: Why the connection should end, once it should (dropped, or the server stopping).
        self.closed_reason: str | None = None
        self.too_slow = False
        #: True when its credentials stopped holding (expired, revoked, user deactivated).
        self.signed_out = False
        self._pending: deque[Delivery] = deque()
        self._wakeup = asyncio.Event()
        self.filters = filters
        self._match = _Match(filters)

    def set_filters(self, filters: LiveFilters) -> None:
        """Replace what the client wants, from the next event on."""
        self.filters = filters
        self._match = _Match(filters)

    @property
    def audience(self) -> int | None:
        """Whose view of an event this client is sent: its user's, or None for an admin."""
        return None if self.viewer.is_admin else self.viewer.user_id

    def wants(self, facts: _Facts) -> bool:
        """True when the client's filters let through an event it may see."""
        return self._match(facts)

    def seen(self, event: Event) -> Event | None:
        """What the client is sent of ``event`` if it may see it and wants it, else None."""
        viewed = event_for(event, self.audience)
        if viewed is None or not self.wants(event_facts(viewed)):
            return None
        return viewed

    def offer(self, delivery: Delivery) -> bool:
        """Queue ``delivery``; False, queueing nothing, when the queue is full."""
        if self.closed_reason is not None:
            return True
        if len(self._pending) >= self.max_queue:
            return False
        self._pending.append(delivery)
        self._wakeup.set()
        return True

    def say(self, message: dict[str, Any]) -> bool:
        """Queue a control message (hello, ping, error …); False when the queue is full."""
        return self.offer(Delivery(None, json.dumps(message, separators=(",", ":"))))

    def take(self) -> deque[Delivery]:
        """Everything queued, oldest first, leaving the queue empty."""
        taken, self._pending = self._pending, deque()
        return taken

    async def wait(self, timeout_s: float) -> bool:
        """Wait until something is queued or the client closes; False when ``timeout_s`` passed."""
        self._wakeup.clear()
        if self._pending or self.closed_reason is not None:
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await self._wakeup.wait()
        except TimeoutError:
            return False
        return True

    def close(self, reason: str) -> None:
        """Ask the connection to end with ``reason``; the first reason given wins."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self._wakeup.set()

    @property
    def queued(self) -> int:
        """How many messages wait to be sent."""
        return len(self._pending)


class LiveHub:
    """Reads the bus and offers each event to the clients of this process."""

    def __init__(
        self, bus: LiveBus, *, max_queue: int = MAX_QUEUE, heartbeat_s: float = HEARTBEAT_S
    ) -> None:
        self.bus = bus
        #: Read when a client connects, so tests and operators may change them at run time.
        self.max_queue = max_queue
        self.heartbeat_s = heartbeat_s
        self._clients: set[LiveClient] = set()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def start(self) -> None:
        """Subscribe to the bus now and fan out its events from a background task."""
        if self._task is None:
            self._task = asyncio.create_task(
                self._consume(self.bus.subscribe()), name="sigwatch-live-hub"
            )

    async def close(self) -> None:
        """Stop reading the bus and ask every client to disconnect."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._close_clients()

    def connect(
        self, viewer: Viewer, filters: LiveFilters | None = None, *, resumable: bool = False
    ) -> LiveClient:
        """A new client that receives, from now on, the events it may see and wants.

        A ``resumable`` client (SSE) is closed when the bus may have missed events, so it
        reconnects with its last event id and replays them; the others are sent a gap notice.
        """
        client = LiveClient(viewer, filters or LiveFilters(), self.max_queue, resumable=resumable)
        self._clients.add(client)
        return client

    def disconnect(self, client: LiveClient) -> None:
        """Stop offering events to ``client``."""
        self._clients.discard(client)

    @property
    def clients(self) -> int:
        """How many clients are connected."""
        return len(self._clients)

    def dispatch(self, event: Event) -> int:
        """Offer ``event`` to every client that may see it and wants it; return how many took it."""
        if event.get("type") == GAP:
            self._gap()
            return 0
        try:
            # A system alert's event has no id: it is not replayed, so it moves no Last-Event-ID.
            event_id = None if event.get("type") == SYSTEM_ALERT else int(event["id"])
        except (KeyError, TypeError, ValueError):
            log.warning("live hub skipped a malformed event", event_id=event.get("id"))
            return 0
        # Each audience (admins, or one user) sees its own version, serialised once.
        versions: dict[int | None, tuple[_Facts, Event] | None] = {}
        deliveries: dict[int | None, Delivery] = {}
        taken = 0
        slow: list[LiveClient] = []
        for client in self._clients:
            audience = client.audience
            if audience not in versions:
                versions[audience] = _version(event, audience)
            version = versions[audience]
            if version is None or not client.wants(version[0]):
                continue
            delivery = deliveries.get(audience)
            if delivery is None:
                delivery = Delivery(event_id, json.dumps(version[1], separators=(",", ":")))
                deliveries[audience] = delivery
            if client.offer(delivery):
                taken += 1
            else:
                slow.append(client)
        for client in slow:
            self.drop(client)
        return taken

    def _gap(self) -> None:
        log.info("live bus may have missed events; telling clients", clients=len(self._clients))
        slow: list[LiveClient] = []
        for client in list(self._clients):
            if client.resumable:
                self._clients.discard(client)
                client.close(MAY_HAVE_MISSED)
            elif not client.say(GAP_MESSAGE):
                slow.append(client)
        for client in slow:
            self.drop(client)

    def drop(self, client: LiveClient) -> None:
        """Disconnect ``client`` for falling behind."""
        self._clients.discard(client)
        client.too_slow = True
        client.close(TOO_SLOW.format(count=client.queued))
        self.dropped += 1
        log.warning(
            "live client dropped: too slow",
            user_id=client.viewer.user_id,
            queued=client.queued,
        )

    async def _consume(self, subscription: Any) -> None:
        try:
            async for event in subscription:
                try:
                    self.dispatch(event)
                except Exception:  # one bad event must not stop live delivery
                    log.exception("live hub failed on an event", event_id=event.get("id"))
        finally:
            self._close_clients()

    def _close_clients(self) -> None:
        for client in self._clients:
            client.close(SHUTTING_DOWN)
        self._clients.clear()
