"""OutboundClient against a real server on 127.0.0.1: statuses, redirects, timeouts, size caps."""

from __future__ import annotations

import socket
import time
import tracemalloc

import httpx
import pytest
from structlog.testing import capture_logs

from sigwatch.config import load_settings
from sigwatch.errors import (
    BlockedAddress,
    ConfigError,
    FetchError,
    HTTPStatusError,
    TransportError,
)
from sigwatch.net.client import OutboundClient, redact_url


async def test_get_returns_status_headers_body_and_url(server, client):
    url = server.serve("/feed", b"<rss/>", headers={"Content-Type": "application/rss+xml"})

    response = await client.get(url)

    assert response.status == 200
    assert response.body == b"<rss/>"
    assert response.headers["content-type"] == "application/rss+xml"
    assert response.url == url


async def test_user_agent_and_caller_headers_are_sent(server, client):
    url = server.serve("/feed", b"ok")

    await client.get(url, headers={"If-None-Match": '"v1"'})

    seen = server.requests[-1].headers
    assert seen["user-agent"] == "sigwatch-test/1"
    assert seen["if-none-match"] == '"v1"'


async def test_304_is_returned_not_raised(server, client):
    url = server.serve("/feed", b"body", headers={"ETag": '"v1"'})

    response = await client.get(url, headers={"If-None-Match": '"v1"'})

    assert response.status == 304
    assert response.body == b""


async def test_redirects_are_followed_and_final_url_recorded(server, client):
    server.serve("/final", b"done")
    server.redirect("/hop2", "/final", status=301)  # relative Location
    start = server.redirect("/hop1", server.url("/hop2"), status=307)

    response = await client.get(start)

    assert response.body == b"done"
    assert response.url == server.url("/final")
    assert [r.path for r in server.requests] == ["/hop1", "/hop2", "/final"]


async def test_too_many_redirects_raise_fetch_error(server, make_client):
    url = server.redirect("/loop", "/loop")
    client = make_client(allowed_networks=["127.0.0.1/32"], max_redirects=2)

    with pytest.raises(FetchError, match="too many redirects") as caught:
        await client.get(url)

    assert "SIGWATCH_MAX_REDIRECTS" in str(caught.value)
    assert len(server.requests) == 3  # the first request and two redirects, then it stops


async def test_redirect_to_another_scheme_is_refused(server, client):
    url = server.redirect("/ftp", "ftp://example.com/feed")

    with pytest.raises(FetchError, match="only http:// and https://"):
        await client.get(url)


async def test_authorization_is_dropped_on_cross_origin_redirect(start_server, client):
    first = start_server("127.0.0.1")
    second = start_server("127.0.0.1")
    second.serve("/feed", b"ok")
    url = first.redirect("/feed", second.url("/feed"))

    await client.get(url, headers={"Authorization": "Bearer secret", "Accept": "text/xml"})

    assert first.requests[0].headers["authorization"] == "Bearer secret"
    assert "authorization" not in second.requests[0].headers
    assert second.requests[0].headers["accept"] == "text/xml"


@pytest.mark.parametrize(
    ("status", "phrase", "hint", "retryable"),
    [
        (404, "Not Found", "check the URL", False),
        (410, "Gone", "check the URL", False),
        (401, "Unauthorized", "set a credential", False),
        (403, "Forbidden", "refused access", False),
        (400, "Bad Request", "check the URL", False),
        (408, "Request Timeout", "tries again", True),
        (429, "Too Many Requests", "poll interval", True),
        (500, "Internal Server Error", "tries again", True),
        (503, "Service Unavailable", "tries again", True),
    ],
)
async def test_error_status_raises_status_error_saying_what_to_do(
    server, client, status, phrase, hint, retryable
):
    url = server.serve("/feed", b"nope", status=status)

    with pytest.raises(HTTPStatusError) as caught:
        await client.get(url)

    assert str(caught.value).startswith(f"HTTP {status} {phrase} from {url}: ")
    assert hint in str(caught.value)
    assert caught.value.status == status
    assert caught.value.retryable is retryable
    assert isinstance(caught.value, FetchError)  # callers catching FetchError still catch it


async def test_429_carries_the_retry_after_the_server_asked_for(server, client):
    url = server.serve("/feed", b"slow down", status=429, headers={"Retry-After": "120"})

    with pytest.raises(HTTPStatusError) as caught:
        await client.get(url)

    assert caught.value.retry_after_s == 120
    assert caught.value.rate_limited and caught.value.wait_s == 120
    assert "asked to wait 2 min" in str(caught.value)


async def test_503_with_an_http_date_retry_after_carries_the_seconds_until_then(server, client):
    later = time.time() + 600
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(later))
    url = server.serve("/feed", b"", status=503, headers={"Retry-After": stamp})

    with pytest.raises(HTTPStatusError) as caught:
        await client.get(url)

    assert caught.value.retry_after_s is not None and 590 <= caught.value.retry_after_s <= 600


async def test_a_rate_limit_reset_is_a_wait_only_on_a_rate_limit_refusal(server, client):
    reset = {"X-RateLimit-Reset": str(int(time.time()) + 900), "X-RateLimit-Remaining": "0"}
    limited = server.serve("/limited", b"", status=403, headers=reset)
    failed = server.serve(
        "/failed", b"", status=500, headers={**reset, "X-RateLimit-Remaining": "9"}
    )

    with pytest.raises(HTTPStatusError) as refused:
        await client.get(limited)
    with pytest.raises(HTTPStatusError) as broken:
        await client.get(failed)

    # GitHub answers an exhausted limit with 403 and the reset: a wait, not a hard refusal.
    assert refused.value.rate_limited and refused.value.retryable
    assert refused.value.wait_s is not None and 890 <= refused.value.wait_s <= 900
    assert "rate-limiting" in str(refused.value)
    # The same header on a plain server failure is the window's clock, not a request to wait.
    assert broken.value.rate_limit_reset_s is not None and broken.value.wait_s is None


async def test_unreadable_retry_after_is_ignored_not_an_error(server, client):
    url = server.serve("/feed", b"", status=429, headers={"Retry-After": "whenever"})

    with pytest.raises(HTTPStatusError) as caught:
        await client.get(url)

    assert caught.value.retry_after_s is None and caught.value.wait_s is None
    assert "poll interval" in str(caught.value)


async def test_slow_server_raises_fetch_error_naming_the_timeout(server, make_client):
    url = server.sleep_then_serve("/slow", seconds=3)
    client = make_client(allowed_networks=["127.0.0.1/32"], timeout_s=0.5)

    started = time.monotonic()
    with pytest.raises(TransportError, match=r"timed out after 0\.5s fetching http://127\.0\.0\.1"):
        await client.get(url)

    assert time.monotonic() - started < 2.5


async def test_trickling_body_is_cut_off_by_the_overall_deadline(server, make_client):
    # Every read succeeds within httpx's per-read timeout; only the whole-fetch deadline stops it.
    url = server.trickle("/drip", interval_s=0.1, total_s=5)
    client = make_client(allowed_networks=["127.0.0.1/32"], timeout_s=0.5)

    started = time.monotonic()
    with pytest.raises(TransportError, match="timed out after 0.5s"):
        await client.get(url)

    assert time.monotonic() - started < 2.5


async def test_content_length_over_the_cap_is_refused_before_reading(server, make_client):
    url = server.stream("/big", 50_000_000, chunked=False)
    client = make_client(allowed_networks=["127.0.0.1/32"], max_response_bytes=100_000)

    with pytest.raises(FetchError, match=r"is 50,000,000 bytes, over the limit of 100,000") as e:
        await client.get(url)

    assert "SIGWATCH_MAX_RESPONSE_BYTES" in str(e.value)


async def test_chunked_body_over_the_cap_stops_reading_at_the_cap(server, make_client):
    total = 64 * 1024 * 1024
    url = server.stream("/endless", total, chunked=True)
    client = make_client(allowed_networks=["127.0.0.1/32"], max_response_bytes=1_000_000)

    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match=r"exceeded the limit of 1,000,000 bytes"):
            await client.get(url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 8_000_000, f"peak memory {peak:,} bytes while fetching a capped body"
    assert server.bytes_sent < total  # the client hung up; the server never finished


async def test_body_at_the_cap_is_accepted(server, make_client):
    url = server.serve("/exact", b"y" * 1000)
    client = make_client(allowed_networks=["127.0.0.1/32"], max_response_bytes=1000)

    response = await client.get(url)

    assert len(response.body) == 1000


async def test_refused_connection_raises_a_retryable_transport_error(client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused

        with pytest.raises(TransportError, match=r"could not connect to 127\.0\.0\.1") as caught:
            await client.get(f"http://127.0.0.1:{port}/feed")

    assert caught.value.retryable


async def test_a_host_that_does_not_resolve_raises_a_transport_error(make_client):
    client = make_client()

    with pytest.raises(TransportError, match="could not connect to feed.invalid") as caught:
        await client.get("http://feed.invalid/rss.xml")

    assert caught.value.retryable


async def test_a_failed_tls_handshake_raises_a_transport_error(server, client):
    server.serve("/feed", b"plain http only")

    # The server speaks plain HTTP, so the TLS handshake fails.
    with pytest.raises(TransportError) as caught:
        await client.get(f"https://127.0.0.1:{server.port}/feed")

    assert caught.value.retryable and "127.0.0.1" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/feed", "file:///etc/passwd", "javascript:alert(1)", "gopher://x/"]
)
async def test_non_http_schemes_are_refused(client, url):
    with pytest.raises(FetchError, match="only http:// and https://"):
        await client.get(url)


async def test_custom_transport_is_used_without_the_guard(make_client):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"recorded " + request.url.host.encode())

    client = make_client(transport=httpx.MockTransport(answer))

    response = await client.get("http://10.0.0.1/api")

    assert response.body == b"recorded 10.0.0.1"


async def test_request_is_logged_once_with_secrets_redacted(server, client):
    server.serve("/feed", b"ok")
    url = server.url("/feed").replace("http://", "http://user:hunter2@") + (
        "?api_key=s3cr3t&page=2"
    )

    with capture_logs() as logs:
        await client.get(url)

    requests = [entry for entry in logs if entry["event"] == "outbound request"]
    assert len(requests) == 1
    logged = repr(logs)
    assert "hunter2" not in logged and "s3cr3t" not in logged
    assert requests[0]["url"] == server.url("/feed") + "?api_key=REDACTED&page=2"
    assert requests[0]["status"] == 200


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:p@example.com/feed", "https://example.com/feed"),
        (
            "https://example.com/rss?token=abc&lang=en",
            "https://example.com/rss?token=REDACTED&lang=en",
        ),
        (
            "https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/send",
            "https://api.telegram.org/REDACTED/send",
        ),
        ("https://example.com/a/b?q=bitcoin", "https://example.com/a/b?q=bitcoin"),
    ],
)
def test_redact_url_strips_userinfo_and_token_like_values(url, expected):
    assert redact_url(url) == expected


async def test_from_settings_reads_the_fetch_settings(monkeypatch, server):
    monkeypatch.setenv("SIGWATCH_ALLOWED_PRIVATE_NETWORKS", "10.0.0.0/8, 127.0.0.1/32")
    monkeypatch.setenv("SIGWATCH_FETCH_TIMEOUT_S", "3")
    settings = load_settings()
    url = server.serve("/feed", b"ok")

    async with OutboundClient.from_settings(settings) as client:
        response = await client.get(url)

    assert settings.allowed_private_networks == ["10.0.0.0/8", "127.0.0.1/32"]
    assert client.timeout_s == 3
    assert response.body == b"ok"


def test_allowed_private_networks_accepts_a_json_list(monkeypatch):
    monkeypatch.setenv("SIGWATCH_ALLOWED_PRIVATE_NETWORKS", '["192.168.1.0/24", "fd00::/8"]')

    assert load_settings().allowed_private_networks == ["192.168.1.0/24", "fd00::/8"]


def test_allowed_private_networks_rejects_a_non_cidr(monkeypatch):
    monkeypatch.setenv("SIGWATCH_ALLOWED_PRIVATE_NETWORKS", "192.168.1.0/24,my-nas")

    with pytest.raises(ConfigError, match="'my-nas' is not a network"):
        load_settings()


async def test_post_sends_body_and_headers_and_returns_the_answer(server, client):
    url = server.serve("/hook", b'{"ok":true}', headers={"Content-Type": "application/json"})

    response = await client.post(url, content=b'{"a":1}', headers={"X-Test": "yes"})

    assert (response.status, response.body) == (200, b'{"ok":true}')
    seen = server.requests[-1]
    assert (seen.method, seen.body) == ("POST", b'{"a":1}')
    assert seen.headers["x-test"] == "yes"
    assert seen.headers["user-agent"] == "sigwatch-test/1"


@pytest.mark.parametrize("status", [400, 410, 429, 503])
async def test_post_returns_error_statuses_instead_of_raising(server, client, status):
    url = server.serve("/hook", b"no", status=status, headers={"Retry-After": "7"})

    response = await client.post(url, content=b"{}")

    assert response.status == status
    assert response.headers["retry-after"] == "7"


async def test_post_does_not_follow_redirects(server, client):
    server.serve("/elsewhere", b"moved here")
    url = server.redirect("/hook", "/elsewhere", status=307)

    response = await client.post(url, content=b"{}")

    assert response.status == 307
    assert [r.path for r in server.requests] == ["/hook"]


async def test_post_to_a_private_address_is_refused_before_connecting(server, make_client):
    url = server.serve("/hook")
    client = make_client()  # no allowance: 127.0.0.1 is loopback

    with pytest.raises(BlockedAddress):
        await client.post(url, content=b"{}")

    assert server.connections == 0


async def test_post_to_a_slow_receiver_times_out(server, make_client):
    url = server.sleep_then_serve("/hook", seconds=3)
    client = make_client(allowed_networks=["127.0.0.1/32"], timeout_s=0.5)

    started = time.monotonic()
    with pytest.raises(
        TransportError, match=r"timed out after 0\.5s posting to http://127\.0\.0\.1"
    ):
        await client.post(url, content=b"{}")

    assert time.monotonic() - started < 2.5


async def test_post_answer_over_the_cap_is_refused(server, make_client):
    url = server.stream("/hook", 5_000_000, chunked=True)
    client = make_client(allowed_networks=["127.0.0.1/32"], max_response_bytes=10_000)

    with pytest.raises(FetchError, match="exceeded the limit of 10,000 bytes"):
        await client.post(url, content=b"{}")


async def test_post_to_a_closed_port_raises_fetch_error(client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

        with pytest.raises(FetchError, match=r"could not connect to 127\.0\.0\.1"):
            await client.post(f"http://127.0.0.1:{port}/hook", content=b"{}")
