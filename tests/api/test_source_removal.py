"""One copy of a feed per owner (409 naming it), and removal that stops a source, keeps its posts.

Ids are never reused: a purged row's id is not given to the next source, on SQLite too.
"""

from __future__ import annotations

from sqlalchemy import text

from feedbuilder import rss_feed
from sigwatch.net.client import OutboundClient
from sigwatch.worker.runner import collect_once

FEED = {"kind": "rss", "name": "Example news", "config": {"url": "https://news.example/feed"}}


async def add(client, headers, url: str, name: str = "Example news"):
    return await client.post(
        "/api/v1/sources",
        json={"kind": "rss", "name": name, "config": {"url": url}},
        headers=headers,
    )


def loopback_client() -> OutboundClient:
    return OutboundClient(
        timeout_s=5.0,
        max_response_bytes=1_000_000,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    )


async def test_the_same_feed_twice_is_a_409_naming_the_source_the_owner_has(client, accounts):
    alice = accounts.alice.headers
    first = await add(client, alice, "https://news.example/feed", name="Wire")
    assert first.status_code == 201
    source_id = first.json()["id"]

    for same in (
        "https://news.example/feed",
        "https://News.EXAMPLE:443/feed/",
        "HTTPS://news.example/feed#latest",
    ):
        again = await add(client, alice, same, name="Wire again")
        assert again.status_code == 409, (same, again.text)
        assert f"source {source_id}" in again.json()["detail"]
        assert "'Wire'" in again.json()["detail"]

    assert (await add(client, alice, "https://news.example/feed?page=2")).status_code == 201
    assert (await add(client, alice, "http://news.example/feed")).status_code == 201
    assert (await add(client, accounts.bob.headers, "https://news.example/feed")).status_code == 201
    listed = await client.get("/api/v1/sources", headers=alice)
    assert len(listed.json()["items"]) == 3


async def test_changing_a_source_to_an_address_the_owner_has_is_a_409(client, accounts):
    alice = accounts.alice.headers
    kept = (await add(client, alice, "https://news.example/feed", name="Wire")).json()
    other = (await add(client, alice, "https://other.example/feed")).json()

    moved = await client.patch(
        f"/api/v1/sources/{other['id']}",
        json={"config": {"url": "https://NEWS.example/feed/"}},
        headers=alice,
    )

    assert moved.status_code == 409 and f"source {kept['id']}" in moved.json()["detail"]
    unchanged = await client.get(f"/api/v1/sources/{other['id']}", headers=alice)
    assert unchanged.json()["config"]["url"] == "https://other.example/feed"


async def test_a_removed_source_is_not_polled_or_listed_and_its_posts_stay_searchable(
    client, accounts, settings, sessions, server
):
    alice = accounts.alice.headers
    url = server.serve(
        "/feed.xml",
        rss_feed(["Helix mainnet launch date set"]),
        headers={"Content-Type": "application/rss+xml"},
    )
    source = (await add(client, alice, url)).json()
    async with loopback_client() as outbound:
        (polled,) = await collect_once(settings, sessions, [source["id"]], client=outbound)
        assert polled.ok and polled.new == 1
        requests_before = len(server.requests)

        assert (
            await client.delete(f"/api/v1/sources/{source['id']}", headers=alice)
        ).status_code == 204
        assert await collect_once(settings, sessions, None, client=outbound) == []
        assert await collect_once(settings, sessions, [source["id"]], client=outbound) == []
    assert len(server.requests) == requests_before

    assert (await client.get(f"/api/v1/sources/{source['id']}", headers=alice)).status_code == 404
    assert (await client.get("/api/v1/sources", headers=alice)).json()["items"] == []
    found = await client.get("/api/v1/posts", params={"q": "Helix"}, headers=alice)
    assert [post["title"] for post in found.json()["items"]] == ["Helix mainnet launch date set"]
    by_source = await client.get("/api/v1/posts", params={"source_id": source["id"]}, headers=alice)
    assert by_source.status_code == 200 and len(by_source.json()["items"]) == 1
    assert (await client.get("/api/v1/posts", headers=accounts.bob.headers)).json()["items"] == []
    hidden = await client.get(
        "/api/v1/posts", params={"source_id": source["id"]}, headers=accounts.bob.headers
    )
    assert hidden.status_code == 404

    again = await add(client, alice, url)
    assert again.status_code == 201 and again.json()["id"] > source["id"]


async def test_the_id_of_a_purged_source_is_never_given_again(client, accounts, sessions):
    alice = accounts.alice.headers
    first = (await add(client, alice, "https://one.example/feed")).json()
    last = (await add(client, alice, "https://two.example/feed")).json()
    async with sessions.begin() as session:
        await session.execute(text("DELETE FROM sources WHERE id = :id"), {"id": last["id"]})

    after = (await add(client, alice, "https://three.example/feed")).json()

    assert after["id"] > last["id"] > first["id"]
