"""From newly stored posts to alerts: each post's sentiment, detection, folding into stories."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.alerts.lifecycle import AlertChange, DetectionRecord, record_detections
from sigwatch.alerts.stories import simhash_hex
from sigwatch.config import Settings
from sigwatch.db.alerts import lock_stories, source_owner_ids
from sigwatch.db.models import Post
from sigwatch.db.posts import NewPost, StoredPost
from sigwatch.detect import DEFAULT_MIN_CONFIDENCE, Detection, DetectionIndex, PostInput, detect
from sigwatch.detect.detector import analysed_text
from sigwatch.detect.sentiment import sentiment_score
from sigwatch.observability.metrics import ALERTS

#: Title of an alert when its first post has none: the start of the text.
TITLE_CHARS = 200


def alert_threshold(settings: Settings) -> float:
    """The confidence a detection needs to alert: the setting, or the detector's default."""
    if settings.alert_min_confidence is not None:
        return settings.alert_min_confidence
    return DEFAULT_MIN_CONFIDENCE


@dataclass(frozen=True, slots=True)
class Detector:
    """A compiled watchlist and the row id of each entity, for recording detections."""

    index: DetectionIndex
    entity_ids: Mapping[str, int]


def post_input(post: Post | StoredPost, source_name: str | None = None) -> PostInput:
    """What the detector reads of a stored post."""
    return PostInput(
        id=str(post.id),
        text=post.text,
        title=post.title,
        author=post.author,
        source=source_name,
        published=post.published_at,
        url=post.url,
    )


def post_sentiment(post: NewPost) -> float:
    """The sentiment a post is stored with: VADER's score of the text detection reads."""
    return sentiment_score(analysed_text(PostInput(id="", text=post.text, title=post.title)))


def _title(post: StoredPost) -> str:
    if post.title:
        return post.title
    text = " ".join(post.text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def _record(
    post: StoredPost,
    owner_id: int | None,
    detection: Detection,
    detector: Detector,
    text: str,
) -> DetectionRecord:
    return DetectionRecord(
        post=post,
        owner_id=owner_id,
        entity=detection.entity,
        entity_id=detector.entity_ids.get(detection.entity),
        event=detection.event,
        confidence=detection.confidence,
        urgency=detection.urgency,
        event_time=detection.event_time,
        title=_title(post),
        features=dict(detection.features),
        spans=[dataclasses.asdict(span) for span in detection.spans],
        trade=dataclasses.asdict(detection.trade) if detection.trade else None,
        simhash=simhash_hex(text),
    )


async def detect_and_record(
    session: AsyncSession,
    posts: Sequence[StoredPost],
    detector: Detector,
    *,
    min_confidence: float,
    source_name: str | None = None,
) -> list[AlertChange]:
    """Detect the events of each post and fold those that pass into stories.

    The posts are the new ones of a batch just stored (:attr:`StoreResult.new_posts`), stored
    with their sentiment (``store_posts(..., sentiment=post_sentiment)``); their sources' owners
    are read once.
    """
    records: list[DetectionRecord] = []
    owners: dict[int, int | None] | None = None
    for post in posts:
        given = post_input(post, source_name)
        text = analysed_text(given)
        detections = detect(given, detector.index)
        for detection in detections:
            if detection.confidence >= detector.index.threshold(detection.event, min_confidence):
                if owners is None:
                    owners = await source_owner_ids(session, {p.source_id for p in posts})
                owner_id = owners.get(post.source_id)
                records.append(_record(post, owner_id, detection, detector, text))
    # Concurrent polls may report the same story; lock each story, in one order, before looking.
    await lock_stories(session, {(record.entity, record.event) for record in records})
    changes = await record_detections(session, records)
    for change in changes:
        ALERTS.labels(change.alert.event, change.kind).inc()
    return changes
