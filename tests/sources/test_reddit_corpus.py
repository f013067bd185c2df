"""The reddit kind against the recorded Reddit answers of the shared corpus.

Each ``reddit_listing`` entry of ../shared/corpus/manifest.json is served from the local server,
with the status and Content-Type of its recorded ``*.headers.json``, as the listing a
RedditSource asks for; what the source extracts is checked against the entry's ``expect``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sigwatch.errors import HTTPStatusError, ParseError
from sigwatch.sources.base import Platforms
from sigwatch.sources.reddit import RedditOptions, RedditSource

CORPUS_DIR = (Path(__file__).parents[2] / "../shared/corpus").resolve()
PATH = "/r/example/new.json"


def _entries() -> list[dict[str, Any]]:
    manifest = CORPUS_DIR / "manifest.json"
    if not manifest.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(manifest.read_text(encoding="utf-8"))
    return [entry for entry in entries if entry.get("kind") == "reddit_listing"]


ENTRIES = _entries()
LISTINGS = [entry for entry in ENTRIES if entry["expect"]["shape"] != "error"]
ERRORS = [entry for entry in ENTRIES if entry["expect"]["shape"] == "error"]


def _params(entries: list[dict[str, Any]]) -> dict[str, Any]:
    # One placeholder when the corpus is absent, so the corpus_dir fixture reports the skip.
    return {
        "argvalues": entries or [None],
        "ids": [entry["path"] for entry in entries] or ["corpus-missing"],
    }


def _serve(entry: dict[str, Any], corpus_dir: Path, server, *, status: int | None = None) -> None:
    recorded = json.loads((corpus_dir / entry["headers_file"]).read_text(encoding="utf-8"))
    headers = {
        name: value
        for name, value in recorded["headers"].items()
        if name.lower() in ("content-type", "x-ratelimit-remaining", "x-ratelimit-reset")
    }
    server.serve(
        PATH,
        (corpus_dir / entry["path"]).read_bytes(),
        status=recorded["status"]["code"] if status is None else status,
        headers=headers,
    )


def _source(server, client) -> RedditSource:
    platforms = Platforms(reddit_url=server.url("").rstrip("/"))
    return RedditSource(RedditOptions(subreddit="example"), client, platforms)


def _listings_expected(expect: dict[str, Any]) -> list[dict[str, Any]]:
    """The facts of each listing of the answer: one, or two for a comments page."""
    return expect["listings"] if expect["shape"] == "comments_page" else [expect]


def test_the_corpus_has_reddit_listings_and_an_error(corpus_dir):
    assert len(LISTINGS) >= 9 and len(ERRORS) >= 1


@pytest.mark.parametrize("entry", **_params(LISTINGS))
async def test_posts_match_the_manifest(entry, corpus_dir, server, client):
    _serve(entry, corpus_dir, server)
    expected = _listings_expected(entry["expect"])

    result = await _source(server, client).fetch({})

    posts = result.posts
    assert len(posts) == sum(listing["children"] for listing in expected)
    offset = 0
    for listing in expected:
        mine = posts[offset : offset + listing["children"]]
        offset += listing["children"]
        if not mine:
            continue
        first = mine[0]
        assert first.external_id == listing["first_name"]
        assert first.raw["kind"] == listing["first_kind"]
        assert first.raw["data"]["id"] == listing["first_id"]
        assert sorted({post.raw["kind"] for post in mine}) == listing["kinds"]
        assert (
            sum(bool(post.raw["data"].get("stickied")) for post in mine)
            == (listing["stickied_count"])
        )
        if "first_title" in listing:
            assert first.title == listing["first_title"]
        if "first_subreddit" in listing:
            assert first.raw["data"]["subreddit"] == listing["first_subreddit"]
        if "first_created_utc" in listing:
            assert first.published_at is not None
            assert first.published_at.timestamp() == listing["first_created_utc"]


@pytest.mark.parametrize("entry", **_params(LISTINGS))
async def test_every_post_has_the_fields_a_post_needs(entry, corpus_dir, server, client):
    _serve(entry, corpus_dir, server)

    posts = (await _source(server, client).fetch({})).posts

    for post in posts:
        assert post.external_id.startswith(("t3_", "t1_"))
        assert post.url is not None and post.url.startswith("https://www.reddit.com/")
        assert post.published_at is not None
        assert post.author is None or post.author.startswith("u/")
        # Reddit's rendering wrapper is gone (a code block may still show markup as text).
        assert "SC_OFF" not in post.text and '<div class="md">' not in post.text
        assert post.raw["data"]["name"] == post.external_id
        assert "score" in post.metrics
        if post.raw["kind"] == "t3":
            assert post.title and "num_comments" in post.metrics
            assert post.text or post.raw["data"].get("is_self")


@pytest.mark.parametrize("entry", **_params(LISTINGS))
async def test_the_after_cursor_matches_the_manifest(entry, corpus_dir, server, client):
    _serve(entry, corpus_dir, server)
    after = _listings_expected(entry["expect"])[0]["after"]

    page = await _source(server, client).backfill({}, None)

    assert page.cursor == ({"after": after} if after else None)


async def test_consecutive_pages_follow_the_after_of_the_previous_one(corpus_dir, server, client):
    page10, page11 = (
        next(e for e in LISTINGS if e["path"].endswith(name))
        for name in ("user_spez_top_all_page10.json", "user_spez_top_all_page11_last.json")
    )
    source = _source(server, client)
    _serve(page10, corpus_dir, server)
    first = await source.backfill({}, None)
    _serve(page11, corpus_dir, server)

    last = await source.backfill({}, first.cursor)

    assert first.cursor == {"after": page10["expect"]["after"]}
    assert f"after={page10['expect']['after']}" in server.requests[-1].path
    assert [post.external_id for post in last.posts] == [page11["expect"]["first_name"]]
    assert last.cursor is None


async def test_the_recorded_rate_limit_headers_ask_no_wait(corpus_dir, server, client):
    entry = next(e for e in LISTINGS if e["path"].endswith("r_popular_hot_2026.json"))
    _serve(entry, corpus_dir, server)

    result = await _source(server, client).fetch({})

    assert result.wait_s is None  # 997 requests remained


@pytest.mark.parametrize("entry", **_params(ERRORS))
async def test_the_recorded_404_is_a_not_found_error(entry, corpus_dir, server, client):
    _serve(entry, corpus_dir, server)

    with pytest.raises(HTTPStatusError) as caught:
        await _source(server, client).fetch({})

    assert caught.value.status == entry["expect"]["http_status"] == 404
    assert str(caught.value).startswith("r/example was not found")


@pytest.mark.parametrize("entry", **_params(ERRORS))
async def test_the_recorded_error_body_under_200_is_a_parse_error(
    entry, corpus_dir, server, client
):
    _serve(entry, corpus_dir, server, status=200)

    with pytest.raises(ParseError) as caught:
        await _source(server, client).fetch({})

    expect = entry["expect"]
    assert f"error {expect['error']} ({expect['message']})" in str(caught.value)
