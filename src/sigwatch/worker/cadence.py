"""Adaptive polling: how often a source posts, and how long to wait before polling it again.

Pure: no database, no network, no clock read (the caller passes ``now`` and the random draw).

What is learnt (:func:`learn_post_rate`): each post a poll (or a push) stores for the first time
has a moment, its published time, or the time it was collected when it has none or claims a
later one. The gaps between consecutive moments make an exponentially weighted mean, the
source's usual gap (``post_gap_s``); the newest moment is ``last_new_post_at``. Posts of one
poll that share a moment (undated items seen together) count as one arrival, and a moment
older than the newest one seen (a re-dated or late item) says nothing of the rate.

What is chosen (:func:`choose_interval`): a source's ``poll_interval_s`` is its *maximum*
interval, the longest it ever waits (what the user promised to look at least that often); its
kind's minimum interval (``SIGWATCH_MIN_POLL_INTERVAL_<KIND>_S``, the fast lane: 1 s for
``json`` and ``web``) is its minimum, which nothing goes below. In between::

    interval = clamp(max(usual gap, silence so far) × ADAPTIVE_GAP_SHARE, minimum, maximum)

so a source posting every ~4 minutes is polled every minute, and one that posts daily (or has
been silent for longer than it usually is) at its own interval. Until a few gaps are known
(:data:`MIN_GAP_SAMPLES`) the source is polled at its own interval. The platform's own wait (a
rate limit's reset) and WebSub's slow fallback poll only ever lengthen the wait
(:func:`at_least`). Each chosen interval is spread by a random share
(``SIGWATCH_POLL_JITTER_SHARE``, :func:`jittered`) so sources added together do not poll in
step, without leaving [minimum, maximum].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sigwatch.config import Settings
from sigwatch.db.schedule import PostRate

#: Weight of the newest gap in the usual gap: about the last five gaps count.
GAP_WEIGHT = 0.3
#: Gaps known before the usual gap moves the interval; fewer say little of a rate.
MIN_GAP_SAMPLES = 3


def _default_minimum(kind: str) -> int:
    return Settings.model_construct().min_poll_interval_of(kind)


@dataclass(frozen=True, slots=True)
class CadencePolicy:
    """How next polls are chosen: adaptive or fixed, the share of the usual gap between polls,
    the jitter, and each kind's minimum interval."""

    adaptive: bool = True
    gap_share: float = 0.25
    jitter_share: float = 0.1
    minimum_of: Callable[[str], int] = _default_minimum

    @classmethod
    def from_settings(cls, settings: Settings) -> CadencePolicy:
        """The policy the settings ask for (``SIGWATCH_ADAPTIVE_POLLING`` …)."""
        return cls(
            adaptive=settings.adaptive_polling,
            gap_share=settings.adaptive_gap_share,
            jitter_share=settings.poll_jitter_share,
            minimum_of=settings.min_poll_interval_of,
        )


@dataclass(frozen=True, slots=True)
class NextPoll:
    """The wait chosen before a source's next poll (jitter not yet applied), the bounds jitter
    keeps to, and why, in words."""

    interval_s: float
    reason: str
    floor_s: float
    ceiling_s: float


def learn_post_rate(rate: PostRate, published: Sequence[datetime], now: datetime) -> PostRate:
    """``rate`` updated with the new posts published at ``published`` (each capped at ``now``,
    the time they were collected)."""
    gap_s, samples, last = rate.gap_s, rate.samples, rate.last_new_post_at
    for moment in sorted({min(moment, now) for moment in published}):
        if last is not None:
            if moment <= last:
                continue
            gap = (moment - last).total_seconds()
            gap_s = gap if gap_s is None else gap_s + GAP_WEIGHT * (gap - gap_s)
            samples += 1
        last = moment
    return PostRate(gap_s=gap_s, samples=samples, last_new_post_at=last)


def choose_interval(
    policy: CadencePolicy, *, kind: str, poll_interval_s: float, rate: PostRate, now: datetime
) -> NextPoll:
    """The interval before the next poll of a source of ``kind`` that posts at ``rate``, between
    its kind's minimum and its own ``poll_interval_s``."""
    minimum = float(policy.minimum_of(kind))
    # An interval stored before its kind's minimum was raised is raised with it.
    maximum = max(float(poll_interval_s), minimum)

    def bounded(seconds: float, why: str) -> NextPoll:
        seconds = min(max(seconds, minimum), maximum)
        if seconds <= minimum:
            bound = f" (the {kind} minimum)"
        elif seconds >= maximum:
            bound = " (the source's poll_interval_s)"
        else:
            bound = ""
        reason = f"{why} → {format_interval(seconds)}{bound}"
        return NextPoll(seconds, reason, floor_s=minimum, ceiling_s=maximum)

    if not policy.adaptive:
        return bounded(maximum, "fixed: adaptive polling is off")
    if rate.gap_s is None or rate.samples < MIN_GAP_SAMPLES:
        seen = f"{rate.samples} gap{'' if rate.samples == 1 else 's'}"
        return bounded(maximum, f"learning: {seen} between new posts seen so far")
    silence = (now - rate.last_new_post_at).total_seconds() if rate.last_new_post_at else 0.0
    if silence > rate.gap_s:
        why = (
            f"quiet: no new post for {format_duration(silence)}, "
            f"usually every {format_duration(rate.gap_s)}"
        )
        return bounded(silence * policy.gap_share, why)
    why = f"adaptive: new posts every {format_duration(rate.gap_s)}"
    return bounded(rate.gap_s * policy.gap_share, why)


def at_least(chosen: NextPoll, seconds: float, why: str) -> NextPoll:
    """``chosen``, or a wait of ``seconds`` when that is longer (and jitter never shortens it)."""
    if seconds <= chosen.interval_s:
        return chosen
    return NextPoll(
        seconds, f"{why} → {format_interval(seconds)}", floor_s=seconds, ceiling_s=math.inf
    )


def jittered(chosen: NextPoll, share: float, draw: float) -> float:
    """The wait of ``chosen`` spread by ``share`` of it, ``draw`` (from -1 to 1) saying where;
    never outside the chosen bounds."""
    spread = chosen.interval_s * (1 + share * max(-1.0, min(1.0, draw)))
    return min(max(spread, chosen.floor_s), max(chosen.ceiling_s, chosen.interval_s))


def format_duration(seconds: float) -> str:
    """About how long ``seconds`` is, in the largest unit that fits: ~40 s, ~4 min, ~3 h, ~2 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"~{round(seconds / size)} {unit}"
    return f"~{max(1, round(seconds))} s"


def format_interval(seconds: float) -> str:
    """An interval as the health shows it: ``1 s``, ``2.5 s``, ``60 s``, ``30 min``."""
    if seconds < 10:
        return f"{round(seconds, 1):g} s"
    if seconds < 600 or seconds % 60:
        return f"{round(seconds)} s"
    if seconds < 7200 or seconds % 3600:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"
