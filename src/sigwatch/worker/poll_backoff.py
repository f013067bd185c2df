"""When a failed source is polled again: what the error says decides how long sigwatch waits.

- An ordinary failure (no answer, a 5xx, a feed that does not parse) backs off exponentially:
  the poll interval doubled per failure in a row, up to the operator's ``max_backoff_s``.
- A server that asked for a wait (``Retry-After``, or the reset of an exhausted rate limit) is
  not polled before that wait is over, up to :data:`MAX_HONOURED_WAIT_S`, and never sooner than
  the ordinary backoff.
- A host sigwatch holds back (its circuit breaker is open, its rate limit spent) is not
  polled before the hold ends: the error's ``wait_s``, as for a server's ask.
- An answer no retry can change (401, 403, 404, 410 and the other non-retryable 4xx) backs off
  hard, straight to ``max_backoff_s`` (or the poll interval, if longer): a person must fix the
  source, and hammering the server meanwhile helps nobody. Editing the source starts it afresh.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sigwatch.errors import NetworkError, SigwatchError
from sigwatch.net.retry_after import MAX_HONOURED_WAIT_S, describe_wait


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """How long to wait before the next poll, and what the source's health should add.

    ``earliest_s`` is the wait even a "poll now" asked for during the failed poll respects:
    the server's own ask, or zero.
    """

    delay_s: float
    earliest_s: float = 0.0
    note: str | None = None


def backoff_delay_s(interval_s: int, failures: int, max_backoff_s: int) -> float:
    """Delay before retrying after ``failures`` failures in a row: doubling, jittered."""
    base = min(float(max_backoff_s), interval_s * 2.0 ** max(0, min(failures, 20) - 1))
    return base * _jitter()


def plan_retry(
    error: SigwatchError | None, *, interval_s: int, failures: int, max_backoff_s: int
) -> RetryPlan:
    """The retry plan after ``error`` made the ``failures``-th failed poll in a row.

    ``error`` is None for a failure that is no sigwatch error (a bug in a source kind), which
    backs off like any ordinary failure.
    """
    ordinary_s = backoff_delay_s(interval_s, failures, max_backoff_s)
    # Any network error may carry a wait: a server's ask (HTTPStatusError) or sigwatch's own
    # hold on the host (an open circuit breaker, a spent per-host limit).
    if not isinstance(error, NetworkError):
        return RetryPlan(delay_s=ordinary_s)
    asked_s = error.wait_s
    honoured_s = 0.0 if asked_s is None else min(asked_s, MAX_HONOURED_WAIT_S)
    notes = []
    if asked_s is not None and asked_s > MAX_HONOURED_WAIT_S:
        notes.append(
            f"the server asked for {describe_wait(asked_s)}; sigwatch waits at most "
            f"{describe_wait(MAX_HONOURED_WAIT_S)}"
        )
    if error.retryable:
        delay_s = max(ordinary_s, honoured_s)
    else:
        # A server that refuses and also says when to come back is still not asked sooner.
        delay_s = max(ordinary_s, honoured_s, max(interval_s, max_backoff_s) * _jitter())
        notes.append(
            f"sigwatch now polls this source only every {describe_wait(delay_s)} until it is "
            "fixed; edit the source or poll it now once it is"
        )
    return RetryPlan(delay_s=delay_s, earliest_s=honoured_s, note="; ".join(notes) or None)


def _jitter() -> float:
    # +-10% so sources that failed together do not retry in lockstep.
    return random.uniform(0.9, 1.1)
