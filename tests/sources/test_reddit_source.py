"""RedditSource against JSON listings served from a real server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from localserver import Static
from sigwatch.errors import (
    FetchError,
    HTTPStatusError,
    ParseError,
    SourceError,
    SourcePaused,
    TransportError,
)
from sigwatch.net.client import OutboundClient
from sigwatch.sources.base import Platforms, can_backfill
from sigwatch.sources.reddit import (
    RedditOptions,
    RedditSource,
    forget_tokens,
    oauth_base_url,
)
from sigwatch.sources.registry import build_source, source_origin

JSON = {"Content-Type": "application/json; charset=UTF-8"}
CLIENT_ID = "app-client-id"
SECRET = "app-s3cr3t-value"


@pytest.fixture(autouse=True)
def no_cached_tokens() -> Iterator[None]:
    """Each test asks for its own token: the cache outlives source objects on purpose."""
    forget_tokens()
    yield
    forget_tokens()


def link(fullname_id: str, created_utc: float = 1764756436.0, **fields: Any) -> dict[str, Any]:
    """A ``t3`` listing child as Reddit sends it (with ``raw_json=1``)."""
    data = {
        "id": fullname_id,
        "name": f"t3_{fullname_id}",
        "title": f"Post {fullname_id}",
        "selftext": "",
        "selftext_html": None,
        "author": "alice",
        "subreddit": "example",
        "permalink": f"/r/example/comments/{fullname_id}/post/",
        "url": f"https://www.reddit.com/r/example/comments/{fullname_id}/post/",
        "created_utc": created_utc,
        "score": 12,
        "num_comments": 3,
        "upvote_ratio": 0.93,
        "is_self": True,
        "stickied": False,
    }
    data.update(fields)
    return {"kind": "t3", "data": data}


def listing(*children: dict[str, Any], after: str | None = None) -> bytes:
    return json.dumps(
        {"kind": "Listing", "data": {"after": after, "before": None, "children": list(children)}}
    ).encode()


def reddit(client: OutboundClient, server, **options: Any) -> RedditSource:
    platforms = Platforms(reddit_url=server.url("").rstrip("/"))
    chosen = options or {"subreddit": "example"}
    return RedditSource(RedditOptions.model_validate(chosen), client, platforms)


def query_of(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query)


# Options


@pytest.mark.parametrize(
    "given",
    [
        "python",
        " r/python ",
        "/r/python/",
        "https://www.reddit.com/r/python/new/",
        "reddit.com/r/python",
    ],
)
def test_a_subreddit_is_given_by_name_or_address(given):
    assert RedditOptions(subreddit=given).subreddit == "python"


def test_subreddits_joined_by_plus_are_one_listing():
    assert RedditOptions(subreddit="python+rust").subreddit == "python+rust"


@pytest.mark.parametrize(
    "given", ["spez", "u/spez", "/user/spez", "https://www.reddit.com/user/spez"]
)
def test_a_user_is_given_by_name_or_address(given):
    assert RedditOptions(user=given).user == "spez"


@pytest.mark.parametrize(
    ("config", "said"),
    [
        ({}, "set exactly one of `subreddit`, `user` or `search` (got none)"),
        ({"subreddit": "python", "user": "spez"}, "(got subreddit, user)"),
        ({"subreddit": "no spaces"}, "must be a subreddit name"),
        ({"subreddit": "https://example.com/r/python"}, "reddit.com address"),
        ({"user": "a"}, "must be a Reddit user name"),
        ({"search": "   "}, "must not be blank"),
        ({"search": "x" * 513}, "at most 512"),
        ({"user": "spez", "listing": "rising"}, "only for a subreddit"),
        ({"subreddit": "python", "listing": "best"}, "listing"),
        ({"subreddit": "python", "client_id": CLIENT_ID}, "set both `client_id`"),
        ({"subreddit": "python", "client_id": "a b", "client_secret": SECRET}, "one word"),
    ],
)
def test_options_refuse_what_reddit_cannot_list(config, said):
    with pytest.raises(ValidationError) as caught:
        RedditOptions.model_validate(config)
    assert said in str(caught.value)


def test_options_refuse_unknown_keys():
    with pytest.raises(ValidationError):
        RedditOptions.model_validate({"subreddit": "python", "sort": "new"})


@pytest.mark.parametrize(
    ("config", "origin"),
    [
        ({"subreddit": "r/Python"}, "reddit:r/python:new"),
        ({"subreddit": "python", "listing": "top"}, "reddit:r/python:top"),
        ({"user": "Spez", "listing": "hot"}, "reddit:u/spez:hot"),
        ({"search": "Example  TGE"}, "reddit:search:example tge:new"),
    ],
)
def test_origin_names_what_is_read_and_the_listing(config, origin):
    assert source_origin("reddit", config) == origin


def test_the_credentials_are_secret_options():
    config = {"subreddit": "python", "client_id": CLIENT_ID, "client_secret": SECRET}

    options = RedditOptions.model_validate(config)

    assert SECRET not in repr(options) and CLIENT_ID not in repr(options)


# Requests


async def test_a_subreddit_listing_is_requested_with_limit_and_raw_json(server, client):
    server.serve("/r/example/new.json", listing(link("a1")), headers=JSON)

    await reddit(client, server).fetch({})

    (request,) = server.requests
    assert urlsplit(request.path).path == "/r/example/new.json"
    assert query_of(request.path) == {"limit": ["100"], "raw_json": ["1"]}
    assert request.headers["user-agent"] == "sigwatch-test/1"
    assert "authorization" not in request.headers


@pytest.mark.parametrize("listing_name", ["new", "hot", "top", "rising"])
async def test_each_subreddit_listing_has_its_path(server, client, listing_name):
    server.serve(f"/r/example/{listing_name}.json", listing(link("a1")), headers=JSON)

    await reddit(client, server, subreddit="example", listing=listing_name).fetch({})

    assert urlsplit(server.requests[0].path).path == f"/r/example/{listing_name}.json"


async def test_a_user_listing_reads_the_submitted_posts_sorted_by_the_listing(server, client):
    server.serve("/user/spez/submitted.json", listing(link("a1")), headers=JSON)

    await reddit(client, server, user="u/spez", listing="top").fetch({})

    path = server.requests[0].path
    assert urlsplit(path).path == "/user/spez/submitted.json"
    assert query_of(path) == {"sort": ["top"], "limit": ["100"], "raw_json": ["1"]}


async def test_a_search_sends_the_query_and_the_sort(server, client):
    server.serve("/search.json", listing(link("a1")), headers=JSON)

    await reddit(client, server, search="example protocol TGE").fetch({})

    path = server.requests[0].path
    assert urlsplit(path).path == "/search.json"
    assert query_of(path) == {
        "q": ["example protocol TGE"],
        "sort": ["new"],
        "limit": ["100"],
        "raw_json": ["1"],
    }


# Posts


async def test_a_self_post_becomes_a_post_with_plain_text_and_sanitised_html(server, client):
    body_html = (
        '<!-- SC_OFF --><div class="md"><p>The <strong>TGE</strong> is Friday.</p>\n'
        '<p>Details in <a href="/r/example/wiki/tge">the wiki</a></p>'
        "<script>steal()</script></div><!-- SC_ON -->"
    )
    item = link("a1", selftext="The **TGE** is Friday.", selftext_html=body_html)
    server.serve("/r/example/new.json", listing(item), headers=JSON)

    post = (await reddit(client, server).fetch({})).posts[0]

    assert post.external_id == "t3_a1"
    assert post.title == "Post a1"
    assert post.text == "The TGE is Friday.\nDetails in the wiki"
    assert post.html is not None and "<strong>TGE</strong>" in post.html
    assert 'href="https://www.reddit.com/r/example/wiki/tge"' in post.html
    assert "script" not in post.html and "steal" not in post.html
    assert post.url == "https://www.reddit.com/r/example/comments/a1/post/"
    assert post.author == "u/alice"
    assert post.published_at == datetime(2025, 12, 3, 10, 7, 16, tzinfo=UTC)
    assert post.metrics == {"score": 12, "num_comments": 3, "upvote_ratio": 0.93}
    assert post.raw == item


async def test_a_link_post_without_self_text_has_the_link_as_text(server, client):
    item = link("a1", is_self=False, url="https://example.com/announcement")
    server.serve("/r/example/new.json", listing(item), headers=JSON)

    post = (await reddit(client, server).fetch({})).posts[0]

    assert post.text == "https://example.com/announcement"
    assert post.html is None
    assert post.url == "https://www.reddit.com/r/example/comments/a1/post/"


async def test_a_deleted_author_is_no_author(server, client):
    server.serve("/r/example/new.json", listing(link("a1", author="[deleted]")), headers=JSON)

    assert (await reddit(client, server).fetch({})).posts[0].author is None


async def test_a_comment_in_a_user_listing_becomes_a_post_from_its_body(server, client):
    comment = {
        "kind": "t1",
        "data": {
            "id": "c09jty6",
            "name": "t1_c09jty6",
            "author": "spez",
            "body": "Not necessarily.",
            "body_html": '<div class="md"><p>Not necessarily.</p>\n\n<p>Second.</p></div>',
            "link_id": "t3_8k6wx",
            "permalink": "/r/reddit.com/comments/8k6wx/x/c09jty6/",
            "created_utc": 1242248189.0,
            "score": 7,
        },
    }
    server.serve("/user/spez/submitted.json", listing(comment), headers=JSON)

    post = (await reddit(client, server, user="spez").fetch({})).posts[0]

    assert post.external_id == "t1_c09jty6" and post.title is None
    assert post.text == "Not necessarily.\nSecond."
    assert post.url == "https://www.reddit.com/r/reddit.com/comments/8k6wx/x/c09jty6/"
    assert post.metrics == {"score": 7}


async def test_children_that_are_no_posts_are_left_out(server, client):
    more = {"kind": "more", "data": {"id": "x", "children": ["a", "b"]}}
    server.serve("/r/example/new.json", listing(link("a1"), more), headers=JSON)

    posts = (await reddit(client, server).fetch({})).posts

    assert [post.external_id for post in posts] == ["t3_a1"]


async def test_an_empty_listing_gives_no_posts_and_no_error(server, client):
    server.serve("/r/example/new.json", listing(), headers=JSON)

    result = await reddit(client, server).fetch({})

    assert result.posts == [] and result.warnings == [] and result.state == {}


# Polling


async def test_each_poll_is_one_request_for_the_whole_first_page(server, client):
    server.serve("/r/example/new.json", listing(link("a2", 200.0), link("a1", 100.0)), headers=JSON)
    source = reddit(client, server)

    first = await source.fetch({})
    second = await source.fetch(json.loads(json.dumps(first.state)))

    assert len(server.requests) == 2
    assert [p.external_id for p in second.posts] == [p.external_id for p in first.posts]
    assert first.state == {"newest_created_utc": 200.0} == second.state


async def test_a_full_page_of_only_newer_posts_warns_of_a_gap(server, client):
    page = [link(f"n{number}", 1000.0 + number) for number in range(100, 0, -1)]
    server.serve("/r/example/new.json", listing(*page, after="t3_n1"), headers=JSON)

    result = await reddit(client, server).fetch({"newest_created_utc": 900.0})

    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("more than 100 posts since the last poll")
    assert result.state["newest_created_utc"] == 1100.0


async def test_a_page_reaching_back_to_the_last_poll_does_not_warn(server, client):
    page = [link(f"n{number}", 1000.0 + number) for number in range(100, 0, -1)]
    server.serve("/r/example/new.json", listing(*page), headers=JSON)

    result = await reddit(client, server).fetch({"newest_created_utc": 1050.0})

    assert result.warnings == []


async def test_a_pinned_old_post_is_not_taken_for_the_newest(server, client):
    pinned = link("old", 5.0, stickied=True)
    server.serve("/r/example/new.json", listing(pinned, link("a1", 100.0)), headers=JSON)

    result = await reddit(client, server).fetch({})

    assert result.state == {"newest_created_utc": 100.0}
    assert len(result.posts) == 2


async def test_an_exhausted_rate_limit_makes_the_next_poll_wait(server, client):
    headers = {**JSON, "x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "42"}
    server.serve("/r/example/new.json", listing(link("a1")), headers=headers)

    result = await reddit(client, server).fetch({})

    assert result.wait_s == 42


async def test_a_rate_limit_with_requests_left_asks_no_wait(server, client):
    headers = {**JSON, "x-ratelimit-remaining": "997.0", "x-ratelimit-reset": "42"}
    server.serve("/r/example/new.json", listing(link("a1")), headers=headers)

    assert (await reddit(client, server).fetch({})).wait_s is None


# Backfill


async def test_backfill_follows_after_until_the_listing_ends(server, client):
    source = reddit(client, server)
    assert can_backfill(source)
    server.serve(
        "/r/example/new.json", listing(link("a2"), link("a1"), after="t3_a1"), headers=JSON
    )

    first = await source.backfill({}, None)
    server.serve("/r/example/new.json", listing(link("a0")), headers=JSON)
    last = await source.backfill({}, first.cursor)

    assert [post.external_id for post in first.posts] == ["t3_a2", "t3_a1"]
    assert first.cursor == {"after": "t3_a1"}
    assert query_of(server.requests[-1].path)["after"] == ["t3_a1"]
    assert [post.external_id for post in last.posts] == ["t3_a0"]
    assert last.cursor is None


async def test_backfill_with_a_cursor_without_after_is_a_parse_error(server, client):
    with pytest.raises(ParseError, match="start the backfill again"):
        await reddit(client, server).backfill({}, {"after": 7})


# OAuth


def oauth_source(client: OutboundClient, server) -> RedditSource:
    return reddit(client, server, subreddit="example", client_id=CLIENT_ID, client_secret=SECRET)


def serve_token(server, token: str = "tok-1", expires_in: int = 86400) -> None:
    body = {"access_token": token, "token_type": "bearer", "expires_in": expires_in, "scope": "*"}
    server.serve("/api/v1/access_token", json.dumps(body).encode(), headers=JSON)


def test_the_oauth_host_is_reddits_for_reddit_and_the_same_base_otherwise():
    assert oauth_base_url("https://www.reddit.com") == "https://oauth.reddit.com"
    assert oauth_base_url("https://old.reddit.com/") == "https://oauth.reddit.com"
    assert oauth_base_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"


async def test_credentials_get_an_app_only_token_that_the_listing_request_carries(server, client):
    serve_token(server)
    server.serve("/r/example/new.json", listing(link("a1")), headers=JSON)

    result = await oauth_source(client, server).fetch({})

    token_request, listing_request = server.requests
    assert token_request.method == "POST" and token_request.path == "/api/v1/access_token"
    assert token_request.body == b"grant_type=client_credentials"
    expected = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert token_request.headers["authorization"] == f"Basic {expected}"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert listing_request.method == "GET"
    assert listing_request.headers["authorization"] == "bearer tok-1"
    assert [post.external_id for post in result.posts] == ["t3_a1"]
    assert SECRET not in json.dumps(result.state) and "tok-1" not in json.dumps(result.state)


async def test_the_token_is_reused_by_later_polls_until_it_expires(server, client):
    serve_token(server)
    server.serve("/r/example/new.json", listing(link("a1")), headers=JSON)

    await oauth_source(client, server).fetch({})
    await oauth_source(client, server).fetch({})

    assert [request.method for request in server.requests] == ["POST", "GET", "GET"]


async def test_an_expired_token_is_renewed(server, client):
    serve_token(server, expires_in=30)  # under the renewal margin: expired at once
    server.serve("/r/example/new.json", listing(link("a1")), headers=JSON)

    await oauth_source(client, server).fetch({})
    await oauth_source(client, server).fetch({})

    assert [request.method for request in server.requests] == ["POST", "GET", "POST", "GET"]


async def test_a_revoked_cached_token_is_replaced_once(server, client):
    serve_token(server, "tok-1")
    server.serve("/r/example/new.json", listing(link("a1")), headers=JSON)
    await oauth_source(client, server).fetch({})
    serve_token(server, "tok-2")
    refused_first = iter([True])

    def listing_once_refused(handler) -> None:
        if next(refused_first, False):
            handler.send_static(Static(b'{"message": "Unauthorized", "error": 401}', 401, JSON))
        else:
            handler.send_static(Static(listing(link("a1")), 200, JSON))

    server.routes["/r/example/new.json"] = listing_once_refused

    result = await oauth_source(client, server).fetch({})

    assert [post.external_id for post in result.posts] == ["t3_a1"]
    assert [r.method for r in server.requests] == ["POST", "GET", "GET", "POST", "GET"]
    assert server.requests[-1].headers["authorization"] == "bearer tok-2"


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_refused_credentials_pause_the_source_without_showing_the_secret(
    server, client, status
):
    server.serve(
        "/api/v1/access_token", b'{"message": "Unauthorized", "error": 401}', status=status
    )

    with pytest.raises(SourcePaused) as caught:
        await oauth_source(client, server).fetch({})

    message = str(caught.value)
    assert message.startswith(f"Reddit refused the app credentials (HTTP {status})")
    assert "https://www.reddit.com/prefs/apps" in message
    assert SECRET not in message and CLIENT_ID not in message
    assert [request.method for request in server.requests] == ["POST"]


async def test_an_error_object_from_the_token_endpoint_pauses_the_source(server, client):
    server.serve("/api/v1/access_token", b'{"error": "invalid_grant"}', headers=JSON)

    with pytest.raises(SourcePaused, match=r"HTTP 200, invalid_grant"):
        await oauth_source(client, server).fetch({})


async def test_a_failing_token_endpoint_is_a_retryable_status_error(server, client):
    server.serve("/api/v1/access_token", b"down", status=503, headers={"Retry-After": "30"})

    with pytest.raises(HTTPStatusError) as caught:
        await oauth_source(client, server).fetch({})

    assert caught.value.retryable and caught.value.wait_s == 30


async def test_a_token_answer_without_a_token_is_a_parse_error(server, client):
    server.serve("/api/v1/access_token", b'{"token_type": "bearer"}', headers=JSON)

    with pytest.raises(ParseError, match="without an access_token"):
        await oauth_source(client, server).fetch({})


# Failures


async def test_an_unknown_subreddit_says_it_was_not_found(server, client):
    server.serve("/r/example/new.json", b'{"message": "Not Found", "error": 404}', status=404)

    with pytest.raises(HTTPStatusError) as caught:
        await reddit(client, server).fetch({})

    message = str(caught.value)
    assert message.startswith("r/example was not found: the subreddit may be banned")
    assert "https://www.reddit.com/r/example" in message and "HTTP 404" in message
    assert caught.value.status == 404 and not caught.value.retryable


async def test_an_unknown_user_says_it_was_not_found(server, client):
    server.serve("/user/nobody_here/submitted.json", b"{}", status=404)

    with pytest.raises(HTTPStatusError, match=r"^u/nobody_here was not found"):
        await reddit(client, server, user="nobody_here").fetch({})


async def test_a_redirect_to_the_subreddit_search_means_not_found(server, client):
    server.redirect("/r/example/new.json", "/subreddits/search.json?q=example")
    server.serve("/subreddits/search.json", listing(), headers=JSON)

    with pytest.raises(HTTPStatusError) as caught:
        await reddit(client, server).fetch({})

    assert str(caught.value).startswith("r/example was not found")
    assert "redirected to its subreddit search" in str(caught.value)
    assert caught.value.status == 404 and not caught.value.retryable


async def test_a_private_subreddit_says_what_403_means(server, client):
    body = b'{"reason": "private", "message": "Forbidden", "error": 403}'
    server.serve("/r/example/new.json", body, status=403)

    with pytest.raises(HTTPStatusError) as caught:
        await reddit(client, server).fetch({})

    message = str(caught.value)
    assert message.startswith("Reddit refused access to r/example (HTTP 403 Forbidden")
    assert "private, quarantined or banned" in message
    assert "set `client_id` and `client_secret`" in message


async def test_429_honours_retry_after_and_suggests_credentials(server, client):
    server.serve("/r/example/new.json", b"{}", status=429, headers={"Retry-After": "90"})

    with pytest.raises(HTTPStatusError) as caught:
        await reddit(client, server).fetch({})

    assert caught.value.rate_limited and caught.value.wait_s == 90
    assert "set `client_id` and `client_secret`" in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_retryable(server, client, status):
    server.serve("/r/example/new.json", b"down", status=status)

    with pytest.raises(HTTPStatusError) as caught:
        await reddit(client, server).fetch({})

    assert caught.value.retryable and f"HTTP {status}" in str(caught.value)


async def test_401_without_credentials_is_a_status_error(server, client):
    server.serve("/r/example/new.json", b"{}", status=401)

    with pytest.raises(HTTPStatusError, match="HTTP 401"):
        await reddit(client, server).fetch({})


@pytest.mark.parametrize(
    "body",
    [b"<html><body>blocked</body></html>", b'{"kind": "Listing", "data": {"chil', b""],
    ids=["html", "truncated", "empty"],
)
async def test_a_body_that_is_no_json_is_a_parse_error(server, client, body):
    server.serve("/r/example/new.json", body, headers=JSON)

    with pytest.raises(ParseError) as caught:
        await reddit(client, server).fetch({})

    assert "did not answer JSON" in str(caught.value)
    assert "SIGWATCH_REDDIT_URL" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [b'{"kind": "t3", "data": {}}', b"[1, 2]", b'"Listing"', b'{"kind": "Listing", "data": []}'],
)
async def test_json_that_is_no_listing_is_a_parse_error(server, client, body):
    server.serve("/r/example/new.json", body, headers=JSON)

    with pytest.raises(ParseError, match="did not answer a Reddit listing"):
        await reddit(client, server).fetch({})


async def test_reddits_error_object_with_status_200_is_a_parse_error(server, client):
    server.serve("/r/example/new.json", b'{"message": "Not Found", "error": 404}', headers=JSON)

    with pytest.raises(ParseError, match=r"error 404 \(Not Found\) for r/example"):
        await reddit(client, server).fetch({})


async def test_a_listing_that_does_not_answer_in_time_is_a_transport_error(server):
    server.sleep_then_serve("/r/example/new.json", 3.0)
    async with OutboundClient(
        timeout_s=0.3,
        max_response_bytes=100_000,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as slow_client:
        with pytest.raises(TransportError, match="timed out after 0.3s"):
            await reddit(slow_client, server).fetch({})


async def test_a_token_endpoint_that_does_not_answer_in_time_is_a_transport_error(server):
    server.sleep_then_serve("/api/v1/access_token", 3.0)
    async with OutboundClient(
        timeout_s=0.3,
        max_response_bytes=100_000,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as slow_client:
        with pytest.raises(TransportError, match="timed out after 0.3s"):
            await oauth_source(slow_client, server).fetch({})


async def test_an_oversize_listing_is_a_fetch_error(server):
    server.serve("/r/example/new.json", listing(*[link(f"a{n}") for n in range(50)]), headers=JSON)
    async with OutboundClient(
        timeout_s=2.0,
        max_response_bytes=1000,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as small_client:
        with pytest.raises(FetchError, match="over the limit of 1,000"):
            await reddit(small_client, server).fetch({})


async def test_a_redirect_loop_is_a_fetch_error(server, client):
    server.redirect("/r/example/new.json", "/r/example/new.json?again=1")

    with pytest.raises(FetchError, match="too many redirects"):
        await reddit(client, server).fetch({})


async def test_every_failure_is_a_source_error(server, client):
    server.serve("/r/example/new.json", b"teapot", status=418)

    with pytest.raises(SourceError, match="HTTP 418"):
        await reddit(client, server).fetch({})


async def test_the_registry_builds_the_reddit_kind(server, client):
    server.serve("/r/example/hot.json", listing(link("a1")), headers=JSON)
    platforms = Platforms(reddit_url=server.url("").rstrip("/"))

    source = build_source("reddit", {"subreddit": "r/example", "listing": "hot"}, client, platforms)

    assert [post.external_id for post in (await source.fetch({})).posts] == ["t3_a1"]
