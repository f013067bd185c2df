"""Due work in batches: one claim leases many sources, one transaction records many polls."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from sigwatch.db.jobs import queue_poll
from sigwatch.db.models import Source
from sigwatch.db.schedule import (
    PollSuccess,
    claim_due_sources,
    earliest_due_at,
    record_poll_successes,
)
from sigwatch.db.types import utcnow


async def add_sources(sessions, count: int, **values) -> list[int]:
    async with sessions.begin() as session:
        rows = [
            Source(kind="rss", name=f"feed {n}", config={"url": f"https://feed{n}.example/"})
            for n in range(count)
        ]
        session.add_all(rows)
        await session.flush()
        ids = [row.id for row in rows]
        if values:
            await session.execute(update(Source).where(Source.id.in_(ids)).values(**values))
        return ids


async def read(sessions, source_id: int) -> Source:
    async with sessions() as session:
        row = await session.scalar(select(Source).where(Source.id == source_id))
        assert row is not None
        return row


async def test_a_batch_claim_takes_due_unleased_sources_up_to_its_limit_oldest_due_first(
    sessions,
):
    now = utcnow()
    due = await add_sources(sessions, 4)
    async with sessions.begin() as session:
        for n, source_id in enumerate(due):  # due[3] is the longest overdue
            await session.execute(
                update(Source)
                .where(Source.id == source_id)
                .values(next_poll_at=now - timedelta(seconds=10 + n))
            )
    (leased,) = await add_sources(
        sessions,
        1,
        next_poll_at=now - timedelta(seconds=60),
        lease_owner="other",
        lease_expires_at=now + timedelta(seconds=30),
    )
    (expired,) = await add_sources(
        sessions,
        1,
        next_poll_at=now - timedelta(seconds=1),
        lease_owner="dead",
        lease_expires_at=now - timedelta(seconds=1),
    )
    await add_sources(sessions, 1, next_poll_at=now + timedelta(seconds=60))  # not due
    await add_sources(sessions, 1, next_poll_at=now - timedelta(seconds=60), enabled=False)

    async with sessions.begin() as session:
        first = await claim_due_sources(session, worker_id="w", now=now, lease_s=60, limit=3)
    async with sessions.begin() as session:
        rest = await claim_due_sources(session, worker_id="w", now=now, lease_s=60, limit=10)

    assert sorted(c.id for c in first) == sorted(due[1:])
    assert sorted(c.id for c in rest) == sorted([due[0], expired])
    assert (await read(sessions, leased)).lease_owner == "other"
    for source_id in [*due, expired]:
        row = await read(sessions, source_id)
        assert row.lease_owner == "w" and row.lease_expires_at == now + timedelta(seconds=60)


async def test_a_group_of_polls_is_recorded_only_where_the_lease_is_still_held(sessions):
    now = utcnow()
    ids = await add_sources(sessions, 3, next_poll_at=now - timedelta(seconds=1))
    async with sessions.begin() as session:
        await claim_due_sources(session, worker_id="w", now=now, lease_s=60, limit=3)
    kept, changed_state, lost = ids
    taken_over_until = now + timedelta(seconds=90)
    async with sessions.begin() as session:  # w's lease on `lost` expired and another took it
        await session.execute(
            update(Source)
            .where(Source.id == lost)
            .values(lease_owner="other", lease_expires_at=taken_over_until)
        )
    at = now + timedelta(seconds=2)

    async with sessions.begin() as session:
        recorded = await record_poll_successes(
            session,
            [
                PollSuccess(kept, at, 300.0, interval_reason="the source's interval"),
                PollSuccess(changed_state, at, 600.0, state={"etag": '"v2"'}),
                PollSuccess(lost, at, 300.0, state={"etag": '"stale"'}),
            ],
            worker_id="w",
        )

    assert recorded == {kept, changed_state}
    row = await read(sessions, kept)
    assert row.lease_owner is None and row.lease_expires_at is None
    assert row.last_success_at == at and row.next_poll_at == at + timedelta(seconds=300)
    assert row.interval_reason == "the source's interval" and row.state == {}
    row = await read(sessions, changed_state)
    assert row.state == {"etag": '"v2"'} and row.next_poll_at == at + timedelta(seconds=600)
    row = await read(sessions, lost)  # the new owner's lease and schedule are untouched
    assert row.lease_owner == "other" and row.lease_expires_at == taken_over_until
    assert row.last_success_at is None and row.state == {}


async def test_a_poll_asked_for_while_a_grouped_poll_ran_makes_the_source_due_at_once(sessions):
    now = utcnow()
    asked, plain = await add_sources(sessions, 2, next_poll_at=now - timedelta(seconds=1))
    async with sessions.begin() as session:
        await claim_due_sources(session, worker_id="w", now=now, lease_s=60, limit=2)
    async with sessions.begin() as session:
        await queue_poll(session, asked, requested_by=None)
    at = utcnow()

    async with sessions.begin() as session:
        await record_poll_successes(
            session, [PollSuccess(asked, at, 300.0), PollSuccess(plain, at, 300.0)], worker_id="w"
        )

    assert (await read(sessions, asked)).next_poll_at == at
    assert (await read(sessions, plain)).next_poll_at == at + timedelta(seconds=300)


async def test_earliest_due_at_is_the_first_due_time_of_the_claimable_sources(sessions):
    now = utcnow()
    await add_sources(
        sessions,
        1,
        next_poll_at=now - timedelta(seconds=60),
        lease_owner="other",
        lease_expires_at=now + timedelta(seconds=30),
    )
    await add_sources(sessions, 1, next_poll_at=now - timedelta(seconds=30), enabled=False)
    async with sessions() as session:
        assert await earliest_due_at(session, now=now) is None
    await add_sources(sessions, 1, next_poll_at=now + timedelta(seconds=20))
    await add_sources(sessions, 1, next_poll_at=now + timedelta(seconds=5))
    async with sessions() as session:
        assert await earliest_due_at(session, now=now) == now + timedelta(seconds=5)
