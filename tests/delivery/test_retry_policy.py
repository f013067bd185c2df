"""The outbox's retry policy: exponential backoff with full jitter, Retry-After as a floor."""

from __future__ import annotations

import pytest

from sigwatch.delivery.retry import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER_S,
    is_exhausted,
    next_attempt_delay_s,
)


def ceiling(seconds: float) -> float:
    """A jitter that always picks the top of the range, so the ceiling itself is observed."""
    return seconds


def test_ceiling_doubles_from_base_with_each_attempt():
    delays = [next_attempt_delay_s(n, jitter=ceiling) for n in range(1, 6)]

    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0]


def test_ceiling_stops_at_the_cap():
    assert next_attempt_delay_s(20, jitter=ceiling) == 3600.0
    assert next_attempt_delay_s(10_000, jitter=ceiling) == 3600.0  # no float overflow


def test_base_and_cap_are_parameters():
    assert next_attempt_delay_s(3, base_s=10, cap_s=25, jitter=ceiling) == 25.0


def test_full_jitter_spreads_delays_between_zero_and_the_ceiling():
    delays = [next_attempt_delay_s(6) for _ in range(500)]  # ceiling 64 s

    assert all(0.0 <= delay <= 64.0 for delay in delays)
    assert min(delays) < 8.0 and max(delays) > 56.0  # spread over the range, not bunched


def test_a_jitter_outside_the_range_is_clamped_into_it():
    assert next_attempt_delay_s(2, jitter=lambda c: c * 10) == 4.0
    assert next_attempt_delay_s(2, jitter=lambda c: -1.0) == 0.0


def test_retry_after_is_a_floor():
    assert next_attempt_delay_s(1, retry_after_s=30.0, jitter=ceiling) == 30.0


def test_retry_after_below_the_jittered_delay_changes_nothing():
    assert next_attempt_delay_s(5, retry_after_s=1.0, jitter=ceiling) == 32.0


def test_retry_after_beyond_the_cap_is_honoured_up_to_a_day():
    assert next_attempt_delay_s(1, retry_after_s=7200.0, jitter=ceiling) == 7200.0
    assert next_attempt_delay_s(1, retry_after_s=1e12, jitter=ceiling) == MAX_RETRY_AFTER_S


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_count_from_one(attempt):
    with pytest.raises(ValueError, match="from 1"):
        next_attempt_delay_s(attempt)


def test_bad_base_or_cap_is_refused():
    with pytest.raises(ValueError):
        next_attempt_delay_s(1, base_s=0)
    with pytest.raises(ValueError):
        next_attempt_delay_s(1, base_s=10, cap_s=5)


def test_exhausted_after_max_attempts():
    assert MAX_ATTEMPTS == 8
    assert not is_exhausted(MAX_ATTEMPTS - 1)
    assert is_exhausted(MAX_ATTEMPTS)
    assert is_exhausted(3, max_attempts=3)
