"""System alerts through the API: each user sees and receives only their own sources' alarms,
and a source's own freshness thresholds are set with PATCH /api/v1/sources/{id}."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import update

from feedbuilder import rss_feed
from sigwatch.alerts.freshness import Thresholds
from sigwatch.api import create_app
from sigwatch.db.models import Source
from sigwatch.worker.freshness import FreshnessChecker


def posts_to(server, path: str) -> list[dict]:
    return [json.loads(r.body) for r in server.requests if r.method == "POST" and r.path == path]


async def wait_for(check, timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.05)


async def subscribe(client, headers, hook_url: str) -> None:
    channel = await client.post(
        "/api/v1/channels",
        json={"kind": "webhook", "name": "hook", "config": {"url": hook_url}},
        headers=headers,
    )
    assert channel.status_code == 201, channel.text
    subscription = await client.post(
        "/api/v1/subscriptions",
        json={"name": "ops", "channel_ids": [channel.json()["id"]], "system_alerts": True},
        headers=headers,
    )
    assert subscription.status_code == 201, subscription.text
    assert subscription.json()["system_alerts"] is True


async def test_a_second_user_never_sees_or_receives_the_first_users_system_alerts(
    settings, accounts, server
):
    server.serve("/alice.xml", b"gone fishing", status=500)
    server.serve("/bob.xml", rss_feed(["All well"]))
    alice_hook, bob_hook = server.serve("/alice-hook", b"ok"), server.serve("/bob-hook", b"ok")
    app = create_app(
        settings.model_copy(
            update={"allow_private_urls": True, "freshness_check_s": 0.05, "failing_after": 1}
        ),
        run_worker=True,
    )
    alice, bob, admin = accounts.alice.headers, accounts.bob.headers, accounts.admin.headers
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        await subscribe(client, alice, alice_hook)
        await subscribe(client, bob, bob_hook)
        for headers, path in ((alice, "/alice.xml"), (bob, "/bob.xml")):
            created = await client.post(
                "/api/v1/sources",
                json={"kind": "rss", "name": path, "config": {"url": server.url(path)}},
                headers=headers,
            )
            assert created.status_code == 201, created.text
        alice_source = (await client.get("/api/v1/sources", headers=alice)).json()["items"][0]

        async def alice_told(count: int):
            async def check() -> bool:
                return len(posts_to(server, "/alice-hook")) >= count

            return check

        await wait_for(await alice_told(1))
        (opened,) = posts_to(server, "/alice-hook")
        assert opened["type"] == "system_alert.opened"
        assert opened["data"]["source_id"] == alice_source["id"]
        alarm_id = opened["data"]["system_alert_id"]

        mine = (await client.get("/api/v1/system-alerts", headers=alice)).json()["items"]
        assert [(a["id"], a["condition"], a["state"]) for a in mine] == [
            (alarm_id, "failing", "open")
        ]
        assert mine[0]["source_name"] == "/alice.xml" and mine[0]["owner_id"] == accounts.alice.id
        assert (await client.get("/api/v1/system-alerts", headers=bob)).json()["items"] == []
        hidden = await client.get(f"/api/v1/system-alerts/{alarm_id}", headers=bob)
        assert hidden.status_code == 404
        seen = await client.get(f"/api/v1/system-alerts/{alarm_id}", headers=admin)
        assert seen.status_code == 200 and seen.json()["condition"] == "failing"
        assert [
            a["id"]
            for a in (await client.get("/api/v1/system-alerts", headers=admin)).json()["items"]
        ] == [alarm_id]

        # Alice's feed recovers: she is told once; Bob heard of none of it.
        server.serve("/alice.xml", rss_feed(["Back"]))
        polled = await client.post(f"/api/v1/sources/{alice_source['id']}/poll", headers=alice)
        assert polled.status_code in (200, 201, 202), polled.text
        await wait_for(await alice_told(2))
        await asyncio.sleep(0.3)
        assert [m["type"] for m in posts_to(server, "/alice-hook")] == [
            "system_alert.opened",
            "system_alert.cleared",
        ]
        assert posts_to(server, "/bob-hook") == []
        cleared = (await client.get(f"/api/v1/system-alerts/{alarm_id}", headers=alice)).json()
        assert cleared["state"] == "cleared" and cleared["cleared_at"] is not None
        still_open = await client.get("/api/v1/system-alerts?state=open", headers=alice)
        assert still_open.json()["items"] == []


async def test_a_source_override_changes_its_failing_threshold(app, client, accounts, settings):
    headers = accounts.alice.headers
    created = await client.post(
        "/api/v1/sources",
        json={"kind": "rss", "name": "news", "config": {"url": "https://news.example/feed"}},
        headers=headers,
    )
    source_id = created.json()["id"]
    assert created.json()["freshness"] is None
    sessions = app.state.runtime.sessions
    async with sessions.begin() as session:
        await session.execute(
            update(Source)
            .where(Source.id == source_id)
            .values(consecutive_failures=3, last_error="HTTP 502 Bad Gateway")
        )
    checker = FreshnessChecker(sessions, Thresholds.from_settings(settings), interval_s=1)
    assert (await checker.check()).raised == []  # 3 failures, the setting asks for 5

    changed = await client.patch(
        f"/api/v1/sources/{source_id}", json={"freshness": {"failing_after": 3}}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["freshness"] == {"failing_after": 3}
    (raised,) = (await checker.check()).raised
    assert raised.condition == "failing" and "3 failed polls" in raised.reason

    reset = await client.patch(
        f"/api/v1/sources/{source_id}", json={"freshness": {}}, headers=headers
    )
    assert reset.json()["freshness"] is None
    (cleared,) = (await checker.check()).cleared
    assert cleared.id == raised.id and cleared.clear_reason == "no longer past its threshold"


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_a_bad_freshness_override_is_422_naming_the_field(client, accounts):
    headers = accounts.alice.headers
    created = await client.post(
        "/api/v1/sources",
        json={"kind": "rss", "name": "news", "config": {"url": "https://news.example/feed"}},
        headers=headers,
    )
    source_id = created.json()["id"]
    for body, loc in (
        ({"failing_after": 0}, ["body", "freshness", "failing_after"]),
        ({"silence": 2}, ["body", "freshness", "silence"]),
    ):
        answer = await client.patch(
            f"/api/v1/sources/{source_id}", json={"freshness": body}, headers=headers
        )
        assert answer.status_code == 422, answer.text
        assert loc in [error["loc"] for error in answer.json()["detail"]]
