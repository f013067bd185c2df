"""A source's secret option: sealed in the database, masked in every answer, used by the worker."""

from __future__ import annotations

import json

from sqlalchemy import text

from feedbuilder import rss_feed
from sigwatch.config import ensure_secret_key
from sigwatch.db.audit import list_audit
from sigwatch.db.schedule import claim_due_sources
from sigwatch.db.types import utcnow
from sigwatch.net.client import OutboundClient
from sigwatch.secrets import decrypt_secret
from sigwatch.worker.collect import poll_source

TOKEN = "Bearer private-feed-t0ken-0123456789"
FEED = {
    "kind": "rss",
    "name": "Private feed",
    "config": {"url": "https://private.example/feed", "authorization": TOKEN},
}


async def stored_config(sessions, source_id: int) -> dict:
    """The config column as the database holds it, read with plain SQL."""
    async with sessions() as session:
        raw = await session.scalar(
            text("SELECT config FROM sources WHERE id = :id"), {"id": source_id}
        )
    return json.loads(raw) if isinstance(raw, str) else raw


async def test_secret_option_is_sealed_in_the_row_and_masked_in_every_answer(
    client, accounts, sessions, settings
):
    headers = accounts.alice.headers
    created = await client.post("/api/v1/sources", json=FEED, headers=headers)
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]
    url = f"/api/v1/sources/{source_id}"

    row = await stored_config(sessions, source_id)
    assert row["url"] == FEED["config"]["url"]
    assert row["authorization"] != TOKEN and "t0ken" not in json.dumps(row)
    assert decrypt_secret(ensure_secret_key(settings), row["authorization"]) == TOKEN

    answers = [
        created,
        await client.get(url, headers=headers),
        await client.get("/api/v1/sources", headers=headers),
        await client.patch(url, json={"name": "Renamed"}, headers=headers),
        await client.patch(
            url,
            json={"config": {"url": "ftp://private.example/feed", "authorization": TOKEN}},
            headers=headers,
        ),
    ]
    assert [answer.status_code for answer in answers] == [201, 200, 200, 200, 422]
    for answer in answers:
        assert "t0ken" not in answer.text and "0123456789" not in answer.text, answer.text
    assert answers[1].json()["config"]["authorization"].startswith("****")

    async with sessions() as session:
        audit = (await list_audit(session, object_type="source")).items
    assert audit and "t0ken" not in json.dumps([(row.before, row.after) for row in audit])


async def test_an_edit_keeps_a_secret_left_out_or_sent_back_masked_and_null_removes_it(
    client, accounts, sessions, settings
):
    headers = accounts.alice.headers
    created = (await client.post("/api/v1/sources", json=FEED, headers=headers)).json()
    url = f"/api/v1/sources/{created['id']}"
    key = ensure_secret_key(settings)

    moved = {"url": "https://private.example/feed2"}
    assert (await client.patch(url, json={"config": moved}, headers=headers)).status_code == 200
    row = await stored_config(sessions, created["id"])
    assert row["url"] == moved["url"] and decrypt_secret(key, row["authorization"]) == TOKEN

    shown = (await client.get(url, headers=headers)).json()["config"]
    back = await client.patch(url, json={"config": shown}, headers=headers)
    assert back.status_code == 200
    assert decrypt_secret(key, (await stored_config(sessions, created["id"]))["authorization"]) == (
        TOKEN
    )

    removed = {"url": moved["url"], "authorization": None}
    assert (await client.patch(url, json={"config": removed}, headers=headers)).status_code == 200
    assert (await stored_config(sessions, created["id"]))["authorization"] is None


async def test_the_worker_opens_the_secret_and_sends_it_to_the_feed_only(
    client, accounts, sessions, settings, server
):
    feed = server.serve(
        "/private.xml",
        rss_feed(["Helix mainnet launch date set"]),
        headers={"Content-Type": "application/rss+xml"},
    )
    body = {**FEED, "config": {"url": feed, "authorization": TOKEN}}
    created = await client.post("/api/v1/sources", json=body, headers=accounts.alice.headers)
    assert created.status_code == 201, created.text

    async with sessions.begin() as session:
        claimed = await claim_due_sources(
            session, worker_id="test", now=utcnow(), lease_s=30, limit=10
        )
    async with OutboundClient(
        timeout_s=5.0,
        max_response_bytes=1_000_000,
        max_redirects=3,
        user_agent="sigwatch-test/1",
        allowed_networks=["127.0.0.1/32"],
    ) as outbound:
        outcome = await poll_source(
            claimed[0],
            client=outbound,
            sessions=sessions,
            worker_id="test",
            lease_s=30,
            max_backoff_s=60,
            secret_key=ensure_secret_key(settings),
        )

    assert outcome.ok and outcome.new == 1, outcome
    assert [request.headers.get("authorization") for request in server.requests] == [TOKEN]
