"""Deliveries: listing the outbox newest first, and requeuing dead letters, per channel owner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from sqlalchemy import select

from sigwatch.db.audit import list_audit
from sigwatch.db.models import Alert, Delivery

HOOK = {"kind": "webhook", "name": "Hook", "config": {"url": "https://hooks.example/in"}}
_keys = count(1)


async def channel_of(client, headers):
    response = await client.post("/api/v1/channels", json=HOOK, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def add_deliveries(sessions, channel_id, *statuses, alert_id=None):
    """Outbox rows as the worker leaves them; dead ones carry their attempts and reason."""
    earlier = datetime.now(UTC) - timedelta(hours=1)
    async with sessions() as session:
        rows = [
            Delivery(
                channel_id=channel_id,
                alert_id=alert_id,
                idempotency_key=f"msg_test_{next(_keys)}",
                status=status,
                attempts=8 if status == "dead" else 0,
                next_attempt_at=earlier,
                last_error="webhook https://hooks.example answered HTTP 503"
                if status == "dead"
                else None,
                lease_owner="worker-1" if status == "dead" else None,
                lease_expires_at=earlier if status == "dead" else None,
                sent_at=earlier if status == "sent" else None,
                response_status=200 if status == "sent" else None,
            )
            for status in statuses
        ]
        session.add_all(rows)
        await session.commit()
    return [row.id for row in rows]


async def add_alert(sessions):
    now = datetime.now(UTC)
    async with sessions() as session:
        alert = Alert(
            entity="Example Protocol",
            event="listing",
            confidence=0.9,
            urgency="high",
            title="Example Protocol lists on an exchange",
            first_seen_at=now,
            last_evidence_at=now,
        )
        session.add(alert)
        await session.commit()
    return alert.id


async def test_deliveries_are_listed_newest_first_in_pages(client, accounts, sessions):
    headers = accounts.alice.headers
    channel_id = await channel_of(client, headers)
    ids = await add_deliveries(sessions, channel_id, "sent", "dead", "pending")
    first = await client.get("/api/v1/deliveries?limit=2", headers=headers)
    assert first.status_code == 200, first.text
    assert [d["id"] for d in first.json()["items"]] == [ids[2], ids[1]]
    second = await client.get(
        "/api/v1/deliveries",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=headers,
    )
    assert [d["id"] for d in second.json()["items"]] == [ids[0]]
    assert second.json()["next_cursor"] is None
    dead = first.json()["items"][1]
    assert dead["status"] == "dead" and dead["attempts"] == 8
    assert dead["last_error"].endswith("HTTP 503") and dead["channel_id"] == channel_id
    assert "lease_owner" not in dead


async def test_deliveries_filter_by_status_channel_and_alert(client, accounts, sessions):
    headers = accounts.alice.headers
    one = await channel_of(client, headers)
    two = await channel_of(client, headers)
    alert_id = await add_alert(sessions)
    sent, dead = await add_deliveries(sessions, one, "sent", "dead")
    (of_alert,) = await add_deliveries(sessions, two, "pending", alert_id=alert_id)

    async def listed(**params):
        response = await client.get("/api/v1/deliveries", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["items"]]

    assert await listed(status="dead") == [dead]
    assert await listed(status="sent") == [sent]
    assert await listed(channel_id=one) == [dead, sent]
    assert await listed(alert_id=alert_id) == [of_alert]
    assert await listed(channel_id=two, status="dead") == []
    bad = await client.get("/api/v1/deliveries?status=lost", headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]


async def test_users_see_only_deliveries_of_their_own_channels(client, accounts, sessions):
    alices = await add_deliveries(
        sessions, await channel_of(client, accounts.alice.headers), "dead"
    )
    bobs = await add_deliveries(sessions, await channel_of(client, accounts.bob.headers), "dead")
    bob = accounts.bob.headers
    listed = await client.get("/api/v1/deliveries", headers=bob)
    assert [d["id"] for d in listed.json()["items"]] == bobs
    assert (await client.get(f"/api/v1/deliveries/{alices[0]}", headers=bob)).status_code == 404
    requeue = await client.post(f"/api/v1/deliveries/{alices[0]}/requeue", headers=bob)
    assert requeue.status_code == 404
    admin = await client.get("/api/v1/deliveries", headers=accounts.admin.headers)
    assert [d["id"] for d in admin.json()["items"]] == [*bobs, *alices]


async def test_requeue_puts_a_dead_letter_back_due_now_keeping_its_last_error(
    client, accounts, sessions
):
    headers = accounts.alice.headers
    (dead,) = await add_deliveries(sessions, await channel_of(client, headers), "dead")
    before = datetime.now(UTC)
    response = await client.post(f"/api/v1/deliveries/{dead}/requeue", headers=headers)
    assert response.status_code == 200, response.text
    requeued = response.json()
    assert requeued["status"] == "pending" and requeued["attempts"] == 0
    assert requeued["last_error"].endswith("HTTP 503")
    assert datetime.fromisoformat(requeued["next_attempt_at"]) >= before - timedelta(seconds=1)

    async with sessions() as session:
        row = (await session.scalars(select(Delivery).where(Delivery.id == dead))).one()
        (audit,) = (await list_audit(session, object_type="delivery")).items
    assert row.status == "pending" and row.lease_owner is None and row.lease_expires_at is None
    assert audit.action == "requeue" and audit.object_id == str(dead)
    assert audit.before["status"] == "dead" and audit.after["status"] == "pending"

    again = await client.post(f"/api/v1/deliveries/{dead}/requeue", headers=headers)
    assert again.status_code == 409 and "not dead" in again.json()["detail"]


async def test_only_dead_letters_can_be_requeued(client, accounts, sessions):
    headers = accounts.alice.headers
    pending, sent = await add_deliveries(
        sessions, await channel_of(client, headers), "pending", "sent"
    )
    for delivery_id in (pending, sent):
        response = await client.post(f"/api/v1/deliveries/{delivery_id}/requeue", headers=headers)
        assert response.status_code == 409, response.text
    unknown = await client.post("/api/v1/deliveries/987654321/requeue", headers=headers)
    assert unknown.status_code == 404


async def test_bulk_requeue_by_ids_changes_all_or_none(client, accounts, sessions):
    headers = accounts.alice.headers
    dead_one, dead_two, sent = await add_deliveries(
        sessions, await channel_of(client, headers), "dead", "dead", "sent"
    )
    refused = await client.post(
        "/api/v1/deliveries/requeue", json={"ids": [dead_one, sent]}, headers=headers
    )
    assert refused.status_code == 409, refused.text
    still_dead = await client.get("/api/v1/deliveries?status=dead", headers=headers)
    assert {d["id"] for d in still_dead.json()["items"]} == {dead_one, dead_two}

    done = await client.post(
        "/api/v1/deliveries/requeue", json={"ids": [dead_one, dead_two]}, headers=headers
    )
    assert done.status_code == 200, done.text
    assert done.json() == {"requeued": 2, "ids": [dead_one, dead_two]}
    none_dead = await client.get("/api/v1/deliveries?status=dead", headers=headers)
    assert none_dead.json()["items"] == []


async def test_requeue_all_dead_letters_touches_only_the_callers(client, accounts, sessions):
    alice = accounts.alice.headers
    one = await channel_of(client, alice)
    two = await channel_of(client, alice)
    dead_one, _sent = await add_deliveries(sessions, one, "dead", "sent")
    (dead_two,) = await add_deliveries(sessions, two, "dead")
    (bobs,) = await add_deliveries(sessions, await channel_of(client, accounts.bob.headers), "dead")

    of_channel = await client.post(
        "/api/v1/deliveries/requeue", json={"status": "dead", "channel_id": one}, headers=alice
    )
    assert of_channel.json() == {"requeued": 1, "ids": [dead_one]}
    rest = await client.post("/api/v1/deliveries/requeue", json={"status": "dead"}, headers=alice)
    assert rest.json() == {"requeued": 1, "ids": [dead_two]}
    nothing = await client.post(
        "/api/v1/deliveries/requeue", json={"status": "dead"}, headers=alice
    )
    assert nothing.json() == {"requeued": 0, "ids": []}

    bob_view = await client.get(f"/api/v1/deliveries/{bobs}", headers=accounts.bob.headers)
    assert bob_view.json()["status"] == "dead"
    admin = await client.post(
        "/api/v1/deliveries/requeue", json={"status": "dead"}, headers=accounts.admin.headers
    )
    assert admin.json() == {"requeued": 1, "ids": [bobs]}


async def test_bulk_requeue_of_someone_elses_delivery_is_404(client, accounts, sessions):
    (alices,) = await add_deliveries(
        sessions, await channel_of(client, accounts.alice.headers), "dead"
    )
    response = await client.post(
        "/api/v1/deliveries/requeue", json={"ids": [alices]}, headers=accounts.bob.headers
    )
    assert response.status_code == 404


BAD_REQUEUES = {
    "neither": ({}, ["body", "ids"]),
    "both": ({"ids": [1], "status": "dead"}, ["body", "ids"]),
    "empty-ids": ({"ids": []}, ["body", "ids"]),
    "not-dead": ({"status": "sent"}, ["body", "status"]),
    "channel-with-ids": ({"ids": [1], "channel_id": 1}, ["body", "channel_id"]),
    "unknown-field": ({"status": "dead", "all": True}, ["body", "all"]),
}


async def test_bad_requeue_input_is_422_naming_the_field(client, accounts):
    for case, (body, loc) in BAD_REQUEUES.items():
        response = await client.post(
            "/api/v1/deliveries/requeue", json=body, headers=accounts.alice.headers
        )
        assert response.status_code == 422, (case, response.text)
        locs = [error["loc"] for error in response.json()["detail"]]
        assert loc in locs, (case, locs)


async def test_deleting_a_channel_deletes_its_deliveries(client, accounts, sessions):
    headers = accounts.alice.headers
    channel_id = await channel_of(client, headers)
    await add_deliveries(sessions, channel_id, "dead", "sent")
    assert (
        await client.delete(f"/api/v1/channels/{channel_id}", headers=headers)
    ).status_code == 204
    async with sessions() as session:
        assert list(await session.scalars(select(Delivery))) == []
