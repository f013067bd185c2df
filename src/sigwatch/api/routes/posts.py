"""Posts: the archive of everything collected, filtered and paged newest first, and exported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from sigwatch.api.deps import CurrentPrincipal, RuntimeDep, SessionDep
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
from sigwatch.db.models import Post
from sigwatch.export import MEDIA_TYPES, iter_posts, parquet_chunks, text_lines

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


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The posts as JSON lines, CSV (format=csv) or Parquet "
            "(format=parquet); columns in docs/api.md.",
            "content": {media: {} for media in MEDIA_TYPES.values()},
        },
        **error_responses(404),
    },
)
async def export_posts(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    session: SessionDep,
    format: Literal["csv", "jsonl", "parquet"] = "jsonl",
    source_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    since: Annotated[
        UTCTime | None, Query(description="Published at or after (ISO 8601; UTC if no zone).")
    ] = None,
    until: Annotated[
        UTCTime | None, Query(description="Published before (ISO 8601; UTC if no zone).")
    ] = None,
    q: Annotated[
        Text | None, Query(min_length=1, max_length=500, description="Words to find.")
    ] = None,
) -> StreamingResponse:
    """Every matching post of your sources (all sources for admins), newest first, streamed.

    Parquet comes a row group (1000 posts) at a time, so neither side holds the whole archive.
    """
    owner = principal.owner_filter
    if source_id is not None:
        await sources.get_source(session, source_id, owner_id=owner, include_removed=True)
    # A filter the database refuses (a q without a word) is a 422 before the answer starts,
    # not a stream cut short after its 200.
    await posts.list_posts(
        session, owner_id=owner, source_id=source_id, since=since, until=until, q=q, limit=1
    )
    await session.close()  # each page of the export reads in a short session of its own
    matching = iter_posts(
        runtime.sessions, owner_id=owner, source_id=source_id, since=since, until=until, q=q
    )
    body = parquet_chunks(matching) if format == "parquet" else _encoded(matching, format)
    return StreamingResponse(
        body,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="posts.{format}"'},
    )


async def _encoded(
    matching: AsyncIterator[Post], fmt: Literal["csv", "jsonl"]
) -> AsyncIterator[bytes]:
    async for line in text_lines(matching, fmt):
        yield line.encode("utf-8")


@router.get("/{post_id}")
async def get_post(post_id: PostId, principal: CurrentPrincipal, session: SessionDep) -> PostDetail:
    """One post with its HTML and raw item."""
    post = await posts.get_post(session, post_id, owner_id=principal.owner_filter)
    return PostDetail.model_validate(post)
