"""Subscriptions and silences: CRUD with audit rows, validation naming the field, ownership."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

from sigwatch.api.alert_schemas import EventType, Urgency
from sigwatch.db.audit import list_audit
from sigwatch.db.models import Silence
from sigwatch.detect.events import EVENT_TYPES, URGENCIES

HOOK = {"kind": "webhook", "name": "Hook", "config": {"url": "https://hooks.example/in"}}
FEED = {"kind": "rss", "name": "News", "config": {"url": "https://news.example/feed"}}
ANY = {
    "entities": [],
    "tags": [],
    "events": [],
    "min_confidence": None,
    "urgencies": [],
    "source_ids": [],
}


async def make(client, path, headers, body):
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def channel_of(client, headers):
    return (await make(client, "/api/v1/channels", headers, HOOK))["id"]


# --- subscriptions -------------------------------------------------------------------------------


async def test_subscription_crud_is_audited_with_before_and_after(client, accounts, sessions):
    headers = accounts.alice.headers
    channel_id = await channel_of(client, headers)
    source_id = (await make(client, "/api/v1/sources", headers, FEED))["id"]
    body = {
        "name": "Listings I trade",
        "filters": {
            "entities": ["Example Protocol", "Example Protocol"],
            "tags": ["defi"],
            "events": ["listing", "tge"],
            "min_confidence": 0.7,
            "urgencies": ["critical", "high"],
            "source_ids": [source_id],
        },
        "channel_ids": [channel_id],
        "mode": "hourly",
        "notify_on": "changes",
        "quiet_hours": {"start": "22:30", "end": "07:00"},
    }
    created = await make(client, "/api/v1/subscriptions", headers, body)
    assert created["owner_id"] == accounts.alice.id and created["enabled"] is True
    assert created["filters"] == {**body["filters"], "entities": ["Example Protocol"]}
    assert created["channel_ids"] == [channel_id]
    assert created["mode"] == "hourly" and created["notify_on"] == "changes"
    assert created["quiet_hours"] == {"start": "22:30", "end": "07:00"}

    url = f"/api/v1/subscriptions/{created['id']}"
    assert (await client.get(url, headers=headers)).json() == created
    patched = await client.patch(
        url,
        json={"filters": {"events": ["airdrop"]}, "quiet_hours": None, "enabled": False},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["filters"] == {**ANY, "events": ["airdrop"]}
    assert patched.json()["quiet_hours"] is None and patched.json()["enabled"] is False
    assert patched.json()["channel_ids"] == [channel_id] and patched.json()["mode"] == "hourly"

    assert (await client.delete(url, headers=headers)).status_code == 204
    assert (await client.get(url, headers=headers)).status_code == 404

    async with sessions() as session:
        rows = (await list_audit(session, object_type="subscription")).items
    assert [row.action for row in rows] == ["delete", "update", "create"]
    delete, update, create = rows
    assert create.before is None and create.after["mode"] == "hourly"
    assert update.before["quiet_hours"] == {"start": "22:30", "end": "07:00"}
    assert update.after["quiet_hours"] is None
    assert delete.before["enabled"] is False and delete.after is None


async def test_subscription_defaults_match_every_alert_instantly(client, accounts):
    created = await make(
        client, "/api/v1/subscriptions", accounts.alice.headers, {"name": "Everything"}
    )
    assert created["filters"] == ANY and created["channel_ids"] == []
    assert created["mode"] == "instant" and created["notify_on"] == "new"
    assert created["quiet_hours"] is None


def test_the_api_accepts_exactly_the_events_and_urgencies_the_detector_knows():
    # Storage no longer checks these names: the API's schemas are the one gate, so they must
    # follow the detector when it learns an event type.
    assert get_args(EventType) == EVENT_TYPES
    assert get_args(Urgency) == URGENCIES


BAD_SUBSCRIPTIONS = {
    "unknown-event": ({"filters": {"events": ["moon"]}}, ["body", "filters", "events", 0]),
    "confidence-above-1": (
        {"filters": {"min_confidence": 1.5}},
        ["body", "filters", "min_confidence"],
    ),
    "unknown-urgency": ({"filters": {"urgencies": ["meh"]}}, ["body", "filters", "urgencies", 0]),
    "unknown-filter": ({"filters": {"colour": "blue"}}, ["body", "filters", "colour"]),
    "bad-source-id": ({"filters": {"source_ids": [0]}}, ["body", "filters", "source_ids", 0]),
    "unknown-source": ({"filters": {"source_ids": [4242]}}, ["body", "filters", "source_ids"]),
    "unknown-channel": ({"channel_ids": [4242]}, ["body", "channel_ids"]),
    "bad-mode": ({"mode": "weekly"}, ["body", "mode"]),
    "bad-notify-on": ({"notify_on": "always"}, ["body", "notify_on"]),
    "bad-start": (
        {"quiet_hours": {"start": "25:00", "end": "07:00"}},
        ["body", "quiet_hours", "start"],
    ),
    "bad-end-format": (
        {"quiet_hours": {"start": "22:00", "end": "7pm"}},
        ["body", "quiet_hours", "end"],
    ),
    "empty-window": (
        {"quiet_hours": {"start": "08:00", "end": "08:00"}},
        ["body", "quiet_hours", "end"],
    ),
    "missing-end": ({"quiet_hours": {"start": "08:00"}}, ["body", "quiet_hours", "end"]),
    "blank-name": ({"name": " "}, ["body", "name"]),
    "unknown-field": ({"colour": "blue"}, ["body", "colour"]),
}


async def test_bad_subscription_input_is_422_naming_the_field(client, accounts):
    for case, (overrides, loc) in BAD_SUBSCRIPTIONS.items():
        body = {"name": "Mine", **overrides}
        response = await client.post(
            "/api/v1/subscriptions", json=body, headers=accounts.alice.headers
        )
        assert response.status_code == 422, (case, response.text)
        locs = [error["loc"] for error in response.json()["detail"]]
        assert loc in locs, (case, locs)
    listed = await client.get("/api/v1/subscriptions", headers=accounts.alice.headers)
    assert listed.json()["items"] == []


async def test_subscription_channels_and_sources_must_be_the_callers_own(client, accounts):
    bobs_channel = await channel_of(client, accounts.bob.headers)
    bobs_source = (await make(client, "/api/v1/sources", accounts.bob.headers, FEED))["id"]
    alice = accounts.alice.headers
    for body, loc in (
        ({"name": "x", "channel_ids": [bobs_channel]}, ["body", "channel_ids"]),
        (
            {"name": "x", "filters": {"source_ids": [bobs_source]}},
            ["body", "filters", "source_ids"],
        ),
    ):
        response = await client.post("/api/v1/subscriptions", json=body, headers=alice)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == loc

    # Even an admin's subscription sends only to the admin's own channels.
    admin = accounts.admin.headers
    response = await client.post(
        "/api/v1/subscriptions", json={"name": "x", "channel_ids": [bobs_channel]}, headers=admin
    )
    assert response.status_code == 422


async def test_admin_changes_a_users_subscription_within_that_users_channels(client, accounts):
    alices_channel = await channel_of(client, accounts.alice.headers)
    admins_channel = await channel_of(client, accounts.admin.headers)
    created = await make(client, "/api/v1/subscriptions", accounts.alice.headers, {"name": "a"})
    url = f"/api/v1/subscriptions/{created['id']}"
    admin = accounts.admin.headers
    ok = await client.patch(url, json={"channel_ids": [alices_channel]}, headers=admin)
    assert ok.status_code == 200 and ok.json()["channel_ids"] == [alices_channel]
    refused = await client.patch(url, json={"channel_ids": [admins_channel]}, headers=admin)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "channel_ids"]


async def test_patch_refuses_null_except_for_quiet_hours(client, accounts):
    created = await make(client, "/api/v1/subscriptions", accounts.alice.headers, {"name": "a"})
    url = f"/api/v1/subscriptions/{created['id']}"
    for field in ("name", "filters", "channel_ids", "mode", "enabled"):
        response = await client.patch(url, json={field: None}, headers=accounts.alice.headers)
        assert response.status_code == 422, field
        assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_users_cannot_see_or_change_other_users_subscriptions(client, accounts):
    created = await make(client, "/api/v1/subscriptions", accounts.alice.headers, {"name": "a"})
    url = f"/api/v1/subscriptions/{created['id']}"
    bob = accounts.bob.headers
    assert (await client.get(url, headers=bob)).status_code == 404
    assert (await client.patch(url, json={"name": "mine"}, headers=bob)).status_code == 404
    assert (await client.delete(url, headers=bob)).status_code == 404
    assert (await client.get("/api/v1/subscriptions", headers=bob)).json()["items"] == []
    admin_list = await client.get("/api/v1/subscriptions", headers=accounts.admin.headers)
    assert [item["id"] for item in admin_list.json()["items"]] == [created["id"]]


async def test_subscription_list_pages_and_filters(client, accounts):
    headers = accounts.alice.headers
    for n in range(3):
        await make(client, "/api/v1/subscriptions", headers, {"name": f"s{n}", "enabled": n != 1})
    first = await client.get("/api/v1/subscriptions?limit=2", headers=headers)
    assert [s["name"] for s in first.json()["items"]] == ["s0", "s1"]
    second = await client.get(
        "/api/v1/subscriptions",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=headers,
    )
    assert [s["name"] for s in second.json()["items"]] == ["s2"]
    disabled = await client.get("/api/v1/subscriptions?enabled=false", headers=headers)
    assert [s["name"] for s in disabled.json()["items"]] == ["s1"]


async def test_deleting_a_channel_takes_it_out_of_subscriptions(client, accounts):
    headers = accounts.alice.headers
    kept = await channel_of(client, headers)
    gone = await channel_of(client, headers)
    created = await make(
        client, "/api/v1/subscriptions", headers, {"name": "a", "channel_ids": [kept, gone]}
    )
    assert (await client.delete(f"/api/v1/channels/{gone}", headers=headers)).status_code == 204
    read = await client.get(f"/api/v1/subscriptions/{created['id']}", headers=headers)
    assert read.json()["channel_ids"] == [kept]


# --- silences ------------------------------------------------------------------------------------


async def test_silence_for_a_duration_is_listed_while_running_and_deleted_audited(
    client, accounts, sessions
):
    headers = accounts.alice.headers
    before = datetime.now(UTC)
    created = await make(
        client,
        "/api/v1/silences",
        headers,
        {"entity": "Example Protocol", "duration_s": 3600, "reason": "noisy today"},
    )
    until = datetime.fromisoformat(created["until"])
    assert timedelta(minutes=59) < until - before < timedelta(minutes=61)
    assert created["entity"] == "Example Protocol" and created["event"] is None
    assert created["reason"] == "noisy today" and created["owner_id"] == accounts.alice.id

    listed = await client.get("/api/v1/silences", headers=headers)
    assert [s["id"] for s in listed.json()["items"]] == [created["id"]]
    url = f"/api/v1/silences/{created['id']}"
    assert (await client.get(url, headers=headers)).json() == created
    assert (await client.delete(url, headers=headers)).status_code == 204
    assert (await client.get("/api/v1/silences", headers=headers)).json()["items"] == []

    async with sessions() as session:
        rows = (await list_audit(session, object_type="silence")).items
    assert [row.action for row in rows] == ["delete", "create"]
    assert rows[1].after["entity"] == "Example Protocol" and rows[0].after is None


async def test_silence_until_a_time_for_an_event(client, accounts):
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    created = await make(
        client,
        "/api/v1/silences",
        accounts.alice.headers,
        {"event": "airdrop", "until": until.isoformat()},
    )
    assert created["event"] == "airdrop" and created["entity"] is None
    assert datetime.fromisoformat(created["until"]) == until


async def test_ended_silences_are_listed_only_when_asked_for(client, accounts, sessions):
    headers = accounts.alice.headers
    running = await make(client, "/api/v1/silences", headers, {"event": "tge", "duration_s": 60})
    async with sessions() as session:
        ended = Silence(
            owner_id=accounts.alice.id,
            event="unlock",
            until=datetime.now(UTC) - timedelta(hours=1),
        )
        session.add(ended)
        await session.commit()
    active = await client.get("/api/v1/silences", headers=headers)
    assert [s["id"] for s in active.json()["items"]] == [running["id"]]
    everything = await client.get("/api/v1/silences?all=true", headers=headers)
    assert [s["id"] for s in everything.json()["items"]] == [running["id"], ended.id]


BAD_SILENCES = {
    "nothing-to-silence": ({"duration_s": 60}, ["body", "entity"]),
    "no-end": ({"entity": "X"}, ["body", "until"]),
    "two-ends": (
        {"entity": "X", "duration_s": 60, "until": "2999-01-01T00:00:00Z"},
        ["body", "until"],
    ),
    "in-the-past": ({"entity": "X", "until": "2000-01-01T00:00:00Z"}, ["body", "until"]),
    "zero-duration": ({"entity": "X", "duration_s": 0}, ["body", "duration_s"]),
    "unknown-event": ({"event": "moon", "duration_s": 60}, ["body", "event"]),
    "bad-time": ({"entity": "X", "until": "tomorrow"}, ["body", "until"]),
    "unknown-field": ({"entity": "X", "duration_s": 60, "colour": 1}, ["body", "colour"]),
}


async def test_bad_silence_input_is_422_naming_the_field(client, accounts):
    for case, (body, loc) in BAD_SILENCES.items():
        response = await client.post("/api/v1/silences", json=body, headers=accounts.alice.headers)
        assert response.status_code == 422, (case, response.text)
        locs = [error["loc"] for error in response.json()["detail"]]
        assert loc in locs, (case, locs)
    listed = await client.get("/api/v1/silences?all=true", headers=accounts.alice.headers)
    assert listed.json()["items"] == []


async def test_users_cannot_see_or_delete_other_users_silences(client, accounts):
    created = await make(
        client, "/api/v1/silences", accounts.alice.headers, {"event": "tge", "duration_s": 60}
    )
    url = f"/api/v1/silences/{created['id']}"
    bob = accounts.bob.headers
    assert (await client.get(url, headers=bob)).status_code == 404
    assert (await client.delete(url, headers=bob)).status_code == 404
    assert (await client.get("/api/v1/silences", headers=bob)).json()["items"] == []
    admin_list = await client.get("/api/v1/silences", headers=accounts.admin.headers)
    assert [item["id"] for item in admin_list.json()["items"]] == [created["id"]]
