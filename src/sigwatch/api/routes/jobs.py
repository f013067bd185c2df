"""Jobs: the progress and outcome of a poll or a backfill asked for through the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from sigwatch.api.deps import CurrentPrincipal, SessionDep
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import MAX_INT32, JobOut
from sigwatch.db import jobs, sources
from sigwatch.errors import NotFound

router = APIRouter(prefix=f"{API_PREFIX}/jobs", tags=["jobs"])

JobId = Annotated[int, Path(ge=1, le=MAX_INT32)]


@router.get("/{job_id}")
async def get_job(job_id: JobId, principal: CurrentPrincipal, session: SessionDep) -> JobOut:
    """A job's status, progress, counters, error and times; for its source's owner and admins."""
    job = await jobs.get_job(session, job_id)
    if not principal.is_admin:
        visible = job.requested_by == principal.user.id
        if not visible and job.source_id is not None:
            try:
                await sources.get_source(
                    session, job.source_id, owner_id=principal.user.id, include_removed=True
                )
                visible = True
            except NotFound:
                pass
        if not visible:
            # Someone else's job is reported like a missing one, so ids reveal nothing.
            raise NotFound(f"job {job_id} does not exist")
    return JobOut.model_validate(job)
