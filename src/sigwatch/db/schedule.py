"""Due work: claiming sources with a lease, and recording each poll's outcome on the source.

On PostgreSQL the claim is ``FOR UPDATE SKIP LOCKED``, so concurrent workers never claim the same
source; on SQLite the single writer serialises the claim. A lease that expires (its worker died)
makes the source claimable again, so nothing is lost; a worker renews the leases of the sources
it is polling, so a poll slower than the lease is never run twice at once.

A "poll now" that arrives while the source is being polled leaves a queued job behind (the
running poll took only the jobs asked for before it started): recording that poll's outcome then
makes the source due at once, so every request is answered by a poll that starts after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.jobs import ACTIVE_STATUSES, POLL
from sigwatch.db.models import Job, Source


@dataclass(frozen=True, slots=True)
class ClaimedSource:
    """A snapshot of a claimed source: what a worker needs to poll it, detached from the session."""

    id: int
    kind: str
    name: str
    config: dict[str, Any]
    state: dict[str, Any]
    poll_interval_s: int
    consecutive_failures: int
    lease_expires_at: datetime
    #: Whether a job (a "poll now") was open on the source when it was claimed. Without one the
    #: poll has no job to start; a job asked for after the claim is answered by the next poll.
    jobs_waiting: bool = True


def _claimable(now: datetime) -> Any:
    return or_(Source.lease_expires_at.is_(None), Source.lease_expires_at < now)


async def claim_due_sources(
    session: AsyncSession,
    *,
    worker_id: str,
    now: datetime,
    lease_s: int,
    limit: int,
    source_ids: list[int] | None = None,
    due_only: bool = True,
) -> list[ClaimedSource]:
    """Lease up to ``limit`` unleased enabled sources to ``worker_id``.

    By default only due sources; ``due_only=False`` takes them whether due or not (a run asked for
    now), and ``source_ids`` narrows the choice to those sources.
    """
    if limit <= 0:
        return []
    candidates = select(Source.id).where(Source.enabled.is_(True), _claimable(now))
    if due_only:
        candidates = candidates.where(Source.next_poll_at <= now)
    if source_ids is not None:
        candidates = candidates.where(Source.id.in_(source_ids))
    candidates = candidates.order_by(Source.next_poll_at, Source.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    expires = now + timedelta(seconds=lease_s)
    # What start_queued_jobs would take now, so a poll without a job can skip looking for one.
    # The source's id is spelled out: SQLAlchemy writes RETURNING columns unqualified on
    # SQLite, where a bare "id" inside the subquery would mean the job's own id.
    jobs_waiting = exists().where(
        Job.source_id == literal_column(f"{Source.__tablename__}.id"),
        Job.kind == POLL,
        Job.status.in_(ACTIVE_STATUSES),
    )
    statement = (
        update(Source)
        .where(Source.id.in_(candidates.scalar_subquery()), _claimable(now))
        .values(lease_owner=worker_id, lease_expires_at=expires, last_polled_at=now)
        .returning(
            Source.id,
            Source.kind,
            Source.name,
            Source.config,
            Source.state,
            Source.poll_interval_s,
            Source.consecutive_failures,
            jobs_waiting.label("jobs_waiting"),
        )
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(statement)).all()
    return [
        ClaimedSource(
            id=row.id,
            kind=row.kind,
            name=row.name,
            config=dict(row.config or {}),
            state=dict(row.state or {}),
            poll_interval_s=row.poll_interval_s,
            consecutive_failures=row.consecutive_failures,
            lease_expires_at=expires,
            jobs_waiting=bool(row.jobs_waiting),
        )
        for row in sorted(rows, key=lambda r: r.id)
    ]


async def count_due_sources(session: AsyncSession, *, now: datetime) -> int:
    """How many enabled sources are due and unclaimed."""
    statement = (
        select(func.count())
        .select_from(Source)
        .where(Source.enabled.is_(True), Source.next_poll_at <= now, _claimable(now))
    )
    return int((await session.scalar(statement)) or 0)


async def renew_source_leases(
    session: AsyncSession,
    source_ids: list[int],
    *,
    worker_id: str,
    now: datetime,
    lease_s: float,
) -> set[int]:
    """Extend to ``now + lease_s`` the leases ``worker_id`` still holds; returns their ids."""
    if not source_ids:
        return set()
    rows = await session.execute(
        update(Source)
        .where(Source.id.in_(source_ids), Source.lease_owner == worker_id)
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .returning(Source.id)
        .execution_options(synchronize_session=False)
    )
    return {int(row[0]) for row in rows}


def _owned(source_id: int, worker_id: str) -> Any:
    return and_(Source.id == source_id, Source.lease_owner == worker_id)


async def _next_poll_at(
    session: AsyncSession,
    source_id: int,
    now: datetime,
    scheduled: datetime,
    *,
    requested: datetime | None = None,
) -> Any:
    """``scheduled``, or ``requested`` (default ``now``) when a poll was asked for meanwhile.

    The source row is locked first (PostgreSQL), so a poll-now being written waits for this
    outcome or is seen by it: the expression is evaluated by the UPDATE that follows, after the
    lock, on SQLite inside its single writer.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(Source.id).where(Source.id == source_id).with_for_update())
    # A queued backfill is a worker's to take, not a poll asked for.
    queued = exists().where(Job.source_id == source_id, Job.status == "queued", Job.kind == POLL)
    # Typed binds, so SQLite gets the same naive-UTC text as every other timestamp.
    moment = Source.next_poll_at.type
    return case((queued, literal(requested or now, moment)), else_=literal(scheduled, moment))


async def record_poll_success(
    session: AsyncSession,
    source_id: int,
    *,
    worker_id: str,
    now: datetime,
    state: dict[str, Any],
    interval_s: int,
    warning: str | None = None,
) -> bool:
    """Store the new fetch state, clear failures, schedule the next poll and free the lease.

    The next poll is after ``interval_s``, or at once when a poll was asked for meanwhile.
    A warning (for example a feed that was only partly parseable) is kept as the source's last
    error without counting as a failure. Returns False when the lease was lost meanwhile.
    """
    values: dict[str, Any] = {
        "state": state,
        "last_success_at": now,
        "consecutive_failures": 0,
        "next_poll_at": await _next_poll_at(
            session, source_id, now, now + timedelta(seconds=interval_s)
        ),
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if warning is not None:
        values |= {"last_error": warning, "last_error_at": now}
    else:
        values["last_error"] = None
    result = await session.execute(
        update(Source)
        .where(_owned(source_id, worker_id))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_poll_failure(
    session: AsyncSession,
    source_id: int,
    *,
    worker_id: str,
    now: datetime,
    error: str,
    delay_s: float,
    earliest_s: float = 0.0,
    pause: bool = False,
) -> datetime:
    """Keep the error, count the failure, schedule the retry after ``delay_s``, free the lease.

    A poll asked for meanwhile comes sooner, but not before ``earliest_s`` (the wait the server
    itself asked for). ``pause`` also disables the source until someone resumes it. Returns
    when the source would be polled next.
    """
    backed_off = now + timedelta(seconds=delay_s)
    paused: dict[str, Any] = {"enabled": False} if pause else {}
    next_poll_at = await session.scalar(
        update(Source)
        .where(_owned(source_id, worker_id))
        .values(
            **paused,
            last_error=error,
            last_error_at=now,
            consecutive_failures=Source.consecutive_failures + 1,
            next_poll_at=await _next_poll_at(
                session,
                source_id,
                now,
                backed_off,
                requested=now + timedelta(seconds=min(earliest_s, delay_s)),
            ),
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(Source.next_poll_at)
        .execution_options(synchronize_session=False)
    )
    return next_poll_at or backed_off


async def release_leases(session: AsyncSession, *, worker_id: str) -> list[int]:
    """Free every lease ``worker_id`` still holds (on shutdown); returns the released sources."""
    rows = await session.execute(
        update(Source)
        .where(Source.lease_owner == worker_id)
        .values(lease_owner=None, lease_expires_at=None)
        .returning(Source.id)
        .execution_options(synchronize_session=False)
    )
    return [int(row[0]) for row in rows]
