"""The WebSocket at /api/v1/ws, against a real uvicorn server: auth, filters, visibility, drops."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from datetime import UTC, datetime, timedelta

import pytest
from websockets.exceptions import ConnectionClosed

from live.support import (
    HELIX,
    NEBULA_A,
    NEBULA_B,
    ORION,
    WAIT_S,
    no_event_within,
    receive_events,
    receive_json,
    ws_client,
)
from sigwatch import auth
from sigwatch.api.routes.live import live_hub


async def test_token_in_query_is_welcomed_and_receives_new_alerts(live):
    await live.add_source("alice", [NEBULA_A])
    async with ws_client(live.ws_url(token=live.token("alice"))) as ws:
        hello = await receive_json(ws)
        assert hello["type"] == "hello" and hello["user"] == "alice"
        await live.collect("alice")
        ids = await live.publish_after()
        (event,) = await receive_events(ws, 1)
    assert event["id"] == ids[0] and event["type"] == "alert.created"
    assert event["alert"]["entity"] == "Nebula Protocol" and event["alert"]["status"] == "new"
    assert "source_ids" not in event and "owner_ids" not in event  # internal fields stay home


async def test_connected_clients_show_in_metrics(live):
    async with ws_client(live.ws_url(token=live.token("alice"))) as ws:
        await receive_json(ws)
        metrics = (await live.http.get("/metrics")).text
    assert "sigwatch_live_clients 1.0" in metrics


@pytest.mark.parametrize("how", ["api_key_query", "api_key_header", "bearer_header"])
async def test_api_keys_and_headers_authenticate_too(live, how):
    made = await live.http.post(
        "/api/v1/api-keys", json={"name": "live"}, headers=live.accounts.bob.headers
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    url, headers = live.ws_url(), {}
    if how == "api_key_query":
        url = live.ws_url(api_key=key)
    elif how == "api_key_header":
        headers = {"X-API-Key": key}
    else:
        headers = {"Authorization": f"Bearer {live.token('bob')}"}
    async with ws_client(url, additional_headers=headers) as ws:
        hello = await receive_json(ws)
    assert hello == {**hello, "type": "hello", "user": "bob"}


@pytest.mark.parametrize("query", [{}, {"token": "not-a-token"}, {"api_key": "sw_unknown"}])
async def test_bad_credentials_close_with_policy_violation_and_a_reason(live, query):
    async with ws_client(live.ws_url(**query)) as ws:
        error = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert error["type"] == "error" and error["message"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason and len(closed.value.rcvd.reason.encode()) <= 123


async def test_a_token_that_expires_closes_the_socket_with_a_reason(live):
    # issued so that, with the clock leeway, it is accepted for about one more second
    token = auth.issue_token(
        live.runtime.secret_key,
        user_id=live.accounts.alice.id,
        role="user",
        token_type="access",
        ttl_s=10,
        now=datetime.now(UTC) - timedelta(seconds=auth.LEEWAY_S + 9),
    )
    async with ws_client(live.ws_url(token=token)) as ws:
        assert (await receive_json(ws))["type"] == "hello"
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # pings may come first
                await receive_json(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "signed out" in closed.value.rcvd.reason and "expired" in closed.value.rcvd.reason


async def test_a_revoked_api_key_closes_the_socket_at_the_next_check(live):
    live.runtime.settings = live.settings.model_copy(update={"live_recheck_s": 0.2})
    headers = live.accounts.bob.headers
    made = await live.http.post("/api/v1/api-keys", json={"name": "live"}, headers=headers)
    key = made.json()
    async with ws_client(live.ws_url(api_key=key["key"])) as ws:
        assert (await receive_json(ws))["type"] == "hello"
        await no_event_within(ws, 0.5)  # checked again and still valid
        revoked = await live.http.delete(f"/api/v1/api-keys/{key['id']}", headers=headers)
        assert revoked.status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await receive_json(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "revoked" in closed.value.rcvd.reason


async def test_subscribe_filters_by_event_and_entity(live):
    await live.add_source("bob", [HELIX, NEBULA_B, ORION])
    async with ws_client(live.ws_url(token=live.token("bob"))) as ws:
        await receive_json(ws)
        await ws.send(json.dumps({"type": "subscribe", "filters": {"events": ["airdrop", "tge"]}}))
        ack = await receive_json(ws)
        assert ack["type"] == "subscribed" and ack["filters"]["events"] == ["airdrop", "tge"]
        await ws.send(json.dumps({"type": "subscribe", "filters": {"entities": "orion chain"}}))
        assert (await receive_json(ws))["filters"]["entities"] == ["orion chain"]
        await live.collect("bob")
        await live.publish_after()
        (event,) = await receive_events(ws, 1)
        await no_event_within(ws, 0.3)
    assert event["alert"]["entity"] == "Orion Chain"


async def test_min_confidence_and_urgency_filters(live):
    await live.add_source("bob", [HELIX])
    async with ws_client(live.ws_url(token=live.token("bob"))) as ws:
        await receive_json(ws)
        await ws.send(json.dumps({"type": "subscribe", "filters": {"min_confidence": 1.0}}))
        await receive_json(ws)
        await live.collect("bob")
        ids = await live.publish_after()
        await no_event_within(ws, 0.3)
        (alert_id,) = {e["alert"]["id"] for e in await _events(live, ids)}
        urgency = (await _events(live, ids))[0]["alert"]["urgency"]
        await ws.send(json.dumps({"type": "subscribe", "filters": {"urgency": [urgency]}}))
        await receive_json(ws)
        await live.set_status("bob", [alert_id], "acknowledged")
        (event,) = await receive_events(ws, 1)
    assert event["type"] == "alert.status" and event["alert"]["status"] == "acknowledged"


async def _events(live, ids):
    from sigwatch.live import load_alert_events

    return await load_alert_events(live.runtime.sessions, ids)


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1, 2]",
        '{"type": "dance"}',
        '{"type": "subscribe", "filters": {"events": ["weather"]}}',
        '{"type": "subscribe", "filters": {"colour": "red"}}',
        '{"type": "subscribe", "filters": {"min_confidence": 2}}',
    ],
)
async def test_a_bad_message_gets_an_error_and_the_connection_goes_on(live, message):
    async with ws_client(live.ws_url(token=live.token("admin"))) as ws:
        await receive_json(ws)
        await ws.send(message)
        error = await receive_json(ws)
        await ws.send(b"\x00binary")
        binary = await receive_json(ws)
        await ws.send(json.dumps({"type": "ping"}))
        pong = await receive_json(ws)
    assert error["type"] == "error" and error["message"]
    assert binary["type"] == "error"
    assert pong == {"type": "pong"}


async def test_invalid_filters_name_the_field(live):
    async with ws_client(live.ws_url(token=live.token("admin"))) as ws:
        await receive_json(ws)
        await ws.send(json.dumps({"type": "subscribe", "filters": {"urgency": "soon"}}))
        error = await receive_json(ws)
    assert error["detail"][0]["loc"][:2] == ["filters", "urgency"]
    assert "soon" in error["detail"][0]["msg"]


async def test_idle_connection_gets_heartbeats(live):
    async with ws_client(live.ws_url(token=live.token("alice"))) as ws:
        await receive_json(ws)
        live_hub(live.app).heartbeat_s = 0.1  # read by each wait, so it applies at once
        # The first wait began with the default interval; a message restarts it.
        await ws.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(WAIT_S):
            assert json.loads(await ws.recv()) == {"type": "pong"}
            assert json.loads(await ws.recv()) == {"type": "ping"}
            assert json.loads(await ws.recv()) == {"type": "ping"}


async def test_alice_does_not_get_bobs_alerts(live):
    await live.add_source("alice", [NEBULA_A])
    await live.add_source("bob", [HELIX, NEBULA_B])
    async with (
        ws_client(live.ws_url(token=live.token("alice"))) as alice,
        ws_client(live.ws_url(token=live.token("bob"))) as bob,
        ws_client(live.ws_url(token=live.token("admin"))) as admin,
    ):
        for ws in (alice, bob, admin):
            await receive_json(ws)
        await live.collect("alice")
        await live.collect("bob")
        ids = await live.publish_after()
        assert len(ids) == 3  # Nebula created, Helix created, Nebula corroborated
        seen_by_admin = await receive_events(admin, 3)
        seen_by_bob = await receive_events(bob, 2)
        seen_by_alice = await receive_events(alice, 1)
        await no_event_within(alice, 0.3)
        await no_event_within(bob, 0.1)
    assert [e["id"] for e in seen_by_admin] == ids
    # Each user hears only of their own posts, each as they see the story: Bob's Nebula post
    # corroborates Alice's story, but to Bob it is new, and Alice is not told of Bob's post.
    (alices,) = seen_by_alice
    assert alices["type"] == "alert.created" and alices["alert"]["entity"] == "Nebula Protocol"
    assert alices["alert"]["source_count"] == 1
    assert alices["alert"]["first_source_id"] == live.source_ids["alice"]
    assert [e["type"] for e in seen_by_bob] == ["alert.created", "alert.created"]
    bobs_nebula = next(e for e in seen_by_bob if e["alert"]["entity"] == "Nebula Protocol")
    assert bobs_nebula["alert"]["source_count"] == 1
    assert bobs_nebula["alert"]["first_source_id"] == live.source_ids["bob"]
    assert bobs_nebula["alert"]["lead_time_s"] is None
    admins_nebula = [e for e in seen_by_admin if e["alert"]["entity"] == "Nebula Protocol"]
    assert admins_nebula[-1]["alert"]["source_count"] == 2


def _small_receive_buffer_socket(address: str) -> socket.socket:
    host, port = address.split(":")
    sock = socket.socket()
    # A small receive window makes the server's send buffer fill after a few events.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return sock


async def test_slow_client_is_dropped_while_a_fast_one_keeps_receiving(live):
    await live.add_source("bob", [HELIX])
    await live.collect("bob")
    (history_id,) = await live.history_ids()
    (event,) = await _events(live, [history_id])
    # A large event fills buffers sooner; random, since WebSocket compression would shrink "xxx".
    event["alert"]["title"] = secrets.token_urlsafe(3000)
    hub = live_hub(live.app)
    hub.max_queue = 20
    received = 0
    async with (
        ws_client(
            live.ws_url(token=live.token("admin")),
            sock=_small_receive_buffer_socket(live.address),
            max_queue=4,
        ) as slow,
        ws_client(live.ws_url(token=live.token("admin"))) as fast,
    ):
        await receive_json(fast)
        await receive_json(slow)  # then never reads again until dropped

        async def read_fast() -> None:
            nonlocal received
            while True:
                message = json.loads(await fast.recv())
                if message["type"].startswith("alert."):
                    received += 1

        reader = asyncio.create_task(read_fast())
        published = 0
        async with asyncio.timeout(WAIT_S):
            while hub.dropped == 0:
                for _ in range(10):
                    await live.runtime.bus.publish(event)
                    published += 1
                await asyncio.sleep(0.005)
            # The fast client gets every event, including those after the drop.
            for _ in range(5):
                for _ in range(10):
                    await live.runtime.bus.publish(event)
                    published += 1
                await asyncio.sleep(0.005)
            while received < published:
                await asyncio.sleep(0.01)
        reader.cancel()
        assert hub.clients == 1
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(WAIT_S):
                while True:
                    await slow.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert "too slow" in closed.value.rcvd.reason
