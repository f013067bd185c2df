"""``sigwatch alert``: list, show with evidence, and the status moves an operator makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedbuilder import rss_feed

WATCHLIST = """\
entities:
  - name: Helix Network
    aliases: [Helix]
    symbols: [HLX]
rules: {}
"""
AIRDROP = "Helix Network airdrop claim is now open: check eligibility for the $HLX airdrop"


@pytest.fixture
def alerted(cli, server, tmp_path: Path) -> str:
    """One airdrop alert for Helix Network, from one collected feed; returns the feed URL."""
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(WATCHLIST)
    assert cli("watchlist", "import", str(watchlist)).exit_code == 0
    url = server.serve("/news.xml", rss_feed([AIRDROP, "Weekly market digest"]))
    assert cli("source", "add", "rss", url, "--name", "News").exit_code == 0
    collected = cli("collect", "--all")
    assert collected.exit_code == 0, collected.output
    return url


def test_alert_list_shows_the_alert_and_filters_by_status_and_type(cli, alerted):
    listing = cli("alert", "list")
    assert listing.exit_code == 0, listing.output
    assert "Helix Network" in listing.output and "airdrop" in listing.output
    assert "1 alerts" in listing.output
    assert "0 alerts" in cli("alert", "list", "--status", "resolved").output
    assert "0 alerts" in cli("alert", "list", "--type", "listing").output
    assert "1 alerts" in cli("alert", "list", "--type", "airdrop", "--limit", "5").output


def test_alert_show_gives_the_evidence_post_and_what_it_matched(cli, alerted):
    shown = cli("alert", "show", "1")
    assert shown.exit_code == 0, shown.output
    assert "evidence (1 posts)" in shown.output
    assert "Helix Network airdrop claim" in shown.output
    assert "matched:" in shown.output and "airdrop" in shown.output
    assert "history" in shown.output


def test_ack_then_resolve_are_kept_in_the_history(cli, alerted):
    acked = cli("alert", "ack", "1", "--note", "looking")
    assert acked.exit_code == 0, acked.output
    assert "alert 1 is now acknowledged" in acked.output
    assert "already acknowledged" in cli("alert", "ack", "1").output
    assert cli("alert", "resolve", "1").exit_code == 0
    history = cli("alert", "show", "1").output
    assert "cli  status new -> acknowledged looking" in history
    assert "acknowledged -> resolved" in history


def test_a_move_the_lifecycle_forbids_is_exit_1_saying_which_are_allowed(cli, alerted):
    assert cli("alert", "dismiss", "1").exit_code == 0
    refused = cli("alert", "resolve", "1")
    assert refused.exit_code == 1
    assert "dismissed" in refused.output and "acknowledged" in refused.output


def test_a_bad_status_filter_is_exit_2_naming_the_choices(cli):
    result = cli("alert", "list", "--status", "open")
    assert result.exit_code == 2 and "acknowledged" in result.output


@pytest.mark.parametrize("command", [("show", "999"), ("ack", "999"), ("dismiss", "999")])
def test_an_unknown_alert_id_is_exit_1_naming_it(cli, command):
    result = cli("alert", *command)
    assert result.exit_code == 1, result.output
    assert "999" in result.output
