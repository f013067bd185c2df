"""Poll intervals through the API: each kind's minimum (the fast lane), and adaptive polling's
chosen interval and its reason in the source's health."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest

from sigwatch.config import Settings
from sigwatch.db.types import utcnow
from sigwatch.errors import InvalidInput
from sigwatch.manage.sources import check_poll_interval, create_source
from sigwatch.worker.runner import collect_once

FEED = {"kind": "rss", "name": "news", "config": {"url": "https://news.example/feed"}}
JSON_API = {
    "kind": "json",
    "name": "listings",
    "config": {"url": "https://api.example/listings", "items": "data[]", "title": "title"},
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with the SSRF guard letting the worker reach 127.0.0.1."""
    return settings.model_copy(update={"allowed_private_networks": ["127.0.0.1/32"]})


def refusal(response) -> dict:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    return error


async def test_an_rss_interval_below_the_rss_minimum_is_422_naming_field_and_minimum(
    client, accounts
):
    response = await client.post(
        "/api/v1/sources", json={**FEED, "poll_interval_s": 29}, headers=accounts.alice.headers
    )

    error = refusal(response)
    assert error["loc"] == ["body", "poll_interval_s"]
    assert "at least 30 seconds for rss sources" in error["msg"]
    assert "SIGWATCH_MIN_POLL_INTERVAL_RSS_S" in error["msg"]
    listed = await client.get("/api/v1/sources", headers=accounts.alice.headers)
    assert listed.json()["items"] == []


async def test_a_json_source_may_be_polled_every_second(client, accounts):
    response = await client.post(
        "/api/v1/sources", json={**JSON_API, "poll_interval_s": 1}, headers=accounts.alice.headers
    )

    assert response.status_code == 201, response.text
    assert response.json()["poll_interval_s"] == 1


async def test_an_interval_of_zero_is_refused_for_every_kind(client, accounts):
    response = await client.post(
        "/api/v1/sources", json={**JSON_API, "poll_interval_s": 0}, headers=accounts.alice.headers
    )

    assert refusal(response)["loc"] == ["body", "poll_interval_s"]


async def test_changing_an_interval_to_below_the_kinds_minimum_is_422_and_changes_nothing(
    client, accounts
):
    created = await client.post(
        "/api/v1/sources", json={**FEED, "poll_interval_s": 120}, headers=accounts.alice.headers
    )
    url = f"/api/v1/sources/{created.json()['id']}"

    response = await client.patch(url, json={"poll_interval_s": 5}, headers=accounts.alice.headers)

    assert refusal(response)["loc"] == ["body", "poll_interval_s"]
    shown = await client.get(url, headers=accounts.alice.headers)
    assert shown.json()["poll_interval_s"] == 120


async def test_a_new_sources_default_interval_is_raised_to_its_kinds_minimum(settings, sessions):
    quick = settings.model_copy(update={"poll_interval_s": 20})
    async with sessions.begin() as session:
        source = await create_source(
            session,
            owner_id=None,
            kind="reddit",
            name="r/crypto",
            config={"subreddit": "CryptoCurrency"},
            secret_key="",
            settings=quick,
        )

    assert source.poll_interval_s == settings.min_poll_interval_reddit_s == 60


def test_an_operator_may_lower_a_kinds_minimum(settings):
    lowered = settings.model_copy(update={"min_poll_interval_rss_s": 5})

    check_poll_interval("rss", 5, lowered)
    with pytest.raises(InvalidInput, match="at least 30 seconds"):
        check_poll_interval("rss", 5, settings)


async def test_the_health_shows_the_chosen_interval_and_why(
    client, accounts, settings, sessions, server
):
    now = utcnow()
    items = "".join(
        f"<item><title>t{n}</title><guid>g{n}</guid><description>d</description>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=4 * n))}</pubDate></item>"
        for n in range(5)
    )
    feed = f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()
    url = server.serve("/feed.xml", feed)
    created = await client.post(
        "/api/v1/sources",
        json={"kind": "rss", "name": "feed", "config": {"url": url}, "poll_interval_s": 600},
        headers=accounts.alice.headers,
    )
    source_id = created.json()["id"]
    assert created.json()["interval_reason"] is None

    await collect_once(settings, sessions, [source_id])

    shown = (
        await client.get(f"/api/v1/sources/{source_id}", headers=accounts.alice.headers)
    ).json()
    assert shown["interval_reason"] == "adaptive: new posts every ~4 min → 60 s"
    assert 54 <= shown["effective_interval_s"] <= 66
    assert shown["post_gap_s"] == pytest.approx(240, abs=1)
    assert shown["post_gap_samples"] == 4
    assert shown["last_new_post_at"] is not None
