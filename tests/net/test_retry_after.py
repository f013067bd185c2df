"""Reading Retry-After and the rate-limit reset headers, as servers really write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigwatch.net.retry_after import (
    describe_wait,
    parse_rate_limit_reset,
    parse_retry_after,
    rate_limit_exhausted,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NOW_EPOCH = int(NOW.timestamp())


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("  7 ", 7.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("120, 60", 120.0),  # a duplicated header, joined by the client
        ("Sun, 01 Mar 2026 12:10:00 GMT", 600.0),
        ("Sunday, 01-Mar-26 12:10:00 GMT", 600.0),  # RFC 850, still to be accepted
        ("Sun Mar  1 12:10:00 2026", 600.0),  # asctime
        ("Sun, 01 Mar 2026 13:10:00 +0100", 600.0),  # not GMT, but readable
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),  # already past: no wait
    ],
)
def test_retry_after_reads_delta_seconds_and_http_dates(value, seconds):
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "-5", "soon", "nan", "inf", "-inf", "1e400", "1_000", "٣٠", "0x10",
     "Sun, 32 Mar 2026 99:99:99 GMT", "120 seconds"],
)  # fmt: skip
def test_retry_after_ignores_what_cannot_be_read(value):
    assert parse_retry_after(value, now=NOW) is None


@given(st.text(max_size=40))
def test_retry_after_never_raises_and_never_gives_a_negative_wait(value):
    wait = parse_retry_after(value, now=NOW)
    assert wait is None or wait >= 0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"X-RateLimit-Reset": str(NOW_EPOCH + 300)}, 300.0),  # GitHub: epoch seconds
        ({"x-rate-limit-reset": str(NOW_EPOCH + 900)}, 900.0),  # X: epoch seconds
        ({"X-RateLimit-Reset": str((NOW_EPOCH + 60) * 1000)}, 60.0),  # epoch milliseconds
        ({"X-RateLimit-Reset": "42"}, 42.0),  # Reddit: seconds left
        ({"RateLimit-Reset": "30"}, 30.0),  # IETF draft: seconds left
        ({"X-RateLimit-Reset-After": "1.5"}, 1.5),  # Discord: seconds left, with a fraction
        ({"RateLimit": "limit=100, remaining=0, reset=50"}, 50.0),  # draft -03 to -06
        ({"RateLimit": '"default";r=0;t=75'}, 75.0),  # draft -07 on
        ({"X-RateLimit-Reset": str(NOW_EPOCH - 100)}, 0.0),  # a reset in the past
        ({"RateLimit-Reset": "30", "X-RateLimit-Reset": "90"}, 90.0),  # the longest wins
        ({"RateLimit-Reset": "oops", "X-RateLimit-Reset": "20"}, 20.0),  # garbage skipped
    ],
)
def test_rate_limit_reset_reads_every_common_form(headers, seconds):
    assert parse_rate_limit_reset(httpx.Headers(headers), now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-RateLimit-Reset": ""},
        {"X-RateLimit-Reset": "tomorrow"},
        {"X-RateLimit-Reset": "-3"},
        {"RateLimit-Reset": "nan"},
        {"RateLimit": "limit=100, remaining=3"},
        {"RateLimit": "t=soon"},
        {"X-RateLimit-Limit": "5000"},
    ],
)
def test_rate_limit_reset_is_none_without_a_readable_reset(headers):
    assert parse_rate_limit_reset(httpx.Headers(headers), now=NOW) is None


@given(st.text(max_size=40), st.sampled_from(["X-RateLimit-Reset", "RateLimit", "RateLimit-Reset"]))
def test_rate_limit_reset_never_raises_on_garbage(value, name):
    try:
        headers = httpx.Headers({name: value})
    except (UnicodeEncodeError, ValueError):
        return  # not a value a header can carry
    wait = parse_rate_limit_reset(headers, now=NOW)
    assert wait is None or wait >= 0


def test_reset_without_now_counts_from_the_clock():
    soon = datetime.now(UTC) + timedelta(seconds=100)
    wait = parse_rate_limit_reset({"x-ratelimit-reset": str(int(soon.timestamp()))})
    assert wait is not None and 95 <= wait <= 101


@pytest.mark.parametrize(
    ("headers", "exhausted"),
    [
        ({"X-RateLimit-Remaining": "0"}, True),
        ({"x-rate-limit-remaining": " 0 "}, True),
        ({"RateLimit-Remaining": "0"}, True),
        ({"RateLimit": '"default";r=0;t=30'}, True),
        ({"RateLimit": "limit=10, remaining=0, reset=5"}, True),
        ({"X-RateLimit-Remaining": "12"}, False),
        ({"RateLimit": "limit=10, remaining=4, reset=5"}, False),
        ({"X-RateLimit-Remaining": "none"}, False),
        ({}, False),
    ],
)
def test_rate_limit_exhausted_only_when_no_request_remains(headers, exhausted):
    assert rate_limit_exhausted(httpx.Headers(headers)) is exhausted


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(45, "45 s"), (600, "10 min"), (5400, "1.5 h"), (6 * 3600, "6 h"), (3 * 86400, "3 days")],
)
def test_waits_are_described_in_units_people_read(seconds, shown):
    assert describe_wait(seconds) == shown
