"""Answers are recorded as they come, leases renewed while sending: each webhook goes once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from localserver import Handler, Static
from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Delivery
from sigwatch.db.outbox import claim_due_deliveries
from sigwatch.db.types import utcnow
from sigwatch.worker.leases import delivery_leases
from sigwatch.worker.runner import Worker
from worker.outboxsetup import add_webhook_deliveries, start_delivery_worker
from worker.test_processes import stop


@pytest.fixture
def allowed(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"allowed_private_networks": ["127.0.0.1/32"], "fetch_timeout_s": 5.0}
    )


@pytest.fixture
async def sessions(
    allowed: Settings, migrated_database: Settings
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(allowed)
    yield session_factory(engine)
    await engine.dispose()


async def statuses(sessions) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(select(Delivery.idempotency_key, Delivery.status))
        return {str(row[0]): str(row[1]) for row in rows}


async def test_an_answer_is_recorded_while_the_rest_of_the_batch_is_still_sending(
    allowed, sessions, server
):
    release = threading.Event()
    answered: list[str] = []

    def receiver(handler: Handler) -> None:
        key = handler.headers["webhook-id"]
        if answered:  # the first request is answered at once, the others wait for the test
            release.wait(20)
        answered.append(key)
        handler.send_static(Static(b"ok"))

    server.routes["/hook"] = receiver
    keys = await add_webhook_deliveries(sessions, allowed, server.url("/hook"), 4)
    settings = allowed.model_copy(update={"delivery_concurrency": 4})
    worker = Worker(settings, sessions, idle_tick_s=0.05)
    stop_worker = asyncio.Event()
    task = asyncio.create_task(worker.run(stop_worker))
    try:
        async with asyncio.timeout(3):  # well before the others could time out (5 s)
            while "sent" not in (await statuses(sessions)).values():
                await asyncio.sleep(0.02)
        now = await statuses(sessions)
        assert list(now.values()).count("sent") == 1 and now[answered[0]] == "sent"
        assert not release.is_set()  # three sends of the batch are still waiting
    finally:
        release.set()
        stop_worker.set()
        await asyncio.wait_for(task, 20)
    assert set((await statuses(sessions)).values()) == {"sent"}
    assert sorted(answered) == sorted(keys)


async def test_leases_are_renewed_only_while_still_owned(allowed, sessions, server):
    await add_webhook_deliveries(sessions, allowed, server.url("/hook"), 2)
    start = utcnow()
    async with sessions.begin() as session:
        mine = await claim_due_deliveries(session, worker_id="a", now=start, lease_s=5, limit=10)
    assert len(mine) == 2
    async with sessions.begin() as session:  # the second lease expired: worker b took it over
        taken = await session.get(Delivery, mine[1].id)
        assert taken is not None
        taken.lease_owner, taken.lease_expires_at = "b", start + timedelta(seconds=5)

    leases = delivery_leases(sessions, worker_id="a", lease_s=60)
    leases.hold([d.id for d in mine])
    await leases.renew_now()

    async with sessions() as session:
        kept = await session.get(Delivery, mine[0].id)
        other = await session.get(Delivery, mine[1].id)
    assert kept is not None and other is not None
    assert kept.lease_owner == "a" and kept.lease_expires_at is not None
    assert kept.lease_expires_at >= start + timedelta(seconds=59)
    assert other.lease_owner == "b" and other.lease_expires_at == start + timedelta(seconds=5)
    assert leases.lost([mine[1].id]) and not leases.lost([mine[0].id])


async def test_receiver_slower_than_the_lease_gets_each_delivery_once_from_two_workers(
    postgres_settings, server, tmp_path
):
    received: list[str] = []
    lock = threading.Lock()

    def slow_receiver(handler: Handler) -> None:
        server.stopping.wait(1.5)  # 8 alerts, 2 at a time: the batch takes 6 s, the lease is 5
        with lock:
            received.append(handler.headers["webhook-id"])
        handler.send_static(Static(b"ok"))

    server.routes["/hook"] = slow_receiver
    engine = create_engine(postgres_settings)
    await upgrade(engine)
    sessions = session_factory(engine)
    keys = await add_webhook_deliveries(sessions, postgres_settings, server.url("/hook"), 8)
    workers = [start_delivery_worker(postgres_settings, tmp_path, f"w{n}") for n in range(2)]
    try:
        async with asyncio.timeout(40):
            while True:
                async with sessions() as session:
                    sent = await session.scalar(
                        select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
                    )
                if sent == len(keys):
                    break
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # a repeat, if one were under way, would arrive now
        async with sessions() as session:
            attempts = list(await session.scalars(select(Delivery.attempts)))
    finally:
        codes = [stop(worker) for worker in workers]
        await engine.dispose()
    assert codes == [0, 0]
    assert Counter(received) == Counter(keys)  # each webhook exactly once
    assert attempts == [1] * len(keys)
