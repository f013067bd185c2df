"""``sigwatch collect --source ID --backfill N``: archive an account's past, resumably."""

from __future__ import annotations

import json

import pytest

from feedbuilder import rss_feed
from worker.test_backfill_kind import Timeline, register


@pytest.fixture
def timeline_source(cli, server, monkeypatch) -> Timeline:
    """Source 1: a timeline of 23 posts, 5 a page, added with the CLI."""
    register(monkeypatch)
    timeline = Timeline(server, count=23)
    added = cli("source", "add", "timeline", "--set", f"url={timeline.url}", "--name", "someone")
    assert added.exit_code == 0, added.output
    return timeline


def exported(cli) -> list[dict]:
    result = cli("export", "posts", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_backfill_archives_the_timeline_with_a_summary(cli, timeline_source):
    result = cli("collect", "--source", "1", "--backfill", "100")

    assert result.exit_code == 0, result.output
    assert "backfill of source 1 (job 1): 23 past posts in 5 pages, 23 new" in result.stdout
    assert "backfilling source 1" in result.stderr  # the progress bar
    assert len(exported(cli)) == 23


def test_backfill_stops_at_n_posts(cli, timeline_source):
    result = cli("collect", "--source", "1", "--backfill", "7")

    assert result.exit_code == 0, result.output
    assert "7 past posts in 2 pages" in result.stdout
    assert sorted(int(r["external_id"]) for r in exported(cli)) == list(range(17, 24))


def test_an_interrupted_backfill_is_continued_by_the_same_command(cli, timeline_source):
    timeline_source.fail_before = 14  # the third page breaks

    broken = cli("collect", "--source", "1", "--backfill", "100")

    assert broken.exit_code == 1
    assert "10 past posts in 2 pages" in broken.stdout
    assert "error:" in broken.stderr and "page 3 failed" in broken.stderr
    assert "asking for the backfill again goes on from there" in broken.stderr

    timeline_source.fail_before = None
    again = cli("collect", "--source", "1", "--backfill", "100")

    assert again.exit_code == 0, again.output
    assert "going on with job 1 after 2 pages (10 posts)" in again.stderr
    assert "backfill of source 1 (job 1): 23 past posts in 5 pages, 23 new" in again.stdout
    assert timeline_source.asked == [None, 19, 14, 14, 9, 4]
    assert len(exported(cli)) == 23


def test_restart_starts_over_in_a_new_job(cli, timeline_source):
    timeline_source.fail_before = 14
    assert cli("collect", "--source", "1", "--backfill", "100").exit_code == 1
    timeline_source.fail_before = None

    again = cli("collect", "--source", "1", "--backfill", "100", "--restart")

    assert again.exit_code == 0, again.output
    assert "(job 2): 23 past posts in 5 pages, 13 new" in again.stdout


def test_an_rss_source_cannot_be_backfilled_and_the_error_says_which_kinds_can(
    cli, server, monkeypatch
):
    register(monkeypatch)
    url = server.serve("/news.xml", rss_feed(["one"]))
    assert cli("source", "add", "rss", url).exit_code == 0

    result = cli("collect", "--source", "1", "--backfill", "10")

    assert result.exit_code == 1
    assert "source 1 cannot be backfilled: rss sources reach only their latest" in result.stderr
    assert "kinds that can:" in result.stderr and "timeline" in result.stderr


def test_backfill_of_an_unknown_source_exits_1_and_says_how_to_list_them(cli):
    result = cli("collect", "--source", "9", "--backfill", "10")
    assert result.exit_code == 1
    assert "no source with id 9" in result.stderr and "sigwatch source list" in result.stderr


def test_a_paused_source_is_not_backfilled_until_resumed(cli, timeline_source):
    assert cli("source", "pause", "1").exit_code == 0
    result = cli("collect", "--source", "1", "--backfill", "10")
    assert result.exit_code == 1 and "sigwatch source resume 1" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--backfill", "10"),
        ("--all", "--backfill", "10"),
        ("--source", "1", "--source", "2", "--backfill", "10"),
    ],
)
def test_backfill_takes_exactly_one_source(cli, args):
    result = cli("collect", *args)
    assert result.exit_code == 2 and "--backfill takes exactly one --source ID" in result.stderr


def test_restart_without_backfill_is_a_usage_error(cli):
    result = cli("collect", "--all", "--restart")
    assert result.exit_code == 2 and "--restart goes with --backfill N" in result.stderr
