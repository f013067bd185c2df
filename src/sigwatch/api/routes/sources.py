"""Sources: create, list, read (with health and post count), change, delete, and poll now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from sigwatch.api.deps import CurrentPrincipal, RuntimeDep, SessionDep
from sigwatch.api.openapi import error_responses
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import (
    MAX_INT32,
    JobOut,
    PageOut,
    SourceCreate,
    SourceKind,
    SourceOut,
    SourceUpdate,
)
from sigwatch.db import jobs, sources
from sigwatch.db.audit import record_audit, snapshot
from sigwatch.db.models import Source
from sigwatch.errors import Conflict

router = APIRouter(prefix=f"{API_PREFIX}/sources", tags=["sources"])

SourceId = Annotated[int, Path(ge=1, le=MAX_INT32)]
#: Columns left out of audit rows: fetch state and leases change on every poll, not by a user.
_NOT_AUDITED = ("state", "lease_owner", "lease_expires_at")


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_source(
    body: SourceCreate, principal: CurrentPrincipal, runtime: RuntimeDep, session: SessionDep
) -> SourceOut:
    """Add a source owned by the caller; it is polled as soon as a worker is free."""
    source = await sources.create_source(
        session,
        owner_id=principal.user.id,
        kind=body.kind,
        name=body.name,
        config=body.config,
        enabled=body.enabled,
        poll_interval_s=body.poll_interval_s or runtime.settings.poll_interval_s,
    )
    await record_audit(
        session, principal.user, "create", "source", source.id, None, _audited(source)
    )
    await session.commit()
    return _out(source, 0)


@router.get("")
async def list_sources(
    principal: CurrentPrincipal,
    session: SessionDep,
    kind: Annotated[SourceKind | None, Query()] = None,
    enabled: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[SourceOut]:
    """Your sources (all sources for admins), in the order they were added."""
    page = await sources.list_sources(
        session,
        owner_id=principal.owner_filter,
        kind=kind,
        enabled=enabled,
        cursor=cursor,
        limit=limit,
    )
    counts = await sources.count_posts(session, [source.id for source in page.items])
    return PageOut[SourceOut](
        items=[_out(source, counts[source.id]) for source in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/{source_id}")
async def get_source(
    source_id: SourceId, principal: CurrentPrincipal, session: SessionDep
) -> SourceOut:
    """One source with its health: last poll, last success, last error, failures, next poll."""
    source = await sources.get_source(session, source_id, owner_id=principal.owner_filter)
    counts = await sources.count_posts(session, [source.id])
    return _out(source, counts[source.id])


@router.patch("/{source_id}")
async def update_source(
    source_id: SourceId, body: SourceUpdate, principal: CurrentPrincipal, session: SessionDep
) -> SourceOut:
    """Change name, config, enabled or poll_interval_s; a changed config is polled afresh."""
    source = await sources.get_source(session, source_id, owner_id=principal.owner_filter)
    before = _audited(source)
    source = await sources.update_source(
        session, source_id, body.model_dump(exclude_unset=True), owner_id=principal.owner_filter
    )
    await record_audit(
        session, principal.user, "update", "source", source.id, before, _audited(source)
    )
    await session.commit()
    counts = await sources.count_posts(session, [source.id])
    return _out(source, counts[source.id])


@router.delete("/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_source(
    source_id: SourceId, principal: CurrentPrincipal, session: SessionDep
) -> None:
    """Delete a source together with its posts and jobs."""
    before = _audited(await sources.get_source(session, source_id, owner_id=principal.owner_filter))
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


def _audited(source: Source) -> dict[str, Any]:
    return snapshot(source, exclude=_NOT_AUDITED)


def _out(source: Source, post_count: int) -> SourceOut:
    return SourceOut.model_validate(source).model_copy(update={"post_count": post_count})
