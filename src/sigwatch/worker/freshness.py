"""The freshness checker: every few seconds, raise and clear the sources' system alerts.

Each check reads every source's facts and open alarms in one transaction, judges each source
(:func:`sigwatch.alerts.freshness.judge`), raises what newly holds and clears what no longer
does, with their notices in the outbox, then publishes the live events once committed. Any
number of workers may check at once: the storage raises an alarm and clears it exactly once
(:mod:`sigwatch.db.system_alerts`), and only the worker that did routes its notices. A check
that fails (the database away) is logged and tried again at the next tick; it never raises.

Polls feed staleness: :func:`note_newest_item` records, in a poll's transaction, the newest
item a poll with content served.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.alerts.freshness import Thresholds, held, judge, recovery
from sigwatch.alerts.system import end_system_alert, raise_system_alert
from sigwatch.db.models import SystemAlert
from sigwatch.db.system_alerts import (
    CONDITIONS,
    freshness_of_sources,
    open_alerts,
    record_newest_item,
    see_open_alerts,
)
from sigwatch.db.types import utcnow
from sigwatch.live.bus import Event, LiveBus
from sigwatch.live.events import publish_system_alert_events, system_alert_event
from sigwatch.observability.metrics import SYSTEM_ALERTS_OPEN
from sigwatch.sources.base import CollectedPost

log = structlog.get_logger(__name__)

#: The fields of a system alert as the API and live events show it.
SYSTEM_ALERT_FIELDS = (
    "id",
    "source_id",
    "owner_id",
    "condition",
    "state",
    "reason",
    "detail",
    "opened_at",
    "last_seen_at",
    "cleared_at",
    "clear_reason",
)


def system_alert_json(alert: SystemAlert, source_name: str) -> dict[str, object]:
    """A system alert as ``GET /api/v1/system-alerts`` returns it, JSON-ready."""
    shown = {name: getattr(alert, name) for name in SYSTEM_ALERT_FIELDS}
    shown["source_name"] = source_name
    result: dict[str, object] = to_jsonable_python(shown)
    return result


def newest_item(posts: Sequence[CollectedPost]) -> CollectedPost | None:
    """The newest of a poll's items: the latest published, else the first the source listed."""
    if not posts:
        return None
    dated = [(post.published_at, post) for post in posts if post.published_at is not None]
    return max(dated, key=lambda pair: pair[0])[1] if dated else posts[0]


def item_fingerprint(item: CollectedPost) -> str:
    """A hash of what makes an item the same item: its id, title, text and link."""
    parts = (item.external_id, item.title or "", item.text or "", item.url or "")
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


async def note_newest_item(
    session: AsyncSession, source_id: int, posts: Sequence[CollectedPost], *, now: datetime
) -> None:
    """Record the newest item of a successful poll with content (none for a 304 or no items)."""
    newest = newest_item(posts)
    if newest is None:
        return
    await record_newest_item(session, source_id, item_fingerprint(newest), now=now)


@dataclass(slots=True)
class CheckResult:
    """What one check did: the alarms it raised and those it cleared."""

    raised: list[SystemAlert] = field(default_factory=list)
    cleared: list[SystemAlert] = field(default_factory=list)


class FreshnessChecker:
    """Checks every source's freshness each ``interval_s`` until stopped; never raises."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        thresholds: Thresholds,
        *,
        interval_s: float,
        bus: LiveBus | None = None,
        on_notice: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._thresholds = thresholds
        self._interval_s = interval_s
        self._bus = bus
        self._on_notice = on_notice

    async def run(self, stop: asyncio.Event) -> None:
        """Check now, then every ``interval_s``, until ``stop`` is set (0: never check)."""
        if self._interval_s <= 0:
            return
        while not stop.is_set():
            try:
                await self.check()
            except Exception as exc:  # the database may be restarting: try at the next tick
                log.warning("freshness check failed", error=str(exc))
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
            except TimeoutError:
                pass

    async def check(self, now: datetime | None = None) -> CheckResult:
        """Judge every source once: raise, keep or clear its alarms, and queue their notices."""
        now = now or utcnow()
        result = CheckResult()
        names: dict[int, tuple[str, int | None]] = {}
        async with self._sessions.begin() as session:
            sources = await freshness_of_sources(session)
            opened = await open_alerts(session)
            still: list[int] = []
            for source in sources:
                names[source.id] = (source.name, source.owner_id)
                found = judge(source, self._thresholds, now)
                undecided = held(source, found)
                for condition in CONDITIONS:
                    existing = opened.get((source.id, condition))
                    finding = found.get(condition)
                    if existing is not None and (finding is not None or condition in undecided):
                        still.append(existing.id)
                    elif finding is not None:
                        raised = await raise_system_alert(
                            session,
                            source_id=source.id,
                            owner_id=source.owner_id,
                            finding=finding,
                            now=now,
                        )
                        if raised is not None:
                            result.raised.append(raised)
                    elif existing is not None:
                        cleared = await end_system_alert(
                            session,
                            existing.id,
                            reason=recovery(condition, source, existing.opened_at, existing.detail),
                            now=now,
                        )
                        if cleared is not None:
                            result.cleared.append(cleared)
            await see_open_alerts(session, still, now)
            open_now = [
                *(opened[key].condition for key in opened),
                *(a.condition for a in result.raised),
            ]
            for alert in result.cleared:
                open_now.remove(alert.condition)
        for condition in CONDITIONS:
            SYSTEM_ALERTS_OPEN.labels(condition).set(open_now.count(condition))
        for alert in result.raised:
            log.warning(
                "system alert raised",
                system_alert_id=alert.id,
                source_id=alert.source_id,
                condition=alert.condition,
                reason=alert.reason,
            )
        for alert in result.cleared:
            log.info(
                "system alert cleared",
                system_alert_id=alert.id,
                source_id=alert.source_id,
                condition=alert.condition,
                reason=alert.clear_reason,
            )
        changed = result.raised + result.cleared
        if changed:
            if self._on_notice is not None:
                self._on_notice()
            if self._bus is not None:
                events: list[Event] = [
                    system_alert_event(
                        system_alert_json(alert, names.get(alert.source_id, ("", None))[0]),
                        owner_id=names.get(alert.source_id, ("", alert.owner_id))[1],
                        at=alert.cleared_at or alert.opened_at,
                    )
                    for alert in changed
                ]
                await publish_system_alert_events(self._bus, events)
        return result
