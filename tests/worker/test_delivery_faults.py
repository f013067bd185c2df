"""A worker SIGKILLed mid-delivery loses no delivery and repeats none it recorded as sent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from localserver import Handler, Static
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Alert, Channel, Delivery, User
from sigwatch.delivery.channels.registry import seal_channel_config
from sigwatch.delivery.channels.webhook import generate_webhook_secret

ALERTS = 24


def start_worker(settings: Settings, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    environ = {
        **os.environ,
        "SIGWATCH_DATA_DIR": str(settings.data_dir),
        "SIGWATCH_DATABASE_URL": settings.effective_database_url,
        "SIGWATCH_SECRET_KEY": ensure_secret_key(settings),
        "SIGWATCH_ALLOWED_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
        "SIGWATCH_LEASE_S": "5",
        "SIGWATCH_DELIVERY_CONCURRENCY": "2",
        "SIGWATCH_LOG_FORMAT": "json",
    }
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sigwatch", "worker"],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )


async def test_killed_worker_mid_delivery_loses_nothing_and_resends_nothing_recorded(
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
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        user = User(username="ops", password_hash="x", role="admin")
        session.add(user)
        await session.flush()
        config = seal_channel_config(
            "webhook",
            {"url": server.url("/hook"), "secret": generate_webhook_secret()},
            ensure_secret_key(postgres_settings),
        )
        channel = Channel(owner_id=user.id, kind="webhook", name="hook", config=config)
        alerts = [
            Alert(
                entity=f"Project {n}",
                event="listing",
                confidence=0.9,
                urgency="high",
                title=f"Exchange lists Project {n}",
                first_seen_at=now,
                last_evidence_at=now,
            )
            for n in range(ALERTS)
        ]
        session.add(channel)
        session.add_all(alerts)
        await session.flush()
        session.add_all(
            Delivery(
                alert_id=a.id,
                channel_id=channel.id,
                idempotency_key=f"alert-{a.id}-channel-{channel.id}",
            )
            for a in alerts
        )

    first = start_worker(postgres_settings, tmp_path, "first")
    try:
        deadline = time.monotonic() + 30
        while len(received) < 6 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    async with sessions() as session:
        recorded = set(
            await session.scalars(select(Delivery.idempotency_key).where(Delivery.status == "sent"))
        )
    assert 0 < len(received) < ALERTS, "the worker was not killed mid-delivery"

    second = start_worker(postgres_settings, tmp_path, "second")
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
        async with sessions() as session:
            keys = set(await session.scalars(select(Delivery.idempotency_key)))
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        await engine.dispose()

    counts = Counter(received)
    assert set(counts) == keys  # every alert reached the receiver
    assert all(counts[key] == 1 for key in recorded)  # nothing recorded as sent went twice
