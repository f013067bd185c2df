"""x_user and x_search against X API v2 answers served from a real server on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from localserver import LocalServer
from sigwatch.errors import InvalidOptions, SourceError
from sigwatch.sources.base import Platforms, can_backfill
from sigwatch.sources.registry import build_source, source_origin, validate_config

FIXTURES = Path(__file__).parent / "x_fixtures"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAx-source-t0ken-for-tests"
USER_ID = "2244994945"
LOOKUP = "/2/users/by/username/XDevelopers"
TIMELINE = f"/2/users/{USER_ID}/tweets"
SEARCH = "/2/tweets/search/recent"
JSON = {"Content-Type": "application/json; charset=utf-8"}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def serve(server: LocalServer, path: str, name: str, **headers: str) -> None:
    server.serve(path, fixture(name), headers={**JSON, **headers})


def platforms(server: LocalServer, token: str | None = None) -> Platforms:
    return Platforms(x_api_url=server.url("").rstrip("/"), x_bearer_token=token)


def x_user(server, client, token: str | None = TOKEN, platform_token=None, **options: Any):
    config = validate_config("x_user", {"username": "@XDevelopers", **options} | _token(token))
    return build_source("x_user", config, client, platforms(server, platform_token))


def x_search(server, client, query: str = "tge OR airdrop", token: str | None = TOKEN):
    config = validate_config("x_search", {"query": query} | _token(token))
    return build_source("x_search", config, client, platforms(server))


def _token(token: str | None) -> dict[str, str]:
    return {} if token is None else {"bearer_token": token}


def queries(server: LocalServer, path: str) -> list[dict[str, str]]:
    """The query parameters of each request the server got for ``path``, in order."""
    found = []
    for request in server.requests:
        parts = urlsplit(request.path)
        if parts.path == path:
            found.append({k: v[0] for k, v in parse_qs(parts.query).items()})
    return found


def serve_account(server: LocalServer) -> None:
    serve(server, LOOKUP, "user_lookup.json")
    serve(server, TIMELINE, "user_timeline_newest.json")


# --- options -------------------------------------------------------------------------------


def test_a_leading_at_is_stripped_and_the_origin_is_the_lowercased_account():
    config = validate_config("x_user", {"username": " @XDevelopers "})
    assert config["username"] == "XDevelopers"
    assert config["include_replies"] is False and config["include_retweets"] is True
    assert config["via"] == "api"
    assert source_origin("x_user", config) == "x:user:xdevelopers"
    assert source_origin("x_user", {"username": "xdevelopers", "via": "api"}) == (
        "x:user:xdevelopers"
    )


def test_the_search_origin_is_the_trimmed_query():
    assert source_origin("x_search", {"query": "  tge lang:en "}) == "x:search:tge lang:en"


@pytest.mark.parametrize(
    "username", ["", "@", "has space", "sixteen_chars_xx", "dash-name", "ünï", "a@b"]
)
def test_a_username_that_x_cannot_have_is_refused_naming_the_field(username):
    with pytest.raises(InvalidOptions) as caught:
        validate_config("x_user", {"username": username})
    assert caught.value.problems[0].location == ("username",)
    assert "1 to 15 letters" in str(caught.value)


@pytest.mark.parametrize("query", ["", "   ", "x" * 513])
def test_a_blank_or_overlong_query_is_refused_naming_the_field(query):
    with pytest.raises(InvalidOptions) as caught:
        validate_config("x_search", {"query": query})
    assert caught.value.problems[0].location == ("query",)


def test_a_query_of_512_characters_is_accepted():
    assert len(validate_config("x_search", {"query": "x" * 512})["query"]) == 512


def test_a_bad_token_is_refused_without_echoing_it():
    with pytest.raises(InvalidOptions) as caught:
        validate_config("x_user", {"username": "a", "bearer_token": "two s3cr3t words"})
    assert caught.value.problems[0].location == ("bearer_token",)
    assert "s3cr3t" not in str(caught.value)


def test_a_pasted_bearer_prefix_is_dropped_from_the_token():
    config = validate_config("x_search", {"query": "q", "bearer_token": f"Bearer {TOKEN}"})
    assert config["bearer_token"] == TOKEN


@pytest.mark.parametrize("via", ["rsshub", "nitter"])
def test_a_bridge_needs_its_url(via):
    with pytest.raises(InvalidOptions) as caught:
        validate_config("x_user", {"username": "a", "via": via})
    assert caught.value.problems[0].location == ("bridge_url",)
    assert "is required when via is" in str(caught.value)


def test_via_must_be_one_of_the_three_ways():
    with pytest.raises(InvalidOptions) as caught:
        validate_config("x_user", {"username": "a", "via": "scrape"})
    assert caught.value.problems[0].location == ("via",)


@pytest.mark.parametrize(
    "bridge_url",
    ["ftp://rsshub.example", "rsshub.example", "http://", "https://rsshub.example/?a=1"],
)
def test_a_bridge_url_is_checked_like_a_feed_url(bridge_url):
    with pytest.raises(InvalidOptions) as caught:
        validate_config("x_user", {"username": "a", "via": "rsshub", "bridge_url": bridge_url})
    assert caught.value.problems[0].location == ("bridge_url",)


def test_both_kinds_can_backfill(server, client):
    assert can_backfill(x_user(server, client)) and can_backfill(x_search(server, client))


# --- x_user through the API ----------------------------------------------------------------


async def test_the_account_is_looked_up_once_and_its_id_kept_in_the_state(server, client):
    serve_account(server)
    source = x_user(server, client)

    first = await source.fetch({})
    again = await source.fetch(json.loads(json.dumps(first.state)))

    assert first.state["user_id"] == USER_ID and first.state["username"] == "XDevelopers"
    assert len(queries(server, LOOKUP)) == 1
    assert len(queries(server, TIMELINE)) == 2
    assert {p.external_id for p in again.posts} <= {p.external_id for p in first.posts}


async def test_every_request_carries_the_bearer_token(server, client):
    serve_account(server)
    await x_user(server, client).fetch({})
    assert server.requests
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.requests)


async def test_the_timeline_asks_for_expansions_and_excludes_replies(server, client):
    serve_account(server)
    await x_user(server, client).fetch({})

    asked = queries(server, TIMELINE)[0]
    assert asked["expansions"] == "author_id,attachments.media_keys,referenced_tweets.id"
    assert asked["tweet.fields"] == (
        "created_at,public_metrics,entities,referenced_tweets,conversation_id,lang"
    )
    assert asked["user.fields"] == "username,name"
    assert asked["media.fields"] == "url,preview_image_url,type"
    assert asked["max_results"] == "100"
    assert asked["exclude"] == "replies"
    assert "since_id" not in asked and "pagination_token" not in asked


@pytest.mark.parametrize(
    ("replies", "retweets", "exclude"),
    [(False, False, "replies,retweets"), (True, False, "retweets"), (True, True, None)],
)
async def test_exclude_follows_the_options(server, client, replies, retweets, exclude):
    serve_account(server)
    source = x_user(server, client, include_replies=replies, include_retweets=retweets)
    await source.fetch({})
    assert queries(server, TIMELINE)[0].get("exclude") == exclude


async def test_posts_hold_text_author_url_date_metrics_and_raw(server, client):
    serve_account(server)
    post = (await x_user(server, client).fetch({})).posts[0]

    assert post.external_id == "1890000000000000003"
    assert post.text == "Mainnet launch & TGE on Friday: <details> below https://t.co/abc123"
    assert post.author == "@XDevelopers"
    assert post.url == "https://x.com/XDevelopers/status/1890000000000000003"
    assert post.published_at == datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    assert post.metrics == {
        "retweet_count": 12,
        "reply_count": 3,
        "like_count": 140,
        "quote_count": 2,
        "bookmark_count": 5,
        "impression_count": 9001,
    }
    assert post.raw["data"]["id"] == "1890000000000000003"
    assert json.loads(json.dumps(post.raw)) == post.raw


async def test_media_urls_come_from_the_includes(server, client):
    serve_account(server)
    post = (await x_user(server, client).fetch({})).posts[0]

    assert post.raw["media_urls"] == [
        "https://pbs.twimg.com/media/example-photo.jpg",
        "https://pbs.twimg.com/ext_tw_video_thumb/example.jpg",
    ]
    assert [m["media_key"] for m in post.raw["includes"]["media"]] == [
        "3_1890000000000000100",
        "7_1890000000000000101",
    ]
    assert [u["username"] for u in post.raw["includes"]["users"]] == ["XDevelopers"]
    assert post.html is not None and 'href="https://pbs.twimg.com/media/example-photo.jpg"' in (
        post.html
    )


async def test_a_quoted_post_is_kept_with_the_post_and_shown(server, client):
    serve_account(server)
    post = (await x_user(server, client).fetch({})).posts[1]

    assert [t["id"] for t in post.raw["includes"]["tweets"]] == ["1880000000000000001"]
    assert {u["username"] for u in post.raw["includes"]["users"]} == {"XDevelopers", "X"}
    assert post.html is not None
    assert "<blockquote>" in post.html and "Quoted &amp; original" in post.html
    assert "https://x.com/X/status/1880000000000000001" in post.html


async def test_the_newest_id_seen_becomes_since_id_for_the_next_poll(server, client):
    serve_account(server)
    source = x_user(server, client)
    first = await source.fetch({})
    assert first.state["since_id"] == "1890000000000000003"

    serve(server, TIMELINE, "user_timeline_since.json")
    second = await source.fetch(first.state)

    assert queries(server, TIMELINE)[-1]["since_id"] == "1890000000000000003"
    assert [p.external_id for p in second.posts] == ["1890000000000000009"]
    assert second.state["since_id"] == "1890000000000000009"


async def test_a_poll_with_nothing_new_keeps_since_id(server, client):
    serve(server, TIMELINE, "no_new_posts.json")
    state = {"user_id": USER_ID, "username": "XDevelopers", "user_id_for": "xdevelopers"}
    result = await x_user(server, client).fetch({**state, "since_id": "1890000000000000003"})

    assert result.posts == [] and result.warnings == []
    assert result.state["since_id"] == "1890000000000000003"
    assert queries(server, LOOKUP) == []


async def test_a_changed_username_is_looked_up_again_and_forgets_since_id(server, client):
    serve_account(server)
    stale = {"user_id": "1", "username": "Old", "user_id_for": "old", "since_id": "99"}
    result = await x_user(server, client).fetch(stale)

    assert result.state["user_id"] == USER_ID
    assert "since_id" not in queries(server, TIMELINE)[0]


async def test_the_operators_token_is_used_when_the_source_has_none(server, client):
    serve_account(server)
    await x_user(server, client, token=None, platform_token="operator-t0ken").fetch({})
    assert all(r.headers["authorization"] == "Bearer operator-t0ken" for r in server.requests)


async def test_the_sources_own_token_wins_over_the_operators(server, client):
    serve_account(server)
    await x_user(server, client, platform_token="operator-t0ken").fetch({})
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.requests)


@pytest.mark.parametrize("kind", ["x_user", "x_search"])
async def test_without_any_token_the_error_says_how_to_set_one(server, client, kind):
    build = x_user if kind == "x_user" else x_search
    source = build(server, client, token=None)

    with pytest.raises(SourceError) as caught:
        await source.fetch({})
    assert "--set bearer_token=-" in str(caught.value)
    assert "SIGWATCH_X_BEARER_TOKEN" in str(caught.value)
    assert server.requests == []


async def test_backfill_pages_back_with_pagination_token_until_there_is_no_next_token(
    server, client
):
    serve_account(server)
    source = x_user(server, client)

    first = await source.backfill({}, None)
    assert [p.external_id for p in first.posts] == ["1890000000000000003", "1890000000000000002"]
    assert first.cursor == {"pagination_token": "7140dibdnow9c7btw4older00001"}
    assert first.state is not None and first.state["user_id"] == USER_ID

    serve(server, TIMELINE, "user_timeline_older.json")
    second = await source.backfill(first.state, json.loads(json.dumps(first.cursor)))

    assert queries(server, TIMELINE)[-1]["pagination_token"] == "7140dibdnow9c7btw4older00001"
    assert [p.external_id for p in second.posts] == ["1890000000000000001"]
    assert second.cursor is None and second.state is None
    assert len(queries(server, LOOKUP)) == 1


async def test_new_posts_beyond_one_page_are_followed_with_pagination_token(server, client):
    # With since_id set, next_token pages through the posts still newer than it.
    def answer(handler):
        asked = parse_qs(urlsplit(handler.path).query)
        name = (
            "user_timeline_older.json"
            if "pagination_token" in asked
            else ("user_timeline_newest.json")
        )
        body = fixture(name)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    server.routes[TIMELINE] = answer
    state = {"user_id": USER_ID, "username": "XDevelopers", "user_id_for": "xdevelopers"}
    result = await x_user(server, client).fetch({**state, "since_id": "1800000000000000000"})

    assert [p.external_id for p in result.posts] == [
        "1890000000000000003",
        "1890000000000000002",
        "1890000000000000001",
    ]
    asked = queries(server, TIMELINE)
    assert [q.get("pagination_token") for q in asked] == [None, "7140dibdnow9c7btw4older00001"]
    assert all(q["since_id"] == "1800000000000000000" for q in asked)
    assert result.state["since_id"] == "1890000000000000003"


# --- x_search --------------------------------------------------------------------------------


async def test_search_sends_the_query_and_fills_authors_from_the_includes(server, client):
    serve(server, SEARCH, "search_page.json")
    result = await x_search(server, client, query="$EXP listing").fetch({})

    assert queries(server, SEARCH)[0]["query"] == "$EXP listing"
    assert [p.author for p in result.posts] == ["@listing_desk", "@fan_account"]
    assert result.posts[0].url == "https://x.com/listing_desk/status/1891000000000000002"
    assert result.posts[0].text == "Exchange listing announced for $EXP > details soon"
    assert result.state == {"since_id": "1891000000000000002"}


async def test_a_retweet_keeps_the_retweeted_post(server, client):
    serve(server, SEARCH, "search_page.json")
    retweet = (await x_search(server, client).fetch({})).posts[1]

    assert retweet.raw["data"]["referenced_tweets"] == [
        {"type": "retweeted", "id": "1890000000000000003"}
    ]
    assert retweet.raw["includes"]["tweets"][0]["id"] == "1890000000000000003"
    assert retweet.html is not None and "retweeted" in retweet.html


async def test_partial_errors_are_readable_warnings_not_failures(server, client):
    serve(server, SEARCH, "search_page.json")
    result = await x_search(server, client).fetch({})

    assert len(result.posts) == 2
    assert result.warnings == [
        "X reported a problem: Not Found Error: Could not find tweet with "
        "referenced_tweets.id: [1880000000000000077]."
    ]


async def test_search_backfill_uses_pagination_token(server, client):
    serve(server, SEARCH, "search_page.json")
    page = await x_search(server, client).backfill({}, {"pagination_token": "b26v89c19zqg"})

    assert queries(server, SEARCH)[0]["pagination_token"] == "b26v89c19zqg"
    assert len(page.posts) == 2 and page.cursor is None


async def test_a_since_id_too_old_for_recent_search_starts_again_from_the_newest(server, client):
    def answer(handler):
        too_old = "since_id" in parse_qs(urlsplit(handler.path).query)
        body = (
            b'{"errors":[{"title":"Invalid Request"}]}' if too_old else fixture("search_page.json")
        )
        handler.send_response(400 if too_old else 200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    server.routes[SEARCH] = answer
    result = await x_search(server, client).fetch({"since_id": "1"})

    assert len(result.posts) == 2
    assert result.state["since_id"] == "1891000000000000002"
    assert any("too old" in warning for warning in result.warnings)


# --- x_user through a bridge -----------------------------------------------------------------


async def test_nitter_feed_posts_are_shaped_as_api_posts(server, client):
    server.serve(
        "/XDevelopers/rss",
        fixture("nitter_feed.xml"),
        headers={"Content-Type": "application/rss+xml"},
    )
    source = x_user(
        server, client, token=None, via="nitter", bridge_url=server.url("/"), include_retweets=True
    )
    result = await source.fetch({})

    # The reply is left out (include_replies is false); the item without a status link too.
    assert [p.external_id for p in result.posts] == ["1890000000000000003", "1880000000000000005"]
    first, retweet = result.posts
    assert first.url == "https://x.com/XDevelopers/status/1890000000000000003"
    assert first.author == "@XDevelopers"
    assert first.text == "Mainnet launch & TGE on Friday"
    assert first.published_at == datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    assert first.raw["via"] == "nitter"
    assert retweet.author == "@X"
    assert any("without a link to an X post" in w for w in result.warnings)
    assert all("authorization" not in r.headers for r in server.requests)


async def test_nitter_retweets_and_replies_follow_the_options(server, client):
    server.serve("/XDevelopers/rss", fixture("nitter_feed.xml"))
    source = x_user(
        server,
        client,
        token=None,
        via="nitter",
        bridge_url=server.url(""),
        include_replies=True,
        include_retweets=False,
    )
    result = await source.fetch({})
    assert [p.external_id for p in result.posts] == ["1890000000000000003", "1890000000000000004"]


async def test_rsshub_feed_is_read_from_the_twitter_user_route(server, client):
    server.serve("/rsshub/twitter/user/XDevelopers", fixture("rsshub_feed.xml"))
    source = x_user(server, client, token=None, via="rsshub", bridge_url=server.url("/rsshub/"))
    result = await source.fetch({})

    assert [p.external_id for p in result.posts] == ["1890000000000000003"]
    assert result.posts[0].author == "@XDevelopers"
    assert result.posts[0].url == "https://x.com/XDevelopers/status/1890000000000000003"


async def test_a_bridge_backfill_gives_the_feed_once(server, client):
    server.serve("/XDevelopers/rss", fixture("nitter_feed.xml"))
    source = x_user(server, client, token=None, via="nitter", bridge_url=server.url(""))
    page = await source.backfill({}, None)
    assert [p.external_id for p in page.posts] == ["1890000000000000003", "1880000000000000005"]
    assert page.cursor is None


async def test_a_bridge_that_answers_no_feed_says_to_check_bridge_url(server, client):
    server.serve("/XDevelopers/rss", b"<html><body>instance is rate limited</body></html>")
    source = x_user(server, client, token=None, via="nitter", bridge_url=server.url(""))
    with pytest.raises(SourceError) as caught:
        await source.fetch({})
    assert "bridge_url" in str(caught.value) and "Nitter" in str(caught.value)


async def test_a_bridge_feed_is_fetched_conditionally(server, client):
    server.serve("/XDevelopers/rss", fixture("nitter_feed.xml"), headers={"ETag": '"v1"'})
    source = x_user(server, client, token=None, via="nitter", bridge_url=server.url(""))
    first = await source.fetch({})
    again = await source.fetch(first.state)
    assert again.not_modified and again.posts == []
