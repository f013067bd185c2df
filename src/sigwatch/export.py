"""Export of the post archive as CSV, JSONL or Parquet, streamed page by page.

Memory stays bounded whatever the archive's size: posts are read a page at a time, text formats
are written a row at a time, and Parquet one row group (:data:`PAGE_SIZE` posts) at a time
through a ``ParquetWriter``, so the file's footer is the only thing written at the end.

Every format has the same columns (:data:`POST_FIELDS`). ``metrics`` is the kind's metrics
object (JSON text in CSV and Parquet), and ``media_urls`` the list a kind stores under
``metrics["media_urls"]`` or ``raw["media_urls"]`` (empty when it stores none; a JSON array in
CSV).
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sigwatch.db.models import Post
from sigwatch.db.posts import list_posts

if TYPE_CHECKING:
    import pyarrow as pa

ExportFormat = Literal["csv", "jsonl", "parquet"]
TEXT_FORMATS = ("csv", "jsonl")
FORMATS: tuple[ExportFormat, ...] = ("csv", "jsonl", "parquet")
MEDIA_TYPES: dict[ExportFormat, str] = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}

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
    "metrics",
    "media_urls",
)

#: Posts per database page, and rows per Parquet row group.
PAGE_SIZE = 1000


@functools.cache
def parquet_schema() -> pa.Schema:
    """The Parquet columns, in :data:`POST_FIELDS` order; times are UTC to the microsecond.

    pyarrow is imported on the first Parquet export, not with this module: it costs a process
    about 40 MB of memory, and most processes never write Parquet.
    """
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("source_id", pa.int64(), nullable=False),
            pa.field("external_id", pa.string(), nullable=False),
            pa.field("url", pa.string()),
            pa.field("author", pa.string()),
            pa.field("title", pa.string()),
            pa.field("text", pa.string()),
            pa.field("published_at", pa.timestamp("us", tz="UTC")),
            pa.field("collected_at", pa.timestamp("us", tz="UTC")),
            pa.field("content_hash", pa.string()),
            pa.field("metrics", pa.string()),
            pa.field("media_urls", pa.list_(pa.string()), nullable=False),
        ]
    )


def media_urls(post: Post) -> list[str]:
    """The post's media URLs: the list its kind stored under ``metrics["media_urls"]``, else
    under ``raw["media_urls"]``; only the texts in it, empty when there is none."""
    for stored in (post.metrics, post.raw):
        found = (stored or {}).get("media_urls")
        if isinstance(found, list):
            return [url for url in found if isinstance(url, str)]
    return []


def _values(post: Post) -> dict[str, Any]:
    record: dict[str, Any] = {name: getattr(post, name) for name in POST_FIELDS[:-2]}
    record["metrics"] = dict(post.metrics or {})
    record["media_urls"] = media_urls(post)
    return record


def post_record(post: Post) -> dict[str, Any]:
    """The exported fields of a post, JSON-safe (times as ISO 8601 text)."""
    record = _values(post)
    for name in ("published_at", "collected_at"):
        value = record[name]
        record[name] = value.isoformat() if isinstance(value, datetime) else value
    return record


async def iter_posts(
    sessions: async_sessionmaker[AsyncSession],
    *,
    owner_id: int | None = None,
    source_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: str | None = None,
) -> AsyncIterator[Post]:
    """Every matching post, newest first, one short transaction per page.

    ``owner_id`` limits to that user's sources (None: every source, as an admin sees them).
    """
    cursor: str | None = None
    while True:
        async with sessions() as session:
            page = await list_posts(
                session,
                owner_id=owner_id,
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
    out: IO[str],
    fmt: Literal["csv", "jsonl"],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write posts to ``out`` as CSV or JSONL; returns how many were written."""
    count = 0
    if fmt == "csv":
        out.write(_csv_line(POST_FIELDS))
    async for post in posts:
        out.write(_text_row(post, fmt))
        count += 1
        if on_progress is not None and count % 500 == 0:
            on_progress(count)
    if on_progress is not None:
        on_progress(count)
    return count


async def text_lines(
    posts: AsyncIterator[Post], fmt: Literal["csv", "jsonl"]
) -> AsyncIterator[str]:
    """The export as lines of text: a CSV header then one row per post, or one JSON per post."""
    if fmt == "csv":
        yield _csv_line(POST_FIELDS)
    async for post in posts:
        yield _text_row(post, fmt)


def _text_row(post: Post, fmt: Literal["csv", "jsonl"]) -> str:
    record = post_record(post)
    if fmt == "csv":
        return _csv_line([_csv_cell(record[name]) for name in POST_FIELDS])
    return json.dumps(record, ensure_ascii=False) + "\n"


def _csv_line(values: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _record_batch(posts: list[Post]) -> pa.RecordBatch:
    columns: dict[str, list[Any]] = {name: [] for name in POST_FIELDS}
    for post in posts:
        record = _values(post)
        record["metrics"] = json.dumps(record["metrics"], ensure_ascii=False, sort_keys=True)
        for name in POST_FIELDS:
            columns[name].append(record[name])
    import pyarrow as pa

    return pa.RecordBatch.from_pydict(columns, schema=parquet_schema())


async def _batches(posts: AsyncIterator[Post]) -> AsyncIterator[pa.RecordBatch]:
    batch: list[Post] = []
    async for post in posts:
        batch.append(post)
        if len(batch) == PAGE_SIZE:
            yield _record_batch(batch)
            batch = []
    if batch:
        yield _record_batch(batch)


async def write_parquet(
    posts: AsyncIterator[Post],
    out: IO[bytes],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write posts to the binary ``out`` as Parquet, a row group per page; returns the count."""
    import pyarrow.parquet as pq

    count = 0
    with pq.ParquetWriter(out, parquet_schema(), compression="zstd") as writer:
        async for batch in _batches(posts):
            writer.write_batch(batch, row_group_size=PAGE_SIZE)
            count += batch.num_rows
            if on_progress is not None:
                on_progress(count)
    if on_progress is not None:
        on_progress(count)
    return count


class _ChunkSink:
    """A write-only binary stream that keeps what was written until it is taken."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        """Nothing to flush: the chunks wait in memory until taken."""

    def close(self) -> None:
        self.closed = True

    def take(self) -> Iterator[bytes]:
        chunks, self._chunks = self._chunks, []
        return iter(chunks)


async def parquet_chunks(posts: AsyncIterator[Post]) -> AsyncIterator[bytes]:
    """The Parquet file of ``posts`` as bytes, a row group at a time (for a streamed answer)."""
    import pyarrow.parquet as pq

    sink = _ChunkSink()
    writer = pq.ParquetWriter(sink, parquet_schema(), compression="zstd")
    try:
        async for batch in _batches(posts):
            writer.write_batch(batch, row_group_size=PAGE_SIZE)
            for chunk in sink.take():
                yield chunk
    finally:
        writer.close()
    for chunk in sink.take():
        yield chunk
