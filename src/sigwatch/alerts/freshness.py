"""Freshness: judging from what a source has learned whether it is silent, stale or failing.

Pure functions of a source's facts (:class:`~sigwatch.db.system_alerts.SourceFreshness`), its
thresholds and the time; :mod:`sigwatch.worker.freshness` reads the facts and raises or clears
the system alerts. The three conditions:

- **silent**: no new post for ``silence_factor`` times the source's usual gap between posts
  (``post_gap_s``), and never before ``silence_min_s``. Silence is measured from the newest new
  post, or from when the source was added if that is later, and judged only once the gap has
  been learned from ``silence_min_samples`` gaps and while the polls succeed: a brand-new or
  rarely-posting source is not flagged, and a failing one is failing, not silent.
- **stale**: the newest item served (its id and content) has not changed over
  ``stale_after_polls`` successful polls in a row that returned content, and for at least
  ``stale_after_s`` (and ``silence_factor`` usual gaps, when a gap is known). A 304 "not
  modified" is the server honestly saying nothing changed: it neither counts nor resets.
- **failing**: ``failing_after`` failed polls in a row, or failing for longer than
  ``failing_after_s`` since the last success (or since the source was added), or paused by a
  permanent error (disabled by the worker after a failure).

A source that is disabled (not after failing) or removed has every alarm cleared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from sigwatch.config import Settings
from sigwatch.db.system_alerts import SourceFreshness
from sigwatch.errors import InvalidInput


class FreshnessOverrides(BaseModel):
    """A source's own thresholds; a field left out (or null) takes the setting's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = Field(None, description="False: no freshness alarms for this source.")
    silence_factor: float | None = Field(
        None, ge=1, le=1000, description="Usual gaps without a new post that make it silent."
    )
    silence_min_s: int | None = Field(
        None, ge=0, le=366 * 86400, description="Shortest silence that raises an alarm."
    )
    silence_min_samples: int | None = Field(
        None, ge=1, le=10_000, description="Gaps learned before silence is judged."
    )
    stale_after_polls: int | None = Field(
        None, ge=1, le=1_000_000, description="Polls serving the same newest item: stale."
    )
    stale_after_s: int | None = Field(
        None, ge=0, le=366 * 86400, description="Shortest time unchanged to be stale."
    )
    failing_after: int | None = Field(
        None, ge=1, le=1_000_000, description="Failed polls in a row: failing."
    )
    failing_after_s: int | None = Field(
        None, ge=0, le=366 * 86400, description="Failing for longer than this: failing."
    )


def clean_freshness(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The overrides as stored (only the fields given), or None; InvalidInput naming a field."""
    if value is None:
        return None
    from pydantic import ValidationError

    try:
        overrides = FreshnessOverrides.model_validate(dict(value))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidInput(f"freshness.{where}" if where else "freshness", error["msg"]) from None
    cleaned = overrides.model_dump(exclude_none=True)
    return cleaned or None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a source is silent, stale or failing (see the module's docstring)."""

    silence_factor: float = 4.0
    silence_min_s: float = 3600.0
    silence_min_samples: int = 3
    stale_after_polls: int = 10
    stale_after_s: float = 86400.0
    failing_after: int = 5
    failing_after_s: float = 3600.0
    enabled: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The thresholds the settings give every source."""
        return cls(
            silence_factor=settings.silence_factor,
            silence_min_s=settings.silence_min_s,
            silence_min_samples=settings.silence_min_samples,
            stale_after_polls=settings.stale_after_polls,
            stale_after_s=settings.stale_after_s,
            failing_after=settings.failing_after,
            failing_after_s=settings.failing_after_s,
        )

    def for_source(self, overrides: Mapping[str, Any] | None) -> Thresholds:
        """These thresholds with a source's stored overrides applied (unknown keys ignored)."""
        if not overrides:
            return self
        names = {field.name for field in fields(self)}
        given = {k: v for k, v in overrides.items() if k in names and v is not None}
        return replace(self, **given) if given else self


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition that holds, with why in words and the numbers that decided it."""

    condition: str
    reason: str
    detail: dict[str, Any]


def _span(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable: 45s, 12m, 3.5h, 2.0d."""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def judge(source: SourceFreshness, thresholds: Thresholds, now: datetime) -> dict[str, Finding]:
    """The conditions that hold for ``source`` at ``now``, by name (none for a quiet mind)."""
    limits = thresholds.for_source(source.freshness)
    if not limits.enabled or source.deleted:
        return {}
    paused = not source.enabled and source.consecutive_failures > 0
    if not source.enabled and not paused:
        return {}
    found: dict[str, Finding] = {}
    failing = _failing(source, limits, now, paused)
    if failing is not None:
        found[failing.condition] = failing
    if source.enabled and source.consecutive_failures == 0 and source.last_success_at:
        for finding in (_silent(source, limits, now), _stale(source, limits, now)):
            if finding is not None:
                found[finding.condition] = finding
    return found


def held(source: SourceFreshness, found: Mapping[str, Finding]) -> frozenset[str]:
    """Conditions that cannot be judged now and keep whatever state they have.

    A source that failed a few times, not yet enough to be failing, cannot tell whether it is
    silent or stale: an open alarm of either stays open rather than clearing on one transient
    failure and being raised again at the next success.
    """
    if source.enabled and not source.deleted and source.consecutive_failures > 0:
        if "failing" not in found:
            return frozenset({"silent", "stale"})
    return frozenset()


def _failing(
    source: SourceFreshness, limits: Thresholds, now: datetime, paused: bool
) -> Finding | None:
    failures = source.consecutive_failures
    if failures <= 0:
        return None
    since = source.last_success_at or source.created_at
    failing_for = (now - since).total_seconds()
    error = source.last_error or "unknown error"
    detail = {
        "consecutive_failures": failures,
        "failing_for_s": round(failing_for, 1),
        "failing_after": limits.failing_after,
        "failing_after_s": limits.failing_after_s,
        "last_error": error,
    }
    if paused:
        return Finding("failing", f"paused after a permanent failure: {error}", detail)
    if failures >= limits.failing_after:
        return Finding("failing", f"{failures} failed polls in a row; last: {error}", detail)
    if failing_for >= limits.failing_after_s:
        return Finding(
            "failing",
            f"failing for {_span(failing_for)} ({failures} polls in a row); last: {error}",
            detail,
        )
    return None


def silence_limit_s(source: SourceFreshness, limits: Thresholds) -> float | None:
    """How long the source may go without a new post, or None while its gap is unlearned."""
    if source.post_gap_s is None or source.post_gap_samples < limits.silence_min_samples:
        return None
    return max(limits.silence_min_s, limits.silence_factor * source.post_gap_s)


def _silent(source: SourceFreshness, limits: Thresholds, now: datetime) -> Finding | None:
    limit = silence_limit_s(source, limits)
    if limit is None or source.last_new_post_at is None:
        return None
    since = max(source.last_new_post_at, source.created_at)
    quiet_for = (now - since).total_seconds()
    if quiet_for < limit:
        return None
    assert source.post_gap_s is not None
    return Finding(
        "silent",
        f"no new post for {_span(quiet_for)}; it usually posts every "
        f"{_span(source.post_gap_s)} (alarm after {_span(limit)})",
        {
            "quiet_for_s": round(quiet_for, 1),
            "post_gap_s": source.post_gap_s,
            "limit_s": limit,
            "last_new_post_at": source.last_new_post_at.isoformat(),
        },
    )


def _stale(source: SourceFreshness, limits: Thresholds, now: datetime) -> Finding | None:
    if source.newest_changed_at is None or source.unchanged_polls < limits.stale_after_polls:
        return None
    limit = limits.stale_after_s
    if source.post_gap_s is not None:
        limit = max(limit, limits.silence_factor * source.post_gap_s)
    unchanged_for = (now - source.newest_changed_at).total_seconds()
    if unchanged_for < limit:
        return None
    return Finding(
        "stale",
        f"the newest item has not changed over {source.unchanged_polls} successful polls "
        f"({_span(unchanged_for)}) though each returned content",
        {
            "unchanged_polls": source.unchanged_polls,
            "unchanged_for_s": round(unchanged_for, 1),
            "stale_after_polls": limits.stale_after_polls,
            "limit_s": limit,
        },
    )


def recovery(
    condition: str,
    source: SourceFreshness,
    opened_at: datetime,
    detail: Mapping[str, Any] | None = None,
) -> str:
    """Why an alarm of ``condition`` raised at ``opened_at`` no longer holds, in words.

    ``detail`` is the alarm's: a silence is over when the newest new post is another one.
    """
    if source.deleted:
        return "the source was removed"
    if not source.enabled and source.consecutive_failures == 0:
        return "the source was disabled"
    if not Thresholds().for_source(source.freshness).enabled:
        return "freshness alarms were turned off for the source"
    if condition == "failing" and source.consecutive_failures == 0:
        return "the source polled successfully again"
    if condition in ("silent", "stale") and source.consecutive_failures > 0:
        return "the source is failing instead"
    newest = source.last_new_post_at
    if (
        condition == "silent"
        and newest
        and newest.isoformat() != (detail or {}).get("last_new_post_at", newest.isoformat())
    ):
        return "the source has a new post"
    if condition == "stale" and source.newest_changed_at and source.newest_changed_at > opened_at:
        return "the newest item changed"
    return "no longer past its threshold"
