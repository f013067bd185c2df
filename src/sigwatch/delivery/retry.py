"""When the outbox tries a failed delivery again, and when it gives up.

Exponential backoff with full jitter (a random delay between zero and the exponential ceiling),
so many deliveries failing together against one receiver do not retry in lockstep. A receiver's
own Retry-After is a floor: sigwatch never comes back sooner than it was asked to.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sigwatch.net.retry_after import MAX_HONOURED_WAIT_S

MAX_ATTEMPTS = 8
"""Attempts made before a delivery goes to the dead letters.

With the default ``base_s`` of 2 s the seven waits between them add up to at most 254 s (half
that on average); a longer outage of the receiver needs a larger ``base_s`` or more attempts.
"""

MAX_RETRY_AFTER_S = MAX_HONOURED_WAIT_S
"""The longest Retry-After honoured (a day, as for polls); a receiver asking more waits a day."""

# 2**62 seconds already dwarfs any cap; stopping the exponent here keeps the float finite.
_MAX_EXPONENT = 62


def _full_jitter(ceiling_s: float) -> float:
    return random.uniform(0.0, ceiling_s)


def next_attempt_delay_s(
    attempt: int,
    retry_after_s: float | None = None,
    *,
    base_s: float = 2.0,
    cap_s: float = 3600.0,
    jitter: Callable[[float], float] = _full_jitter,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first failure).

    The ceiling doubles with each attempt from ``base_s`` up to ``cap_s``; ``jitter`` picks the
    delay below it (uniformly at random by default); ``retry_after_s`` raises the result to at
    least the receiver's ask, itself bounded by :data:`MAX_RETRY_AFTER_S`.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts failed attempts from 1, got {attempt}")
    if base_s <= 0 or cap_s < base_s:
        raise ValueError(f"need 0 < base_s <= cap_s, got base_s={base_s} cap_s={cap_s}")
    ceiling_s = min(cap_s, base_s * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    delay_s = min(max(jitter(ceiling_s), 0.0), ceiling_s)
    if retry_after_s is not None and retry_after_s > 0:
        delay_s = max(delay_s, min(retry_after_s, MAX_RETRY_AFTER_S))
    return delay_s


def is_exhausted(attempt: int, max_attempts: int = MAX_ATTEMPTS) -> bool:
    """True once ``attempt`` attempts have failed and the delivery should become a dead letter."""
    return attempt >= max_attempts
