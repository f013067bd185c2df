"""Sending claimed deliveries: compose, send, record each answer as it comes; never raises.

A claimed batch is loaded with a few queries (channels, alerts, evidence) and handed to the
worker's :class:`DeliveryPipeline`, which sends ``concurrency`` messages at a time, at most
:data:`CHANNEL_CONCURRENCY` of them to one channel, and takes the next batch while the last
sends of this one run. Each answer is committed within milliseconds of arriving, grouped with
the answers that arrived meanwhile (:mod:`sigwatch.worker.recorder`), and a send keeps its slot
until its answer is committed: however many batches flow through, at most ``concurrency`` sends
are ever unrecorded, so a worker killed mid-batch repeats only those. The leases of everything
handed over are renewed until it is recorded (:mod:`sigwatch.worker.leases`), so a slow receiver
never has a lease expire under it and the same deliveries sent again by another worker.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.db.alerts import alerts_as_seen
from sigwatch.db.models import Channel
from sigwatch.db.outbox import (
    ClaimedDelivery,
    channels_by_id,
    postpone,
    record_failure,
    record_sent,
    sent_since,
)
from sigwatch.db.system_alerts import system_alerts_as_seen
from sigwatch.db.types import utcnow
from sigwatch.db.visibility import viewer_ids
from sigwatch.delivery.channels.base import Channel as Sender
from sigwatch.delivery.channels.base import DeliveryReceipt
from sigwatch.delivery.compose import compose_digest, compose_message, compose_system_message
from sigwatch.delivery.message import AlertMessage, MessageKind
from sigwatch.delivery.retry import is_exhausted, next_attempt_delay_s
from sigwatch.delivery.send import open_channel
from sigwatch.errors import PermanentDeliveryError, SigwatchError, TransientDeliveryError
from sigwatch.net.client import OutboundClient
from sigwatch.observability.metrics import DELIVERIES
from sigwatch.worker.leases import delivery_leases
from sigwatch.worker.recorder import GroupRecorder

log = structlog.get_logger(__name__)

#: Requests one worker keeps open to one channel at once. It spares receivers, and keeps the
#: connection pool to one host small: httpcore checks every idle connection on each request,
#: which at 16 connections to one receiver cost more CPU than the send itself (measured with
#: benchmarks/bench_deliver.py).
CHANNEL_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failed deliveries are retried: first wait (doubling) and attempts before dead."""

    base_s: float = 30.0
    max_attempts: int = 10


@dataclass(slots=True)
class _Job:
    """One message to send: a single delivery, or every delivery of a channel's digest."""

    group: list[ClaimedDelivery]
    channel: Channel | None = None
    message: AlertMessage | None = None
    receipt: DeliveryReceipt | None = None
    error: str | None = None
    permanent: bool = False
    retry_after_s: float | None = None
    postpone_until: datetime | None = None


class DeliveryPipeline:
    """Sends the deliveries handed to it, ``concurrency`` at once, for as long as a worker runs.

    One pipeline outlives the batches fed to it: the worker claims the next batch while the
    last sends of the previous one are still out (see :attr:`has_room`), so no slot waits for a
    claim, a load or the last answer of a batch. Once ``stop`` is set no new send starts; the
    unsent deliveries keep their lease until the worker releases it. One send is cut off after
    ``lease_s`` whatever its channel's own timeout. Nothing here raises into the worker.
    """

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        client: OutboundClient,
        secret_key: str,
        worker_id: str,
        lease_s: float,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._secret_key = secret_key
        self._lease_s = lease_s
        self._concurrency = max(1, concurrency)
        self._policy = retry or RetryPolicy()
        self._stop = stop
        self._slots = asyncio.Semaphore(self._concurrency)
        self._per_channel: dict[int, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(CHANNEL_CONCURRENCY)
        )
        self._senders: dict[int, Sender] = {}
        self._leases = delivery_leases(sessions, worker_id=worker_id, lease_s=lease_s)
        policy = self._policy

        async def write(session: AsyncSession, done: list[_Job]) -> None:
            await _write_outcomes(session, done, worker_id, policy)

        # A group is committed once it holds the answers of every slot not busy sending.
        self._recorder = GroupRecorder(
            sessions,
            write,
            what="deliveries",
            group_size=max(1, self._concurrency - CHANNEL_CONCURRENCY),
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting = 0  # handed over, not yet given a slot
        self._room = asyncio.Event()
        self._room.set()

    @property
    def has_room(self) -> bool:
        """True while fewer jobs wait for a slot than there are slots: time to claim more."""
        return self._waiting < self._concurrency

    async def wait_for_room(self) -> None:
        """Return once :attr:`has_room` is true."""
        await self._room.wait()

    async def submit(self, batch: Sequence[ClaimedDelivery]) -> None:
        """Load and compose a claimed batch and start sending it; returns before it is sent."""
        jobs = _jobs(batch)
        try:
            async with self._sessions() as session:
                await _prepare(session, jobs)
        except Exception as exc:  # the database went away: leases expire, the batch is retried
            log.warning("loading deliveries failed", error=str(exc))
            return
        self._leases.hold(delivery.id for delivery in batch)
        self._waiting += len(jobs)
        if not self.has_room:
            self._room.clear()
        for job in jobs:
            task = asyncio.create_task(self._send(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> Self:
        await self._leases.__aenter__()
        await self._recorder.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await self._recorder.__aexit__(exc_type, exc, tb)
            await self._leases.__aexit__(exc_type, exc, tb)

    def _started(self) -> None:
        self._waiting -= 1
        if self.has_room:
            self._room.set()

    async def _finish(self, job: _Job) -> None:
        if await self._recorder.record(job):
            _count(job, self._policy)
        # Recorded, or given up (the database is away): either way its lease may now lapse.
        self._leases.release(d.id for d in job.group)

    async def _send(self, job: _Job) -> None:
        if job.error or job.postpone_until or job.channel is None or job.message is None:
            self._started()
            self._recorder.expect()
            await self._finish(job)
            return
        async with self._slots:
            self._started()
            ids = [d.id for d in job.group]
            if (self._stop is not None and self._stop.is_set()) or self._leases.lost(ids):
                self._leases.release(ids)  # not sent: released on shutdown, or another's now
                return
            self._recorder.expect()
            await self._attempt(job, job.channel, job.message)
            await self._finish(job)  # inside the slot: at most `concurrency` sends unrecorded

    async def _attempt(self, job: _Job, channel: Channel, message: AlertMessage) -> None:
        """Send ``job``'s message once, keeping its receipt or its error on the job."""
        try:
            sender = self._senders.get(channel.id)
            if sender is None:
                sender = open_channel(channel, secret_key=self._secret_key, client=self._client)
                self._senders[channel.id] = sender
            async with self._per_channel[channel.id], asyncio.timeout(self._lease_s):
                job.receipt = await sender.send(message)
        except TransientDeliveryError as exc:
            job.error, job.retry_after_s = str(exc), exc.retry_after_s
        except (PermanentDeliveryError, SigwatchError) as exc:
            job.error, job.permanent = str(exc), True
        except TimeoutError:
            job.error = (
                f"the {channel.kind} channel did not finish within the lease "
                f"(SIGWATCH_LEASE_S={self._lease_s:g}s); lower the channel's timeout_s below it"
            )
        except Exception as exc:  # a bug in a channel must not stop the loop
            log.exception("delivery crashed", delivery_id=job.group[0].id)
            job.error = f"internal error: {type(exc).__name__}"


def _jobs(batch: Sequence[ClaimedDelivery]) -> list[_Job]:
    """One job per delivery, except that a channel's digest deliveries make one job."""
    digests: dict[tuple[int, int | None], list[ClaimedDelivery]] = defaultdict(list)
    jobs: list[_Job] = []
    for delivery in batch:
        if delivery.kind == "digest":
            digests[delivery.channel_id, delivery.subscription_id].append(delivery)
        else:
            jobs.append(_Job([delivery]))
    return jobs + [_Job(group) for group in digests.values()]


async def _prepare(session: AsyncSession, jobs: list[_Job]) -> None:
    """Load channels, alerts and evidence for the jobs, apply rate limits, compose messages."""
    deliveries = [delivery for job in jobs for delivery in job.group]
    channel_ids = {delivery.channel_id for delivery in deliveries}
    channels = await channels_by_id(session, channel_ids)
    # What a channel says is what its owner may see: their view of each alert, their evidence.
    viewers = await viewer_ids(session, {channel.owner_id for channel in channels.values()})
    seen = await alerts_as_seen(
        session,
        {
            (d.alert_id, viewers.get(channels[d.channel_id].owner_id))
            for d in deliveries
            if d.alert_id and d.channel_id in channels
        },
    )
    system_seen = await system_alerts_as_seen(
        session,
        {
            (d.system_alert_id, viewers.get(channels[d.channel_id].owner_id))
            for d in deliveries
            if d.system_alert_id and d.channel_id in channels
        },
    )
    now = utcnow()
    budget: dict[int, int] = {}
    for channel in channels.values():
        if channel.rate_limit_per_min:
            used = await sent_since(session, channel.id, now - timedelta(minutes=1))
            budget[channel.id] = channel.rate_limit_per_min - used
    for job in jobs:
        first = job.group[0]
        job.channel = channels.get(first.channel_id)
        if job.channel is None or not job.channel.enabled:
            job.error = "the channel was deleted or disabled; enable it and requeue"
            job.permanent = True
            continue
        if first.channel_id in budget:
            if budget[first.channel_id] <= 0:
                per_message = 60 / (job.channel.rate_limit_per_min or 1)
                job.postpone_until = now + timedelta(seconds=per_message)
                continue
            budget[first.channel_id] -= 1
        viewer = viewers.get(job.channel.owner_id)
        if first.system_alert_id is not None:
            notice = system_seen.get((first.system_alert_id, viewer))
            if notice is None:
                job.error = (
                    f"system alert {first.system_alert_id} no longer exists or its owner may "
                    "no longer see its source"
                )
                job.permanent = True
                continue
            job.message = compose_system_message(
                notice,
                cleared=first.kind == "system_cleared",
                idempotency_key=first.idempotency_key,
            )
            continue
        missing = [d.alert_id for d in job.group if (d.alert_id, viewer) not in seen]
        if missing:
            job.error = f"alert {missing[0]} no longer exists or its owner may no longer see it"
            job.permanent = True
            continue
        parts = [
            (seen[d.alert_id, viewer].alert, seen[d.alert_id, viewer].evidence)
            for d in job.group
            if d.alert_id
        ]
        if first.kind == "digest":
            job.message = compose_digest(parts, idempotency_key=f"digest-{first.id}")
        else:
            kind: MessageKind = "updated" if first.kind == "updated" else "new"
            alert, items = parts[0]
            job.message = compose_message(
                alert, items, kind=kind, idempotency_key=first.idempotency_key
            )


async def _write_outcomes(
    session: AsyncSession, jobs: list[_Job], worker_id: str, policy: RetryPolicy
) -> None:
    """Record the outcomes of ``jobs`` in ``session``; no side effect beyond the database."""
    sent: dict[int | None, list[int]] = defaultdict(list)
    for job in jobs:
        if job.receipt is not None:
            sent[job.receipt.status_code] += [d.id for d in job.group]
        else:
            await _write_unsent(session, job, worker_id, policy)
    now = utcnow()
    for status_code, ids in sent.items():
        await record_sent(session, ids, worker_id=worker_id, now=now, status_code=status_code)


async def _write_unsent(
    session: AsyncSession, job: _Job, worker_id: str, policy: RetryPolicy
) -> None:
    if job.postpone_until is not None:
        for delivery in job.group:
            await postpone(session, delivery.id, worker_id=worker_id, until=job.postpone_until)
        return
    attempts = job.group[0].attempts + 1
    dead = _is_dead(job, policy)
    delay = next_attempt_delay_s(attempts, job.retry_after_s, base_s=policy.base_s)
    for delivery in job.group:
        await record_failure(
            session,
            delivery.id,
            worker_id=worker_id,
            error=job.error or "unknown error",
            status_code=None,
            attempts=delivery.attempts + 1,
            retry_at=None if dead else utcnow() + timedelta(seconds=delay),
        )


def _is_dead(job: _Job, policy: RetryPolicy) -> bool:
    return job.permanent or is_exhausted(job.group[0].attempts + 1, policy.max_attempts)


def _count(job: _Job, policy: RetryPolicy) -> None:
    """Metrics and a log line for a recorded outcome."""
    kind = job.channel.kind if job.channel is not None else "unknown"
    first = job.group[0]
    if job.receipt is not None:
        DELIVERIES.labels(kind, "sent").inc(len(job.group))
        log.debug(
            "delivery sent",
            delivery_id=first.id,
            channel_id=first.channel_id,
            channel=kind,
            alerts=len(job.group),
            status=job.receipt.status_code,
            attempt=first.attempts + 1,
        )
        return
    if job.postpone_until is not None:
        return
    outcome = "dead" if _is_dead(job, policy) else "retry"
    DELIVERIES.labels(kind, outcome).inc(len(job.group))
    log.warning(
        "delivery failed",
        delivery_id=first.id,
        channel_id=first.channel_id,
        channel=kind,
        attempt=first.attempts + 1,
        outcome=outcome,
        error=job.error,
    )
