"""Judging a source's freshness from what it has learned: silent, stale, failing, or fine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sigwatch.alerts.freshness import Thresholds, clean_freshness, held, judge, recovery
from sigwatch.db.system_alerts import SourceFreshness
from sigwatch.errors import InvalidInput

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LIMITS = Thresholds(
    silence_factor=4,
    silence_min_s=600,
    silence_min_samples=3,
    stale_after_polls=5,
    stale_after_s=3600,
    failing_after=3,
    failing_after_s=1800,
)


def healthy(**changes) -> SourceFreshness:
    """A source added a day ago that posts every minute and was polled a moment ago."""
    source = SourceFreshness(
        id=1,
        owner_id=7,
        name="news",
        kind="rss",
        enabled=True,
        deleted=False,
        created_at=NOW - timedelta(days=1),
        last_success_at=NOW - timedelta(seconds=5),
        last_error=None,
        consecutive_failures=0,
        post_gap_s=60.0,
        post_gap_samples=20,
        last_new_post_at=NOW - timedelta(minutes=2),
        newest_changed_at=NOW - timedelta(minutes=2),
        unchanged_polls=1,
        freshness=None,
    )
    return replace(source, **changes)


def test_a_healthy_source_raises_nothing():
    assert judge(healthy(), LIMITS, NOW) == {}


def test_failed_polls_in_a_row_make_a_source_failing():
    found = judge(healthy(consecutive_failures=3, last_error="HTTP 500"), LIMITS, NOW)
    assert set(found) == {"failing"}
    assert "3 failed polls in a row" in found["failing"].reason
    assert "HTTP 500" in found["failing"].reason


def test_fewer_failures_than_the_threshold_are_not_failing_yet():
    assert judge(healthy(consecutive_failures=2), LIMITS, NOW) == {}


def test_failing_for_longer_than_the_duration_is_failing_whatever_the_count():
    source = healthy(consecutive_failures=1, last_success_at=NOW - timedelta(hours=1))
    assert "failing for 60m" in judge(source, LIMITS, NOW)["failing"].reason


def test_a_source_paused_by_a_permanent_error_is_failing_at_once():
    source = healthy(enabled=False, consecutive_failures=1, last_error="HTTP 410 Gone")
    assert judge(source, LIMITS, NOW)["failing"].reason.startswith("paused after")


def test_a_disabled_or_removed_source_raises_nothing():
    quiet = {"last_new_post_at": NOW - timedelta(days=3)}
    assert judge(healthy(enabled=False, **quiet), LIMITS, NOW) == {}
    assert judge(healthy(deleted=True, consecutive_failures=9), LIMITS, NOW) == {}


def test_no_new_post_for_several_usual_gaps_is_silent():
    # Every 5 minutes usually, so 4 gaps make 20 minutes: 25 minutes is silent.
    source = healthy(post_gap_s=300.0, last_new_post_at=NOW - timedelta(minutes=25))
    found = judge(source, LIMITS, NOW)
    assert set(found) == {"silent"}
    assert found["silent"].detail["limit_s"] == 1200


def test_silence_shorter_than_the_floor_is_not_silent():
    # 4 gaps of a minute are 4 minutes, but the floor is 10 minutes.
    source = healthy(last_new_post_at=NOW - timedelta(minutes=8))
    assert judge(source, LIMITS, NOW) == {}


def test_a_gap_learned_from_too_few_posts_is_not_judged():
    source = healthy(post_gap_samples=2, last_new_post_at=NOW - timedelta(days=2))
    assert judge(source, LIMITS, NOW) == {}
    assert judge(healthy(post_gap_s=None, post_gap_samples=0), LIMITS, NOW) == {}


def test_a_brand_new_source_is_given_the_silence_from_when_it_was_added():
    # Its feed's newest post is old, but the source was only added 5 minutes ago.
    source = healthy(
        created_at=NOW - timedelta(minutes=5), last_new_post_at=NOW - timedelta(days=30)
    )
    assert judge(source, LIMITS, NOW) == {}


def test_a_failing_source_is_failing_not_silent():
    source = healthy(consecutive_failures=3, last_new_post_at=NOW - timedelta(days=1))
    assert set(judge(source, LIMITS, NOW)) == {"failing"}


def test_the_same_newest_item_over_enough_polls_and_time_is_stale():
    source = healthy(
        post_gap_s=None,
        post_gap_samples=0,
        unchanged_polls=5,
        newest_changed_at=NOW - timedelta(hours=2),
    )
    found = judge(source, LIMITS, NOW)
    assert set(found) == {"stale"}
    assert "5 successful polls" in found["stale"].reason


def test_stale_needs_both_the_polls_and_the_time():
    few_polls = healthy(
        post_gap_s=None, unchanged_polls=4, newest_changed_at=NOW - timedelta(days=1)
    )
    too_soon = healthy(
        post_gap_s=None, unchanged_polls=50, newest_changed_at=NOW - timedelta(minutes=30)
    )
    assert judge(few_polls, LIMITS, NOW) == {}
    assert judge(too_soon, LIMITS, NOW) == {}


def test_a_source_that_posts_rarely_is_not_stale_within_its_usual_gaps():
    # Posts every 6 hours: 4 gaps are a day, so 2 hours unchanged is not stale.
    source = healthy(
        post_gap_s=6 * 3600.0,
        unchanged_polls=30,
        newest_changed_at=NOW - timedelta(hours=2),
        last_new_post_at=NOW - timedelta(hours=2),
    )
    assert judge(source, LIMITS, NOW) == {}


def test_a_source_override_changes_the_threshold():
    source = healthy(consecutive_failures=3)
    assert "failing" in judge(source, LIMITS, NOW)
    assert judge(replace(source, freshness={"failing_after": 10}), LIMITS, NOW) == {}
    assert judge(replace(source, freshness={"enabled": False}), LIMITS, NOW) == {}
    lowered = healthy(consecutive_failures=1, freshness={"failing_after": 1})
    assert "failing" in judge(lowered, LIMITS, NOW)


def test_overrides_are_checked_and_stored_without_the_fields_left_out():
    assert clean_freshness({"silence_factor": 6, "enabled": None}) == {"silence_factor": 6.0}
    assert clean_freshness({}) is None
    assert clean_freshness(None) is None
    with pytest.raises(InvalidInput) as bad:
        clean_freshness({"failing_after": 0})
    assert bad.value.field == "freshness.failing_after"
    with pytest.raises(InvalidInput) as unknown:
        clean_freshness({"silence": 3})
    assert unknown.value.field == "freshness.silence"


def test_recovery_says_why_the_alarm_ended():
    opened = NOW - timedelta(minutes=10)
    assert recovery("failing", healthy(), opened) == "the source polled successfully again"
    was = {"last_new_post_at": (NOW - timedelta(hours=1)).isoformat()}
    assert recovery("silent", healthy(), opened, was) == "the source has a new post"
    assert recovery("stale", healthy(newest_changed_at=NOW), opened) == "the newest item changed"
    assert recovery("silent", healthy(deleted=True), opened) == "the source was removed"
    assert recovery("silent", healthy(enabled=False), opened) == "the source was disabled"


def test_a_few_failures_short_of_failing_hold_silence_and_staleness_as_they_are():
    source = healthy(consecutive_failures=1, last_new_post_at=NOW - timedelta(days=1))
    found = judge(source, LIMITS, NOW)
    assert found == {}
    assert held(source, found) == {"silent", "stale"}
    failing = healthy(consecutive_failures=3)
    assert held(failing, judge(failing, LIMITS, NOW)) == frozenset()
    assert held(healthy(), {}) == frozenset()
