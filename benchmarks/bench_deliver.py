"""Webhook delivery: throughput of the real outbox path, and what a kill -9 mid-batch repeats.

1. Throughput. Writes N alerts with one pending webhook delivery each, then runs the worker's
   delivery loop (claim with a lease, compose, sign, POST, record each answer) until every
   delivery is recorded as sent. The receiver is a minimal HTTP server in its own process on
   127.0.0.1 that answers 200 at once. In-run baseline: the same number of signed POSTs sent
   straight through the webhook channel, same client and concurrency, without the outbox.
2. kill -9. Writes 200 more deliveries for a receiver that takes 50 ms per request, starts
   ``sigwatch worker`` as a process, SIGKILLs it once half are received, starts a second worker
   and waits until all are sent. ``in_flight_at_kill`` counts the sends the receiver had been
   sent but whose answer the outbox had not recorded when the worker died (what the second
   worker may repeat), ``open_at_receiver_at_kill`` those of them still unanswered, and
   ``duplicates_after_kill`` the requests the receiver got again.
   Recording each answer as it comes bounds the first by the delivery concurrency (with the
   old end-of-batch recording it was every send of the batch so far, up to 64).

    .venv/bin/python benchmarks/bench_deliver.py [--deliveries 3000] [--database-url URL]

The last line is one JSON object: webhooks_per_s, bare_posts_per_s, in_flight_at_kill,
duplicates_after_kill, delivery_concurrency and more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.synchronize
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings, ensure_secret_key, load_settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.migrate import upgrade
from sigwatch.db.models import Alert, Channel, Delivery, User
from sigwatch.delivery.channels.registry import seal_channel_config
from sigwatch.delivery.channels.webhook import (
    WebhookChannel,
    WebhookOptions,
    generate_webhook_secret,
)
from sigwatch.delivery.message import AlertMessage
from sigwatch.net.client import OutboundClient
from sigwatch.observability.logging import configure_logging
from sigwatch.worker.deliver import CHANNEL_CONCURRENCY
from sigwatch.worker.runner import Worker

KILL_DELIVERIES = 200
KILL_RECEIVER_DELAY_S = 0.05
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"


def serve(
    port: int,
    ready: multiprocessing.synchronize.Event,
    log_path: str | None = None,
    delay_s: float = 0.0,
) -> None:
    """A receiver that reads each request and answers 200 (keep-alive), in its own process.

    With ``log_path`` it appends ``S <webhook-id>`` when a request has arrived and ``D <id>``
    once it has answered it, each line in one write.
    """
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND) if log_path else None

    def note(mark: str, webhook_id: str) -> None:
        if log_fd is not None:
            os.write(log_fd, f"{mark} {webhook_id}\n".encode())

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, webhook_id = 0, "-"
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    elif name.lower() == b"webhook-id":
                        webhook_id = value.strip().decode()
                await reader.readexactly(length)
                note("S", webhook_id)
                if delay_s:
                    await asyncio.sleep(delay_s)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                note("D", webhook_id)
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


def start_receiver(
    log_path: Path | None = None, delay_s: float = 0.0
) -> tuple[multiprocessing.Process, int]:
    port = free_port()
    ready = multiprocessing.Event()
    receiver = multiprocessing.Process(
        target=serve, args=(port, ready, str(log_path) if log_path else None, delay_s), daemon=True
    )
    receiver.start()
    if not ready.wait(10):
        raise SystemExit("the receiver did not start")
    return receiver, port


async def add_deliveries(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, port: int, count: int
) -> None:
    """``count`` alerts with one delivery each to a webhook on ``port``, due now."""
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        user = User(username=f"bench-{port}", password_hash="x", role="admin")
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


async def count_sent(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        sent = await session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
        )
    return int(sent or 0)


async def throughput(settings: Settings, count: int, port: int) -> float:
    """Deliveries per second through the outbox, sent and recorded by an in-process worker."""
    engine = create_engine(settings)
    await upgrade(engine)
    sessions = session_factory(engine)
    await add_deliveries(sessions, settings, port, count)
    # The worker's own idle tick, as deployed: its source loop looks for due sources once a
    # second, while the delivery loop claims the next batch as soon as one is done.
    worker = Worker(settings, sessions)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(worker.run(stop))
    while await count_sent(sessions) < count:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    await engine.dispose()
    return count / elapsed


async def bare_posts(settings: Settings, count: int, port: int) -> float:
    """Baseline: signed webhook POSTs per second without the outbox (no database at all)."""
    client = OutboundClient.from_settings(settings)
    options = WebhookOptions.model_validate(
        {"url": f"http://127.0.0.1:{port}/hook", "secret": generate_webhook_secret()}
    )
    channel = WebhookChannel(options, client)
    now = datetime.now(UTC)
    messages = [
        AlertMessage(
            alert_id=n,
            idempotency_key=f"bare-{n}",
            event="listing",
            entity=f"Project {n}",
            title=f"Exchange will list Project {n} (P{n})",
            summary=f"Project {n}: exchange listing. Confidence 90%, urgency high.",
            confidence=0.9,
            urgency="high",
            url=None,
            evidence=[],
            created_at=now,
        )
        for n in range(count)
    ]
    # The worker's limits: delivery_concurrency at once, CHANNEL_CONCURRENCY to one channel.
    slots = asyncio.Semaphore(min(settings.delivery_concurrency, CHANNEL_CONCURRENCY))

    async def send(message: AlertMessage) -> None:
        async with slots:
            await channel.send(message)

    started = time.perf_counter()
    await asyncio.gather(*(send(message) for message in messages))
    elapsed = time.perf_counter() - started
    await client.aclose()
    return count / elapsed


def read_receiver_log(path: Path) -> tuple[list[str], set[str]]:
    """Every request the receiver got (ids, in order, repeats kept) and those it answered."""
    started: list[str] = []
    answered: set[str] = set()
    for line in path.read_text().splitlines():
        mark, _, webhook_id = line.partition(" ")
        if mark == "S":
            started.append(webhook_id)
        elif mark == "D":
            answered.add(webhook_id)
    return started, answered


def start_worker(settings: Settings, tmp: Path, name: str) -> subprocess.Popen[bytes]:
    environ = {
        **os.environ,
        "SIGWATCH_DATA_DIR": str(settings.data_dir),
        "SIGWATCH_DATABASE_URL": settings.effective_database_url,
        "SIGWATCH_SECRET_KEY": SECRET_KEY,
        "SIGWATCH_ALLOWED_PRIVATE_NETWORKS": '["127.0.0.1/32"]',
        "SIGWATCH_DELIVERY_CONCURRENCY": str(settings.delivery_concurrency),
        # A short lease, so the second worker takes the dead one's deliveries over in seconds.
        "SIGWATCH_LEASE_S": "5",
        "SIGWATCH_FETCH_TIMEOUT_S": "4",
        "SIGWATCH_LOG_LEVEL": "warning",
    }
    with (tmp / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sigwatch", "worker"],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )


async def kill_run(settings: Settings, tmp: Path) -> dict[str, Any]:
    """kill -9 a worker process mid-batch; count what the second worker sends again."""
    receiver_log = tmp / "receiver.log"
    receiver, port = start_receiver(receiver_log, KILL_RECEIVER_DELAY_S)
    engine = create_engine(settings)
    await upgrade(engine)
    sessions = session_factory(engine)
    before = await count_sent(sessions)
    await add_deliveries(sessions, settings, port, KILL_DELIVERIES)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        first = start_worker(settings, tmp, "first")
        workers.append(first)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if receiver_log.exists():
                if len(read_receiver_log(receiver_log)[0]) >= KILL_DELIVERIES // 2:
                    break
            await asyncio.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        answered = read_receiver_log(receiver_log)[1]
        first.wait(timeout=10)
        await asyncio.sleep(0.3)  # requests already on the wire reach the receiver's log
        started = read_receiver_log(receiver_log)[0]
        async with sessions() as session:
            recorded = set(
                await session.scalars(
                    select(Delivery.idempotency_key).where(Delivery.status == "sent")
                )
            )
        second = start_worker(settings, tmp, "second")
        workers.append(second)
        deadline = time.monotonic() + 120
        while await count_sent(sessions) < before + KILL_DELIVERIES:
            if time.monotonic() > deadline:
                raise SystemExit("the second worker did not finish; see its log in " + str(tmp))
            await asyncio.sleep(0.05)
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    finally:
        for worker in workers:  # never leave a worker behind, even when the run failed
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
        receiver.terminate()
        await engine.dispose()
    seen_before = set(started)
    received = Counter(read_receiver_log(receiver_log)[0])
    return {
        "deliveries": KILL_DELIVERIES,
        "received_before_kill": len(seen_before),
        "recorded_before_kill": len(recorded & seen_before),
        "in_flight_at_kill": len(seen_before - recorded),
        "open_at_receiver_at_kill": len(seen_before - answered),
        "duplicates_after_kill": sum(n - 1 for n in received.values()),
        "recorded_sent_twice": sum(1 for key in recorded if received[key] > 1),
        "all_received": len(received) == KILL_DELIVERIES,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--skip-kill", action="store_true", help="throughput only")
    args = parser.parse_args()
    configure_logging("warning")  # as in production: no per-request debug lines
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings = load_settings(
            data_dir=tmp / "data",
            database_url=args.database_url,
            secret_key=SECRET_KEY,
            allowed_private_networks=["127.0.0.1/32"],
            worker_concurrency=1,
        )
        receiver, port = start_receiver()
        try:
            bare = asyncio.run(bare_posts(settings, args.deliveries, port))
            rate = asyncio.run(throughput(settings, args.deliveries, port))
        finally:
            receiver.terminate()
        print(f"{args.deliveries} signed webhooks sent and recorded: {rate:,.0f} webhooks/s")
        print(
            f"baseline, the same POSTs without the outbox: {bare:,.0f}/s "
            f"(the outbox runs at {rate / bare:.0%} of it)"
        )
        results |= {
            "webhooks_per_s": round(rate),
            "bare_posts_per_s": round(bare),
            "delivery_concurrency": settings.delivery_concurrency,
        }
        if not args.skip_kill:
            kill = asyncio.run(kill_run(settings, tmp))
            print(
                f"kill -9 after {kill['received_before_kill']} of {kill['deliveries']} received: "
                f"{kill['recorded_before_kill']} were recorded, {kill['in_flight_at_kill']} in "
                f"flight (sent, answer unrecorded; bound: delivery_concurrency "
                f"{settings.delivery_concurrency}, old end-of-batch recording: up to 64)"
            )
            print(
                f"after the second worker: {kill['duplicates_after_kill']} duplicates "
                f"(at most the {kill['in_flight_at_kill']} in flight), "
                f"{kill['recorded_sent_twice']} recorded deliveries sent twice, "
                f"every delivery received: {kill['all_received']}"
            )
            results |= kill
    print(json.dumps(results))


if __name__ == "__main__":
    main()
