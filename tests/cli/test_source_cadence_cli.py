"""``sigwatch source``: each kind's minimum interval, and the interval adaptive polling chose."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime


def feed_posting_every_four_minutes() -> bytes:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>t{n}</title><guid>g{n}</guid><description>d</description>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=4 * n))}</pubDate></item>"
        for n in range(5)
    )
    return f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def test_an_interval_below_the_kinds_minimum_is_refused_naming_the_minimum(cli, server):
    url = server.serve("/feed.xml", feed_posting_every_four_minutes())

    result = cli("source", "add", "rss", "--set", f"url={url}", "--interval", "5")

    assert result.exit_code == 1, result.output
    assert "poll_interval_s" in result.output and "at least 30 seconds" in result.output
    assert "0 sources" in cli("source", "list").output


def test_source_show_says_which_interval_was_chosen_and_why(cli, server):
    url = server.serve("/feed.xml", feed_posting_every_four_minutes())
    assert cli("source", "add", "rss", "--set", f"url={url}", "--interval", "600").exit_code == 0
    assert cli("collect", "--source", "1").exit_code == 0

    shown = cli("source", "show", "1")

    assert shown.exit_code == 0, shown.output
    assert "600s at most, 30s at least (the rss minimum)" in shown.output
    assert "adaptive: new posts every ~4 min → 60 s" in shown.output
    assert "~4 min (a weighted mean of 4 gaps)" in shown.output
