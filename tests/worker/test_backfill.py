"""Backfill end to end: a paging kind served by the real local server, on SQLite and PostgreSQL.

A run pages back through the timeline, stores each page with the job's cursor, stops at its
limit or the oldest post, goes on from the cursor after an interruption, and archives history
without detection while the source's polls (and their since-cursor) carry on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings
from sigwatch.db.engine import create_engine, session_factory
from sigwatch.db.entities import create_entity
from sigwatch.db.jobs import (
    claim_backfill_jobs,
    get_job,
    merge_source_state,
    record_backfill_page,
    request_backfill,
)
from sigwatch.db.models import Alert, Job, Post, Source
from sigwatch.db.sources import create_source
from sigwatch.db.types import utcnow
from sigwatch.errors import Conflict
from sigwatch.worker.backfill import backfill_now, take_backfill
from sigwatch.worker.runner import Worker, collect_once
from worker.test_backfill_kind import Timeline, register

AIRDROP = "Helix Network airdrop claim is now open: check eligibility for the $HLX airdrop"


@pytest.fixture
def worker_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"allowed_private_networks": ["127.0.0.1/32"], "fetch_timeout_s": 5.0}
    )


@pytest.fixture
async def sessions(
    worker_settings: Settings, migrated_database: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    register(monkeypatch)
    engine = create_engine(worker_settings)
    yield session_factory(engine)
    await engine.dispose()


async def add_timeline(sessions, timeline: Timeline, name: str = "someone") -> int:
    async with sessions.begin() as session:
        source = await create_source(
            session,
            owner_id=None,
            kind="timeline",
            name=name,
            config={"url": timeline.url},
            origin=f"{timeline.url}#{name}",
            poll_interval_s=3600,
        )
        return source.id


async def stored_ids(sessions, source_id: int) -> list[int]:
    async with sessions() as session:
        rows = await session.scalars(select(Post.external_id).where(Post.source_id == source_id))
        return sorted(int(external_id) for external_id in rows)


async def backfill(settings, sessions, source_id: int, limit: int, restart=False, **kwargs):
    """What ``sigwatch collect --source ID --backfill LIMIT`` does."""
    job = await take_backfill(
        settings, sessions, source_id, limit=limit, worker_id="collect:test", restart=restart
    )
    return await backfill_now(settings, sessions, job, worker_id="collect:test", **kwargs)


async def test_a_backfill_archives_every_page_until_the_oldest_post(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=23)
    source_id = await add_timeline(sessions, timeline)
    pages = []

    outcome = await backfill(worker_settings, sessions, source_id, 1000, on_page=pages.append)

    assert outcome.ok and outcome.status == "succeeded"
    assert await stored_ids(sessions, source_id) == list(range(1, 24))
    assert timeline.served == [None, 19, 14, 9, 4]
    assert [page.fetched for page in pages] == [5, 10, 15, 20, 23]
    async with sessions() as session:
        job = await get_job(session, outcome.progress.job_id)
        post = (await session.scalars(select(Post).where(Post.external_id == "7"))).one()
    assert job.kind == "backfill" and job.status == "succeeded" and job.progress == 1.0
    assert job.counters == {"fetched": 23, "new": 23, "updated": 0, "pages": 5, "left_to_poll": 0}
    assert job.cursor is None and job.lease_owner is None
    assert post.metrics["media_urls"] == ["https://cdn.timeline.example/7.jpg"]


async def test_a_backfill_stops_at_exactly_its_limit(worker_settings, sessions, server):
    timeline = Timeline(server, count=40)
    source_id = await add_timeline(sessions, timeline)

    outcome = await backfill(worker_settings, sessions, source_id, 12)

    assert outcome.ok and outcome.progress.fetched == 12 and outcome.progress.pages == 3
    assert await stored_ids(sessions, source_id) == list(range(29, 41))
    assert timeline.served == [None, 36, 31]


async def test_an_interrupted_backfill_goes_on_from_its_stored_cursor(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=25)
    source_id = await add_timeline(sessions, timeline)
    timeline.fail_before = 16  # the third page breaks

    first = await backfill(worker_settings, sessions, source_id, 1000)

    assert first.status == "failed" and first.error is not None
    assert "page 3 failed" in first.error and "500" in first.error
    assert "asking for the backfill again goes on from there" in first.error
    assert await stored_ids(sessions, source_id) == list(range(16, 26))
    async with sessions() as session:
        job = await get_job(session, first.progress.job_id)
    assert job.status == "failed" and job.cursor == {"before": 16}
    assert job.counters["fetched"] == 10 and job.counters["pages"] == 2

    timeline.fail_before = None
    second = await backfill(worker_settings, sessions, source_id, 1000)

    assert second.ok and second.progress.job_id == first.progress.job_id
    assert await stored_ids(sessions, source_id) == list(range(1, 26))
    # Only the page in flight when it broke was asked for twice.
    assert timeline.asked == [None, 21, 16, 16, 11, 6]
    assert timeline.served == [None, 21, 16, 11, 6]
    assert second.progress.counters == {
        "fetched": 25,
        "new": 25,
        "updated": 0,
        "pages": 5,
        "left_to_poll": 0,
    }


async def test_an_interrupted_backfill_asked_again_goes_on_to_the_limit_asked_last(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=30)
    source_id = await add_timeline(sessions, timeline)
    timeline.fail_before = 21  # the third page: 10 posts done
    assert not (await backfill(worker_settings, sessions, source_id, 25)).ok

    timeline.fail_before = None
    outcome = await backfill(worker_settings, sessions, source_id, 17)

    assert outcome.ok and outcome.progress.fetched == 17
    assert await stored_ids(sessions, source_id) == list(range(14, 31))


async def test_restart_starts_over_from_the_newest_post_in_a_new_job(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=12)
    source_id = await add_timeline(sessions, timeline)
    timeline.fail_before = 8
    first = await backfill(worker_settings, sessions, source_id, 100)
    timeline.fail_before = None

    again = await backfill(worker_settings, sessions, source_id, 100, restart=True)

    assert again.ok and again.progress.job_id != first.progress.job_id
    assert timeline.served == [None, None, 8, 3]
    async with sessions() as session:
        old = await get_job(session, first.progress.job_id)
    assert old.status == "failed" and "started over" in (old.error or "")
    # Already archived posts come back unchanged: counted, not stored twice.
    assert again.progress.fetched == 12 and again.progress.new == 7


async def test_a_backfill_whose_process_died_is_taken_over_once_its_lease_expires(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=25)
    source_id = await add_timeline(sessions, timeline)
    async with sessions.begin() as session:
        job = await request_backfill(session, source_id, limit=100, requested_by=None)
        [claimed] = await claim_backfill_jobs(
            session, worker_id="dead-process", now=utcnow(), lease_s=60, limit=1
        )
        # Its first page was stored before it was killed: the cursor says where it was.
        await record_backfill_page(
            session,
            job.id,
            worker_id="dead-process",
            cursor={"before": 21},
            counters={"fetched": 5, "new": 5, "updated": 0, "pages": 1, "left_to_poll": 0},
            progress=0.05,
            finished=False,
            now=utcnow(),
        )

    with pytest.raises(Conflict) as refused:
        await backfill(worker_settings, sessions, source_id, 100)
    assert "being backfilled by dead-process" in str(refused.value)
    assert "run this again after" in str(refused.value)

    async with sessions.begin() as session:  # the lease runs out
        await session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    outcome = await backfill(worker_settings, sessions, source_id, 100)

    assert outcome.ok and outcome.progress.job_id == claimed.id
    assert timeline.served == [21, 16, 11, 6]
    assert outcome.progress.fetched == 25 and outcome.progress.pages == 5


async def test_a_worker_runs_a_queued_backfill_job_with_progress_and_counters(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=14)
    source_id = await add_timeline(sessions, timeline)
    async with sessions.begin() as session:
        job_id = (await request_backfill(session, source_id, limit=100, requested_by=None)).id
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(worker_settings, sessions, idle_tick_s=0.05).run(stop))
    try:
        async with asyncio.timeout(15):
            while True:
                async with sessions() as session:
                    job = await get_job(session, job_id)
                if job.status in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert job.status == "succeeded", job.error
    assert job.counters["fetched"] == 14 and job.counters["pages"] == 3
    assert await stored_ids(sessions, source_id) == list(range(1, 15))


async def test_a_stopping_worker_hands_its_backfill_back_to_the_queue(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=50, page_size=2)
    source_id = await add_timeline(sessions, timeline)
    async with sessions.begin() as session:
        job_id = (await request_backfill(session, source_id, limit=100, requested_by=None)).id
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(worker_settings, sessions, idle_tick_s=0.05).run(stop))
    async with asyncio.timeout(15):
        while len(timeline.served) < 2:
            await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 10)

    async with sessions() as session:
        job = await get_job(session, job_id)
    assert job.status == "queued" and job.lease_owner is None
    assert job.cursor is not None and job.counters["pages"] >= 2
    outcome = await backfill(worker_settings, sessions, source_id, 100)
    assert outcome.ok and outcome.progress.job_id == job_id
    assert len(timeline.served) == len(set(timeline.served)) == 25


async def test_backfilled_posts_raise_no_alerts_where_a_poll_of_the_same_posts_would(
    worker_settings, sessions, server
):
    async with sessions.begin() as session:
        await create_entity(session, name="Helix Network", aliases=["Helix"], symbols=["HLX"])
    archive = Timeline(server, count=3, epoch=utcnow() - timedelta(hours=4), text=AIRDROP)
    archived_id = await add_timeline(sessions, archive, name="archived")
    polled_id = await add_timeline(sessions, archive, name="polled")

    outcome = await backfill(worker_settings, sessions, archived_id, 10)
    await collect_once(worker_settings, sessions, [polled_id])

    assert outcome.ok and await stored_ids(sessions, archived_id) == [1, 2, 3]
    async with sessions() as session:
        alerts = await session.scalar(select(func.count()).select_from(Alert))
        evidence_sources = await session.execute(select(Alert.first_source_id))
    assert alerts and {row[0] for row in evidence_sources} == {polled_id}


async def test_posts_newer_than_the_last_poll_are_left_to_the_poll(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=20, page_size=5, epoch=utcnow() - timedelta(hours=10))
    source_id = await add_timeline(sessions, timeline)
    await collect_once(worker_settings, sessions, [source_id])  # posts 16-20, then "now"

    outcome = await backfill(worker_settings, sessions, source_id, 100)

    # Posts 11-20 are dated after that poll (the timeline runs ahead of the clock): the
    # backfill leaves them for the polls, which detect what is news.
    assert outcome.ok and outcome.progress.left_to_poll == 10
    assert await stored_ids(sessions, source_id) == [*range(1, 11), *range(16, 21)]


async def test_the_polls_since_cursor_survives_a_backfill_and_what_it_learnt_is_kept(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=12)
    source_id = await add_timeline(sessions, timeline)
    await collect_once(worker_settings, sessions, [source_id])

    assert (await backfill(worker_settings, sessions, source_id, 100)).ok

    async with sessions() as session:
        source = await session.get(Source, source_id)
    assert source is not None and source.state == {"since": 12, "account_id": "acct-1"}


async def test_merging_a_learnt_key_keeps_a_state_a_poll_recorded_meanwhile(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=1)
    source_id = await add_timeline(sessions, timeline)
    async with sessions.begin() as session:  # a poll records a newer since-cursor
        await session.execute(
            update(Source).where(Source.id == source_id).values(state={"since": 30})
        )
    async with sessions.begin() as session:
        await merge_source_state(session, source_id, {"account_id": "acct-1"})
    async with sessions() as session:
        source = await session.get(Source, source_id)
    assert source is not None and source.state == {"since": 30, "account_id": "acct-1"}


async def test_a_backfill_cancelled_in_the_cli_is_left_failed_and_goes_on_when_asked_again(
    worker_settings, sessions, server
):
    timeline = Timeline(server, count=15)
    source_id = await add_timeline(sessions, timeline)
    job = await take_backfill(
        worker_settings, sessions, source_id, limit=100, worker_id="collect:ctrl-c"
    )
    running: asyncio.Task | None = None

    def press_ctrl_c_after_two_pages(progress) -> None:
        if progress.pages == 2 and running is not None:
            running.cancel()  # what asyncio.run does to the command on Ctrl-C

    running = asyncio.create_task(
        backfill_now(
            worker_settings,
            sessions,
            job,
            worker_id="collect:ctrl-c",
            on_page=press_ctrl_c_after_two_pages,
        )
    )
    with pytest.raises(asyncio.CancelledError):
        await running

    async with sessions() as session:
        stopped = await get_job(session, job.id)
    assert stopped.status == "failed" and stopped.lease_owner is None
    assert (stopped.error or "").startswith("interrupted after 2 pages (10 posts)")
    assert stopped.cursor == {"before": 6}

    outcome = await backfill(worker_settings, sessions, source_id, 100)
    assert outcome.ok and outcome.progress.job_id == job.id
    assert timeline.served == [None, 11, 6]
    assert await stored_ids(sessions, source_id) == list(range(1, 16))
