"""Webhook delivery throughput: the real outbox path to a local receiver in another process.

Writes N alerts with one pending webhook delivery each, then runs the worker's delivery loop
(claim with a lease, compose, sign, POST, record) until every delivery is recorded as sent. The
receiver is a minimal HTTP server in its own process on 127.0.0.1 that answers 200 at once.

    .venv/bin/python benchmarks/bench_deliver.py [--deliveries 3000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from sigwatch.config import ensure_secret_key, load_settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Alert, Channel, Delivery, User
from sigwatch.delivery.channels.registry import seal_channel_config
from sigwatch.delivery.channels.webhook import generate_webhook_secret
from sigwatch.observability.logging import configure_logging
from sigwatch.worker.runner import Worker


def serve(port: int, ready: multiprocessing.synchronize.Event) -> None:
    """A receiver that reads each request and answers 200 (keep-alive), in its own process."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def run(count: int, database_url: str | None, data_dir: Path, port: int) -> float:
    settings = load_settings(
        data_dir=data_dir,
        database_url=database_url,
        allowed_private_networks=["127.0.0.1/32"],
        worker_concurrency=1,
    )
    engine = create_engine(settings)
    await upgrade(engine)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        user = User(username="bench", password_hash="x", role="admin")
        session.add(user)
        await session.flush()
        config = seal_channel_config(
            "webhook",
            {"url": f"http://127.0.0.1:{port}/hook", "secret": generate_webhook_secret()},
            ensure_secret_key(settings),
        )
        channel = Channel(owner_id=user.id, kind="webhook", name="bench", config=config)
        session.add(channel)
        await session.flush()
        alerts = [
            Alert(
                entity=f"Project {n}",
                event="listing",
                confidence=0.9,
                urgency="high",
                title=f"Exchange will list Project {n} (P{n})",
                first_seen_at=now,
                last_evidence_at=now,
            )
            for n in range(count)
        ]
        session.add_all(alerts)
        await session.flush()
        session.add_all(
            Delivery(
                alert_id=alert.id,
                channel_id=channel.id,
                idempotency_key=f"alert-{alert.id}-channel-{channel.id}",
            )
            for alert in alerts
        )

    worker = Worker(settings, sessions, idle_tick_s=0.05)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(worker.run(stop))
    while True:
        async with sessions() as session:
            sent = await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
            )
        if sent == count:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    await engine.dispose()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parser.parse_args()
    configure_logging("warning")  # as in production: no per-request debug lines
    port = free_port()
    ready = multiprocessing.Event()
    receiver = multiprocessing.Process(target=serve, args=(port, ready), daemon=True)
    receiver.start()
    ready.wait(10)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rate = asyncio.run(run(args.deliveries, args.database_url, Path(tmp), port))
    finally:
        receiver.terminate()
    print(f"{args.deliveries} signed webhooks sent and recorded: {rate:,.0f} webhooks/s")
    print(json.dumps({"webhooks_per_s": round(rate)}))


if __name__ == "__main__":
    main()
