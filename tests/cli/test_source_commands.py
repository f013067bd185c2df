"""``sigwatch source``: add any kind with --set, list with health, show, edit, pause, remove."""

from __future__ import annotations

import pytest

from feedbuilder import rss_feed

TOKEN = "Bearer s3cret-token-value"


def test_source_add_with_set_stores_the_feed_and_lists_it_as_not_polled_yet(cli, server):
    url = server.serve("/feed.xml", rss_feed(["hello"]))
    added = cli(
        "source", "add", "rss", "--set", f"url={url}", "--name", "Plain", "--interval", "90"
    )
    assert added.exit_code == 0, added.output
    assert "source 1 added" in added.output

    listing = cli("source", "list")
    assert listing.exit_code == 0, listing.output
    assert "Plain" in listing.output and "90s" in listing.output
    assert "not polled yet" in listing.output and "now" in listing.output


def test_source_list_shows_a_failing_source_with_its_error(cli, server):
    url = server.serve("/broken.xml", b"<html>not a feed</html>", status=500)
    assert cli("source", "add", "rss", "--set", f"url={url}", "--name", "Broken").exit_code == 0
    assert cli("collect", "--source", "1").exit_code == 1

    listing = cli("source", "list")
    assert "failing (1x)" in listing.output
    assert "500" in listing.output
    shown = cli("source", "show", "1")
    assert shown.exit_code == 0, shown.output
    assert "failures in a row" in shown.output and "500" in shown.output


def test_an_unknown_option_is_refused_with_exit_2_naming_it(cli):
    result = cli("source", "add", "rss", "--set", "interval=60", "--name", "x")
    assert result.exit_code == 2
    assert "interval" in result.output and "its options are: url" in result.output


def test_a_bad_option_value_is_refused_by_the_model_with_exit_2(cli):
    result = cli("source", "add", "rss", "--set", "url=ftp://example.com/feed", "--name", "x")
    assert result.exit_code == 2
    assert "url" in result.output and "http" in result.output
    assert "0 sources" in cli("source", "list").output


def test_an_unknown_kind_names_the_kinds_there_are(cli):
    result = cli("source", "add", "gopher", "--name", "x")
    assert result.exit_code == 2 and "rss" in result.output


def test_help_lists_each_kinds_options_and_marks_secrets(cli):
    result = cli("source", "add", "--help")
    assert result.exit_code == 0
    assert "url (string, required)" in result.output
    assert "authorization" in result.output and "secret" in result.output


def test_a_secret_on_the_command_line_is_refused_without_echoing_it(cli, server):
    url = server.serve("/private.xml", rss_feed(["hi"]))
    result = cli(
        "source",
        "add",
        "rss",
        "--set",
        f"url={url}",
        "--set",
        f"authorization={TOKEN}",
        "--name",
        "Private",
    )
    assert result.exit_code == 2
    assert "authorization is a secret" in result.output
    assert "s3cret" not in result.output


def test_a_secret_read_from_stdin_is_sent_and_never_shown(cli, server):
    url = server.serve("/private.xml", rss_feed(["members only"]))
    added = cli(
        "source",
        "add",
        "rss",
        "--set",
        f"url={url}",
        "--set",
        "authorization=-",
        "--name",
        "Private",
        input=TOKEN + "\n",
    )
    assert added.exit_code == 0, added.output
    assert cli("collect", "--source", "1").exit_code == 0
    assert server.requests[-1].headers["authorization"] == TOKEN
    for command in (("source", "list"), ("source", "show", "1")):
        output = cli(*command).output
        assert "s3cret" not in output, command


def test_a_secret_left_as_a_bare_name_is_asked_for_at_a_hidden_prompt(cli, server):
    url = server.serve("/private.xml", rss_feed(["members only"]))
    added = cli(
        "source",
        "add",
        "rss",
        "--set",
        f"url={url}",
        "--set",
        "authorization",
        "--name",
        "Private",
        input=TOKEN + "\n",
    )
    assert added.exit_code == 0, added.output
    assert "s3cret" not in added.output
    assert cli("collect", "--source", "1").exit_code == 0
    assert server.requests[-1].headers["authorization"] == TOKEN


def test_edit_changes_name_interval_and_options(cli, server):
    first = server.serve("/one.xml", rss_feed(["one"]))
    second = server.serve("/two.xml", rss_feed(["two"]))
    assert cli("source", "add", "rss", first, "--name", "Before").exit_code == 0
    edited = cli(
        "source", "edit", "1", "--name", "After", "--interval", "120", "--set", f"url={second}"
    )
    assert edited.exit_code == 0, edited.output
    shown = cli("source", "show", "1").output
    assert "After" in shown and "120s" in shown and second in shown


def test_edit_with_nothing_to_change_says_what_it_takes(cli):
    result = cli("source", "edit", "1")
    assert result.exit_code == 2 and "--name" in result.output


def test_pause_and_resume_stop_and_restart_polling(cli, server):
    url = server.serve("/feed.xml", rss_feed(["hello"]))
    assert cli("source", "add", "rss", url).exit_code == 0
    assert cli("source", "pause", "1").exit_code == 0
    assert "paused" in cli("source", "list").output
    assert "polled 0 sources" in cli("collect", "--all").output
    asked = cli("collect", "--source", "1")
    assert asked.exit_code == 1 and "sigwatch source resume 1" in asked.output
    assert cli("source", "resume", "1").exit_code == 0
    assert "paused" not in cli("source", "list").output
    assert "polled 1 sources: 1 new posts" in cli("collect", "--all").output


def test_remove_takes_the_source_out_of_the_list(cli, server):
    url = server.serve("/feed.xml", rss_feed(["hello"]))
    assert cli("source", "add", "rss", url, "--name", "Gone soon").exit_code == 0
    removed = cli("source", "remove", "1", "--yes")
    assert removed.exit_code == 0, removed.output
    assert "Gone soon" not in cli("source", "list").output


@pytest.mark.parametrize(
    "command",
    [
        ("source", "show", "999"),
        ("source", "edit", "999", "--name", "x"),
        ("source", "pause", "999"),
        ("source", "resume", "999"),
        ("source", "remove", "999", "--yes"),
        ("collect", "--source", "999"),
    ],
)
def test_an_unknown_source_id_is_exit_1_naming_it(cli, command):
    result = cli(*command)
    assert result.exit_code == 1, result.output
    assert "no source with id 999" in result.output
    assert "polled" not in result.output
