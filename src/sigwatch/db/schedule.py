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

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.jobs import ACTIVE_STATUSES, POLL
from sigwatch.db.models import Job, Source


@dataclass(frozen=True, slots=True)
class PostRate:
    """What a source's polls have learnt of how often it posts (see :class:`Source`'s
    ``post_gap_s``, ``post_gap_samples`` and ``last_new_post_at``)."""

    gap_s: float | None = None
    samples: int = 0
    last_new_post_at: datetime | None = None


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
    #: How often the source posts, as learnt so far: what its next interval is chosen from.
    post_rate: PostRate = PostRate()


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
    expires = now + timedelta(seconds=lease_s)
    statement = _claim_statement(
        session.get_bind().dialect.name == "postgresql", due_only, source_ids is not None
    )
    params: dict[str, Any] = {"now": now, "expires": expires, "worker": worker_id, "limit": limit}
    if source_ids is not None:
        params["source_ids"] = source_ids
    rows = (await session.execute(statement, params)).all()
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
            post_rate=PostRate(row.post_gap_s, row.post_gap_samples or 0, row.last_new_post_at),
        )
        for row in sorted(rows, key=lambda r: r.id)
    ]


@functools.cache
def _claim_statement(postgresql: bool, due_only: bool, narrowed: bool) -> Any:
    """The claim's UPDATE … RETURNING, built once per shape: building and keying it cost
    about as much CPU as running it (parameters: now, expires, worker, limit, source_ids)."""
    # Core columns, not the ORM's: the ORM's UPDATE path adds nothing here but CPU.
    table = Source.__table__
    assert isinstance(table, Table)
    source = table.c
    now = bindparam("now", type_=source.next_poll_at.type)
    claimable = or_(source.lease_expires_at.is_(None), source.lease_expires_at < now)
    candidates = select(source.id).where(source.enabled.is_(True), claimable)
    if due_only:
        candidates = candidates.where(source.next_poll_at <= now)
    if narrowed:
        candidates = candidates.where(source.id.in_(bindparam("source_ids", expanding=True)))
    candidates = candidates.order_by(source.next_poll_at, source.id).limit(
        bindparam("limit", type_=Integer)
    )
    if postgresql:
        candidates = candidates.with_for_update(skip_locked=True)
    # What start_queued_jobs would take now, so a poll without a job can skip looking for one.
    # The source's id is spelled out: SQLAlchemy writes RETURNING columns unqualified on
    # SQLite, where a bare "id" inside the subquery would mean the job's own id.
    jobs = Job.__table__
    assert isinstance(jobs, Table)
    jobs_waiting = exists().where(
        jobs.c.source_id == literal_column(f"{table.name}.id"),
        jobs.c.kind == POLL,
        jobs.c.status.in_(ACTIVE_STATUSES),
    )
    return (
        update(table)
        .where(source.id.in_(candidates.scalar_subquery()), claimable)
        .values(
            lease_owner=bindparam("worker", type_=source.lease_owner.type),
            lease_expires_at=bindparam("expires", type_=source.lease_expires_at.type),
            last_polled_at=now,
        )
        .returning(
            source.id,
            source.kind,
            source.name,
            source.config,
            source.state,
            source.poll_interval_s,
            source.consecutive_failures,
            jobs_waiting.label("jobs_waiting"),
            source.post_gap_s,
            source.post_gap_samples,
            source.last_new_post_at,
        )
    )


async def count_due_sources(session: AsyncSession, *, now: datetime) -> int:
    """How many enabled sources are due and unclaimed."""
    statement = (
        select(func.count())
        .select_from(Source)
        .where(Source.enabled.is_(True), Source.next_poll_at <= now, _claimable(now))
    )
    return int((await session.scalar(statement)) or 0)


async def earliest_due_at(session: AsyncSession, *, now: datetime) -> datetime | None:
    """When the first enabled unclaimed source falls due (maybe already), or None if none."""
    statement = select(func.min(Source.next_poll_at)).where(
        Source.enabled.is_(True), _claimable(now)
    )
    return await session.scalar(statement)


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
    await _lock_in_id_order(session, source_ids)
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


async def _lock_in_id_order(session: AsyncSession, source_ids: Sequence[int]) -> None:
    """Lock these source rows in id order first (PostgreSQL; SQLite has one writer anyway).

    A lease renewal and a group of recorded outcomes of one worker may cover the same rows at
    the same moment: taking the rows in one order means neither waits for the other in a cycle.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            select(Source.id).where(Source.id.in_(source_ids)).order_by(Source.id).with_for_update()
        )


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
    interval_s: float,
    warning: str | None = None,
    interval_reason: str | None = None,
    post_rate: PostRate | None = None,
) -> bool:
    """Store the new fetch state, clear failures, schedule the next poll and free the lease.

    The next poll is after ``interval_s``, or at once when a poll was asked for meanwhile;
    ``interval_reason`` says why that interval, and ``post_rate`` (when the poll stored new
    posts) is what was learnt of how often the source posts.
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
        "effective_interval_s": interval_s,
        "interval_reason": interval_reason,
    }
    if post_rate is not None:
        values |= post_rate_values(post_rate)
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


def post_rate_values(rate: PostRate) -> dict[str, Any]:
    """The columns of ``sources`` that keep ``rate``."""
    return {
        "post_gap_s": rate.gap_s,
        "post_gap_samples": rate.samples,
        "last_new_post_at": rate.last_new_post_at,
    }


async def record_post_rate(session: AsyncSession, source_id: int, rate: PostRate) -> None:
    """Keep what was learnt of how often the source posts (new posts came other than by a
    poll: a WebSub push)."""
    await session.execute(
        update(Source)
        .where(Source.id == source_id)
        .values(**post_rate_values(rate))
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True, slots=True)
class PollSuccess:
    """A successful poll that stored nothing (a 304, an empty answer), to record in a group."""

    source_id: int
    at: datetime
    interval_s: float
    #: The new fetch state, or None when the poll left it as it was (nothing to write).
    state: dict[str, Any] | None = None
    #: Why ``interval_s`` (see :func:`record_poll_success`).
    interval_reason: str | None = None


async def record_poll_successes(
    session: AsyncSession, successes: Sequence[PollSuccess], *, worker_id: str
) -> set[int]:
    """Record many polls at once as :func:`record_poll_success` records one without a warning.

    Only sources whose lease ``worker_id`` still holds are written: the outcome of a lease lost
    meanwhile is dropped, never laid over the next owner's. Returns the sources recorded.
    """
    if not successes:
        return set()
    ids = sorted({success.source_id for success in successes})
    await _lock_in_id_order(session, ids)
    released, rescheduled, with_state = _record_statements()
    # Also the write that takes SQLite's lock: the rows read below stay as they are until commit.
    rows = await session.execute(released, {"ids": ids, "worker": worker_id})
    owned = {int(row[0]) for row in rows}
    mine = [success for success in successes if success.source_id in owned]
    for statement, stated in ((rescheduled, False), (with_state, True)):
        group = [success for success in mine if (success.state is not None) == stated]
        if group:
            await session.execute(
                statement,
                [
                    {
                        "b_source_id": success.source_id,
                        "b_at": success.at,
                        "b_next": success.at + timedelta(seconds=success.interval_s),
                        "b_interval_s": success.interval_s,
                        "b_reason": success.interval_reason,
                        **({"b_state": success.state} if stated else {}),
                    }
                    for success in group
                ],
            )
    return owned


@functools.cache
def _record_statements() -> tuple[Any, Any, Any]:
    """The statements of :func:`record_poll_successes`, built once, on the Core table.

    Freeing the leases still held (parameters: ids, worker); then, run once per source,
    rescheduling it without and with a new state (b_source_id, b_at, b_next, b_interval_s,
    b_reason, b_state).
    """
    table = Source.__table__
    assert isinstance(table, Table)
    source = table.c
    released = (
        update(table)
        .where(
            source.id.in_(bindparam("ids", expanding=True)),
            source.lease_owner == bindparam("worker", type_=source.lease_owner.type),
        )
        .values(consecutive_failures=0, last_error=None, lease_owner=None, lease_expires_at=None)
        .returning(source.id)
    )
    moment = source.next_poll_at.type
    source_id = bindparam("b_source_id", type_=source.id.type)
    at = bindparam("b_at", type_=moment)
    jobs = Job.__table__
    assert isinstance(jobs, Table)
    # Evaluated per row by the statement, after the lock: a poll asked for meanwhile is due now.
    queued = exists().where(
        jobs.c.source_id == source_id, jobs.c.status == "queued", jobs.c.kind == POLL
    )
    rescheduled = (
        update(table)
        .where(source.id == source_id)
        .values(
            last_success_at=at,
            next_poll_at=case((queued, at), else_=bindparam("b_next", type_=moment)),
            effective_interval_s=bindparam("b_interval_s", type_=source.effective_interval_s.type),
            interval_reason=bindparam("b_reason", type_=source.interval_reason.type),
        )
    )
    with_state = rescheduled.values(state=bindparam("b_state", type_=source.state.type))
    return released, rescheduled, with_state


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
