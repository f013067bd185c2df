"""Collection jobs: a poll asked for now, its progress, counters and outcome.

A job is answered by a poll that starts after it was asked for: a poll takes the jobs queued
before it starts; one asked for while it runs stays queued, and recording the running poll's
outcome makes the source due again at once (see :mod:`sigwatch.db.schedule`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Job, Source
from sigwatch.db.types import utcnow
from sigwatch.errors import NotFound

ACTIVE_STATUSES = ("queued", "running")


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
            .where(Job.source_id == source_id, Job.status == "queued")
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


async def start_queued_jobs(session: AsyncSession, source_id: int) -> list[int]:
    """Mark every job asked for on the source running and return their ids (often none).

    The poll about to start answers all of them, since each was asked for before it. A job
    already 'running' is taken over too: the caller holds the source's lease, so such a job
    belongs to a worker that died mid-poll.
    """
    job_ids = [
        int(job_id)
        for job_id in await session.scalars(
            select(Job.id)
            .where(Job.source_id == source_id, Job.status.in_(ACTIVE_STATUSES))
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
