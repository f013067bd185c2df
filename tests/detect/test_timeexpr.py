"""Time expressions resolved against a fixed publication time, and urgency from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sigwatch.detect.scoring import urgency
from sigwatch.detect.timeexpr import find_time_expressions

PUBLISHED = datetime(2025, 11, 25, 10, 0, tzinfo=UTC)  # a Tuesday


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("TGE in 2 hours", datetime(2025, 11, 25, 12, 0, tzinfo=UTC)),
        ("tomorrow 14:00 UTC", datetime(2025, 11, 26, 14, 0, tzinfo=UTC)),
        ("on Dec 3", datetime(2025, 12, 3, tzinfo=UTC)),
        ("Jan 5", datetime(2026, 1, 5, tzinfo=UTC)),  # no year: the next one
        ("Q1 2026", datetime(2026, 1, 1, tzinfo=UTC)),
        ("next week", datetime(2025, 12, 1, tzinfo=UTC)),
        ("on Friday", datetime(2025, 11, 28, tzinfo=UTC)),
        ("March 30, 2021 at 11:00 (UTC+8)", datetime(2021, 3, 30, 3, 0, tzinfo=UTC)),
        ("1st December 2021", datetime(2021, 12, 1, tzinfo=UTC)),
        ("from 8:00 Apr 12 (UTC)", datetime(2026, 4, 12, 8, 0, tzinfo=UTC)),
        ("2025-12-06", datetime(2025, 12, 6, tzinfo=UTC)),
        ("10:00 KST", datetime(2025, 11, 26, 1, 0, tzinfo=UTC)),
        ("12pm CST", datetime(2025, 11, 25, 18, 0, tzinfo=UTC)),
        ("this weekend", datetime(2025, 11, 29, tzinfo=UTC)),
        ("within 3 days", datetime(2025, 11, 28, 10, 0, tzinfo=UTC)),
        ("end of the month", datetime(2025, 11, 30, tzinfo=UTC)),
        ("second quarter", datetime(2026, 4, 1, tzinfo=UTC)),
        ("late Feb", datetime(2026, 2, 18, tzinfo=UTC)),
    ],
)
def test_expressions_resolve_against_the_publication_time(text, when):
    (found,) = find_time_expressions(text, PUBLISHED)

    assert found.when == when


def test_relative_expressions_need_a_publication_time():
    assert find_time_expressions("in 2 hours, tomorrow, Dec 3", None) == []
    assert [t.when.year for t in find_time_expressions("March 2021", None)] == [2021]


def test_numbers_that_are_not_times_are_ignored():
    assert find_time_expressions("Entry 0.3292, leverage 20x, 5 targets", PUBLISHED) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 30 minutes", "critical"),
        ("in 5 hours", "high"),
        ("on Friday", "medium"),
        ("Q3 2026", "low"),
        ("1st December 2021", "low"),  # long past
    ],
)
def test_urgency_from_time_to_event(text, expected):
    (found,) = find_time_expressions(text, PUBLISHED)

    assert urgency(found, PUBLISHED, live=False) == expected


def test_live_is_critical_and_unknown_time_is_medium():
    assert urgency(None, PUBLISHED, live=True) == "critical"
    assert urgency(None, PUBLISHED, live=False) == "medium"
    assert urgency(None, None, live=False) == "medium"
    (today,) = find_time_expressions("today", PUBLISHED + timedelta(hours=1))
    assert urgency(today, PUBLISHED + timedelta(hours=1), live=False) == "high"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Mainnet goes live on FRIDAY", [("on FRIDAY", datetime(2025, 11, 28, tzinfo=UTC))]),
        (
            "Unlock Dec. 3 at 14:00 UTC",
            [("Dec. 3 at 14:00 UTC", datetime(2025, 12, 3, 14, tzinfo=UTC))],
        ),
        ("Snapshot: 9 a.m. PST", [("9 a.m. PST", datetime(2025, 11, 25, 17, tzinfo=UTC))]),
        ("claim by 5PM EST", [("5PM EST", datetime(2025, 11, 25, 22, tzinfo=UTC))]),
        ("TGE in ２ hours", [("in ２ hours", datetime(2025, 11, 25, 12, tzinfo=UTC))]),
        ("Token sale ends Jan2026", [("Jan2026", datetime(2026, 1, 1, tzinfo=UTC))]),
        ("TGE: Aprİl 5", [("Aprİl 5", datetime(2026, 4, 5, tzinfo=UTC))]),
        ("Roadmap — 1st quarter 2026 🚀", [("1st quarter 2026", datetime(2026, 1, 1, tzinfo=UTC))]),
        ("H2 2026 roadmap", [("H2 2026", datetime(2026, 7, 1, tzinfo=UTC))]),
        ("Листинг 12 March 2026", [("12 March 2026", datetime(2026, 3, 12, tzinfo=UTC))]),
        (
            "bitcoin mainnet within the next few days",
            [("within the next few days", datetime(2025, 11, 28, 10, tzinfo=UTC))],
        ),
        (
            "Listing tomorrow 🚀 at 10:00 KST",
            [
                ("tomorrow", datetime(2025, 11, 26, tzinfo=UTC)),
                ("10:00 KST", datetime(2025, 11, 26, 1, tzinfo=UTC)),
            ],
        ),
        (
            "deposits close at 2025-12-06 08:00 UTC",
            [("2025-12-06 08:00 UTC", datetime(2025, 12, 6, 8, tzinfo=UTC))],
        ),
        ("TGE next wee\u212a", [("next wee\u212a", datetime(2025, 12, 1, tzinfo=UTC))]),  # Kelvin
        ("1MARCH 30TH, q1_2026", []),
    ],
)
def test_the_word_gates_let_through_every_form_the_patterns_match(text, found):
    """Case, dots, digits glued to words, non-ASCII digits, letters and scripts."""
    assert [(t.text, t.when) for t in find_time_expressions(text, PUBLISHED)] == found
