"""Posts: the archive of everything collected, filtered and paged newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from sigwatch.api.deps import CurrentPrincipal, SessionDep
from sigwatch.api.openapi import error_responses
from sigwatch.api.routes import API_PREFIX
from sigwatch.api.schemas import (
    MAX_INT32,
    MAX_INT64,
    PageOut,
    PostDetail,
    PostOut,
    Text,
    UTCTime,
    page_out,
)
from sigwatch.db import posts, sources

router = APIRouter(prefix=f"{API_PREFIX}/posts", tags=["posts"])

PostId = Annotated[int, Path(ge=1, le=MAX_INT64)]


@router.get("", responses=error_responses(404))  # an unknown source_id
async def list_posts(
    principal: CurrentPrincipal,
    session: SessionDep,
    source_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    author: Annotated[Text | None, Query(max_length=256)] = None,
    since: Annotated[
        UTCTime | None, Query(description="Published at or after (ISO 8601; UTC if no zone).")
    ] = None,
    until: Annotated[
        UTCTime | None, Query(description="Published before (ISO 8601; UTC if no zone).")
    ] = None,
    q: Annotated[
        Text | None, Query(min_length=1, max_length=500, description="Words to find.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageOut[PostOut]:
    """Posts of your sources (of all sources for admins), newest first."""
    if source_id is not None:
        # A source the caller cannot see is a 404, not an empty list that hides the mistake;
        # a removed one's posts stay in the archive.
        await sources.get_source(
            session, source_id, owner_id=principal.owner_filter, include_removed=True
        )
    page = await posts.list_posts(
        session,
        owner_id=principal.owner_filter,
        source_id=source_id,
        author=author,
        since=since,
        until=until,
        q=q,
        cursor=cursor,
        limit=limit,
    )
    return page_out(page, PostOut.model_validate)


@router.get("/{post_id}")
async def get_post(post_id: PostId, principal: CurrentPrincipal, session: SessionDep) -> PostDetail:
    """One post with its HTML and raw item."""
    post = await posts.get_post(session, post_id, owner_id=principal.owner_filter)
    return PostDetail.model_validate(post)
