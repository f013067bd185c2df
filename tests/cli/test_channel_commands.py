"""``sigwatch channel`` and ``sigwatch subscription``: where alerts go, and which ones."""

from __future__ import annotations

import json

import pytest

HOOK_TOKEN = "tok-9f8e7d6c5b4a"


def _add_webhook(cli, url: str, *extra: str):
    return cli("channel", "add", "webhook", "--name", "hook", "--set", "url=-", *extra, input=url)


def test_webhook_channel_prints_its_generated_secret_once_and_masks_it_after(cli, admin, server):
    url = server.serve("/hook", b"ok") + f"?token={HOOK_TOKEN}"
    added = _add_webhook(cli, url + "\n")
    assert added.exit_code == 0, added.output
    assert "channel 1 added for root" in added.output
    secret = added.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    assert HOOK_TOKEN not in added.output

    listing = cli("channel", "list")
    assert listing.exit_code == 0, listing.output
    assert "webhook" in listing.output and "root" in listing.output
    assert secret not in listing.output and HOOK_TOKEN not in listing.output


def test_a_channel_secret_on_the_command_line_is_refused_without_echoing_it(cli, admin):
    result = cli(
        "channel", "add", "webhook", "--name", "x", "--set", f"url=https://e.com/?t={HOOK_TOKEN}"
    )
    assert result.exit_code == 2
    assert "url is a secret" in result.output and HOOK_TOKEN not in result.output


def test_a_required_secret_left_out_is_asked_for(cli, admin, server):
    url = server.serve("/hook", b"ok")
    added = cli("channel", "add", "webhook", "--name", "hook", input=url + "\n")
    assert added.exit_code == 0, added.output
    assert cli("channel", "test", "1").exit_code == 0


def test_channel_test_sends_a_signed_message_to_the_receiver(cli, admin, server):
    url = server.serve("/hook", b"ok")
    assert _add_webhook(cli, url + "\n").exit_code == 0
    result = cli("channel", "test", "1")
    assert result.exit_code == 0, result.output
    assert "test message sent (HTTP 200)" in result.output
    posted = [r for r in server.requests if r.method == "POST"]
    assert len(posted) == 1 and "webhook-signature" in posted[0].headers
    assert json.loads(posted[0].body)


def test_a_failed_channel_test_is_exit_1_with_the_receivers_answer(cli, admin, server):
    url = server.serve("/hook", b"gone", status=410)
    assert _add_webhook(cli, url + "\n").exit_code == 0
    result = cli("channel", "test", "1")
    assert result.exit_code == 1
    assert "410" in result.output and "sigwatch channel test 1" in result.output


def test_channel_remove_takes_it_out_of_the_list(cli, admin, server):
    assert _add_webhook(cli, server.serve("/hook") + "\n").exit_code == 0
    assert cli("channel", "remove", "1", "--yes").exit_code == 0
    assert "0 channels" in cli("channel", "list").output


def test_without_users_channel_add_says_to_create_the_admin(cli, server):
    result = _add_webhook(cli, server.serve("/hook") + "\n")
    assert result.exit_code == 1
    assert "sigwatch user create NAME --admin" in result.output


def test_with_two_admins_channel_add_asks_which_and_names_them(cli, admin, server):
    other = cli("user", "create", "ops", "--admin", "--password-stdin", input="long enough\n")
    assert other.exit_code == 0
    ambiguous = _add_webhook(cli, server.serve("/hook") + "\n")
    assert ambiguous.exit_code == 1
    assert "--user" in ambiguous.output and "root" in ambiguous.output and "ops" in ambiguous.output
    chosen = _add_webhook(cli, server.serve("/hook") + "\n", "--user", "ops")
    assert chosen.exit_code == 0 and "added for ops" in chosen.output


def test_an_unknown_channel_option_is_exit_2_naming_it(cli, admin):
    result = cli("channel", "add", "webhook", "--name", "x", "--set", "colour=red")
    assert result.exit_code == 2 and "colour" in result.output and "url" in result.output


def test_subscription_add_list_remove(cli, admin, server):
    assert _add_webhook(cli, server.serve("/hook") + "\n").exit_code == 0
    added = cli(
        "subscription",
        "add",
        "--channel",
        "1",
        "--name",
        "launches",
        "--event",
        "tge",
        "--event",
        "listing",
        "--min-confidence",
        "0.8",
        "--quiet-hours",
        "22:00-07:00",
    )
    assert added.exit_code == 0, added.output
    assert "subscription 1 added for root" in added.output

    listing = cli("subscription", "list")
    assert listing.exit_code == 0, listing.output
    assert "launches" in listing.output and "events=tge,listing" in listing.output
    assert "min_confidence=0.8" in listing.output and "quiet 22:00-07:00" in listing.output

    assert cli("subscription", "remove", "1").exit_code == 0
    assert "0 subscriptions" in cli("subscription", "list").output


def test_a_subscription_belongs_to_its_channels_owner(cli, admin, server):
    made = cli("user", "create", "alice", "--password-stdin", input="long enough\n")
    assert made.exit_code == 0
    assert _add_webhook(cli, server.serve("/hook") + "\n", "--user", "alice").exit_code == 0
    added = cli("subscription", "add", "--channel", "1")
    assert added.exit_code == 0, added.output
    assert "added for alice" in added.output


def test_a_subscription_filter_outside_the_schema_is_exit_2(cli, admin, server):
    assert _add_webhook(cli, server.serve("/hook") + "\n").exit_code == 0
    bad_event = cli("subscription", "add", "--channel", "1", "--event", "rumour")
    assert bad_event.exit_code == 2 and "tge" in bad_event.output
    bad_window = cli("subscription", "add", "--channel", "1", "--quiet-hours", "late")
    assert bad_window.exit_code == 2 and "HH:MM-HH:MM" in bad_window.output


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (("channel", "test", "999"), "no channel with id 999"),
        (("channel", "remove", "999", "--yes"), "no channel with id 999"),
        (("subscription", "add", "--channel", "999"), "no channel with id 999"),
        (("subscription", "remove", "999"), "no subscription with id 999"),
    ],
)
def test_an_unknown_id_is_exit_1_naming_it(cli, admin, command, named):
    result = cli(*command)
    assert result.exit_code == 1, result.output
    assert named in result.output


def test_a_channel_timeout_not_shorter_than_the_lease_is_refused(cli, admin):
    added = cli(
        "channel", "add", "apprise", "--name", "chat", "--set", "url=-",
        "--set", "timeout_s=299", input="json://127.0.0.1:9/hook\n",
    )  # fmt: skip
    assert added.exit_code != 0
    assert "timeout_s" in added.output and "SIGWATCH_LEASE_S" in added.output
    assert "chat" not in cli("channel", "list").output
