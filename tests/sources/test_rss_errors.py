"""An RSS source lets the client's network errors through unchanged: status, waits, kind."""

from __future__ import annotations

import socket

import pytest

from sigwatch.errors import HTTPStatusError, TransportError
from sigwatch.sources.rss import RssOptions, RssSource


def rss(client, url: str) -> RssSource:
    return RssSource(RssOptions(url=url), client)


async def test_a_rate_limited_feed_raises_a_status_error_with_the_servers_wait(server, client):
    url = server.serve("/feed.xml", b"", status=429, headers={"Retry-After": "90"})

    with pytest.raises(HTTPStatusError) as caught:
        await rss(client, url).fetch({})

    assert caught.value.status == 429 and caught.value.retryable
    assert caught.value.wait_s == 90


async def test_a_feed_needing_credentials_raises_a_status_error_no_retry_fixes(server, client):
    url = server.serve("/feed.xml", b"", status=401, headers={"WWW-Authenticate": "Basic"})

    with pytest.raises(HTTPStatusError, match="set a credential") as caught:
        await rss(client, url).fetch({"etag": '"v1"'})

    assert caught.value.status == 401 and not caught.value.retryable


async def test_a_feed_on_a_closed_port_raises_a_transport_error(client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/feed.xml"

        with pytest.raises(TransportError, match="could not connect") as caught:
            await rss(client, url).fetch({})

    assert caught.value.retryable
