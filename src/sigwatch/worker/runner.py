"""The worker loop: claim due sources with a lease, poll them concurrently, shut down gracefully."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.alerts.detectors import DetectorCache
from sigwatch.alerts.record import alert_threshold
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.outbox import claim_due_deliveries, release_delivery_leases
from sigwatch.db.schedule import ClaimedSource, claim_due_sources, count_due_sources, release_leases
from sigwatch.db.types import utcnow
from sigwatch.live.bus import LiveBus
from sigwatch.live.events import publish_alert_events
from sigwatch.net.client import OutboundClient
from sigwatch.observability.metrics import QUEUE_DEPTH
from sigwatch.sources.base import Platforms
from sigwatch.worker.backfill import BackfillLoop
from sigwatch.worker.collect import PollOutcome, poll_source
from sigwatch.worker.deliver import DeliveryPipeline, RetryPolicy
from sigwatch.worker.search_index import SearchIndexMerger
from sigwatch.worker.websub import WebSubSubscriber, wake_on_live_events

log = structlog.get_logger(__name__)

#: How often an idle worker looks for due sources; "poll now" requests wait at most this long.
IDLE_TICK_S = 1.0
#: Deliveries claimed at once by one worker.
DELIVERY_BATCH = 64
#: Longest pause after the database failed to answer, before trying again.
MAX_DB_RETRY_S = 30.0
#: How often the queue-depth gauge is refreshed. Counting the due sources at every claim cost
#: as much CPU as the claim itself while a backlog was worked off (benchmarks/bench_poll.py).
QUEUE_DEPTH_EVERY_S = 1.0


def new_worker_id() -> str:
    """A worker id that names the host and process, unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Polls due sources until stopped; any number of workers may share one database."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        worker_id: str | None = None,
        client: OutboundClient | None = None,
        idle_tick_s: float = IDLE_TICK_S,
        bus: LiveBus | None = None,
    ) -> None:
        self.settings = settings
        self._bus = bus
        self.sessions = sessions
        self.worker_id = worker_id or new_worker_id()
        self._client = client
        self._idle_tick_s = idle_tick_s
        self._active_client: OutboundClient | None = None
        self._secret_key = ""  # read when the worker starts: it opens sealed source options
        self._detectors = DetectorCache()
        self._deliveries_due = asyncio.Event()
        self._search_index = SearchIndexMerger(sessions)
        self._platforms = Platforms.from_settings(settings)
        self._queue_depth_due_at = 0.0  # time.monotonic() of the gauge's next refresh

    async def run(self, stop: asyncio.Event) -> None:
        """Poll sources and send deliveries until ``stop`` is set, then finish in-flight work."""
        client = self._client or OutboundClient.from_settings(self.settings)
        self._active_client = client
        self._secret_key = ensure_secret_key(self.settings)
        log.info("worker started", worker_id=self.worker_id)
        try:
            await asyncio.gather(
                self._run_sources(stop),
                self._run_deliveries(stop),
                self._search_index.run(stop),
                self._run_backfills(stop),
                WebSubSubscriber(
                    self.sessions,
                    public_url=self.settings.public_url,
                    client=client,
                    secret_key=self._secret_key,
                ).run(stop),
                # Alerts of pushes ingested by an API process: their deliveries are due now.
                wake_on_live_events(self._bus, self._deliveries_due.set, stop),
            )
        finally:
            if self._client is None:
                await client.aclose()
            log.info("worker stopped", worker_id=self.worker_id)

    async def _run_sources(self, stop: asyncio.Event) -> None:
        """Claim and poll due sources until stopped, then finish in-flight polls (bounded)."""
        in_flight: set[asyncio.Task[PollOutcome]] = set()
        stopping = asyncio.create_task(stop.wait())
        db_failures = 0
        try:
            while not stop.is_set():
                free = self.settings.worker_concurrency - len(in_flight)
                claimed: list[ClaimedSource] = []
                try:
                    if free > 0:  # with every slot busy a claim could take nothing: wait instead
                        claimed = await self._claim(free)
                    db_failures = 0
                except Exception as exc:  # the database may be restarting; keep the loop alive
                    db_failures += 1
                    delay = min(MAX_DB_RETRY_S, 0.5 * 2**db_failures)
                    log.warning("claiming sources failed", error=str(exc), retry_in_s=delay)
                    await asyncio.wait({stopping}, timeout=delay)
                    continue
                for source in claimed:
                    in_flight.add(asyncio.create_task(self._poll(source)))
                if len(claimed) == free and free > 0:
                    continue  # more may be due right away
                done, _ = await asyncio.wait(
                    {stopping, *in_flight},
                    timeout=self._idle_tick_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                in_flight.difference_update(done)
        finally:
            await self._drain(in_flight)
            stopping.cancel()

    async def _run_deliveries(self, stop: asyncio.Event) -> None:
        """Claim and send due deliveries until stopped; a poll that made alerts wakes it at once.

        The next batch is claimed as soon as the pipeline has room, while the previous batch's
        last sends are still out, so sending never pauses for a claim.
        """
        assert self._active_client is not None
        stopping = asyncio.create_task(stop.wait())
        pipeline = DeliveryPipeline(
            sessions=self.sessions,
            client=self._active_client,
            secret_key=self._secret_key,
            worker_id=self.worker_id,
            lease_s=self.settings.lease_s,
            concurrency=self.settings.delivery_concurrency,
            retry=RetryPolicy(
                self.settings.delivery_retry_base_s, self.settings.delivery_max_attempts
            ),
            stop=stop,
        )
        db_failures = 0
        try:
            async with pipeline:
                while not stop.is_set():
                    if not pipeline.has_room:
                        room = asyncio.create_task(pipeline.wait_for_room())
                        await asyncio.wait({stopping, room}, return_when=FIRST_COMPLETED)
                        room.cancel()
                        continue
                    try:
                        async with self.sessions.begin() as session:
                            batch = await claim_due_deliveries(
                                session,
                                worker_id=self.worker_id,
                                now=utcnow(),
                                lease_s=self.settings.lease_s,
                                limit=DELIVERY_BATCH,
                            )
                        db_failures = 0
                    except Exception as exc:  # the database may be restarting; keep the loop
                        db_failures += 1
                        delay = min(MAX_DB_RETRY_S, 0.5 * 2**db_failures)
                        log.warning("claiming deliveries failed", error=str(exc), retry_in_s=delay)
                        await asyncio.wait({stopping}, timeout=delay)
                        continue
                    if batch:
                        await pipeline.submit(batch)
                        continue
                    self._deliveries_due.clear()
                    woken = asyncio.create_task(self._deliveries_due.wait())
                    await asyncio.wait(
                        {stopping, woken}, timeout=self._idle_tick_s, return_when=FIRST_COMPLETED
                    )
                    woken.cancel()
        finally:
            stopping.cancel()
            try:
                async with self.sessions.begin() as session:
                    await release_delivery_leases(session, worker_id=self.worker_id)
            except Exception as exc:  # leases expire by themselves if the database is away
                log.warning("releasing delivery leases failed", error=str(exc))

    async def _run_backfills(self, stop: asyncio.Event) -> None:
        """Run queued backfill jobs beside the polls (see :mod:`sigwatch.worker.backfill`)."""
        assert self._active_client is not None
        await BackfillLoop(
            self.sessions,
            client=self._active_client,
            secret_key=self._secret_key,
            platforms=self._platforms,
            worker_id=self.worker_id,
            lease_s=self.settings.lease_s,
            idle_tick_s=self._idle_tick_s,
            shutdown_grace_s=self.settings.shutdown_grace_s,
            on_page=lambda _progress: self._search_index.posts_stored(),
        ).run(stop)

    async def _claim(self, limit: int) -> list[ClaimedSource]:
        async with self.sessions.begin() as session:
            now = utcnow()
            claimed = await claim_due_sources(
                session,
                worker_id=self.worker_id,
                now=now,
                lease_s=self.settings.lease_s,
                limit=limit,
            )
            if time.monotonic() >= self._queue_depth_due_at:
                QUEUE_DEPTH.set(await count_due_sources(session, now=now))
                self._queue_depth_due_at = time.monotonic() + QUEUE_DEPTH_EVERY_S
        return claimed

    async def _poll(self, source: ClaimedSource) -> PollOutcome:
        assert self._active_client is not None
        try:
            outcome = await poll_source(
                source,
                client=self._active_client,
                sessions=self.sessions,
                worker_id=self.worker_id,
                lease_s=self.settings.lease_s,
                max_backoff_s=self.settings.max_backoff_s,
                detectors=self._detectors,
                min_confidence=alert_threshold(self.settings),
                secret_key=self._secret_key,
                platforms=self._platforms,
            )
        except Exception as exc:  # storing failed (database away): the lease expires, poll retried
            log.exception("poll could not be recorded", source_id=source.id)
            return PollOutcome(source_id=source.id, ok=False, error=str(exc))
        if outcome.new or outcome.updated:
            self._search_index.posts_stored()
        if outcome.alerts:
            self._deliveries_due.set()
            if self._bus is not None:
                history = [c.history_id for c in outcome.alerts if c.history_id is not None]
                await publish_alert_events(self._bus, self.sessions, history)
        return outcome

    async def _drain(self, in_flight: set[asyncio.Task[PollOutcome]]) -> None:
        """Let running polls finish within the grace period, cancel the rest, free the leases."""
        if in_flight:
            log.info("waiting for in-flight polls", count=len(in_flight))
            _, pending = await asyncio.wait(in_flight, timeout=self.settings.shutdown_grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        try:
            async with self.sessions.begin() as session:
                released = await release_leases(session, worker_id=self.worker_id)
            if released:
                log.info("leases released", source_ids=released)
        except Exception as exc:  # leases expire by themselves if the database is away
            log.warning("releasing leases failed", error=str(exc))


async def collect_once(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    source_ids: Sequence[int] | None,
    *,
    on_claimed: Callable[[list[ClaimedSource]], None] | None = None,
    on_done: Callable[[PollOutcome], None] | None = None,
    client: OutboundClient | None = None,
) -> list[PollOutcome]:
    """Poll the given sources (or every enabled one) once now, ``worker_concurrency`` at a time.

    Sources leased by a running worker are skipped, since that worker is polling them already.
    """
    worker_id = f"collect:{new_worker_id()}"
    if source_ids is not None and not source_ids:
        return []
    async with sessions.begin() as session:
        claimed = await claim_due_sources(
            session,
            worker_id=worker_id,
            now=utcnow(),
            lease_s=settings.lease_s,
            limit=len(source_ids) if source_ids is not None else 1_000_000,
            source_ids=list(source_ids) if source_ids is not None else None,
            due_only=False,
        )
    if on_claimed is not None:
        on_claimed(claimed)
    active = client or OutboundClient.from_settings(settings)
    detectors = DetectorCache()
    secret_key = ensure_secret_key(settings)
    platforms = Platforms.from_settings(settings)
    semaphore = asyncio.Semaphore(settings.worker_concurrency)

    async def one(source: ClaimedSource) -> PollOutcome:
        async with semaphore:
            outcome = await poll_source(
                source,
                client=active,
                sessions=sessions,
                worker_id=worker_id,
                lease_s=settings.lease_s,
                max_backoff_s=settings.max_backoff_s,
                detectors=detectors,
                min_confidence=alert_threshold(settings),
                secret_key=secret_key,
                platforms=platforms,
            )
        if on_done is not None:
            on_done(outcome)
        return outcome

    try:
        return list(await asyncio.gather(*(one(source) for source in claimed)))
    finally:
        if client is None:
            await active.aclose()
