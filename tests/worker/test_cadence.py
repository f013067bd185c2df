"""Adaptive polling's pure rules: what a source's new posts teach, and the interval chosen."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sigwatch.config import Settings
from sigwatch.db.schedule import PostRate
from sigwatch.worker.cadence import (
    GAP_WEIGHT,
    CadencePolicy,
    NextPoll,
    at_least,
    choose_interval,
    format_duration,
    format_interval,
    jittered,
    learn_post_rate,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
MINIMUMS = {"json": 1, "rss": 30}
POLICY = CadencePolicy(minimum_of=lambda kind: MINIMUMS.get(kind, 10))


def minutes_ago(*minutes: float) -> list[datetime]:
    return [NOW - timedelta(minutes=m) for m in minutes]


def busy(gap_s: float, *, samples: int = 10, silent_s: float = 0.0) -> PostRate:
    return PostRate(gap_s, samples, NOW - timedelta(seconds=silent_s))


def test_the_first_new_post_sets_the_moment_but_no_gap():
    learnt = learn_post_rate(PostRate(), minutes_ago(5), NOW)

    assert learnt == PostRate(gap_s=None, samples=0, last_new_post_at=NOW - timedelta(minutes=5))


def test_a_first_poll_learns_the_rate_from_the_published_times_of_the_feed():
    learnt = learn_post_rate(PostRate(), minutes_ago(12, 8, 4, 0), NOW)

    assert learnt.samples == 3
    assert learnt.gap_s == 240
    assert learnt.last_new_post_at == NOW


def test_the_newest_gap_weighs_most_in_the_usual_gap():
    learnt = learn_post_rate(busy(600.0, silent_s=60), [NOW], NOW)

    assert learnt.gap_s == 600 + GAP_WEIGHT * (60 - 600)
    assert learnt.samples == 11


def test_posts_seen_together_without_dates_count_as_one_arrival():
    # Undated posts are stored with their collection time: the same moment for all of them.
    learnt = learn_post_rate(busy(300.0, silent_s=300), [NOW, NOW, NOW], NOW)

    assert learnt.samples == 11
    assert learnt.gap_s == 300


def test_a_post_older_than_the_newest_seen_teaches_nothing_and_moves_nothing_back():
    rate = busy(300.0, silent_s=60)

    assert learn_post_rate(rate, minutes_ago(30), NOW) == rate


def test_a_post_dated_in_the_future_counts_from_when_it_was_collected():
    learnt = learn_post_rate(PostRate(), [NOW + timedelta(days=3)], NOW)

    assert learnt.last_new_post_at == NOW


def test_a_source_posting_every_four_minutes_is_polled_every_minute():
    chosen = choose_interval(POLICY, kind="json", poll_interval_s=300, rate=busy(240), now=NOW)

    assert chosen.interval_s == 60
    assert chosen.reason == "adaptive: new posts every ~4 min → 60 s"


def test_a_source_posting_every_few_seconds_is_polled_at_its_kinds_minimum():
    chosen = choose_interval(POLICY, kind="json", poll_interval_s=300, rate=busy(2), now=NOW)

    assert chosen.interval_s == 1
    assert chosen.reason == "adaptive: new posts every ~2 s → 1 s (the json minimum)"


def test_no_source_is_polled_below_its_kinds_minimum_whatever_it_posts():
    chosen = choose_interval(POLICY, kind="rss", poll_interval_s=300, rate=busy(4), now=NOW)

    assert chosen.interval_s == 30
    assert chosen.reason.endswith("→ 30 s (the rss minimum)")


def test_a_source_posting_daily_is_polled_at_its_own_interval_the_longest_wait():
    chosen = choose_interval(POLICY, kind="rss", poll_interval_s=900, rate=busy(86400), now=NOW)

    assert chosen.interval_s == 900
    assert chosen.reason == "adaptive: new posts every ~1 d → 15 min (the source's poll_interval_s)"


def test_a_source_silent_for_longer_than_usual_is_polled_less_often():
    usual = choose_interval(POLICY, kind="json", poll_interval_s=3600, rate=busy(240), now=NOW)
    quiet = choose_interval(
        POLICY, kind="json", poll_interval_s=3600, rate=busy(240, silent_s=2400), now=NOW
    )

    assert quiet.interval_s == 600 > usual.interval_s
    assert quiet.reason == "quiet: no new post for ~40 min, usually every ~4 min → 10 min"


def test_until_a_few_gaps_are_known_the_source_is_polled_at_its_own_interval():
    chosen = choose_interval(
        POLICY, kind="json", poll_interval_s=300, rate=busy(5, samples=1), now=NOW
    )

    assert chosen.interval_s == 300
    assert chosen.reason.startswith("learning: 1 gap between new posts seen so far → 300 s")


def test_with_adaptive_polling_off_every_source_keeps_its_own_interval():
    policy = CadencePolicy(adaptive=False, minimum_of=POLICY.minimum_of)

    chosen = choose_interval(policy, kind="json", poll_interval_s=120, rate=busy(2), now=NOW)

    assert chosen.interval_s == 120
    assert chosen.reason.startswith("fixed: adaptive polling is off")


def test_an_interval_stored_below_a_raised_minimum_is_raised_to_it():
    chosen = choose_interval(POLICY, kind="rss", poll_interval_s=10, rate=PostRate(), now=NOW)

    assert chosen.interval_s == 30
    assert "(the rss minimum)" in chosen.reason


def test_the_platforms_wait_lengthens_the_interval_and_jitter_never_shortens_it():
    chosen = choose_interval(POLICY, kind="json", poll_interval_s=300, rate=busy(2), now=NOW)
    waited = at_least(chosen, 120, "the platform asked to wait")

    assert waited.interval_s == 120
    assert waited.reason == "the platform asked to wait → 120 s"
    assert jittered(waited, 0.1, -1.0) == 120
    assert jittered(waited, 0.1, 1.0) == 132
    assert at_least(chosen, 0.5, "shorter") is chosen


def test_jitter_spreads_an_interval_by_its_share_within_the_minimum_and_maximum():
    chosen = NextPoll(60, "adaptive", floor_s=1, ceiling_s=300)

    assert jittered(chosen, 0.1, -1.0) == 54
    assert math.isclose(jittered(chosen, 0.1, 1.0), 66)
    assert jittered(chosen, 0.1, 0.0) == 60
    at_minimum = NextPoll(1, "fast", floor_s=1, ceiling_s=1)
    assert {jittered(at_minimum, 0.1, draw) for draw in (-1.0, 0.3, 1.0)} == {1}


def test_the_policy_takes_each_kinds_minimum_from_the_settings():
    settings = Settings.model_construct(min_poll_interval_rss_s=45)
    policy = CadencePolicy.from_settings(settings)

    assert policy.minimum_of("rss") == 45
    assert policy.minimum_of("json") == 1
    assert policy.minimum_of("reddit") == 60
    assert policy.minimum_of("some_new_kind") == settings.min_poll_interval_s


def test_durations_and_intervals_read_as_a_person_would_say_them():
    assert [format_duration(s) for s in (0.2, 40, 250, 7200, 3 * 86400)] == [
        "~1 s",
        "~40 s",
        "~4 min",
        "~2 h",
        "~3 d",
    ]
    assert [format_interval(s) for s in (1, 2.5, 60, 61.4, 1800, 7200)] == [
        "1 s",
        "2.5 s",
        "60 s",
        "61 s",
        "30 min",
        "2 h",
    ]
