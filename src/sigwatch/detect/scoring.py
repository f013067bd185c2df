"""Explainable confidence and urgency.

A detection's confidence is the sum of its features' contributions, clipped to [0, 1]; the
features dictionary keeps each contribution, so the sum can be read back. The features:

- ``keyword``: the tier of the best event keyword (``events.TIER_WEIGHTS``), or for a trade call
  the completeness of its grammar;
- ``entity_match``: how surely the words name the entity (0..1) times ``ENTITY_WEIGHT``;
- ``proximity``: entity and keyword side by side earn most, far apart cost;
- ``own_account``: the author is the entity's own account or site;
- ``cashtag``: the entity is written as $SYMBOL or #TAG;
- ``event_time``: a concrete date or time is given for the event;
- ``announcement``: announcement wording ("will", "announces", "introducing", "is live" …);
- negative ones: ``negation``, ``rumour``, ``request``, ``commentary``, ``past``, ``price``,
  ``unscheduled``, ``scam`` (the general cues of ``rules.CUES``), ``question``, ``cancel`` (the
  event's own cancelling phrases) and ``role`` (the entity is the venue or the recipient, not the
  subject).

Urgency comes from the resolved event time relative to the publication time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from sigwatch.detect.timeexpr import TimeExpression

ENTITY_WEIGHT: Final = 0.25
OWN_ACCOUNT: Final = 0.10
CASHTAG: Final = 0.03
EVENT_TIME: Final = 0.06
ANNOUNCEMENT: Final = 0.08
QUESTION: Final = -0.6
CANCEL: Final = -0.6
ROLE: Final = -0.15
BORROWED_SUBJECT: Final = -0.06
FAR_APART: Final = -0.08


def proximity(distance: int) -> float:
    """The contribution of entity and keyword being ``distance`` words apart (0 = adjacent)."""
    if distance <= 1:
        return 0.1
    if distance <= 4:
        return 0.07
    if distance <= 8:
        return 0.03
    if distance <= 15:
        return 0.0
    return FAR_APART


def confidence(features: Mapping[str, float]) -> float:
    """The sum of the contributions, clipped to [0, 1] and rounded to three places."""
    return round(min(1.0, max(0.0, sum(features.values()))), 3)


def urgency(event_time: TimeExpression | None, published: datetime | None, *, live: bool) -> str:
    """critical / high / medium / low from how soon the event is after publication.

    Live now (unless a later time is given), or within the hour (or started less than a day
    ago): critical; within 24 hours: high; within 7 days: medium; later, or long past: low.
    Without a resolvable time the urgency is medium, since an announcement without a date
    usually takes effect within days.
    """
    if published is not None and published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    # "Goes live tomorrow at 14:00" is live language about a later time: the time wins.
    later = (
        event_time is not None
        and published is not None
        and event_time.when > published + timedelta(hours=1)
    )
    if live and not later:
        return "critical"
    if event_time is None or published is None:
        return "medium"
    start, end = event_time.when, event_time.until
    if end < published - timedelta(days=1):
        return "low"
    if start <= published + timedelta(hours=1):
        if start == end:
            return "critical"
        remaining = end - published
    else:
        remaining = start - published
    if remaining <= timedelta(hours=1):
        return "critical"
    if remaining <= timedelta(hours=24):
        return "high"
    if remaining <= timedelta(days=7):
        return "medium"
    return "low"
