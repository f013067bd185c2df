"""A worker SIGKILLed mid-batch loses no delivery and repeats only the sends it had in flight."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter

from sqlalchemy import func, select

from localserver import Handler, Static
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Delivery
from worker.outboxsetup import add_webhook_deliveries, start_delivery_worker

ALERTS = 24
CONCURRENCY = 2  # what start_delivery_worker configures: at most this many sends in flight


async def test_killed_worker_mid_batch_repeats_only_the_sends_in_flight(
    postgres_settings, server, tmp_path
):
    received: list[str] = []
    lock = threading.Lock()

    def slow_receiver(handler: Handler) -> None:
        server.stopping.wait(0.15)
        with lock:
            received.append(handler.headers["webhook-id"])
        handler.send_static(Static(b"ok"))

    server.routes["/hook"] = slow_receiver
    engine = create_engine(postgres_settings)
    await upgrade(engine)
    sessions = session_factory(engine)
    keys = await add_webhook_deliveries(sessions, postgres_settings, server.url("/hook"), ALERTS)

    first = start_delivery_worker(postgres_settings, tmp_path, "first")
    try:
        deadline = time.monotonic() + 30
        while len(received) < 6 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    with lock:
        before_kill = set(received)
    async with sessions() as session:
        recorded = set(
            await session.scalars(select(Delivery.idempotency_key).where(Delivery.status == "sent"))
        )
    assert 0 < len(before_kill) < ALERTS, "the worker was not killed mid-batch"

    second = start_delivery_worker(postgres_settings, tmp_path, "second")
    try:
        async with asyncio.timeout(60):
            while True:
                async with sessions() as session:
                    sent = await session.scalar(
                        select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
                    )
                if sent == ALERTS:
                    break
                await asyncio.sleep(0.1)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        await engine.dispose()

    counts = Counter(received)
    assert set(counts) == set(keys)  # every alert reached the receiver
    assert all(counts[key] == 1 for key in recorded)  # nothing recorded as sent went twice
    repeated = {key for key, count in counts.items() if count > 1}
    # Each answer was recorded as it came: only the sends in flight at the kill went again.
    assert len(repeated) <= CONCURRENCY, (len(repeated), len(before_kill))
    assert repeated <= before_kill - recorded
