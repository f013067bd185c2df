"""`sigwatch source edit --freshness`: a source's own freshness thresholds from the command line."""

from __future__ import annotations

import sqlite3

from feedbuilder import rss_feed


def test_edit_sets_merges_and_resets_a_sources_freshness_thresholds(cli, server):
    url = server.serve("/feed.xml", rss_feed(["hello"]))
    assert cli("source", "add", "rss", url).exit_code == 0
    assert "the settings' thresholds" in cli("source", "show", "1").output

    edited = cli("source", "edit", "1", "--freshness", "failing_after=10")
    assert edited.exit_code == 0, edited.output
    more = cli("source", "edit", "1", "--freshness", "enabled=false")
    assert more.exit_code == 0, more.output
    shown = cli("source", "show", "1").output
    assert "failing_after=10" in shown and "enabled=false" in shown

    reset = cli("source", "edit", "1", "--freshness-reset")
    assert reset.exit_code == 0, reset.output
    assert "the settings' thresholds" in cli("source", "show", "1").output


def test_a_bad_freshness_threshold_is_refused_naming_it(cli, server):
    url = server.serve("/feed.xml", rss_feed(["hello"]))
    assert cli("source", "add", "rss", url).exit_code == 0
    refused = cli("source", "edit", "1", "--freshness", "failing_after=0")
    assert refused.exit_code != 0
    assert "freshness.failing_after" in refused.output


def test_a_subscription_added_with_system_alerts_asks_for_them(cli, admin, server, tmp_path):
    hook = server.serve("/hook", b"ok")
    channel = cli(
        "channel", "add", "webhook", "--name", "hook", "--set", "url=-", input=hook + "\n"
    )
    assert channel.exit_code == 0, channel.output
    added = cli("subscription", "add", "--channel", "1", "--system-alerts")
    assert added.exit_code == 0, added.output

    (database,) = tmp_path.rglob("sigwatch.db")
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT system_alerts FROM subscriptions").fetchall() == [(1,)]
