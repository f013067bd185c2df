"""Sources: the rows of what is polled, who owns it, and its health. Queries only.

A config arrives here already validated and sealed by :mod:`sigwatch.manage.sources` (the kind's
options live with the kind), and is stored as given. Every lookup takes ``owner_id``: None means
any owner (an admin), a user id limits the lookup to that user's sources, and a source of
someone else is NotFound, as if it did not exist. A removed source (``deleted_at`` set) is found
by no lookup and polled by no worker; its row stays, so its posts and its id stay its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sigwatch.db.models import Post, Source
from sigwatch.db.pagination import (
    MAX_INT_ID,
    Page,
    check_limit,
    decode_id_cursor,
    fetch_id_page,
)
from sigwatch.db.types import utcnow
from sigwatch.errors import Conflict, InvalidInput, NotFound

#: Any source's bounds; each kind's own minimum (the fast lane: 1 s for json and web) is a
#: setting, checked by sigwatch.manage.sources.
MIN_POLL_INTERVAL_S = 1
MAX_POLL_INTERVAL_S = 7 * 86400
_UPDATABLE = frozenset({"name", "config", "origin", "enabled", "poll_interval_s", "freshness"})


async def create_source(
    session: AsyncSession,
    *,
    owner_id: int | None,
    kind: str,
    name: str,
    config: Mapping[str, Any],
    origin: str | None = None,
    enabled: bool = True,
    poll_interval_s: int = 300,
) -> Source:
    """Store a source, due for polling now; Conflict naming the copy the owner already has.

    ``config`` is stored as given: validating and sealing it is the caller's job.
    """
    if origin is not None and owner_id is not None:
        existing = await find_source_by_origin(session, owner_id=owner_id, kind=kind, origin=origin)
        if existing is not None:
            raise _duplicate(existing)
    source = Source(
        owner_id=owner_id,
        kind=kind,
        name=_clean_name(name),
        config=dict(config),
        origin=origin,
        enabled=enabled,
        poll_interval_s=_check_interval(poll_interval_s),
        next_poll_at=utcnow(),
    )
    session.add(source)
    await _flush_unique(session, kind)
    return source


async def find_source_by_origin(
    session: AsyncSession, *, owner_id: int, kind: str, origin: str, exclude_id: int | None = None
) -> Source | None:
    """The owner's source (not removed) of this kind and origin, if there is one."""
    stmt = select(Source).where(
        Source.owner_id == owner_id,
        Source.kind == kind,
        Source.origin == origin,
        Source.deleted_at.is_(None),
    )
    if exclude_id is not None:
        stmt = stmt.where(Source.id != exclude_id)
    return await session.scalar(stmt.limit(1))


async def get_source(
    session: AsyncSession, source_id: int, *, owner_id: int | None, include_removed: bool = False
) -> Source:
    """The source with this id, if ``owner_id`` may see it; NotFound otherwise.

    A removed source is NotFound too, unless ``include_removed``: its posts stay in the archive,
    so a search of them by source may still name it.
    """
    source = await session.get(Source, source_id) if 0 < source_id <= MAX_INT_ID else None
    if (
        source is None
        or (source.deleted_at is not None and not include_removed)
        or (owner_id is not None and source.owner_id != owner_id)
    ):
        raise NotFound(f"no source with id {source_id}")
    return source


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
    stmt = select(Source).where(Source.deleted_at.is_(None)).order_by(Source.id).limit(limit + 1)
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
    """Every source not removed (of one kind, if given) in id order, read in batches."""
    after = 0
    while True:
        stmt = (
            select(Source)
            .where(Source.id > after, Source.deleted_at.is_(None))
            .order_by(Source.id)
            .limit(batch)
        )
        if kind is not None:
            stmt = stmt.where(Source.kind == kind)
        rows = list(await session.scalars(stmt))
        for source in rows:
            yield source
        if len(rows) < batch:
            return
        after = rows[-1].id


async def list_all_sources(session: AsyncSession, *, kind: str | None = None) -> list[Source]:
    """Every source not removed (of one kind, if given) in id order, for listings and exports."""
    return [source async for source in iter_sources(session, kind=kind)]


async def update_source(
    session: AsyncSession, source_id: int, changes: Mapping[str, Any], *, owner_id: int | None
) -> Source:
    """Change name, config, origin, enabled or poll_interval_s; a new config is polled soon.

    A ``config`` given is stored as given (validated and sealed by the caller, who passes it only
    when it changed) and drops the fetch state, which belonged to the old config. A new
    ``origin`` the owner already has is a Conflict naming that source.
    """
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be changed")
    source = await get_source(session, source_id, owner_id=owner_id)
    now = utcnow()
    if "name" in changes:
        source.name = _clean_name(changes["name"])
    if "origin" in changes and changes["origin"] != source.origin:
        origin = changes["origin"]
        if origin is not None and source.owner_id is not None:
            existing = await find_source_by_origin(
                session,
                owner_id=source.owner_id,
                kind=source.kind,
                origin=origin,
                exclude_id=source.id,
            )
            if existing is not None:
                raise _duplicate(existing)
        source.origin = origin
    if "config" in changes:
        source.config = dict(changes["config"])
        # Fetch state (ETags, cursors) and the failure backoff belong to the old config.
        source.state = {}
        source.consecutive_failures = 0
        source.next_poll_at = now
    if "freshness" in changes:  # checked by the caller (sigwatch.alerts.freshness)
        source.freshness = changes["freshness"]
    if "poll_interval_s" in changes:
        source.poll_interval_s = _check_interval(changes["poll_interval_s"])
        if source.consecutive_failures == 0:
            # A shorter interval takes effect now rather than after the old, longer wait.
            sooner = now + timedelta(seconds=source.poll_interval_s)
            source.next_poll_at = min(source.next_poll_at, sooner)
    if "enabled" in changes:
        source.enabled = bool(changes["enabled"])
    await _flush_unique(session, source.kind)
    return source


async def delete_source(session: AsyncSession, source_id: int, *, owner_id: int | None) -> Source:
    """Remove a source: it stops being polled or listed; its posts, jobs and id stay its own."""
    source = await get_source(session, source_id, owner_id=owner_id)
    source.deleted_at = utcnow()
    source.enabled = False
    source.lease_owner = None
    source.lease_expires_at = None
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


def _duplicate(existing: Source) -> Conflict:
    return Conflict(
        f"you already have this {existing.kind} source: source {existing.id} "
        f"({existing.name!r}); edit that one, or remove it first to add it again"
    )


async def _flush_unique(session: AsyncSession, kind: str) -> None:
    """Flush; a clash on (owner, kind, origin) from a concurrent add becomes a Conflict."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if "origin" not in str(exc.orig):
            raise
        raise Conflict(
            f"another {kind} source with this address was added at the same moment: list your "
            "sources and edit that one"
        ) from None


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
