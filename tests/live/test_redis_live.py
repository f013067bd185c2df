"""Live clients of API processes sharing one Redis: fan-out across processes, Redis faults.

Each app is a separate ``create_app`` with its own lifespan, bus and hub, served by its own
uvicorn server, as two ``sigwatch api`` processes would be. The channel is the real one; the
server may be shared with other test runs, so events carry ids no database makes and clients
wait for those ids only.
"""

from __future__ import annotations

import asyncio
import json
import random
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from live.support import WAIT_S, TcpProxy, serving, started, ws_client
from sigwatch.api import create_app
from sigwatch.live.bus import RedisBus

pytestmark = [pytest.mark.redis, pytest.mark.parametrize("settings", ["sqlite"], indirect=True)]


def _event(event_id: int) -> dict[str, object]:
    return {
        "id": event_id,
        "type": "alert.created",
        "at": "2026-02-01T09:00:00Z",
        "alert": {
            "id": event_id,
            "entity": "Nebula Protocol",
            "event": "mainnet",
            "confidence": 0.9,
            "urgency": "high",
        },
        "source_ids": [],
        "owner_ids": [],
    }


def _ids(count: int) -> list[int]:
    base = random.randrange(10**12, 2 * 10**12)
    return [base + n for n in range(count)]


async def _expect(ws, wanted: list[int]) -> None:
    """Wait until every id in ``wanted`` has arrived (other events are ignored)."""
    missing = set(wanted)
    async with asyncio.timeout(WAIT_S):
        while missing:
            message = json.loads(await ws.recv())
            missing.discard(message.get("id"))


async def _subscribed(app) -> None:
    bus = app.state.runtime.bus
    assert isinstance(bus, RedisBus)
    async with asyncio.timeout(WAIT_S):
        await bus.subscribed.wait()


def _token(accounts) -> str:
    return accounts.admin.headers["Authorization"].removeprefix("Bearer ")


async def test_an_event_from_a_worker_reaches_the_clients_of_both_api_processes(
    settings, accounts, redis_url
):
    settings = settings.model_copy(update={"redis_url": redis_url})
    worker_bus = RedisBus(redis_url)  # the third process: a worker publishing after commit
    try:
        async with (
            started(create_app(settings)) as first,
            started(create_app(settings)) as second,
            serving(first) as first_address,
            serving(second) as second_address,
            ws_client(f"ws://{first_address}/api/v1/ws?token={_token(accounts)}") as one,
            ws_client(f"ws://{second_address}/api/v1/ws?token={_token(accounts)}") as two,
        ):
            for ws in (one, two):
                assert json.loads(await ws.recv())["type"] == "hello"
            for app in (first, second):
                await _subscribed(app)
            worker_bus.subscribe()
            await asyncio.wait_for(worker_bus.subscribed.wait(), WAIT_S)
            ids = _ids(3)
            for event_id in ids:
                await worker_bus.publish(_event(event_id))
            await _expect(one, ids)
            await _expect(two, ids)
    finally:
        await worker_bus.close()


async def test_clients_keep_receiving_after_redis_drops_the_subscription(
    settings, accounts, redis_url
):
    settings = settings.model_copy(update={"redis_url": redis_url})
    worker_bus = RedisBus(redis_url)
    try:
        async with (
            started(create_app(settings)) as app,
            serving(app) as address,
            ws_client(f"ws://{address}/api/v1/ws?token={_token(accounts)}") as ws,
        ):
            await ws.recv()
            await _subscribed(app)
            before = _ids(1)
            await worker_bus.publish(_event(before[0]))
            await _expect(ws, before)
            bus = app.state.runtime.bus
            admin = Redis.from_url(redis_url)
            try:
                # CLIENT KILL TYPE pubsub, narrowed to this app's connection.
                for client in await admin.client_list(_type="pubsub"):
                    if client.get("name") == bus.client_name:
                        await admin.client_kill_filter(_id=client["id"])
            finally:
                await admin.aclose()
            async with asyncio.timeout(WAIT_S):
                while bus.subscribed.is_set():
                    await asyncio.sleep(0.01)
            await _subscribed(app)
            after = _ids(2)
            for event_id in after:
                await worker_bus.publish(_event(event_id))
            await _expect(ws, after)
    finally:
        await worker_bus.close()


async def test_while_redis_is_away_local_events_still_reach_local_clients(
    settings, accounts, redis_url
):
    target = urlsplit(redis_url)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    through_proxy = urlunsplit(target._replace(netloc=f"127.0.0.1:{proxy.port}"))
    settings = settings.model_copy(update={"redis_url": through_proxy})
    worker_bus = RedisBus(redis_url)
    try:
        async with (
            started(create_app(settings)) as app,
            serving(app) as address,
            ws_client(f"ws://{address}/api/v1/ws?token={_token(accounts)}") as ws,
        ):
            await ws.recv()
            await _subscribed(app)
            bus = app.state.runtime.bus
            await proxy.stop()  # Redis is gone for this process
            async with asyncio.timeout(WAIT_S):
                while bus.subscribed.is_set():
                    await asyncio.sleep(0.01)
            during = _ids(3)
            for event_id in during:
                await bus.publish(_event(event_id))  # as the embedded worker would
            await _expect(ws, during)
            await proxy.start()
            await _subscribed(app)
            after = _ids(2)
            for event_id in after:
                await worker_bus.publish(_event(event_id))
            await _expect(ws, after)
    finally:
        await worker_bus.close()
        await proxy.stop()
