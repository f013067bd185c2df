"""Archive runs ("backfill"): page back through a source's older posts, storing page by page.

A kind that implements :class:`~sigwatch.sources.base.Backfills` hands out one page of older
posts per call with the cursor of the next one. A run goes through up to its job's target of
posts, or until the kind says there is nothing older, and can stop anywhere:

- **Resumable.** Each page is stored in one transaction with the job's cursor and counters, so a
  run killed at any moment loses at most the page in flight; asking for the backfill again (the
  same ``sigwatch collect --backfill``, or the API) goes on from the saved cursor.
- **Its own lease.** The job, not the source, is leased to the worker running it and renewed
  every third of the lease. Holding the source's lease instead would stop the source's regular
  polls for as long as an archive run lasts (hours, for a long timeline). A job left 'running'
  under an expired lease belongs to a worker that died; any worker, or the next CLI run, takes it.
- **The fetch state is merged, never replaced.** A poll may record a new state (its since-cursor)
  while a run pages back; a page's ``state`` is compared with the state the page was given, and
  only the keys the page changed (an account id resolved on the way) are written over the
  source's current state. A poll that records its own state later may drop such a learnt key;
  that costs one more look-up, never a missed or repeated post.
- **History, not news.** Stored pages skip detection and alerts: an alert on a year-old listing
  would page people for nothing. Posts published after the source's last successful poll are
  left for the next poll (counted as ``left_to_poll``), so a post that is news still goes
  through detection when the poll sees it; a source never polled has no such line to keep.

A run never raises for what a source or the database does: the outcome, and the job row, say
what happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.config import Settings, ensure_secret_key
from sigwatch.db.jobs import (
    BackfillJob,
    BackfillSource,
    claim_backfill_jobs,
    fail_backfill,
    merge_source_state,
    read_backfill_source,
    record_backfill_page,
    release_backfill,
    renew_job_leases,
    request_backfill,
)
from sigwatch.db.models import Job
from sigwatch.db.posts import store_posts
from sigwatch.db.types import utcnow
from sigwatch.errors import Conflict, NotFound, SigwatchError
from sigwatch.net.client import OutboundClient
from sigwatch.sources.base import BackfillPage, CollectedPost, Platforms, Source
from sigwatch.sources.registry import ensure_backfillable, open_source
from sigwatch.worker.leases import LeaseKeeper
from sigwatch.worker.posts import to_new_posts

log = structlog.get_logger(__name__)

#: Backfill jobs one worker runs at once, beside its polls: archive runs are long and patient.
MAX_BACKFILLS_PER_WORKER = 2

Status = Literal["succeeded", "failed", "queued", "lost"]


def learnt_state(given: dict[str, Any], returned: dict[str, Any] | None) -> dict[str, Any]:
    """The keys of ``returned`` a page changed from the state it was ``given``."""
    if returned is None:
        return {}
    return {key: value for key, value in returned.items() if given.get(key) != value}


@dataclass(frozen=True, slots=True)
class BackfillProgress:
    """How far a backfill is: its target and what it went through, stored and left."""

    job_id: int
    source_id: int
    limit: int
    fetched: int = 0
    new: int = 0
    updated: int = 0
    pages: int = 0
    left_to_poll: int = 0

    @classmethod
    def of_job(cls, job: BackfillJob) -> BackfillProgress:
        """The progress a claimed job had when it was interrupted (zero for a new one)."""
        counters = job.counters

        def count(name: str) -> int:
            value = counters.get(name, 0)
            return value if isinstance(value, int) else 0

        return cls(
            job_id=job.id,
            source_id=job.source_id,
            limit=job.post_limit,
            fetched=count("fetched"),
            new=count("new"),
            updated=count("updated"),
            pages=count("pages"),
            left_to_poll=count("left_to_poll"),
        )

    @property
    def counters(self) -> dict[str, int]:
        """The job's counters."""
        return {
            "fetched": self.fetched,
            "new": self.new,
            "updated": self.updated,
            "pages": self.pages,
            "left_to_poll": self.left_to_poll,
        }

    @property
    def fraction(self) -> float:
        """How much of the target is done, from 0 to 1."""
        return min(1.0, self.fetched / self.limit) if self.limit > 0 else 1.0


@dataclass(frozen=True, slots=True)
class BackfillOutcome:
    """How a run ended: succeeded, failed, queued again (worker stopping) or lost (taken over)."""

    status: Status
    progress: BackfillProgress
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the run reached its target or the oldest post."""
        return self.status == "succeeded"


OnPage = Callable[[BackfillProgress], None]


class _LeaseLost(Exception):
    """The job was taken over by another worker; the page's transaction is rolled back."""


@dataclass(slots=True)
class _Run:
    """One run of one claimed job; see :func:`run_backfill`."""

    job: BackfillJob
    sessions: async_sessionmaker[AsyncSession]
    client: OutboundClient
    secret_key: str
    platforms: Platforms | None
    worker_id: str
    lease_s: float
    stop: asyncio.Event | None
    on_page: OnPage | None
    progress: BackfillProgress = field(init=False)
    cursor: dict[str, Any] | None = field(init=False)
    kind: str = "?"

    def __post_init__(self) -> None:
        self.progress = BackfillProgress.of_job(self.job)
        self.cursor = self.job.cursor

    async def pages(self, leases: LeaseKeeper) -> BackfillOutcome:
        """Fetch and store pages until the target, the oldest post, a stop or an error."""
        fetcher: Source | None = None
        while True:
            if self.progress.fetched >= self.progress.limit:
                return await self._finish_reached()
            if self.stop is not None and self.stop.is_set():
                return await self.release()
            if leases.lost([self.job.id]):
                return self._lost()
            async with self.sessions() as session:
                source = await read_backfill_source(session, self.job.source_id)
            problem = _unusable(self.job.source_id, source)
            if problem is not None or source is None:
                return await self.fail(problem or "the source is gone")
            self.kind = source.kind
            try:
                if fetcher is None:
                    fetcher = self._open(source)
                page = await _older_page(fetcher, source.state, self.cursor)
            except SigwatchError as exc:
                return await self.fail(self._page_error(str(exc)))
            except Exception as exc:  # a bug in a kind must not stop the worker's loop
                log.exception("backfill page crashed", source_id=source.id, kind=source.kind)
                return await self.fail(
                    self._page_error(
                        f"internal error in the {source.kind} source: {type(exc).__name__}: {exc}"
                    )
                )
            if page.cursor is not None and page.cursor == self.cursor:
                return await self.fail(
                    f"the {source.kind} source gave the same cursor for the page after it, so "
                    "paging back would never end; this is a bug in that kind, please report it"
                )
            try:
                done = await self._store(source, page)
            except _LeaseLost:
                return self._lost()
            if self.on_page is not None:
                self.on_page(self.progress)
            if done:
                self._log("backfill finished")
                return BackfillOutcome("succeeded", self.progress)

    def _open(self, source: BackfillSource) -> Source:
        return open_source(
            source.kind,
            source.config,
            secret_key=self.secret_key,
            client=self.client,
            platforms=self.platforms,
        )

    async def _store(self, source: BackfillSource, page: BackfillPage) -> bool:
        """Store one page with the job's cursor and counters in one transaction; True when done."""
        posts = page.posts[: max(0, self.progress.limit - self.progress.fetched)]
        now = utcnow()
        async with self.sessions.begin() as session:
            # A write first: it checks the lease and, on SQLite, takes the writer's lock, so
            # what is read next is the latest state.
            if self.job.id not in await renew_job_leases(
                session, [self.job.id], worker_id=self.worker_id, now=now, lease_s=self.lease_s
            ):
                raise _LeaseLost
            current = await read_backfill_source(session, source.id)
            line = current.last_success_at if current is not None else None
            archived, left = _split_at(posts, line)
            stored = await store_posts(session, source.id, to_new_posts(archived))
            await merge_source_state(session, source.id, learnt_state(source.state, page.state))
            progress = replace(
                self.progress,
                fetched=self.progress.fetched + len(posts),
                new=self.progress.new + len(stored.new_ids),
                updated=self.progress.updated + len(stored.updated_ids),
                pages=self.progress.pages + 1,
                left_to_poll=self.progress.left_to_poll + len(left),
            )
            done = page.cursor is None or progress.fetched >= progress.limit
            limit = await record_backfill_page(
                session,
                self.job.id,
                worker_id=self.worker_id,
                cursor=page.cursor,
                counters=progress.counters,
                progress=1.0 if done else progress.fraction,
                finished=done,
                now=now,
            )
            if limit is None:
                raise _LeaseLost
        # A target changed by a later request counts from the next page.
        self.progress = replace(progress, limit=limit)
        self.cursor = page.cursor
        return done

    def _page_error(self, message: str) -> str:
        return (
            f"page {self.progress.pages + 1} failed: {message}; asking for the backfill again "
            f"goes on from there ({self.progress.fetched} posts done)"
        )

    async def _finish_reached(self) -> BackfillOutcome:
        async with self.sessions.begin() as session:
            limit = await record_backfill_page(
                session,
                self.job.id,
                worker_id=self.worker_id,
                cursor=self.cursor,
                counters=self.progress.counters,
                progress=1.0,
                finished=True,
                now=utcnow(),
            )
        if limit is None:
            return self._lost()
        self._log("backfill finished")
        return BackfillOutcome("succeeded", self.progress)

    async def fail(self, error: str) -> BackfillOutcome:
        """Close the job failed with ``error``, its cursor kept for the next request."""
        try:
            async with self.sessions.begin() as session:
                await fail_backfill(
                    session, self.job.id, worker_id=self.worker_id, error=error, now=utcnow()
                )
        except Exception as exc:  # the lease expires by itself; the next run goes on
            log.warning("recording a backfill failure failed", job_id=self.job.id, error=str(exc))
        self._log("backfill failed", error=error)
        return BackfillOutcome("failed", self.progress, error)

    async def release(self) -> BackfillOutcome:
        """Hand the job back to the queue, for the next worker to go on from its cursor."""
        try:
            async with self.sessions.begin() as session:
                await release_backfill(session, self.job.id, worker_id=self.worker_id)
        except Exception as exc:  # the lease expires by itself; the next worker goes on
            log.warning("releasing a backfill failed", job_id=self.job.id, error=str(exc))
        self._log("backfill handed back to the queue")
        return BackfillOutcome("queued", self.progress)

    def _lost(self) -> BackfillOutcome:
        self._log("backfill taken over by another worker")
        return BackfillOutcome("lost", self.progress, "another worker took the job over")

    def _log(self, message: str, **facts: Any) -> None:
        log.info(
            message,
            job_id=self.job.id,
            source_id=self.job.source_id,
            kind=self.kind,
            **self.progress.counters,
            **facts,
        )


def _unusable(source_id: int, source: BackfillSource | None) -> str | None:
    """Why a backfill of this source cannot go on now, or None."""
    if source is None or source.removed:
        return f"source {source_id} was removed; its posts stay in the archive"
    try:
        ensure_backfillable(source_id, source.kind, enabled=source.enabled)
    except Conflict as exc:
        return str(exc)
    return None


async def _older_page(
    fetcher: Source, state: dict[str, Any], cursor: dict[str, Any] | None
) -> BackfillPage:
    backfill = getattr(fetcher, "backfill", None)
    if not callable(backfill):  # the kind changed under a running job
        raise Conflict(f"the {fetcher.kind} source kind can no longer backfill")
    page = await backfill(dict(state), cursor)
    if not isinstance(page, BackfillPage):
        raise TypeError(f"backfill returned {type(page).__name__}, not a BackfillPage")
    return page


def _split_at(
    posts: Sequence[CollectedPost], line: datetime | None
) -> tuple[list[CollectedPost], list[CollectedPost]]:
    """The posts to archive, and those newer than the last successful poll (left to polls)."""
    if line is None:
        return list(posts), []
    archived: list[CollectedPost] = []
    left: list[CollectedPost] = []
    for post in posts:
        newer = post.published_at is not None and post.published_at > line
        (left if newer else archived).append(post)
    return archived, left


def _job_leases(
    sessions: async_sessionmaker[AsyncSession], *, worker_id: str, lease_s: float
) -> LeaseKeeper:
    async def renew(session: AsyncSession, ids: list[int], now: datetime) -> set[int]:
        return await renew_job_leases(session, ids, worker_id=worker_id, now=now, lease_s=lease_s)

    return LeaseKeeper(sessions, renew, lease_s=lease_s, what="backfill job")


async def run_backfill(
    job: BackfillJob,
    *,
    sessions: async_sessionmaker[AsyncSession],
    client: OutboundClient,
    secret_key: str,
    worker_id: str,
    lease_s: float,
    platforms: Platforms | None = None,
    stop: asyncio.Event | None = None,
    on_page: OnPage | None = None,
    requeue_on_cancel: bool = True,
) -> BackfillOutcome:
    """Run a job claimed by ``worker_id`` page by page; never raises but for cancellation.

    ``stop`` ends the run between two pages, handing the job back to the queue. A cancelled run
    is handed back too, or with ``requeue_on_cancel=False`` (a person pressed Ctrl-C) closed as
    failed with its cursor kept, so that only asking again goes on.
    """
    run = _Run(job, sessions, client, secret_key, platforms, worker_id, lease_s, stop, on_page)
    try:
        async with _job_leases(sessions, worker_id=worker_id, lease_s=lease_s) as leases:
            leases.hold([job.id])
            return await run.pages(leases)
    except asyncio.CancelledError:
        if requeue_on_cancel:
            await run.release()
        else:
            await run.fail(
                f"interrupted after {run.progress.pages} pages ({run.progress.fetched} posts); "
                "asking for the backfill again goes on from there"
            )
        raise
    except Exception as exc:  # the database went away mid-page: the lease expires, a rerun goes on
        log.exception("backfill could not be recorded", job_id=job.id, source_id=job.source_id)
        return BackfillOutcome("failed", run.progress, f"the page could not be stored: {exc}")


async def take_backfill(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    source_id: int,
    *,
    limit: int,
    worker_id: str,
    restart: bool = False,
) -> BackfillJob:
    """Claim the source's backfill for ``worker_id`` in this process (``sigwatch collect
    --backfill``): its interrupted one, continued, or a new one; NotFound or Conflict saying
    what to do when there is none to run."""
    now = utcnow()
    async with sessions.begin() as session:
        source = await read_backfill_source(session, source_id)
        if source is None or source.removed:
            raise NotFound(
                f"no source with id {source_id}: `sigwatch source list` shows the sources there are"
            )
        ensure_backfillable(source_id, source.kind, enabled=source.enabled)
        job = await request_backfill(
            session, source_id, limit=limit, requested_by=None, restart=restart, now=now
        )
        claimed = await claim_backfill_jobs(
            session,
            worker_id=worker_id,
            now=now,
            lease_s=settings.lease_s,
            limit=1,
            job_ids=[job.id],
        )
        if not claimed:
            raise Conflict(_running_elsewhere(source_id, job))
    return claimed[0]


def _running_elsewhere(source_id: int, job: Job) -> str:
    """What to do about a backfill another process is running now."""
    done = (job.counters or {}).get("fetched", 0)
    expires = job.lease_expires_at
    when = f"after {expires:%Y-%m-%d %H:%M:%S} UTC, " if expires is not None else "later, "
    return (
        f"source {source_id} is being backfilled by {job.lease_owner} (job {job.id}, {done} "
        f"posts so far): wait for it to finish, or, if that process is gone, run this again "
        f"{when}when its lease expires"
    )


async def backfill_now(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    job: BackfillJob,
    *,
    worker_id: str,
    on_page: OnPage | None = None,
    client: OutboundClient | None = None,
) -> BackfillOutcome:
    """Run a job :func:`take_backfill` claimed, in this process; Ctrl-C leaves it failed with
    its cursor, for the same command to go on from."""
    active = client or OutboundClient.from_settings(settings)
    try:
        return await run_backfill(
            job,
            sessions=sessions,
            client=active,
            secret_key=ensure_secret_key(settings),
            worker_id=worker_id,
            lease_s=settings.lease_s,
            platforms=Platforms.from_settings(settings),
            on_page=on_page,
            requeue_on_cancel=False,
        )
    finally:
        if client is None:
            await active.aclose()


class BackfillLoop:
    """A worker's share of backfill jobs: claims queued (or abandoned) ones and runs a few at a
    time beside the polls, until stopped; then hands unfinished ones back to the queue."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        client: OutboundClient,
        secret_key: str,
        platforms: Platforms,
        worker_id: str,
        lease_s: float,
        idle_tick_s: float,
        shutdown_grace_s: float,
        concurrency: int = MAX_BACKFILLS_PER_WORKER,
        on_page: OnPage | None = None,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._secret_key = secret_key
        self._platforms = platforms
        self._worker_id = worker_id
        self._lease_s = lease_s
        self._idle_tick_s = idle_tick_s
        self._grace_s = shutdown_grace_s
        self._concurrency = concurrency
        self._on_page = on_page

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run backfill jobs until ``stop``; running ones stop at their next page."""
        in_flight: set[asyncio.Task[BackfillOutcome]] = set()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                for job in await self._claim(self._concurrency - len(in_flight)):
                    in_flight.add(asyncio.create_task(self._run(job, stop)))
                done, _ = await asyncio.wait(
                    {stopping, *in_flight},
                    timeout=self._idle_tick_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                in_flight.difference_update(done)
        finally:
            stopping.cancel()
            if in_flight:
                # Each run hands its job back after the page in flight; a page slower than the
                # grace period is cancelled, and its job handed back all the same.
                _, pending = await asyncio.wait(in_flight, timeout=self._grace_s)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*in_flight, return_exceptions=True)

    async def _claim(self, free: int) -> list[BackfillJob]:
        if free <= 0:
            return []
        try:
            async with self._sessions.begin() as session:
                return await claim_backfill_jobs(
                    session,
                    worker_id=self._worker_id,
                    now=utcnow(),
                    lease_s=self._lease_s,
                    limit=free,
                )
        except Exception as exc:  # the database may be restarting; the next tick tries again
            log.warning("claiming backfill jobs failed", error=str(exc))
            return []

    async def _run(self, job: BackfillJob, stop: asyncio.Event) -> BackfillOutcome:
        return await run_backfill(
            job,
            sessions=self._sessions,
            client=self._client,
            secret_key=self._secret_key,
            worker_id=self._worker_id,
            lease_s=self._lease_s,
            platforms=self._platforms,
            stop=stop,
            on_page=self._on_page,
        )
