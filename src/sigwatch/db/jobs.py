"""Collection jobs: a poll asked for now, its progress, counters and outcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Job, Source
from sigwatch.db.types import utcnow
from sigwatch.errors import NotFound

ACTIVE_STATUSES = ("queued", "running")


async def queue_poll(session: AsyncSession, source_id: int, *, requested_by: int | None) -> Job:
    """Make the source due now and return a queued job (or the one already queued or running)."""
    source = await session.get(Source, source_id)
    if source is None:
        raise NotFound(f"source {source_id} does not exist")
    existing = (
        await session.scalars(
            select(Job)
            .where(Job.source_id == source_id, Job.status.in_(ACTIVE_STATUSES))
            .order_by(Job.id)
            .limit(1)
        )
    ).first()
    if existing is not None:
        return existing
    job = Job(source_id=source_id, kind="poll", status="queued", requested_by=requested_by)
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


async def start_queued_job(session: AsyncSession, source_id: int) -> int | None:
    """Mark the source's queued job running and return its id, or None when none was asked for.

    A job already 'running' is taken over too: the caller holds the source's lease, so such a job
    belongs to a worker that died mid-poll.
    """
    job_id = await session.scalar(
        select(Job.id)
        .where(Job.source_id == source_id, Job.status.in_(ACTIVE_STATUSES))
        .order_by(Job.id)
        .limit(1)
    )
    if job_id is None:
        return None
    await session.execute(
        update(Job).where(Job.id == job_id).values(status="running", started_at=utcnow())
    )
    return int(job_id)


async def set_job_progress(
    session: AsyncSession, job_id: int, progress: float, counters: dict[str, Any]
) -> None:
    """Record how far a running job is."""
    await session.execute(
        update(Job).where(Job.id == job_id).values(progress=progress, counters=counters)
    )


async def finish_job(
    session: AsyncSession,
    job_id: int,
    *,
    succeeded: bool,
    counters: dict[str, Any],
    error: str | None = None,
) -> None:
    """Close a job with its outcome."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(
            status="succeeded" if succeeded else "failed",
            progress=1.0,
            counters=counters,
            error=error,
            finished_at=utcnow(),
        )
    )
