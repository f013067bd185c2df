"""One poll of one claimed source: fetch, store, record the outcome. Never raises.

The source's lease is renewed every third of the lease for as long as the poll runs, so a poll
slower than the lease (several pages, a slow server) is never taken over by another worker.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.alerts.detectors import DetectorCache
from sigwatch.alerts.lifecycle import AlertChange
from sigwatch.alerts.record import detect_and_record
from sigwatch.alerts.routing import route_changes
from sigwatch.db.jobs import finish_jobs, set_job_progress, start_queued_jobs
from sigwatch.db.posts import StoreResult, get_posts_by_ids, store_posts
from sigwatch.db.schedule import ClaimedSource, record_poll_failure, record_poll_success
from sigwatch.db.types import utcnow
from sigwatch.detect import DEFAULT_MIN_CONFIDENCE
from sigwatch.errors import SigwatchError, SourcePaused
from sigwatch.net.client import OutboundClient
from sigwatch.observability.metrics import POLL_DURATION, POLLS, POSTS_INGESTED
from sigwatch.sources.base import CollectedPost, FetchResult, Platforms
from sigwatch.sources.registry import open_source
from sigwatch.sources.rss import WEBSUB_HUB_KEY
from sigwatch.worker.leases import source_leases
from sigwatch.worker.poll_backoff import plan_retry
from sigwatch.worker.posts import to_new_posts
from sigwatch.worker.websub import push_fallback_interval_s

log = structlog.get_logger(__name__)


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
) -> PollOutcome:
    """Fetch ``claimed``; store its posts, their alerts and its health in one transaction.

    Detection runs on new posts only, inside the transaction that stores them, so an alert never
    exists without its evidence nor a stored post without its detection. The lease is renewed
    until the outcome is recorded. ``secret_key`` opens the source's sealed secret options; a
    source that has some fails, saying so, when it is not given.
    """
    async with source_leases(sessions, worker_id=worker_id, lease_s=lease_s) as leases:
        leases.hold([claimed.id])
        return await _poll(
            claimed,
            client,
            sessions,
            worker_id,
            max_backoff_s,
            detectors,
            min_confidence,
            secret_key,
            platforms,
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
            claimed, sessions, worker_id, job_ids, exc, str(exc), max_backoff_s, started
        )
    except Exception as exc:  # a bug in a source kind must not stop the worker loop
        log.exception("source crashed", source_id=claimed.id, kind=claimed.kind)
        message = f"internal error in the {claimed.kind} source: {type(exc).__name__}: {exc}"
        return await _record_failure(
            claimed, sessions, worker_id, job_ids, None, message, max_backoff_s, started
        )
    if job_ids:
        async with sessions.begin() as session:
            await set_job_progress(session, job_ids, 0.5, {"fetched": len(result.posts)})
    return await _record_success(
        claimed, sessions, worker_id, job_ids, result, started, detectors, min_confidence
    )


async def _record_success(
    claimed: ClaimedSource,
    sessions: async_sessionmaker[AsyncSession],
    worker_id: str,
    job_ids: list[int],
    result: FetchResult,
    started: float,
    detectors: DetectorCache | None,
    min_confidence: float,
) -> PollOutcome:
    warning = "; ".join(result.warnings) or None
    async with sessions.begin() as session:
        stored, changes = await store_and_detect(
            session, claimed.id, claimed.name, result.posts, detectors, min_confidence
        )
        interval_s = max(claimed.poll_interval_s, math.ceil(result.wait_s or 0))
        if WEBSUB_HUB_KEY in result.state:  # a hub may push this feed: then poll it slowly
            interval_s = await push_fallback_interval_s(session, claimed.id, interval_s)
        await record_poll_success(
            session,
            claimed.id,
            worker_id=worker_id,
            now=utcnow(),
            state=result.state,
            interval_s=interval_s,
            warning=warning,
        )
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
    POLLS.labels(claimed.kind, "not_modified" if result.not_modified else "success").inc()
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
        alerts=len(changes),
        warning=warning,
        duration_ms=round(outcome.duration_s * 1000, 1),
    )
    return outcome


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
    stored = await store_posts(session, source_id, to_new_posts(posts))
    changes: list[AlertChange] = []
    if detectors is not None and stored.new_ids:
        changes = await detect_and_record(
            session,
            await get_posts_by_ids(session, stored.new_ids),
            await detectors.get(session),
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
) -> PollOutcome:
    """Record the failure with the retry its error calls for (see :mod:`.poll_backoff`)."""
    plan = plan_retry(
        cause,
        interval_s=claimed.poll_interval_s,
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
