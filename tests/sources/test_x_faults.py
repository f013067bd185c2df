"""How x_user and x_search fail: every fault a SourceError saying what happened and what to do.

Rate limits are X's own headers (``x-rate-limit-remaining``, ``x-rate-limit-reset`` in epoch
seconds) on answers served from a real server on 127.0.0.1.
"""

from __future__ import annotations

import time

import pytest
from test_x_source import (
    LOOKUP,
    SEARCH,
    TIMELINE,
    TOKEN,
    USER_ID,
    fixture,
    platforms,
    serve,
    serve_account,
    x_search,
    x_user,
)

from sigwatch.errors import (
    FetchError,
    HTTPStatusError,
    ParseError,
    SourceError,
    SourcePaused,
    TransportError,
)
from sigwatch.net.client import OutboundClient
from sigwatch.sources.registry import build_source, validate_config
from sigwatch.worker.poll_backoff import plan_retry

KNOWN = {"user_id": USER_ID, "username": "XDevelopers", "user_id_for": "xdevelopers"}


def reset_in(seconds: int) -> str:
    return str(int(time.time()) + seconds)


async def test_remaining_zero_on_a_good_answer_waits_until_the_reset(server, client):
    serve(server, LOOKUP, "user_lookup.json")
    serve(
        server,
        TIMELINE,
        "user_timeline_newest.json",
        **{"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset_in(600)},
    )
    result = await x_user(server, client).fetch({})

    assert len(result.posts) == 2
    assert result.wait_s is not None and 590 <= result.wait_s <= 600


async def test_requests_left_mean_no_wait(server, client):
    limits = {"x-rate-limit-remaining": "179", "x-rate-limit-reset": reset_in(600)}
    serve(server, SEARCH, "search_page.json", **limits)
    assert (await x_search(server, client).fetch({})).wait_s is None


async def test_a_spent_limit_stops_paging_through_new_posts(server, client):
    serve(
        server,
        TIMELINE,
        "user_timeline_newest.json",
        **{"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset_in(300)},
    )
    result = await x_user(server, client).fetch({**KNOWN, "since_id": "1"})
    assert len(server.requests) == 1 and result.wait_s is not None


async def test_429_carries_the_reset_and_the_schedule_honours_it(server, client):
    server.serve(
        SEARCH,
        fixture("error_429.json"),
        status=429,
        headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset_in(900)},
    )

    with pytest.raises(HTTPStatusError) as caught:
        await x_search(server, client).fetch({})

    error = caught.value
    assert error.status == 429 and error.rate_limited and error.retryable
    assert error.wait_s is not None and 890 <= error.wait_s <= 900
    assert "rate-limiting" in str(error) and "15 min" in str(error)
    plan = plan_retry(error, interval_s=60, failures=1, max_backoff_s=3600)
    assert plan.delay_s >= 890 and plan.earliest_s >= 890


async def test_a_403_that_says_no_requests_remain_is_a_rate_limit_not_a_pause(server, client):
    server.serve(
        SEARCH,
        b"{}",
        status=403,
        headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset_in(120)},
    )
    with pytest.raises(HTTPStatusError) as caught:
        await x_search(server, client).fetch({})
    assert caught.value.rate_limited and not isinstance(caught.value, SourcePaused)


async def test_401_pauses_the_source_saying_how_to_fix_the_token(server, client):
    server.serve(LOOKUP, fixture("error_401.json"), status=401)
    with pytest.raises(SourcePaused) as caught:
        await x_user(server, client).fetch({})

    said = str(caught.value)
    assert "401" in said and "the source's bearer_token" in said
    assert "sigwatch source edit ID --set bearer_token=-" in said
    assert "sigwatch source resume ID" in said
    assert TOKEN not in said


async def test_401_with_the_operators_token_names_the_setting(server, client):
    server.serve(TIMELINE, fixture("error_401.json"), status=401)
    source = x_user(server, client, token=None, platform_token="operator-t0ken")
    with pytest.raises(SourcePaused) as caught:
        await source.fetch(KNOWN)
    assert "refused SIGWATCH_X_BEARER_TOKEN" in str(caught.value)
    assert "operator-t0ken" not in str(caught.value)


async def test_403_pauses_the_source_saying_the_plan_lacks_the_endpoint(server, client):
    server.serve(SEARCH, fixture("error_403_not_enrolled.json"), status=403)
    with pytest.raises(SourcePaused) as caught:
        await x_search(server, client).fetch({})
    assert "403" in str(caught.value) and "plan" in str(caught.value)
    assert "sigwatch source resume ID" in str(caught.value)


async def test_an_unknown_account_pauses_the_source_naming_it(server, client):
    server.serve("/2/users/by/username/nobody_here_1", fixture("user_not_found.json"))
    source = build_source(
        "x_user",
        validate_config("x_user", {"username": "nobody_here_1", "bearer_token": TOKEN}),
        client,
        platforms(server),
    )
    with pytest.raises(SourcePaused) as caught:
        await source.fetch({})
    said = str(caught.value)
    assert "@nobody_here_1" in said and "Could not find user" in said
    assert "--set username=" in said


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_a_retryable_status_error(server, client, status):
    server.serve(SEARCH, b"upstream trouble", status=status)
    with pytest.raises(HTTPStatusError) as caught:
        await x_search(server, client).fetch({})
    assert caught.value.retryable and f"HTTP {status}" in str(caught.value)
    assert "tries again later" in str(caught.value)


async def test_a_bad_request_says_to_check_the_options(server, client):
    server.serve(SEARCH, b'{"title":"Invalid Request"}', status=400)
    with pytest.raises(HTTPStatusError) as caught:
        await x_search(server, client).fetch({})
    assert not caught.value.retryable and "query's syntax" in str(caught.value)


async def test_a_timeout_is_a_transport_error(server):
    server.sleep_then_serve(SEARCH, 3.0)
    async with OutboundClient(
        timeout_s=0.5,
        max_response_bytes=100_000,
        max_redirects=1,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as slow_client:
        with pytest.raises(TransportError) as caught:
            await x_search(server, slow_client).fetch({})
    assert "timed out" in str(caught.value)


async def test_an_oversize_answer_is_a_fetch_error(server):
    server.stream(SEARCH, 300_000, chunked=True)
    async with OutboundClient(
        timeout_s=5.0,
        max_response_bytes=100_000,
        max_redirects=1,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as small_client:
        with pytest.raises(FetchError) as caught:
            await x_search(server, small_client).fetch({})
    assert "SIGWATCH_MAX_RESPONSE_BYTES" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Something went wrong</body></html>",
        b'{"data": [{"id": "1", "text": "cut',
        b"[1, 2, 3]",
        b'{"status": "ok"}',
        b"\xff\xfe not utf-8",
    ],
    ids=["html", "truncated", "array", "other-json", "not-utf8"],
)
async def test_a_body_that_is_not_x_json_is_a_parse_error(server, client, body):
    server.serve(SEARCH, body, headers={"Content-Type": "application/json"})
    with pytest.raises(ParseError) as caught:
        await x_search(server, client).fetch({})
    assert "SIGWATCH_X_API_URL" in str(caught.value)


async def test_data_without_posts_is_a_parse_error(server, client):
    server.serve(SEARCH, b'{"data": [{"end": "2021", "tweet_count": 3}]}')
    with pytest.raises(ParseError):
        await x_search(server, client).fetch({})


async def test_a_lookup_answer_that_is_not_json_is_a_parse_error(server, client):
    server.serve(LOOKUP, b'{"data": {"id": ')
    with pytest.raises(ParseError):
        await x_user(server, client).fetch({})


async def test_every_fault_is_a_source_error(server, client):
    serve_account(server)
    server.serve(TIMELINE, b"nope", status=418)
    with pytest.raises(SourceError):
        await x_user(server, client).fetch({})
