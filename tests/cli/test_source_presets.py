"""``sigwatch source add json --preset NAME``: a preset's parameters given with --set."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from sigwatch.sources.presets import BINANCE_LIST_URL

ARTICLE = {
    "id": 229923,
    "code": "917a66f6d8654c2695d858db6b7f1bff",
    "title": "Binance Will Add Example (EXM) on Earn, Buy Crypto, Margin, Convert & Futures",
    "type": 1,
    "releaseDate": 1742369411614,
}
ANSWER = {
    "code": "000000",
    "data": {"catalogs": [{"catalogId": 48, "articles": [ARTICLE], "catalogs": []}]},
    "success": True,
}


def test_a_preset_with_a_parameter_adds_the_json_source_it_expands_to(cli):
    added = cli(
        "source",
        "add",
        "json",
        "--preset",
        "binance_announcements",
        "--name",
        "Binance delistings",
        "--set",
        "catalog_id=161",
    )
    assert added.exit_code == 0, added.output
    assert "source 1 added: Binance delistings" in added.output

    shown = cli("source", "show", "1")
    assert shown.exit_code == 0, shown.output
    assert f"{BINANCE_LIST_URL}?type=1&catalogId=161&pageNo=1&pageSize=20" in shown.output
    assert "data.catalogs[].articles[]" in shown.output and "preset" not in shown.output


def test_a_preset_source_collects_posts(cli, server):
    path = urlsplit(BINANCE_LIST_URL).path
    url = server.serve(
        path, json.dumps(ANSWER).encode(), headers={"Content-Type": "application/json"}
    )
    added = cli(
        "source",
        "add",
        "json",
        "--preset",
        "binance_announcements",
        "--name",
        "Binance listings",
        "--set",
        f"url={url}?type=1&catalogId=48",
    )
    assert added.exit_code == 0, added.output

    collected = cli("collect", "--source", "1")
    assert collected.exit_code == 0, collected.output
    assert "1 new posts" in collected.output


def test_an_unknown_preset_is_refused_with_exit_2_listing_the_presets(cli):
    result = cli("source", "add", "json", "--preset", "kraken", "--name", "x")
    assert result.exit_code == 2
    assert "binance_announcements" in result.output
    assert "0 sources" in cli("source", "list").output


def test_a_bad_preset_parameter_is_refused_with_exit_2_naming_it(cli):
    result = cli(
        "source",
        "add",
        "json",
        "--preset",
        "binance_announcements",
        "--name",
        "x",
        "--set",
        "page_size=500",
    )
    assert result.exit_code == 2 and "page_size" in result.output


def test_only_json_takes_a_preset(cli):
    result = cli("source", "add", "rss", "--preset", "binance_announcements", "--name", "x")
    assert result.exit_code == 2 and "only json takes --preset" in result.output


def test_help_lists_the_presets_and_their_parameters(cli):
    result = cli("source", "add", "--help")
    assert result.exit_code == 0
    assert "--preset" in result.output and "binance_announcements" in result.output
    assert "catalog_id" in result.output
