"""Export of the post archive as CSV or JSONL, streamed page by page."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Literal, TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.db.models import Post
from sigwatch.db.posts import list_posts

ExportFormat = Literal["csv", "jsonl"]

POST_FIELDS = (
    "id",
    "source_id",
    "external_id",
    "url",
    "author",
    "title",
    "text",
    "published_at",
    "collected_at",
    "content_hash",
)

PAGE_SIZE = 1000


def post_record(post: Post) -> dict[str, Any]:
    """The exported fields of a post, JSON-safe."""
    record: dict[str, Any] = {name: getattr(post, name) for name in POST_FIELDS}
    for name in ("published_at", "collected_at"):
        value = record[name]
        record[name] = value.isoformat() if isinstance(value, datetime) else value
    return record


async def iter_posts(
    sessions: async_sessionmaker[AsyncSession],
    *,
    source_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: str | None = None,
) -> AsyncIterator[Post]:
    """Every matching post, newest first, one short transaction per page."""
    cursor: str | None = None
    while True:
        async with sessions() as session:
            page = await list_posts(
                session,
                owner_id=None,
                source_id=source_id,
                since=since,
                until=until,
                q=q,
                cursor=cursor,
                limit=PAGE_SIZE,
            )
        for post in page.items:
            yield post
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def write_posts(
    posts: AsyncIterator[Post],
    out: TextIO,
    fmt: ExportFormat,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write posts to ``out`` in ``fmt``; returns how many were written."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=POST_FIELDS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    async for post in posts:
        record = post_record(post)
        if writer is not None:
            writer.writerow(record)
        else:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
        if on_progress is not None and count % 500 == 0:
            on_progress(count)
    if on_progress is not None:
        on_progress(count)
    return count
