"""A json source's failures are SourceErrors that say what went wrong, GET and POST alike,
and never repeat a header value."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from localserver import Handler
from sigwatch.errors import FetchError, HTTPStatusError, ParseError, SourceError, TransportError
from sigwatch.net.client import OutboundClient
from sigwatch.sources.json_api import JsonApiSource, JsonOptions

TOKEN = "Bearer json-s3cr3t-token"
KEY = "json-s3cr3t-api-key"
METHODS = ["GET", "POST"]


@pytest.fixture
async def quick_client() -> AsyncIterator[OutboundClient]:
    """A client that gives up after half a second and reads at most 64 KiB."""
    async with OutboundClient(
        timeout_s=0.5,
        max_response_bytes=64 * 1024,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as opened:
        yield opened


def json_source(client: OutboundClient, url: str, method: str) -> JsonApiSource:
    options = JsonOptions.model_validate(
        {
            "url": url,
            "items": "data",
            "title": "title",
            "method": method,
            "body": {"page": 1} if method == "POST" else None,
            "headers": {"Authorization": TOKEN, "X-Api-Key": KEY},
        }
    )
    return JsonApiSource(options, client)


async def failure(client: OutboundClient, url: str, method: str) -> SourceError:
    with pytest.raises(SourceError) as caught:
        await json_source(client, url, method).fetch({})
    said = str(caught.value)
    assert "s3cr3t" not in said and TOKEN not in said and KEY not in said
    return caught.value


@pytest.mark.parametrize("method", METHODS)
async def test_a_slow_api_is_a_transport_error_that_says_it_timed_out(method, server, quick_client):
    url = server.sleep_then_serve("/api", 3.0)
    error = await failure(quick_client, url, method)
    assert isinstance(error, TransportError) and error.retryable
    assert "timed out after 0.5s" in str(error)


@pytest.mark.parametrize("method", METHODS)
async def test_a_server_error_is_a_retryable_status_error(method, server, quick_client):
    url = server.serve("/api", b"upstream down", status=503)
    error = await failure(quick_client, url, method)
    assert isinstance(error, HTTPStatusError) and error.status == 503 and error.retryable
    assert "HTTP 503 Service Unavailable" in str(error) and "tries again later" in str(error)


@pytest.mark.parametrize("method", METHODS)
async def test_a_rate_limit_carries_the_servers_retry_after(method, server, quick_client):
    url = server.serve("/api", b"{}", status=429, headers={"Retry-After": "90"})
    error = await failure(quick_client, url, method)
    assert isinstance(error, HTTPStatusError) and error.rate_limited
    assert error.wait_s == 90 and "rate-limiting" in str(error)


@pytest.mark.parametrize("method", METHODS)
async def test_refused_credentials_are_a_status_error_no_retry_fixes(method, server, quick_client):
    url = server.serve("/api", b'{"msg": "bad key"}', status=401)
    error = await failure(quick_client, url, method)
    assert isinstance(error, HTTPStatusError) and not error.retryable
    assert "set a credential" in str(error)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"data": [{"title": "cut', "Unterminated string starting at line 1, column 21"),
        (
            b"<html><body>Please enable JavaScript</body></html>",
            "Expecting value at line 1, column 1",
        ),
        (b"\xff\xfe\x00garbage", "did not return JSON"),
        (b"  ", "empty body"),
    ],
    ids=["truncated", "html", "not-utf8", "empty"],
)
async def test_a_body_that_is_not_json_is_a_parse_error(method, body, said, server, quick_client):
    url = server.serve("/api", body, headers={"Content-Type": "text/html"})
    error = await failure(quick_client, url, method)
    assert isinstance(error, ParseError) and said in str(error)


@pytest.mark.parametrize("method", METHODS)
async def test_a_connection_dropped_mid_body_is_a_transport_error(method, server, quick_client):
    def write(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b'{"data": [')
        handler.close_connection = True

    server.routes["/api"] = write
    error = await failure(quick_client, server.url("/api"), method)
    assert isinstance(error, TransportError) and "network error" in str(error)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_oversize_answer_is_refused_at_the_cap(method, chunked, server, quick_client):
    url = server.stream("/api", 1_000_000, chunked=chunked)
    error = await failure(quick_client, url, method)
    assert isinstance(error, FetchError) and "SIGWATCH_MAX_RESPONSE_BYTES" in str(error)


async def test_a_redirect_loop_is_a_fetch_error(server, quick_client):
    server.redirect("/a", "/b")
    server.redirect("/b", "/a")
    error = await failure(quick_client, server.url("/a"), "GET")
    assert "too many redirects" in str(error)


async def test_a_post_answered_with_a_redirect_says_to_use_the_final_address(server, quick_client):
    url = server.redirect("/api", "/api/v2", status=301)
    error = await failure(quick_client, url, "POST")
    assert isinstance(error, FetchError) and not isinstance(error, HTTPStatusError)
    assert "HTTP 301, a redirect to /api/v2" in str(error) and "set url" in str(error)
    assert [request.method for request in server.requests] == ["POST"]
