"""Alerts with one pending webhook delivery each, and delivery worker processes, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.models import Alert, Channel, Delivery, User
from sigwatch.delivery.channels.registry import seal_channel_config
from sigwatch.delivery.channels.webhook import generate_webhook_secret


async def add_webhook_deliveries(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, hook_url: str, count: int
) -> list[str]:
    """``count`` alerts, each with a delivery due now to one webhook; returns their keys."""
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        user = User(username="ops", password_hash="x", role="admin")
        session.add(user)
        await session.flush()
        config = seal_channel_config(
            "webhook",
            {"url": hook_url, "secret": generate_webhook_secret()},
            ensure_secret_key(settings),
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
            for n in range(count)
        ]
        session.add(channel)
        session.add_all(alerts)
        await session.flush()
        keys = [f"alert-{alert.id}-channel-{channel.id}" for alert in alerts]
        session.add_all(
            Delivery(alert_id=alert.id, channel_id=channel.id, idempotency_key=key)
            for alert, key in zip(alerts, keys, strict=True)
        )
    return keys


def start_delivery_worker(
    settings: Settings, tmp_path: Path, name: str, **env: str
) -> subprocess.Popen[bytes]:
    """``sigwatch worker`` in its own process, with a 5 s lease and 2 sends at a time."""
    environ = {
        **os.environ,
        "SIGWATCH_DATA_DIR": str(settings.data_dir),
        "SIGWATCH_DATABASE_URL": settings.effective_database_url,
        "SIGWATCH_SECRET_KEY": ensure_secret_key(settings),
        "SIGWATCH_ALLOWED_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
        "SIGWATCH_LEASE_S": "5",
        "SIGWATCH_FETCH_TIMEOUT_S": "4",
        "SIGWATCH_DELIVERY_CONCURRENCY": "2",
        "SIGWATCH_LOG_FORMAT": "json",
        **env,
    }
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sigwatch", "worker"],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
