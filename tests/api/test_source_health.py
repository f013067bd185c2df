"""What a user reads of a failing source: why it failed, how to fix it, and when it is tried next.

The source is made through the API, polled by the worker against a real server on 127.0.0.1,
and read back through the API.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from sigwatch.config import Settings
from sigwatch.worker.runner import collect_once


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with the SSRF guard letting the worker reach 127.0.0.1."""
    return settings.model_copy(
        update={"allowed_private_networks": ["127.0.0.1/32"], "max_backoff_s": 6 * 3600}
    )


async def poll_and_read(client, accounts, settings, sessions, url: str) -> tuple[dict, float]:
    headers = accounts.alice.headers
    created = await client.post(
        "/api/v1/sources",
        json={"kind": "rss", "name": "feed", "config": {"url": url}, "poll_interval_s": 60},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]
    await collect_once(settings, sessions, [source_id])
    shown = await client.get(f"/api/v1/sources/{source_id}", headers=headers)
    assert shown.status_code == 200
    body = shown.json()
    polled = datetime.fromisoformat(body["last_polled_at"].replace("Z", "+00:00"))
    next_poll = datetime.fromisoformat(body["next_poll_at"].replace("Z", "+00:00"))
    return body, (next_poll - polled).total_seconds()


async def test_a_feed_answering_401_says_to_set_a_credential_and_waits_hours(
    client, accounts, settings, sessions, server
):
    url = server.serve("/private.xml", b"", status=401)

    body, wait_s = await poll_and_read(client, accounts, settings, sessions, url)

    assert body["consecutive_failures"] == 1
    assert "HTTP 401 Unauthorized" in body["last_error"]
    assert "set a credential" in body["last_error"] and "poll it now" in body["last_error"]
    assert wait_s >= 6 * 3600 * 0.9 - 5


async def test_a_rate_limited_feed_shows_the_wait_the_server_asked_for(
    client, accounts, settings, sessions, server
):
    url = server.serve("/busy.xml", b"", status=429, headers={"Retry-After": "1200"})

    body, wait_s = await poll_and_read(client, accounts, settings, sessions, url)

    assert "asked to wait 20 min" in body["last_error"]
    assert 1190 <= wait_s <= 1205
