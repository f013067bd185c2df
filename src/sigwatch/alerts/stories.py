"""Story clustering, pure: near-duplicate fingerprints and corroborated confidence.

A story is one (entity, event) seen in one or more posts. Posts join a story when they are about
the same entity and event within ``STORY_WINDOW``, or when their text is a near duplicate
(SimHash within ``NEAR_DUPLICATE_BITS``) of the story's evidence within ``NEAR_DUPLICATE_WINDOW``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Evidence of one entity and event this close in time is one story.
STORY_WINDOW = timedelta(hours=72)
#: A near-duplicate text joins the story even later (reposts, syndication, follow-ups).
NEAR_DUPLICATE_WINDOW = timedelta(days=14)
#: Two 64-bit SimHashes this close are the same text, give or take a few words.
NEAR_DUPLICATE_BITS = 6
#: Corroborated confidence never claims certainty.
MAX_CONFIDENCE = 0.99

_TOKEN = re.compile(r"[^\W_]+")


def simhash(text: str) -> int:
    """A 64-bit SimHash of the text's word 3-shingles (words for very short texts)."""
    words = _TOKEN.findall(text.casefold())
    if len(words) >= 3:
        features = [" ".join(words[i : i + 3]) for i in range(len(words) - 2)]
    else:
        features = words or [text]
    # Each feature's hash as 64 binary digits, most significant first: a bit of the SimHash is
    # set when more than half the features have it, counted a column at a time at C speed.
    digits = [
        f"{int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest()):064b}"
        for feature in features
    ]
    half = len(digits) / 2
    columns = zip(*digits, strict=True)
    return int("".join("1" if column.count("1") > half else "0" for column in columns), 2)


def simhash_hex(text: str) -> str:
    """The SimHash as 16 hex digits, as stored."""
    return f"{simhash(text):016x}"


def hamming(a: str, b: str) -> int:
    """Bits that differ between two stored SimHashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def is_near_duplicate(fingerprint: str, others: Iterable[str]) -> bool:
    """True when ``fingerprint`` is within NEAR_DUPLICATE_BITS of any of ``others``."""
    return any(hamming(fingerprint, other) <= NEAR_DUPLICATE_BITS for other in others)


def corroborated_confidence(best_per_source: Iterable[float]) -> float:
    """Confidence of a story from independent sources: 1 - prod(1 - c), one best c per source.

    Evidence from the same source is not independent, so only its strongest detection counts;
    what one source is (an origin: the same feed added twice is one) is the caller's to say.
    """
    doubt = 1.0
    for confidence in best_per_source:
        doubt *= 1.0 - min(max(confidence, 0.0), 1.0)
    return round(min(MAX_CONFIDENCE, 1.0 - doubt), 4)


URGENCY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def most_urgent(a: str, b: str) -> str:
    """The more urgent of two urgency levels."""
    return a if URGENCY_ORDER.get(a, 0) >= URGENCY_ORDER.get(b, 0) else b


@dataclass(frozen=True, slots=True)
class EvidenceFacts:
    """What a story's summary reads of one piece of its evidence."""

    source_id: int
    #: What the source reads (a feed's normalised address): copies of one feed are one origin.
    origin: str
    published_at: datetime
    confidence: float
    urgency: str
    event_time: datetime | None


@dataclass(frozen=True, slots=True)
class StorySummary:
    """A story as some evidence tells it: confidence, urgency, first source, lead time, counts."""

    confidence: float
    urgency: str
    event_time: datetime | None
    first_source_id: int
    first_seen_at: datetime
    last_evidence_at: datetime
    lead_time_s: float | None
    source_count: int
    evidence_count: int


def summarise_story(evidence: Sequence[EvidenceFacts]) -> StorySummary:
    """Summarise a non-empty story from its evidence, earliest first.

    The same function serves the whole story and each user's view of it (their evidence only),
    so a view can never say more than the posts its user may see. Sources are counted by
    origin: the same feed added by two users (or twice) corroborates nothing, it is one source.
    """
    best: dict[str, float] = {}
    first_seen: dict[str, tuple[datetime, int]] = {}
    for item in evidence:
        best[item.origin] = max(best.get(item.origin, 0.0), item.confidence)
        first_seen.setdefault(item.origin, (item.published_at, item.source_id))
    order = sorted(first_seen.values())
    urgency = evidence[0].urgency
    for item in evidence[1:]:
        urgency = most_urgent(urgency, item.urgency)
    return StorySummary(
        confidence=corroborated_confidence(best.values()),
        urgency=urgency,
        event_time=next((item.event_time for item in evidence if item.event_time), None),
        first_source_id=order[0][1],
        first_seen_at=order[0][0],
        last_evidence_at=max(item.published_at for item in evidence),
        lead_time_s=(order[1][0] - order[0][0]).total_seconds() if len(order) > 1 else None,
        source_count=len(best),
        evidence_count=len(evidence),
    )
