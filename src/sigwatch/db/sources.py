"""Sources: what is polled, its validated config, and who owns it.

Every lookup takes ``owner_id``: None means any owner (an admin), a user id limits the lookup to
that user's sources, and a source of someone else is NotFound, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Post, Source
from sigwatch.db.pagination import (
    Page,
    check_limit,
    decode_id_cursor,
    fetch_id_page,
    get_visible,
)
from sigwatch.db.types import utcnow
from sigwatch.errors import InvalidInput
from sigwatch.sources.registry import SOURCE_KINDS, validate_config

MIN_POLL_INTERVAL_S = 10
MAX_POLL_INTERVAL_S = 7 * 86400
_UPDATABLE = frozenset({"name", "config", "enabled", "poll_interval_s"})


async def create_source(
    session: AsyncSession,
    *,
    owner_id: int | None,
    kind: str,
    name: str,
    config: Mapping[str, Any],
    enabled: bool = True,
    poll_interval_s: int = 300,
) -> Source:
    """Add a source, due for polling now; ConfigError when ``config`` does not fit ``kind``."""
    if kind not in SOURCE_KINDS:
        known = ", ".join(sorted(SOURCE_KINDS))
        raise InvalidInput("kind", f"unknown source kind {kind!r}; known kinds: {known}")
    source = Source(
        owner_id=owner_id,
        kind=kind,
        name=_clean_name(name),
        config=validate_config(kind, dict(config)),
        enabled=enabled,
        poll_interval_s=_check_interval(poll_interval_s),
        next_poll_at=utcnow(),
    )
    session.add(source)
    await session.flush()
    return source


async def get_source(session: AsyncSession, source_id: int, *, owner_id: int | None) -> Source:
    """The source with this id, if ``owner_id`` may see it; NotFound otherwise."""
    return await get_visible(session, Source, source_id, "source", owner_id=owner_id)


async def list_sources(
    session: AsyncSession,
    *,
    owner_id: int | None,
    kind: str | None = None,
    enabled: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Source]:
    """Sources ``owner_id`` may see, in creation order, optionally of one kind or state."""
    check_limit(limit)
    stmt = select(Source).order_by(Source.id).limit(limit + 1)
    if owner_id is not None:
        stmt = stmt.where(Source.owner_id == owner_id)
    if kind is not None:
        stmt = stmt.where(Source.kind == kind)
    if enabled is not None:
        stmt = stmt.where(Source.enabled.is_(enabled))
    if cursor is not None:
        stmt = stmt.where(Source.id > decode_id_cursor(cursor))
    return await fetch_id_page(session, stmt, limit)


async def iter_sources(
    session: AsyncSession, *, kind: str | None = None, batch: int = 500
) -> AsyncIterator[Source]:
    """Every source (of one kind, if given) in id order, read in batches, for the CLI."""
    after = 0
    while True:
        stmt = select(Source).where(Source.id > after).order_by(Source.id).limit(batch)
        if kind is not None:
            stmt = stmt.where(Source.kind == kind)
        rows = list(await session.scalars(stmt))
        for source in rows:
            yield source
        if len(rows) < batch:
            return
        after = rows[-1].id


async def list_all_sources(session: AsyncSession, *, kind: str | None = None) -> list[Source]:
    """Every source (of one kind, if given) in id order, for the CLI's listings and exports."""
    return [source async for source in iter_sources(session, kind=kind)]


async def update_source(
    session: AsyncSession, source_id: int, changes: Mapping[str, Any], *, owner_id: int | None
) -> Source:
    """Change name, config, enabled or poll_interval_s; a new config is checked and polled soon."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be changed")
    source = await get_source(session, source_id, owner_id=owner_id)
    now = utcnow()
    if "name" in changes:
        source.name = _clean_name(changes["name"])
    if "config" in changes:
        config = validate_config(source.kind, dict(changes["config"]))
        if config != source.config:
            source.config = config
            # Fetch state (ETags, cursors) and the failure backoff belong to the old config.
            source.state = {}
            source.consecutive_failures = 0
            source.next_poll_at = now
    if "poll_interval_s" in changes:
        source.poll_interval_s = _check_interval(changes["poll_interval_s"])
        if source.consecutive_failures == 0:
            # A shorter interval takes effect now rather than after the old, longer wait.
            sooner = now + timedelta(seconds=source.poll_interval_s)
            source.next_poll_at = min(source.next_poll_at, sooner)
    if "enabled" in changes:
        source.enabled = bool(changes["enabled"])
    await session.flush()
    return source


async def delete_source(session: AsyncSession, source_id: int, *, owner_id: int | None) -> Source:
    """Remove a source with its posts and jobs; returns the removed source."""
    source = await get_source(session, source_id, owner_id=owner_id)
    await session.delete(source)
    await session.flush()
    return source


async def count_posts(session: AsyncSession, source_ids: Collection[int]) -> dict[int, int]:
    """The number of stored posts of each source in ``source_ids`` (0 when none)."""
    counts = dict.fromkeys(source_ids, 0)
    if not counts:
        return counts
    stmt = (
        select(Post.source_id, func.count())
        .where(Post.source_id.in_(list(counts)))
        .group_by(Post.source_id)
    )
    for source_id, count in await session.execute(stmt):
        counts[source_id] = int(count)
    return counts


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("name", "must not be blank")
    if len(name) > 200:
        raise InvalidInput("name", "must be at most 200 characters")
    return name


def _check_interval(poll_interval_s: int) -> int:
    if not MIN_POLL_INTERVAL_S <= poll_interval_s <= MAX_POLL_INTERVAL_S:
        raise InvalidInput(
            "poll_interval_s",
            f"must be between {MIN_POLL_INTERVAL_S} and {MAX_POLL_INTERVAL_S} seconds",
        )
    return poll_interval_s
