"""Backtest: replay archived posts through the rules and report what would have alerted.

Nothing is stored or sent. Detections are folded into stories in memory with the same rules as
the live pipeline (same entity and event within the story window, or a near-duplicate text).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sigwatch.alerts.record import Detector, post_input
from sigwatch.alerts.stories import (
    NEAR_DUPLICATE_WINDOW,
    STORY_WINDOW,
    corroborated_confidence,
    is_near_duplicate,
    simhash_hex,
)
from sigwatch.db.models import Post
from sigwatch.detect import detect
from sigwatch.detect.detector import analysed_text


@dataclass
class BacktestAlert:
    """A story the rules would have raised, with its first evidence."""

    entity: str
    event: str
    first_evidence_at: datetime
    first_post_id: int
    first_source_id: int
    title: str
    last_evidence_at: datetime
    best_per_source: dict[int, float] = field(default_factory=dict)
    fingerprints: list[str] = field(default_factory=list)
    evidence: int = 0

    @property
    def confidence(self) -> float:
        """The story's corroborated confidence."""
        return corroborated_confidence(self.best_per_source.values())


@dataclass
class BacktestReport:
    """What would have alerted: the alerts, and counts per event and per entity."""

    posts: int
    alerts: list[BacktestAlert]

    @property
    def per_event(self) -> Counter[str]:
        """Alerts per event type."""
        return Counter(alert.event for alert in self.alerts)

    @property
    def per_entity(self) -> Counter[str]:
        """Alerts per entity."""
        return Counter(alert.entity for alert in self.alerts)


@dataclass(frozen=True, slots=True)
class _Hit:
    at: datetime
    post: Post
    entity: str
    event: str
    confidence: float
    fingerprint: str


async def run_backtest(
    posts: AsyncIterator[Post],
    detector: Detector,
    *,
    min_confidence: float,
    on_progress: Callable[[int], None] | None = None,
) -> BacktestReport:
    """Detect over every post, then fold the detections into stories in time order."""
    hits: list[_Hit] = []
    seen = 0
    async for post in posts:
        seen += 1
        given = post_input(post)
        fingerprint: str | None = None
        for detection in detect(given, detector.index):
            if detection.confidence < detector.index.threshold(detection.event, min_confidence):
                continue
            fingerprint = fingerprint or simhash_hex(analysed_text(given))
            at = post.published_at or post.collected_at
            hits.append(
                _Hit(at, post, detection.entity, detection.event, detection.confidence, fingerprint)
            )
        if on_progress is not None and seen % 500 == 0:
            on_progress(seen)
    if on_progress is not None:
        on_progress(seen)
    return BacktestReport(posts=seen, alerts=_fold(sorted(hits, key=lambda hit: hit.at)))


def _fold(hits: list[_Hit]) -> list[BacktestAlert]:
    alerts: list[BacktestAlert] = []
    open_by_key: dict[tuple[str, str], list[BacktestAlert]] = {}
    for hit in hits:
        candidates = open_by_key.setdefault((hit.entity, hit.event), [])
        story = next(
            (a for a in reversed(candidates) if hit.at <= a.last_evidence_at + STORY_WINDOW),
            None,
        ) or next(
            (
                a
                for a in reversed(candidates)
                if hit.at <= a.last_evidence_at + NEAR_DUPLICATE_WINDOW
                and is_near_duplicate(hit.fingerprint, a.fingerprints)
            ),
            None,
        )
        if story is None:
            story = BacktestAlert(
                entity=hit.entity,
                event=hit.event,
                first_evidence_at=hit.at,
                first_post_id=hit.post.id,
                first_source_id=hit.post.source_id,
                title=hit.post.title or hit.post.text[:200],
                last_evidence_at=hit.at,
            )
            candidates.append(story)
            alerts.append(story)
        story.evidence += 1
        story.last_evidence_at = max(story.last_evidence_at, hit.at)
        story.fingerprints.append(hit.fingerprint)
        source = hit.post.source_id
        story.best_per_source[source] = max(story.best_per_source.get(source, 0.0), hit.confidence)
    return alerts
