"""The post archive: idempotent batched storage, listing with filters, and full-text search.

Storage takes :class:`NewPost` rows, its own shape of a post to store; whoever collected the
posts (a source's ``CollectedPost``, a test, a benchmark) converts to it, so storage depends on
no stage.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, literal_column, or_, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Post, Source
from sigwatch.db.pagination import MAX_BIGINT_ID, Page, decode_cursor, encode_cursor
from sigwatch.db.types import utcnow
from sigwatch.errors import InvalidInput, NotFound

_UPDATABLE = (
    "url",
    "author",
    "title",
    "text",
    "html",
    "published_at",
    "content_hash",
    "metrics",
    "raw",
)


#: Rows per PostgreSQL statement: the client prepares the next chunk while the server writes one.
POSTGRES_CHUNK_ROWS = 250


@dataclass(frozen=True, slots=True)
class NewPost:
    """One post to store, keyed by ``external_id`` within its source."""

    external_id: str
    text: str
    url: str | None = None
    author: str | None = None
    title: str | None = None
    html: str | None = None
    published_at: datetime | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredPost:
    """A post as a batch stored it: what detection reads, without reading the row back."""

    id: int
    source_id: int
    text: str
    title: str | None
    author: str | None
    url: str | None
    published_at: datetime
    collected_at: datetime


@dataclass(slots=True)
class StoreResult:
    """Which posts a batch added or changed; unchanged re-polled posts are only counted."""

    new_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)
    unchanged: int = 0
    #: When each new post appeared, in the order of ``new_ids``: its published time as stored
    #: (the collection time for a post without one).
    new_published_at: list[datetime] = field(default_factory=list)
    #: The new posts as stored, in id order.
    new_posts: list[StoredPost] = field(default_factory=list)


def content_hash(post: NewPost) -> str:
    """A digest of what a reader sees of a post; a change of it makes a stored post 'updated'."""
    digest = hashlib.sha256()
    for part in (post.title, post.text, post.url, post.author, post.html):
        digest.update((part or "").encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    return digest.hexdigest()


def _without_nul(post: NewPost) -> NewPost:
    """``post`` without NUL characters, which PostgreSQL text and jsonb cannot hold.

    Feeds and APIs do send them (a broken encoder, a C string copied whole); dropped on every
    database alike, so a post is stored, hashed and searched the same way everywhere, and one
    stray NUL never fails the poll that brought it.
    """
    texts = (post.external_id, post.text, post.url, post.author, post.title, post.html)
    if not any(value and "\x00" in value for value in texts) and not _has_nul(
        (post.metrics, post.raw)
    ):
        return post
    return replace(
        post,
        external_id=post.external_id.replace("\x00", ""),
        text=post.text.replace("\x00", ""),
        url=_strip_nul(post.url),
        author=_strip_nul(post.author),
        title=_strip_nul(post.title),
        html=_strip_nul(post.html),
        metrics=_strip_nul(post.metrics),
        raw=_strip_nul(post.raw),
    )


def _has_nul(value: Any) -> bool:
    """Whether a NUL may hide in ``value``: its repr shows one as ``\\x00`` (a text that merely
    reads so is a harmless false alarm), found at C speed where walking the value is not."""
    return "\\x00" in repr(value)


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(key): _strip_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strip_nul(item) for item in value]
    return value


def _row(
    source_id: int, post: NewPost, collected_at: datetime, sentiment: float | None
) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "external_id": post.external_id,
        "url": post.url,
        "author": post.author,
        "title": post.title,
        "text": post.text,
        "html": post.html,
        # A post without a date sorts by when it was first seen, as feed readers do.
        "published_at": post.published_at or collected_at,
        "collected_at": collected_at,
        "content_hash": content_hash(post),
        "metrics": post.metrics,
        "raw": post.raw,
        "sentiment": sentiment,
    }


async def store_posts(
    session: AsyncSession,
    source_id: int,
    posts: Sequence[NewPost],
    *,
    collected_at: datetime | None = None,
    sentiment: Callable[[NewPost], float] | None = None,
) -> StoreResult:
    """Insert new posts and update changed ones in batches; re-polled unchanged posts are skipped.

    One upsert per chunk: ``ON CONFLICT (source_id, external_id) DO UPDATE ... WHERE`` the content
    hash differs, returning only the rows it wrote. A returned row whose ``collected_at`` is this
    batch's timestamp was inserted; any other returned row was an update of an older post.

    ``sentiment`` scores each post not stored yet, and the score is inserted with it (an update
    keeps the score a post was stored with). The stored ids are read first, so the scoring runs
    before the transaction's first write: on SQLite, other writers wait for none of it.
    """
    collected_at = collected_at or utcnow()
    # The last occurrence of an id in a batch wins, as a later entry of a feed is its newer copy.
    unique: dict[str, NewPost] = {}
    for post in posts:
        post = _without_nul(post)
        unique[post.external_id] = post
    result = StoreResult()
    if not unique:
        return result
    scores: dict[str, float] = {}
    if sentiment is not None:
        stored = await _stored_external_ids(session, source_id, list(unique))
        scores = {key: sentiment(post) for key, post in unique.items() if key not in stored}
    written: Sequence[Any]
    rows = list(unique.values())
    if session.get_bind().dialect.name == "postgresql":
        written = await _upsert_postgres(session, source_id, rows, collected_at, scores)
    else:
        written = await _upsert_sqlite(session, source_id, rows, collected_at, scores)
    for post_id, row_collected_at, published_at, external_id in written:
        if row_collected_at == collected_at:
            result.new_ids.append(post_id)
            result.new_published_at.append(published_at)
            post = unique[external_id]
            result.new_posts.append(
                StoredPost(
                    id=post_id,
                    source_id=source_id,
                    text=post.text,
                    title=post.title,
                    author=post.author,
                    url=post.url,
                    published_at=published_at,
                    collected_at=row_collected_at,
                )
            )
        else:
            result.updated_ids.append(post_id)
    result.new_posts.sort(key=lambda post: post.id)
    result.unchanged = len(unique) - len(written)
    return result


#: Most external ids looked up in one query (well under every database's parameter limit).
LOOKUP_CHUNK_IDS = 500


async def _stored_external_ids(
    session: AsyncSession, source_id: int, external_ids: list[str]
) -> set[str]:
    """Which of ``external_ids`` the source already has stored."""
    found: set[str] = set()
    for start in range(0, len(external_ids), LOOKUP_CHUNK_IDS):
        chunk = external_ids[start : start + LOOKUP_CHUNK_IDS]
        rows = await session.scalars(
            select(Post.external_id).where(Post.source_id == source_id, Post.external_id.in_(chunk))
        )
        found.update(rows.all())
    return found


async def _upsert_sqlite(
    session: AsyncSession,
    source_id: int,
    posts: list[NewPost],
    collected_at: datetime,
    sentiments: Mapping[str, float],
) -> Sequence[Any]:
    insert = sqlite.insert(Post)
    excluded = insert.excluded
    statement = insert.on_conflict_do_update(
        index_elements=[Post.source_id, Post.external_id],
        set_={name: excluded[name] for name in _UPDATABLE},
        where=Post.content_hash != excluded.content_hash,
    ).returning(Post.id, Post.collected_at, Post.published_at, Post.external_id)
    rows = [_row(source_id, post, collected_at, sentiments.get(post.external_id)) for post in posts]
    connection = await session.connection()
    # Executemany with RETURNING: SQLAlchemy batches the rows into multi-row statements
    # ("insertmanyvalues") compiled once, so a large batch costs few round trips.
    return (await connection.execute(statement, rows)).all()


_UPSERT_POSTGRES = f"""
INSERT INTO posts (source_id, collected_at, external_id, url, author, title, text, html,
                   published_at, content_hash, metrics, raw, search_vector, sentiment)
SELECT $1, $2, u.external_id, u.url, u.author, u.title, u.text, u.html, u.published_at,
       u.content_hash, u.metrics, u.raw, array_to_tsvector(string_to_array(u.terms, ' ')),
       u.sentiment
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::timestamptz[], $10::text[], $11::jsonb[], $12::jsonb[], $13::text[],
            $14::float8[])
     AS u(external_id, url, author, title, text, html, published_at, content_hash, metrics,
          raw, terms, sentiment)
ON CONFLICT (source_id, external_id) DO UPDATE SET
    {", ".join(f"{name} = excluded.{name}" for name in (*_UPDATABLE, "search_vector"))}
WHERE posts.content_hash <> excluded.content_hash
RETURNING id, collected_at, published_at, external_id
"""


async def _upsert_postgres(
    session: AsyncSession,
    source_id: int,
    posts: list[NewPost],
    collected_at: datetime,
    sentiments: Mapping[str, float],
) -> list[Any]:
    """Chunks of one statement each, pipelined: columns travel as arrays, unnested server side.

    Arrays skip per-row parameter processing on the client, which otherwise costs more than the
    insert itself; the statement is prepared once per connection by asyncpg. Preparing a chunk's
    columns (hashes, search words) is Python work and writing it is the server's, so each chunk
    is prepared while the server writes the one before: the two run side by side.
    """
    connection = await session.connection()
    raw_connection = await connection.get_raw_connection()
    driver = raw_connection.driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its own first statement: used
        # directly, the driver would write outside the caller's transaction, committing each
        # chunk at once even if the caller then rolls back.
        await connection.exec_driver_sql("SELECT 1")
    written: list[Any] = []
    in_flight: asyncio.Future[list[Any]] | None = None
    try:
        for start in range(0, len(posts), POSTGRES_CHUNK_ROWS):
            chunk = posts[start : start + POSTGRES_CHUNK_ROWS]
            columns = _postgres_columns(chunk, collected_at, sentiments)
            if in_flight is not None:
                written += await in_flight
            in_flight = asyncio.ensure_future(
                driver.fetch(_UPSERT_POSTGRES, source_id, collected_at, *columns)
            )
            # One turn of the loop sends the statement, so the server starts on it now.
            await asyncio.sleep(0)
        assert in_flight is not None
        written += await in_flight
    except BaseException:
        # The transaction fails with the chunk; no statement is left running on the connection.
        if in_flight is not None and not in_flight.done():
            in_flight.cancel()
            await asyncio.gather(in_flight, return_exceptions=True)
        raise
    return written


def _postgres_columns(
    posts: Sequence[NewPost], collected_at: datetime, sentiments: Mapping[str, float]
) -> tuple[list[Any], ...]:
    """The upsert's array parameters ($3 to $14) for ``posts``."""
    empty = "{}"
    columns: tuple[list[Any], ...] = tuple([] for _ in range(12))
    (ids, urls, authors, titles, texts, htmls, published, hashes, metrics, raws, terms, scores) = (
        columns
    )
    for post in posts:
        ids.append(post.external_id)
        urls.append(post.url)
        authors.append(post.author)
        titles.append(post.title)
        texts.append(post.text)
        htmls.append(post.html)
        published.append(post.published_at or collected_at)
        hashes.append(content_hash(post))
        metrics.append(json.dumps(post.metrics) if post.metrics else empty)
        raws.append(json.dumps(post.raw) if post.raw else empty)
        terms.append(" ".join(search_terms(f"{post.title or ''} {post.text}")))
        scores.append(sentiments.get(post.external_id))
    return columns


_WORD = re.compile(r"[^\W_]+")
#: Combining marks left by NFKD decomposition: the accents that folding removes.
#: Bytes of lowered ASCII text: letters and digits kept, anything else a space.
_ASCII_WORD_BYTES = bytes(
    byte if "0" <= chr(byte) <= "9" or "a" <= chr(byte) <= "z" else ord(" ") for byte in range(256)
)
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def search_terms(text: str) -> list[str]:
    """The distinct words of ``text`` as full-text search keeps them: case- and accent-folded.

    The rules match SQLite FTS5's ``unicode61 remove_diacritics 2`` tokenizer, so a query finds
    the same posts on SQLite and on PostgreSQL.
    """
    if text.isascii():
        # The same words as the regular expression finds, several times faster: lowered ASCII
        # keeps letters and digits, and every other byte becomes a space to split on.
        words = text.lower().encode().translate(_ASCII_WORD_BYTES).decode().split()
        return list(dict.fromkeys(words))
    folded = _COMBINING.sub("", unicodedata.normalize("NFKD", text.casefold()))
    return list(dict.fromkeys(_WORD.findall(folded)))


def _query_words(q: str) -> list[str]:
    words = search_terms(q)
    if not words:
        raise InvalidInput("q", "give at least one word to search for")
    return words


def _fts_match(q: str) -> str:
    """Turn free text into an FTS5 query that ANDs its words, with no FTS syntax let through."""
    return " ".join(f'"{word}"' for word in _query_words(q))


def _tsquery(q: str) -> str:
    """The same AND of words as a tsquery literal (words hold no quote, so none needs escaping)."""
    return " & ".join(f"'{word}'" for word in _query_words(q))


def _matching_ids(dialect: str, q: str) -> Any:
    if dialect == "postgresql":
        return select(Post.id).where(
            literal_column("posts.search_vector").op("@@")(
                text("CAST(:tsquery AS tsquery)").bindparams(tsquery=_tsquery(q))
            )
        )
    return text("SELECT rowid FROM posts_fts WHERE posts_fts MATCH :match").bindparams(
        match=_fts_match(q)
    )


def matching_post_ids(session: AsyncSession, q: str) -> Any:
    """A sub-select of the ids of posts whose title or text holds every word of ``q``."""
    return _matching_ids(session.get_bind().dialect.name, q)


def _filtered(
    statement: Select[Any],
    dialect: str,
    *,
    owner_id: int | None,
    source_id: int | None,
    author: str | None,
    since: datetime | None,
    until: datetime | None,
    q: str | None,
) -> Select[Any]:
    if owner_id is not None:
        statement = statement.join(Source, Source.id == Post.source_id).where(
            Source.owner_id == owner_id
        )
    if source_id is not None:
        statement = statement.where(Post.source_id == source_id)
    if author is not None:
        statement = statement.where(Post.author == author)
    if since is not None:
        statement = statement.where(Post.published_at >= since)
    if until is not None:
        statement = statement.where(Post.published_at < until)
    if q is not None:
        statement = statement.where(Post.id.in_(_matching_ids(dialect, q)))
    return statement


async def list_posts(
    session: AsyncSession,
    *,
    owner_id: int | None,
    source_id: int | None = None,
    author: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Post]:
    """Posts newest first, filtered; ``owner_id`` limits to that user's sources (None: all)."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit", "must be between 1 and 1000")
    dialect = session.get_bind().dialect.name
    statement = _filtered(
        select(Post),
        dialect,
        owner_id=owner_id,
        source_id=source_id,
        author=author,
        since=since,
        until=until,
        q=q,
    )
    if cursor is not None:
        after, post_id = _decode_post_cursor(cursor)
        statement = statement.where(
            or_(
                Post.published_at < after,
                and_(Post.published_at == after, Post.id < post_id),
            )
        )
    statement = statement.order_by(Post.published_at.desc(), Post.id.desc()).limit(limit + 1)
    items = list((await session.scalars(statement)).all())
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        assert last.published_at is not None
        next_cursor = encode_cursor(last.published_at.isoformat(), last.id)
    return Page(items=items, next_cursor=next_cursor)


def _decode_post_cursor(cursor: str) -> tuple[datetime, int]:
    published, post_id = decode_cursor(cursor, 2)
    try:
        after = datetime.fromisoformat(published)
    except (TypeError, ValueError):
        after = None
    if after is None or after.tzinfo is None or type(post_id) is not int:
        raise InvalidInput("cursor", "not a cursor returned by this API")
    if not 0 <= post_id <= MAX_BIGINT_ID:
        raise InvalidInput("cursor", "not a cursor returned by this API")
    return after, post_id


async def get_post(session: AsyncSession, post_id: int, *, owner_id: int | None) -> Post:
    """One post, if visible to ``owner_id`` (None: any)."""
    statement = select(Post).where(Post.id == post_id)
    if owner_id is not None:
        statement = statement.join(Source, Source.id == Post.source_id).where(
            Source.owner_id == owner_id
        )
    post = (await session.scalars(statement)).first()
    if post is None:
        raise NotFound(f"post {post_id} does not exist")
    return post


#: The PostgreSQL full-text index of posts (created by the first migration).
SEARCH_INDEX = "ix_posts_search_vector"


async def merge_pending_search_entries(session: AsyncSession) -> int:
    """Move the search index's pending entries into its main tree; returns the pages merged.

    PostgreSQL buffers a GIN index's new entries in a pending list (``fastupdate``), and the
    insert that finds the list full merges it, inline. Merged here, on a connection of its own,
    the same work runs beside the inserts instead of inside one of them, on another core of the
    server. An insert that finds the merge running goes on without waiting. SQLite's FTS5
    merges its own segments: nothing to do there.
    """
    if session.get_bind().dialect.name != "postgresql":
        return 0
    pages = await session.scalar(
        text("SELECT gin_clean_pending_list(CAST(:index AS regclass))").bindparams(
            index=SEARCH_INDEX
        )
    )
    return int(pages or 0)
