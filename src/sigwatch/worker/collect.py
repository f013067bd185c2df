"""One poll of one claimed source: fetch, store, record the outcome. Never raises.

The source's lease is renewed every third of the lease for as long as the poll runs, so a poll
slower than the lease (several pages, a slow server) is never taken over by another worker.
A worker's loop keeps one lease keeper for every source it has claimed; a poll run alone keeps
its own.

A poll that stored nothing (a 304, an empty answer) and answers no job can be handed to a
worker's :func:`poll_recorder`, which records it with others in one transaction a few
milliseconds later; the poll's slot is free meanwhile. Killed before that commit, the worker
loses nothing: the source's lease expires and it is polled again.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.alerts.detectors import DetectorCache
from sigwatch.alerts.lifecycle import AlertChange
from sigwatch.alerts.record import detect_and_record, post_sentiment
from sigwatch.alerts.routing import route_changes
from sigwatch.db.jobs import finish_jobs, set_job_progress, start_queued_jobs
from sigwatch.db.posts import StoreResult, store_posts
from sigwatch.db.schedule import (
    ClaimedSource,
    PollSuccess,
    PostRate,
    record_poll_failure,
    record_poll_success,
    record_poll_successes,
)
from sigwatch.db.types import utcnow
from sigwatch.detect import DEFAULT_MIN_CONFIDENCE
from sigwatch.errors import SigwatchError, SourcePaused
from sigwatch.net.client import OutboundClient
from sigwatch.observability.metrics import POLL_DURATION, POLLS, POSTS_INGESTED
from sigwatch.sources.base import CollectedPost, FetchResult, Platforms
from sigwatch.sources.registry import open_source
from sigwatch.sources.rss import WEBSUB_HUB_KEY
from sigwatch.worker.cadence import (
    CadencePolicy,
    NextPoll,
    at_least,
    choose_interval,
    jittered,
    learn_post_rate,
)
from sigwatch.worker.freshness import note_newest_item
from sigwatch.worker.leases import LeaseKeeper, source_leases
from sigwatch.worker.poll_backoff import plan_retry
from sigwatch.worker.posts import to_new_posts
from sigwatch.worker.recorder import GroupRecorder
from sigwatch.worker.websub import push_fallback_interval_s

log = structlog.get_logger(__name__)

#: Records the polls that stored nothing in group commits (see :func:`poll_recorder`).
PollRecorder = GroupRecorder[PollSuccess]
#: Most polls recorded in one group commit.
RECORD_GROUP = 256
#: Longest wait of a handed-over poll for others to share its commit. Nobody waits for it (the
#: lease stays held meanwhile), so it can be longer than a delivery's: at 1,000 polls/s a group
#: holds about 50, and a commit costs about as much CPU as a dozen outcomes (bench_poll.py).
RECORD_WITHIN_S = 0.05
#: Outcomes waiting for their commit above which a poll waits for its own: the database is
#: then slower than the answers, and polling faster would only pile them up.
MAX_UNSETTLED = 1024


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one poll did, for logs, progress bars and tests."""

    source_id: int
    ok: bool
    not_modified: bool = False
    fetched: int = 0
    new: int = 0
    updated: int = 0
    error: str | None = None
    warning: str | None = None
    duration_s: float = 0.0
    alerts: tuple[AlertChange, ...] = ()

    @property
    def counters(self) -> dict[str, int]:
        """The job counters of this poll."""
        return {"fetched": self.fetched, "new": self.new, "updated": self.updated}


async def poll_source(
    claimed: ClaimedSource,
    *,
    client: OutboundClient,
    sessions: async_sessionmaker[AsyncSession],
    worker_id: str,
    lease_s: float,
    max_backoff_s: int,
    detectors: DetectorCache | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    secret_key: str = "",
    platforms: Platforms | None = None,
    leases: LeaseKeeper | None = None,
    recorder: PollRecorder | None = None,
    cadence: CadencePolicy | None = None,
) -> PollOutcome:
    """Fetch ``claimed``; store its posts, their alerts and its health in one transaction.

    Detection runs on new posts only, inside the transaction that stores them, so an alert never
    exists without its evidence nor a stored post without its detection. The lease is renewed
    until the outcome is recorded or handed to ``recorder``: by ``leases``, the caller's keeper
    that already holds it, or else by a keeper of the poll's own. ``secret_key`` opens the
    source's sealed secret options; a source that has some fails, saying so, when it is not
    given. ``cadence`` chooses the wait before the next poll (default: the settings' defaults).
    """
    args = (
        claimed,
        client,
        sessions,
        worker_id,
        max_backoff_s,
        detectors,
        min_confidence,
        secret_key,
        platforms,
        recorder,
        cadence or CadencePolicy(),
    )
    if leases is not None:
        try:
            return await _poll(*args)
        finally:
            leases.release([claimed.id])
    async with source_leases(sessions, worker_id=worker_id, lease_s=lease_s) as own:
        own.hold([claimed.id])
        return await _poll(*args)


def poll_recorder(sessions: async_sessionmaker[AsyncSession], *, worker_id: str) -> PollRecorder:
    """A group recorder for ``worker_id``'s polls that stored nothing (enter it to run it)."""

    async def write(session: AsyncSession, successes: list[PollSuccess]) -> None:
        recorded = await record_poll_successes(session, successes, worker_id=worker_id)
        lost = sorted({success.source_id for success in successes} - recorded)
        if lost:
            log.warning("poll outcomes dropped: lease lost", source_ids=lost)

    return GroupRecorder(
        sessions, write, what="poll", within_s=RECORD_WITHIN_S, group_size=RECORD_GROUP
    )


async def _poll(
    claimed: ClaimedSource,
    client: OutboundClient,
    sessions: async_sessionmaker[AsyncSession],
    worker_id: str,
    max_backoff_s: int,
    detectors: DetectorCache | None,
    min_confidence: float,
    secret_key: str,
    platforms: Platforms | None,
    recorder: PollRecorder | None,
    cadence: CadencePolicy,
) -> PollOutcome:
    started = time.perf_counter()
    job_ids: list[int] = []
    if claimed.jobs_waiting:  # most polls answer no job: no transaction to look for one
        async with sessions.begin() as session:
            job_ids = await start_queued_jobs(session, claimed.id)
    try:
        source = open_source(
            claimed.kind,
            claimed.config,
            secret_key=secret_key,
            client=client,
            platforms=platforms,
        )
        result = await source.fetch(claimed.state)
    except SigwatchError as exc:
        return await _record_failure(
            claimed, sessions, worker_id, job_ids, exc, str(exc), max_backoff_s, started, cadence
        )
    except Exception as exc:  # a bug in a source kind must not stop the worker loop
        log.exception("source crashed", source_id=claimed.id, kind=claimed.kind)
        message = f"internal error in the {claimed.kind} source: {type(exc).__name__}: {exc}"
        return await _record_failure(
            claimed, sessions, worker_id, job_ids, None, message, max_backoff_s, started, cadence
        )
    if job_ids:
        async with sessions.begin() as session:
            await set_job_progress(session, job_ids, 0.5, {"fetched": len(result.posts)})
    if recorder is not None and not job_ids and _nothing_to_store(result):
        return await _hand_over_success(claimed, recorder, result, started, cadence)
    return await _record_success(
        claimed, sessions, worker_id, job_ids, result, started, detectors, min_confidence, cadence
    )


def _nothing_to_store(result: FetchResult) -> bool:
    """Whether recording ``result`` only reschedules the source (no post, warning or hub)."""
    return not result.posts and not result.warnings and WEBSUB_HUB_KEY not in result.state


def _next_poll(
    claimed: ClaimedSource,
    result: FetchResult,
    cadence: CadencePolicy,
    rate: PostRate,
    now: datetime,
) -> NextPoll:
    """The wait before the next poll after a success, and why: adaptive (see :mod:`.cadence`),
    but never sooner than the source asked."""
    chosen = choose_interval(
        cadence, kind=claimed.kind, poll_interval_s=claimed.poll_interval_s, rate=rate, now=now
    )
    if result.wait_s:
        chosen = at_least(chosen, math.ceil(result.wait_s), "the platform asked to wait")
    return chosen


def _jittered(chosen: NextPoll, cadence: CadencePolicy) -> float:
    return jittered(chosen, cadence.jitter_share, random.uniform(-1.0, 1.0))


async def _hand_over_success(
    claimed: ClaimedSource,
    recorder: PollRecorder,
    result: FetchResult,
    started: float,
    cadence: CadencePolicy,
) -> PollOutcome:
    """Give a success that stored nothing to the group recorder; wait only when it lags."""
    now = utcnow()
    chosen = _next_poll(claimed, result, cadence, claimed.post_rate, now)
    success = PollSuccess(
        source_id=claimed.id,
        at=now,
        interval_s=_jittered(chosen, cadence),
        state=None if result.state == claimed.state else result.state,
        interval_reason=chosen.reason,
    )
    committed = recorder.hand_over(success)
    if recorder.unsettled > MAX_UNSETTLED:
        await committed
    outcome = PollOutcome(
        source_id=claimed.id,
        ok=True,
        not_modified=result.not_modified,
        duration_s=time.perf_counter() - started,
    )
    _observe_success(claimed, outcome)
    return outcome


async def _record_success(
    claimed: ClaimedSource,
    sessions: async_sessionmaker[AsyncSession],
    worker_id: str,
    job_ids: list[int],
    result: FetchResult,
    started: float,
    detectors: DetectorCache | None,
    min_confidence: float,
    cadence: CadencePolicy,
) -> PollOutcome:
    warning = "; ".join(result.warnings) or None
    async with sessions.begin() as session:
        stored, changes = await store_and_detect(
            session, claimed.id, claimed.name, result.posts, detectors, min_confidence
        )
        now = utcnow()
        rate = claimed.post_rate
        if stored.new_ids:
            rate = learn_post_rate(rate, stored.new_published_at, now)
        chosen = _next_poll(claimed, result, cadence, rate, now)
        if WEBSUB_HUB_KEY in result.state:  # a hub may push this feed: then poll it slowly
            fallback_s = await push_fallback_interval_s(session, claimed.id, chosen.interval_s)
            chosen = at_least(chosen, fallback_s, "WebSub: the hub pushes new posts; fallback poll")
        await record_poll_success(
            session,
            claimed.id,
            worker_id=worker_id,
            now=now,
            state=result.state,
            interval_s=_jittered(chosen, cadence),
            warning=warning,
            interval_reason=chosen.reason,
            post_rate=rate if stored.new_ids else None,
        )
        await note_newest_item(session, claimed.id, result.posts, now=now)  # for staleness
        outcome = PollOutcome(
            source_id=claimed.id,
            ok=True,
            not_modified=result.not_modified,
            fetched=len(result.posts),
            new=len(stored.new_ids),
            updated=len(stored.updated_ids),
            warning=warning,
            duration_s=time.perf_counter() - started,
            alerts=tuple(changes),
        )
        await finish_jobs(session, job_ids, succeeded=True, counters=outcome.counters)
    _observe_success(claimed, outcome)
    return outcome


def _observe_success(claimed: ClaimedSource, outcome: PollOutcome) -> None:
    """Count a successful poll in the metrics and log it."""
    POLLS.labels(claimed.kind, "not_modified" if outcome.not_modified else "success").inc()
    POLL_DURATION.labels(claimed.kind).observe(outcome.duration_s)
    POSTS_INGESTED.labels(claimed.kind, "new").inc(outcome.new)
    POSTS_INGESTED.labels(claimed.kind, "updated").inc(outcome.updated)
    log.info(
        "source polled",
        source_id=claimed.id,
        kind=claimed.kind,
        fetched=outcome.fetched,
        new_posts=outcome.new,
        updated_posts=outcome.updated,
        not_modified=outcome.not_modified,
        alerts=len(outcome.alerts),
        warning=outcome.warning,
        duration_ms=round(outcome.duration_s * 1000, 1),
    )


async def store_and_detect(
    session: AsyncSession,
    source_id: int,
    source_name: str,
    posts: list[CollectedPost],
    detectors: DetectorCache | None,
    min_confidence: float,
) -> tuple[StoreResult, list[AlertChange]]:
    """Store ``posts`` as the source's, detect on the new ones and route the alert changes.

    All in the caller's transaction, so an alert and its outbox rows commit with their posts.
    The one ingest path of polls and of WebSub pushes (``sigwatch.api.routes.websub``).
    """
    # Read before the first write: on SQLite the write lock, which every other poll waits for,
    # is then held for less time.
    detector = await detectors.get(session) if detectors is not None and posts else None
    stored = await store_posts(
        session,
        source_id,
        to_new_posts(posts),
        sentiment=post_sentiment if detector is not None else None,
    )
    changes: list[AlertChange] = []
    if detector is not None and stored.new_ids:
        changes = await detect_and_record(
            session,
            stored.new_posts,
            detector,
            min_confidence=min_confidence,
            source_name=source_name,
        )
        await route_changes(session, changes, now=utcnow())
    return stored, changes


async def _record_failure(
    claimed: ClaimedSource,
    sessions: async_sessionmaker[AsyncSession],
    worker_id: str,
    job_ids: list[int],
    cause: SigwatchError | None,
    error: str,
    max_backoff_s: int,
    started: float,
    cadence: CadencePolicy,
) -> PollOutcome:
    """Record the failure with the retry its error calls for (see :mod:`.poll_backoff`), backed
    off from the source's interval, or its kind's minimum when that is longer."""
    plan = plan_retry(
        cause,
        interval_s=max(claimed.poll_interval_s, cadence.minimum_of(claimed.kind)),
        failures=claimed.consecutive_failures + 1,
        max_backoff_s=max_backoff_s,
    )
    if plan.note is not None:
        error = f"{error}; {plan.note}"
    async with sessions.begin() as session:
        next_poll_at = await record_poll_failure(
            session,
            claimed.id,
            worker_id=worker_id,
            now=utcnow(),
            error=error,
            delay_s=plan.delay_s,
            earliest_s=plan.earliest_s,
            pause=isinstance(cause, SourcePaused),
        )
        await finish_jobs(session, job_ids, succeeded=False, counters={}, error=error)
    duration = time.perf_counter() - started
    POLLS.labels(claimed.kind, "error").inc()
    POLL_DURATION.labels(claimed.kind).observe(duration)
    log.warning(
        "source poll failed",
        source_id=claimed.id,
        kind=claimed.kind,
        error=error,
        status=getattr(cause, "status", None),
        consecutive_failures=claimed.consecutive_failures + 1,
        next_poll_at=next_poll_at.isoformat(),
    )
    return PollOutcome(source_id=claimed.id, ok=False, error=error, duration_s=duration)
