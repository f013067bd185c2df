"""Collection jobs: a poll asked for now, or a backfill of a source's past, with progress.

A poll job is answered by a poll that starts after it was asked for: a poll takes the jobs
queued before it starts; one asked for while it runs stays queued, and recording the running
poll's outcome makes the source due again at once (see :mod:`sigwatch.db.schedule`).

A backfill job pages back through a source's older posts (see :mod:`sigwatch.worker.backfill`).
It holds a lease of its own, not its source's, so the source's polls go on meanwhile; each
stored page saves the job's cursor and counters in the page's transaction. A source has at most
one unfinished backfill: asking again continues it (queued, failed, or running under a lease
that expired) instead of starting over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Job, Source
from sigwatch.db.types import utcnow
from sigwatch.errors import Conflict, NotFound

ACTIVE_STATUSES = ("queued", "running")
POLL = "poll"
BACKFILL = "backfill"


async def queue_poll(session: AsyncSession, source_id: int, *, requested_by: int | None) -> Job:
    """Make the source due now and return a queued job (or the one already queued).

    A running job is not reused: it started before this request, which may want what was
    published since; the new job waits for the running poll and is taken by the next one.
    """
    source = await session.get(Source, source_id)
    if source is None:
        raise NotFound(f"source {source_id} does not exist")
    existing = (
        await session.scalars(
            select(Job)
            .where(Job.source_id == source_id, Job.kind == POLL, Job.status == "queued")
            .order_by(Job.id)
            .limit(1)
        )
    ).first()
    if existing is not None:
        return existing
    job = Job(source_id=source_id, kind=POLL, status="queued", requested_by=requested_by)
    session.add(job)
    source.next_poll_at = utcnow()
    await session.flush()
    return job


async def get_job(session: AsyncSession, job_id: int) -> Job:
    """One job by id."""
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return job


async def start_queued_jobs(session: AsyncSession, source_id: int) -> list[int]:
    """Mark every poll job asked for on the source running and return their ids (often none).

    The poll about to start answers all of them, since each was asked for before it. A job
    already 'running' is taken over too: the caller holds the source's lease, so such a job
    belongs to a worker that died mid-poll. Backfill jobs are not a poll's to answer.
    """
    job_ids = [
        int(job_id)
        for job_id in await session.scalars(
            select(Job.id)
            .where(
                Job.source_id == source_id,
                Job.kind == POLL,
                Job.status.in_(ACTIVE_STATUSES),
            )
            .order_by(Job.id)
        )
    ]
    if job_ids:
        await session.execute(
            update(Job).where(Job.id.in_(job_ids)).values(status="running", started_at=utcnow())
        )
    return job_ids


async def set_job_progress(
    session: AsyncSession, job_ids: Sequence[int], progress: float, counters: dict[str, Any]
) -> None:
    """Record how far running jobs are."""
    if job_ids:
        await session.execute(
            update(Job).where(Job.id.in_(job_ids)).values(progress=progress, counters=counters)
        )


async def finish_jobs(
    session: AsyncSession,
    job_ids: Sequence[int],
    *,
    succeeded: bool,
    counters: dict[str, Any],
    error: str | None = None,
) -> None:
    """Close jobs with the outcome of the poll that answered them."""
    if not job_ids:
        return
    await session.execute(
        update(Job)
        .where(Job.id.in_(job_ids))
        .values(
            status="succeeded" if succeeded else "failed",
            progress=1.0,
            counters=counters,
            error=error,
            finished_at=utcnow(),
        )
    )


# --- backfill jobs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackfillJob:
    """A claimed backfill job: what its runner needs to go on, detached from the session."""

    id: int
    source_id: int
    post_limit: int
    cursor: dict[str, Any] | None
    counters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BackfillSource:
    """What a backfill reads of its source before each page: kind, options, state, health."""

    id: int
    kind: str
    name: str
    config: dict[str, Any]
    state: dict[str, Any]
    enabled: bool
    removed: bool
    last_success_at: datetime | None


def _lease_expired(now: datetime) -> Any:
    return or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)


def _claimable_backfill(now: datetime) -> Any:
    """Queued, or running under a lease that expired (its worker is gone)."""
    return and_(
        Job.kind == BACKFILL,
        or_(Job.status == "queued", and_(Job.status == "running", _lease_expired(now))),
    )


async def latest_backfill(session: AsyncSession, source_id: int) -> Job | None:
    """The source's most recent backfill job, whatever its status; None if it never had one."""
    return (
        await session.scalars(
            select(Job)
            .where(Job.source_id == source_id, Job.kind == BACKFILL)
            .order_by(Job.id.desc())
            .limit(1)
        )
    ).first()


def backfill_is_running(job: Job, now: datetime) -> bool:
    """Whether ``job`` is being run right now by a worker whose lease has not expired."""
    expires = job.lease_expires_at
    return job.status == "running" and expires is not None and expires >= now


async def request_backfill(
    session: AsyncSession,
    source_id: int,
    *,
    limit: int,
    requested_by: int | None,
    restart: bool = False,
    now: datetime | None = None,
) -> Job:
    """The source's backfill job, set to go through ``limit`` past posts, queued unless running.

    The source's unfinished backfill is continued from its cursor, counters kept: a queued or
    failed one, or one left 'running' by a worker whose lease expired, is queued again; one
    running now keeps running, with the new target. A new job starts from the newest post when
    the last one finished, or when ``restart`` is asked (the unfinished one is then closed as
    failed; Conflict when it is running now).
    """
    now = now or utcnow()
    if session.get_bind().dialect.name == "postgresql":
        # Two requests at once must agree on one job: the second waits for the first.
        await session.execute(select(Source.id).where(Source.id == source_id).with_for_update())
    if await session.get(Source, source_id) is None:
        raise NotFound(f"source {source_id} does not exist")
    latest = await latest_backfill(session, source_id)
    if latest is not None and latest.status != "succeeded":
        if backfill_is_running(latest, now):
            if restart:
                raise Conflict(
                    f"source {source_id} is being backfilled right now (job {latest.id}): wait "
                    "for it to finish or fail before starting over"
                )
            latest.post_limit = limit
            await session.flush()
            return latest
        if not restart:
            latest.status = "queued"
            latest.post_limit = limit
            latest.error = None
            latest.finished_at = None
            latest.lease_owner = None
            latest.lease_expires_at = None
            await session.flush()
            return latest
        latest.status = "failed"
        latest.error = "given up: a backfill of the source was started over"
        latest.finished_at = now
        latest.lease_owner = None
        latest.lease_expires_at = None
    job = Job(
        source_id=source_id,
        kind=BACKFILL,
        status="queued",
        requested_by=requested_by,
        post_limit=limit,
        cursor=None,
        counters={},
    )
    session.add(job)
    await session.flush()
    return job


async def claim_backfill_jobs(
    session: AsyncSession,
    *,
    worker_id: str,
    now: datetime,
    lease_s: float,
    limit: int,
    job_ids: Sequence[int] | None = None,
) -> list[BackfillJob]:
    """Lease up to ``limit`` backfill jobs to ``worker_id`` and mark them running.

    Takes queued jobs and running ones whose lease expired; ``job_ids`` narrows the choice.
    On PostgreSQL ``SKIP LOCKED`` keeps two workers from claiming one job.
    """
    if limit <= 0:
        return []
    candidates = select(Job.id).where(_claimable_backfill(now))
    if job_ids is not None:
        candidates = candidates.where(Job.id.in_(list(job_ids)))
    candidates = candidates.order_by(Job.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    rows = (
        await session.execute(
            update(Job)
            .where(Job.id.in_(candidates.scalar_subquery()), _claimable_backfill(now))
            .values(
                status="running",
                lease_owner=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_s),
                started_at=now,
                error=None,
            )
            .returning(Job.id, Job.source_id, Job.post_limit, Job.cursor, Job.counters)
            .execution_options(synchronize_session=False)
        )
    ).all()
    return [
        BackfillJob(
            id=row.id,
            source_id=row.source_id,
            post_limit=row.post_limit or 0,
            cursor=dict(row.cursor) if row.cursor is not None else None,
            counters=dict(row.counters or {}),
        )
        for row in sorted(rows, key=lambda r: r.id)
        if row.source_id is not None
    ]


async def renew_job_leases(
    session: AsyncSession,
    job_ids: list[int],
    *,
    worker_id: str,
    now: datetime,
    lease_s: float,
) -> set[int]:
    """Extend to ``now + lease_s`` the running jobs ``worker_id`` still holds; returns their ids."""
    if not job_ids:
        return set()
    rows = await session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.lease_owner == worker_id, Job.status == "running")
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    return {int(row[0]) for row in rows}


def _held(job_id: int, worker_id: str) -> Any:
    return and_(Job.id == job_id, Job.lease_owner == worker_id, Job.status == "running")


async def record_backfill_page(
    session: AsyncSession,
    job_id: int,
    *,
    worker_id: str,
    cursor: dict[str, Any] | None,
    counters: dict[str, Any],
    progress: float,
    finished: bool,
    now: datetime,
) -> int | None:
    """Save where the next page starts and the counters; ``finished`` closes the job succeeded.

    Called in the transaction that stores the page, so the cursor never runs ahead of (or behind)
    the stored posts. Returns the job's target as it is now (a later request may have changed
    it), or None when ``worker_id`` no longer holds the job: the caller must then roll back.
    """
    values: dict[str, Any] = {"cursor": cursor, "counters": counters, "progress": progress}
    if finished:
        values |= {
            "status": "succeeded",
            "progress": 1.0,
            "finished_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
        }
    limit = await session.scalar(
        update(Job)
        .where(_held(job_id, worker_id))
        .values(**values)
        .returning(Job.post_limit)
        .execution_options(synchronize_session=False)
    )
    return None if limit is None else int(limit)


async def fail_backfill(
    session: AsyncSession, job_id: int, *, worker_id: str, error: str, now: datetime
) -> bool:
    """Close the job failed with ``error``, keeping its cursor for the next request to go on."""
    result = await session.execute(
        update(Job)
        .where(_held(job_id, worker_id))
        .values(
            status="failed", error=error, finished_at=now, lease_owner=None, lease_expires_at=None
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_backfill(session: AsyncSession, job_id: int, *, worker_id: str) -> bool:
    """Give the job back to the queue (a worker shutting down), so the next worker goes on."""
    result = await session.execute(
        update(Job)
        .where(_held(job_id, worker_id))
        .values(status="queued", lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def read_backfill_source(session: AsyncSession, source_id: int) -> BackfillSource | None:
    """The source of a backfill as it is now; None when it no longer exists."""
    source = await session.get(Source, source_id, populate_existing=True)
    if source is None:
        return None
    return BackfillSource(
        id=source.id,
        kind=source.kind,
        name=source.name,
        config=dict(source.config or {}),
        state=dict(source.state or {}),
        enabled=source.enabled,
        removed=source.deleted_at is not None,
        last_success_at=source.last_success_at,
    )


async def merge_source_state(
    session: AsyncSession, source_id: int, changes: dict[str, Any]
) -> None:
    """Set these keys of the source's fetch state, leaving every other key as it is now.

    A poll may have recorded a new state since the backfill read it: only the keys the backfill
    itself changed are written over it. The row is locked first on PostgreSQL; on SQLite the
    caller's transaction has written already, so it holds the one writer's lock and reads the
    latest state.
    """
    if not changes:
        return
    statement = select(Source.state).where(Source.id == source_id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    current = await session.scalar(statement)
    await session.execute(
        update(Source)
        .where(Source.id == source_id)
        .values(state={**(current or {}), **changes})
        .execution_options(synchronize_session=False)
    )
