"""Sources: create, list, read (with health and post count), change, remove, poll now, and
backfill (archive past posts).

A config comes back with every secret option masked, in every response and audit row; the
secrets themselves are sealed in the database (see :mod:`sigwatch.manage.sources`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import Field

from sigwatch.api.deps import CurrentPrincipal, RuntimeDep, SessionDep
from sigwatch.api.openapi import error_responses
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import (
    MAX_INT32,
    HostBreakerOut,
    JobOut,
    PageOut,
    RequestModel,
    SourceCreate,
    SourceKind,
    SourceOut,
    SourceUpdate,
)
from sigwatch.db import jobs, sources
from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.models import Source
from sigwatch.errors import Conflict
from sigwatch.manage.sources import create_source as add_source
from sigwatch.manage.sources import shown_source_config, source_breakers
from sigwatch.manage.sources import update_source as change_source
from sigwatch.net.breaker import HostHealth
from sigwatch.net.hosts import describe_breaker
from sigwatch.sources.registry import ensure_backfillable

router = APIRouter(prefix=f"{API_PREFIX}/sources", tags=["sources"])

SourceId = Annotated[int, Path(ge=1, le=MAX_INT32)]
#: Columns left out of audit rows: fetch state and leases change on every poll, not by a user.
_NOT_AUDITED = ("state", "lease_owner", "lease_expires_at")


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def create_source(
    body: SourceCreate, principal: CurrentPrincipal, runtime: RuntimeDep, session: SessionDep
) -> SourceOut:
    """Add a source owned by the caller; it is polled as soon as a worker is free.

    409 names the caller's source of the same kind and address when there is one.
    """
    source = await add_source(
        session,
        owner_id=principal.user.id,
        kind=body.kind,
        name=body.name,
        config=body.config,
        secret_key=runtime.secret_key,
        enabled=body.enabled,
        poll_interval_s=body.poll_interval_s,
        settings=runtime.settings,
    )
    after = _audited(source, runtime.secret_key)
    await record_audit(session, principal.user, "create", "source", source.id, None, after)
    await session.commit()
    return _out(source, 0, runtime.secret_key)


@router.get("")
async def list_sources(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    session: SessionDep,
    kind: Annotated[SourceKind | None, Query()] = None,
    enabled: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[SourceOut]:
    """Your sources (all sources for admins), in the order they were added; removed ones not."""
    page = await sources.list_sources(
        session,
        owner_id=principal.owner_filter,
        kind=kind,
        enabled=enabled,
        cursor=cursor,
        limit=limit,
    )
    counts = await sources.count_posts(session, [source.id for source in page.items])
    breakers = await _breakers(runtime, page.items)
    return PageOut[SourceOut](
        items=[
            _out(source, counts[source.id], runtime.secret_key, breakers.get(source.id))
            for source in page.items
        ],
        next_cursor=page.next_cursor,
    )


@router.get("/{source_id}")
async def get_source(
    source_id: SourceId, principal: CurrentPrincipal, runtime: RuntimeDep, session: SessionDep
) -> SourceOut:
    """One source with its health: last poll, last success, last error, failures, next poll,
    and the circuit breaker of the host it fetches from."""
    source = await sources.get_source(session, source_id, owner_id=principal.owner_filter)
    counts = await sources.count_posts(session, [source.id])
    breakers = await _breakers(runtime, [source])
    return _out(source, counts[source.id], runtime.secret_key, breakers.get(source.id))


@router.patch("/{source_id}", responses=error_responses(409))
async def update_source(
    source_id: SourceId,
    body: SourceUpdate,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    session: SessionDep,
) -> SourceOut:
    """Change name, config, enabled or poll_interval_s; a changed config is polled afresh.

    Secret options left out of a new config, or sent back masked, keep their stored values.
    """
    source = await sources.get_source(session, source_id, owner_id=principal.owner_filter)
    before = _audited(source, runtime.secret_key)
    source = await change_source(
        session,
        source_id,
        body.model_dump(exclude_unset=True),
        owner_id=principal.owner_filter,
        secret_key=runtime.secret_key,
        settings=runtime.settings,
    )
    after = _audited(source, runtime.secret_key)
    await record_audit(session, principal.user, "update", "source", source.id, before, after)
    await session.commit()
    counts = await sources.count_posts(session, [source.id])
    return _out(source, counts[source.id], runtime.secret_key)


@router.delete("/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_source(
    source_id: SourceId, principal: CurrentPrincipal, runtime: RuntimeDep, session: SessionDep
) -> None:
    """Remove a source: it is no longer polled or listed; its posts stay in your archive."""
    source = await sources.get_source(session, source_id, owner_id=principal.owner_filter)
    before = _audited(source, runtime.secret_key)
    await sources.delete_source(session, source_id, owner_id=principal.owner_filter)
    await record_audit(session, principal.user, "delete", "source", source_id, before, None)
    await session.commit()


@router.post(
    "/{source_id}/poll", status_code=status.HTTP_202_ACCEPTED, responses=error_responses(409)
)
async def poll_source(
    source_id: SourceId, principal: CurrentPrincipal, session: SessionDep
) -> JobOut:
    """Ask for a poll that starts after this request; answers its queued job.

    A job already queued is answered as is; while a poll runs, a new job is queued and is taken
    by the poll that follows the running one.
    """
    source = await sources.get_source(session, source_id, owner_id=principal.owner_filter)
    if not source.enabled:
        raise Conflict(f"source {source_id} is disabled: enable it before asking for a poll")
    job = await jobs.queue_poll(session, source_id, requested_by=principal.user.id)
    await record_audit(
        session, principal.user, "poll", "source", source_id, None, {"job_id": job.id}
    )
    await session.commit()
    return JobOut.model_validate(job)


class BackfillRequest(RequestModel):
    """How many past posts a backfill goes through, and whether it starts over."""

    limit: int = Field(ge=1, le=MAX_INT32, description="Most past posts to go through.")
    restart: bool = Field(
        default=False,
        description="Start from the newest post instead of going on from an interrupted backfill.",
    )


@router.post(
    "/{source_id}/backfill",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(409),
)
async def backfill_source(
    source_id: SourceId, body: BackfillRequest, principal: CurrentPrincipal, session: SessionDep
) -> JobOut:
    """Archive up to ``limit`` past posts of the source, page by page; answers its job.

    A worker runs the job; its counters (fetched, new, updated, pages, left_to_poll) and
    progress show at ``GET /api/v1/jobs/{id}``. An interrupted backfill (failed, or its worker
    gone) goes on from where it stopped, in the same job, unless ``restart`` is set; one
    running now is answered as is, with the new limit. Backfilled posts are archived without
    detection or alerts. 409 when the source's kind cannot reach past its latest posts, or
    the source is paused.
    """
    source = await sources.get_source(session, source_id, owner_id=principal.owner_filter)
    ensure_backfillable(source_id, source.kind, enabled=source.enabled)
    job = await jobs.request_backfill(
        session,
        source_id,
        limit=body.limit,
        requested_by=principal.user.id,
        restart=body.restart,
    )
    await record_audit(
        session,
        principal.user,
        "backfill",
        "source",
        source_id,
        None,
        {"job_id": job.id, "limit": body.limit, "restart": body.restart},
    )
    await session.commit()
    return JobOut.model_validate(job)


def _audited(source: Source, secret_key: str) -> dict[str, Any]:
    return {
        **snapshot(source, exclude=_NOT_AUDITED),
        "config": shown_source_config(source, secret_key),
    }


def _out(
    source: Source, post_count: int, secret_key: str, breaker: HostBreakerOut | None = None
) -> SourceOut:
    # The sealed config read from the row is replaced before anything reaches the wire.
    return SourceOut.model_validate(source).model_copy(
        update={
            "config": shown_source_config(source, secret_key),
            "post_count": post_count,
            "breaker": breaker,
        }
    )


async def _breakers(runtime: RuntimeDep, rows: Sequence[Source]) -> dict[int, HostBreakerOut]:
    found = await source_breakers(runtime.settings, rows, runtime.secret_key, runtime.redis)
    return {source_id: _breaker_out(host, health) for source_id, (host, health) in found.items()}


def _breaker_out(host: str | None, health: HostHealth | None) -> HostBreakerOut:
    if health is None:
        return HostBreakerOut(host=host, state="unknown", summary=describe_breaker(None))
    retry_at = health.retry_at
    return HostBreakerOut(
        host=host,
        state=health.state,
        failures=health.failures,
        retry_at=datetime.fromtimestamp(retry_at, UTC) if retry_at is not None else None,
        summary=describe_breaker(health),
    )
