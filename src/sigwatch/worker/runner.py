"""The worker loop: claim due sources with a lease, poll them concurrently, shut down gracefully.

Due sources are claimed in batches, ahead of the free slots: as many as the worker will start
within :data:`CLAIM_AHEAD_S` at the rate its polls have been finishing, so a worker answering
hundreds of 304s a second claims a few dozen sources per transaction, and one with slow
fetches claims no more than its free slots (a source claimed ahead is one no other worker can
take meanwhile). Every claimed source's lease is renewed by one keeper, from the claim until
its outcome is recorded or handed to the group recorder (:func:`~.collect.poll_recorder`).
Idle, the worker sleeps until the earliest ``next_poll_at``, at most :data:`IDLE_TICK_S`, so a
source is claimed within milliseconds of falling due and a new source or a "poll now" (which
make a source due at once, and which the worker cannot foresee) within the tick.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from asyncio import FIRST_COMPLETED
from collections import deque
from collections.abc import Callable, Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.alerts.detectors import DetectorCache
from sigwatch.alerts.freshness import Thresholds
from sigwatch.alerts.record import alert_threshold
from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.outbox import claim_due_deliveries, release_delivery_leases
from sigwatch.db.schedule import (
    ClaimedSource,
    claim_due_sources,
    count_due_sources,
    earliest_due_at,
    release_leases,
)
from sigwatch.db.types import utcnow
from sigwatch.live.bus import LiveBus
from sigwatch.live.events import publish_alert_events
from sigwatch.net.client import OutboundClient
from sigwatch.observability.metrics import QUEUE_DEPTH
from sigwatch.sources.base import Platforms
from sigwatch.worker.backfill import BackfillLoop
from sigwatch.worker.cadence import CadencePolicy
from sigwatch.worker.collect import PollOutcome, PollRecorder, poll_recorder, poll_source
from sigwatch.worker.deliver import DeliveryPipeline, RetryPolicy
from sigwatch.worker.freshness import FreshnessChecker
from sigwatch.worker.leases import LeaseKeeper, source_leases
from sigwatch.worker.search_index import SearchIndexMerger
from sigwatch.worker.websub import WebSubSubscriber, wake_on_live_events

log = structlog.get_logger(__name__)

#: Longest sleep of an idle worker before it looks for due sources again: a new source or a
#: "poll now" request waits at most this long. It wakes sooner when a known source falls due.
IDLE_TICK_S = 1.0
#: Sources are claimed ahead of the free slots: as many as this worker starts in this time.
CLAIM_AHEAD_S = 0.1
#: Most sources held claimed ahead of the free slots.
CLAIM_BATCH = 128
#: Shortest pause before claiming again after a claim found fewer due sources than it asked
#: for while others seemed due: those are being claimed by another worker.
MIN_CLAIM_PAUSE_S = 0.005
#: How long the rate of finished polls is counted over before the estimate is renewed.
PACE_WINDOW_S = 0.25
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
        self._cadence = CadencePolicy.from_settings(settings)
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
                FreshnessChecker(
                    self.sessions,
                    Thresholds.from_settings(self.settings),
                    interval_s=self.settings.freshness_check_s,
                    bus=self._bus,
                    on_notice=self._deliveries_due.set,
                ).run(stop),
            )
        finally:
            if self._client is None:
                await client.aclose()
            log.info("worker stopped", worker_id=self.worker_id)

    async def _run_sources(self, stop: asyncio.Event) -> None:
        """Claim and poll due sources until stopped, then finish in-flight polls (bounded)."""
        in_flight: set[asyncio.Task[PollOutcome]] = set()
        ready: deque[ClaimedSource] = deque()  # claimed, waiting for a free slot
        pace = PollPace()
        stopping = asyncio.create_task(stop.wait())
        db_failures = 0
        next_claim_at = 0.0  # time.monotonic() before which no claim is made
        leases = source_leases(
            self.sessions, worker_id=self.worker_id, lease_s=self.settings.lease_s
        )
        recorder = poll_recorder(self.sessions, worker_id=self.worker_id)
        async with leases, recorder:
            try:
                while not stop.is_set():
                    free = self.settings.worker_concurrency - len(in_flight)
                    ahead = pace.ahead()
                    # Claim when the slots free now would leave less than half of the wanted
                    # lead waiting; with every slot busy a claim could take nothing ahead.
                    if (
                        free > 0
                        and len(ready) - free < (ahead + 1) // 2
                        and time.monotonic() >= next_claim_at
                    ):
                        limit = free + ahead - len(ready)
                        try:
                            claimed, pause_s = await self._claim(limit)
                            db_failures = 0
                        except Exception as exc:  # the database may be restarting; keep going
                            db_failures += 1
                            delay = min(MAX_DB_RETRY_S, 0.5 * 2**db_failures)
                            log.warning("claiming sources failed", error=str(exc), retry_in_s=delay)
                            await asyncio.wait({stopping}, timeout=delay)
                            continue
                        leases.hold(source.id for source in claimed)
                        ready.extend(claimed)
                        next_claim_at = time.monotonic() + pause_s
                    while free > 0 and ready:
                        in_flight.add(
                            asyncio.create_task(self._poll(ready.popleft(), leases, recorder))
                        )
                        free -= 1
                    if free > 0 and time.monotonic() >= next_claim_at:
                        continue  # more may be due right away
                    timeout = self._idle_tick_s
                    if free > 0:
                        timeout = max(0.0, next_claim_at - time.monotonic())
                    done, _ = await asyncio.wait(
                        {stopping, *in_flight}, timeout=timeout, return_when=FIRST_COMPLETED
                    )
                    done.discard(stopping)
                    in_flight.difference_update(done)
                    pace.finished(len(done))
            finally:
                await self._drain(in_flight, recorder, leases)
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
                    # Cleared before the claim, not after it: an alert committed while the claim
                    # runs (and missed by it) leaves the event set, so the wait below ends at
                    # once instead of an idle tick later (benchmarks/bench_latency.py).
                    self._deliveries_due.clear()
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

    async def _claim(self, limit: int) -> tuple[list[ClaimedSource], float]:
        """Lease up to ``limit`` due sources; also how long to wait before claiming again.

        No wait when the claim took all it asked for (more may be due); else until the earliest
        ``next_poll_at`` of the rest, at most the idle tick.
        """
        async with self.sessions.begin() as session:
            now = utcnow()
            claimed = await claim_due_sources(
                session,
                worker_id=self.worker_id,
                now=now,
                lease_s=self.settings.lease_s,
                limit=limit,
            )
            pause_s = 0.0
            if len(claimed) < limit:
                earliest = await earliest_due_at(session, now=now)
                pause_s = self._idle_tick_s
                if earliest is not None:
                    # A little past the due time, so the claim's clock has reached it.
                    due_in_s = (earliest - now).total_seconds() + 0.001
                    pause_s = min(pause_s, max(MIN_CLAIM_PAUSE_S, due_in_s))
            if time.monotonic() >= self._queue_depth_due_at:
                QUEUE_DEPTH.set(await count_due_sources(session, now=now))
                self._queue_depth_due_at = time.monotonic() + QUEUE_DEPTH_EVERY_S
        return claimed, pause_s

    async def _poll(
        self, source: ClaimedSource, leases: LeaseKeeper, recorder: PollRecorder
    ) -> PollOutcome:
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
                leases=leases,
                recorder=recorder,
                cadence=self._cadence,
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

    async def _drain(
        self,
        in_flight: set[asyncio.Task[PollOutcome]],
        recorder: PollRecorder,
        leases: LeaseKeeper,
    ) -> None:
        """Let running polls finish within the grace period, cancel the rest, commit what was
        handed to the recorder, free the leases (of the sources claimed and not polled too)."""
        if in_flight:
            log.info("waiting for in-flight polls", count=len(in_flight))
            _, pending = await asyncio.wait(in_flight, timeout=self.settings.shutdown_grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await recorder.flush()
        try:
            async with self.sessions.begin() as session:
                released = await release_leases(session, worker_id=self.worker_id)
            if released:
                log.info("leases released", source_ids=released)
        except Exception as exc:  # leases expire by themselves if the database is away
            log.warning("releasing leases failed", error=str(exc))


class PollPace:
    """How many polls a worker finishes per second, to claim about as many as it will start."""

    def __init__(self) -> None:
        self._window_started = time.monotonic()
        self._finished = 0
        self._per_s = 0.0

    def finished(self, count: int) -> None:
        """Note ``count`` more finished polls."""
        self._finished += count
        now = time.monotonic()
        elapsed = now - self._window_started
        if elapsed >= PACE_WINDOW_S:
            self._per_s = self._finished / elapsed
            self._window_started, self._finished = now, 0

    def ahead(self) -> int:
        """How many sources to hold claimed beyond the free slots: those of the next
        :data:`CLAIM_AHEAD_S` at the recent pace, at most :data:`CLAIM_BATCH`."""
        return min(CLAIM_BATCH, int(self._per_s * CLAIM_AHEAD_S))


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
                cadence=CadencePolicy.from_settings(settings),
            )
        if on_done is not None:
            on_done(outcome)
        return outcome

    try:
        return list(await asyncio.gather(*(one(source) for source in claimed)))
    finally:
        if client is None:
            await active.aclose()
